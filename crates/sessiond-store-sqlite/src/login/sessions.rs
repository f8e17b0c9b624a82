//! Sessions, with their user where a view needs both.

use crate::engine::{HotCache, Lookup};
use crate::{Arg, Sql, SqliteStore, exec, first, get, i64_of};
use async_trait::async_trait;
use rusqlite::{Connection, params};
use serde_json::Value;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::ids::SessionId;
use sessiond_core::session::Session;
use sessiond_core::store::{
    Modified, SessionChange, SessionFilter, SessionStep, SessionStore, StoreError, StoreResult,
    StoredUser,
};
use sessiond_store_sql::statements;

use super::*;
use crate::{Run, sql};
use sessiond_store_sql::filters::*;

/// `?1` application, `?2` session: one live session.
const GET_SESSION: &str = concat!(
    "SELECT ",
    session_cols!(),
    sessiond_store_sql::live_sessions!(),
    " WHERE s.application_id = ?1 AND s.id = ?2 AND ",
    sessiond_store_sql::not_purged!("?1")
);

/// `?1` application, `?2` session: the session with its user, for views that show both, and
/// the two rows' rowids (what the hot-session cache knows them by). Built at compile time: this
/// is the Equisoft read path, run on every request.
const GET_SESSION_WITH_USER: &str = sessiond_store_sql::session_with_user!(
    "?1",
    "?2",
    ", s.rowid AS session_row, u.rowid AS user_row"
);

/// A session's new state under optimistic concurrency: `?1`–`?13` as [`session_params`] binds
/// them, `?14` the version it was read at.
const UPDATE_SESSION: &str = concat!(
    "UPDATE sessions AS s SET user_id = ?3, status = ?4, actor = ?5, activity = ?6, \
     last_active_organization_id = ?7, updated_at = ?8, last_active_at = ?9, abandon_at = ?10, \
     idle_deadline = ?11, version = ?12, attributes = ?13, user_generation = \
     (SELECT session_generation FROM users WHERE application_id = ?2 AND id = ?3) \
     WHERE s.application_id = ?2 AND s.id = ?1 AND s.version = ?14 \
     AND EXISTS (SELECT 1 FROM users WHERE application_id = ?2 AND id = ?3) AND ",
    sessiond_store_sql::session_is_live!()
);

/// A new session of a user of the same application: `?1`–`?13` as [`session_params`] binds them,
/// then `?14` client, `?15` created, `?16` expiry, `?17` SSO. For a user of another application
/// (or none) the generation is NULL and the row is refused by its NOT NULL constraint (see
/// [`insert_refused`]).
///
/// One row of VALUES, not `INSERT … SELECT … FROM users`: for a statement that may write several
/// rows and may abort, SQLite keeps a statement journal, a copy of every page the statement first
/// changes (the table's leaf and each index's), so that an abort can undo its earlier rows. A
/// single-row insert checks every constraint before it writes anything and needs none; the
/// copies profiled as 4 % of the writer's time under creates.
const INSERT_SESSION: &str = "INSERT INTO sessions (id, application_id, user_id, status, actor, \
     activity, last_active_organization_id, updated_at, last_active_at, abandon_at, idle_deadline, \
     version, attributes, client_id, created_at, expire_at, sso, user_generation) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     (SELECT u.session_generation FROM users u WHERE u.application_id = ?2 AND u.id = ?3))";

/// Whether [`INSERT_SESSION`] failed because its user is not one of the application's: the
/// generation looked up for it is NULL, or the user row is gone.
fn insert_refused(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL =>
        {
            msg.as_deref()
                .is_some_and(|m| m.ends_with("sessions.user_generation"))
        }
        _ => crate::is_foreign_key(e),
    }
}

