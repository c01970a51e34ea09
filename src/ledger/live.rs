//! Live reads for dashboards: the newest requests (filtered, always bounded by a LIMIT), one
//! request with its attempts, the sessions of today and those still running, today's totals per
//! session, model and provider, and a cheap probe that says whether anything was committed
//! since the last look. Every query is bounded by time or a LIMIT and walks an index
//! (`requests_started`, `requests_session`, `sessions_started`), never the whole table.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::query::{SESSION_COLUMNS, SessionRow, session_from_row};
use super::request_view::{COLUMNS, RequestRow, from_row};

/// Which requests a live list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFilter {
    /// Only this session and the `run`s started inside it.
    pub session_id: Option<String>,
    /// Text that the session id (prefix), the tag, the model or the provider must contain.
    pub text: Option<String>,
    /// Only requests started at or after this time.
    pub since_ms: Option<i64>,
}

/// Totals of one group (a session, a model, a provider) over a time window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupTotals {
    pub key: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Spent: simulated (mock) costs are apart, unpriced requests not in it.
    pub cost_usd: f64,
    /// Successful requests to models with no known price.
    pub unpriced: u64,
    /// List-price cost of requests the mock provider served (nothing spent).
    pub simulated_usd: f64,
}

/// Today's totals, per session, model and provider, each most expensive first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayTotals {
    pub all: GroupTotals,
    pub by_session: Vec<GroupTotals>,
    pub by_model: Vec<GroupTotals>,
    pub by_provider: Vec<GroupTotals>,
}

/// Opens the ledger for reading only, without creating or migrating anything.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    crate::db::open_read_only(path)
}

/// A number that changes whenever another connection commits to the ledger (SQLite's
/// `data_version`); compare it between polls on the same connection.
pub fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "data_version", |r| r.get(0))
}

/// Midnight of today, local time, in epoch milliseconds.
pub fn start_of_today_ms() -> i64 {
    chrono::Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map_or(0, |t| t.timestamp_millis())
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The newest requests matching `filter`, newest first, at most `limit` of them. The scan walks
/// `requests_started` backwards and stops at `limit` matches (or at `since_ms`).
pub fn recent_requests(
    conn: &Connection,
    filter: &LiveFilter,
    limit: usize,
) -> rusqlite::Result<Vec<RequestRow>> {
    let mut clauses = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(id) = &filter.session_id {
        args.push(id.clone().into());
        clauses.push(format!(
            "r.session_id IN (WITH RECURSIVE tree(id) AS (SELECT ?{n} UNION ALL \
             SELECT s2.id FROM sessions s2 JOIN tree ON s2.parent_id = tree.id) SELECT id FROM tree)",
            n = args.len()
        ));
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        args.push(like_pattern(text).into());
        let n = args.len();
        clauses.push(format!(
            "(r.session_id LIKE ?{n} ESCAPE '\\' OR s.tag LIKE ?{n} ESCAPE '\\' \
             OR r.served_model LIKE ?{n} ESCAPE '\\' OR r.requested_model LIKE ?{n} ESCAPE '\\' \
             OR r.provider LIKE ?{n} ESCAPE '\\')"
        ));
    }
    if let Some(since) = filter.since_ms {
        args.push(since.into());
        clauses.push(format!("r.started_ms >= ?{}", args.len()));
    }
    args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let limit_arg = args.len();
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    // The time index even with a session filter: the newest rows come first, so the LIMIT ends
    // the walk early instead of sorting every row of a long daemon session. (The hint goes on
    // the table under the `requests` view, joined back by its row number.)
    let sql = format!(
        "SELECT {COLUMNS} FROM request_rows q INDEXED BY requests_started
         JOIN requests r ON r.seq = q.seq
         LEFT JOIN sessions s ON s.id = r.session_id
         {clause} ORDER BY q.started_ms DESC LIMIT ?{limit_arg}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), from_row)?;
    rows.collect()
}

/// How far back a session without an end is still taken for running: older ones were most
/// likely killed before they could record their end.
const RUNNING_HORIZON_MS: i64 = 7 * 24 * 3600 * 1000;

/// Sessions started since `since_ms` and sessions still running (started in the last week),
/// newest first, at most `limit`.
pub fn sessions_since(
    conn: &Connection,
    since_ms: i64,
    now_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id IN (
             SELECT id FROM sessions WHERE started_ms >= ?1
             UNION
             SELECT id FROM sessions WHERE started_ms >= ?2 AND ended_ms IS NULL)
         ORDER BY s.started_ms DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        rusqlite::params![
            since_ms,
            now_ms - RUNNING_HORIZON_MS,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        session_from_row,
    )?;
    rows.collect()
}

