//! The PostgreSQL writer's batches: one transaction each, idempotent by request id.
//!
//! A batch is written with one multi-row statement per table (arrays through `UNNEST`), so its
//! size costs no extra round trips and needs no cap; the requests are inserted with
//! `ON CONFLICT DO NOTHING` and the daily roll-up adds only the rows that insert returned, so a
//! batch written twice (a retry after a lost answer to COMMIT, a spool drained again after a
//! crash, `ledger migrate` run twice) neither duplicates a row nor counts it twice. What to do
//! when PostgreSQL cannot take a batch is `spooling`'s.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;

use super::super::{Anomaly, Message, RequestRecord, SessionEnd, SessionStart};
use super::rows::clean;
use super::{Handle, describe, describe_pool};

/// Cached across batches: interned strings, shapes, and the months that have a partition.
#[derive(Default)]
pub(super) struct Caches {
    strings: HashMap<String, i64>,
    shapes: HashMap<Vec<u8>, i64>,
    months: HashSet<i64>,
}

/// A cache is dropped whole past this many entries (client hashes grow without end).
const CACHE_LIMIT: usize = 4096;

/// Why a batch was not committed, in one line, and whether trying again may help.
pub(super) struct Failure {
    pub detail: String,
    pub retryable: bool,
}

/// Commits `batch` on a pooled connection; returns how many requests it inserted (those
/// already there are skipped). `copied`: the messages come from a spool or another ledger, so
/// an anomaly already there is not inserted again.
pub(super) async fn commit_batch(
    handle: &Handle,
    caches: &mut Caches,
    batch: &[Message],
    copied: bool,
) -> Result<i64, Failure> {
    let mut client = handle.pool.get().await.map_err(|err| Failure {
        // A pool that cannot connect is an outage, whatever the cause: spooled, not lost.
        detail: describe_pool(&err),
        retryable: true,
    })?;
    commit(&mut client, caches, batch, copied)
        .await
        .map_err(|err| {
            // Strings and shapes interned by the rolled-back transaction are not there.
            caches.strings.clear();
            caches.shapes.clear();
            Failure {
                detail: describe(&err),
                retryable: retryable(&err),
            }
        })
}

pub(super) fn wants_answer(message: &Message) -> bool {
    matches!(message, Message::Flush(_) | Message::Committed(_))
}

/// Whether trying again may help: the connection failed or the server asked for a retry
/// (serialization failure, deadlock, shutting down, too many connections). A statement the
/// server rejects for good would fail the same way forever.
pub(super) fn retryable(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        None => true,
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "40001"
                || code == "40P01"
        }
    }
}

