//! The console's service: operators, their sign-in and console sessions, the audit log.

use std::sync::{Arc, OnceLock};

use serde_json::Map;
use sessiond_crypto::password as pw;
use sessiond_crypto::totp::TotpSecret;

use super::operator::{MAX_SCOPED_APPS, Operator, Record, Role};
use super::{Action, ConsoleSettings};
use crate::application::{AppId, Application};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::login::LoginService;
use crate::session::{Session, SessionStatus};
use crate::store::{ActionFilter, OperatorAction, SessionFilter, Store};
use crate::tenancy::Tenancy;
use crate::user::{NewUser, PasswordCheck, PasswordInput, User, UserPatch, UserSearch};

/// Who is signed in to the console, on which console session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub operator: Operator,
    pub session: Session,
}

/// A new operator.
#[derive(Debug, Clone)]
pub struct NewOperator {
    pub email: String,
    pub password: String,
    pub role: Role,
    /// `None`: every application.
    pub applications: Option<Vec<AppId>>,
    /// Enrol a TOTP second factor now.
    pub totp: bool,
}

/// A change to an operator; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OperatorPatch {
    pub role: Option<Role>,
    pub applications: Option<Option<Vec<AppId>>>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
    /// `Some(true)`: enrol a new TOTP secret (replacing any); `Some(false)`: remove it.
    pub totp: Option<bool>,
    /// Clear failed sign-ins and any lock.
    pub unlock: bool,
}

/// The one answer a failed sign-in gets, whatever failed, so that it tells nothing about which
/// operators exist or which factor was wrong.
fn bad_credentials() -> Error {
    Error::Forbidden("the email, password or code is not correct".into())
}

/// A digest to check when no operator has the email, so that an unknown email costs the same
/// Argon2id work as a known one.
fn decoy_digest() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| pw::hash("sessiond decoy password").unwrap_or_default())
}

pub struct ConsoleService {
    store: Arc<dyn Store>,
    tenancy: Arc<Tenancy>,
    login: Arc<LoginService>,
    settings: ConsoleSettings,
    app: tokio::sync::OnceCell<Application>,
}

impl ConsoleService {
    pub fn new(
        store: Arc<dyn Store>,
        tenancy: Arc<Tenancy>,
        login: Arc<LoginService>,
        settings: ConsoleSettings,
    ) -> Self {
        ConsoleService {
            store,
            tenancy,
            login,
            settings,
            app: tokio::sync::OnceCell::new(),
        }
    }

    pub(super) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn login(&self) -> &Arc<LoginService> {
        &self.login
    }

    pub fn tenancy(&self) -> &Arc<Tenancy> {
        &self.tenancy
    }

    /// The console's own application, created on first use; its session settings follow this
    /// node's [`ConsoleSettings`].
    pub async fn application(&self, now: Timestamp) -> Result<&Application> {
        self.app
            .get_or_try_init(|| async {
                let s = self.settings;
                let apply = move |a: &mut crate::application::AppSettings| {
                    a.inactivity_timeout_secs = Some(s.idle_timeout_secs);
                    a.session_max_lifetime_secs = s.max_lifetime_secs;
                };
                let app = self.tenancy.console_application(apply, now).await?;
                if app.settings.inactivity_timeout_secs == Some(s.idle_timeout_secs)
                    && app.settings.session_max_lifetime_secs == s.max_lifetime_secs
                {
                    return Ok(app);
                }
                self.tenancy
                    .update_application(&app.id, now, |a| {
                        apply(&mut a.settings);
                        Ok(())
                    })
                    .await
            })
            .await
    }

    async fn find_user(&self, app: &Application, email: &str) -> Result<Option<User>> {
        let q = UserSearch {
            emails: vec![email.trim().to_owned()],
            limit: 1,
            ..UserSearch::default()
        };
        let (users, _) = self.login.list_users(app, &q).await?;
        Ok(users.into_iter().find(|u| Record::of(u).is_some()))
    }

    async fn check_scope(&self, apps: &Option<Vec<AppId>>) -> Result<()> {
        let Some(list) = apps else { return Ok(()) };
        if list.is_empty() || list.len() > MAX_SCOPED_APPS {
            return Err(Error::invalid(
                "applications",
                format!("name between 1 and {MAX_SCOPED_APPS} applications, or none for all"),
            ));
        }
        for id in list {
            self.tenancy.get_application(id).await?;
        }
        Ok(())
    }