/// Runs [`INSERT_SESSION`] or [`UPDATE_SESSION`]: `?1`–`?13` are the id, application and user,
/// then every field an update may write; `more` binds the rest.
fn session_params(
    c: &Connection,
    sql: &str,
    s: &Session,
    attributes: &str,
    more: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<usize> {
    let actor = s.actor.as_ref().map(Value::to_string);
    let idle = s.idle_deadline.map(|t| t.0);
    let shared: [&dyn rusqlite::ToSql; 13] = [
        &s.id.0,
        &s.application_id.0,
        &s.user_id.0,
        &s.status.as_str(),
        &actor,
        &s.activity,
        &s.last_active_organization_id,
        &s.updated_at.0,
        &s.last_active_at.0,
        &s.abandon_at.0,
        &idle,
        &s.version,
        &attributes,
    ];
    c.prepare_cached(sql)?
        .execute(rusqlite::params_from_iter(shared.iter().chain(more.iter())))
}

pub(super) fn get_session(conn: &Connection, app: &str, id: &str) -> StoreResult<Option<Session>> {
    first(conn, GET_SESSION, [app, id], session_from_row)
}

pub(super) fn session_page(
    app: &AppId,
    filter: &SessionFilter,
    limit: u32,
    offset: u64,
    now: Timestamp,
) -> Sql {
    let mut page = sql(&format!("SELECT {SESSION_COLS}{LIVE_SESSIONS}"));
    session_where(app, filter, now, &mut page);
    page.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
        .bind(Arg::I64(i64::from(limit)))
        .push(" OFFSET ")
        .bind(Arg::I64(i64_of(offset)));
    page
}

/// Where the `before` of [`write_changes`] was read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadIn {
    /// In the transaction that writes: the session is live and at that version.
    ThisTransaction,
    /// Before it (optimistic concurrency): the version may have moved, and the session may have
    /// stopped being live without a version change (its user's sessions deleted at once, its
    /// user deleted, a purge), so the write checks both, as `UPDATE_SESSION` does.
    Earlier,
}

/// `after` written over `before`: only the columns that differ are set. SQLite rewrites every
/// index that names a column an UPDATE sets, even to the value it had, and each index entry it
/// rewrites dirties a page of that index (a WAL frame now, a page for the checkpointer to copy
/// later): a revoke or a touch that set every column touched the user index (and the lapse
/// index, for a revoke) for nothing. A change of user also moves the session's generation, so
/// it goes through `write_session`.
///
/// Given the hot-session cache, a cached entry of the row is kept with `after` instead of being
/// dropped (see `engine::hot`): the update matched `before`'s version, and every change of a
/// session row moves its version, so the row held `before` and now holds `after`. Reading the
/// row back (`RETURNING`) instead cost a touch 6 µs of its 68 (CPU, W2 `--idle 61`).
/// `change_session` passes the cache: its writes are mostly touches of sessions being read. The
/// in-writer paths do not: they serve revokes, whose sessions are seldom read again soon.
fn write_changes(
    c: &Connection,
    before: &Session,
    after: &Session,
    event: Option<&NewEvent>,
    read: ReadIn,
    hot: Option<&HotCache>,
) -> StoreResult<()> {
    if before.user_id != after.user_id {
        return write_session(c, after, &attributes_json(after)?, event);
    }
    let written = match hot {
        Some(hot) => {
            let mark = hot.mark();
            let hint = hot.session_row(after.application_id.as_str(), after.id.as_str());
            let mut n = changes_update(before, after, read, hint)?.execute(c)?;
            if n == 0 && hint.is_some() {
                // The rowid is a hint, not a condition: the write stands or falls without it.
                n = changes_update(before, after, read, None)?.execute(c)?;
            }
            (n == 1).then(|| {
                debug_assert_eq!(
                    get_session(c, after.application_id.as_str(), after.id.as_str())
                        .ok()
                        .flatten()
                        .as_ref(),
                    Some(after),
                    "a changed session row does not hold the state its update wrote"
                );
                hot.wrote(mark, after.clone());
            })
        }
        None => (changes_update(before, after, read, None)?.execute(c)? == 1).then_some(()),
    };
    if written.is_some() {
        return after_write(c, after, event);
    }
    // Nothing written: a session read earlier has moved or stopped being live, and the read
    // says which (one read in this transaction cannot have: only a broken invariant gets here).
    match get_session(c, after.application_id.as_str(), after.id.as_str())? {
        Some(_) => Err(StoreError::Conflict),
        None => Err(StoreError::NotFound),
    }
}

