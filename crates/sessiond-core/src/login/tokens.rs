//! Session tokens and JWT-template tokens: minting, refresh and verification.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::session::{Session, SessionStatus};
use crate::template::{self};
use crate::user::User;
use serde_json::{Map, Value, json};
use sessiond_crypto::jwt::{self, SigningKey};

use super::*;

impl LoginService {
    pub(super) fn token_lifetime(expires_in: Option<u64>, default: u64) -> Result<u64> {
        match expires_in {
            None => Ok(default.max(1)),
            Some(v) if (MIN_TOKEN_SECS..=MAX_TOKEN_SECS).contains(&v) => Ok(v),
            Some(_) => Err(Error::invalid(
                "expires_in_seconds",
                format!("must be between {MIN_TOKEN_SECS} and {MAX_TOKEN_SECS}"),
            )),
        }
    }

    /// Mints a v2 session token for an active session.
    pub async fn create_session_token(
        &self,
        app: &Application,
        id: &SessionId,
        expires_in: Option<u64>,
        now: Timestamp,
    ) -> Result<String> {
        let lifetime = Self::token_lifetime(expires_in, app.settings.session_token_lifetime_secs)?;
        let s = self.active_session(app, id, now).await?;
        let iat = now.as_secs();
        let exp = now.plus_secs(lifetime);
        let mut claims = json!({
            "exp": exp.as_secs(),
            "fva": [-1, -1],
            "iat": iat,
            "iss": app.settings.frontend_url,
            "jti": sessiond_crypto::ids::new_id("jti")[4..].to_owned(),
            "nbf": iat - SESSION_TOKEN_NBF_SKEW_SECS as i64,
            "sid": s.id,
            "sts": "active",
            "sub": s.user_id,
            "v": 2,
        });
        if let (Some(actor), Value::Object(m)) = (&s.actor, &mut claims) {
            m.insert("act".into(), actor.clone());
        }
        self.signer
            .sign(
                &app.id,
                &claims,
                &[("cat", Value::from(self.categories.session))],
                exp,
                now,
            )
            .await
    }

    pub(super) fn render_context(user: &User, s: &Session) -> Value {
        let p = &user.profile;
        let full_name = match (&p.first_name, &p.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        };
        json!({
            "user": {
                "id": user.id,
                "external_id": user.profile.external_id,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "full_name": full_name,
                "username": p.username,
                "primary_email_address": p.primary_email(),
                "primary_phone_address": p.primary_phone(),
                "primary_phone_number": p.primary_phone(),
                "email_verified": p.primary_email().is_some(),
                "phone_number_verified": p.primary_phone().is_some(),
                "image_url": p.image_url,
                "profile_image_url": p.image_url,
                "has_image": p.image_url.is_some(),
                "two_factor_enabled": false,
                "created_at": user.created_at.as_secs(),
                "updated_at": user.updated_at.as_secs(),
                "public_metadata": p.public_metadata,
                "unsafe_metadata": p.unsafe_metadata,
            },
            "session": {
                "id": s.id,
                "actor": s.actor,
                "status": s.status.as_str(),
            },
            "org": null,
        })
    }

    /// Mints a token from a JWT template for an active session.
    pub async fn create_template_token(
        &self,
        app: &Application,
        id: &SessionId,
        template_name: &str,
        expires_in: Option<u64>,
        now: Timestamp,
    ) -> Result<String> {
        let t = self
            .store
            .get_template_by_name(&app.id, template_name)
            .await?
            .ok_or_else(|| not_found("jwt_template"))?;
        let t = self.open_template(t)?;
        let lifetime = Self::token_lifetime(expires_in, t.lifetime_secs)?;
        let s = self.active_session(app, id, now).await?;
        let user = self.get_user(app, &s.user_id).await?;
        let mut claims: Map<String, Value> =
            template::render(&t.claims, &Self::render_context(&user, &s));
        let iat = now.as_secs();
        let exp = now.plus_secs(lifetime);
        for (k, v) in [
            ("exp", json!(exp.as_secs())),
            ("iat", json!(iat)),
            ("iss", json!(app.settings.frontend_url)),
            (
                "jti",
                json!(sessiond_crypto::ids::new_id("jti")[4..].to_owned()),
            ),
            ("nbf", json!(iat - t.allowed_clock_skew_secs as i64)),
            ("sub", json!(s.user_id)),
        ] {
            claims.insert(k.to_owned(), v);
        }
        let claims = Value::Object(claims);
        let header = [("cat", Value::from(self.categories.template))];
        match &t.signing_key_sealed {
            Some(sealed) if t.custom_signing_key => {
                let material = self
                    .vault
                    .unseal(&template_context(&t.id), sealed)
                    .map_err(|e| Error::Internal(format!("template key {}: {e}", t.id)))?;
                let key = SigningKey::from_der(t.signing_algorithm, &material)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(key.sign_jwt(None, &header, &claims))
            }
            _ => self.signer.sign(&app.id, &claims, &header, exp, now).await,
        }
    }

    /// The deprecated `/verify`: the session, if `token` is a valid session token of it.
    /// The claims of a session token signed by one of the application's published keys, without
    /// looking at its times.
    pub(super) async fn session_token_claims(
        &self,
        app: &Application,
        token: &str,
        now: Timestamp,
    ) -> Result<Value> {
        let (header, _) =
            jwt::decode_unverified(token).map_err(|_| Error::InvalidToken("malformed"))?;
        if header
            .get("cat")
            .and_then(Value::as_str)
            .is_some_and(|c| c != self.categories.session)
        {
            return Err(Error::InvalidToken("not a session token"));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ks = self.signer.keyset(&app.id, now).await?;
        let jwk = ks
            .jwks
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .ok_or(Error::InvalidToken("unknown key"))?;
        let public = jwt::RsaPublicKey::from_jwk(jwk).ok_or(Error::InvalidToken("unknown key"))?;
        let (_, claims) =
            jwt::verify_rs256(token, &public).map_err(|_| Error::InvalidToken("bad signature"))?;
        Ok(claims)
    }

    /// A new session token for a backend that has a session token of the session (typically
    /// expired: the `__session` cookie a browser sent). The old token must carry a valid
    /// signature of this application and name this session; the session must be active.
    pub async fn refresh_session_token(
        &self,
        app: &Application,
        id: &SessionId,
        expired_token: &str,
        now: Timestamp,
    ) -> Result<String> {
        let claims = self.session_token_claims(app, expired_token, now).await?;
        if claims.get("sid").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(Error::InvalidToken("token belongs to another session"));
        }
        self.create_session_token(app, id, None, now).await
    }

    pub async fn verify_session(
        &self,
        app: &Application,
        id: &SessionId,
        token: &str,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let claims = self.session_token_claims(app, token, now).await?;
        let secs = now.as_secs();
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        if claims.get("sid").and_then(Value::as_str) != Some(s.id.as_str()) {
            return Err(Error::InvalidToken("token belongs to another session"));
        }
        if secs >= exp + 5 || nbf > secs + 5 {
            return Err(Error::InvalidToken("token is expired or not yet valid"));
        }
        if s.effective_status(now) != SessionStatus::Active {
            return Err(Error::InvalidToken("session is not active"));
        }
        Ok(s)
    }
}
