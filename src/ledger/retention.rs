//! Retention: what `smartproxy prune` and the daemon's daily clean-up delete from the ledger.
//! Rows go in small batches, each its own short write transaction, so the processes sharing
//! the ledger keep writing while a large prune runs.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::usage::hour_of;
use crate::db;

/// Requests deleted per write transaction: a few milliseconds of lock each.
const BATCH: i64 = 2_000;

/// What a prune with a given cutoff deletes (or deleted).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pruned {
    /// Rows older than this (ms since the epoch, exactly as asked) go.
    pub cutoff_ms: i64,
    pub requests: u64,
    /// Counted when deleted; a dry run leaves it out (counting them means reading every one).
    pub attempts: Option<u64>,
    /// Sessions that ended before the cutoff and keep no request.
    pub sessions: u64,
    pub anomalies: u64,
    /// The oldest and newest request among those deleted.
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    /// PostgreSQL only: the monthly partitions of `requests` dropped whole (or that would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u64>,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.sessions == 0 && self.anomalies == 0
    }
}

/// Sessions that ended before the cutoff and keep nothing: no newer request of their own and
/// no descendant that stays (a session still running, or one with newer requests, keeps its
/// ancestors, so a nested run never loses its parent). A session whose process died without
/// recording its end (`temp.lost`, see [`note_lost_sessions`]) is not running: it goes once it
/// started before the cutoff.
const OLD_SESSIONS: &str = "WITH RECURSIVE
     seed(id) AS (SELECT id FROM sessions
                  WHERE (ended_ms IS NULL AND (started_ms >= ?1 OR id NOT IN temp.lost))
                        OR ended_ms >= ?1
                  UNION SELECT text FROM strings WHERE id IN (SELECT session FROM request_rows
                        WHERE started_ms >= ?1 AND session IS NOT NULL)),
     keep(id) AS (SELECT id FROM seed
                  UNION SELECT s.parent_id FROM sessions s JOIN keep ON s.id = keep.id
                        WHERE s.parent_id IS NOT NULL)
     SELECT s.rowid FROM sessions s WHERE s.id NOT IN (SELECT id FROM keep)";

/// Lists, in the connection's own `temp.lost`, the sessions without an end whose process is
/// gone (`crate::process::gone`): the liveness check is made here, not in SQL.
fn note_lost_sessions(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS lost (id TEXT PRIMARY KEY); DELETE FROM temp.lost;",
    )?;
    let mut open = conn
        .prepare("SELECT id, host, owner_pid, owner_start FROM sessions WHERE ended_ms IS NULL")?;
    let mut rows = open.query([])?;
    let mut insert = conn.prepare("INSERT OR IGNORE INTO temp.lost (id) VALUES (?1)")?;
    while let Some(row) = rows.next()? {
        let host: Option<String> = row.get(1)?;
        let start: Option<String> = row.get(3)?;
        if crate::process::gone(host.as_deref(), row.get(2)?, start.as_deref()) {
            insert.execute([row.get::<_, String>(0)?])?;
        }
    }
    Ok(())
}

