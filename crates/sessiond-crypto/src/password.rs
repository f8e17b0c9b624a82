//! Password digests: new passwords are hashed with Argon2id; digests imported from another
//! system (bcrypt, Argon2i, Argon2id) are kept as they are until the first successful check,
//! when the caller re-hashes the password with Argon2id.
//!
//! Imported digests carry their own cost parameters, and checking one runs them: parameters are
//! bounded on import so that a digest cannot make every check of it a denial of service.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Longest password accepted, in bytes: bounds the work of hashing it.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hash function of a stored digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hasher {
    Argon2id,
    Argon2i,
    Bcrypt,
}

impl Hasher {
    /// Parses the names Clerk uses for `password_hasher`.
    pub fn parse(s: &str) -> Option<Hasher> {
        match s {
            "argon2id" => Some(Hasher::Argon2id),
            "argon2i" => Some(Hasher::Argon2i),
            "bcrypt" => Some(Hasher::Bcrypt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Hasher::Argon2id => "argon2id",
            Hasher::Argon2i => "argon2i",
            Hasher::Bcrypt => "bcrypt",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("is not a {0} digest")]
    Malformed(&'static str),
    #[error("has cost parameters above what sessiond accepts ({0})")]
    TooCostly(&'static str),
    #[error("could not be hashed")]
    Hashing,
}

// Argon2 bounds on imported digests: 256 MiB, 10 passes, 8 lanes. bcrypt: cost 4 to 15.
const MAX_M_KIB: u32 = 256 * 1024;
const MAX_T: u32 = 10;
const MAX_P: u32 = 8;
const MAX_BCRYPT_COST: u32 = 15;

/// Argon2id with OWASP's first recommended setting (19 MiB, 2 passes, 1 lane).
fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a new password with Argon2id into a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    argon2id()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// Checks that an imported digest is well formed for `hasher` and within the cost bounds.
pub fn validate_digest(hasher: Hasher, digest: &str) -> Result<(), PasswordError> {
    match hasher {
        Hasher::Bcrypt => {
            let cost = bcrypt_cost(digest).ok_or(PasswordError::Malformed("bcrypt"))?;
            if cost > MAX_BCRYPT_COST {
                return Err(PasswordError::TooCostly("bcrypt cost at most 15"));
            }
            Ok(())
        }
        Hasher::Argon2id | Hasher::Argon2i => {
            let name = hasher.as_str();
            let h = PasswordHash::new(digest).map_err(|_| PasswordError::Malformed(name))?;
            if h.algorithm.as_str() != name || h.salt.is_none() || h.hash.is_none() {
                return Err(PasswordError::Malformed(name));
            }
            let p = Params::try_from(&h).map_err(|_| PasswordError::Malformed(name))?;
            if p.m_cost() > MAX_M_KIB || p.t_cost() > MAX_T || p.p_cost() > MAX_P {
                return Err(PasswordError::TooCostly(
                    "argon2 m at most 262144 KiB, t at most 10, p at most 8",
                ));
            }
            Ok(())
        }
    }
}

/// `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost, `$`, then 53 characters of salt and hash.
fn bcrypt_cost(d: &str) -> Option<u32> {
    let b = d.as_bytes();
    let prefix_ok = b.len() == 60
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[6] == b'$';
    if !prefix_ok {
        return None;
    }
    let cost: u32 = d.get(4..6)?.parse().ok()?;
    let tail_ok = b[7..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/');
    ((4..=31).contains(&cost) && tail_ok).then_some(cost)
}

/// Whether `password` matches `digest`. A malformed digest never matches.
pub fn verify(hasher: Hasher, digest: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES || validate_digest(hasher, digest).is_err() {
        return false;
    }
    match hasher {
        // Truncating at 72 bytes as every bcrypt that produced such digests did.
        Hasher::Bcrypt => bcrypt::verify(password, digest).unwrap_or(false),
        Hasher::Argon2id | Hasher::Argon2i => PasswordHash::new(digest).ok().is_some_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let d = hash("correct horse").unwrap_or_default();
        assert!(d.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{d}");
        assert!(verify(Hasher::Argon2id, &d, "correct horse"));
        assert!(!verify(Hasher::Argon2id, &d, "correct horsE"));
        assert!(
            !verify(Hasher::Argon2i, &d, "correct horse"),
            "hasher must match"
        );
        assert_eq!(hash(&"x".repeat(1025)), Err(PasswordError::TooLong));
    }

    #[test]
    fn imported_bcrypt_and_argon2i() {
        // Digests as another system would have produced them: bcrypt cost 4, Argon2i.
        let b = bcrypt::hash("password", 4).unwrap_or_default();
        assert!(validate_digest(Hasher::Bcrypt, &b).is_ok());
        assert!(verify(Hasher::Bcrypt, &b, "password"));
        assert!(!verify(Hasher::Bcrypt, &b, "Password"));
        let a = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password_with_salt(b"password", b"somesalt16bytes!")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(verify(Hasher::Argon2i, &a, "password"));
        assert!(!verify(Hasher::Argon2i, &a, "passwore"));
    }

    #[test]
    fn refuses_malformed_and_costly_digests() {
        assert!(validate_digest(Hasher::Bcrypt, "$2b$10$short").is_err());
        let costly = format!("$2b$16${}", "a".repeat(53));
        assert_eq!(
            validate_digest(Hasher::Bcrypt, &costly),
            Err(PasswordError::TooCostly("bcrypt cost at most 15"))
        );
        let big_m = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert!(matches!(
            validate_digest(Hasher::Argon2id, big_m),
            Err(PasswordError::TooCostly(_))
        ));
        assert!(validate_digest(Hasher::Argon2id, "plain text").is_err());
        assert!(!verify(Hasher::Bcrypt, "not a digest", "x"));
        assert_eq!(Hasher::parse("md5"), None);
    }
}
