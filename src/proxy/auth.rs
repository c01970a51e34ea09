//! Client key checks.

use subtle::ConstantTimeEq;

/// Compares a presented key with the expected one in constant time (for equal lengths; the
/// length of a random key is no secret).
pub fn keys_match(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_key() {
        assert!(keys_match("sk-abc", "sk-abc"));
        assert!(!keys_match("sk-abd", "sk-abc"));
        assert!(!keys_match("sk-ab", "sk-abc"));
        assert!(!keys_match("", "sk-abc"));
    }
}
