//! Reading stored records back: one decoder per record, used by both backends. Each backend only
//! says how to read one column of its rows ([`Row`]); what the columns mean is decided here once.
//!
//! Sessions and users, on the hot path, are read by column position instead ([`RowAt`]): a
//! name lookup scans the statement's columns for every field, and a session is often read
//! joined with its user in one row.

use serde_json::{Map, Value};
use sessiond_core::Timestamp;
use sessiond_core::apikey::{ApiKey, ApiKeyId};
use sessiond_core::application::{AppId, Application, KeyEnvironment};
use sessiond_core::events::{Event, EventType, NewEvent, Position};
use sessiond_core::ids::{ClientId, EndpointId, SessionId, SigningKeyId, TemplateId, UserId};
use sessiond_core::session::{Session, SessionStatus};
pub use sessiond_core::store::StoreResult;
use sessiond_core::store::{
    ImpersonationEvent, KeyState, OperatorAction, SigningKeyRecord, StoreError, StoredAttachment,
    StoredUser,
};
use sessiond_core::template::JwtTemplate;
use sessiond_core::verification::{Flow, State, Verification, VerificationId};
use sessiond_core::webhooks::{Attempt, Delivery, DeliveryState, Endpoint};

/// One result row, read by column name. Integer columns are BIGINT unless read with
/// [`Row::int32`] (PostgreSQL `INTEGER`); flags are INTEGER 0/1 on SQLite and BOOLEAN on
/// PostgreSQL.
pub trait Row {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn int32(&self, col: &str) -> StoreResult<i32>;
    fn opt_int32(&self, col: &str) -> StoreResult<Option<i32>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn blob(&self, col: &str) -> StoreResult<Vec<u8>>;
    fn opt_blob(&self, col: &str) -> StoreResult<Option<Vec<u8>>>;

    fn time(&self, col: &str) -> StoreResult<Timestamp> {
        self.int(col).map(Timestamp)
    }
    fn opt_time(&self, col: &str) -> StoreResult<Option<Timestamp>> {
        Ok(self.opt_int(col)?.map(Timestamp))
    }
}

/// Implements [`Row`] for a backend's row wrapper (a one-field tuple struct around its driver's
/// row) from the backend's typed column getter `$get(row, col)` and how it reads a flag.
#[macro_export]
macro_rules! impl_row {
    ($ty:ty, $get:path, flag: $flag:ty) => {
        impl $crate::rows::Row for $ty {
            fn text(&self, c: &str) -> $crate::rows::StoreResult<String> {
                $get(self.0, c)
            }
            fn opt_text(&self, c: &str) -> $crate::rows::StoreResult<Option<String>> {
                $get(self.0, c)
            }
            fn int(&self, c: &str) -> $crate::rows::StoreResult<i64> {
                $get(self.0, c)
            }
            fn opt_int(&self, c: &str) -> $crate::rows::StoreResult<Option<i64>> {
                $get(self.0, c)
            }
            fn int32(&self, c: &str) -> $crate::rows::StoreResult<i32> {
                $get(self.0, c)
            }
            fn opt_int32(&self, c: &str) -> $crate::rows::StoreResult<Option<i32>> {
                $get(self.0, c)
            }
            fn flag(&self, c: &str) -> $crate::rows::StoreResult<bool> {
                // INTEGER 0/1 (SQLite) or BOOLEAN (PostgreSQL), as the backend stores flags.
                let v: $flag = $get(self.0, c)?;
                Ok(v != <$flag>::default())
            }
            fn blob(&self, c: &str) -> $crate::rows::StoreResult<Vec<u8>> {
                $get(self.0, c)
            }
            fn opt_blob(&self, c: &str) -> $crate::rows::StoreResult<Option<Vec<u8>>> {
                $get(self.0, c)
            }
        }
    };
}

/// One result row, read by column position (see [`session_at`], [`user_at`]).
pub trait RowAt {
    fn text_at(&self, i: usize) -> StoreResult<String>;
    fn opt_text_at(&self, i: usize) -> StoreResult<Option<String>>;
    fn int_at(&self, i: usize) -> StoreResult<i64>;
    fn opt_int_at(&self, i: usize) -> StoreResult<Option<i64>>;
    fn blob_at(&self, i: usize) -> StoreResult<Vec<u8>>;
    fn opt_blob_at(&self, i: usize) -> StoreResult<Option<Vec<u8>>>;
}