/// The UPDATE of [`write_changes`]. With `row`, the session's rowid as the hot-session cache
/// holds it, the row is found by rowid (one search of the table) instead of through the id's
/// index (a second B-tree, whose pages a random touch seldom finds in the writer's cache); the
/// id, application and version conditions stay, so a wrong rowid matches nothing.
fn changes_update(
    before: &Session,
    after: &Session,
    read: ReadIn,
    row: Option<i64>,
) -> StoreResult<Sql> {
    let mut update = crate::sql("UPDATE sessions AS s SET ");
    update
        .assignments(sessiond_store_sql::session_changes(before, after)?)
        .push(" WHERE s.application_id = ")
        .bind(Arg::Str(after.application_id.0.clone()))
        .push(" AND s.id = ")
        .bind(Arg::Str(after.id.0.clone()));
    if let Some(row) = row {
        update.push(" AND s.rowid = ").bind(Arg::I64(row));
    }
    update
        .push(" AND s.version = ")
        .bind(Arg::I64(before.version));
    if read == ReadIn::Earlier {
        update.push(concat!(" AND ", sessiond_store_sql::session_is_live!()));
    }
    Ok(update)
}

/// What follows a session's write in its transaction: an ended session's vault is emptied (it
/// keeps no secrets), and the change's event is appended.
fn after_write(c: &Connection, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
    if s.status.is_terminal() {
        exec(
            c,
            "DELETE FROM session_tokens WHERE application_id = ?1 AND session_id = ?2",
            [s.application_id.as_str(), s.id.as_str()],
        )?;
    }
    crate::events::append(c, event)
}

/// Offers a session just inserted to the hot-session cache, read back with its user by the
/// same query a read runs (on the writer's connection, whose pages the insert has just brought
/// in): a session is usually read soon after it is created, and without this its first read
/// would be a read transaction on a reader whose page cache the insert's commit emptied.
fn read_back_new(c: &Connection, hot: &HotCache, mark: usize, s: &Session) -> StoreResult<()> {
    let found = first(
        c,
        GET_SESSION_WITH_USER,
        [s.application_id.as_str(), s.id.as_str()],
        |r| {
            Ok((
                (session_from_row(r)?, user_at(r, SESSION_COL_COUNT)?),
                get::<i64, _>(r, "user_row")?,
            ))
        },
    )?;
    if let Some((pair, user_row)) = found {
        hot.inserted(mark, pair, user_row);
    }
    Ok(())
}

