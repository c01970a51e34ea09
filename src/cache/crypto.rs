//! AES-256-GCM sealing under a key from the environment (`Cipher`: the cache's and the body
//! capture's), and the strict parsing of such a key (hex or base64 of exactly 32 bytes, not
//! obviously weak); `CacheCipher` is the cache's, with its errors.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use super::CacheError;

/// The environment variable that holds the cache encryption key.
pub const KEY_ENV: &str = "SMARTPROXY_CACHE_KEY";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// Fewer distinct byte values than this in 32 bytes means a typed or patterned key, not a random
/// one (32 random bytes have about 30).
const MIN_DISTINCT_BYTES: usize = 8;

/// An AES-256-GCM key read from an environment variable: the response cache's
/// (`SMARTPROXY_CACHE_KEY`) and the body capture's (`SMARTPROXY_CAPTURE_KEY`) share this code.
/// Debug output never shows the key.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// Reads the key from variable `var`: `Ok(None)` when it is unset or empty, an error (the
    /// problem, naming `var`, never the value) when it is set but not a good key.
    pub fn from_var(var: &str) -> Result<Option<Self>, String> {
        match std::env::var(var) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Self::from_value(var, &value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{var} is not valid text")),
        }
    }

    /// Parses a key given in variable `var`: 64 hex characters, or base64 (standard or URL-safe
    /// alphabet, padded or not) of exactly 32 bytes. Refuses other lengths, malformed text and
    /// obviously weak keys (all bytes equal, or fewer than 8 distinct byte values). The error is
    /// the problem, naming `var` and never echoing the value.
    pub fn from_value(var: &str, value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{var} is empty"));
        }
        let bytes = decode_key(var, value)?;
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "{var} decodes to {} bytes, not {KEY_LEN}",
                bytes.len()
            ));
        }
        let mut seen = [false; 256];
        for b in &bytes {
            seen[usize::from(*b)] = true;
        }
        let distinct = seen.iter().filter(|s| **s).count();
        if distinct < MIN_DISTINCT_BYTES {
            return Err(format!(
                "{var} is too weak ({distinct} distinct byte values; a random key has about 30)"
            ));
        }
        let cipher =
            Aes256Gcm::new_from_slice(&bytes).map_err(|_| format!("{var} has the wrong length"))?;
        Ok(Self(cipher))
    }

    /// Encrypts `plain` under a fresh random 96-bit nonce: nonce || ciphertext || tag.
    /// `associated` is authenticated too, so a sealed payload moved elsewhere does not open.
    pub fn seal(&self, plain: &[u8], associated: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: associated,
                },
            )
            .map_err(|_| "is too large to encrypt")?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what `seal` produced with the same `associated` data; fails when the key, the
    /// associated data or any byte differs.
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, &'static str> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err("is too short to be sealed");
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: associated,
                },
            )
            .map_err(|_| "does not decrypt with this key")
    }
}

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

/// Hex when the text is all hex digits of even length (so a short hex key gets a length error,
/// not a base64 one), base64 otherwise.
fn decode_key(var: &str, value: &str) -> Result<Vec<u8>, String> {
    if value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex::decode(value).map_err(|_| format!("{var} is not valid hex"));
    }
    decode_base64(value)
        .ok_or_else(|| format!("{var} is neither 64 hex characters nor valid base64"))
}

/// Decodes base64 in the standard (`+/`) or URL-safe (`-_`) alphabet, with or without `=`
/// padding. None for any other character, misplaced padding or an impossible length.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let unpadded = bytes
        .strip_suffix(b"==")
        .or_else(|| bytes.strip_suffix(b"="));
    let data = match unpadded {
        Some(data) => {
            // Padding only ever completes a group of four.
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            data
        }
        None => bytes,
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero, as every encoder writes them; anything else is a typo.
    if acc != 0 {
        return None;
    }
    Some(out)
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
    fn accepts_hex_and_every_base64_flavour() {
        let bytes = hex::decode(HEX_KEY).unwrap();
        let reference = CacheCipher::from_env_value(HEX_KEY).unwrap();
        let sealed = reference.seal(b"x", b"").unwrap();
        let std_padded = "jzocDlt9KUaIofDD4tS2p5yOHyo7TF1uf4CRorPE1eY=";
        assert_eq!(decode_base64(std_padded).unwrap(), bytes);
        for value in [
            HEX_KEY.to_owned(),
            HEX_KEY.to_uppercase(),
            format!("  {HEX_KEY}\n"),
            std_padded.to_owned(),
            std_padded.trim_end_matches('=').to_owned(),
        ] {
            let cipher = CacheCipher::from_env_value(&value).unwrap();
            assert_eq!(cipher.open(&sealed, b"").unwrap(), b"x", "{value}");
        }
        // A key whose base64 uses the characters that differ between alphabets.
        let special = [0xfbu8, 0xff, 0xbf, 0x3e, 0x01, 0x02, 0x03, 0x04]
            .into_iter()
            .cycle()
            .take(32)
            .collect::<Vec<_>>();
        let std_b64 = "+/+/PgECAwT7/78+AQIDBPv/vz4BAgME+/+/PgECAwQ=";
        assert_eq!(decode_base64(std_b64).unwrap(), special);
        let url_b64 = std_b64.replace('+', "-").replace('/', "_");
        assert_eq!(decode_base64(&url_b64).unwrap(), special);
        assert_eq!(
            decode_base64(url_b64.trim_end_matches('=')).unwrap(),
            special
        );
        assert!(CacheCipher::from_env_value(&url_b64).is_ok());
    }

    #[test]
    fn base64_decoder_matches_known_vectors() {
        for (text, expected) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zg", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
        ] {
            assert_eq!(decode_base64(text).unwrap(), expected, "{text}");
        }
        for bad in ["Z", "Zg=", "Zm9v=", "Zm9vY", "Zm$v", "Zh==", "Z=g=", "===="] {
            assert!(decode_base64(bad).is_none(), "{bad}");
        }
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
