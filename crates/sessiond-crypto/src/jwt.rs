//! Compact JWS signing and verification with keys parsed once.
//!
//! Minting is the server's hot path, so a [`SigningKey`] holds the parsed key pair and signs
//! without re-parsing (re-parsing an RSA key costs more than the signature itself). Verification
//! is only needed for sessiond's own tokens (`/verify`) and in tests.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair};
use aws_lc_rs::{hmac, rand::SystemRandom, rsa};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// JWS algorithms sessiond signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key is not a valid {0} key (expected a PEM private key)")]
    Invalid(&'static str),
    #[error("an HMAC secret must be at least 32 bytes")]
    ShortSecret,
}

// Keys live behind an Arc in the cache and are built once; the size difference is irrelevant.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Rsa(signature::RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
    Hmac(hmac::Key),
}

/// A parsed private key ready to sign.
pub struct SigningKey {
    alg: Algorithm,
    inner: Inner,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.alg.as_str())
    }
}

/// Decodes the base64 body of a PEM block (any label).
pub fn pem_body(pem: &str) -> Option<Zeroizing<Vec<u8>>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    // One-line PEMs (newlines stripped by an env var) keep their armour inline.
    let body = body
        .split("-----")
        .find(|part| part.len() > 40 && !part.contains(' '))
        .unwrap_or(&body)
        .to_owned();
    STANDARD.decode(body.as_bytes()).ok().map(Zeroizing::new)
}

