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
#[path = "store_tests.rs"]
mod tests;
