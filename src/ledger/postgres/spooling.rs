//! The PostgreSQL writer thread's loop: batches off the queue into PostgreSQL, or, when
//! PostgreSQL cannot take one (connection refused or lost, timeout), into the local SQLite spool
//! (`ledger::spool`), so nothing waits in memory and nothing is dropped; drained back, oldest
//! first, exactly once, when PostgreSQL answers again.
//!
//! Once anything is in the spool, every new batch goes there too until the spool is empty: rows
//! then reach PostgreSQL in the order they were written (a session's end after its session and
//! requests). A process that started while PostgreSQL was down has not checked its schema yet
//! (`ready`): the first drain migrates (or refuses a newer schema, and keeps spooling).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::super::spool::{DrainError, Spool};
use super::super::{LedgerError, Message};
use super::Handle;
use super::writer::{Caches, Failure, commit_batch, wants_answer};

/// Most messages taken into one transaction; more wait for the next one (never dropped).
const MAX_BATCH: usize = 4096;

/// How long rows gather after the first before they are committed together (as SQLite's).
const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// The longest pause between two tries of an unreachable PostgreSQL.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The first pause after PostgreSQL failed.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Requests sent per drained batch (with their sessions, and the ends and anomalies last).
const DRAIN_BATCH: usize = 1000;

/// How long a stopping process keeps trying to send the spool (PostgreSQL just back, or
/// refusing at once) before it leaves the rows for the next process: a stop stays prompt.
const STOP_PATIENCE: Duration = Duration::from_secs(3);

/// The longest a batch (or the first connection) may take before PostgreSQL counts as
/// unreachable.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an idle writer with an empty spool looks at the spool file again.
const RECHECK: Duration = Duration::from_secs(30);

/// How long one drain may go on before the loop takes the queue again (which meanwhile only
/// grows in memory up to its bound).
const DRAIN_SLICE: Duration = Duration::from_millis(500);

/// The writer's view of PostgreSQL and its spool.
pub(super) struct State {
    pub spool: Option<Spool>,
    /// Rows in the spool as this writer knows them (another process may add or drain some).
    pub pending: u64,
    /// Whether this process has checked (and migrated) the schema.
    pub ready: bool,
    /// Whether PostgreSQL was last seen failing (so the next success is worth a line).
    pub down: bool,
    pub next_try: Instant,
    pub backoff: Duration,
}

impl State {
    pub fn new(spool: Option<Spool>, ready: bool) -> Self {
        let pending = spool.as_ref().and_then(|s| s.pending().ok()).unwrap_or(0);
        Self {
            spool,
            pending,
            ready,
            down: !ready,
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
        }
    }
}

pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    handle: &Handle,
    rx: &Receiver<Message>,
    queued: &AtomicU64,
    mut state: State,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(256);
    let mut caches = Caches::default();
    loop {
        let first = if state.pending > 0 {
            let wait = state.next_try.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    drain(runtime, handle, &mut caches, &mut state, None);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv_timeout(RECHECK) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    // Rows another process left in the shared spool (it stopped while
                    // PostgreSQL was down) are sent by whoever notices them first.
                    state.pending = state
                        .spool
                        .as_ref()
                        .and_then(|s| s.pending().ok())
                        .unwrap_or(0);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut urgent = wants_answer(&first);
        batch.push(first);
        let mut disconnected = false;
        let mut waited = Duration::ZERO;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(message) => {
                        urgent |= wants_answer(&message);
                        batch.push(message);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if urgent || disconnected || batch.len() >= MAX_BATCH || waited >= BATCH_WINDOW {
                break;
            }
            // Parked, not waiting on the channel: `Ledger::flush` and `Drop` unpark it.
            let parked = Instant::now();
            std::thread::park_timeout(BATCH_WINDOW - waited);
            waited += parked.elapsed();
        }
        // A stopping process waits for PostgreSQL no longer than it would for its spool.
        let deadline = disconnected.then(|| Instant::now() + STOP_PATIENCE);
        deliver(runtime, handle, &mut caches, &mut state, &batch, deadline);
        // Every message was counted when queued (`Ledger::enqueue`); a flush is answered once
        // its rows are in PostgreSQL or in the spool.
        queued.fetch_sub(batch.len() as u64, Ordering::Relaxed);
        for message in batch.drain(..) {
            match message {
                Message::Flush(done) => {
                    let _ = done.send(());
                }
                Message::Committed(done) => {
                    let _ = done.send(());
                }
                _ => {}
            }
        }
        if state.pending > 0 && Instant::now() >= state.next_try {
            drain(runtime, handle, &mut caches, &mut state, None);
        }
        if disconnected {
            break;
        }
    }
    // Stopping: try to send the spool for a moment (a PostgreSQL that is back takes it, one
    // that refuses answers at once, one that does not answer is given up on at the deadline).
    let deadline = Instant::now() + STOP_PATIENCE;
    while state.pending > 0 && Instant::now() < deadline {
        if !drain(runtime, handle, &mut caches, &mut state, Some(deadline)) {
            #[allow(
                clippy::disallowed_methods,
                reason = "the ledger writer's own thread backs off; the queue is closed"
            )]
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if state.pending > 0
        && let Some(spool) = &state.spool
    {
        tracing::warn!(
            rows = state.pending,
            spool = %spool.path().display(),
            "rows wait in the ledger spool; the next smartproxy to reach PostgreSQL sends them"
        );
    }
}

