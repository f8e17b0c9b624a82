//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, six digits) — the
//! parameters every authenticator app reads from an `otpauth://` URI without asking.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
const DIGITS: u32 = 6;
/// Random bytes in a new secret: 160 bits, the HMAC-SHA1 block RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A shared TOTP secret.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        TotpSecret(Zeroizing::new(
            crate::random_bytes::<SECRET_BYTES>().to_vec(),
        ))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        TotpSecret(Zeroizing::new(bytes.to_vec()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unpadded RFC 4648 base32, the form authenticator apps take.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    /// Parses base32 as printed by [`Self::base32`] (case and spaces ignored).
    pub fn parse_base32(s: &str) -> Option<Self> {
        base32_decode(s).map(|b| TotpSecret(Zeroizing::new(b)))
    }

    /// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…`, for a QR code or manual entry.
    pub fn uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        Zeroizing::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            self.base32().as_str(),
            enc(issuer)
        ))
    }

    /// The code of time step `step` (Unix seconds / 30), zero-padded to six digits.
    pub fn code_at_step(&self, step: i64) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let mac = tag.as_ref();
        let off = usize::from(mac[mac.len() - 1] & 0x0f);
        let bin = u32::from_be_bytes([mac[off] & 0x7f, mac[off + 1], mac[off + 2], mac[off + 3]]);
        format!("{:06}", bin % 10u32.pow(DIGITS))
    }

    /// The step `code` matches at `unix_secs`, allowing one step of clock drift either way, or
    /// `None`. Callers keep the last accepted step and refuse it and earlier ones, so a code
    /// works once.
    pub fn verify(&self, code: &str, unix_secs: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = unix_secs.div_euclid(STEP_SECS);
        let mut found = None;
        // Every candidate is compared, matched or not, so timing says nothing about which.
        for step in [now - 1, now, now + 1] {
            if crate::ct::eq(self.code_at_step(step).as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        found
    }
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = BASE32.iter().position(|&x| x == c.to_ascii_uppercase())?;
        buf = (buf << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
        buf &= (1 << bits) - 1;
    }
    (10..=64).contains(&out.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 column, truncated to six digits.
        let s = TotpSecret::from_bytes(b"12345678901234567890");
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(s.code_at_step(t / STEP_SECS), code, "t={t}");
        }
    }

    #[test]
    fn base32_round_trips_and_rejects_garbage() {
        let s = TotpSecret::generate();
        let printed = s.base32();
        let back = TotpSecret::parse_base32(&printed.to_lowercase()).map(|b| b.bytes().to_vec());
        assert_eq!(back.as_deref(), Some(s.bytes()));
        assert!(TotpSecret::parse_base32("not base32!").is_none());
        assert_eq!(
            base32_encode(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn verify_allows_one_step_of_drift_only() {
        let s = TotpSecret::generate();
        let t = 1_700_000_000;
        let step = t / STEP_SECS;
        assert_eq!(s.verify(&s.code_at_step(step), t), Some(step));
        assert_eq!(s.verify(&s.code_at_step(step - 1), t), Some(step - 1));
        assert_eq!(s.verify(&s.code_at_step(step + 1), t), Some(step + 1));
        assert_eq!(s.verify(&s.code_at_step(step - 2), t), None);
        assert_eq!(s.verify("12345", t), None);
        assert_eq!(s.verify("abcdef", t), None);
    }

    #[test]
    fn uri_names_issuer_account_and_secret() {
        let s = TotpSecret::from_bytes(b"12345678901234567890");
        let u = s.uri("sessiond", "ops@example.com");
        assert!(u.starts_with("otpauth://totp/sessiond:ops@example.com?secret=GEZDGNBV"));
        assert!(u.contains("&issuer=sessiond"));
    }
}
