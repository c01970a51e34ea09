//! Team mode's ledger backend: the same `Ledger` handle, its rows written into PostgreSQL.
//!
//! One writer thread per process (as with SQLite) takes the same `Message`s off the same
//! bounded queue and commits them in batches (`writer`); it drives a small tokio runtime of its
//! own (one worker, which also keeps the pooled connections' I/O going) so the request path never
//! waits on PostgreSQL. Reads for `run`'s summary (`read`) and `doctor` (`check`) go through the
//! same pool; the read commands (`stats`, `sessions`, `status`, `export`) and the web pages
//! connect on their own (`query`, `export`, `pages`).
//!
//! Client keys live here too (`keys`: `smartproxy keys` and the daemons' `LISTEN` loop).
//!
//! Shared budgets live here too (`budget`): counters admitted atomically, settled by the writer.
//!
//! `prune` drops whole monthly partitions (`retention`). Every connection goes through `tls`'s
//! one connector: TLS with rustls when the URL's `sslmode` asks for it.
//!
//! While PostgreSQL cannot take a batch the writer puts it in a local SQLite spool
//! (`ledger::spool`, `spooling`) and drains it when PostgreSQL answers again. A process that
//! starts while PostgreSQL is unreachable starts anyway and spools (one warning says so), with
//! the PostgreSQL salt it saw last (or the spool's own, the first time); the schema is checked
//! when PostgreSQL is back. A bad URL, password or database name still fails at start.

pub mod attribution;
pub mod budget;
pub mod export;
pub mod import;
pub mod keys;
pub mod live;
pub mod migrations;
pub mod pages;
pub mod query;
pub mod read;
pub mod request_list;
pub mod retention;
pub mod rows;
pub mod session_list;
mod spooling;
pub mod tls;
mod writer;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use super::{LedgerError, Message};
use crate::config::PgUrl;

/// Connections in one process's pool: the writer's, and one or two for reads.
const POOL_SIZE: usize = 4;

/// How long connecting (and waiting for a pooled connection) may take before it counts as a
/// failure; the writer then retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A process's way into the PostgreSQL ledger: its pool, on the writer's runtime.
#[derive(Clone)]
pub struct Handle {
    runtime: tokio::runtime::Handle,
    pool: Pool,
    url: String,
}

/// What `start` hands the `Ledger`: the writer thread, the salt and the handle for reads.
pub(super) struct Started {
    pub thread: JoinHandle<()>,
    pub salt: String,
    pub handle: Handle,
}

/// The driver's error in one line: its database message and code when the server answered.
pub fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        // The server refuses plain connections (`hostssl` only in pg_hba.conf).
        Some(db) if db.code().code() == "28000" && db.message().ends_with("no encryption") => {
            format!(
                "{} ({}); the server accepts only TLS: add ?sslmode=verify-full&sslrootcert=PATH (or sslmode=require) to the URL",
                db.message(),
                db.code().code()
            )
        }
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// The pool's error in one line, the driver's own message when it has one.
pub fn describe_pool(err: &deadpool_postgres::PoolError) -> String {
    match err {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}

fn pool_error(url: &str, err: deadpool_postgres::PoolError) -> LedgerError {
    LedgerError::Postgres {
        url: url.to_owned(),
        detail: describe_pool(&err),
    }
}

fn db_error(url: &str, err: &tokio_postgres::Error) -> LedgerError {
    LedgerError::Postgres {
        url: url.to_owned(),
        detail: describe(err),
    }
}

fn pool(url: &PgUrl) -> Result<Pool, LedgerError> {
    let fail = |detail: String| LedgerError::Postgres {
        url: url.redacted().to_owned(),
        detail,
    };
    let (mut config, tls) = tls::connect_config(url).map_err(fail)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("smartproxy");
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| fail(e.to_string()))
}

