//! The SQLite store behind the response cache: one row per key with the gzipped (and, with a
//! cipher, AES-GCM-sealed) reply, TTL expiry, least-recently-used eviction under a byte cap, and
//! the figures `smartproxy cache stats` shows. Several processes may share one file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{CacheCipher, CacheError};
use crate::db::{self, with_busy_retry};

/// Numbered, append-only schema steps; `user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: entries, and a byte total kept by triggers so that a put does not sum the whole table.
    "CREATE TABLE entries (
         key TEXT PRIMARY KEY,
         model TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         last_used_ms INTEGER NOT NULL,
         expires_ms INTEGER NOT NULL,
         hits INTEGER NOT NULL DEFAULT 0,
         size_bytes INTEGER NOT NULL,
         encrypted INTEGER NOT NULL,
         prompt_tokens INTEGER NOT NULL,
         completion_tokens INTEGER NOT NULL,
         cost_usd REAL,
         payload BLOB NOT NULL
     );
     CREATE INDEX entries_lru ON entries(last_used_ms, size_bytes);
     CREATE INDEX entries_expires ON entries(expires_ms);
     CREATE INDEX entries_model ON entries(model);
     CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
     INSERT INTO totals (id, bytes) VALUES (1, 0);
     CREATE TRIGGER entries_insert AFTER INSERT ON entries BEGIN
         UPDATE totals SET bytes = bytes + new.size_bytes WHERE id = 1;
     END;
     CREATE TRIGGER entries_delete AFTER DELETE ON entries BEGIN
         UPDATE totals SET bytes = bytes - old.size_bytes WHERE id = 1;
     END;
     CREATE TRIGGER entries_resize AFTER UPDATE OF size_bytes ON entries BEGIN
         UPDATE totals SET bytes = bytes + new.size_bytes - old.size_bytes WHERE id = 1;
     END;",
];

/// Where the cache lives and how it behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The SQLite file, created (with its folder) when missing.
    pub path: PathBuf,
    /// How long an entry may be served after it was stored.
    pub ttl: Duration,
    /// Cap on the stored payload bytes; least recently used entries go first.
    pub max_bytes: u64,
    /// Seal entries with this key; None stores them gzipped only.
    pub cipher: Option<CacheCipher>,
}

/// One stored reply and what it cost when it was first produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedReply {
    /// The complete `chat.completion` JSON.
    pub body: Vec<u8>,
    /// The model that served it.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The original cost, which each hit saves.
    pub cost_usd: Option<f64>,
}

/// What `smartproxy cache stats` shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CacheStats {
    pub path: PathBuf,
    /// Rows in the file, expired ones included.
    pub entries: u64,
    /// Stored payload bytes (what `max_bytes` caps).
    pub bytes: u64,
    /// Size of the database file and its write-ahead log on disk.
    pub file_bytes: u64,
    /// Rows past their TTL, deleted on their next lookup or the next put.
    pub expired_entries: u64,
    pub hits: u64,
    /// Sum over entries of the original cost times the hits.
    pub saved_usd: f64,
    /// Creation times of the oldest and newest entries, in Unix milliseconds.
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    /// Whether this store seals new entries.
    pub encrypted: bool,
    /// Rows that are sealed (with whatever key wrote them).
    pub encrypted_entries: u64,
    /// Per served model, sorted by model name.
    pub models: Vec<ModelStats>,
}

/// The stats of the entries of one model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelStats {
    pub model: String,
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub saved_usd: f64,
}

/// A handle on the cache file. `Send + Sync`; calls are short but block, so async callers run
/// them on a blocking thread.
pub struct CacheStore {
    path: PathBuf,
    ttl_ms: i64,
    max_bytes: u64,
    cipher: Option<CacheCipher>,
    conn: Mutex<Connection>,
    /// Entries sealed differently than this store expects are misses; say so once, not per hit.
    warned_mismatch: AtomicBool,
}

impl std::fmt::Debug for CacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheStore")
            .field("path", &self.path)
            .field("ttl_ms", &self.ttl_ms)
            .field("max_bytes", &self.max_bytes)
            .field("encrypted", &self.cipher.is_some())
            .finish_non_exhaustive()
    }
}

struct Row {
    model: String,
    expires_ms: i64,
    encrypted: bool,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_usd: Option<f64>,
    payload: Vec<u8>,
}