async fn commit(
    client: &mut deadpool_postgres::Object,
    caches: &mut Caches,
    batch: &[Message],
    copied: bool,
) -> Result<i64, tokio_postgres::Error> {
    if batch.iter().all(wants_answer) {
        return Ok(0);
    }
    if caches.strings.len() > CACHE_LIMIT {
        caches.strings.clear();
    }
    if caches.shapes.len() > CACHE_LIMIT {
        caches.shapes.clear();
    }
    let requests: Vec<&RequestRecord> = batch
        .iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(&**r),
            _ => None,
        })
        .collect();
    // A past month's partition may have been dropped by `prune` since it was cached: rows of
    // past months (a spool drained, `ledger migrate`) check it each batch.
    let this_month = super::rows::month_start(super::super::now_ms());
    let months: std::collections::BTreeSet<i64> = requests
        .iter()
        .map(|r| super::rows::month_start(r.started_ms))
        .collect();
    // A past month already cached is checked, all in one round trip, and only a missing one
    // is created (creating takes a transaction, a lock and DDL: four round trips a month).
    let mut wanted = Vec::new();
    let mut past: Vec<i64> = Vec::new();
    for month in months {
        if caches.months.insert(month) {
            wanted.push(month);
        } else if month < this_month {
            past.push(month);
        }
    }
    if !past.is_empty() {
        let names: Vec<String> = past.iter().map(|m| super::rows::partition(*m).0).collect();
        let missing = client
            .prepare_cached(
                "SELECT m FROM unnest($1::text[], $2::bigint[]) AS t(n, m)
                 WHERE to_regclass(n) IS NULL",
            )
            .await?;
        wanted.extend(
            client
                .query(&missing, &[&names, &past])
                .await?
                .iter()
                .map(|row| row.get::<_, i64>(0)),
        );
    }
    for month in wanted {
        if let Err(err) = ensure_partition(client, month).await {
            caches.months.remove(&month);
            return Err(err);
        }
    }
    let tx = client.transaction().await?;
    let starts: Vec<&SessionStart> = batch
        .iter()
        .filter_map(|m| match m {
            Message::Session(s) => Some(&**s),
            _ => None,
        })
        .collect();
    if distinct(starts.iter().map(|s| s.id.as_str())) {
        insert_sessions(&tx, &starts).await?;
    } else {
        // The same session started twice in one batch: one by one, in order, as each start
        // updates what the one before it inserted (one statement cannot touch a row twice).
        for s in starts {
            insert_session(&tx, s).await?;
        }
    }
    let mut inserted = 0;
    if !requests.is_empty() {
        intern_strings(&tx, caches, &requests).await?;
        intern_shapes(&tx, caches, &requests).await?;
        inserted = super::rows::insert_requests(&tx, caches_view(caches), &requests).await?;
        tracing::trace!(inserted, rows = requests.len(), "ledger batch written");
        insert_attempts(&tx, caches, &requests).await?;
        // Budget reservations settle with their rows, in the same transaction (pgbudget).
        super::budget::settle(&tx, &requests).await?;
    }
    let mut ends: Vec<&SessionEnd> = Vec::new();
    for message in batch {
        match message {
            Message::Anomaly(a) => insert_anomaly(&tx, a, copied).await?,
            Message::SessionEnd(e) => ends.push(e),
            _ => {}
        }
    }
    // Ends touch only `sessions`, so doing them after the anomalies changes nothing.
    if distinct(ends.iter().map(|e| e.id.as_str())) {
        end_sessions(&tx, &ends, copied).await?;
    } else {
        for e in ends {
            end_session(&tx, e, copied).await?;
        }
    }
    tx.commit().await?;
    Ok(inserted)
}

/// The ids the request insert needs, borrowed from the caches.
fn caches_view(caches: &Caches) -> super::rows::Ids<'_> {
    super::rows::Ids {
        strings: &caches.strings,
        shapes: &caches.shapes,
    }
}

/// Creates the month's partition of `requests` when it is missing. Two processes may try at
/// once: the advisory lock orders them and `IF NOT EXISTS` makes the second a no-op.
async fn ensure_partition(
    client: &mut deadpool_postgres::Object,
    month_start_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    let (name, from, to) = super::rows::partition(month_start_ms);
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&(0x5350_5041_5254_0000_i64 + month_start_ms / 1000)],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF requests FOR VALUES FROM ({from}) TO ({to})"
    ))
    .await?;
    tx.commit().await
}

/// Opens a session owned by this process; a daemon's day session is taken over by whichever
/// daemon serves it next (as in SQLite's writer).
async fn insert_session(
    tx: &Transaction<'_>,
    s: &SessionStart,
) -> Result<(), tokio_postgres::Error> {
    let owner = crate::process::current();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO sessions (id, parent_id, kind, tag, program, cwd, pid, started_ms,
                 budget_usd, host, owner_pid, owner_start, project, repo, branch, head)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT (id) DO UPDATE SET ended_ms = NULL, exit_code = NULL, pid = excluded.pid,
                 host = excluded.host, owner_pid = excluded.owner_pid,
                 owner_start = excluded.owner_start
             WHERE sessions.kind = 'daemon' AND excluded.kind = 'daemon'",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &s.id,
            &s.parent_id,
            &s.kind,
            &s.tag.as_deref().map(clean),
            &s.program.as_deref().map(clean),
            &s.cwd.as_deref().map(clean),
            &s.pid.map(i64::from),
            &s.started_ms,
            &s.budget_usd,
            &owner.host,
            &i64::from(owner.pid),
            &owner.start,
            &s.attribution.project.as_deref().map(clean),
            &s.attribution.repo.as_deref().map(clean),
            &s.attribution.branch.as_deref().map(clean),
            &s.attribution.head.as_deref().map(clean),
        ],
    )
    .await?;
    Ok(())
}