/// The unit totals are made of: one (session, model, provider) triple's figures over a window.
pub type GroupKey = (String, String, String);

/// Figures per (session, model, provider) for requests started in `[from_ms, until_ms)`
/// (`until_ms` None: up to now), row by row: for a part of an hour.
fn grouped_between(
    conn: &Connection,
    from_ms: i64,
    until_ms: Option<i64>,
) -> rusqlite::Result<BTreeMap<GroupKey, GroupTotals>> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(session_id, '(none)'),
                COALESCE(served_model, requested_model, '(none)'),
                COALESCE(provider, '(none)'),
                COUNT(*), TOTAL(status >= 400 OR outcome != 'ok'),
                TOTAL(prompt_tokens), TOTAL(completion_tokens), TOTAL(cost_usd),
                TOTAL(cost_usd IS NULL AND outcome = 'ok'),
                TOTAL(CASE WHEN billing = 'simulated' THEN cost_usd END)
         FROM requests WHERE started_ms >= ?1 AND started_ms < ?2 GROUP BY 1, 2, 3",
    )?;
    read_groups(stmt.query(rusqlite::params![from_ms, until_ms.unwrap_or(i64::MAX)])?)
}

/// The same figures for whole hours from `hour_ms` on, from the `usage` rollup.
fn grouped_hours(
    conn: &Connection,
    hour_ms: i64,
) -> rusqlite::Result<BTreeMap<GroupKey, GroupTotals>> {
    let mut stmt = conn.prepare_cached(
        "SELECT CASE session_id WHEN '' THEN '(none)' ELSE session_id END, model, provider,
                TOTAL(requests), TOTAL(requests - ok), TOTAL(prompt_tokens),
                TOTAL(completion_tokens), TOTAL(cost_usd), TOTAL(unpriced), TOTAL(simulated_usd)
         FROM usage WHERE hour_ms >= ?1 GROUP BY 1, 2, 3",
    )?;
    read_groups(stmt.query([hour_ms])?)
}

/// Rows of (session, model, provider, requests, errors, prompt, completion, cost, unpriced,
/// simulated), the figures as SQLite's `TOTAL` gives them.
fn read_groups(mut rows: rusqlite::Rows<'_>) -> rusqlite::Result<BTreeMap<GroupKey, GroupTotals>> {
    let mut groups = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let count = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, f64>(i)? as u64) };
        let totals = GroupTotals {
            key: String::new(),
            requests: count(3)?,
            errors: count(4)?,
            prompt_tokens: count(5)?,
            completion_tokens: count(6)?,
            cost_usd: row.get::<_, f64>(7)? - row.get::<_, f64>(9)?,
            unpriced: count(8)?,
            simulated_usd: row.get(9)?,
        };
        groups.insert((row.get(0)?, row.get(1)?, row.get(2)?), totals);
    }
    Ok(groups)
}

/// Adds the groups of `more` into `into`.
fn merge(into: &mut BTreeMap<GroupKey, GroupTotals>, more: BTreeMap<GroupKey, GroupTotals>) {
    for (key, part) in more {
        add(into.entry(key).or_default(), &part);
    }
}

/// Per-session, per-model and per-provider totals of the groups (also PostgreSQL's).
pub fn fold<'a>(groups: impl IntoIterator<Item = (&'a GroupKey, &'a GroupTotals)>) -> DayTotals {
    let mut sessions: BTreeMap<String, GroupTotals> = BTreeMap::new();
    let mut models: BTreeMap<String, GroupTotals> = BTreeMap::new();
    let mut providers: BTreeMap<String, GroupTotals> = BTreeMap::new();
    let mut all = GroupTotals {
        key: "total".to_owned(),
        ..GroupTotals::default()
    };
    for ((session, model, provider), part) in groups {
        for (map, key) in [
            (&mut sessions, session),
            (&mut models, model),
            (&mut providers, provider),
        ] {
            let entry = map.entry(key.clone()).or_insert_with(|| GroupTotals {
                key: key.clone(),
                ..GroupTotals::default()
            });
            add(entry, part);
        }
        add(&mut all, part);
    }
    DayTotals {
        all,
        by_session: sorted(sessions),
        by_model: sorted(models),
        by_provider: sorted(providers),
    }
}

