//! The shared ledger: what every session and request cost and how it went. Metadata only:
//! never prompts, responses, tool arguments, bodies or keys. A SQLite file by default; in team
//! mode (a PostgreSQL URL) the same handle writes into PostgreSQL (`postgres`).
//!
//! Writes go through one writer thread per process (`writer`), fed by a bounded channel that the
//! request path never waits on; the writer lets rows gather for up to 20 ms and commits them in
//! one short transaction. Reads (`query`) open their own connection.
//!
//! What a `kill -9` can lose: rows not committed yet. A streamed reply's row is committed before
//! the stream's end reaches the client (`committed`, used by the stream relay), so no stream the
//! client saw complete is lost. Any other reply's row is committed within the batch window
//! (`writer::BATCH_WINDOW`, 20 ms) plus the commit itself after the reply was sent: a kill loses
//! at most the replies of that last moment. A commit is all or nothing, so the file stays whole.

pub mod attribution;
pub mod export;
pub mod keys;
pub mod live;
mod migrations;
#[cfg(test)]
pub(crate) use migrations::UNDO_ATTRIB;
pub(crate) mod narrow;
pub mod pages;
pub mod periods;
pub mod postgres;
pub mod query;
mod readback;
pub mod reader;
mod record;
pub mod request_list;
pub mod request_view;
pub mod retention;
pub mod session_list;
pub mod session_parts;
pub mod spool;
pub mod time_groups;
pub mod usage;
mod writer;

pub use narrow::LEGACY_WRITES;
pub use writer::SPEND_BUCKET_MS;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

pub use record::{
    Anomaly, AttemptRow, Attribution, Billing, Outcome, RequestRecord, SessionEnd, SessionStart,
};
use rusqlite::Connection;

/// How many records may wait for the writer before new ones are dropped (and counted).
const QUEUE_CAPACITY: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot create the ledger folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no ledger at {path} yet: nothing has been recorded")]
    Missing { path: PathBuf },
    #[error("cannot open the ledger {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("ledger {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {path} has schema version {found}, newer than this smartproxy knows ({known}); upgrade smartproxy"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the ledger writer has stopped")]
    WriterGone,
    /// `url` is redacted (no password); `detail` is the driver's or the server's message.
    #[error("PostgreSQL ledger {url}: {detail}")]
    Postgres { url: String, detail: String },
    #[error(
        "the PostgreSQL ledger {url} has schema version {found}, newer than this smartproxy knows ({known}); upgrade smartproxy"
    )]
    PostgresTooNew { url: String, found: i64, known: i64 },
}

/// Every variant is at most two words, so a backlog of records costs little more than the records.
pub(crate) enum Message {
    Session(Box<SessionStart>),
    SessionEnd(Box<SessionEnd>),
    Request(Box<RequestRecord>),
    Anomaly(Box<Anomaly>),
    Flush(mpsc::Sender<()>),
    /// Like `Flush`, for async callers that must not block: answered once everything queued
    /// before it is committed (or could not be).
    Committed(tokio::sync::oneshot::Sender<()>),
}

