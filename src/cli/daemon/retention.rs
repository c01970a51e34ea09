//! The daemon's daily clean-up: ledger rows older than `retention.max_age_days` (or
//! `MAX_LOG_AGE_DAYS`) and the captured bodies of that age are deleted at start and then once
//! a day, off the async threads.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::budget::policy::counted_since_ms;
use crate::config::LedgerLocation;
use crate::ledger::postgres::query::Reader;
use crate::ledger::{self, retention};
use crate::proxy::AppState;

/// How often the clean-up runs.
pub const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Starts a clean-up with the config in force now, unless none is configured or the last one
/// is still running. The handle is awaited at shutdown.
pub fn start(state: &Arc<AppState>, running: &mut Option<JoinHandle<()>>) {
    if running.as_ref().is_some_and(|r| !r.is_finished()) {
        return;
    }
    let config = Arc::clone(&state.runtime().config);
    let Some(days) = config.retention_days else {
        return;
    };
    let location = config.database.clone();
    let capture = state.capture.clone();
    *running = Some(tokio::task::spawn_blocking(move || {
        let now = ledger::now_ms();
        let cutoff = now - i64::from(days) * 86_400_000;
        let result = match &location {
            LedgerLocation::Sqlite(path) => ledger::query::open(path)
                .map_err(|e| e.to_string())
                .and_then(|conn| {
                    retention::execute(&conn, cutoff, counted_since_ms(&config, now), &mut |_| {})
                        .map_err(|e| e.to_string())
                }),
            // Team mode: whole months go as partitions (every daemon on the ledger may try;
            // the prune's advisory lock lets one at a time, and a second finds nothing left).
            LedgerLocation::Postgres(url) => Reader::connect(url)
                .and_then(|reader| reader.prune_execute(cutoff, &mut |_| {}))
                .map_err(|e| e.to_string()),
        };
        // Captured bodies go with their rows (by file time, which is the request's).
        if let Some(capture) = &capture {
            let cutoff = std::time::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(cutoff).unwrap_or_default());
            if let Err(err) = capture.remove_older_than(cutoff) {
                tracing::warn!(%err, "retention: old captured bodies could not be deleted");
            }
        }
        match result {
            Ok(done) if !done.is_empty() => tracing::info!(
                days,
                requests = done.requests,
                sessions = done.sessions,
                "retention: deleted ledger rows older than {days} days"
            ),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, "retention: the clean-up failed; it runs again tomorrow")
            }
        }
    }));
}
