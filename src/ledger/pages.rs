//! Read queries for the web dashboard: the overview's periods and daily spend, a session's tree
//! and requests, the performance sample and one request with its attempts. Every query is bound
//! by a time range, a primary key or a LIMIT, and uses the `started_ms` / `session_id` indexes
//! (or the small `spend` table), so a page stays fast however large the ledger grows.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::query::{self, Filter, SessionRow, Totals};

/// How many requests a session page lists at once.
pub const SESSION_PAGE: usize = 100;
/// How many of the most recent requests the performance scatter plots.
pub const PERFORMANCE_SAMPLE: usize = 2000;
/// How many recent sessions the overview lists.
pub const OVERVIEW_SESSIONS: usize = 25;
/// Above this many requests, today's or a session tree's totals are not added up row by row
/// for a page (`smartproxy stats` still does): the count comes from an index and the cost from
/// the spend table or the sessions' own figures, and the page says so.
pub const FULL_TOTALS_MAX: u64 = 100_000;
/// How deep a session tree is followed.
const MAX_DEPTH: usize = 16;

/// Every column of a `requests` row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub session_id: Option<String>,
    pub started_ms: i64,
    pub endpoint: String,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub requested_model: Option<String>,
    pub served_model: Option<String>,
    pub status: i64,
    pub outcome: String,
    pub error_code: Option<String>,
    pub stream: bool,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub tokens_estimated: bool,
    pub cost_usd: Option<f64>,
    pub saved_usd: Option<f64>,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub attempts: i64,
    pub cache_status: String,
    pub client_hash: Option<String>,
    pub fingerprint: Option<String>,
    pub user_agent: Option<String>,
    pub client_session: Option<String>,
    pub billing: String,
    pub budget_action: Option<String>,
}

impl RequestRow {
    /// The model that answered, or the one asked for.
    pub fn model(&self) -> &str {
        self.served_model
            .as_deref()
            .or(self.requested_model.as_deref())
            .unwrap_or("(none)")
    }

    pub fn failed(&self) -> bool {
        self.outcome != "ok"
    }
}

const REQUEST_COLUMNS: &str = "r.id, r.session_id, r.started_ms, r.endpoint, r.route, r.provider,
    r.requested_model, r.served_model, r.status, r.outcome, r.error_code, r.stream,
    r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,
    r.tokens_estimated, r.cost_usd, r.saved_usd, r.latency_ms, r.ttfb_ms, r.attempts,
    r.cache_status, r.client_hash, r.fingerprint, r.user_agent, r.client_session, r.billing,
    r.budget_action";

fn request_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get(0)?,
        session_id: row.get(1)?,
        started_ms: row.get(2)?,
        endpoint: row.get(3)?,
        route: row.get(4)?,
        provider: row.get(5)?,
        requested_model: row.get(6)?,
        served_model: row.get(7)?,
        status: row.get(8)?,
        outcome: row.get(9)?,
        error_code: row.get(10)?,
        stream: row.get::<_, i64>(11)? != 0,
        prompt_tokens: row.get(12)?,
        completion_tokens: row.get(13)?,
        cached_tokens: row.get(14)?,
        cache_write_tokens: row.get(15)?,
        tokens_estimated: row.get::<_, i64>(16)? != 0,
        cost_usd: row.get(17)?,
        saved_usd: row.get(18)?,
        latency_ms: row.get(19)?,
        ttfb_ms: row.get(20)?,
        attempts: row.get(21)?,
        cache_status: row.get(22)?,
        client_hash: row.get(23)?,
        fingerprint: row.get(24)?,
        user_agent: row.get(25)?,
        client_session: row.get(26)?,
        billing: row.get(27)?,
        budget_action: row.get(28)?,
    })
}

/// One attempt of a request at a provider (the routing trail).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub n: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: Option<i64>,
    pub error_class: Option<String>,
    pub latency_ms: Option<f64>,
    pub waited_ms: Option<f64>,
}