/// Whether no id is there twice (one multi-row statement cannot touch a row twice).
fn distinct<'a>(ids: impl Iterator<Item = &'a str>) -> bool {
    let mut seen = HashSet::new();
    ids.into_iter().all(|id| seen.insert(id))
}

/// [`insert_session`] of a batch's starts (distinct ids), in one statement: a batch of a
/// busy daemon carries many, and one round trip each was most of the batch's time.
async fn insert_sessions(
    tx: &Transaction<'_>,
    starts: &[&SessionStart],
) -> Result<(), tokio_postgres::Error> {
    if starts.is_empty() {
        return Ok(());
    }
    let owner = crate::process::current();
    let text = |v: &Option<String>| v.as_deref().map(|s| clean(s).into_owned());
    let id: Vec<&str> = starts.iter().map(|s| s.id.as_str()).collect();
    let parent: Vec<Option<&str>> = starts.iter().map(|s| s.parent_id.as_deref()).collect();
    let kind: Vec<&str> = starts.iter().map(|s| s.kind).collect();
    let tag: Vec<Option<String>> = starts.iter().map(|s| text(&s.tag)).collect();
    let program: Vec<Option<String>> = starts.iter().map(|s| text(&s.program)).collect();
    let cwd: Vec<Option<String>> = starts.iter().map(|s| text(&s.cwd)).collect();
    let pid: Vec<Option<i64>> = starts.iter().map(|s| s.pid.map(i64::from)).collect();
    let started: Vec<i64> = starts.iter().map(|s| s.started_ms).collect();
    let budget: Vec<Option<f64>> = starts.iter().map(|s| s.budget_usd).collect();
    let project: Vec<Option<String>> = starts
        .iter()
        .map(|s| text(&s.attribution.project))
        .collect();
    let repo: Vec<Option<String>> = starts.iter().map(|s| text(&s.attribution.repo)).collect();
    let branch: Vec<Option<String>> = starts.iter().map(|s| text(&s.attribution.branch)).collect();
    let head: Vec<Option<String>> = starts.iter().map(|s| text(&s.attribution.head)).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO sessions (id, parent_id, kind, tag, program, cwd, pid, started_ms,
                 budget_usd, host, owner_pid, owner_start, project, repo, branch, head)
             SELECT v.id, v.parent_id, v.kind, v.tag, v.program, v.cwd, v.pid, v.started_ms,
                 v.budget_usd, $10::text, $11::bigint, $12::text, v.project, v.repo, v.branch,
                 v.head
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::bigint[], $8::bigint[], $9::float8[], $13::text[],
                 $14::text[], $15::text[], $16::text[])
                 AS v(id, parent_id, kind, tag, program, cwd, pid, started_ms, budget_usd,
                     project, repo, branch, head)
             ON CONFLICT (id) DO UPDATE SET ended_ms = NULL, exit_code = NULL, pid = excluded.pid,
                 host = excluded.host, owner_pid = excluded.owner_pid,
                 owner_start = excluded.owner_start
             WHERE sessions.kind = 'daemon' AND excluded.kind = 'daemon'",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &parent,
            &kind,
            &tag,
            &program,
            &cwd,
            &pid,
            &started,
            &budget,
            &owner.host,
            &i64::from(owner.pid),
            &owner.start,
            &project,
            &repo,
            &branch,
            &head,
        ],
    )
    .await?;
    Ok(())
}