impl CacheStore {
    /// Opens the cache file, creating it, its folder and its table when missing: WAL mode,
    /// `busy_timeout`, schema versioned by `user_version`. New files are private to the user.
    pub fn open(settings: CacheSettings) -> Result<Self, CacheError> {
        let path = settings.path;
        crate::private_files::prepare(&path).map_err(|source| CacheError::CreateDir {
            path: path.parent().unwrap_or(&path).to_path_buf(),
            source,
        })?;
        let conn = open_connection(&path)?;
        migrate(&conn, &path)?;
        Ok(Self {
            ttl_ms: i64::try_from(settings.ttl.as_millis()).unwrap_or(i64::MAX),
            max_bytes: settings.max_bytes,
            cipher: settings.cipher,
            conn: Mutex::new(conn),
            warned_mismatch: AtomicBool::new(false),
            path,
        })
    }

    /// The cache file, for messages and `cache stats`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether new entries are sealed.
    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// Looks `key` up. An expired entry is a miss (and is deleted); a hit updates the entry's
    /// last use and hit count. An entry this store cannot read (sealed with another key, sealed
    /// while this store has no key, or plain while this store seals) is a miss, not an error.
    pub fn get(&self, key: &str, now_ms: i64) -> Result<Option<CachedReply>, CacheError> {
        let conn = self.conn();
        let row = with_busy_retry(|| {
            conn.query_row(
                "SELECT model, expires_ms, encrypted, prompt_tokens, completion_tokens, cost_usd,
                        payload
                 FROM entries WHERE key = ?1",
                [key],
                |r| {
                    Ok(Row {
                        model: r.get(0)?,
                        expires_ms: r.get(1)?,
                        encrypted: r.get(2)?,
                        prompt_tokens: r.get(3)?,
                        completion_tokens: r.get(4)?,
                        cost_usd: r.get(5)?,
                        payload: r.get(6)?,
                    })
                },
            )
            .optional()
        })
        .map_err(|e| self.sql(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.expires_ms <= now_ms {
            // Another process may have stored a fresh entry since the read: delete only this one.
            with_busy_retry(|| {
                conn.execute(
                    "DELETE FROM entries WHERE key = ?1 AND expires_ms <= ?2",
                    params![key, now_ms],
                )
            })
            .map_err(|e| self.sql(e))?;
            return Ok(None);
        }
        let Some(body) = self.decode(key, row.encrypted, &row.payload) else {
            return Ok(None);
        };
        with_busy_retry(|| {
            conn.execute(
                "UPDATE entries SET last_used_ms = max(last_used_ms, ?2), hits = hits + 1
                 WHERE key = ?1",
                params![key, now_ms],
            )
        })
        .map_err(|e| self.sql(e))?;
        Ok(Some(CachedReply {
            body,
            model: row.model,
            prompt_tokens: u64::try_from(row.prompt_tokens).unwrap_or(0),
            completion_tokens: u64::try_from(row.completion_tokens).unwrap_or(0),
            cost_usd: row.cost_usd,
        }))
    }

    /// Stores `reply` under `key` (replacing any entry there), gzipped then sealed when the store
    /// has a cipher, expiring after the TTL. Then deletes expired entries and evicts the least
    /// recently used ones until the stored bytes fit `max_bytes`. A reply larger than the whole
    /// cap is not stored.
    pub fn put(&self, key: &str, reply: &CachedReply, now_ms: i64) -> Result<(), CacheError> {
        let compressed = gzip(&reply.body).map_err(|source| CacheError::Compress {
            path: self.path.clone(),
            source,
        })?;
        let (payload, encrypted) = match &self.cipher {
            Some(cipher) => (cipher.seal(&compressed, key.as_bytes())?, true),
            None => (compressed, false),
        };
        let size = payload.len() as u64;
        if size > self.max_bytes {
            tracing::debug!(
                size,
                max_bytes = self.max_bytes,
                "reply larger than the cache; not stored"
            );
            return Ok(());
        }
        let expires_ms = now_ms.saturating_add(self.ttl_ms);
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let conn = self.conn();
        with_busy_retry(|| {
            // Immediate: take the write lock up front so that the read inside (the byte total)
            // cannot go stale and force a retry of the whole transaction.
            let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO entries (key, model, created_ms, last_used_ms, expires_ms, hits,
                     size_bytes, encrypted, prompt_tokens, completion_tokens, cost_usd, payload)
                 VALUES (?1, ?2, ?3, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (key) DO UPDATE SET
                     model = excluded.model, created_ms = excluded.created_ms,
                     last_used_ms = excluded.last_used_ms, expires_ms = excluded.expires_ms,
                     hits = 0, size_bytes = excluded.size_bytes, encrypted = excluded.encrypted,
                     prompt_tokens = excluded.prompt_tokens,
                     completion_tokens = excluded.completion_tokens,
                     cost_usd = excluded.cost_usd, payload = excluded.payload",
                params![
                    key,
                    reply.model,
                    now_ms,
                    expires_ms,
                    to_i64(size),
                    encrypted,
                    to_i64(reply.prompt_tokens),
                    to_i64(reply.completion_tokens),
                    reply.cost_usd,
                    payload,
                ],
            )?;
            tx.execute("DELETE FROM entries WHERE expires_ms <= ?1", [now_ms])?;
            evict(&tx, key, to_i64(self.max_bytes))?;
            tx.commit()
        })
        .map_err(|e| self.sql(e))
    }

    /// The figures for `smartproxy cache stats`; `now_ms` decides which entries count as expired.
    pub fn stats(&self, now_ms: i64) -> Result<CacheStats, CacheError> {
        let conn = self.conn();
        let mut stats = with_busy_retry(|| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0),
                        COALESCE(SUM(expires_ms <= ?1), 0), COALESCE(SUM(hits), 0),
                        COALESCE(SUM(cost_usd * hits), 0.0), MIN(created_ms), MAX(created_ms),
                        COALESCE(SUM(encrypted), 0)
                 FROM entries",
                [now_ms],
                |r| {
                    Ok(CacheStats {
                        entries: r.get::<_, i64>(0)?.unsigned_abs(),
                        bytes: r.get::<_, i64>(1)?.unsigned_abs(),
                        expired_entries: r.get::<_, i64>(2)?.unsigned_abs(),
                        hits: r.get::<_, i64>(3)?.unsigned_abs(),
                        saved_usd: r.get(4)?,
                        oldest_ms: r.get(5)?,
                        newest_ms: r.get(6)?,
                        encrypted_entries: r.get::<_, i64>(7)?.unsigned_abs(),
                        ..CacheStats::default()
                    })
                },
            )
        })
        .map_err(|e| self.sql(e))?;
        stats.models = with_busy_retry(|| {
            let mut stmt = conn.prepare_cached(
                "SELECT model, COUNT(*), SUM(size_bytes), SUM(hits),
                        COALESCE(SUM(cost_usd * hits), 0.0)
                 FROM entries GROUP BY model ORDER BY model",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ModelStats {
                    model: r.get(0)?,
                    entries: r.get::<_, i64>(1)?.unsigned_abs(),
                    bytes: r.get::<_, i64>(2)?.unsigned_abs(),
                    hits: r.get::<_, i64>(3)?.unsigned_abs(),
                    saved_usd: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .map_err(|e| self.sql(e))?;
        stats.path = self.path.clone();
        stats.encrypted = self.cipher.is_some();
        stats.file_bytes = [self.path.clone(), wal_path(&self.path)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        Ok(stats)
    }

    /// Deletes every entry, or only those of `model`; returns how many rows went.
    pub fn clear(&self, model: Option<&str>) -> Result<u64, CacheError> {
        let conn = self.conn();
        let deleted = with_busy_retry(|| match model {
            Some(model) => conn.execute("DELETE FROM entries WHERE model = ?1", [model]),
            None => conn.execute("DELETE FROM entries", []),
        })
        .map_err(|e| self.sql(e))?;
        Ok(deleted as u64)
    }

    /// Unseals and gunzips a payload; None (a miss) when this store cannot read it.
    fn decode(&self, key: &str, encrypted: bool, payload: &[u8]) -> Option<Vec<u8>> {
        let compressed = match (&self.cipher, encrypted) {
            (Some(cipher), true) => match cipher.open(payload, key.as_bytes()) {
                Ok(plain) => plain,
                Err(_) => {
                    self.warn_mismatch("an entry does not decrypt with this key (written with another SMARTPROXY_CACHE_KEY?)");
                    return None;
                }
            },
            (None, false) => payload.to_vec(),
            (None, true) => {
                self.warn_mismatch("an entry is encrypted but cache encryption is off");
                return None;
            }
            (Some(_), false) => {
                self.warn_mismatch("an entry is not encrypted but cache encryption is on");
                return None;
            }
        };
        match gunzip(&compressed) {
            Ok(body) => Some(body),
            Err(err) => {
                tracing::warn!(path = %self.path.display(), %err, "corrupt cache entry; ignored");
                None
            }
        }
    }

    fn warn_mismatch(&self, what: &str) {
        if !self.warned_mismatch.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = %self.path.display(),
                "response cache: {what}; treating such entries as misses"
            );
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: any open transaction was
        // rolled back when it dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql(&self, source: rusqlite::Error) -> CacheError {
        CacheError::Sql {
            path: self.path.clone(),
            source,
        }
    }
}

/// Deletes least recently used entries (never `keep`) until the stored bytes fit `max_bytes`.
fn evict(tx: &rusqlite::Transaction<'_>, keep: &str, max_bytes: i64) -> rusqlite::Result<()> {
    let total: i64 = tx.query_row("SELECT bytes FROM totals WHERE id = 1", [], |r| r.get(0))?;
    let mut excess = total.saturating_sub(max_bytes);
    if excess <= 0 {
        return Ok(());
    }
    let mut victims = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT rowid, size_bytes FROM entries WHERE key <> ?1
             ORDER BY last_used_ms, rowid",
        )?;
        let mut rows = stmt.query([keep])?;
        while excess > 0 {
            let Some(row) = rows.next()? else { break };
            victims.push(row.get::<_, i64>(0)?);
            excess -= row.get::<_, i64>(1)?;
        }
    }
    let mut delete = tx.prepare_cached("DELETE FROM entries WHERE rowid = ?1")?;
    for rowid in victims {
        delete.execute([rowid])?;
    }
    Ok(())
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3 + 64),
        flate2::Compression::default(),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