/// A request with its attempts and its session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestDetail {
    pub request: RequestRow,
    pub attempts: Vec<Attempt>,
    pub session: Option<SessionRow>,
}

/// Requests and spend of a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Period {
    pub requests: u64,
    pub cost_usd: f64,
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
    /// Today's requests in full (tokens, failures, estimates), or only their count and cost
    /// when `today_partial`.
    pub today: Totals,
    /// Today has more than `FULL_TOTALS_MAX` requests: `today` holds the count and cost only.
    pub today_partial: bool,
    /// This month: request count (from the index) and spend (from the `spend` table).
    pub month: Period,
    /// Spend per local day over the last `days`, oldest first, days without spend included.
    pub days: Vec<DaySpend>,
    /// Recent sessions, each followed by its sub-sessions, with their depth.
    pub sessions: Vec<(usize, SessionRow)>,
    /// Nothing has ever been recorded.
    pub empty: bool,
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

const SESSION_COLUMNS: &str = "s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid,
    s.started_ms, s.ended_ms, s.exit_code, s.budget_usd,
    (SELECT COUNT(*) FROM requests r WHERE r.session_id = s.id),
    CASE WHEN s.ended_ms IS NOT NULL AND s.spent_usd IS NOT NULL THEN s.spent_usd
         WHEN s.kind = 'daemon' THEN NULL
         WHEN (SELECT COUNT(*) FROM requests r WHERE r.session_id = s.id) > 100000 THEN NULL
         ELSE (SELECT SUM(r.cost_usd) FROM requests r WHERE r.session_id = s.id) END";

/// A daemon session (one client key's traffic of one local day, never ended) can hold most of
/// a day's requests, too many to add up row by row for a listing: its cost comes from the
/// `spend` table (per quarter hour and client key) over the session's day instead.
fn daemon_costs(conn: &Connection, rows: &mut [SessionRow]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT SUM(cost_usd) FROM spend WHERE key = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3",
    )?;
    for row in rows
        .iter_mut()
        .filter(|r| r.kind == "daemon" && r.cost_usd.is_none())
    {
        let from = row.started_ms - row.started_ms.rem_euclid(super::SPEND_BUCKET_MS);
        let until = next_local_midnight(row.started_ms);
        let key = row.tag.clone().unwrap_or_default();
        row.cost_usd = stmt.query_row(params![key, from, until], |r| r.get(0))?;
    }
    Ok(())
}

/// The first local midnight after `ms`.
fn next_local_midnight(ms: i64) -> i64 {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .earliest()
        .and_then(|t| t.date_naive().succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map_or(ms + 86_400_000, |t| t.timestamp_millis())
}

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        parent_id: row.get(1)?,
        kind: row.get(2)?,
        tag: row.get(3)?,
        program: row.get(4)?,
        cwd: row.get(5)?,
        pid: row.get(6)?,
        started_ms: row.get(7)?,
        ended_ms: row.get(8)?,
        exit_code: row.get(9)?,
        budget_usd: row.get(10)?,
        requests: row.get::<_, i64>(11)? as u64,
        cost_usd: row.get(12)?,
    })
}

/// The overview: today, this month, daily spend since `bounds.chart_start_ms`, recent sessions.
pub fn overview(
    conn: &Connection,
    bounds: Bounds,
    day_of: impl Fn(i64) -> String,
) -> rusqlite::Result<Overview> {
    overview_capped(conn, bounds, day_of, FULL_TOTALS_MAX)
}

/// `overview` with today's totals added up only up to `cap` requests.
fn overview_capped(
    conn: &Connection,
    bounds: Bounds,
    day_of: impl Fn(i64) -> String,
    cap: u64,
) -> rusqlite::Result<Overview> {
    let today_count = count_since(conn, bounds.today_start_ms)?;
    let today_partial = today_count > cap;
    let today = if today_partial {
        Totals {
            key: "total".to_owned(),
            requests: today_count,
            cost_usd: Some(spend_since(conn, bounds.today_start_ms)?),
            ..Totals::default()
        }
    } else {
        query::totals(
            conn,
            &Filter {
                session_id: None,
                since_ms: Some(bounds.today_start_ms),
            },
        )?
    };
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
        && conn.query_row("SELECT NOT EXISTS(SELECT 1 FROM requests)", [], |r| {
            r.get::<_, bool>(0)
        })?;
    Ok(Overview {
        today,
        month: Period {
            requests: month_requests,
            cost_usd: month_cost,
        },
        days,
        today_partial,
        sessions: tree_order(recent),
        empty,
    })
}