/// Totals since `since_ms` (today's, usually) per session, model and provider: whole hours
/// from the `usage` rollup (a few rows per session and hour, however busy the day), the
/// requests of a partial first hour one by one. A request is counted once it is written, even
/// one that started long before.
pub fn totals_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<DayTotals> {
    let whole_from = super::usage::hour_at_or_after(since_ms);
    let mut groups = grouped_hours(conn, whole_from)?;
    if whole_from != since_ms {
        merge(
            &mut groups,
            grouped_between(conn, since_ms, Some(whole_from))?,
        );
    }
    Ok(fold(&groups))
}

fn add(into: &mut GroupTotals, part: &GroupTotals) {
    into.requests += part.requests;
    into.errors += part.errors;
    into.prompt_tokens += part.prompt_tokens;
    into.completion_tokens += part.completion_tokens;
    into.cost_usd += part.cost_usd;
    into.unpriced += part.unpriced;
    into.simulated_usd += part.simulated_usd;
}

fn sorted(map: BTreeMap<String, GroupTotals>) -> Vec<GroupTotals> {
    let mut rows: Vec<GroupTotals> = map.into_values().collect();
    rows.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    rows
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::ledger::request_view::request_detail;

    fn ledger() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let conn = crate::ledger::open_connection(&path).unwrap();
        crate::ledger::migrations::migrate(&conn, &path).unwrap();
        conn.execute_batch(crate::ledger::LEGACY_WRITES).unwrap();
        (dir, conn)
    }

    fn session(conn: &Connection, id: &str, parent: Option<&str>, tag: &str, started: i64) {
        conn.execute(
            "INSERT INTO sessions (id, parent_id, kind, tag, started_ms, budget_usd) VALUES (?1, ?2, 'run', ?3, ?4, 1.0)",
            rusqlite::params![id, parent, tag, started],
        )
        .unwrap();
    }

    fn request(
        conn: &Connection,
        id: &str,
        session: &str,
        at: i64,
        model: &str,
        status: i64,
        cost: f64,
    ) {
        conn.execute(
            "INSERT INTO requests (id, session_id, started_ms, endpoint, provider, requested_model, served_model,
                 status, outcome, stream, prompt_tokens, completion_tokens, cost_usd, latency_ms, attempts, cache_status)
             VALUES (?1, ?2, ?3, 'chat', 'mock', ?4, ?4, ?5, CASE WHEN ?5 < 400 THEN 'ok' ELSE 'upstream_error' END,
                 0, 10, 5, ?6, 12.5, 1, 'miss')",
            rusqlite::params![id, session, at, model, status, cost],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attempts (request_id, n, provider, model, status) VALUES (?1, 1, 'mock', ?2, ?3)",
            rusqlite::params![id, model, status],
        )
        .unwrap();
    }

    #[test]
    fn recent_requests_are_newest_first_filtered_and_bounded() {
        let (_dir, conn) = ledger();
        session(&conn, "aaaa", None, "nightly", 1_000);
        session(&conn, "bbbb", Some("aaaa"), "inner", 1_500);
        session(&conn, "cccc", None, "other", 2_000);
        request(&conn, "r1", "aaaa", 1_100, "gpt-4o", 200, 0.01);
        request(&conn, "r2", "bbbb", 1_600, "gpt-4o-mini", 500, 0.0);
        request(&conn, "r3", "cccc", 2_100, "claude-x", 200, 0.02);
        let ids = |rows: Vec<RequestRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = recent_requests(&conn, &LiveFilter::default(), 10).unwrap();
        assert_eq!(all[0].tag.as_deref(), Some("other"));
        assert_eq!(ids(all), ["r3", "r2", "r1"]);
        assert_eq!(
            ids(recent_requests(&conn, &LiveFilter::default(), 2).unwrap()),
            ["r3", "r2"]
        );
        let tree = LiveFilter {
            session_id: Some("aaaa".into()),
            ..LiveFilter::default()
        };
        assert_eq!(
            ids(recent_requests(&conn, &tree, 10).unwrap()),
            ["r2", "r1"],
            "sub-sessions count"
        );
        let text = LiveFilter {
            text: Some("MINI".into()),
            ..LiveFilter::default()
        };
        assert_eq!(
            ids(recent_requests(&conn, &text, 10).unwrap()),
            ["r2"],
            "case-insensitive model match"
        );
        let tag = LiveFilter {
            text: Some("night".into()),
            ..LiveFilter::default()
        };
        assert_eq!(ids(recent_requests(&conn, &tag, 10).unwrap()), ["r1"]);
        let since = LiveFilter {
            since_ms: Some(1_500),
            ..LiveFilter::default()
        };
        assert_eq!(
            ids(recent_requests(&conn, &since, 10).unwrap()),
            ["r3", "r2"]
        );
        let odd = LiveFilter {
            text: Some("%_".into()),
            ..LiveFilter::default()
        };
        assert!(
            recent_requests(&conn, &odd, 10).unwrap().is_empty(),
            "wildcards are literal"
        );
    }

    #[test]
    fn detail_has_every_field_and_the_attempts() {
        let (_dir, conn) = ledger();
        session(&conn, "aaaa", None, "t", 1_000);
        request(&conn, "r1", "aaaa", 1_100, "gpt-4o", 502, 0.0);
        let detail = request_detail(&conn, "r1").unwrap().unwrap();
        assert_eq!(detail.request.status, 502);
        assert!(detail.request.failed());
        assert_eq!(detail.request.billing, "api");
        assert_eq!(detail.attempts.len(), 1);
        assert_eq!(detail.attempts[0].status, Some(502));
        assert!(request_detail(&conn, "nope").unwrap().is_none());
    }

    #[test]
    fn sessions_and_totals_of_today() {
        let (_dir, conn) = ledger();
        session(&conn, "old-ended", None, "a", 10);
        conn.execute(
            "UPDATE sessions SET ended_ms = 20 WHERE id = 'old-ended'",
            [],
        )
        .unwrap();
        session(&conn, "old-running", None, "b", 500);
        session(&conn, "today", None, "c", 5_000);
        let found = sessions_since(&conn, 4_000, 6_000, 10).unwrap();
        let ids: Vec<_> = found.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["today", "old-running"]);
        request(&conn, "r1", "today", 5_100, "gpt-4o", 200, 0.25);
        request(&conn, "r2", "today", 5_200, "gpt-4o-mini", 429, 0.0);
        request(&conn, "r3", "old-running", 5_300, "gpt-4o", 200, 0.5);
        request(&conn, "r0", "old-running", 600, "gpt-4o", 200, 9.0);
        let day = totals_since(&conn, 4_000).unwrap();
        assert_eq!(day.all.requests, 3);
        assert_eq!(day.all.errors, 1);
        assert!((day.all.cost_usd - 0.75).abs() < 1e-9);
        assert_eq!(day.by_model[0].key, "gpt-4o");
        assert_eq!(day.by_model[0].requests, 2);
        assert_eq!(day.by_provider.len(), 1);
        assert_eq!(day.by_session[0].key, "old-running");
        crate::ledger::usage::rebuild(&conn).unwrap();
        let found = sessions_since(&conn, 4_000, 6_000, 10).unwrap();
        let old = found.iter().find(|s| s.id == "old-running").unwrap();
        assert!(old.running());
        assert_eq!(old.requests, 2);
        assert!(
            (old.cost_usd.unwrap() - 9.5).abs() < 1e-9,
            "a budget covers the whole session"
        );
    }

    #[test]
    fn totals_add_the_rollups_hours_to_the_rows_of_a_partial_hour() {
        use crate::ledger::usage::HOUR_MS;
        let (_dir, conn) = ledger();
        session(&conn, "s", None, "t", 0);
        for (i, model) in ["a", "b", "a", "c", "a", "b"].iter().enumerate() {
            let at = HOUR_MS / 2 + i as i64 * HOUR_MS / 3;
            request(
                &conn,
                &format!("r{i}"),
                "s",
                at,
                model,
                200 + (i as i64 % 2) * 300,
                0.125,
            );
        }
        crate::ledger::usage::rebuild(&conn).unwrap();
        for since in [
            0,
            HOUR_MS / 3,
            HOUR_MS,
            HOUR_MS + 1,
            2 * HOUR_MS + HOUR_MS / 2,
        ] {
            let scanned = fold(&grouped_between(&conn, since, None).unwrap());
            assert_eq!(
                totals_since(&conn, since).unwrap(),
                scanned,
                "since {since}"
            );
        }
        let whole = totals_since(&conn, 0).unwrap();
        assert_eq!(whole.all.requests, 6);
        assert_eq!(whole.all.errors, 3);
        assert_eq!(whole.by_model[0].key, "a");
        assert_eq!(totals_since(&conn, HOUR_MS + 1).unwrap().all.requests, 4);
    }

    #[test]
    fn data_version_moves_when_another_connection_commits() {
        let (dir, conn) = ledger();
        let reader = open(&dir.path().join("l.db")).unwrap();
        let before = data_version(&reader).unwrap();
        assert_eq!(data_version(&reader).unwrap(), before);
        session(&conn, "x", None, "t", 1);
        assert_ne!(data_version(&reader).unwrap(), before);
    }
}