/// A handle to the ledger for one process. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the rows go: the SQLite file, or the PostgreSQL URL (readers open it again).
    location: crate::config::LedgerLocation,
    postgres: Option<postgres::Handle>,
    /// Unbounded on its own (it allocates as records queue, where a bounded std channel
    /// allocated and touched every slot up front: 2.8 MB of each process's idle memory);
    /// `queued` bounds it at `QUEUE_CAPACITY`.
    tx: Sender<Message>,
    dropped: AtomicU64,
    /// Messages queued and not yet committed: counted before they are sent, subtracted by the
    /// writer once committed.
    queued: Arc<AtomicU64>,
    salt: String,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Ledger {
    /// Opens (creating and migrating when needed) the ledger at `path` and starts its writer.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        crate::private_files::prepare(path).map_err(|source| LedgerError::CreateDir {
            path: path.parent().unwrap_or(path).to_path_buf(),
            source,
        })?;
        let conn = open_connection(path)?;
        migrations::migrate(&conn, path)?;
        let salt =
            with_busy_retry(|| migrations::salt(&conn)).map_err(|source| LedgerError::Sql {
                path: path.to_path_buf(),
                source,
            })?;
        let queued = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".to_owned())
            .spawn({
                let queued = Arc::clone(&queued);
                move || writer::run(conn, rx, &queued)
            })
            .map_err(|e| LedgerError::CreateDir {
                path: path.to_path_buf(),
                source: e,
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                location: crate::config::LedgerLocation::Sqlite(path.to_path_buf()),
                postgres: None,
                tx,
                dropped: AtomicU64::new(0),
                queued,
                salt,
                thread: std::sync::Mutex::new(Some(thread)),
            }),
        })
    }

    /// Opens the ledger wherever the config puts it: a SQLite file, or PostgreSQL (connecting,
    /// migrating, refusing a newer schema). Blocks until it is ready; call it outside a runtime.
    pub fn open_at(location: &crate::config::LedgerLocation) -> Result<Self, LedgerError> {
        match location {
            crate::config::LedgerLocation::Sqlite(path) => Self::open(path),
            crate::config::LedgerLocation::Postgres(url) => Self::open_postgres(url),
        }
    }

    fn open_postgres(url: &crate::config::PgUrl) -> Result<Self, LedgerError> {
        let queued = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let started = postgres::start(url, rx, Arc::clone(&queued))?;
        Ok(Self {
            inner: Arc::new(Inner {
                location: crate::config::LedgerLocation::Postgres(url.clone()),
                postgres: Some(started.handle),
                tx,
                dropped: AtomicU64::new(0),
                queued,
                salt: started.salt,
                thread: std::sync::Mutex::new(Some(started.thread)),
            }),
        })
    }

    /// The SQLite file; `None` when the ledger is in PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.location {
            crate::config::LedgerLocation::Sqlite(path) => Some(path),
            crate::config::LedgerLocation::Postgres(_) => None,
        }
    }

    /// Where this ledger is, for opening a reader on the same rows.
    pub fn location(&self) -> &crate::config::LedgerLocation {
        &self.inner.location
    }

    /// The PostgreSQL ledger's pool, in team mode.
    pub fn postgres(&self) -> Option<&postgres::Handle> {
        self.inner.postgres.as_ref()
    }

    /// The per-ledger random salt for client and request fingerprints.
    pub fn salt(&self) -> &str {
        &self.inner.salt
    }

    pub fn session_started(&self, session: SessionStart) {
        self.enqueue(Message::Session(Box::new(session)));
    }

    pub fn session_ended(&self, end: SessionEnd) {
        self.enqueue(Message::SessionEnd(Box::new(end)));
    }

    /// Queues a request row. Never blocks: when the queue is full the row is counted as dropped.
    pub fn record(&self, record: RequestRecord) {
        self.enqueue(Message::Request(Box::new(record)));
    }

    /// Queues an anomaly (a circuit opening or closing). Never blocks.
    pub fn anomaly(&self, anomaly: Anomaly) {
        self.enqueue(Message::Anomaly(Box::new(anomaly)));
    }

    fn enqueue(&self, message: Message) {
        if !self.inner.reserve() {
            let n = self.inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "ledger queue full; records dropped");
            }
            return;
        }
        if self.inner.tx.send(message).is_err() {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("ledger writer stopped; record lost");
        }
    }

    /// Asks the writer to commit what is queued now, without waiting out its batch window; the
    /// answer comes when everything queued before this call is committed (or failed to be).
    /// Never blocks: `None` when the queue is full (the caller must not wait then).
    pub fn committed(&self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if !self.inner.reserve() {
            return None;
        }
        if self.inner.tx.send(Message::Committed(done_tx)).is_err() {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.inner.wake_writer();
        Some(done_rx)
    }

    /// Records waiting for the writer (the queue depth).
    pub fn queued(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Rows dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Blocks until everything queued before this call is committed (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> Result<(), LedgerError> {
        let (done_tx, done_rx) = mpsc::channel();
        // Past the bound on purpose: a flush carries no row, and its caller is waiting for it.
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        if self.inner.tx.send(Message::Flush(done_tx)).is_err() {
            self.inner.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(LedgerError::WriterGone);
        }
        self.inner.wake_writer();
        done_rx
            .recv_timeout(timeout)
            .map_err(|_| LedgerError::WriterGone)
    }
}

impl Inner {
    /// Counts one more queued message, unless `QUEUE_CAPACITY` are queued already.
    fn reserve(&self) -> bool {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        if before >= QUEUE_CAPACITY as u64 {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Ends the writer's wait for more rows (it waits parked; see `writer::BATCH_WINDOW`).
    fn wake_writer(&self) {
        if let Ok(guard) = self.thread.lock()
            && let Some(handle) = guard.as_ref()
        {
            handle.thread().unpark();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the last sender ends the writer loop after it drains the queue.
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        self.wake_writer();
        if let Ok(mut guard) = self.thread.lock()
            && let Some(handle) = guard.take()
        {
            let _ = handle.join();
        }
    }
}

/// Brings an existing ledger's schema up to date; a missing one is left for its first writer
/// to create. For the dashboards, which read through read-only connections that never migrate:
/// a ledger last opened by an older build lacks the columns they read.
pub fn upgrade_if_present(path: &Path) -> Result<(), LedgerError> {
    if !path.exists() {
        return Ok(());
    }
    migrations::migrate(&open_connection(path)?, path)
}

/// Opens a connection with the settings every process sharing the ledger must use.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, LedgerError> {
    let options = crate::db::Options {
        keep_wal_on_close: true,
        ..crate::db::Options::default()
    };
    crate::db::open(path, options).map_err(|source| LedgerError::Open {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) use crate::db::with_busy_retry;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    system_ms().saturating_add(test_clock_offset_ms())
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The test clock: in debug builds only (what the integration tests run), the variable
/// `SMARTPROXY_TEST_NOW` (epoch milliseconds or RFC 3339, `2026-12-07T22:00:00Z`) makes
/// [`now_ms`] start at that instant and run on from there, so budgets' days, weeks and rolling
/// windows can be crossed without waiting. A release build ignores it.
fn test_clock_offset_ms() -> i64 {
    if !cfg!(debug_assertions) {
        return 0;
    }
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let Ok(text) = std::env::var("SMARTPROXY_TEST_NOW") else {
            return 0;
        };
        let text = text.trim();
        let start = text.parse::<i64>().ok().or_else(|| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_millis())
        });
        start.map_or(0, |start| start - system_ms())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_what_does_not_fit_and_loses_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::open(&path).unwrap();
        // Another process holds the write lock: the writer waits, the queue fills.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let extra = 10;
        for i in 0..QUEUE_CAPACITY + extra {
            ledger.record(RequestRecord::new(format!("req_{i:08x}"), None, 1, "chat"));
        }
        assert_eq!(ledger.dropped(), extra as u64);
        assert_eq!(ledger.queued(), QUEUE_CAPACITY as u64);
        blocker.execute_batch("COMMIT").unwrap();
        ledger.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(ledger.queued(), 0);
        let rows: i64 = blocker
            .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, QUEUE_CAPACITY as i64);
    }

    #[test]
    fn a_queued_message_stays_small() {
        // The channel allocates blocks of slots as records queue: small messages keep a
        // backlog's memory that of the records themselves.
        assert!(
            std::mem::size_of::<Message>() <= 24,
            "{}",
            std::mem::size_of::<Message>()
        );
    }
}
