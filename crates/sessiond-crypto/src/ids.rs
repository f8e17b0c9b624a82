//! Identifiers. Every id handed out by sessiond carries at least 80 bits from the OS CSPRNG
//! (128 for most kinds; 80 after a 48-bit time prefix for the high-rate rows that sort by time:
//! sessions, clients, events), so ids are unguessable and safe to expose; the prefix tells a
//! reader what kind of object it names.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Length of the base62 encoding of any 128-bit value (62^22 > 2^128 > 62^21).
pub const BASE62_U128_LEN: usize = 22;

/// Encodes `v` as exactly 22 base62 characters (left-padded with `0`), so ids have a fixed length.
pub fn base62_u128(mut v: u128) -> String {
    let mut out = [b'0'; BASE62_U128_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Decodes a base62 string produced by [`base62_u128`]; `None` for foreign characters or overflow.
pub fn decode_base62_u128(s: &str) -> Option<u128> {
    let mut v: u128 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        v = v.checked_mul(62)?.checked_add(u128::from(d))?;
    }
    Some(v)
}

/// Encodes arbitrary bytes as base62 (big-endian), used for secret keys longer than 128 bits.
pub fn base62_bytes(bytes: &[u8]) -> String {
    // Two u128 halves keep the arithmetic simple and the output length fixed per input length.
    bytes
        .chunks(16)
        .map(|c| {
            let mut buf = [0u8; 16];
            buf[16 - c.len()..].copy_from_slice(c);
            base62_u128(u128::from_be_bytes(buf))
        })
        .collect()
}

/// A fresh random id: `prefix_` followed by 22 base62 characters.
pub fn new_id(prefix: &str) -> String {
    let v = u128::from_be_bytes(crate::random_bytes::<16>());
    format!("{prefix}_{}", base62_u128(v))
}

/// An id that sorts by creation time: `prefix_` and 22 base62 characters whose first 48 bits are
/// `millis` and the other 80 random. For records written at a high rate into a unique index
/// (sessions, the event outbox): consecutive inserts land on the same index page instead of a
/// random one each.
/// 80 random bits keep them unguessable. The creation time can be read from the id, as from
/// Clerk's own time-sortable ids.
pub fn new_time_ordered_id(prefix: &str, millis: u64) -> String {
    let mut v = u128::from_be_bytes(crate::random_bytes::<16>()) & ((1u128 << 80) - 1);
    v |= u128::from(millis & ((1u64 << 48) - 1)) << 80;
    format!("{prefix}_{}", base62_u128(v))
}

/// A random (version 4) UUID in lowercase text, the id shape Trinsic's clients expect.
pub fn new_uuid() -> String {
    let mut b = crate::random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Whether `s` is a UUID in the lowercase text form [`new_uuid`] produces.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// Whether `s` has the shape of an id made by [`new_id`] with this prefix. Used to reject garbage
/// early and to keep arbitrary user strings out of queries and logs.
pub fn is_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            body.len() == BASE62_U128_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_ordered_ids_sort_by_time_and_stay_random() {
        let a = super::new_time_ordered_id("evt", 1_700_000_000_000);
        let b = super::new_time_ordered_id("evt", 1_700_000_000_001);
        let c = super::new_time_ordered_id("evt", 1_700_000_000_001);
        assert!(a < b && a < c, "{a} {b} {c}");
        assert_ne!(b, c);
        assert!(super::is_id(&a, "evt"));
        assert_eq!(a.len(), "evt_".len() + super::BASE62_U128_LEN);
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = new_id("app");
        assert!(is_id(&id, "app"), "{id}");
        assert!(!is_id(&id, "sess"));
        assert_ne!(new_id("app"), new_id("app"));
        assert!(!is_id("app_short", "app"));
        assert!(!is_id("app_!!!!!!!!!!!!!!!!!!!!!!", "app"));
    }

    proptest! {
        #[test]
        fn base62_round_trips(v: u128) {
            let s = base62_u128(v);
            prop_assert_eq!(s.len(), BASE62_U128_LEN);
            prop_assert_eq!(decode_base62_u128(&s), Some(v));
        }
    }
}

/// A stable positive 53-bit number derived from an id, for APIs that expect numeric ids (it fits
/// a JavaScript number exactly). Distinct ids collide with probability about n²/2⁵⁴.
pub fn numeric_alias(id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let v = u64::from_be_bytes(b) >> 11;
    i64::try_from(v.max(1)).unwrap_or(1)
}

#[cfg(test)]
mod alias_tests {
    #[test]
    fn numeric_alias_is_stable_and_bounded() {
        let a = super::numeric_alias("user_abc");
        assert_eq!(a, super::numeric_alias("user_abc"));
        assert_ne!(a, super::numeric_alias("user_abd"));
        assert!(a > 0 && a < (1i64 << 53));
    }
}