fn gunzip(payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(payload.len() * 3);
    flate2::read::GzDecoder::new(payload).read_to_end(&mut body)?;
    Ok(body)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Opens a connection with the settings every process sharing the file must use; deleted and
/// evicted entries are zeroed on disk rather than left in free pages.
fn open_connection(path: &Path) -> Result<Connection, CacheError> {
    db::open(
        path,
        db::Options {
            secure_delete: true,
            ..db::Options::default()
        },
    )
    .map_err(|source| CacheError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Brings the schema up to date; safe from many processes at once.
fn migrate(conn: &Connection, path: &Path) -> Result<(), CacheError> {
    let known = MIGRATIONS.len() as i64;
    let found = db::migrate(conn, MIGRATIONS).map_err(|source| CacheError::Sql {
        path: path.to_path_buf(),
        source,
    })?;
    if found > known {
        return Err(CacheError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const KEY_A: &str = "8f3a1c0e5b7d294688a1f0c3e2d4b6a79c8e1f2a3b4c5d6e7f8091a2b3c4d5e6";
    const KEY_B: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
    const HOUR: Duration = Duration::from_secs(3600);

    fn settings(path: &Path, max_bytes: u64, key: Option<&str>) -> CacheSettings {
        CacheSettings {
            path: path.to_path_buf(),
            ttl: HOUR,
            max_bytes,
            cipher: key.map(|k| CacheCipher::from_env_value(k).unwrap()),
        }
    }

    fn store(path: &Path, key: Option<&str>) -> CacheStore {
        CacheStore::open(settings(path, 1 << 30, key)).unwrap()
    }

    fn reply(model: &str, content: &str) -> CachedReply {
        let body = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        });
        CachedReply {
            body: serde_json::to_vec(&body).unwrap(),
            model: model.to_owned(),
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: Some(0.25),
        }
    }

    /// Content that gzip cannot shrink much, so entry sizes are predictable.
    fn noise(seed: u64, len: usize) -> String {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .filter(|c| *c != '"' && *c != '\\')
            .collect()
    }

    fn counter(store: &CacheStore) -> i64 {
        store
            .conn()
            .query_row("SELECT bytes FROM totals", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn stores_and_returns_replies_with_their_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.db");
        for key in [None, Some(KEY_A)] {
            let store = store(&path, key);
            store.clear(None).unwrap();
            assert_eq!(store.get("k1", 1_000).unwrap(), None);
            let stored = reply("gpt-4o-mini", "Hello there");
            store.put("k1", &stored, 1_000).unwrap();
            assert_eq!(store.get("k1", 2_000).unwrap(), Some(stored.clone()));
            assert_eq!(store.get("k1", 3_000).unwrap(), Some(stored.clone()));
            assert_eq!(store.get("k2", 3_000).unwrap(), None);
            let stats = store.stats(3_000).unwrap();
            assert_eq!(stats.entries, 1);
            assert_eq!(stats.hits, 2);
            assert!((stats.saved_usd - 0.5).abs() < 1e-9, "{}", stats.saved_usd);
            assert_eq!(stats.encrypted, key.is_some());
            assert_eq!(stats.encrypted_entries, u64::from(key.is_some()));
            // Storing again replaces the entry and starts its hit count over.
            store
                .put("k1", &reply("gpt-4o-mini", "Bye"), 4_000)
                .unwrap();
            assert_eq!(store.stats(4_000).unwrap().hits, 0);
            assert_eq!(
                store.get("k1", 4_001).unwrap().unwrap().body,
                reply("gpt-4o-mini", "Bye").body
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "cache file is private: {mode:o}");
        }
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let store = CacheStore::open(CacheSettings {
            ttl: Duration::from_millis(1_000),
            ..settings(&dir.path().join("c.db"), 1 << 20, None)
        })
        .unwrap();
        store.put("old", &reply("m", "y"), 5_000).unwrap();
        store.put("k", &reply("m", "x"), 10_000).unwrap();
        assert_eq!(
            store.stats(10_000).unwrap().entries,
            1,
            "put purged expired"
        );
        assert!(store.get("k", 10_999).unwrap().is_some());
        let stats = store.stats(11_000).unwrap();
        assert_eq!((stats.entries, stats.expired_entries), (1, 1));
        assert_eq!(store.get("k", 11_000).unwrap(), None);
        assert_eq!(store.stats(11_000).unwrap().entries, 0, "deleted on lookup");
        assert_eq!(counter(&store), 0);
    }

    #[test]
    fn evicts_least_recently_used_entries_to_fit_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let probe = store(&dir.path().join("probe.db"), None);
        probe.put("p", &reply("m", &noise(99, 3000)), 0).unwrap();
        let one = probe.stats(0).unwrap().bytes;
        assert!(one > 2000, "noise should not compress much: {one}");

        let max = one * 3 + one / 2;
        let store = CacheStore::open(settings(&dir.path().join("c.db"), max, None)).unwrap();
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            store
                .put(key, &reply("m", &noise(i as u64, 3000)), i as i64 * 10)
                .unwrap();
        }
        // Touch `a`: `b` is now the least recently used.
        assert!(store.get("a", 100).unwrap().is_some());
        store.put("d", &reply("m", &noise(7, 3000)), 200).unwrap();
        assert!(store.get("b", 300).unwrap().is_none(), "b evicted");
        for key in ["a", "c", "d"] {
            assert!(store.get(key, 300).unwrap().is_some(), "{key} kept");
        }
        let stats = store.stats(300).unwrap();
        assert!(stats.bytes <= max, "{} > {max}", stats.bytes);
        assert_eq!(stats.entries, 3);
        assert_eq!(i64::try_from(stats.bytes).unwrap(), counter(&store));

        // A reply larger than the whole cap is not stored and evicts nothing.
        store
            .put("huge", &reply("m", &noise(8, 20_000)), 400)
            .unwrap();
        assert!(store.get("huge", 400).unwrap().is_none());
        assert_eq!(store.stats(400).unwrap().entries, 3);
    }

    #[test]
    fn clears_everything_or_one_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir.path().join("c.db"), None);
        store.put("1", &reply("gpt-4o", "a"), 0).unwrap();
        store.put("2", &reply("gpt-4o", "b"), 0).unwrap();
        store.put("3", &reply("claude", "c"), 0).unwrap();
        store.get("3", 1).unwrap();
        let stats = store.stats(1).unwrap();
        let models: Vec<(&str, u64, u64)> = stats
            .models
            .iter()
            .map(|m| (m.model.as_str(), m.entries, m.hits))
            .collect();
        assert_eq!(models, vec![("claude", 1, 1), ("gpt-4o", 2, 0)]);
        assert_eq!((stats.oldest_ms, stats.newest_ms), (Some(0), Some(0)));
        assert!(stats.file_bytes > 0);
        assert_eq!(store.clear(Some("nope")).unwrap(), 0);
        assert_eq!(store.clear(Some("gpt-4o")).unwrap(), 2);
        assert!(store.get("3", 2).unwrap().is_some());
        assert_eq!(store.clear(None).unwrap(), 1);
        let stats = store.stats(2).unwrap();
        assert_eq!((stats.entries, stats.bytes), (0, 0));
        assert_eq!((stats.oldest_ms, stats.newest_ms), (None, None));
        assert!(stats.models.is_empty());
        assert_eq!(counter(&store), 0);
    }

    #[test]
    fn entries_sealed_differently_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        store(&path, Some(KEY_A))
            .put("sealed", &reply("m", "s"), 0)
            .unwrap();
        store(&path, None)
            .put("plain", &reply("m", "p"), 0)
            .unwrap();
        for (key, readable) in [
            (None, "plain"),
            (Some(KEY_A), "sealed"),
            (Some(KEY_B), "none"),
        ] {
            let store = store(&path, key);
            for entry in ["sealed", "plain"] {
                assert_eq!(
                    store.get(entry, 1).unwrap().is_some(),
                    entry == readable,
                    "{entry} with {key:?}"
                );
            }
        }
        // Misses did not delete anything: the right key still reads its entry.
        assert!(
            store(&path, Some(KEY_A))
                .get("sealed", 2)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn encrypted_entries_never_reach_the_disk_in_clear() {
        const CANARY: &str = "CANARY-prompt-9f2c41d7-answer";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cache = store(&path, Some(KEY_A));
        for i in 0..20 {
            cache
                .put(&format!("k{i}"), &reply("m", &format!("{CANARY} {i}")), i)
                .unwrap();
        }
        let back = cache.get("k3", 30).unwrap().unwrap();
        assert!(String::from_utf8(back.body).unwrap().contains(CANARY));
        let scan = |expect_wal: bool| {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let entry = entry.unwrap();
                let bytes = std::fs::read(entry.path()).unwrap();
                names.push(entry.file_name().to_string_lossy().into_owned());
                assert!(memchr::memmem::find(&bytes, CANARY.as_bytes()).is_none());
                assert!(memchr::memmem::find(&bytes, b"chat.completion").is_none());
            }
            assert_eq!(
                names.iter().any(|n| n.ends_with("-wal")),
                expect_wal,
                "{names:?}"
            );
        };
        // While open the entries sit in the WAL; after the last close, in the main file.
        scan(true);
        drop(cache);
        scan(false);

        // The same check finds the canary in the clear when it is there: the test can fail.
        let plain_dir = tempfile::tempdir().unwrap();
        let plain_path = plain_dir.path().join("p.db");
        let plain = store(&plain_path, None);
        let mut body = reply("m", "x");
        body.model = CANARY.to_owned();
        plain.put("k", &body, 0).unwrap();
        let wal = std::fs::read(wal_path(&plain_path)).unwrap();
        assert!(memchr::memmem::find(&wal, CANARY.as_bytes()).is_some());
    }

    #[test]
    fn two_handles_write_the_same_file_from_two_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let store = CacheStore::open(settings(&path, 200_000, None)).unwrap();
                    for i in 0..150_i64 {
                        let key = format!("t{t}-{i}");
                        store
                            .put(&key, &reply("m", &noise(i as u64, 500)), i)
                            .unwrap();
                        assert!(store.get(&key, i).unwrap().is_some());
                        store.get(&format!("t{}-{i}", 1 - t), i).unwrap();
                        if i % 50 == 0 {
                            store.stats(i).unwrap();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let store = store(&path, None);
        let stats = store.stats(1_000).unwrap();
        assert!(stats.entries > 0 && stats.bytes <= 200_000);
        assert_eq!(i64::try_from(stats.bytes).unwrap(), counter(&store));
    }

    #[test]
    fn refuses_a_newer_schema_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        drop(store(&path, None));
        drop(store(&path, None)); // reopening an up-to-date file is fine
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = CacheStore::open(settings(&path, 1, None)).unwrap_err();
        assert!(matches!(err, CacheError::TooNew { found: 99, .. }));
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");

        let err = CacheStore::open(settings(dir.path(), 1, None)).unwrap_err();
        assert!(
            err.to_string().contains(&*dir.path().to_string_lossy()),
            "{err}"
        );
    }
}
