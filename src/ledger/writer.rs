//! The writer thread: owns the ledger's write connection, takes records off the queue and commits
//! them in batches. A busy database (another process writing) is waited out, never dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement, Transaction, TransactionBehavior, params};

use super::narrow::{self, Interner};
use super::usage::UsageBatch;
use super::{Anomaly, Message, RequestRecord, SessionEnd, SessionStart};

/// Most rows in one transaction; more wait for the next one.
const MAX_BATCH: usize = 1024;

/// How long the writer works inside a batch before it offers the CPU to the threads that serve
/// requests.
///
/// A 20 ms batch under load is a few milliseconds of SQLite work; where the writer shares a core
/// with the request threads (one CPU, or all of them busy), running it in one go held every
/// request on that core for as long: p99 at 32 connections was over 5x the median. Yielding
/// inside the same transaction bounds that wait. Measured on one pinned core (the
/// `proxy_overhead` bench): every 400 µs took p99 at 32 connections from 5.0-5.3 to 3.2-3.5 ms,
/// with CPU per request inside the bench's noise; every 32 rows (~0.2 ms) gave the same p99 for
/// 10% more CPU in switches. Where no one waits (another core is free), a yield is a cheap
/// syscall.
const YIELD_EVERY: Duration = Duration::from_micros(400);

/// Rows waiting behind the batch past which the writer stops yielding: it has fallen behind
/// (one core saturated with requests) and catches up at full speed, so that the queue never
/// fills and drops rows because of the yields. Yielding every 32 rows without this bound
/// dropped 21,553 of 364,618 rows in the bench's throughput phase.
const YIELD_BACKLOG: usize = 2 * MAX_BATCH;

/// How long the writer lets rows gather after the first one before committing them together.
/// It waits parked on its thread, not on the channel, so senders of rows never have to wake it:
/// that keeps the ledger's cost per request small under load (bigger batches write fewer WAL
/// pages per row). A flush, and the last sender going away, unpark it (`Ledger::flush`, `Drop`),
/// so neither waits out the window. (It used to sleep in 1 ms slices, waking 20 times a batch
/// on the core that serves requests.)
const BATCH_WINDOW: Duration = Duration::from_millis(20);

pub fn run(mut conn: Connection, rx: Receiver<Message>, queued: &AtomicU64) {
    let mut batch: Vec<Message> = Vec::with_capacity(MAX_BATCH);
    let mut interner = Interner::default();
    while let Ok(first) = rx.recv() {
        let mut flush_waiting = matches!(first, Message::Flush(_) | Message::Committed(_));
        batch.push(first);
        let mut disconnected = false;
        let mut waited = Duration::ZERO;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(message) => {
                        flush_waiting |=
                            matches!(message, Message::Flush(_) | Message::Committed(_));
                        batch.push(message);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            // A flush (or a stream waiting to end) wants an answer now; anything else can wait a
            // moment for company.
            if flush_waiting || disconnected || batch.len() >= MAX_BATCH || waited >= BATCH_WINDOW {
                break;
            }
            // Woken early by a flush (or spuriously): the loop looks at the queue again.
            let parked = Instant::now();
            std::thread::park_timeout(BATCH_WINDOW - waited);
            waited += parked.elapsed();
        }
        commit_with_retry(&mut conn, &mut interner, &mut batch, queued);
        if disconnected {
            break;
        }
    }
    // Keep the query planner's statistics fresh, with a bounded amount of work so that closing a
    // session never waits on a large ledger.
    let _ = conn.pragma_update(None, "analysis_limit", 400);
    let _ = conn.pragma_update(None, "optimize", "");
}

fn commit_with_retry(
    conn: &mut Connection,
    interner: &mut Interner,
    batch: &mut Vec<Message>,
    queued: &AtomicU64,
) {
    let mut waiting = Duration::from_millis(20);
    for attempt in 0.. {
        let committed = commit(conn, interner, batch, queued);
        if committed.is_err() {
            // Strings interned by the rolled-back transaction are not in the file.
            interner.clear();
        }
        match committed {
            Ok(()) => break,
            Err(err) if crate::db::is_busy(&err) && attempt < 60 => {
                // busy_timeout already waited; back off a little more before trying again.
                tracing::debug!(%err, attempt, "ledger busy; retrying batch");
                #[allow(
                    clippy::disallowed_methods,
                    reason = "the ledger writer's own thread backs off"
                )]
                std::thread::sleep(waiting);
                waiting = (waiting * 2).min(Duration::from_millis(500));
            }
            Err(err) => {
                tracing::error!(%err, rows = batch.len(), "ledger write failed; rows lost");
                break;
            }
        }
    }
    // Every message was counted before it was sent (`Ledger::enqueue`); uncounted before a
    // flush is answered, so its caller sees the queue as it left it.
    queued.fetch_sub(batch.len() as u64, Ordering::Relaxed);
    // Acknowledge flushes only after the rows before them are committed.
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
}

