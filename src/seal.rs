//! AES-256-GCM sealing under a key from the environment, shared by the response cache
//! (`cache::CacheCipher`) and body capture, and the strict parsing of such a key (hex or base64
//! of exactly 32 bytes, not obviously weak).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

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

    #[test]
    fn accepts_hex_and_every_base64_flavour() {
        let bytes = hex::decode(HEX_KEY).unwrap();
        let reference = Cipher::from_value("K", HEX_KEY).unwrap();
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
            let cipher = Cipher::from_value("K", &value).unwrap();
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
        assert!(Cipher::from_value("K", &url_b64).is_ok());
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
}
