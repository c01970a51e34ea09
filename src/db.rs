//! The SQLite foundation every store shares (ledger, response cache, shared budgets, keys,
//! doctor): one way to open a file that many processes use at once, numbered migrations, and a
//! retry for the moments SQLite's busy handler does not cover.
//!
//! Errors stay `rusqlite::Error` here; each store wraps them with its own path and wording.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// How long a connection waits for another process's write before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-store settings on top of the shared ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Zero deleted content on disk instead of leaving it in free pages (the cache's entries).
    pub secure_delete: bool,
    /// Leave the WAL for the next process instead of checkpointing it when the last connection
    /// closes (the ledger): that checkpoint cost two fsyncs at the end of every `run`, even one
    /// that made no request. Checkpoints happen anyway as the WAL grows (every 1,000 pages, in
    /// whichever process commits then), and a WAL left behind loses nothing.
    pub keep_wal_on_close: bool,
}

/// Opens `path` read-write (creating it) with the settings every process sharing it must use:
/// WAL, `synchronous=NORMAL`, a busy timeout. The stores that create their files make them
/// private first (`crate::private_files`).
pub fn open(path: &Path, options: Options) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Waits instead of failing while another process writes.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching a new file to WAL takes an exclusive lock that SQLite does not wait for with the
    // busy handler, so processes creating the file at the same moment retry here instead.
    with_busy_retry(|| {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        Ok(())
    })?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if options.keep_wal_on_close {
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    if options.secure_delete {
        conn.pragma_update(None, "secure_delete", true)?;
    }
    Ok(conn)
}

/// Opens `path` for reading only: no file is created, no journal switched, nothing migrated.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    Ok(conn)
}

/// The schema version recorded in the file (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Applies the steps of `migrations` the file lacks (step N brings `user_version` to N + 1) and
/// returns the version found before. A version above `migrations.len()` is left untouched for
/// the caller to refuse. Safe from many processes at once: the check and the steps run in one
/// immediate transaction, retried while the file is busy.
pub fn migrate(conn: &Connection, migrations: &[&str]) -> rusqlite::Result<i64> {
    let known = migrations.len() as i64;
    with_busy_retry(|| {
        let current = schema_version(conn)?;
        if current >= known {
            return Ok(current);
        }
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited for the lock.
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, step) in migrations
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        Ok(current)
    })
}

/// Runs `f` in a short immediate transaction, again while the file is busy.
pub fn write<T>(
    conn: &Connection,
    f: impl Fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    with_busy_retry(|| {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    })
}

/// Runs `f` again while the database reports busy or locked, for up to about ten seconds on top
/// of `busy_timeout` (which does not cover every case, such as a WAL switch or a lock upgrade).
pub fn with_busy_retry<T>(f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    with_busy_retry_until(Instant::now() + BUSY_TIMEOUT, f)
}

/// [`with_busy_retry`] that gives up at `deadline` (a request that must not wait long).
pub fn with_busy_retry_until<T>(
    deadline: Instant,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(err) if is_busy(&err) && Instant::now() < deadline => {
                #[allow(
                    clippy::disallowed_methods,
                    reason = "busy retry on the caller's thread; async callers run it under spawn_blocking"
                )]
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Whether `err` means another connection holds the lock (worth waiting for).
pub fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &[
        "CREATE TABLE a (x INTEGER);",
        "ALTER TABLE a ADD COLUMN y TEXT;",
    ];

    #[test]
    fn migrates_from_any_version_and_leaves_newer_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = open(&path, Options::default()).unwrap();
        assert_eq!(migrate(&conn, &STEPS[..1]).unwrap(), 0);
        conn.execute("INSERT INTO a (x) VALUES (7)", []).unwrap();
        assert_eq!(migrate(&conn, STEPS).unwrap(), 1, "one step was missing");
        assert_eq!(schema_version(&conn).unwrap(), 2);
        let (x, y): (i64, Option<String>) = conn
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((x, y), (7, None), "old rows survive");
        assert_eq!(
            migrate(&conn, &STEPS[..1]).unwrap(),
            2,
            "a newer file is reported, not touched"
        );
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn read_only_opens_do_not_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        assert!(open_read_only(&path).is_err());
        assert!(!path.exists());
    }
}
