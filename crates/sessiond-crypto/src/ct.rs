//! Constant-time comparisons for secrets.

use subtle::ConstantTimeEq;

/// Compares two byte strings without leaking, through timing, where they first differ.
/// Lengths are not secret (every caller compares fixed-size digests).
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares() {
        assert!(super::eq(b"abc", b"abc"));
        assert!(!super::eq(b"abc", b"abd"));
        assert!(!super::eq(b"abc", b"ab"));
    }
}
