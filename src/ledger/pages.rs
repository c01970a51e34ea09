//! Read queries for the web dashboard: the overview's periods and daily spend, a session's tree
//! and requests, the performance sample (one request with its attempts is `request_view`'s).
//! Totals come from the hourly `usage` rollup and the small `spend` table; lists are bound by a
//! time range, a primary key or a LIMIT on the `started_ms` / `session_id` indexes. So a page
//! stays fast however large the ledger grows.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::query::{self, Filter, SESSION_COLUMNS, SessionRow, Totals, session_from_row};
use super::request_view::{COLUMNS, FROM, RequestRow, from_row};

/// How many requests a session page lists at once.
pub const SESSION_PAGE: usize = 100;
/// How many of the most recent requests the performance scatter plots.
pub const PERFORMANCE_SAMPLE: usize = 2000;
/// How many recent sessions the overview lists.
pub const OVERVIEW_SESSIONS: usize = 25;
/// How deep a session tree is followed.
const MAX_DEPTH: usize = 16;

/// Requests and spend of a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Period {
    pub requests: u64,
    pub cost_usd: f64,
    /// Successful requests to models with no known price: not in `cost_usd`.
    pub unpriced: u64,
}

/// Spend of one local day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySpend {
    /// `2026-11-22`
    pub day: String,
    pub cost_usd: f64,
}

/// What the overview page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// Today's requests: count, tokens, failures, estimates and cost.
    pub today: Totals,
    /// This month: request count (from the index) and spend (from the `spend` table).
    pub month: Period,
    /// Spend per local day over the last `days`, oldest first, days without spend included.
    pub days: Vec<DaySpend>,
    /// Recent sessions, each followed by its sub-sessions, with their depth.
    pub sessions: Vec<(usize, SessionRow)>,
    /// Nothing has ever been recorded.
    pub empty: bool,
}

/// Cost, requests and tokens per team and per user over a range of UTC days (the team page),
/// from the daily roll-up. A SQLite ledger has no team keys: both lists are empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TeamUsage {
    /// First and last day of the range, inclusive: `2026-11-01`.
    pub from: String,
    pub to: String,
    /// The ledger knows people and teams (a PostgreSQL ledger with team keys).
    pub team_keys: bool,
    /// One row per team (`-`: requests made with no team key), most expensive first.
    pub teams: Vec<Totals>,
    /// One row per user and their team, most expensive first.
    pub users: Vec<UserUsage>,
}

/// One user's figures (`totals.key` is the user, `-` for requests made with no team key).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserUsage {
    pub team: String,
    pub totals: Totals,
}

/// Local-time boundaries the overview needs, computed by the caller from its clock.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub today_start_ms: i64,
    pub month_start_ms: i64,
    /// Start of the first day of the spend chart.
    pub chart_start_ms: i64,
}

/// Opens the ledger read-only; `Ok(None)` when there is no ledger file yet.
pub fn open(path: &Path) -> rusqlite::Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    crate::db::open_read_only(path).map(Some)
}

/// The overview: today, this month, daily spend since `bounds.chart_start_ms`, recent sessions.
pub fn overview(
    conn: &Connection,
    bounds: Bounds,
    day_of: impl Fn(i64) -> String,
) -> rusqlite::Result<Overview> {
    // Today in full from the `usage` rollup: a few hundred rows however busy the day was.
    let today = query::totals(
        conn,
        &Filter {
            session_id: None,
            since_ms: Some(bounds.today_start_ms),
            until_ms: None,
        },
    )?;
    let month_requests = count_since(conn, bounds.month_start_ms)?;
    let month_cost = spend_since(conn, bounds.month_start_ms)?;
    let mut days: Vec<DaySpend> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT bucket_ms, TOTAL(cost_usd) FROM spend WHERE bucket_ms >= ?1
             GROUP BY bucket_ms ORDER BY bucket_ms",
        )?;
        let rows = stmt.query_map([bounds.chart_start_ms], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
        })?;
        for row in rows {
            let (bucket, cost) = row?;
            let day = day_of(bucket);
            match days.last_mut() {
                Some(last) if last.day == day => last.cost_usd += cost,
                _ => days.push(DaySpend {
                    day,
                    cost_usd: cost,
                }),
            }
        }
    }
    let recent = recent_sessions(conn, OVERVIEW_SESSIONS)?;
    let empty = recent.is_empty()
        && conn.query_row("SELECT NOT EXISTS(SELECT 1 FROM request_rows)", [], |r| {
            r.get::<_, bool>(0)
        })?;
    Ok(Overview {
        today,
        month: Period {
            requests: month_requests,
            cost_usd: month_cost,
            unpriced: unpriced_since(conn, bounds.month_start_ms)?,
        },
        days,
        sessions: tree_order(recent),
        empty,
    })
}

/// Requests since `since_ms`, counted on the `started_ms` index alone (the table under the
/// `requests` view: through the view SQLite would also look up each row's strings).
fn count_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM request_rows WHERE started_ms >= ?1",
        [since_ms],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

/// Successful requests with no known price since `since_ms` (rounded down to its hour) from
/// the `usage` rollup.
fn unpriced_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT TOTAL(unpriced) FROM usage WHERE hour_ms >= ?1",
        [super::usage::hour_of(since_ms)],
        |r| r.get::<_, f64>(0),
    )
    .map(|n| n as u64)
}

