//! The keys a proxy accepts (client keys, and the admin key). Keys are kept as SHA-256 digests
//! and compared in constant time; a request is matched against every key, with no early exit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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
    /// Bumped whenever the set changes: what a connection remembered (`KeyMemo`) from an
    /// older set is not trusted.
    generation: AtomicU64,
}

/// The key a connection last presented, and the key it identified then, so that the requests
/// after the first on a keep-alive connection skip the SHA-256 of their key (an editor sends
/// hundreds on one connection). A hit needs the very same bytes, compared in constant time, and
/// the same key set: a reload or a revocation since (`ClientKeys::generation`) makes the next
/// request hash its key again. Only keys that were accepted are remembered; the bytes live as
/// long as the connection, as the request's own headers do.
#[derive(Default)]
pub struct KeyMemo(Mutex<Option<Remembered>>);

struct Remembered {
    generation: u64,
    presented: Box<[u8]>,
    key: Arc<ClientKey>,
}

impl std::fmt::Debug for KeyMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMemo")
    }
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
            generation: AtomicU64::new(self.generation.load(Ordering::Acquire)),
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
        *self.generation.get_mut() += 1;
    }

    /// Swaps in a team ledger's keys (the whole set, as read), leaving the others as they are.
    /// Any key closes an open proxy for good, as with `replace`.
    pub fn set_stored(&self, stored: Vec<ClientKey>) {
        let stored: Vec<Arc<ClientKey>> = stored.into_iter().map(Arc::new).collect();
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        set.required |= !stored.is_empty();
        set.stored = stored;
        self.generation.fetch_add(1, Ordering::AcqRel);
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
        self.generation.fetch_add(1, Ordering::AcqRel);
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
        Self::find(&self.read(), presented)
    }

    /// `identify`, answered from `memo` when this connection presented the same key to the same
    /// key set before (no SHA-256 then); an accepted key is remembered for the next request.
    pub fn identify_remembered(&self, presented: &str, memo: &KeyMemo) -> Option<Arc<ClientKey>> {
        let presented = presented.trim();
        let mut remembered = memo.0.lock().unwrap_or_else(PoisonError::into_inner);
        let set = self.read();
        // Read under the set's lock, which every change holds while it bumps it.
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(last) = remembered.as_ref()
            && last.generation == generation
            && bool::from(last.presented.as_ref().ct_eq(presented.as_bytes()))
        {
            return Some(Arc::clone(&last.key));
        }
        let found = Self::find(&set, presented);
        *remembered = found.as_ref().map(|key| Remembered {
            generation,
            presented: presented.as_bytes().into(),
            key: Arc::clone(key),
        });
        found
    }

    fn find(set: &KeySet, presented: &str) -> Option<Arc<ClientKey>> {
        let presented = digest(presented);
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
    fn a_connection_remembers_its_key_until_the_set_changes() {
        let keys = ClientKeys::single("session", "sk-abc");
        let memo = KeyMemo::default();
        let name = |found: Option<Arc<ClientKey>>| found.map(|k| k.name.clone());
        assert_eq!(
            name(keys.identify_remembered("sk-abc", &memo)).as_deref(),
            Some("session")
        );
        assert_eq!(
            name(keys.identify_remembered(" sk-abc ", &memo)).as_deref(),
            Some("session"),
            "trimmed as identify does"
        );
        assert!(keys.identify_remembered("sk-abd", &memo).is_none());
        assert!(keys.identify_remembered("sk-ab", &memo).is_none());
        assert!(keys.identify_remembered("", &memo).is_none());
        assert!(keys.identify_remembered("sk-abc", &memo).is_some());
        // A reload that drops the key: the remembered one is not trusted.
        keys.replace(ClientKeys::single("session", "sk-new"));
        assert!(keys.identify_remembered("sk-abc", &memo).is_none());
        assert!(keys.identify_remembered("sk-new", &memo).is_some());
        // A team ledger's revocation, the same.
        let team = ClientKeys::open();
        team.set_stored(vec![ClientKey::new("ana", digest("sk-ana"))]);
        let memo = KeyMemo::default();
        assert!(team.identify_remembered("sk-ana", &memo).is_some());
        team.set_stored(Vec::new());
        assert!(
            team.identify_remembered("sk-ana", &memo).is_none(),
            "revoked"
        );
        assert!(
            !format!("{memo:?}").contains("sk-"),
            "no key in debug output"
        );
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
