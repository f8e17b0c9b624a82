//! Statements both backends run alike, written once with SQLite's `?N` placeholders;
//! PostgreSQL's copies are made at compile time by [`dollar!`](crate::dollar).

/// A column that holds sealed values: its kind (also the sealing-context prefix), a page query
/// (`?1` = exclusive lower bound on the id, `?2` = limit) and a compare-and-swap update (`?1` =
/// new value, `?2` = id, `?3` = old value).
pub struct SealedSource {
    pub kind: &'static str,
    pub page: &'static str,
    pub replace: &'static str,
}

/// The sources a page of sealed values still has to read, in order, each with the exclusive
/// lower bound on its ids: a page resumes after `after` (the last value the previous page
/// returned), so sources that sort before its kind are done and its own kind resumes after its id.
pub fn sealed_plan<'a>(
    sources: &'static [SealedSource],
    after: Option<&'a sessiond_core::store::SealedRef>,
) -> impl Iterator<Item = (&'static SealedSource, &'a str)> {
    sources.iter().filter_map(move |src| match after {
        Some(a) if a.kind.as_str() > src.kind => None,
        Some(a) if a.kind == src.kind => Some((src, a.id.as_str())),
        _ => Some((src, "")),
    })
}

/// How many more values a page of `limit` may take after `got`; `None` when it is full.
pub fn page_room(limit: u32, got: usize) -> Option<i64> {
    let room = i64::from(limit) - i64::try_from(got).unwrap_or(i64::MAX);
    (room > 0).then_some(room)
}

macro_rules! sealed_sources {
    ($($kind:literal => $page:literal, $replace:literal;)*) => {
        /// Every column that holds sealed values, kinds in sort order, numbered for SQLite.
        pub const SEALED_SOURCES: &[SealedSource] = &[$(SealedSource {
            kind: $kind,
            page: $page,
            replace: $replace,
        }),*];
        /// [`SEALED_SOURCES`] numbered for PostgreSQL.
        pub const SEALED_SOURCES_PG: &[SealedSource] = &[$(SealedSource {
            kind: $kind,
            page: $crate::dollar!($page),
            replace: $crate::dollar!($replace),
        }),*];
    };
}

sealed_sources! {
    "jwt_template_claims" =>
        "SELECT id, claims_sealed AS blob FROM jwt_templates WHERE claims_sealed IS NOT NULL \
         AND id > ?1 ORDER BY id LIMIT ?2",
        "UPDATE jwt_templates SET claims_sealed = ?1 WHERE id = ?2 AND claims_sealed = ?3";
    "jwt_templates" =>
        "SELECT id, signing_key AS blob FROM jwt_templates WHERE signing_key IS NOT NULL \
         AND id > ?1 ORDER BY id LIMIT ?2",
        "UPDATE jwt_templates SET signing_key = ?1 WHERE id = ?2 AND signing_key = ?3";
    "meta" =>
        "SELECT name AS id, value AS blob FROM meta WHERE sealed = 1 AND name > ?1 \
         ORDER BY name LIMIT ?2",
        "UPDATE meta SET value = ?1 WHERE name = ?2 AND value = ?3 AND sealed = 1";
    // A session row's version moves with every change of it, re-sealing included: SQLite's
    // hot-session cache takes a row's new state from the update that matched its version.
    "session_sso" =>
        "SELECT id, sso AS blob FROM sessions WHERE sso IS NOT NULL AND id > ?1 \
         ORDER BY id LIMIT ?2",
        "UPDATE sessions SET sso = ?1, version = version + 1 WHERE id = ?2 AND sso = ?3";
    "session_tokens" =>
        "SELECT id, value AS blob FROM session_tokens WHERE id > ?1 ORDER BY id LIMIT ?2",
        "UPDATE session_tokens SET value = ?1 WHERE id = ?2 AND value = ?3";
    "sessions" =>
        "SELECT id, activity AS blob FROM sessions WHERE activity IS NOT NULL AND id > ?1 \
         ORDER BY id LIMIT ?2",
        "UPDATE sessions SET activity = ?1, version = version + 1 WHERE id = ?2 AND activity = ?3";
    "signing_keys" =>
        "SELECT kid AS id, private_key AS blob FROM signing_keys WHERE kid > ?1 \
         ORDER BY kid LIMIT ?2",
        "UPDATE signing_keys SET private_key = ?1 WHERE kid = ?2 AND private_key = ?3";
    "users" =>
        "SELECT id, profile AS blob FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
        "UPDATE users SET profile = ?1 WHERE id = ?2 AND profile = ?3";
}

// ---- Applications, keys and meta ----

