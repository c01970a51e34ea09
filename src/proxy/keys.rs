//! The keys a proxy accepts (client keys, and the admin key). Keys are kept as SHA-256 digests
//! and compared in constant time; a request is matched against every key, with no early exit.

use std::sync::{PoisonError, RwLock};

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
///
/// The set can be swapped in place (`replace`, on a daemon reload) while requests read it; once
/// a proxy has required a key, a reload that leaves no keys keeps it closed rather than opening it.
#[derive(Debug, Default)]
pub struct ClientKeys {
    set: RwLock<KeySet>,
}

#[derive(Debug, Clone, Default)]
struct KeySet {
    keys: Vec<ClientKey>,
    /// Set once any key was added: the proxy stays closed even if every key goes away.
    required: bool,
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

impl Clone for ClientKeys {
    fn clone(&self) -> Self {
        Self {
            set: RwLock::new(self.read().clone()),
        }
    }
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.set.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&mut self, name: &str, key: &str) {
        self.add_digest(name, digest(key));
    }

    /// Adds a key stored only as its digest (keys created with `smartproxy keys create`).
    pub fn add_digest(&mut self, name: &str, digest: [u8; 32]) {
        let set = self.set.get_mut().unwrap_or_else(PoisonError::into_inner);
        set.keys.push(ClientKey {
            name: name.to_owned(),
            digest,
        });
        set.required = true;
    }

    /// Swaps in `fresh` for the keys accepted from now on. A proxy that required keys keeps
    /// requiring them even when `fresh` has none (every request is then refused).
    pub fn replace(&self, fresh: ClientKeys) {
        let fresh = fresh
            .set
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        let required = set.required || fresh.required;
        *set = KeySet {
            keys: fresh.keys,
            required,
        };
    }

    pub fn is_open(&self) -> bool {
        let set = self.read();
        set.keys.is_empty() && !set.required
    }

    pub fn len(&self) -> usize {
        self.read().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().keys.is_empty()
    }

    /// The name of the key `presented` is, if any.
    pub fn identify(&self, presented: &str) -> Option<String> {
        let presented = digest(presented);
        let set = self.read();
        let mut found = None;
        for key in &set.keys {
            if bool::from(key.digest.ct_eq(&presented)) && found.is_none() {
                found = Some(key.name.clone());
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
        assert_eq!(keys.identify("sk-abc").as_deref(), Some("session"));
        assert_eq!(keys.identify(" sk-cursor ").as_deref(), Some("cursor"));
        assert_eq!(keys.identify("sk-abd"), None);
        assert_eq!(keys.identify(""), None);
        assert!(!keys.is_open());
        assert!(ClientKeys::open().is_open());
        assert!(
            !format!("{keys:?}").contains("sk-"),
            "no key material in debug output"
        );
    }

    #[test]
    fn replace_swaps_keys_and_never_opens_a_closed_proxy() {
        let keys = ClientKeys::single("default", "sk-env");
        let mut fresh = ClientKeys::single("default", "sk-env");
        fresh.add_digest("cursor", digest("sk-cursor"));
        keys.replace(fresh);
        assert_eq!(keys.identify("sk-cursor").as_deref(), Some("cursor"));
        keys.replace(ClientKeys::open());
        assert!(!keys.is_open(), "a closed proxy stays closed");
        assert_eq!(keys.identify("sk-env"), None);

        let open = ClientKeys::open();
        let mut fresh = ClientKeys::open();
        fresh.add_digest("cursor", digest("sk-cursor"));
        open.replace(fresh);
        assert!(!open.is_open(), "keys created for an open proxy close it");
    }
}