/// Connects, migrates (refusing a newer schema), reads the salt and starts the writer thread.
/// Blocks until the database answered; never call it from inside a runtime's worker.
pub(super) fn start(
    url: &PgUrl,
    rx: Receiver<Message>,
    queued: Arc<AtomicU64>,
) -> Result<Started, LedgerError> {
    let redacted = url.redacted().to_owned();
    let spawn_error = |source: std::io::Error| LedgerError::Postgres {
        url: redacted.clone(),
        detail: format!("cannot start the ledger writer: {source}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ledger-pg")
        .enable_all()
        .build()
        .map_err(spawn_error)?;
    let pool = pool(url)?;
    let handle = Handle {
        runtime: runtime.handle().clone(),
        pool: pool.clone(),
        url: redacted.clone(),
    };
    let spool = match super::spool::Spool::open(&super::spool::default_path()) {
        Ok(spool) => Some(spool),
        Err(err) => {
            tracing::warn!(error = %err, "no ledger spool: rows PostgreSQL cannot take are lost");
            None
        }
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("ledger-writer".to_owned())
        .spawn({
            let handle = handle.clone();
            move || {
                let (opened, ready) = match runtime.block_on(open(&handle)) {
                    Ok(salt) => {
                        if let Some(spool) = &spool
                            && let Err(err) = spool.remember_salt(&handle.url, &salt)
                        {
                            tracing::debug!(error = %err, "cannot note the salt in the spool");
                        }
                        (Ok(salt), true)
                    }
                    Err(OpenError::Unreachable(err)) if spool.is_some() => {
                        (offline_salt(spool.as_ref(), &handle.url, &err), false)
                    }
                    Err(OpenError::Unreachable(err) | OpenError::Fatal(err)) => (Err(err), false),
                };
                let ok = opened.is_ok();
                let _ = ready_tx.send(opened);
                if ok {
                    let state = spooling::State::new(spool, ready);
                    spooling::run(&runtime, &handle, &rx, &queued, state);
                }
                // Connections still open close with the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
            }
        })
        .map_err(spawn_error)?;
    let salt = match ready_rx.recv() {
        Ok(Ok(salt)) => salt,
        Ok(Err(err)) => {
            let _ = thread.join();
            return Err(err);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(LedgerError::WriterGone);
        }
    };
    Ok(Started {
        thread,
        salt,
        handle,
    })
}

/// Why the first connection failed: PostgreSQL could not be reached (worth spooling for), or
/// it answered with something that will not change by waiting (a wrong password or database,
/// a newer schema).
pub(super) enum OpenError {
    Unreachable(LedgerError),
    Fatal(LedgerError),
}

/// The first connection: migrations under the advisory lock, then the salt.
pub(super) async fn open(handle: &Handle) -> Result<String, OpenError> {
    let mut client = handle.pool.get().await.map_err(|e| {
        // A refused certificate will not change by waiting either: no spooling behind it.
        let fatal = matches!(&e, deadpool_postgres::PoolError::Backend(b)
            if (b.code().is_some() && !writer::retryable(b)) || tls::refused(b));
        let err = pool_error(&handle.url, e);
        if fatal {
            OpenError::Fatal(err)
        } else {
            OpenError::Unreachable(err)
        }
    })?;
    let client: &mut tokio_postgres::Client = &mut client;
    migrations::migrate(client).await.map_err(|e| match e {
        migrations::MigrateError::TooNew { found } => {
            OpenError::Fatal(LedgerError::PostgresTooNew {
                url: handle.url.clone(),
                found,
                known: migrations::CURRENT,
            })
        }
        migrations::MigrateError::Db(e) if writer::retryable(&e) => {
            OpenError::Unreachable(db_error(&handle.url, &e))
        }
        migrations::MigrateError::Db(e) => OpenError::Fatal(db_error(&handle.url, &e)),
    })
}

/// The salt of a process that starts while PostgreSQL is down: the PostgreSQL ledger's as the
/// spool last saw it, else the spool's own (fingerprints of those rows then differ from the
/// team's; a first start offline is rare). Says once, on stderr, where the rows go.
fn offline_salt(
    spool: Option<&super::spool::Spool>,
    url: &str,
    why: &LedgerError,
) -> Result<String, LedgerError> {
    let spool = spool.ok_or(LedgerError::WriterGone)?;
    tracing::warn!(
        "{why}; recording into the local spool {} until PostgreSQL answers (then the schema is checked and the spool sent)",
        spool.path().display()
    );
    match spool.remembered_salt(url) {
        Some(salt) => Ok(salt),
        None => spool.own_salt().map_err(|source| LedgerError::Sql {
            path: spool.path().to_path_buf(),
            source,
        }),
    }
}

impl Handle {
    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` on the ledger's runtime with a pooled connection and waits for it (up to a
    /// minute). For synchronous callers outside any runtime (`run`'s closing summary).
    pub fn block_on<T, F, Fut>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let (tx, rx) = mpsc::channel();
        let pool = self.pool.clone();
        let url = self.url.clone();
        // Not fire-and-forget: this caller waits for the task's answer below (a runtime that
        // stopped meanwhile drops the task, and with it the sender: the wait ends at once).
        drop(self.runtime.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => f(client).await.map_err(|e| db_error(&url, &e)),
                Err(e) => Err(pool_error(&url, e)),
            };
            let _ = tx.send(result);
        }));
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| LedgerError::WriterGone)?
    }
}

/// What `doctor` reports about a PostgreSQL ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The schema version found (0: smartproxy never wrote there yet).
    pub schema_version: i64,
    /// The version this build writes.
    pub known_version: i64,
    /// The server's clock minus this machine's, in milliseconds.
    pub clock_skew_ms: i64,
    /// The TLS version of the connection as the server saw it (`pg_stat_ssl`); `None`: plain.
    pub tls_version: Option<String>,
}

/// Connects once (its own short-lived runtime, on a thread of its own so it may be called from
/// anywhere) and reads the schema version and the server's clock. Writes nothing.
pub fn check(url: &PgUrl) -> Result<Check, LedgerError> {
    let url = url.clone();
    let redacted = url.redacted().to_owned();
    let thread = std::thread::Builder::new()
        .name("ledger-check".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| LedgerError::Postgres {
                    url: url.redacted().to_owned(),
                    detail: e.to_string(),
                })?;
            runtime.block_on(check_on(&url))
        });
    match thread {
        Ok(thread) => thread.join().unwrap_or(Err(LedgerError::WriterGone)),
        Err(e) => Err(LedgerError::Postgres {
            url: redacted,
            detail: e.to_string(),
        }),
    }
}

async fn check_on(url: &PgUrl) -> Result<Check, LedgerError> {
    let pool = pool(url)?;
    let client = pool
        .get()
        .await
        .map_err(|e| pool_error(url.redacted(), e))?;
    let schema_version = migrations::version(&client)
        .await
        .map_err(|e| db_error(url.redacted(), &e))?;
    let before = super::now_ms();
    let server_ms: i64 = client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await
        .map_err(|e| db_error(url.redacted(), &e))?
        .get(0);
    let after = super::now_ms();
    // The server's word, not the URL's: what this connection really is.
    let tls_version: Option<String> = client
        .query_opt(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )
        .await
        .map_err(|e| db_error(url.redacted(), &e))?
        .map(|row| row.get(0));
    Ok(Check {
        tls_version,
        schema_version,
        known_version: migrations::CURRENT,
        // Against the middle of the round trip.
        clock_skew_ms: server_ms - (before + after) / 2,
    })
}