    pub async fn create_operator(
        &self,
        new: NewOperator,
        now: Timestamp,
    ) -> Result<(Operator, Option<TotpSecret>)> {
        let app = self.application(now).await?;
        self.check_scope(&new.applications).await?;
        let totp = new.totp.then(TotpSecret::generate);
        let record = Record {
            role: new.role,
            applications: new.applications,
            totp: totp.as_ref().map(|t| t.base32().to_string()),
            totp_step: 0,
            failures: 0,
            locked_until: None,
            disabled: false,
        };
        let mut meta = Map::new();
        meta.insert(
            super::operator::RECORD_KEY.to_owned(),
            serde_json::to_value(&record).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let user = self
            .login
            .create_user(
                app,
                NewUser {
                    email_addresses: vec![new.email.trim().to_owned()],
                    private_metadata: Some(meta),
                    password: Some(PasswordInput::Plain {
                        password: new.password,
                        skip_checks: false,
                    }),
                    ..NewUser::default()
                },
                now,
            )
            .await
            .map_err(|e| match e {
                Error::AlreadyExists { .. } => Error::AlreadyExists {
                    field: "operator email".into(),
                },
                other => other,
            })?;
        let op = Operator::from_user(&user)
            .ok_or_else(|| Error::Internal("operator record missing".into()))?;
        Ok((op, totp))
    }

    pub async fn list_operators(&self, now: Timestamp) -> Result<Vec<Operator>> {
        let app = self.application(now).await?;
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let q = UserSearch {
                limit: 500,
                offset,
                ..UserSearch::default()
            };
            let (users, total) = self.login.list_users(app, &q).await?;
            offset += users.len() as u64;
            out.extend(users.iter().filter_map(Operator::from_user));
            if users.is_empty() || offset >= total {
                return Ok(out);
            }
        }
    }

    pub async fn get_operator(&self, email: &str, now: Timestamp) -> Result<Operator> {
        let app = self.application(now).await?;
        self.find_user(app, email)
            .await?
            .as_ref()
            .and_then(Operator::from_user)
            .ok_or(Error::NotFound { kind: "operator" })
    }

