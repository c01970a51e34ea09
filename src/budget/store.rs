//! Shared budgets in the ledger: what every process has spent in a period plus what requests in
//! flight have reserved, checked and reserved in one immediate transaction so that concurrent
//! processes cannot both take the last of a limit.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};

use crate::ledger::SPEND_BUCKET_MS;

/// How long a reservation counts if its request never settles it (a process that died).
pub const RESERVATION_TTL_MS: i64 = 10 * 60 * 1000;

/// One limit to check: its name, amount, and the start of its period.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub name: &'static str,
    pub limit_usd: f64,
    pub since_ms: i64,
    /// Count only the daemon traffic of this client key (a per-key budget).
    pub key: Option<String>,
    /// Count only the requests of this project's sessions (a per-project budget).
    pub project: Option<String>,
    /// Count subscription-billed rows too (`budget.count_subscription`); the writer's `spend`
    /// rollup already follows the same setting.
    pub count_subscription: bool,
    /// A rolling window's length (`since_ms` is then now minus it): a refusal says when its
    /// spend frees up.
    pub window_ms: Option<i64>,
}

/// Where a limit stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub name: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    /// A rolling window's: its length, and when enough of its spend has aged out (a refusal:
    /// enough for the request; standings: the oldest spend).
    pub window_ms: Option<i64>,
    pub frees_at_ms: Option<i64>,
}

impl Standing {
    pub fn remaining_usd(&self) -> f64 {
        (self.limit_usd - self.spent_usd - self.reserved_usd).max(0.0)
    }
}

/// The outcome of a reservation attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Reserve {
    /// Reserved under `id`; the standings after the reservation.
    Granted(Vec<Standing>),
    /// Refused by this limit (nothing reserved).
    Refused(Standing),
}

/// What was spent since `since_ms`: whole quarter hours from the `spend` rollup, and the requests
/// of a partial first quarter hour (a period starting off the quarter) one by one.
fn spent_since(conn: &Connection, limit: &Limit) -> rusqlite::Result<f64> {
    if let Some(project) = &limit.project {
        return project_spent_since(conn, limit, project);
    }
    let (since_ms, key) = (limit.since_ms, limit.key.as_deref());
    let whole_from =
        since_ms + (SPEND_BUCKET_MS - since_ms.rem_euclid(SPEND_BUCKET_MS)) % SPEND_BUCKET_MS;
    let whole: f64 = match key {
        None => conn
            .prepare_cached("SELECT TOTAL(cost_usd) FROM spend WHERE bucket_ms >= ?1")?
            .query_row([whole_from], |r| r.get(0))?,
        Some(key) => conn
            .prepare_cached("SELECT TOTAL(cost_usd) FROM spend WHERE bucket_ms >= ?1 AND key = ?2")?
            .query_row(params![whole_from, key], |r| r.get(0))?,
    };
    // Periods start at a local midnight, on a quarter hour in every time zone: usually no part.
    if whole_from == since_ms {
        return Ok(whole);
    }
    let counted = i64::from(limit.count_subscription);
    let partial: f64 = match key {
        None => conn
            .prepare_cached(
                "SELECT TOTAL(cost_usd) FROM requests WHERE started_ms >= ?1 AND started_ms < ?2
                 AND (billing = 'api' OR ?3)",
            )?
            .query_row([since_ms, whole_from, counted], |r| r.get(0))?,
        Some(key) => conn
            .prepare_cached(
                "SELECT TOTAL(r.cost_usd) FROM requests r JOIN sessions s ON s.id = r.session_id
                 WHERE s.kind = 'daemon' AND s.tag = ?1 AND r.started_ms >= ?2 AND r.started_ms < ?3
                 AND (r.billing = 'api' OR ?4)",
            )?
            .query_row(params![key, since_ms, whole_from, counted], |r| r.get(0))?,
    };
    Ok(whole + partial)
}

