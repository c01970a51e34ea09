//! The keys a proxy accepts (client keys, and the admin key). Keys are kept as SHA-256 digests
//! and compared in constant time; a request is matched against every key, with no early exit.

use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One accepted key, by name (the ledger tags its traffic with the name).
///
/// Keys from a team (PostgreSQL) ledger also say who holds them and their limits; the budget
/// phase reads them from `Admitted::client_key`. Keys from the config, `SMARTPROXY_API_KEY` or
/// a SQLite ledger have no user or team.
#[derive(Clone)]
pub struct ClientKey {
    pub name: String,
    digest: [u8; 32],
    pub user: Option<String>,
    pub team: Option<String>,
    /// Whom its requests are charged to, with their limits: the key itself, its user and its
    /// team (a team ledger's key; the shared budget admits a request against each limit set).
    pub payers: Vec<crate::budget::scopes::Payer>,
}

impl ClientKey {
    /// A key known by its digest only, without a user, team or limits.
    pub fn new(name: &str, digest: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            digest,
            user: None,
            team: None,
            payers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("team", &self.team)
            .finish_non_exhaustive()
    }
}

/// The keys a proxy accepts. No keys: the proxy is open (the daemon on loopback by default).
///
/// The set can be swapped in place (`replace`, on a daemon reload) while requests read it; once
/// a proxy has required a key, a reload that leaves no keys keeps it closed rather than opening it.
/// A team ledger's keys are a second part of the set, swapped on their own (`set_stored`) by
/// the daemon's key watcher whenever the ledger says they changed.
#[derive(Debug, Default)]
pub struct ClientKeys {
    set: RwLock<KeySet>,
}

#[derive(Debug, Clone, Default)]
struct KeySet {
    /// The keys of the config, the environment and a SQLite ledger (`replace` swaps them).
    keys: Vec<Arc<ClientKey>>,
    /// The keys of a team ledger, swapped by its watcher (`set_stored`) on their own, so a
    /// config reload keeps them and a key change keeps the config's.
    stored: Vec<Arc<ClientKey>>,
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
        set.keys.push(Arc::new(ClientKey::new(name, digest)));
        set.required = true;
    }

    /// Swaps in a team ledger's keys (the whole set, as read), leaving the others as they are.
    /// Any key closes an open proxy for good, as with `replace`.
    pub fn set_stored(&self, stored: Vec<ClientKey>) {
        let stored: Vec<Arc<ClientKey>> = stored.into_iter().map(Arc::new).collect();
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        set.required |= !stored.is_empty();
        set.stored = stored;
    }

    /// The names of the team ledger's keys accepted now.
    pub fn stored_names(&self) -> Vec<String> {
        self.read().stored.iter().map(|k| k.name.clone()).collect()
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
        set.keys = fresh.keys;
        set.required = required;
    }

    pub fn is_open(&self) -> bool {
        let set = self.read();
        set.keys.is_empty() && set.stored.is_empty() && !set.required
    }

    pub fn len(&self) -> usize {
        let set = self.read();
        set.keys.len() + set.stored.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key `presented` is, if any. Every key is compared, with no early exit; the lock is
    /// a plain read lock held for the loop only (never across an await).
    pub fn identify(&self, presented: &str) -> Option<Arc<ClientKey>> {
        let presented = digest(presented);
        let set = self.read();
        let mut found = None;
        for key in set.keys.iter().chain(&set.stored) {
            if bool::from(key.digest.ct_eq(&presented)) && found.is_none() {
                found = Some(Arc::clone(key));
            }
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifies_keys_by_name() {
        let mut keys = ClientKeys::single("session", "sk-abc");
        keys.add("cursor", "sk-cursor");
        assert_eq!(
            keys.identify("sk-abc").map(|k| k.name.clone()).as_deref(),
            Some("session")
        );
        assert_eq!(
            keys.identify(" sk-cursor ")
                .map(|k| k.name.clone())
                .as_deref(),
            Some("cursor")
        );
        assert!(keys.identify("sk-abd").is_none());
        assert!(keys.identify("").is_none());
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
        assert_eq!(
            keys.identify("sk-cursor")
                .map(|k| k.name.clone())
                .as_deref(),
            Some("cursor")
        );
        keys.replace(ClientKeys::open());
        assert!(!keys.is_open(), "a closed proxy stays closed");
        assert!(keys.identify("sk-env").is_none());

        let open = ClientKeys::open();
        let mut fresh = ClientKeys::open();
        fresh.add_digest("cursor", digest("sk-cursor"));
        open.replace(fresh);
        assert!(!open.is_open(), "keys created for an open proxy close it");
    }

    #[test]
    fn stored_keys_are_swapped_apart_from_the_configured_ones() {
        let keys = ClientKeys::single("default", "sk-env");
        let mut team = ClientKey::new("ana", digest("sk-ana"));
        team.user = Some("ana".to_owned());
        team.team = Some("search".to_owned());
        let own = crate::budget::scopes::Payer {
            holder: crate::budget::scopes::Holder::Key,
            name: "ana".to_owned(),
            daily_usd: Some(5.0),
            monthly_usd: None,
            weekly_usd: None,
            windows: Vec::new(),
        };
        team.payers = vec![own.clone()];
        keys.set_stored(vec![team]);
        let found = keys.identify("sk-ana").unwrap();
        assert_eq!(found.user.as_deref(), Some("ana"));
        assert_eq!(found.team.as_deref(), Some("search"));
        assert_eq!(found.payers, vec![own]);
        assert_eq!(keys.len(), 2);
        // A config reload keeps the ledger's keys; a ledger change keeps the config's.
        keys.replace(ClientKeys::single("default", "sk-env2"));
        assert!(keys.identify("sk-ana").is_some());
        assert!(keys.identify("sk-env2").is_some());
        keys.set_stored(Vec::new());
        assert!(keys.identify("sk-ana").is_none(), "revoked");
        assert!(keys.identify("sk-env2").is_some());
        assert_eq!(keys.stored_names(), Vec::<String>::new());

        let open = ClientKeys::open();
        open.set_stored(vec![ClientKey::new("ci", digest("sk-ci"))]);
        assert!(!open.is_open(), "a team key closes an open proxy");
        open.set_stored(Vec::new());
        assert!(!open.is_open(), "and it stays closed");
    }
}