/// [`end_session`] of a batch's ends (distinct ids), in one statement.
async fn end_sessions(
    tx: &Transaction<'_>,
    ends: &[&SessionEnd],
    copied: bool,
) -> Result<(), tokio_postgres::Error> {
    if ends.is_empty() {
        return Ok(());
    }
    let owner = crate::process::current();
    let id: Vec<&str> = ends.iter().map(|e| e.id.as_str()).collect();
    let ended: Vec<i64> = ends.iter().map(|e| e.ended_ms).collect();
    let code: Vec<Option<i32>> = ends.iter().map(|e| e.exit_code).collect();
    let end_branch: Vec<Option<&str>> = ends.iter().map(|e| e.end_branch.as_deref()).collect();
    let end_head: Vec<Option<&str>> = ends.iter().map(|e| e.end_head.as_deref()).collect();
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET ended_ms = v.ended_ms, exit_code = v.exit_code,
                 spent_usd = (SELECT COALESCE(SUM(cost_nusd), 0) / 1e9 FROM requests
                     WHERE session = (SELECT id FROM strings WHERE text = v.id)),
                 end_branch = COALESCE(v.end_branch, sessions.end_branch),
                 end_head = COALESCE(v.end_head, sessions.end_head)
             FROM unnest($1::text[], $2::bigint[], $3::integer[], $7::text[], $8::text[])
                 AS v(id, ended_ms, exit_code, end_branch, end_head)
             WHERE sessions.id = v.id AND ($6 OR owner_pid IS NULL
                 OR (owner_pid = $4 AND host IS NOT DISTINCT FROM $5))",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &ended,
            &code,
            &i64::from(owner.pid),
            &owner.host,
            &copied,
            &end_branch,
            &end_head,
        ],
    )
    .await?;
    Ok(())
}

/// Closes a session; only its owner's end counts (as in SQLite's writer). A copied end (from
/// the spool or `ledger migrate`, sent by whichever process drains or copies) was its owner's
/// when it was recorded, so it counts whoever sends it.
async fn end_session(
    tx: &Transaction<'_>,
    e: &SessionEnd,
    copied: bool,
) -> Result<(), tokio_postgres::Error> {
    let owner = crate::process::current();
    let stmt = tx
        .prepare_cached(
            "UPDATE sessions SET ended_ms = $2, exit_code = $3,
                 spent_usd = (SELECT COALESCE(SUM(cost_nusd), 0) / 1e9 FROM requests
                     WHERE session = (SELECT id FROM strings WHERE text = $1)),
                 end_branch = COALESCE($7, end_branch), end_head = COALESCE($8, end_head)
             WHERE id = $1 AND ($6 OR owner_pid IS NULL
                 OR (owner_pid = $4 AND host IS NOT DISTINCT FROM $5))",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &e.id,
            &e.ended_ms,
            &e.exit_code,
            &i64::from(owner.pid),
            &owner.host,
            &copied,
            &e.end_branch,
            &e.end_head,
        ],
    )
    .await?;
    Ok(())
}

/// Interns the batch's repeated strings (sessions, client hashes, client sessions, skip notes,
/// the attempts' providers, models and error classes) that the cache does not know.
async fn intern_strings(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    requests: &[&RequestRecord],
) -> Result<(), tokio_postgres::Error> {
    let mut missing: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut want = |s: Option<&str>| {
        if let Some(s) = s.map(clean)
            && !caches.strings.contains_key(&*s)
            && seen.insert(s.to_string())
        {
            missing.push(s.into_owned());
        }
    };
    for r in requests {
        want(r.session_id.as_deref());
        want(r.client_hash.as_deref());
        want(r.client_session.as_deref());
        want(r.skipped.as_deref());
        for a in &r.attempt_log {
            want(Some(&a.provider));
            want(Some(&a.model));
            want(a.error_class.as_deref());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO strings (text) SELECT unnest($1::text[]) ON CONFLICT (text) DO NOTHING",
        )
        .await?;
    tx.execute(&insert, &[&missing]).await?;
    let select = tx
        .prepare_cached("SELECT id, text FROM strings WHERE text = ANY($1::text[])")
        .await?;
    for row in tx.query(&select, &[&missing]).await? {
        caches.strings.insert(row.get(1), row.get(0));
    }
    Ok(())
}

/// Interns the batch's request shapes, keyed by the digest of their columns.
async fn intern_shapes(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    requests: &[&RequestRecord],
) -> Result<(), tokio_postgres::Error> {
    let mut columns: [Vec<Option<String>>; 11] = Default::default();
    let mut digests: Vec<Vec<u8>> = Vec::new();
    for r in requests {
        let shape = super::rows::shape_of(r);
        let digest = super::rows::shape_digest(&shape);
        if caches.shapes.contains_key(&digest) || digests.contains(&digest) {
            continue;
        }
        digests.push(digest);
        for (column, value) in columns.iter_mut().zip(shape) {
            column.push(value.map(|v| clean(v).into_owned()));
        }
    }
    if digests.is_empty() {
        return Ok(());
    }
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10] = &columns;
    let insert = tx
        .prepare_cached(
            "INSERT INTO request_shapes (digest, endpoint, route, provider, requested_model,
             served_model, outcome, error_code, cache_status, billing, price_period, user_agent)
         SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
         ON CONFLICT (digest) DO NOTHING",
        )
        .await?;
    tx.execute(
        &insert,
        &[&digests, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10],
    )
    .await?;
    let select = tx
        .prepare_cached("SELECT id, digest FROM request_shapes WHERE digest = ANY($1::bytea[])")
        .await?;
    for row in tx.query(&select, &[&digests]).await? {
        caches.shapes.insert(row.get(1), row.get(0));
    }
    Ok(())
}