    /// The operator with user id `id`, if any (audit entries name operators by id).
    pub async fn operator_by_id(&self, id: &str, now: Timestamp) -> Result<Option<Operator>> {
        let Some(id) = UserId::parse(id) else {
            return Ok(None);
        };
        let app = self.application(now).await?;
        match self.login.get_user(app, &id).await {
            Ok(u) => Ok(Operator::from_user(&u)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `record` as the operator's, with `password` if given.
    async fn save_record(
        &self,
        app: &Application,
        id: &UserId,
        record: &Record,
        password: Option<String>,
        now: Timestamp,
    ) -> Result<User> {
        let mut meta = Map::new();
        meta.insert(
            super::operator::RECORD_KEY.to_owned(),
            serde_json::to_value(record).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let patch = UserPatch {
            private_metadata: Some(meta),
            merge_metadata: true,
            password: password.map(|p| PasswordInput::Plain {
                password: p,
                skip_checks: false,
            }),
            ..UserPatch::default()
        };
        self.login.update_user(app, id, patch, now).await
    }

    pub async fn update_operator(
        &self,
        email: &str,
        patch: OperatorPatch,
        now: Timestamp,
    ) -> Result<(Operator, Option<TotpSecret>)> {
        let app = self.application(now).await?;
        let user = self
            .find_user(app, email)
            .await?
            .ok_or(Error::NotFound { kind: "operator" })?;
        let mut record = Record::of(&user).ok_or(Error::NotFound { kind: "operator" })?;
        if let Some(apps) = &patch.applications {
            self.check_scope(apps).await?;
            record.applications = apps.clone();
        }
        if let Some(r) = patch.role {
            record.role = r;
        }
        if let Some(d) = patch.disabled {
            record.disabled = d;
        }
        let mut secret = None;
        match patch.totp {
            Some(true) => {
                let t = TotpSecret::generate();
                record.totp = Some(t.base32().to_string());
                record.totp_step = 0;
                secret = Some(t);
            }
            Some(false) => record.totp = None,
            None => {}
        }
        if patch.unlock {
            record.failures = 0;
            record.locked_until = None;
        }
        let u = self
            .save_record(app, &user.id, &record, patch.password, now)
            .await?;
        // A disabled operator, or one whose password or second factor changed, is signed out.
        if record.disabled || patch.totp.is_some() {
            self.login.revoke_user_sessions(app, &user.id, now).await?;
        }
        let op =
            Operator::from_user(&u).ok_or_else(|| Error::Internal("operator record".into()))?;
        Ok((op, secret))
    }

    pub async fn delete_operator(&self, email: &str, now: Timestamp) -> Result<Operator> {
        let app = self.application(now).await?;
        let user = self
            .find_user(app, email)
            .await?
            .ok_or(Error::NotFound { kind: "operator" })?;
        let op = Operator::from_user(&user).ok_or(Error::NotFound { kind: "operator" })?;
        self.login.delete_user(app, &user.id, now).await?;
        Ok(op)
    }

    /// Checks an operator's email, password and (when enrolled) TOTP code, and opens a console
    /// session. Consecutive failures lock the account with a doubling back-off; every attempt
    /// is in the audit log.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        code: &str,
        now: Timestamp,
    ) -> Result<ConsoleSession> {
        let app = self.application(now).await?;
        let user = match self.find_user(app, email).await? {
            Some(u) => u,
            None => {
                let candidate = password.to_owned();
                let _ = tokio::task::spawn_blocking(move || {
                    pw::verify(pw::Hasher::Argon2id, decoy_digest(), &candidate)
                })
                .await;
                return Err(bad_credentials());
            }
        };
        let record = Record::of(&user).ok_or_else(bad_credentials)?;
        if let Some(secs) = record.locked_for(now) {
            self.record_action(
                user.id.as_str(),
                Action::SignInRefused,
                None,
                "",
                "locked",
                now,
            )
            .await?;
            return Err(Error::RateLimited {
                retry_after_secs: secs,
            });
        }
        let password_ok = matches!(
            self.login
                .verify_password(app, &user.id, password, now)
                .await?,
            PasswordCheck::Verified
        );
        let step = match &record.totp {
            None => Some(record.totp_step),
            Some(b32) => TotpSecret::parse_base32(b32)
                .and_then(|t| t.verify(code, now.as_millis().div_euclid(1000)))
                .filter(|s| *s > record.totp_step),
        };
        let ok = password_ok && !record.disabled && step.is_some();
        if !ok {
            let failed = record.failed(now);
            self.save_record(app, &user.id, &failed, None, now).await?;
            let why = if record.disabled {
                "disabled"
            } else {
                "bad credentials"
            };
            self.record_action(user.id.as_str(), Action::SignInRefused, None, "", why, now)
                .await?;
            return Err(bad_credentials());
        }
        let fresh = Record {
            failures: 0,
            locked_until: None,
            totp_step: step.unwrap_or(record.totp_step),
            ..record.clone()
        };
        // Most sign-ins change nothing in the record (no failures to clear, no code used).
        let id = user.id.clone();
        let u = if fresh == record {
            user
        } else {
            self.save_record(app, &id, &fresh, None, now).await?
        };
        let session = self.login.create_session(app, &id, false, now).await?;
        self.record_action(
            id.as_str(),
            Action::SignIn,
            None,
            session.id.as_str(),
            "",
            now,
        )
        .await?;
        let operator =
            Operator::from_user(&u).ok_or_else(|| Error::Internal("operator record".into()))?;
        Ok(ConsoleSession { operator, session })
    }

    /// The console session `id` if it is still usable at `now` (recording the activity that
    /// keeps it from idling out); `None` when it is not, or its operator is disabled or gone.
    pub async fn authenticate(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<ConsoleSession>> {
        let app = self.application(now).await?;
        let (s, u) = match self.login.get_session_with_user(app, id).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if s.effective_status(now) != SessionStatus::Active {
            return Ok(None);
        }
        let Some(operator) = Operator::from_user(&u).filter(|o| !o.disabled) else {
            return Ok(None);
        };
        let session = match self.login.touch_session(app, s, now).await {
            Ok(s) => s,
            Err(Error::SessionNotUsable { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ConsoleSession { operator, session }))
    }

    pub async fn sign_out(&self, cs: &ConsoleSession, now: Timestamp) -> Result<()> {
        let app = self.application(now).await?;
        match self.login.revoke_session(app, &cs.session.id, now).await {
            Ok(_) | Err(Error::SessionNotUsable { .. } | Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.record_action(
            cs.operator.id.as_str(),
            Action::SignOut,
            None,
            cs.session.id.as_str(),
            "",
            now,
        )
        .await
    }

    /// Ends every console session of the operator, on every node; returns how many.
    pub async fn sign_out_everywhere(&self, cs: &ConsoleSession, now: Timestamp) -> Result<u64> {
        let app = self.application(now).await?;
        let n = self
            .login
            .revoke_user_sessions(app, &cs.operator.id, now)
            .await?;
        self.record_action(
            cs.operator.id.as_str(),
            Action::SignOutEverywhere,
            None,
            "",
            &format!("{n} sessions"),
            now,
        )
        .await?;
        Ok(n)
    }

    /// The operator's console sessions that are still usable.
    pub async fn operator_sessions(&self, op: &Operator, now: Timestamp) -> Result<Vec<Session>> {
        let app = self.application(now).await?;
        let filter = SessionFilter {
            user_id: Some(op.id.clone()),
            statuses: vec![SessionStatus::Active],
            ..SessionFilter::default()
        };
        Ok(self.login.list_sessions(app, &filter, 50, 0, now).await?.0)
    }

    /// Operator id recorded for actions taken through the CLI (whoever holds the database and
    /// the master key).
    pub const CLI_OPERATOR: &'static str = "cli";

    /// Appends to the audit log.
    pub async fn record_action(
        &self,
        operator: &str,
        action: Action,
        app: Option<&AppId>,
        target: &str,
        detail: &str,
        now: Timestamp,
    ) -> Result<()> {
        let entry = OperatorAction {
            id: sessiond_crypto::ids::new_time_ordered_id("oact", now.as_millis().max(0) as u64),
            at: now,
            operator_id: operator.to_owned(),
            action: action.as_str().to_owned(),
            application_id: app.cloned(),
            target: truncate(target, 200),
            detail: truncate(detail, 500),
        };
        Ok(self.store.record_operator_action(&entry).await?)
    }

    /// Audit entries, newest first. Entries about applications `viewer` cannot see are left out.
    pub async fn audit(
        &self,
        viewer: Option<&Operator>,
        filter: &ActionFilter,
        limit: u32,
    ) -> Result<Vec<OperatorAction>> {
        let mut rows = self
            .store
            .list_operator_actions(filter, limit.clamp(1, 1000))
            .await?;
        if let Some(op) = viewer
            && op.applications.is_some()
        {
            rows.retain(|r| r.application_id.as_ref().is_some_and(|a| op.sees(a)));
        }
        Ok(rows)
    }

    /// The signed value of the console cookie for session `id`.
    pub fn cookie_value(&self, id: &SessionId) -> String {
        format!("{}.{}", id.as_str(), self.mac("cookie", id.as_str()))
    }

    /// The session a cookie names, if its signature holds.
    pub fn session_of_cookie(&self, value: &str) -> Option<SessionId> {
        let (id, mac) = value.rsplit_once('.')?;
        let id = SessionId::parse(id)?;
        sessiond_crypto::ct::eq(self.mac("cookie", id.as_str()).as_bytes(), mac.as_bytes())
            .then_some(id)
    }

    /// The anti-forgery token every form of session `id` carries.
    pub fn csrf_token(&self, id: &SessionId) -> String {
        self.mac("csrf", id.as_str())
    }

    pub fn check_csrf(&self, id: &SessionId, token: &str) -> bool {
        sessiond_crypto::ct::eq(self.csrf_token(id).as_bytes(), token.as_bytes())
    }

    /// Token of the sign-in form, bound to the browser's pre-sign-in cookie `nonce`.
    pub fn sign_in_token(&self, nonce: &str) -> String {
        self.mac("signin", nonce)
    }

    pub fn check_sign_in_token(&self, nonce: &str, token: &str) -> bool {
        nonce.len() >= 16
            && sessiond_crypto::ct::eq(self.sign_in_token(nonce).as_bytes(), token.as_bytes())
    }

    /// Keyed hash under the server pepper, separated by purpose.
    fn mac(&self, purpose: &str, value: &str) -> String {
        let tag = self
            .tenancy
            .vault()
            .hasher()
            .hash(&format!("sessiond-console-{purpose}\u{0}{value}"));
        sessiond_crypto::ids::base62_bytes(&tag)
    }

    /// Whether `id` is the console's own application (never shown among applications).
    pub async fn is_console_application(&self, id: &AppId, now: Timestamp) -> Result<bool> {
        Ok(&self.application(now).await?.id == id)
    }

    /// The applications `op` may see.
    pub async fn applications_for(&self, op: &Operator) -> Result<Vec<Application>> {
        let mut apps = self.tenancy.list_applications().await?;
        apps.retain(|a| op.sees(&a.id));
        Ok(apps)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