impl SigningKey {
    /// A new RSA-2048 (e = 65537) key for RS256, and its PKCS#8 DER for sealed storage.
    pub fn generate_rs256() -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let kp =
            rsa::KeyPair::generate(rsa::KeySize::Rsa2048).map_err(|_| KeyError::Invalid("RSA"))?;
        let der = kp.as_der().map_err(|_| KeyError::Invalid("RSA"))?;
        let der = Zeroizing::new(der.as_ref().to_vec());
        Ok((
            SigningKey {
                alg: Algorithm::RS256,
                inner: Inner::Rsa(kp, &signature::RSA_PKCS1_SHA256),
                rng: SystemRandom::new(),
            },
            der,
        ))
    }

    /// Parses a private key in DER (PKCS#8; PKCS#1 also for RSA) or, for HMAC, raw secret bytes.
    pub fn from_der(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let inner = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                let kp = signature::RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| signature::RsaKeyPair::from_der(der))
                    .map_err(|_| KeyError::Invalid("RSA"))?;
                let enc: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    _ => &signature::RSA_PKCS1_SHA512,
                };
                Inner::Rsa(kp, enc)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let params = if alg == Algorithm::ES256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let kp = signature::EcdsaKeyPair::from_pkcs8(params, der)
                    .or_else(|_| signature::EcdsaKeyPair::from_private_key_der(params, der))
                    .map_err(|_| KeyError::Invalid("ECDSA"))?;
                Inner::Ecdsa(kp)
            }
            Algorithm::EdDSA => Inner::Ed25519(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| KeyError::Invalid("Ed25519"))?,
            ),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if der.len() < 32 {
                    return Err(KeyError::ShortSecret);
                }
                let h = match alg {
                    Algorithm::HS256 => hmac::HMAC_SHA256,
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    _ => hmac::HMAC_SHA512,
                };
                Inner::Hmac(hmac::Key::new(h, der))
            }
        };
        Ok(SigningKey {
            alg,
            inner,
            rng: SystemRandom::new(),
        })
    }

    /// Parses a PEM private key, or for HMAC algorithms the secret text itself. Returns the key
    /// and the bytes to store (sealed) for re-parsing later.
    pub fn from_pem_or_secret(
        alg: Algorithm,
        text: &str,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let material = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                Zeroizing::new(text.as_bytes().to_vec())
            }
            _ => pem_body(text).ok_or(KeyError::Invalid(match alg {
                Algorithm::ES256 | Algorithm::ES384 => "ECDSA",
                Algorithm::EdDSA => "Ed25519",
                _ => "RSA",
            }))?,
        };
        let key = Self::from_der(alg, &material)?;
        Ok((key, material))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(kp, enc) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                // Signing with a valid parsed key into a correctly sized buffer does not fail.
                #[allow(clippy::expect_used)]
                kp.sign(*enc, &self.rng, msg, &mut sig)
                    .expect("RSA signing failed");
                sig
            }
            Inner::Ecdsa(kp) => {
                #[allow(clippy::expect_used)]
                let sig = kp.sign(&self.rng, msg).expect("ECDSA signing failed");
                sig.as_ref().to_vec()
            }
            Inner::Ed25519(kp) => kp.sign(msg).as_ref().to_vec(),
            Inner::Hmac(k) => hmac::sign(k, msg).as_ref().to_vec(),
        }
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ: "JWT", kid?, ...extra}`.
    pub fn sign_jwt(
        &self,
        kid: Option<&str>,
        extra_header: &[(&str, Value)],
        claims: &Value,
    ) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), Value::from(self.alg.as_str()));
        if let Some(k) = kid {
            header.insert("kid".into(), Value::from(k));
        }
        header.insert("typ".into(), Value::from("JWT"));
        for (k, v) in extra_header {
            header.insert((*k).to_owned(), v.clone());
        }
        let h = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{h}.{p}");
        let sig = URL_SAFE_NO_PAD.encode(self.sign_bytes(signing_input.as_bytes()));
        format!("{signing_input}.{sig}")
    }

    /// The public JWK (no `kid`, `alg` or `use`; the caller adds them). `None` for HMAC keys.
    pub fn public_jwk(&self) -> Option<Value> {
        match &self.inner {
            Inner::Rsa(kp, _) => {
                let (n, e) = rsa_components(kp.public_key().as_ref())?;
                Some(
                    json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}),
                )
            }
            Inner::Ecdsa(kp) => {
                let point = kp.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                Some(json!({
                    "kty": "EC", "crv": crv,
                    "x": URL_SAFE_NO_PAD.encode(&point[1..1 + len]),
                    "y": URL_SAFE_NO_PAD.encode(&point[1 + len..]),
                }))
            }
            Inner::Ed25519(kp) => Some(json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(kp.public_key().as_ref()),
            })),
            Inner::Hmac(_) => None,
        }
    }

    /// The RSA public key as a PEM SubjectPublicKeyInfo (what Clerk calls the JWT public key).
    pub fn public_key_pem(&self) -> Option<String> {
        let Inner::Rsa(kp, _) = &self.inner else {
            return None;
        };
        let spki = rsa_spki_der(kp.public_key().as_ref());
        let b64 = STANDARD.encode(spki);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Some(pem)
    }
}

// --- minimal DER, for RSA public keys only ---

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// (modulus, exponent) of a PKCS#1 RSAPublicKey, without leading zero bytes.
pub fn rsa_components(pkcs1: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (tag, seq, _) = read_tlv(pkcs1)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, n, rest) = read_tlv(seq)?;
    let (t2, e, _) = read_tlv(rest)?;
    if t1 != 0x02 || t2 != 0x02 {
        return None;
    }
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    Some((strip(n), strip(e)))
}

fn rsa_spki_der(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    const ALG: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = ALG.to_vec();
    body.extend(der_tlv(0x03, &bits));
    der_tlv(0x30, &body)
}

/// An RSA public key for verifying RS256 tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl RsaPublicKey {
    pub fn from_jwk(jwk: &Value) -> Option<Self> {
        let n = URL_SAFE_NO_PAD.decode(jwk.get("n")?.as_str()?).ok()?;
        let e = URL_SAFE_NO_PAD.decode(jwk.get("e")?.as_str()?).ok()?;
        Some(RsaPublicKey { n, e })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
}

/// Splits a compact JWS into (header, claims) without verifying anything.
pub fn decode_unverified(token: &str) -> Result<(Value, Value), VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let dec = |s: &str| -> Result<Value, VerifyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
    };
    Ok((dec(h)?, dec(p)?))
}

/// Verifies an RS256 compact JWS with `key`; returns (header, claims). Claims are not checked.
pub fn verify_rs256(token: &str, key: &RsaPublicKey) -> Result<(Value, Value), VerifyError> {
    let (header, claims) = decode_unverified(token)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(VerifyError::Algorithm);
    }
    let (input, sig) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| VerifyError::Malformed)?;
    let components = signature::RsaPublicKeyComponents {
        n: key.n.as_slice(),
        e: key.e.as_slice(),
    };
    components
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        )
        .map_err(|_| VerifyError::Signature)?;
    Ok((header, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rs256_round_trip_and_clerk_pem_prefix() {
        let (key, der) = SigningKey::generate_rs256().unwrap_or_else(|e| panic!("{e}"));
        let claims = json!({"sub": "user_1", "iat": 1});
        let token = key.sign_jwt(Some("ins_1"), &[], &claims);
        let jwk = key.public_jwk().unwrap_or_default();
        assert_eq!(jwk["e"], "AQAB");
        let public = RsaPublicKey::from_jwk(&jwk).unwrap_or_else(|| panic!("jwk"));
        let (h, c) = verify_rs256(&token, &public).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (h["kid"].as_str(), h["typ"].as_str()),
            (Some("ins_1"), Some("JWT"))
        );
        assert_eq!(c, claims);
        let mut forged = token.clone();
        forged.push('A');
        assert!(verify_rs256(&forged, &public).is_err());
        // @clerk/backend derives the JWK from the PEM by stripping this fixed 2048-bit prefix.
        let pem = key.public_key_pem().unwrap_or_default();
        let flat: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(
            flat.starts_with("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{flat}"
        );
        assert!(flat.ends_with("IDAQAB"));
        let again = SigningKey::from_der(Algorithm::RS256, &der).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.public_jwk(), key.public_jwk());
    }

    #[test]
    fn hmac_needs_a_long_secret() {
        assert_eq!(
            SigningKey::from_pem_or_secret(Algorithm::HS256, "short").err(),
            Some(KeyError::ShortSecret)
        );
        let (k, _) = SigningKey::from_pem_or_secret(Algorithm::HS256, &"s".repeat(32))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(k.public_jwk().is_none());
        assert_eq!(k.sign_jwt(None, &[], &json!({})).split('.').count(), 3);
    }

    #[test]
    fn garbage_keys_are_refused() {
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert!(
                SigningKey::from_pem_or_secret(
                    alg,
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
                )
                .is_err()
            );
        }
        assert!(decode_unverified("a.b").is_err());
    }
}