fn commit(
    conn: &mut Connection,
    interner: &mut Interner,
    batch: &[Message],
    queued: &AtomicU64,
) -> rusqlite::Result<()> {
    if !batch
        .iter()
        .any(|m| !matches!(m, Message::Flush(_) | Message::Committed(_)))
    {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // What the batch spent, per quarter hour and session: usually one upsert per batch.
    let mut spent: foldhash::HashMap<(i64, Option<&Arc<str>>), f64> = Default::default();
    // Looked up once per batch rather than once per row (the cache hashes the whole SQL text).
    let mut insert_request = tx.prepare_cached(narrow::INSERT_REQUEST)?;
    let mut insert_attempt = tx.prepare_cached(narrow::INSERT_ATTEMPT)?;
    let mut usage = UsageBatch::default();
    let mut worked_since = Instant::now();
    for message in batch {
        if worked_since.elapsed() >= YIELD_EVERY {
            if keeps_up(queued.load(Ordering::Relaxed), batch.len()) {
                std::thread::yield_now();
            }
            worked_since = Instant::now();
        }
        match message {
            Message::Session(s) => insert_session(&tx, s)?,
            Message::SessionEnd(e) => end_session(&tx, e)?,
            Message::Request(r) => {
                write_request(&tx, interner, &mut insert_request, &mut insert_attempt, r)?;
                usage.add(r);
                if let Some(cost) = r.cost_usd.filter(|c| *c != 0.0 && r.budgeted) {
                    let bucket = r.started_ms - r.started_ms.rem_euclid(SPEND_BUCKET_MS);
                    *spent.entry((bucket, r.session_id.as_ref())).or_default() += cost;
                }
            }
            Message::Anomaly(a) => insert_anomaly(&tx, a)?,
            Message::Flush(_) | Message::Committed(_) => {}
        }
    }
    // After the loop: a daemon session opened in this batch is already in `sessions`.
    for ((bucket, session), cost) in spent {
        add_spend(&tx, bucket, session.map(|s| &**s), cost)?;
    }
    usage.write(&tx)?;
    drop((insert_request, insert_attempt));
    tx.commit()
}

/// Whether the writer may yield: fewer than `YIELD_BACKLOG` rows wait behind its batch
/// (`queued` counts the batch too until it is committed).
fn keeps_up(queued: u64, batch: usize) -> bool {
    usize::try_from(queued)
        .unwrap_or(usize::MAX)
        .saturating_sub(batch)
        < YIELD_BACKLOG
}

/// The width of a `spend` row. Every time zone's midnight falls on a quarter hour.
pub const SPEND_BUCKET_MS: i64 = 15 * 60 * 1000;

fn add_spend(
    tx: &Transaction<'_>,
    bucket_ms: i64,
    session_id: Option<&str>,
    cost_usd: f64,
) -> rusqlite::Result<()> {
    // Daemon traffic is also counted under its client key, for per-key budgets.
    tx.prepare_cached(
        "INSERT INTO spend (bucket_ms, key, cost_usd)
         VALUES (?1, COALESCE((SELECT tag FROM sessions WHERE id = ?2 AND kind = 'daemon'), ''), ?3)
         ON CONFLICT (bucket_ms, key) DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd",
    )?
    .execute(params![bucket_ms, session_id, cost_usd])?;
    Ok(())
}

/// Opens a session, owned by this process (the one whose writer records it). A daemon session
/// (one per client key and day) that a stopped daemon closed is opened again by the daemon that
/// serves it next, which becomes its owner; any other existing session is left as it is.
pub(super) fn insert_session(tx: &Transaction<'_>, s: &SessionStart) -> rusqlite::Result<()> {
    let owner = crate::process::current();
    let a = &s.attribution;
    tx.prepare_cached(
        "INSERT INTO sessions (id, parent_id, kind, tag, program, cwd, pid, started_ms, budget_usd,
             host, owner_pid, owner_start, project, repo, branch, head)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET ended_ms = NULL, exit_code = NULL, pid = excluded.pid,
             host = excluded.host, owner_pid = excluded.owner_pid, owner_start = excluded.owner_start
         WHERE sessions.kind = 'daemon' AND excluded.kind = 'daemon'",
    )?
    .execute(params![
        s.id,
        s.parent_id,
        s.kind,
        s.tag,
        s.program,
        s.cwd,
        s.pid,
        s.started_ms,
        s.budget_usd,
        owner.host,
        owner.pid,
        owner.start,
        a.project,
        a.repo,
        a.branch,
        a.head
    ])?;
    Ok(())
}

