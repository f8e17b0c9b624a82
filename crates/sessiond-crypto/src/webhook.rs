//! Standard Webhooks signing (the scheme Svix and Clerk's receivers verify): `whsec_` secrets
//! and `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` signatures.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// The printed form's prefix.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a new secret (Svix uses 24; receivers accept any length).
const SECRET_BYTES: usize = 32;

/// A signing secret: the key bytes, printable as `whsec_<base64>`.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Self {
        WebhookSecret(Zeroizing::new(
            crate::random_bytes::<SECRET_BYTES>().to_vec(),
        ))
    }

    /// Parses `whsec_<base64>` (what receivers are configured with).
    pub fn parse(s: &str) -> Option<Self> {
        let b64 = s.strip_prefix(SECRET_PREFIX)?;
        let bytes = STANDARD.decode(b64).ok()?;
        (16..=64)
            .contains(&bytes.len())
            .then(|| WebhookSecret(Zeroizing::new(bytes)))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        WebhookSecret(Zeroizing::new(bytes.to_vec()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The printed form, shown once to the operator.
    pub fn expose(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(&*self.0)))
    }

    /// `v1,<signature>` of one delivery.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp_secs.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` header: one signature per secret in use, space-separated (receivers
/// accept the message if any one verifies, which is what lets a secret rotate without a gap).
pub fn signature_header(secrets: &[&WebhookSecret], msg_id: &str, ts: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, ts, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_vector() {
        // The example in the Standard Webhooks specification's test suite.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = secret.map(|s| {
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
        });
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn secrets_print_and_parse_back_and_reject_junk() {
        let s = WebhookSecret::generate();
        let printed = s.expose();
        assert!(printed.starts_with("whsec_"));
        let back = WebhookSecret::parse(&printed).map(|b| b.bytes().to_vec());
        assert_eq!(back.as_deref(), Some(s.bytes()));
        for bad in ["", "whsec_", "sk_abc", "whsec_!!!", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(format!("{s:?}"), "WebhookSecret(…)");
    }

    #[test]
    fn rotation_overlap_signs_with_both_secrets() {
        let (a, b) = (WebhookSecret::generate(), WebhookSecret::generate());
        let h = signature_header(&[&a, &b], "evt_1", 10, b"{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(
            parts,
            vec![a.sign("evt_1", 10, b"{}"), b.sign("evt_1", 10, b"{}")]
        );
    }
}
