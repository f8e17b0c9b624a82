//! The filters of the user and session listings, written once for both backends.

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::store::{SessionFilter, VerificationOrder};
use sessiond_core::user::{StoredOrder, UserFilter};

use crate::{Arg, Placeholders, Sql};

/// `WHERE …` for users (alias `u`) of `app` matching `f`. Exact identifiers match through their
/// blind-index hashes in `user_identifiers`.
pub fn user_where(app: &AppId, f: &UserFilter, sql: &mut Sql) {
    sql.push(" WHERE u.application_id = ")
        .bind(Arg::Str(app.0.clone()));
    if !f.user_ids.is_empty() {
        sql.push(" AND u.id IN ")
            .bind_list(f.user_ids.iter().map(|i| Arg::Str(i.0.clone())));
    }
    for (kind, hashes) in [
        ("external_id", &f.external_id_hashes),
        ("email", &f.email_hashes),
    ] {
        if hashes.is_empty() {
            continue;
        }
        sql.push(" AND EXISTS (SELECT 1 FROM user_identifiers i WHERE i.user_id = u.id AND i.application_id = ")
            .bind(Arg::Str(app.0.clone()))
            // `kind` is one of the two literals above, never input.
            .push(" AND i.kind = '")
            .push(kind)
            .push("' AND i.hash IN ")
            .bind_list(hashes.iter().map(|h| Arg::Bytes(h.to_vec())))
            .push(")");
    }
}

/// `ORDER BY …` for a user listing, ties broken by id so pages never overlap.
pub fn user_order_by(o: StoredOrder) -> &'static str {
    match o {
        StoredOrder::CreatedDesc => " ORDER BY u.created_at DESC, u.id DESC",
        StoredOrder::CreatedAsc => " ORDER BY u.created_at ASC, u.id ASC",
        StoredOrder::UpdatedDesc => " ORDER BY u.updated_at DESC, u.id DESC",
        StoredOrder::UpdatedAsc => " ORDER BY u.updated_at ASC, u.id ASC",
    }
}

/// The effective status of a session row (alias `s`) as of `now`, mirroring
/// `Session::effective_status`.
pub fn push_effective_status(sql: &mut Sql, now: Timestamp) {
    sql.push("(CASE WHEN s.status IN ('active', 'pending') AND s.expire_at <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'expired' WHEN s.status IN ('active', 'pending') AND s.idle_deadline IS NOT NULL AND s.idle_deadline <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'suspended' WHEN s.status IN ('active', 'pending') AND s.abandon_at <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'abandoned' ELSE s.status END)");
}

/// `FROM …` of every session read: a session (alias `s`) exists only in its user's current
/// session generation (alias `g` for the user row); deleting all of a user's sessions moves the
/// generation on. Reads also say [`not_purged!`] in their WHERE. A macro so that fixed
/// statements can `concat!` it.
#[macro_export]
macro_rules! live_sessions {
    () => {
        " FROM sessions s JOIN users g ON g.application_id = s.application_id \
         AND g.id = s.user_id AND g.session_generation = s.user_generation"
    };
}

/// A session with its user, by application (`$app`) and id (`$id`), each backend in its own
/// placeholders: the Equisoft view's one read, the user of the session's current generation.
#[macro_export]
macro_rules! session_with_user {
    ($app:literal, $id:literal) => {
        $crate::session_with_user!($app, $id, "")
    };
    // `$more`: further columns, after the user's.
    ($app:literal, $id:literal, $more:literal) => {
        concat!(
            "SELECT ",
            $crate::session_cols!(),
            ", ",
            $crate::user_cols!(),
            $more,
            " FROM sessions s JOIN users u ON u.application_id = s.application_id \
             AND u.id = s.user_id AND u.session_generation = s.user_generation \
             WHERE s.application_id = ",
            $app,
            " AND s.id = ",
            $id,
            " AND ",
            $crate::not_purged!($app)
        )
    };
}

/// A session row (alias `s`) of the application bound at `$app` (a placeholder such as `"?1"`)
/// has not lapsed by that application's last purge of lapsed sessions: its expiry, abandonment
/// and idle deadline are all later. The purge row is found once per statement (an uncorrelated
/// subquery), not once per row: joining it cost a third of a user's listing.
#[macro_export]
macro_rules! not_purged {
    ($app:literal) => {
        concat!(
            "s.expire_at > (SELECT lapsed_through FROM session_purges WHERE application_id = ",
            $app,
            ") AND s.abandon_at > (SELECT lapsed_through FROM session_purges WHERE application_id = ",
            $app,
            ") AND (s.idle_deadline IS NULL OR s.idle_deadline > \
             (SELECT lapsed_through FROM session_purges WHERE application_id = ",
            $app,
            "))"
        )
    };
}

/// A condition true of a session row (alias `s`) that [`live_sessions!`] keeps, for statements
/// that cannot join (deletes, updates).
#[macro_export]
macro_rules! session_is_live {
    () => {
        "EXISTS (SELECT 1 FROM users g WHERE g.application_id = s.application_id \
         AND g.id = s.user_id AND g.session_generation = s.user_generation) \
         AND EXISTS (SELECT 1 FROM session_purges p WHERE p.application_id = s.application_id \
         AND s.expire_at > p.lapsed_through AND s.abandon_at > p.lapsed_through \
         AND (s.idle_deadline IS NULL OR s.idle_deadline > p.lapsed_through))"
    };
}