/// Counts what `execute` would delete, without writing.
pub fn plan(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<Pruned> {
    note_lost_sessions(conn)?;
    let (requests, oldest_ms, newest_ms): (i64, Option<i64>, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MIN(started_ms), MAX(started_ms) FROM request_rows WHERE started_ms < ?1",
        [cutoff_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let sessions: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM ({OLD_SESSIONS})"),
        [cutoff_ms],
        |r| r.get(0),
    )?;
    let anomalies: i64 = conn.query_row(
        "SELECT COUNT(*) FROM anomalies WHERE at_ms < ?1",
        [cutoff_ms],
        |r| r.get(0),
    )?;
    Ok(Pruned {
        cutoff_ms,
        requests: requests as u64,
        attempts: None,
        sessions: sessions as u64,
        anomalies: anomalies as u64,
        oldest_ms,
        newest_ms,
        partitions: None,
    })
}

/// Deletes every request, attempt and anomaly older than `cutoff_ms`, then the sessions left
/// with nothing, reporting the requests deleted so far to `progress` after each batch. The
/// budgets' spend rollup is kept from `budget_counts_from_ms` on (see
/// `budget::policy::counted_since_ms`), so pruning never gives a budget its money back.
/// The rollup's hours before the cutoff's go whole; the cutoff's own hour is added up again
/// from the requests it keeps, so totals count exactly the requests left.
pub fn execute(
    conn: &Connection,
    cutoff_ms: i64,
    budget_counts_from_ms: i64,
    progress: &mut dyn FnMut(u64),
) -> rusqlite::Result<Pruned> {
    note_lost_sessions(conn)?;
    let mut done = Pruned {
        cutoff_ms,
        ..Pruned::default()
    };
    loop {
        // The same ordered subquery picks the same rows twice inside one transaction.
        let (span, attempts, requests) = db::write(conn, |tx| {
            let span: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT MIN(started_ms), MAX(started_ms) FROM (SELECT started_ms FROM request_rows
                     WHERE started_ms < ?1 ORDER BY started_ms, seq LIMIT ?2)",
                    (cutoff_ms, BATCH),
                    |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
                )
                .optional()?
                .flatten();
            let attempts = tx.execute(
                "DELETE FROM attempt_rows WHERE request IN (SELECT seq FROM request_rows
                 WHERE started_ms < ?1 ORDER BY started_ms, seq LIMIT ?2)",
                (cutoff_ms, BATCH),
            )?;
            let requests = tx.execute(
                "DELETE FROM request_rows WHERE seq IN (SELECT seq FROM request_rows
                 WHERE started_ms < ?1 ORDER BY started_ms, seq LIMIT ?2)",
                (cutoff_ms, BATCH),
            )?;
            Ok((span, attempts as u64, requests as u64))
        })?;
        if let Some((oldest, newest)) = span {
            done.oldest_ms = Some(done.oldest_ms.map_or(oldest, |o| o.min(oldest)));
            done.newest_ms = Some(done.newest_ms.map_or(newest, |n| n.max(newest)));
        }
        done.attempts = Some(done.attempts.unwrap_or(0) + attempts);
        done.requests += requests;
        progress(done.requests);
        if requests < BATCH as u64 {
            break;
        }
    }
    done.anomalies = loop_delete(
        conn,
        "DELETE FROM anomalies WHERE rowid IN
         (SELECT rowid FROM anomalies WHERE at_ms < ?1 LIMIT ?2)",
        cutoff_ms,
    )?;
    let whole_hours_to = hour_of(cutoff_ms);
    db::write(conn, |tx| {
        tx.execute("DELETE FROM usage WHERE hour_ms < ?1", [whole_hours_to])?;
        if whole_hours_to != cutoff_ms {
            tx.execute("DELETE FROM usage WHERE hour_ms = ?1", [whole_hours_to])?;
            tx.execute(REBUILD_HOUR, [whole_hours_to])?;
        }
        // Spend buckets (quarter hours) only go whole: a budget never gets money back.
        tx.execute(
            "DELETE FROM spend WHERE bucket_ms < ?1",
            [whole_hours_to.min(budget_counts_from_ms)],
        )
    })?;
    done.sessions = loop_delete(
        conn,
        &format!("DELETE FROM sessions WHERE rowid IN ({OLD_SESSIONS} LIMIT ?2)"),
        cutoff_ms,
    )?;
    Ok(done)
}

/// The rollup rows of the hour starting at ?1, added up from its requests as the writer adds
/// them (`usage::UsageBatch`): for the hour a cutoff falls inside.
const REBUILD_HOUR: &str = "INSERT INTO usage (hour_ms, session_id, model, provider, requests, ok,
         prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cost_usd, unpriced,
         estimated, subscription_usd, simulated_usd)
     SELECT ?1, COALESCE(session_id, ''), COALESCE(served_model, requested_model, '(none)'),
         COALESCE(provider, '(none)'), COUNT(*), TOTAL(outcome = 'ok'), TOTAL(prompt_tokens),
         TOTAL(completion_tokens), TOTAL(cached_tokens), TOTAL(cache_write_tokens), SUM(cost_usd),
         TOTAL(cost_usd IS NULL AND outcome = 'ok'), TOTAL(tokens_estimated),
         SUM(CASE WHEN billing = 'subscription' THEN cost_usd END),
         SUM(CASE WHEN billing = 'simulated' THEN cost_usd END)
     FROM requests WHERE started_ms >= ?1 AND started_ms < ?1 + 3600000 GROUP BY 2, 3, 4";