/// Commits the batch to PostgreSQL, or spools it when PostgreSQL cannot take it (or while the
/// spool still holds older rows).
fn deliver(
    runtime: &tokio::runtime::Runtime,
    handle: &Handle,
    caches: &mut Caches,
    state: &mut State,
    batch: &[Message],
    deadline: Option<Instant>,
) {
    if batch.iter().all(wants_answer) {
        return;
    }
    if state.pending == 0 && state.ready {
        match within(
            runtime,
            deadline,
            commit_batch(handle, caches, batch, false),
        ) {
            Ok(_) => return,
            Err(Failure {
                detail,
                retryable: false,
            }) => {
                tracing::error!(
                    error = %detail,
                    messages = batch.len(),
                    "PostgreSQL refused a ledger batch; its rows are lost"
                );
                return;
            }
            Err(Failure { detail, .. }) => went_down(handle, state, &detail),
        }
    }
    let Some(spool) = state.spool.as_mut() else {
        tracing::error!(
            messages = batch.len(),
            url = %handle.url,
            "PostgreSQL ledger unreachable and no spool could be opened; rows lost"
        );
        return;
    };
    match spool.write(batch) {
        Ok(rows) => state.pending += rows as u64,
        Err(err) => tracing::error!(
            error = %err,
            spool = %spool.path().display(),
            messages = batch.len(),
            "cannot write the ledger spool; rows lost"
        ),
    }
}

/// Notes PostgreSQL failing: one line per outage, and the next try after a backoff.
fn went_down(handle: &Handle, state: &mut State, detail: &str) {
    if !state.down {
        state.down = true;
        state.backoff = FIRST_BACKOFF;
        tracing::warn!(
            error = %detail,
            url = %handle.url,
            spool = %state.spool.as_ref().map(|s| s.path().display().to_string()).unwrap_or_default(),
            "cannot write to the PostgreSQL ledger; spooling rows locally until it answers"
        );
    }
    state.next_try = Instant::now() + state.backoff;
    state.backoff = (state.backoff * 2).min(MAX_BACKOFF);
}

/// Runs `fut` on the writer's runtime, given up on at `deadline` (a stopping process) or after
/// `COMMIT_TIMEOUT`: a PostgreSQL that stopped answering without closing the connection counts
/// as unreachable, so the writer spools instead of hanging (a batch that did commit meanwhile
/// is skipped when the spool sends it again).
fn within<T>(
    runtime: &tokio::runtime::Runtime,
    deadline: Option<Instant>,
    fut: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let deadline = deadline.unwrap_or_else(|| Instant::now() + COMMIT_TIMEOUT);
    let limit = deadline.saturating_duration_since(Instant::now());
    runtime
        // The timer is made inside the runtime, which owns the clock it needs.
        .block_on(async { tokio::time::timeout(limit, fut).await })
        .unwrap_or_else(|_| {
            Err(Failure {
                detail: "no answer in time".to_owned(),
                retryable: true,
            })
        })
}

/// Sends the spool to PostgreSQL, batch by batch, for up to `DRAIN_SLICE`. Returns whether
/// PostgreSQL took what it was sent.
fn drain(
    runtime: &tokio::runtime::Runtime,
    handle: &Handle,
    caches: &mut Caches,
    state: &mut State,
    deadline: Option<Instant>,
) -> bool {
    if !state.ready {
        let opened = within(runtime, deadline, async { Ok(super::open(handle).await) });
        match opened {
            Ok(Ok(_)) => state.ready = true,
            Ok(Err(super::OpenError::Fatal(err @ LedgerError::PostgresTooNew { .. }))) => {
                tracing::error!(error = %err, "keeping the rows in the spool");
                went_down(handle, state, "schema too new");
                return false;
            }
            Ok(Err(super::OpenError::Fatal(err) | super::OpenError::Unreachable(err))) => {
                went_down(handle, state, &err.to_string());
                return false;
            }
            Err(failure) => {
                went_down(handle, state, &failure.detail);
                return false;
            }
        }
    }
    let Some(spool) = state.spool.as_mut() else {
        state.pending = 0;
        return true;
    };
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let result = spool.drain_one(DRAIN_BATCH, |taken| {
            within(
                runtime,
                deadline,
                commit_batch(handle, caches, &taken.messages, true),
            )
            .map(|_| ())
        });
        match result {
            Ok(Some(rows)) => {
                sent += rows;
                state.pending = state.pending.saturating_sub(rows as u64);
                if started.elapsed() >= DRAIN_SLICE {
                    // More next time round the loop, at once.
                    state.pending = state.pending.max(1);
                    state.next_try = Instant::now();
                    break;
                }
            }
            Ok(None) => {
                state.pending = 0;
                break;
            }
            Err(DrainError::Send(failure)) => {
                if !failure.retryable {
                    tracing::error!(
                        error = %failure.detail,
                        "PostgreSQL refused a spooled ledger batch; it stays in the spool"
                    );
                }
                went_down(handle, state, &failure.detail);
                return false;
            }
            Err(DrainError::Spool(err)) => {
                tracing::error!(error = %err, spool = %spool.path().display(), "cannot read the ledger spool");
                went_down(handle, state, &err.to_string());
                return false;
            }
        }
    }
    if state.down {
        tracing::warn!(
            rows = sent,
            left = state.pending,
            url = %handle.url,
            "PostgreSQL ledger reachable again; sending the spooled rows"
        );
    }
    state.down = false;
    state.backoff = FIRST_BACKOFF;
    true
}
