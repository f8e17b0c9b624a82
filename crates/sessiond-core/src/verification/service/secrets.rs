//! Keys and seals: results access keys, launch tokens, identity data sealed to the relying
//! party, browser bindings and CSRF tokens.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::StoredAttachment;
use crate::verification::identity::{AttachmentContent, IdentityData};
use crate::verification::model::{Verification, VerificationId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sessiond_crypto::recipient::{RecipientKey, seal_to};
use zeroize::Zeroizing;

use super::*;

impl VerificationService {
    pub(super) fn key_hash(&self, key: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("rak:{key}"))
    }

    pub(super) fn check_key(&self, v: &Verification, key: &str) -> Result<()> {
        if key.is_empty()
            || key.len() > 200
            || !self
                .vault
                .hasher()
                .verify(&format!("rak:{key}"), &v.results_key_hash)
        {
            return Err(Error::invalid(
                "resultsAccessKey",
                "does not match this session",
            ));
        }
        Ok(())
    }

    pub(super) fn launch_url(&self, v: &Verification, key: &str) -> Result<String> {
        let t = LaunchToken {
            s: v.id.0.clone(),
            a: v.application_id.0.clone(),
            k: key.to_owned(),
            e: v.expires_at.as_millis(),
        };
        let plain =
            Zeroizing::new(serde_json::to_vec(&t).map_err(|e| Error::Internal(e.to_string()))?);
        let sealed = self.vault.seal(LAUNCH_CONTEXT, &plain);
        Ok(format!(
            "{}/verify/launch?t={}",
            self.public_url,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    pub(super) fn open_token(&self, token: &str, now: Timestamp) -> Result<LaunchToken> {
        let bad = || Error::Forbidden("this verification link is not valid".into());
        if token.len() > 4096 {
            return Err(bad());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let plain = self.vault.unseal(LAUNCH_CONTEXT, &raw).map_err(|_| bad())?;
        let t: LaunchToken = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if now.as_millis() >= t.e {
            return Err(Error::Forbidden(
                "this verification link has expired".into(),
            ));
        }
        Ok(t)
    }

    /// The session a launch token names, without checking expiry (to pick its binding cookie).
    pub fn token_session(&self, token: &str) -> Option<VerificationId> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let plain = self.vault.unseal(LAUNCH_CONTEXT, &raw).ok()?;
        let t: LaunchToken = serde_json::from_slice(&plain).ok()?;
        Some(VerificationId(t.s))
    }

    pub(super) fn seal_identity(
        &self,
        v: &mut Verification,
        provider: &str,
        claims: crate::verification::identity::Claims,
        now: Timestamp,
    ) -> Result<Vec<StoredAttachment>> {
        let mut stored = Vec::new();
        let mut data = IdentityData {
            originating_provider_id: Some(provider.to_owned()),
            originating_sub_provider_id: claims.sub_provider.clone(),
            person: claims.person,
            document: claims.document,
            attachments: Vec::new(),
        };
        for a in claims.attachments {
            let id = sessiond_crypto::ids::new_id("att");
            let secret = Zeroizing::new(sessiond_crypto::random_bytes::<32>());
            let key = RecipientKey::derive(secret.as_ref());
            let content = Zeroizing::new(
                serde_json::to_vec(&AttachmentContent {
                    content_type: a.content_type,
                    content: a.content,
                })
                .map_err(|e| Error::Internal(e.to_string()))?,
            );
            let sealed = seal_to(&key.public(), &attachment_context(&id), &content)
                .map_err(|e| Error::Internal(e.to_string()))?;
            data.attachments.push((
                a.slot,
                format!("{id}.{}", URL_SAFE_NO_PAD.encode(secret.as_ref())),
            ));
            stored.push(StoredAttachment {
                id,
                application_id: v.application_id.clone(),
                verification_id: v.id.clone(),
                sealed,
                created_at: now,
            });
        }
        let plain =
            Zeroizing::new(serde_json::to_vec(&data).map_err(|e| Error::Internal(e.to_string()))?);
        v.results_sealed = Some(
            seal_to(&v.results_public_key, &results_context(&v.id), &plain)
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
        v.sub_provider = data.originating_sub_provider_id;
        Ok(stored)
    }

    /// Applies a provider's outcome: success seals the identity data; failure records why.
    pub(super) fn binding_hash(&self, id: &VerificationId, binding: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("binding:{id}:{binding}"))
    }

    pub(super) fn csrf_for(&self, id: &VerificationId, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.vault.hasher().hash(&format!("csrf:{id}:{binding}")))
    }

    pub(super) fn open_input(
        &self,
        v: &Verification,
        key: &str,
    ) -> Result<Option<Map<String, Value>>> {
        let Some(sealed) = &v.input_sealed else {
            return Ok(None);
        };
        let plain = RecipientKey::derive(key.as_bytes())
            .open(&input_context(&v.id), sealed)
            .map_err(|e| Error::Internal(format!("input of {}: {e}", v.id)))?;
        let value: Value =
            serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))?;
        // Earlier versions sealed it as `providerInput`; their sessions still open.
        Ok(value
            .get("provider_input")
            .or_else(|| value.get("providerInput"))
            .and_then(Value::as_object)
            .cloned())
    }

    pub(super) fn wallet_csrf(&self, id: &VerificationId, code: &str) -> String {
        URL_SAFE_NO_PAD.encode(
            self.vault
                .hasher()
                .hash(&format!("wallet-csrf:{id}:{code}")),
        )
    }
}