/// Implements [`RowAt`] for a backend's row wrapper from its typed positional getter.
#[macro_export]
macro_rules! impl_row_at {
    ($ty:ty, $get:path) => {
        impl $crate::rows::RowAt for $ty {
            fn text_at(&self, i: usize) -> $crate::rows::StoreResult<String> {
                $get(self.0, i)
            }
            fn opt_text_at(&self, i: usize) -> $crate::rows::StoreResult<Option<String>> {
                $get(self.0, i)
            }
            fn int_at(&self, i: usize) -> $crate::rows::StoreResult<i64> {
                $get(self.0, i)
            }
            fn opt_int_at(&self, i: usize) -> $crate::rows::StoreResult<Option<i64>> {
                $get(self.0, i)
            }
            fn blob_at(&self, i: usize) -> $crate::rows::StoreResult<Vec<u8>> {
                $get(self.0, i)
            }
            fn opt_blob_at(&self, i: usize) -> $crate::rows::StoreResult<Option<Vec<u8>>> {
                $get(self.0, i)
            }
        }
    };
}

/// A user's columns, in the order [`user_at`] reads them, for `concat!` into statements.
#[macro_export]
macro_rules! user_cols {
    () => {
        "u.id, u.application_id, u.external_id, u.profile, u.created_at, u.updated_at, u.version"
    };
}

/// A session's columns, in the order [`session_at`] reads them, for `concat!` into statements.
#[macro_export]
macro_rules! session_cols {
    () => {
        "s.id, s.application_id, s.user_id, s.client_id, s.status, s.actor, s.activity, \
     s.attributes, s.last_active_organization_id, s.created_at, s.updated_at, s.last_active_at, \
     s.expire_at, s.abandon_at, s.idle_deadline, s.version, s.sso"
    };
}

pub const USER_COLS: &str = user_cols!();
pub const SESSION_COLS: &str = session_cols!();
/// Number of columns in [`SESSION_COLS`]: where a joined user's columns start.
pub const SESSION_COL_COUNT: usize = 17;

/// A user from [`USER_COLS`] starting at column `at`.
pub fn user_at(r: &impl RowAt, at: usize) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(r.text_at(at)?),
        application_id: AppId(r.text_at(at + 1)?),
        external_id: r.opt_text_at(at + 2)?,
        profile_sealed: r.blob_at(at + 3)?,
        identifiers: Vec::new(),
        created_at: Timestamp(r.int_at(at + 4)?),
        updated_at: Timestamp(r.int_at(at + 5)?),
        version: r.int_at(at + 6)?,
    })
}

/// A session from a row that starts with [`SESSION_COLS`].
pub fn session_at(r: &impl RowAt) -> StoreResult<Session> {
    let status = r.text_at(4)?;
    Ok(Session {
        id: SessionId(r.text_at(0)?),
        application_id: AppId(r.text_at(1)?),
        user_id: UserId(r.text_at(2)?),
        client_id: ClientId(r.text_at(3)?),
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        actor: r
            .opt_text_at(5)?
            .map(|a| json::<Value>("session actor", &a))
            .transpose()?,
        activity: r.opt_blob_at(6)?,
        sso: r.opt_blob_at(16)?,
        attributes: crate::columns::attributes_of(&r.text_at(7)?)?,
        last_active_organization_id: r.opt_text_at(8)?,
        created_at: Timestamp(r.int_at(9)?),
        updated_at: Timestamp(r.int_at(10)?),
        last_active_at: Timestamp(r.int_at(11)?),
        expire_at: Timestamp(r.int_at(12)?),
        abandon_at: Timestamp(r.int_at(13)?),
        idle_deadline: r.opt_int_at(14)?.map(Timestamp),
        version: r.int_at(15)?,
    })
}

/// A stored value that does not decode: the database holds something this version never wrote.
pub fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("stored {what} cannot be read: {e}"))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// An application from a row that selected [`app_cols!`](crate::app_cols).
pub fn application(r: &impl Row) -> StoreResult<Application> {
    let environment = match r.text("a_environment")?.as_str() {
        "test" => KeyEnvironment::Test,
        "live" => KeyEnvironment::Live,
        other => return Err(corrupt("application environment", other)),
    };
    let settings = crate::settings::from_json(&r.text("a_settings")?)?;
    Ok(Application {
        id: AppId(r.text("a_id")?),
        name: r.text("a_name")?,
        environment,
        settings,
        created_at: r.time("a_created_at")?,
        updated_at: r.time("a_updated_at")?,
        version: r.int("a_version")?,
    })
}