/// Usable sessions (with their user's columns, for the event) of the application `?1` that
/// lapsed after the cursor (lapse time `?2`, session id `?3`) and by `?4`, in lapse order, at
/// most `?5`. `$lapse` is the backend's spelling of a session's lapse time, which must be
/// exactly its `sessions_by_lapse` index's expression for the index to serve the scan.
#[macro_export]
macro_rules! lapsed_sessions {
    ($lapse:literal) => {
        concat!(
            "SELECT ",
            $crate::session_cols!(),
            " FROM sessions s JOIN users u ON u.application_id = s.application_id \
             AND u.id = s.user_id AND u.session_generation = s.user_generation \
             WHERE s.application_id = ?1 AND ",
            $lapse,
            " >= ?2 AND (",
            $lapse,
            " > ?2 OR s.id > ?3) AND ",
            $lapse,
            " <= ?4 AND s.status IN ('active', 'pending') ORDER BY ",
            $lapse,
            ", s.id LIMIT ?5"
        )
    };
}

/// [`live_sessions!`] as a constant.
pub const LIVE_SESSIONS: &str = live_sessions!();

/// `WHERE …` for sessions (alias `s`, read through [`LIVE_SESSIONS`]) of `app` matching `f` as
/// of `now`.
pub fn session_where(app: &AppId, f: &SessionFilter, now: Timestamp, sql: &mut Sql) {
    sql.push(" WHERE s.application_id = ")
        .bind(Arg::Str(app.0.clone()));
    // `not_purged!`, with the application bound at each of its three places.
    for (i, deadline) in ["s.expire_at", "s.abandon_at", "s.idle_deadline"]
        .iter()
        .enumerate()
    {
        let nullable = i == 2;
        sql.push(if nullable { " AND (" } else { " AND " })
            .push(deadline);
        if nullable {
            sql.push(" IS NULL OR ").push(deadline);
        }
        sql.push(" > (SELECT lapsed_through FROM session_purges WHERE application_id = ")
            .bind(Arg::Str(app.0.clone()))
            .push(if nullable { "))" } else { ")" });
    }
    if let Some(u) = &f.user_id {
        // Said of both sides, so the user row is found once and the sessions through their index.
        sql.push(" AND s.user_id = ")
            .bind(Arg::Str(u.0.clone()))
            .push(" AND g.id = ")
            .bind(Arg::Str(u.0.clone()));
    }
    if let Some(c) = &f.client_id {
        sql.push(" AND s.client_id = ").bind(Arg::Str(c.0.clone()));
    }
    if !f.statuses.is_empty() {
        sql.push(" AND ");
        push_effective_status(sql, now);
        sql.push(" IN ")
            .bind_list(f.statuses.iter().map(|s| Arg::Str(s.as_str().to_owned())));
    }
}

/// A page of an application's verifications in the order asked, ties broken by id so pages
/// never overlap.
pub fn verifications_page(
    style: Placeholders,
    app: &AppId,
    order: VerificationOrder,
    descending: bool,
    limit: u32,
    offset: u64,
) -> Sql {
    let order_by = match (order, descending) {
        (VerificationOrder::Created, true) => " ORDER BY created_at DESC, id DESC",
        (VerificationOrder::Created, false) => " ORDER BY created_at ASC, id ASC",
        (VerificationOrder::Updated, true) => " ORDER BY updated_at DESC, id DESC",
        (VerificationOrder::Updated, false) => " ORDER BY updated_at ASC, id ASC",
        (VerificationOrder::State, true) => " ORDER BY state_rank DESC, id DESC",
        (VerificationOrder::State, false) => " ORDER BY state_rank ASC, id ASC",
    };
    let mut q = Sql::new(
        style,
        &format!(
            "SELECT {} FROM verification_sessions WHERE application_id = ",
            crate::rows::VERIFICATION_COLS
        ),
    );
    q.bind(Arg::Str(app.0.clone()))
        .push(order_by)
        .push(" LIMIT ")
        .bind(Arg::I64(i64::from(limit)))
        .push(" OFFSET ")
        .bind(Arg::I64(i64::try_from(offset).unwrap_or(i64::MAX)));
    q
}

/// An application's impersonation audit trail, newest first; with `user`, only the entries in
/// which that user acts or is acted as.
pub fn impersonations(style: Placeholders, app: &AppId, user: Option<&str>, limit: u32) -> Sql {
    let mut q = Sql::new(
        style,
        &format!(
            "SELECT {} FROM impersonation_events WHERE application_id = ",
            crate::rows::IMPERSONATION_COLS
        ),
    );
    q.bind(Arg::Str(app.0.clone()));
    if let Some(u) = user {
        q.push(" AND (actor_user_id = ")
            .bind(Arg::Str(u.to_owned()))
            .push(" OR target_user_id = ")
            .bind(Arg::Str(u.to_owned()))
            .push(")");
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .bind(Arg::I64(i64::from(limit)));
    q
}
