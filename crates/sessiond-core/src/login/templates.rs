//! JWT templates: claims and custom keys, both sealed.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::TemplateId;
use crate::retry::{Attempt, retry_optimistic};
use crate::store::StoreError;
use crate::template::{self, JwtTemplate, TemplateInput};
use serde_json::Map;
use sessiond_crypto::jwt::{Algorithm, SigningKey};

use super::*;

impl LoginService {
    pub(super) fn seal_template_key(
        &self,
        t: &mut JwtTemplate,
        alg: Algorithm,
        key: &str,
    ) -> Result<()> {
        let (_, material) = SigningKey::from_pem_or_secret(alg, key)
            .map_err(|e| Error::invalid("signing_key", e.to_string()))?;
        t.signing_key_sealed = Some(self.vault.seal(&template_context(&t.id), &material));
        Ok(())
    }

    /// Applies `input` to `t`, validating the result.
    pub(super) fn apply_template_input(
        &self,
        t: &mut JwtTemplate,
        input: TemplateInput,
    ) -> Result<()> {
        if let Some(name) = input.name {
            template::validate_name(&name)?;
            t.name = name;
        }
        if let Some(claims) = input.claims {
            template::validate_claims(&claims)?;
            t.claims = claims;
        }
        if let Some(l) = input.lifetime {
            let l = l.unwrap_or(template::DEFAULT_LIFETIME_SECS);
            template::validate_lifetime(l)?;
            t.lifetime_secs = l;
        }
        if let Some(s) = input.allowed_clock_skew {
            let s = s.unwrap_or(template::DEFAULT_CLOCK_SKEW_SECS);
            template::validate_skew(s)?;
            t.allowed_clock_skew_secs = s;
        }
        let custom = input.custom_signing_key.unwrap_or(t.custom_signing_key);
        let alg = match input.signing_algorithm {
            Some(Some(a)) => Some(Algorithm::parse(&a).ok_or_else(|| {
                Error::invalid("signing_algorithm", format!("`{a}` is not supported"))
            })?),
            _ => None,
        };
        if custom {
            let alg = alg.unwrap_or(t.signing_algorithm);
            match input.signing_key {
                Some(Some(k)) => self.seal_template_key(t, alg, &k)?,
                _ if t.signing_key_sealed.is_some() && alg == t.signing_algorithm => {}
                _ => {
                    return Err(Error::invalid(
                        "signing_key",
                        "is required with a custom signing key",
                    ));
                }
            }
            t.signing_algorithm = alg;
        } else {
            t.signing_key_sealed = None;
            t.signing_algorithm = Algorithm::RS256;
        }
        t.custom_signing_key = custom;
        Ok(())
    }

    pub async fn create_template(
        &self,
        app: &Application,
        input: TemplateInput,
        now: Timestamp,
    ) -> Result<JwtTemplate> {
        if input.name.is_none() {
            return Err(Error::invalid("name", "is required"));
        }
        if input.claims.is_none() {
            return Err(Error::invalid("claims", "is required"));
        }
        let mut t = JwtTemplate {
            id: TemplateId::new(),
            application_id: app.id.clone(),
            name: String::new(),
            claims: Map::new(),
            claims_sealed: None,
            lifetime_secs: template::DEFAULT_LIFETIME_SECS,
            allowed_clock_skew_secs: template::DEFAULT_CLOCK_SKEW_SECS,
            custom_signing_key: false,
            signing_algorithm: Algorithm::RS256,
            signing_key_sealed: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.apply_template_input(&mut t, input)?;
        self.store
            .insert_template(&self.seal_template(&t)?)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::AlreadyExists {
                    field: "name".into(),
                },
                other => other.into(),
            })?;
        Ok(t)
    }

    /// What a store gets: the claims sealed, none in clear.
    pub(super) fn seal_template(&self, t: &JwtTemplate) -> Result<JwtTemplate> {
        let json = serde_json::to_vec(&t.claims).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(JwtTemplate {
            claims: Map::new(),
            claims_sealed: Some(self.vault.seal(&template_claims_context(&t.id), &json)),
            ..t.clone()
        })
    }

    pub(super) fn open_template(&self, mut t: JwtTemplate) -> Result<JwtTemplate> {
        if let Some(sealed) = t.claims_sealed.take() {
            let raw = self
                .vault
                .unseal(&template_claims_context(&t.id), &sealed)
                .map_err(|e| Error::Internal(format!("template claims {}: {e}", t.id)))?;
            t.claims = serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(t)
    }

    pub async fn get_template(&self, app: &Application, id: &TemplateId) -> Result<JwtTemplate> {
        let t = self
            .store
            .get_template(&app.id, id)
            .await?
            .ok_or_else(|| not_found("jwt_template"))?;
        self.open_template(t)
    }

    pub async fn list_templates(
        &self,
        app: &Application,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<JwtTemplate>, u64)> {
        let (rows, total) = self.store.list_templates(&app.id, limit, offset).await?;
        let list = rows
            .into_iter()
            .map(|t| self.open_template(t))
            .collect::<Result<Vec<_>>>()?;
        Ok((list, total))
    }

    pub async fn update_template(
        &self,
        app: &Application,
        id: &TemplateId,
        input: TemplateInput,
        now: Timestamp,
    ) -> Result<JwtTemplate> {
        let input = &input;
        retry_optimistic(|| async move {
            let mut t = self.get_template(app, id).await?;
            self.apply_template_input(&mut t, input.clone())?;
            t.version += 1;
            t.updated_at = now.max(t.updated_at);
            match self.store.update_template(&self.seal_template(&t)?).await {
                Err(StoreError::Conflict) => {
                    // Either a concurrent update or a taken name; a re-read tells which.
                    let fresh = self.get_template(app, id).await?;
                    if fresh.version == t.version - 1 {
                        return Err(Error::AlreadyExists {
                            field: "name".into(),
                        });
                    }
                    Ok(Attempt::Raced)
                }
                Err(StoreError::NotFound) => Err(not_found("jwt_template")),
                written => Attempt::of_write(written, t),
            }
        })
        .await
    }

    pub async fn delete_template(&self, app: &Application, id: &TemplateId) -> Result<()> {
        if self.store.delete_template(&app.id, id).await? {
            Ok(())
        } else {
            Err(not_found("jwt_template"))
        }
    }
}