/// Requests since `since_ms`, counted on the `started_ms` index alone.
fn count_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM requests WHERE started_ms >= ?1",
        [since_ms],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
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
    let mut rows: Vec<SessionRow> = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], session_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    daemon_costs(conn, &mut rows)?;
    Ok(rows)
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
    /// Totals over the whole tree, or only its request count and cost when `totals_partial`.
    pub totals: Totals,
    /// The tree has more than `FULL_TOTALS_MAX` requests: `totals` holds count and cost only.
    pub totals_partial: bool,
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
    session_page_capped(conn, id, before, FULL_TOTALS_MAX)
}

/// `session_page` with the tree's totals added up only up to `cap` requests.
fn session_page_capped(
    conn: &Connection,
    id: &str,
    before: Option<&str>,
    cap: u64,
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
    let mut members: Vec<SessionRow> = stmt
        .query_map([id], session_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    daemon_costs(conn, &mut members)?;
    let tree = tree_order(members);
    let count: u64 = members_count(&tree);
    let totals_partial = count > cap;
    let totals = if totals_partial {
        Totals {
            key: "total".to_owned(),
            requests: count,
            cost_usd: tree.iter().map(|(_, s)| s.cost_usd).sum(),
            ..Totals::default()
        }
    } else {
        query::totals(
            conn,
            &Filter {
                session_id: Some(id.to_owned()),
                since_ms: None,
            },
        )?
    };
    // Request ids are time-ordered, so the session index (session_id, id) gives the newest
    // first without a sort.
    let page_sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM requests r WHERE r.session_id = ?1 AND r.id < ?2
         ORDER BY r.id DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare(&page_sql)?;
    let limit = i64::try_from(SESSION_PAGE + 1).unwrap_or(i64::MAX);
    // '\u{10ffff}' sorts after every id.
    let mut requests: Vec<RequestRow> = stmt
        .query_map(
            params![id, before.unwrap_or("\u{10ffff}"), limit],
            request_from_row,
        )?
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
        totals_partial,
        requests,
        next_before,
    }))
}

fn members_count(tree: &[(usize, SessionRow)]) -> u64 {
    tree.iter().map(|(_, s)| s.requests).sum()
}

/// The most recent requests (at most `limit`), newest first, for the performance scatter.
pub fn recent_requests(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<RequestRow>> {
    let sql =
        format!("SELECT {REQUEST_COLUMNS} FROM requests r ORDER BY r.started_ms DESC LIMIT ?1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], request_from_row)?;
    rows.collect()
}

/// One request with its attempts and session, or `None` for an unknown id.
pub fn request_detail(conn: &Connection, id: &str) -> rusqlite::Result<Option<RequestDetail>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests r WHERE r.id = ?1");
    let Some(request) = conn.query_row(&sql, [id], request_from_row).optional()? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT n, provider, model, status, error_class, latency_ms, waited_ms
         FROM attempts WHERE request_id = ?1 ORDER BY n",
    )?;
    let attempts = stmt
        .query_map([id], |r| {
            Ok(Attempt {
                n: r.get(0)?,
                provider: r.get(1)?,
                model: r.get(2)?,
                status: r.get(3)?,
                error_class: r.get(4)?,
                latency_ms: r.get(5)?,
                waited_ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let session = match &request.session_id {
        Some(sid) => {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1");
            conn.query_row(&sql, [sid], session_from_row).optional()?
        }
        None => None,
    };
    Ok(Some(RequestDetail {
        request,
        attempts,
        session,
    }))
}

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;