/// A secret key's record from a row that selected [`key_cols!`](crate::key_cols).
pub fn api_key(r: &impl Row) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId(r.text("k_id")?),
        application_id: AppId(r.text("k_application_id")?),
        hash: r
            .blob("k_hash")?
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("key hash", "wrong length"))?,
        hint: r.text("k_hint")?,
        created_at: r.time("k_created_at")?,
        revoked_at: r.opt_time("k_revoked_at")?,
    })
}

/// The columns of an application (prefixed `a_`), for `concat!` into statements.
#[macro_export]
macro_rules! app_cols {
    () => {
        "a.id AS a_id, a.name AS a_name, a.environment AS a_environment, a.settings AS a_settings, \
     a.created_at AS a_created_at, a.updated_at AS a_updated_at, a.version AS a_version"
    };
}

/// The columns of a secret key (prefixed `k_`), for `concat!` into statements.
#[macro_export]
macro_rules! key_cols {
    () => {
        "k.id AS k_id, k.application_id AS k_application_id, k.hash AS k_hash, \
     k.hint AS k_hint, k.created_at AS k_created_at, k.revoked_at AS k_revoked_at"
    };
}

pub fn signing_key(r: &impl Row) -> StoreResult<SigningKeyRecord> {
    let state = r.text("state")?;
    Ok(SigningKeyRecord {
        kid: SigningKeyId(r.text("kid")?),
        application_id: AppId(r.text("application_id")?),
        algorithm: r.text("algorithm")?,
        private_sealed: r.blob("private_key")?,
        public_jwk: r.text("public_jwk")?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("key state", &state))?,
        created_at: r.time("created_at")?,
        activates_at: r.time("activates_at")?,
        retired_at: r.opt_time("retired_at")?,
        publish_until: r.time("publish_until")?,
        version: r.int("version")?,
    })
}

/// A JWT template's columns (table alias `t`), as a macro so that statements can `concat!` it.
#[macro_export]
macro_rules! template_cols {
    () => {
        "t.id, t.application_id, t.name, t.claims, t.lifetime, t.allowed_clock_skew, \
         t.custom_signing_key, t.signing_algorithm, t.signing_key, t.created_at, t.updated_at, \
         t.version, t.claims_sealed"
    };
}

pub fn template(r: &impl Row) -> StoreResult<JwtTemplate> {
    let claims: Map<String, Value> = json("template claims", &r.text("claims")?)?;
    let alg = r.text("signing_algorithm")?;
    Ok(JwtTemplate {
        id: TemplateId(r.text("id")?),
        application_id: AppId(r.text("application_id")?),
        name: r.text("name")?,
        claims,
        lifetime_secs: u64::try_from(r.int("lifetime")?).unwrap_or(60),
        allowed_clock_skew_secs: u64::try_from(r.int("allowed_clock_skew")?).unwrap_or(5),
        custom_signing_key: r.int("custom_signing_key")? != 0,
        signing_algorithm: sessiond_crypto::jwt::Algorithm::parse(&alg)
            .ok_or_else(|| corrupt("template algorithm", &alg))?,
        signing_key_sealed: r.opt_blob("signing_key")?,
        claims_sealed: r.opt_blob("claims_sealed")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        version: r.int("version")?,
    })
}

/// An impersonation audit entry's columns.
pub const IMPERSONATION_COLS: &str =
    "id, application_id, session_id, actor_user_id, target_user_id, kind, at";

pub fn impersonation(r: &impl Row) -> StoreResult<ImpersonationEvent> {
    Ok(ImpersonationEvent {
        id: r.text("id")?,
        application_id: AppId(r.text("application_id")?),
        session_id: SessionId(r.text("session_id")?),
        actor_user_id: UserId(r.text("actor_user_id")?),
        target_user_id: UserId(r.text("target_user_id")?),
        kind: r.text("kind")?,
        at: r.time("at")?,
    })
}

/// An event at `position` (each backend knows how its rows say where they stand).
pub fn event(r: &impl Row, position: Position) -> StoreResult<Event> {
    let kind = r.text("type")?;
    Ok(Event {
        position,
        event: NewEvent {
            id: r.text("id")?,
            application_id: AppId(r.text("application_id")?),
            kind: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
            subject: r.text("subject")?,
            occurred_at: r.time("occurred_at")?,
            data: json("event data", &r.text("data")?)?,
        },
    })
}

/// A webhook endpoint's columns.
pub const ENDPOINT_COLS: &str = "id, application_id, url, description, event_types, enabled, \
     secret, previous_secret, previous_until, created_at, updated_at, version";