/// Every attempt of the batch's requests; a retried batch finds them there already.
async fn insert_attempts(
    tx: &Transaction<'_>,
    caches: &Caches,
    requests: &[&RequestRecord],
) -> Result<(), tokio_postgres::Error> {
    let string = |s: Option<&str>| s.and_then(|s| caches.strings.get(&*clean(s)).copied());
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut n: Vec<i16> = Vec::new();
    let mut provider: Vec<Option<i64>> = Vec::new();
    let mut model: Vec<Option<i64>> = Vec::new();
    let mut status: Vec<Option<i16>> = Vec::new();
    let mut error_class: Vec<Option<i64>> = Vec::new();
    let mut latency: Vec<i64> = Vec::new();
    let mut waited: Vec<i64> = Vec::new();
    for r in requests {
        for (i, a) in r.attempt_log.iter().enumerate() {
            ids.push(super::rows::stored_id(&r.id));
            n.push(i16::try_from(i + 1).unwrap_or(i16::MAX));
            provider.push(string(Some(&a.provider)));
            model.push(string(Some(&a.model)));
            status.push(a.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX)));
            error_class.push(string(a.error_class.as_deref()));
            latency.push(super::rows::micros(a.latency_ms));
            waited.push(super::rows::micros(a.waited_ms));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO attempts (request_id, n, provider, model, status, error_class, latency_us,
             waited_us)
         SELECT * FROM unnest($1::bytea[], $2::smallint[], $3::bigint[], $4::bigint[],
             $5::smallint[], $6::bigint[], $7::bigint[], $8::bigint[])
         ON CONFLICT (request_id, n) DO NOTHING",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &ids,
            &n,
            &provider,
            &model,
            &status,
            &error_class,
            &latency,
            &waited,
        ],
    )
    .await?;
    Ok(())
}

/// An anomaly has no id of its own: a copied one (spool, `ledger migrate`) that is there
/// already, every column equal, is not inserted again.
async fn insert_anomaly(
    tx: &Transaction<'_>,
    a: &Anomaly,
    copied: bool,
) -> Result<(), tokio_postgres::Error> {
    let sql = if copied {
        "INSERT INTO anomalies (at_ms, session_id, kind, provider, model, detail)
         SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text WHERE NOT EXISTS (SELECT 1 FROM anomalies
             WHERE at_ms = $1 AND session_id IS NOT DISTINCT FROM $2 AND kind = $3
                 AND provider IS NOT DISTINCT FROM $4 AND model IS NOT DISTINCT FROM $5
                 AND detail IS NOT DISTINCT FROM $6)"
    } else {
        "INSERT INTO anomalies (at_ms, session_id, kind, provider, model, detail)
         VALUES ($1, $2, $3, $4, $5, $6)"
    };
    tx.execute(
        sql,
        &[
            &a.at_ms,
            &a.session_id,
            &a.kind,
            &clean(&a.provider),
            &clean(&a.model),
            &clean(&a.detail),
        ],
    )
    .await?;
    Ok(())
}
