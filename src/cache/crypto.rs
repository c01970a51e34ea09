//! The cache's encryption: `CacheCipher`, the shared [`Cipher`] (crate::seal) under
//! `SMARTPROXY_CACHE_KEY`, with the cache's errors.

use super::CacheError;
use crate::seal::Cipher;

/// The environment variable that holds the cache encryption key.
pub const KEY_ENV: &str = "SMARTPROXY_CACHE_KEY";

/// An AES-256-GCM key for cache entries. Debug output never shows the key.
#[derive(Clone)]
pub struct CacheCipher(Cipher);

impl std::fmt::Debug for CacheCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheCipher(..)")
    }
}

impl CacheCipher {
    /// Reads the key from `SMARTPROXY_CACHE_KEY`; a missing or empty variable is an error that
    /// says how to make a key.
    pub fn from_env() -> Result<Self, CacheError> {
        match std::env::var(KEY_ENV) {
            Ok(value) => Self::from_env_value(&value),
            Err(std::env::VarError::NotPresent) => Err(key_error(format!("{KEY_ENV} is not set"))),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(key_error(format!("{KEY_ENV} is not valid text")))
            }
        }
    }

    /// Parses a key (see [`Cipher::from_value`]); the error says how to make one
    /// (`openssl rand -hex 32`).
    pub fn from_env_value(value: &str) -> Result<Self, CacheError> {
        Cipher::from_value(KEY_ENV, value)
            .map(Self)
            .map_err(key_error)
    }

    /// [`Cipher::seal`]; `associated` is the entry's key.
    pub fn seal(&self, plain: &[u8], associated: &[u8]) -> Result<Vec<u8>, CacheError> {
        self.0.seal(plain, associated).map_err(CacheError::Crypto)
    }

    /// [`Cipher::open`].
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, CacheError> {
        self.0.open(sealed, associated).map_err(CacheError::Crypto)
    }
}

fn key_error(problem: String) -> CacheError {
    CacheError::Key { problem }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX_KEY: &str = "8f3a1c0e5b7d294688a1f0c3e2d4b6a79c8e1f2a3b4c5d6e7f8091a2b3c4d5e6";

    fn message(err: CacheError) -> String {
        err.to_string()
    }

    #[test]
    fn seals_and_opens() {
        let cipher = CacheCipher::from_env_value(HEX_KEY).unwrap();
        let sealed = cipher.seal(b"hello cache", b"key1").unwrap();
        assert_eq!(sealed.len(), 12 + 11 + 16);
        assert_eq!(cipher.open(&sealed, b"key1").unwrap(), b"hello cache");
        // Fresh nonce every time.
        assert_ne!(cipher.seal(b"hello cache", b"key1").unwrap(), sealed);
        assert!(
            cipher.open(&sealed, b"key2").is_err(),
            "moved to another row"
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(cipher.open(&tampered, b"key1").is_err());
        assert!(cipher.open(&sealed[..10], b"key1").is_err());
        assert_eq!(format!("{cipher:?}"), "CacheCipher(..)");
    }

    #[test]
    fn another_key_does_not_open() {
        let a = CacheCipher::from_env_value(HEX_KEY).unwrap();
        let other = HEX_KEY.replace('8', "9");
        let b = CacheCipher::from_env_value(&other).unwrap();
        let sealed = a.seal(b"secret", b"").unwrap();
        let err = b.open(&sealed, b"").unwrap_err();
        assert!(message(err).contains("does not decrypt"));
    }

    #[test]
    fn refuses_bad_keys_saying_how_to_make_one() {
        let cases = [
            ("", "is empty"),
            ("   ", "is empty"),
            (&HEX_KEY[..32], "16 bytes"),
            (&HEX_KEY[..62], "31 bytes"),
            ("jzocDlt9KUaIofDD4tS2p5yOHyo7TF1uf4CRorPE1eaa", "33 bytes"),
            ("not a key!", "neither"),
            ("password1234", "9 bytes"),
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "too weak",
            ),
            (
                "0102030401020304010203040102030401020304010203040102030401020304",
                "too weak",
            ),
        ];
        for (value, needle) in cases {
            let text = message(CacheCipher::from_env_value(value).unwrap_err());
            assert!(text.contains(needle), "{value:?}: {text}");
            assert!(text.contains("openssl rand -hex 32"), "{text}");
            assert!(text.contains(KEY_ENV), "{text}");
            assert!(!text.contains(HEX_KEY), "never echo the key: {text}");
        }
        let long = format!("{HEX_KEY}00");
        let text = message(CacheCipher::from_env_value(&long).unwrap_err());
        assert!(text.contains("33 bytes"), "{text}");
    }
}