pub fn endpoint(r: &impl Row) -> StoreResult<Endpoint> {
    let types = r.text("event_types")?;
    Ok(Endpoint {
        id: EndpointId(r.text("id")?),
        application_id: AppId(r.text("application_id")?),
        url: r.text("url")?,
        description: r.text("description")?,
        event_types: crate::columns::event_types_of(&types)
            .map_err(|t| corrupt("endpoint event type", t))?,
        enabled: r.flag("enabled")?,
        secret_sealed: r.blob("secret")?,
        previous_secret_sealed: r.opt_blob("previous_secret")?,
        previous_until: r.opt_time("previous_until")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        version: r.int("version")?,
    })
}

pub fn delivery(r: &impl Row) -> StoreResult<Delivery> {
    let state = r.text("state")?;
    let kind = r.text("type")?;
    Ok(Delivery {
        endpoint_id: EndpointId(r.text("endpoint_id")?),
        event_id: r.text("event_id")?,
        event_type: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
        occurred_at: r.time("occurred_at")?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("delivery state", &state))?,
        attempts: u32_of(r.int32("attempts")?),
        next_at: r.opt_time("next_at")?,
        last_status: r
            .opt_int32("last_status")?
            .and_then(|s| u16::try_from(s).ok()),
        updated_at: r.time("updated_at")?,
    })
}

pub fn attempt(r: &impl Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: r.text("id")?,
        endpoint_id: EndpointId(r.text("endpoint_id")?),
        event_id: r.text("event_id")?,
        number: u32_of(r.int32("number")?),
        at: r.time("at")?,
        succeeded: r.flag("succeeded")?,
        response_code: r
            .opt_int32("response_code")?
            .and_then(|s| u16::try_from(s).ok()),
        latency_ms: u32_of(r.int32("latency_ms")?),
        response_excerpt: r.text("response_excerpt")?,
        error: r.opt_text("error")?,
    })
}

pub fn operator_action(r: &impl Row) -> StoreResult<OperatorAction> {
    Ok(OperatorAction {
        id: r.text("id")?,
        at: r.time("at")?,
        operator_id: r.text("operator_id")?,
        action: r.text("action")?,
        application_id: r.opt_text("application_id")?.map(AppId),
        target: r.text("target")?,
        detail: r.text("detail")?,
    })
}

/// A verification session's columns.
pub const VERIFICATION_COLS: &str = "id, application_id, flow, state, fail_reason, provider, \
    sub_provider, options, step, results_key_hash, results_public_key, input_sealed, \
    results_sealed, browser_binding, created_at, updated_at, expires_at, finished_at, \
    redacted_at, version";

fn arr32(v: Vec<u8>, what: &str) -> StoreResult<[u8; 32]> {
    v.try_into().map_err(|_| corrupt(what, "not 32 bytes"))
}

pub fn verification(r: &impl Row) -> StoreResult<Verification> {
    let state = r.text("state")?;
    let reason = r.opt_text("fail_reason")?;
    Ok(Verification {
        id: VerificationId(r.text("id")?),
        application_id: AppId(r.text("application_id")?),
        flow: Flow::parse(&r.text("flow")?)
            .ok_or_else(|| corrupt("verification flow", "invalid value"))?,
        state: State::parse(&state, reason.as_deref())
            .ok_or_else(|| corrupt("verification state", &state))?,
        provider: r.opt_text("provider")?,
        sub_provider: r.opt_text("sub_provider")?,
        options: json("verification options", &r.text("options")?)?,
        step: json("verification step", &r.text("step")?)?,
        results_key_hash: arr32(r.blob("results_key_hash")?, "key hash")?,
        results_public_key: arr32(r.blob("results_public_key")?, "public key")?,
        input_sealed: r.opt_blob("input_sealed")?,
        results_sealed: r.opt_blob("results_sealed")?,
        browser_binding: r
            .opt_blob("browser_binding")?
            .map(|b| arr32(b, "binding"))
            .transpose()?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        expires_at: r.time("expires_at")?,
        finished_at: r.opt_time("finished_at")?,
        redacted_at: r.opt_time("redacted_at")?,
        version: r.int("version")?,
    })
}

pub fn attachment(r: &impl Row) -> StoreResult<StoredAttachment> {
    Ok(StoredAttachment {
        id: r.text("id")?,
        application_id: AppId(r.text("application_id")?),
        verification_id: VerificationId(r.text("verification_id")?),
        sealed: r.blob("sealed")?,
        created_at: r.time("created_at")?,
    })
}