/// The conditional update of `update_session`, its vault deletion and its event, on the writer.
fn write_session(
    c: &Connection,
    s: &Session,
    attributes: &str,
    event: Option<&NewEvent>,
) -> StoreResult<()> {
    let n = session_params(c, UPDATE_SESSION, s, attributes, &[&(s.version - 1)])
        .map_err(crate::map_err)?;
    if n == 1 {
        return after_write(c, s, event);
    }
    match get_session(c, s.application_id.as_str(), s.id.as_str())? {
        Some(_) => Err(StoreError::Conflict),
        None => Err(StoreError::NotFound),
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
        let attributes = attributes_json(s)?;
        let s = s.clone();
        let event = event.cloned();
        let hot = self.engine.hot_shared();
        self.write(move |c| {
            let more: [&dyn rusqlite::ToSql; 4] =
                [&s.client_id.0, &s.created_at.0, &s.expire_at.0, &s.sso];
            let mark = hot.as_ref().map(|h| h.mark());
            match session_params(c, INSERT_SESSION, &s, &attributes, &more) {
                Ok(_) => {
                    if let (Some(hot), Some(mark)) = (&hot, mark) {
                        read_back_new(c, hot, mark, &s)?;
                    }
                    crate::events::append(c, event.as_ref())
                }
                // The user must belong to the same application; otherwise nothing is inserted.
                Err(e) if insert_refused(&e) => Err(StoreError::NotFound),
                Err(e) => Err(crate::map_err(e)),
            }
        })
        .await
    }

    async fn get_session(&self, app: &AppId, id: &SessionId) -> StoreResult<Option<Session>> {
        if self.engine.hot().is_some() {
            // The same sessions either way (one join, one purge bound); this read also fills
            // the cache, so the next read of the session (a token, a revoke) costs no statement.
            return Ok(self.get_session_with_user(app, id).await?.map(|(s, _)| s));
        }
        self.read(|c| get_session(c, app.as_str(), id.as_str()))
    }

    async fn get_session_with_user(
        &self,
        app: &AppId,
        id: &SessionId,
    ) -> StoreResult<Option<(Session, StoredUser)>> {
        let ticket = match self
            .engine
            .hot()
            .map(|hot| hot.lookup(self.engine.last_commit(), app.as_str(), id.as_str()))
        {
            Some(Lookup::Hit(pair)) => return Ok(Some(*pair)),
            Some(Lookup::Miss(ticket)) => Some(ticket),
            Some(Lookup::Bypass) | None => None,
        };
        let found = self.read(|c| {
            first(c, GET_SESSION_WITH_USER, [app.as_str(), id.as_str()], |r| {
                let pair = (session_from_row(r)?, user_at(r, SESSION_COL_COUNT)?);
                Ok((
                    pair,
                    get::<i64, _>(r, "session_row")?,
                    get::<i64, _>(r, "user_row")?,
                ))
            })
        })?;
        Ok(found.map(|(pair, session_row, user_row)| {
            if let (Some(hot), Some(ticket)) = (self.engine.hot(), ticket) {
                hot.fill(ticket, &pair, session_row, user_row);
            }
            pair
        }))
    }

    async fn list_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<(Vec<Session>, u64)> {
        let mut total = sql(&format!("SELECT COUNT(*) AS n{LIVE_SESSIONS}"));
        session_where(app, filter, now, &mut total);
        let page = session_page(app, filter, limit, offset, now);
        self.read(|c| {
            let n: i64 = total.first(c, |r| get(r, "n"))?.unwrap_or(0);
            Ok((
                page.all(c, session_from_row)?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
    }

    async fn list_sessions_page(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let page = session_page(app, filter, limit, offset, now);
        self.read(|c| page.all(c, session_from_row))
    }

    async fn update_session(&self, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
        let attributes = attributes_json(s)?;
        let (s, event) = (s.clone(), event.cloned());
        self.write(move |c| write_session(c, &s, &attributes, event.as_ref()))
            .await
    }

    async fn change_session(
        &self,
        before: &Session,
        after: &Session,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let (before, after, event) = (before.clone(), after.clone(), event.cloned());
        let hot = self.engine.hot_shared();
        self.write(move |c| {
            let read = ReadIn::Earlier;
            write_changes(c, &before, &after, event.as_ref(), read, hot.as_deref())
        })
        .await
    }

    async fn modify_session(
        &self,
        app: &AppId,
        id: &SessionId,
        step: SessionStep,
    ) -> StoreResult<Option<Modified>> {
        let (app, id) = (app.0.clone(), id.0.clone());
        // On the writer, where the pages the update needs are already in its cache, and no
        // reader connection pays for a cache emptied by the last commit. A missing session and
        // a refusal are answers, not failures: they must not make the writer run its batch again.
        let modified = self
            .write(move |c| {
                let Some(before) = get_session(c, &app, &id)? else {
                    return Ok(Modified::Missing);
                };
                Ok(match step(&before) {
                    SessionChange::Unchanged => Modified::Unchanged(before),
                    SessionChange::Refused(e) => Modified::Refused(e),
                    SessionChange::Write(after, event) => {
                        let read = ReadIn::ThisTransaction;
                        write_changes(c, &before, &after, event.as_ref(), read, None)?;
                        Modified::Written {
                            before,
                            after,
                            evented: event.is_some(),
                        }
                    }
                })
            })
            .await?;
        Ok(Some(modified))
    }

    async fn modify_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        now: Timestamp,
        step: SessionStep,
    ) -> StoreResult<Option<u64>> {
        let page = session_page(app, filter, limit, 0, now);
        // One transaction of the writer, as `modify_session`; one session's failing statement
        // fails the request and the writer undoes all of it.
        let written = self
            .write(move |c| {
                let mut written = 0;
                for before in page.all(c, session_from_row)? {
                    if let SessionChange::Write(after, event) = step(&before) {
                        let read = ReadIn::ThisTransaction;
                        write_changes(c, &before, &after, event.as_ref(), read, None)?;
                        written += 1;
                    }
                }
                Ok(written)
            })
            .await?;
        Ok(Some(written))
    }

    async fn update_sessions(&self, changes: &[(Session, Option<NewEvent>)]) -> StoreResult<()> {
        let changes = changes
            .iter()
            .map(|(s, e)| Ok((s.clone(), attributes_json(s)?, e.clone())))
            .collect::<StoreResult<Vec<_>>>()?;
        // One write request: a failing session fails the request, and the writer undoes all of
        // its statements (see `engine::writer`).
        self.write(move |c| {
            changes
                .iter()
                .try_for_each(|(s, attributes, e)| write_session(c, s, attributes, e.as_ref()))
        })
        .await
    }

    async fn purge_sessions(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            exec(
                c,
                "DELETE FROM sessions WHERE expire_at < ?1 OR abandon_at < ?1 \
                 OR (idle_deadline IS NOT NULL AND idle_deadline < ?1) \
                 OR (status NOT IN ('active', 'pending') AND updated_at < ?1)",
                [cutoff.0],
            )
        })
        .await
    }
}

/// Usable sessions of the application that lapsed after the cursor and by `now`, in lapse order.
const LAPSED: &str = sessiond_store_sql::lapsed_sessions!(
    "min(s.expire_at, s.abandon_at, coalesce(s.idle_deadline, s.expire_at))"
);

/// Each application's lapse-event cursor: (application, lapse time, session id), `None` before
/// the first pass.
fn lapse_cursors(c: &Connection) -> StoreResult<Vec<(String, Option<i64>, String)>> {
    crate::all(c, statements::SELECT_LAPSE_CURSORS, [], |r| {
        Ok((
            get::<String, _>(r, 0)?,
            get::<Option<i64>, _>(r, 1)?,
            get::<String, _>(r, 2)?,
        ))
    })
}

/// Applications with lapse events to write (or a cursor to start): read before taking the writer.
pub(crate) fn lapse_work(c: &Connection, now: Timestamp) -> StoreResult<bool> {
    let cursors = lapse_cursors(c)?;
    for (app, through, after) in cursors {
        let Some(through) = through else {
            return Ok(true);
        };
        if first(
            c,
            LAPSED,
            params![app, through, after, now.0, 1],
            |_| Ok(()),
        )?
        .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes `session.expired` for the sessions that lapsed since each application's cursor.
pub(crate) fn write_lapse_events(c: &Connection, now: Timestamp, limit: u32) -> StoreResult<u64> {
    let cursors = lapse_cursors(c)?;
    let mut written = 0;
    for (app, through, after) in cursors {
        let (to, to_id) = match through {
            None => (now.0, "~".to_owned()),
            Some(through) => {
                let lapsed = crate::all(
                    c,
                    LAPSED,
                    params![app, through, after, now.0, limit],
                    session_from_row,
                )?;
                for s in &lapsed {
                    let e = sessiond_core::events::session_lapsed(s, now);
                    crate::events::append(c, Some(&e))?;
                }
                written += lapsed.len() as u64;
                match lapsed.last() {
                    // A full page: carry on from the last one next time.
                    Some(last) if lapsed.len() == limit as usize => {
                        (last.lapse_time().0, last.id.to_string())
                    }
                    // Everything up to `now` is reported ("~" sorts after every id).
                    _ => (now.0, "~".to_owned()),
                }
            }
        };
        exec(
            c,
            "UPDATE session_purges SET lapse_events_through = ?2, lapse_events_id = ?3 \
             WHERE application_id = ?1",
            params![app, to, to_id],
        )?;
    }
    Ok(written)
}

#[cfg(test)]
mod plans {
    use sessiond_core::application::AppId;
    use sessiond_core::clock::Timestamp;
    use sessiond_core::store::SessionFilter;

    /// Plans are fixed when a statement is prepared (QPSG), whatever the values bound later, so
    /// the request-path statements are checked here: each finds its session by primary key,
    /// and the lapse scan goes by the lapse index. A wrong choice once cost a full walk of the
    /// application's sessions per request (`vault.rs`, `USABLE_SESSIONS_OF_USER`).
    #[tokio::test]
    async fn request_path_statements_find_sessions_by_key() {
        let planner = crate::Planner::new().await;
        let plan = |sql: &str| planner.plan(sql);
        for (name, sql) in [
            ("GET_SESSION", super::GET_SESSION),
            ("GET_SESSION_WITH_USER", super::GET_SESSION_WITH_USER),
            ("UPDATE_SESSION", super::UPDATE_SESSION),
        ] {
            let steps = plan(sql);
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains("SEARCH s USING INDEX sqlite_autoindex_sessions_1 (id=?)")),
                "{name}: {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN")),
                "{name}: {steps:?}"
            );
        }
        // A user's listing (W3) and a client's: a range of that user's or client's index.
        use sessiond_core::ids::{ClientId, UserId};
        let app = AppId("app_x".into());
        for (filter, index) in [
            (
                SessionFilter {
                    user_id: Some(UserId("user_x".into())),
                    ..SessionFilter::default()
                },
                "sessions_by_user",
            ),
            (
                SessionFilter {
                    client_id: Some(ClientId("client_x".into())),
                    ..SessionFilter::default()
                },
                "sessions_by_client",
            ),
        ] {
            let page = super::session_page(&app, &filter, 20, 0, Timestamp(0));
            let steps = plan(&page.text);
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains(&format!("USING INDEX {index}"))),
                "{index}: {steps:?}"
            );
            assert!(
                !steps.iter().any(|s| s.starts_with("SCAN")),
                "{index}: {steps:?}"
            );
        }
        // A touch given the session's rowid by the hot-session cache finds the row by it.
        let settings = sessiond_core::application::AppSettings::defaults_for(&app);
        let before = sessiond_core::session::Session::new(
            &app,
            &settings,
            UserId("user_x".into()),
            ClientId("client_x".into()),
            false,
            Timestamp(0),
        );
        let mut after = before.clone();
        after.last_active_at = Timestamp(60_000);
        after.version += 1;
        for (row, search) in [
            (Some(7), "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"),
            (
                None,
                "SEARCH s USING INDEX sqlite_autoindex_sessions_1 (id=?)",
            ),
        ] {
            let update = super::changes_update(&before, &after, super::ReadIn::Earlier, row)
                .unwrap_or_else(|e| panic!("{e}"));
            let steps = plan(&update.text);
            assert!(steps.iter().any(|s| s == search), "{row:?}: {steps:?}");
            assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
        }
        let steps = plan(super::LAPSED);
        assert!(
            steps
                .iter()
                .any(|s| s.contains("USING INDEX sessions_by_lapse")),
            "{steps:?}"
        );
        assert!(!steps.iter().any(|s| s.starts_with("SCAN")), "{steps:?}");
    }
}
