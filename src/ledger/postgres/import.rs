//! `smartproxy ledger migrate --to postgres://...`: copies a SQLite ledger into PostgreSQL with
//! the writer's own batches: sessions, then requests (with their attempts) in `seq` order, then
//! the sessions' ends (whose spent total reads the requests) and the anomalies.
//!
//! Idempotent and so resumable: requests are inserted by (id, started_ms) with `ON CONFLICT DO
//! NOTHING` and the daily roll-up counts only the rows inserted, anomalies only when no equal
//! one is there, sessions by id; a copy run again (or after a kill halfway) adds only what is
//! missing. Fingerprints and client hashes are copied as they are: they were made with the
//! SQLite ledger's salt, not PostgreSQL's, so they do not match the team's rows made since.

use std::path::{Path, PathBuf};

use super::super::{LedgerError, Message, readback};
use super::writer::{Caches, commit_batch};
use super::{Handle, OpenError};
use crate::config::PgUrl;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    /// Requests in the SQLite ledger.
    pub requests: u64,
    /// Of those, the ones PostgreSQL did not hold yet.
    pub inserted: u64,
    pub sessions: u64,
    pub anomalies: u64,
    /// The SQLite ledger's total cost, in nano-dollars (what the copy added up to).
    pub cost_nusd: i64,
}

/// Copies the SQLite ledger at `from` into the PostgreSQL ledger at `url` (migrating its
/// schema first), `batch` requests a transaction. `progress` is called with the requests done
/// so far and the total. `stop_after`: give up after that many request batches (for tests of a
/// copy killed halfway).
pub fn copy(
    from: &Path,
    url: &PgUrl,
    batch: usize,
    stop_after: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Copied, LedgerError> {
    if !from.exists() {
        return Err(LedgerError::Missing {
            path: from.to_path_buf(),
        });
    }
    let sql = |source| LedgerError::Sql {
        path: from.to_path_buf(),
        source,
    };
    // Brought up to date first: `readback` reads the current schema's views.
    super::super::upgrade_if_present(from)?;
    let conn = crate::db::open_read_only(from).map_err(|source| LedgerError::Open {
        path: from.to_path_buf(),
        source,
    })?;
    let (total, cost_nusd) = readback::request_totals(&conn).map_err(sql)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LedgerError::Postgres {
            url: url.redacted().to_owned(),
            detail: e.to_string(),
        })?;
    let handle = Handle {
        runtime: runtime.handle().clone(),
        pool: super::pool(url)?,
        url: url.redacted().to_owned(),
    };
    runtime
        .block_on(super::open(&handle))
        .map_err(|e| match e {
            OpenError::Unreachable(e) | OpenError::Fatal(e) => e,
        })?;
    let batch = batch.max(1);
    let mut caches = Caches::default();
    let mut copied = Copied {
        requests: total,
        cost_nusd,
        ..Copied::default()
    };
    let mut send = |messages: Vec<Message>| -> Result<i64, LedgerError> {
        runtime
            .block_on(commit_batch(&handle, &mut caches, &messages, true))
            .map_err(|f| LedgerError::Postgres {
                url: url.redacted().to_owned(),
                detail: f.detail,
            })
    };

    let mut ends = Vec::new();
    let mut after = 0;
    loop {
        let sessions = readback::sessions(&conn, after, batch).map_err(sql)?;
        let Some(last) = sessions.last() else { break };
        after = last.rowid;
        copied.sessions += sessions.len() as u64;
        let mut messages = Vec::with_capacity(sessions.len());
        for s in sessions {
            ends.extend(s.end);
            messages.push(Message::Session(Box::new(s.start)));
        }
        send(messages)?;
    }

    let mut done = 0;
    let mut after = 0;
    let mut batches = 0;
    progress(0, total);
    loop {
        let requests = readback::requests(&conn, after, batch).map_err(sql)?;
        let Some((last, _)) = requests.last() else {
            break;
        };
        after = *last;
        done += requests.len() as u64;
        let messages = requests
            .into_iter()
            .map(|(_, r)| Message::Request(Box::new(r)))
            .collect();
        copied.inserted += u64::try_from(send(messages)?).unwrap_or(0);
        progress(done.min(total), total);
        batches += 1;
        if stop_after.is_some_and(|n| batches >= n) {
            return Err(LedgerError::Postgres {
                url: url.redacted().to_owned(),
                detail: format!("stopped after {batches} batches, as asked"),
            });
        }
    }

    for chunk in ends.chunks(batch) {
        send(
            chunk
                .iter()
                .map(|e| Message::SessionEnd(Box::new(e.clone())))
                .collect(),
        )?;
    }
    let mut after = 0;
    loop {
        let anomalies = readback::anomalies(&conn, after, batch).map_err(sql)?;
        let Some((last, _)) = anomalies.last() else {
            break;
        };
        after = *last;
        copied.anomalies += anomalies.len() as u64;
        send(
            anomalies
                .into_iter()
                .map(|(_, a)| Message::Anomaly(Box::new(a)))
                .collect(),
        )?;
    }
    Ok(copied)
}

/// The SQLite ledger `ledger migrate` copies when no `--from` is given.
pub fn default_source() -> PathBuf {
    crate::config::paths::default_database()
}