/// Closes a session; only its owner's end counts, so a daemon stopping does not close the day's
/// session another daemon on the same ledger has taken over since.
fn end_session(tx: &Transaction<'_>, e: &SessionEnd) -> rusqlite::Result<()> {
    let owner = crate::process::current();
    tx.prepare_cached(
        "UPDATE sessions SET ended_ms = ?2, exit_code = ?3,
             spent_usd = (SELECT TOTAL(cost_nusd) / 1e9 FROM request_rows
                 WHERE session = (SELECT id FROM strings WHERE text = ?1)),
             end_branch = COALESCE(?6, end_branch), end_head = COALESCE(?7, end_head)
         WHERE id = ?1 AND (owner_pid IS NULL OR (owner_pid = ?4 AND host IS ?5))",
    )?
    .execute(params![
        e.id,
        e.ended_ms,
        e.exit_code,
        owner.pid,
        owner.host,
        e.end_branch,
        e.end_head
    ])?;
    Ok(())
}

/// The request's row, its attempts, and the end of its budget reservation.
pub(super) fn write_request(
    tx: &Transaction<'_>,
    interner: &mut Interner,
    insert_request: &mut Statement<'_>,
    insert_attempt: &mut Statement<'_>,
    r: &RequestRecord,
) -> rusqlite::Result<()> {
    let to_i64 = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let shape = interner.shape(
        tx,
        [
            Some(r.endpoint),
            r.route.as_deref(),
            r.provider.as_deref(),
            r.requested_model.as_deref(),
            r.served_model.as_deref(),
            Some(r.outcome.as_str()),
            r.error_code.as_deref(),
            Some(r.cache_status),
            Some(r.billing.as_str()),
            r.price_period,
            r.user_agent.as_deref(),
        ],
    )?;
    let session = interner.string(tx, r.session_id.as_deref())?;
    let client_hash = interner.string(tx, r.client_hash.as_deref())?;
    let client_session = interner.string(tx, r.client_session.as_deref())?;
    let skipped = interner.string(tx, r.skipped.as_deref())?;
    let row = params![
        narrow::stored_id(&r.id),
        session,
        r.started_ms,
        shape,
        r.status,
        r.stream,
        to_i64(r.prompt_tokens),
        to_i64(r.completion_tokens),
        to_i64(r.cached_tokens),
        to_i64(r.cache_write_tokens),
        r.tokens_estimated,
        r.cost_usd.map(narrow::nanos),
        r.saved_usd.map(narrow::nanos),
        narrow::thousandths(r.latency_ms),
        r.ttfb_ms.map(narrow::thousandths),
        r.attempts,
        client_hash,
        r.fingerprint.as_deref().map(narrow::stored_hex),
        client_session,
        r.budget_action,
        skipped,
    ];
    let seq: i64 = if insert_request.execute(row)? == 1 {
        tx.last_insert_rowid()
    } else {
        let seq = tx
            .prepare_cached(narrow::REPLACE_REQUEST)?
            .query_row(row, |r| r.get(0))?;
        // The attempts written with the row before are replaced by these.
        tx.prepare_cached("DELETE FROM attempt_rows WHERE request = ?1")?
            .execute([seq])?;
        seq
    };
    if let Some(reservation) = &r.reservation_id {
        tx.prepare_cached("DELETE FROM reservations WHERE id = ?1")?
            .execute([reservation])?;
    }
    for (n, a) in r.attempt_log.iter().enumerate() {
        let provider = interner.string(tx, Some(&a.provider))?;
        let model = interner.string(tx, Some(&a.model))?;
        let error_class = interner.string(tx, a.error_class.as_deref())?;
        insert_attempt.execute(params![
            seq,
            n + 1,
            provider,
            model,
            a.status,
            error_class,
            narrow::thousandths(a.latency_ms),
            narrow::thousandths(a.waited_ms)
        ])?;
    }
    Ok(())
}

pub(super) fn insert_anomaly(tx: &Transaction<'_>, a: &Anomaly) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO anomalies (at_ms, session_id, kind, provider, model, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![a.at_ms, a.session_id, a.kind, a.provider, a.model, a.detail])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_BATCH, YIELD_BACKLOG, keeps_up};

    #[test]
    fn the_writer_stops_yielding_once_rows_pile_up_behind_its_batch() {
        // Only the batch itself is queued, or a little more: it yields.
        assert!(keeps_up(MAX_BATCH as u64, MAX_BATCH));
        assert!(keeps_up((MAX_BATCH + YIELD_BACKLOG - 1) as u64, MAX_BATCH));
        // As many behind it as the bound, or more: it catches up without yielding.
        assert!(!keeps_up((MAX_BATCH + YIELD_BACKLOG) as u64, MAX_BATCH));
        assert!(!keeps_up(u64::MAX, 1));
        // A count below the batch (flush markers are counted differently) is not "behind".
        assert!(keeps_up(0, MAX_BATCH));
    }
}