/// What a project's sessions spent since the limit's start: whole hours from the `usage`
/// rollup (less what is simulated, and subscription rows unless counted), the requests of a
/// partial first hour one by one.
fn project_spent_since(conn: &Connection, limit: &Limit, project: &str) -> rusqlite::Result<f64> {
    let since_ms = limit.since_ms;
    let whole_from = crate::ledger::usage::hour_at_or_after(since_ms);
    let counted = i64::from(limit.count_subscription);
    let whole: f64 = conn
        .prepare_cached(
            "SELECT TOTAL(u.cost_usd) - TOTAL(u.simulated_usd)
                 - CASE WHEN ?3 THEN 0 ELSE TOTAL(u.subscription_usd) END
             FROM usage u JOIN sessions s ON s.id = u.session_id
             WHERE s.project = ?1 AND u.hour_ms >= ?2",
        )?
        .query_row(params![project, whole_from, counted], |r| r.get(0))?;
    if whole_from == since_ms {
        return Ok(whole);
    }
    let partial: f64 = conn
        .prepare_cached(
            "SELECT TOTAL(r.cost_usd) FROM requests r JOIN sessions s ON s.id = r.session_id
             WHERE s.project = ?1 AND r.started_ms >= ?2 AND r.started_ms < ?3
             AND (r.billing = 'api' OR (r.billing = 'subscription' AND ?4))",
        )?
        .query_row(params![project, since_ms, whole_from, counted], |r| {
            r.get(0)
        })?;
    Ok(whole + partial)
}

fn standing(conn: &Connection, limit: &Limit, now_ms: i64) -> rusqlite::Result<Standing> {
    let spent = spent_since(conn, limit)?;
    let reserved: f64 = match (&limit.key, &limit.project) {
        (_, Some(project)) => conn
            .prepare_cached(
                "SELECT TOTAL(amount_usd) FROM reservations WHERE expires_ms > ?1 AND project = ?2",
            )?
            .query_row(params![now_ms, project], |r| r.get(0))?,
        (None, None) => conn
            .prepare_cached("SELECT TOTAL(amount_usd) FROM reservations WHERE expires_ms > ?1")?
            .query_row([now_ms], |r| r.get(0))?,
        (Some(key), None) => conn
            .prepare_cached(
                "SELECT TOTAL(amount_usd) FROM reservations WHERE expires_ms > ?1 AND tag = ?2",
            )?
            .query_row(params![now_ms, key], |r| r.get(0))?,
    };
    Ok(Standing {
        name: limit.name,
        limit_usd: limit.limit_usd,
        spent_usd: spent,
        reserved_usd: reserved,
        window_ms: limit.window_ms,
        frees_at_ms: None,
    })
}