pub const INSERT_API_KEY: &str = "INSERT INTO api_keys (id, application_id, hash, hint, \
     created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub const INSERT_META: &str = "INSERT INTO meta (name, value, sealed) VALUES (?1, ?2, ?3) ON \
     CONFLICT (name) DO NOTHING";
pub const INSERT_APPLICATION: &str = "INSERT INTO applications (id, name, environment, settings, \
     created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
pub const INSERT_SESSION_PURGES: &str = "INSERT INTO session_purges (application_id, \
     lapsed_through, swept_through) VALUES (?1, -9223372036854775807, -9223372036854775807)";
pub const UPDATE_APPLICATION: &str = "UPDATE applications SET name = ?1, settings = ?2, \
     updated_at = ?3, version = ?4 WHERE id = ?5 AND version = ?6";
pub const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND \
     application_id = ?3 AND revoked_at IS NULL";
pub const DELETE_REVOKED_API_KEYS: &str = "DELETE FROM api_keys WHERE revoked_at IS NOT NULL AND \
     revoked_at < ?1";

// ---- Users, signing keys, templates and their upgrades ----

pub const SELECT_LAPSE_CURSORS: &str = "SELECT application_id, lapse_events_through, \
     lapse_events_id FROM session_purges";
pub const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, application_id, algorithm, \
     private_key, public_jwk, state, created_at, activates_at, retired_at, publish_until, \
     version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
pub const SELECT_SIGNING_KEYS: &str = "SELECT kid, application_id, algorithm, private_key, \
     public_jwk, state, created_at, activates_at, retired_at, publish_until, version FROM \
     signing_keys WHERE application_id = ?1 ORDER BY created_at, kid";
pub const RETIRE_SIGNING_KEY: &str = "UPDATE signing_keys SET state = 'retired', retired_at = ?1, \
     version = version + 1 WHERE application_id = ?2 AND state = 'current'";
pub const ACTIVATE_SIGNING_KEY: &str = "UPDATE signing_keys SET state = 'current', activates_at = \
     ?1, version = version + 1 WHERE application_id = ?2 AND kid = ?3 AND state = 'next'";
pub const DELETE_RETIRED_SIGNING_KEYS: &str = "DELETE FROM signing_keys WHERE application_id = ?1 \
     AND state = 'retired' AND publish_until < ?2";
pub const DELETE_TEMPLATE: &str = "DELETE FROM jwt_templates WHERE application_id = ?1 AND id = \
     ?2";
pub const SELECT_TEMPLATE: &str = concat!(
    "SELECT ",
    crate::template_cols!(),
    " FROM jwt_templates t WHERE t.application_id = ?1 AND t.id = ?2"
);
pub const SELECT_TEMPLATE_BY_NAME: &str = concat!(
    "SELECT ",
    crate::template_cols!(),
    " FROM jwt_templates t WHERE t.application_id = ?1 AND t.name = ?2"
);
/// Newest first; `?2` limit, `?3` offset.
pub const LIST_TEMPLATES: &str = concat!(
    "SELECT ",
    crate::template_cols!(),
    " FROM jwt_templates t WHERE t.application_id = ?1 \
     ORDER BY t.created_at DESC, t.id DESC LIMIT ?2 OFFSET ?3"
);
pub const COUNT_TEMPLATES: &str =
    "SELECT COUNT(*) AS n FROM jwt_templates WHERE application_id = ?1";
/// Templates whose claims are still stored in the clear, after id `?1`, at most `?2`.
pub const TEMPLATES_WITH_CLEAR_CLAIMS: &str = concat!(
    "SELECT ",
    crate::template_cols!(),
    " FROM jwt_templates t WHERE t.claims_sealed IS NULL AND t.claims <> '{}' AND t.id > ?1 \
     ORDER BY t.id LIMIT ?2"
);
/// The insert and the update bind `?1`–`?12` alike: the id and application, then every field an
/// update may write. `?13` is the creation time in the insert and the replaced version in the
/// update.
pub const INSERT_TEMPLATE: &str = "INSERT INTO jwt_templates (id, application_id, name, claims, \
     lifetime, allowed_clock_skew, custom_signing_key, signing_algorithm, signing_key, updated_at, \
     version, claims_sealed, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
/// See [`INSERT_TEMPLATE`].
pub const UPDATE_TEMPLATE: &str = "UPDATE jwt_templates SET name = ?3, claims = ?4, lifetime = ?5, \
     allowed_clock_skew = ?6, custom_signing_key = ?7, signing_algorithm = ?8, signing_key = ?9, \
     updated_at = ?10, version = ?11, claims_sealed = ?12 \
     WHERE id = ?1 AND application_id = ?2 AND version = ?13";