/// Spend since `since_ms` (rounded down to its quarter hour) from the `spend` table.
fn spend_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<f64> {
    conn.query_row(
        "SELECT TOTAL(cost_usd) FROM spend WHERE bucket_ms >= ?1",
        [since_ms - since_ms.rem_euclid(super::SPEND_BUCKET_MS)],
        |r| r.get(0),
    )
}

/// The most recent sessions, newest first.
pub fn recent_sessions(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s ORDER BY s.started_ms DESC, s.rowid DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], session_from_row)?;
    rows.collect()
}

/// Sessions newest first, each followed by its children (oldest first, depth-first) with their
/// depth. A child whose parent is not among `rows` is a root.
pub fn tree_order(rows: Vec<SessionRow>) -> Vec<(usize, SessionRow)> {
    fn visit(
        i: usize,
        depth: usize,
        rows: &[SessionRow],
        seen: &mut [bool],
        out: &mut Vec<(usize, usize)>,
    ) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        out.push((depth, i));
        for (j, child) in rows.iter().enumerate().rev() {
            if child.parent_id.as_deref() == Some(rows[i].id.as_str()) && depth < MAX_DEPTH {
                visit(j, depth + 1, rows, seen, out);
            }
        }
    }
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut seen = vec![false; rows.len()];
    let mut order = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if row.parent_id.as_deref().is_none_or(|p| !ids.contains(p)) {
            visit(i, 0, &rows, &mut seen, &mut order);
        }
    }
    // Whatever a cycle left out still shows, at the top level.
    for i in 0..rows.len() {
        if !seen[i] {
            visit(i, 0, &rows, &mut seen, &mut order);
        }
    }
    let mut slots: Vec<Option<SessionRow>> = rows.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(depth, i)| slots[i].take().map(|row| (depth, row)))
        .collect()
}

/// What the session page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionPage {
    pub session: SessionRow,
    /// Parent, grandparent, ... (nearest first).
    pub ancestors: Vec<SessionRow>,
    /// The session and its sub-sessions, however deep, in tree order with depths.
    pub tree: Vec<(usize, SessionRow)>,
    /// Totals over the whole tree.
    pub totals: Totals,
    /// The session's own requests, newest first, at most `SESSION_PAGE`.
    pub requests: Vec<RequestRow>,
    /// Where the next (older) page starts, when there is one.
    pub next_before: Option<String>,
}

/// A session with its tree and a page of its requests older than `before` (a request id).
pub fn session_page(
    conn: &Connection,
    id: &str,
    before: Option<&str>,
) -> rusqlite::Result<Option<SessionPage>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1");
    let Some(session) = conn.query_row(&sql, [id], session_from_row).optional()? else {
        return Ok(None);
    };
    let mut ancestors = Vec::new();
    let mut parent = session.parent_id.clone();
    while let Some(pid) = parent.take() {
        if ancestors.len() >= MAX_DEPTH {
            break;
        }
        match conn.query_row(&sql, [&pid], session_from_row).optional()? {
            Some(row) => {
                parent = row.parent_id.clone();
                ancestors.push(row);
            }
            None => break,
        }
    }
    let tree_sql = format!(
        "WITH RECURSIVE tree(id, depth) AS (SELECT ?1, 0 UNION ALL
             SELECT s.id, tree.depth + 1 FROM sessions s JOIN tree ON s.parent_id = tree.id
             WHERE tree.depth < {MAX_DEPTH})
         SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id IN (SELECT id FROM tree)
         ORDER BY s.started_ms DESC LIMIT 500"
    );
    let mut stmt = conn.prepare(&tree_sql)?;
    let members: Vec<SessionRow> = stmt
        .query_map([id], session_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let tree = tree_order(members);
    let totals = query::totals(
        conn,
        &Filter {
            session_id: Some(id.to_owned()),
            since_ms: None,
            until_ms: None,
        },
    )?;
    // Rows are numbered in the order they were written, so the session index (session, seq)
    // gives the newest first without a sort; `before` is a request id, found by its index.
    let page_sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE r.session_id = ?1
             AND r.seq < COALESCE((SELECT seq FROM request_rows WHERE id = {}), 9223372036854775807)
         ORDER BY r.seq DESC LIMIT ?3",
        super::narrow::encode_id!("?2")
    );
    let mut stmt = conn.prepare(&page_sql)?;
    let limit = i64::try_from(SESSION_PAGE + 1).unwrap_or(i64::MAX);
    let mut requests: Vec<RequestRow> = stmt
        .query_map(params![id, before, limit], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let next_before = if requests.len() > SESSION_PAGE {
        requests.truncate(SESSION_PAGE);
        requests.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Some(SessionPage {
        session,
        ancestors,
        tree,
        totals,
        requests,
        next_before,
    }))
}

/// The most recent requests (at most `limit`), newest first, for the performance scatter.
pub fn recent_requests(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<RequestRow>> {
    let sql = format!("SELECT {COLUMNS} FROM {FROM} ORDER BY r.started_ms DESC LIMIT ?1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    rows.collect()
}

/// How many requests' latencies `/trends` reads at most for its percentiles.
pub const LATENCY_SAMPLE: usize = 50_000;

/// The start (ms) and latency (ms) of up to `limit` requests in `filter`'s time bounds,
/// newest first (ties by latency, so both backends cut a capped sample alike).
pub fn latencies(
    conn: &Connection,
    filter: &Filter,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT started_ms, latency_ms FROM requests WHERE started_ms >= ?1 AND started_ms < ?2
         ORDER BY started_ms DESC, latency_ms DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![
            filter.since_ms.unwrap_or(i64::MIN),
            filter.until_ms.unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.collect()
}

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;