/// A rolling window's spend as (when it leaves the window, USD), oldest first: the `spend`
/// roll-up's quarter hours (a project's: the `usage` roll-up's hours), each leaving at its end
/// plus the window, and the partial oldest one (counted request by request) with them.
fn window_spend(
    conn: &Connection,
    limit: &Limit,
    every_ms: i64,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let total = spent_since(conn, limit)?;
    let mut rows: Vec<(i64, f64)> = Vec::new();
    let width = match &limit.project {
        Some(project) => {
            let from = crate::ledger::usage::hour_at_or_after(limit.since_ms);
            let counted = i64::from(limit.count_subscription);
            let mut stmt = conn.prepare_cached(
                "SELECT u.hour_ms, TOTAL(u.cost_usd) - TOTAL(u.simulated_usd)
                     - CASE WHEN ?3 THEN 0 ELSE TOTAL(u.subscription_usd) END
                 FROM usage u JOIN sessions s ON s.id = u.session_id
                 WHERE s.project = ?1 AND u.hour_ms >= ?2 GROUP BY u.hour_ms ORDER BY u.hour_ms",
            )?;
            let found = stmt.query_map(params![project, from, counted], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for row in found {
                rows.push(row?);
            }
            crate::ledger::usage::HOUR_MS
        }
        None => {
            let from = limit.since_ms
                + (SPEND_BUCKET_MS - limit.since_ms.rem_euclid(SPEND_BUCKET_MS)) % SPEND_BUCKET_MS;
            let mut stmt = conn.prepare_cached(
                "SELECT bucket_ms, TOTAL(cost_usd) FROM spend
                 WHERE bucket_ms >= ?1 AND (?2 IS NULL OR key = ?2)
                 GROUP BY bucket_ms ORDER BY bucket_ms",
            )?;
            let found = stmt.query_map(params![from, limit.key], |r| Ok((r.get(0)?, r.get(1)?)))?;
            for row in found {
                rows.push(row?);
            }
            SPEND_BUCKET_MS
        }
    };
    let whole: f64 = rows.iter().map(|(_, usd)| usd).sum();
    let mut out: Vec<(i64, f64)> = rows
        .into_iter()
        .map(|(start, usd)| (start + width + every_ms, usd))
        .collect();
    // The partial oldest bucket leaves at the latest when the first whole one begins to.
    let partial = total - whole;
    if partial > 1e-12 {
        out.insert(
            0,
            (
                limit.since_ms - limit.since_ms.rem_euclid(width) + width + every_ms,
                partial,
            ),
        );
    }
    // A reservation becomes spend dated at its request's start (about when it was made), and
    // leaves the window with it.
    let mut stmt = conn.prepare_cached(
        "SELECT created_ms, amount_usd FROM reservations WHERE expires_ms > ?1
         AND (?2 IS NULL OR project = ?2) AND (?3 IS NULL OR tag = ?3)",
    )?;
    let held = stmt.query_map(
        params![limit.since_ms + every_ms, limit.project, limit.key],
        |r| Ok((r.get::<_, i64>(0)? + every_ms, r.get::<_, f64>(1)?)),
    )?;
    for row in held {
        out.push(row?);
    }
    out.sort_by_key(|(leaves_at, _)| *leaves_at);
    Ok(out)
}

/// When `need_usd` of `limit`'s window has aged out (`None`: not a window, or never).
fn frees_at(conn: &Connection, limit: &Limit, need_usd: f64) -> rusqlite::Result<Option<i64>> {
    let Some(every_ms) = limit.window_ms else {
        return Ok(None);
    };
    let spend = window_spend(conn, limit, every_ms)?;
    Ok(super::window::frees_at_ms(&spend, need_usd))
}

/// Where each limit stands now, for `smartproxy budget` and `/admin/budget`.
pub fn standings(
    conn: &Connection,
    limits: &[Limit],
    now_ms: i64,
) -> rusqlite::Result<Vec<Standing>> {
    limits
        .iter()
        .map(|l| {
            let mut s = standing(conn, l, now_ms)?;
            // A window frees up as its oldest spend ages out.
            s.frees_at_ms = frees_at(conn, l, 1e-9)?;
            Ok(s)
        })
        .collect()
}

/// Reserves `estimate_usd` under `id` if every limit allows it, waiting for a busy ledger
/// until `deadline` at most.
pub fn reserve(
    conn: &mut Connection,
    limits: &[Limit],
    id: &str,
    key: Option<&str>,
    estimate_usd: f64,
    now_ms: i64,
    deadline: Instant,
) -> rusqlite::Result<Reserve> {
    // The reservation counts against the project's limit too, when one applies.
    let project = limits.iter().find_map(|l| l.project.as_deref());
    // SQLite's own busy handler must not wait past the deadline either.
    conn.busy_timeout(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    )?;
    crate::db::with_busy_retry_until(deadline, || {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM reservations WHERE expires_ms <= ?1")?
            .execute([now_ms])?;
        let mut after = Vec::with_capacity(limits.len());
        for limit in limits {
            let s = standing(&tx, limit, now_ms)?;
            let decision =
                super::policy::decide(Some(s.limit_usd), s.spent_usd, s.reserved_usd, estimate_usd);
            if decision.is_err() {
                let need = s.spent_usd + s.reserved_usd + estimate_usd - s.limit_usd;
                let frees_at_ms = frees_at(&tx, limit, need.max(1e-9))?;
                return Ok(Reserve::Refused(Standing { frees_at_ms, ..s }));
            }
            after.push(Standing {
                reserved_usd: s.reserved_usd + estimate_usd,
                ..s
            });
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO reservations (id, amount_usd, created_ms, expires_ms, tag, project)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, estimate_usd, now_ms, now_ms + RESERVATION_TTL_MS, key, project])?;
        tx.commit()?;
        Ok(Reserve::Granted(after))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::ledger::{Billing, Ledger, RequestRecord, SessionStart};

    fn session(id: &str, kind: &'static str, tag: &str) -> SessionStart {
        SessionStart {
            id: id.to_owned(),
            parent_id: None,
            kind,
            tag: Some(tag.to_owned()),
            program: None,
            cwd: None,
            pid: None,
            started_ms: 0,
            budget_usd: None,
            attribution: Default::default(),
        }
    }

    /// 400 requests over about two hours from a `run` session and a daemon key, every 11th
    /// billed to a subscription (and so left out of budgets) when `subscription`; returns the
    /// time of the first, on a quarter hour.
    fn fill(path: &std::path::Path, subscription: bool) -> i64 {
        let ledger = Ledger::open(path).unwrap();
        ledger.session_started(session("run-1", "run", "alpha"));
        ledger.session_started(session("daemon-day-ci", "daemon", "ci"));
        let base = 1_763_800_000_000_i64 - 1_763_800_000_000_i64 % SPEND_BUCKET_MS;
        let sessions = [Arc::<str>::from("run-1"), Arc::from("daemon-day-ci")];
        for i in 0..400_i64 {
            let mut record = RequestRecord::new(
                format!("req_{i:08}"),
                Some(Arc::clone(&sessions[(i % 2) as usize])),
                base + i * 17_000,
                "chat",
            );
            // Some rows have no known cost; they count for nothing.
            record.cost_usd = (i % 7 != 0).then_some(0.001 * (i % 5) as f64 + 0.0005);
            if subscription && i % 11 == 0 {
                record.billing = Billing::Subscription;
                record.budgeted = false;
            }
            ledger.record(record);
        }
        ledger.flush(Duration::from_secs(10)).unwrap();
        base
    }

    fn spent(conn: &Connection, since_ms: i64, key: Option<&str>) -> f64 {
        let limit = Limit {
            name: "test",
            limit_usd: 1.0,
            since_ms,
            key: key.map(str::to_owned),
            project: None,
            count_subscription: false,
            window_ms: None,
        };
        spent_since(conn, &limit).unwrap()
    }

    /// The rollup gives exactly what adding up the requests one by one gives, for periods that
    /// start on a quarter hour and off it, overall and per daemon key.
    fn assert_rollup_matches(conn: &Connection, base: i64) {
        let by_hand = |since: i64, key: Option<&str>| -> f64 {
            let sql = "SELECT TOTAL(r.cost_usd) FROM requests r LEFT JOIN sessions s ON s.id = r.session_id
                       WHERE r.started_ms >= ?1 AND (?2 IS NULL OR (s.kind = 'daemon' AND s.tag = ?2))
                       AND r.billing = 'api'";
            conn.query_row(sql, params![since, key], |r| r.get(0))
                .unwrap()
        };
        let buckets: i64 = conn
            .query_row("SELECT COUNT(*) FROM spend", [], |r| r.get(0))
            .unwrap();
        assert!(buckets > 0 && buckets < 40, "{buckets} rollup rows");
        for since in [
            0,
            base,
            base + SPEND_BUCKET_MS,
            base + 1,
            base + 2 * SPEND_BUCKET_MS + 12_345,
            base + 400 * 17_000,
        ] {
            for key in [None, Some("ci"), Some("alpha"), Some("nobody")] {
                let got = spent(conn, since, key);
                let want = by_hand(since, key);
                assert!(
                    (got - want).abs() < 1e-9,
                    "since {since} key {key:?}: {got} != {want}"
                );
            }
        }
        assert_eq!(spent(conn, 0, Some("alpha")), 0.0, "run tags are not keys");
        assert!(spent(conn, 0, Some("ci")) > 0.0);
    }

    #[test]
    fn the_writer_keeps_the_spend_rollup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let base = fill(&path, true);
        let conn = crate::ledger::open_connection(&path).unwrap();
        assert_rollup_matches(&conn, base);
    }

    #[test]
    fn the_migration_builds_the_rollup_from_existing_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let base = fill(&path, false);
        let conn = crate::ledger::open_connection(&path).unwrap();
        // A ledger from before the rollups (and the columns and narrow rows added since) existed.
        conn.execute_batch(crate::ledger::UNDO_ATTRIB).unwrap();
        conn.execute_batch(crate::ledger::narrow::UNDO).unwrap();
        conn.execute_batch(
            "DROP TABLE spend; DROP TABLE usage; ALTER TABLE requests DROP COLUMN billing;
             ALTER TABLE requests DROP COLUMN budget_action; ALTER TABLE requests DROP COLUMN skipped;
             ALTER TABLE requests DROP COLUMN price_period;
             ALTER TABLE sessions DROP COLUMN host; ALTER TABLE sessions DROP COLUMN owner_pid;
             ALTER TABLE sessions DROP COLUMN owner_start;
             PRAGMA user_version = 9;",
        )
        .unwrap();
        drop(crate::ledger::keys::open(&path).unwrap()); // opening migrates
        assert_rollup_matches(&conn, base);
    }
}