/// Runs a batched `DELETE ... LIMIT ?2` until it deletes nothing more.
fn loop_delete(conn: &Connection, sql: &str, cutoff_ms: i64) -> rusqlite::Result<u64> {
    let mut total = 0;
    loop {
        let n = db::write(conn, |tx| tx.execute(sql, (cutoff_ms, BATCH)))? as u64;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// The file's size and the part of it that is free pages (what `VACUUM` would give back).
pub fn file_pages(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(((pages * page_size) as u64, (free * page_size) as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::open_connection;

    fn ledger() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let conn = open_connection(&path).unwrap();
        crate::ledger::migrations::migrate(&conn, &path).unwrap();
        conn.execute_batch(crate::ledger::LEGACY_WRITES).unwrap();
        (dir, conn)
    }

    fn request(conn: &Connection, id: &str, session: &str, at: i64) {
        conn.execute(
            "INSERT INTO requests (id, session_id, started_ms, endpoint, status, outcome, stream,
             latency_ms, attempts, cache_status) VALUES (?1, ?2, ?3, 'chat', 200, 'ok', 0, 1, 1, 'miss')",
            (id, session, at),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attempts (request_id, n, provider, status) VALUES (?1, 1, 'mock', 200)",
            [id],
        )
        .unwrap();
    }

    fn session(
        conn: &Connection,
        id: &str,
        parent: Option<&str>,
        started: i64,
        ended: Option<i64>,
    ) {
        conn.execute(
            "INSERT INTO sessions (id, parent_id, kind, started_ms, ended_ms) VALUES (?1, ?2, 'run', ?3, ?4)",
            (id, parent, started, ended),
        )
        .unwrap();
    }

    /// A session whose process died without recording its end is pruned like an ended one;
    /// one whose process may live (here: an owner an older build did not record) is kept.
    #[test]
    fn a_lost_session_is_pruned_a_possibly_running_one_is_kept() {
        const H: i64 = crate::ledger::usage::HOUR_MS;
        let (_dir, conn) = ledger();
        session(&conn, "lost", None, 0, None);
        session(&conn, "unknown", None, 0, None);
        // pid 1 with a start no process ever had: certainly gone.
        conn.execute(
            "UPDATE sessions SET host = ?1, owner_pid = 1, owner_start = 'never' WHERE id = 'lost'",
            [crate::process::host()],
        )
        .unwrap();
        assert_eq!(plan(&conn, 2 * H).unwrap().sessions, 1);
        execute(&conn, 2 * H, 0, &mut |_| {}).unwrap();
        let left: Vec<String> = conn
            .prepare("SELECT id FROM sessions")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(left, ["unknown"]);
    }

    #[test]
    fn deletes_old_rows_in_batches_and_keeps_sessions_that_still_have_requests() {
        const H: i64 = crate::ledger::usage::HOUR_MS;
        let (_dir, conn) = ledger();
        session(&conn, "old", None, 0, Some(10));
        session(&conn, "old-child", Some("old"), 1, Some(9));
        session(&conn, "spans", None, 5, Some(2 * H));
        session(&conn, "running", None, 0, None);
        session(&conn, "p2", None, 0, Some(10));
        session(&conn, "c2", Some("p2"), 1, None);
        let n = BATCH as usize * 2 + 7;
        for i in 0..n {
            request(&conn, &format!("r{i}"), "old", i as i64 % 10);
        }
        request(&conn, "new", "spans", 2 * H);
        conn.execute(
            "INSERT INTO anomalies (at_ms, kind) VALUES (5, 'x'), (?1, 'y')",
            [2 * H],
        )
        .unwrap();

        conn.execute(
            "INSERT INTO spend (bucket_ms, key, cost_usd) VALUES (0, '', 1.0), (900000, '', 2.0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO usage VALUES (0, 'old', 'm', 'p', 1, 1, 1, 1, 0, 0, 0.1, 0, 0, NULL, NULL),
                                      (?1, 'spans', 'm', 'p', 1, 1, 1, 1, 0, 0, 0.1, 0, 0, NULL, NULL)",
            [2 * H],
        )
        .unwrap();
        let planned = plan(&conn, H + 10).unwrap();
        assert_eq!(planned.requests, n as u64);
        assert_eq!(planned.attempts, None);
        assert_eq!(planned.sessions, 2, "the old session and its nested run");
        assert_eq!(planned.anomalies, 1);
        assert_eq!((planned.oldest_ms, planned.newest_ms), (Some(0), Some(9)));

        let mut reports = Vec::new();
        let done = execute(&conn, H + 10, 0, &mut |n| reports.push(n)).unwrap();
        assert_eq!(done.requests, n as u64);
        assert_eq!(done.attempts, Some(n as u64));
        assert_eq!(done.sessions, 2);
        assert_eq!(done.anomalies, 1);
        assert_eq!(reports.len(), 3, "three batches: {reports:?}");
        let left: Vec<String> = conn
            .prepare("SELECT id FROM sessions ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            ["c2", "p2", "running", "spans"],
            "a running nested run keeps its parent"
        );
        let requests: i64 = conn
            .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
            .unwrap();
        let attempts: i64 = conn
            .query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!((requests, attempts), (1, 1));
        let usage: i64 = conn
            .query_row("SELECT COUNT(*) FROM usage", [], |r| r.get(0))
            .unwrap();
        assert_eq!(usage, 1, "the rollup's old hours go with their requests");
        assert!(plan(&conn, H + 10).unwrap().is_empty());
        let spend: i64 = conn
            .query_row("SELECT COUNT(*) FROM spend", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            spend, 2,
            "a budget period that started at 0 keeps its rollup"
        );
        execute(&conn, 2 * H, 900_000, &mut |_| {}).unwrap();
        let spend: i64 = conn
            .query_row("SELECT COUNT(*) FROM spend", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            spend, 1,
            "buckets before both the cutoff and the budget period go"
        );
    }
}
