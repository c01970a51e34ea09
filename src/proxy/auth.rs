//! Client keys: who may use a proxy. Keys are kept as SHA-256 digests and compared in constant
//! time; a request is matched against every key, with no early exit.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One accepted key, by name (the ledger tags its traffic with the name).
#[derive(Clone)]
pub struct ClientKey {
    pub name: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The keys a proxy accepts. No keys: the proxy is open (the daemon on loopback by default).
#[derive(Debug, Clone, Default)]
pub struct ClientKeys {
    keys: Vec<ClientKey>,
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

impl ClientKeys {
    pub fn open() -> Self {
        Self::default()
    }

    pub fn single(name: &str, key: &str) -> Self {
        let mut keys = Self::default();
        keys.add(name, key);
        keys
    }

    pub fn add(&mut self, name: &str, key: &str) {
        self.add_digest(name, digest(key));
    }

    /// Adds a key stored only as its digest (keys created with `smartproxy keys create`).
    pub fn add_digest(&mut self, name: &str, digest: [u8; 32]) {
        self.keys.push(ClientKey {
            name: name.to_owned(),
            digest,
        });
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name of the key `presented` is, if any.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&presented)) && found.is_none() {
                found = Some(key.name.as_str());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_keys_by_name() {
        let mut keys = ClientKeys::single("session", "sk-abc");
        keys.add("cursor", "sk-cursor");
        assert_eq!(keys.identify("sk-abc"), Some("session"));
        assert_eq!(keys.identify(" sk-cursor "), Some("cursor"));
        assert_eq!(keys.identify("sk-abd"), None);
        assert_eq!(keys.identify(""), None);
        assert!(!keys.is_open());
        assert!(ClientKeys::open().is_open());
        assert!(
            !format!("{keys:?}").contains("sk-"),
            "no key material in debug output"
        );
    }
}