/// Moves a session's SSO details from its attributes under seal; its version moves, as with
/// every change of a session row.
pub const SEAL_SESSION_SSO: &str = "UPDATE sessions SET sso = ?1, attributes = ?2, \
     version = version + 1 WHERE \
     application_id = ?3 AND id = ?4 AND version = ?5 AND sso IS NULL";
pub const INSERT_USER: &str = "INSERT INTO users (id, application_id, external_id, profile, \
     created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
pub const UPDATE_USER: &str = "UPDATE users SET external_id = ?1, profile = ?2, updated_at = ?3, \
     version = ?4 WHERE application_id = ?5 AND id = ?6 AND version = ?7";
pub const DELETE_USER_IDENTIFIERS: &str = "DELETE FROM user_identifiers WHERE user_id = ?1";

// ---- Session deletion, the token vault, impersonation ----

pub const DELETE_SESSION_SWEEP: &str = "DELETE FROM session_sweeps WHERE application_id = ?1 AND \
     user_id = ?2 AND below = ?3";
pub const ADVANCE_SWEPT_THROUGH: &str = "UPDATE session_purges SET swept_through = ?3 WHERE \
     application_id = ?1 AND application_id = ?2 AND lapsed_through = ?3";
pub const DELETE_SESSION_TOKEN_BY_ID: &str = "DELETE FROM session_tokens WHERE session_id = ?1 \
     AND token_id = ?2";
pub const DELETE_SESSION_TOKEN: &str = "DELETE FROM session_tokens WHERE application_id = ?1 AND \
     session_id = ?2 AND token_id = ?3";
pub const DELETE_SESSION_TOKENS: &str = "DELETE FROM session_tokens WHERE application_id = ?1 AND \
     session_id = ?2";
pub const INSERT_IMPERSONATION: &str = "INSERT INTO impersonation_events (id, application_id, \
     session_id, actor_user_id, target_user_id, kind, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// ---- Identity verification ----

pub const INSERT_ATTACHMENT: &str = "INSERT INTO verification_attachments (id, application_id, \
     verification_id, sealed, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
pub const DELETE_ATTACHMENTS: &str = "DELETE FROM verification_attachments WHERE application_id = \
     ?1 AND verification_id = ?2";
pub const COUNT_VERIFICATIONS: &str = "SELECT COUNT(*) FROM verification_sessions WHERE \
     application_id = ?1";
pub const SELECT_ATTACHMENT: &str = "SELECT id, application_id, verification_id, sealed, \
     created_at FROM verification_attachments WHERE application_id = ?1 AND id = ?2";
pub const EXPIRE_VERIFICATIONS: &str = "UPDATE verification_sessions SET state = 'expired', \
     state_rank = ?1, fail_reason = NULL, finished_at = expires_at, updated_at = expires_at, \
     input_sealed = NULL, step = ?2, version = version + 1 WHERE finished_at IS NULL AND \
     expires_at <= ?3";

// ---- The outbox ----

pub const DELETE_ATTEMPTS_BEFORE: &str = "DELETE FROM webhook_attempts WHERE endpoint_id IN \
     (SELECT id FROM webhook_endpoints) AND at < ?1";

// ---- Webhooks ----

pub const UPDATE_DELIVERY: &str = "UPDATE webhook_deliveries SET state = ?1, attempts = ?2, \
     next_at = ?3, lease_holder = NULL, lease_until = 0, last_status = ?4, updated_at = ?5 WHERE \
     endpoint_id = ?6 AND event_id = ?7 AND lease_holder = ?8";
/// Binds `?1`–`?11` as each backend's endpoint insert does (the id and application, then every
/// field an update may write); `?12` is the replaced version.
pub const UPDATE_ENDPOINT: &str = "UPDATE webhook_endpoints SET url = ?3, description = ?4, \
     event_types = ?5, enabled = ?6, secret = ?7, previous_secret = ?8, previous_until = ?9, \
     updated_at = ?10, version = ?11 WHERE id = ?1 AND application_id = ?2 AND version = ?12";
pub const DELETE_ENDPOINT: &str = "DELETE FROM webhook_endpoints WHERE application_id = ?1 AND id \
     = ?2";
pub const SELECT_EVENT_TYPE: &str = "SELECT id, type FROM events WHERE application_id = ?1 AND id \
     = ?2";

// ---- Job-run claims ----

pub const CLAIM_JOB_RUN: &str = "INSERT INTO job_runs (job, slot, holder, started_at) VALUES (?1, \
     ?2, ?3, ?4) ON CONFLICT (job, slot) DO NOTHING";
pub const FINISH_JOB_RUN: &str = "UPDATE job_runs SET finished_at = ?1, outcome = ?2 WHERE job = \
     ?3 AND slot = ?4";
pub const DELETE_JOB_RUNS_BEFORE: &str = "DELETE FROM job_runs WHERE started_at < ?1";
