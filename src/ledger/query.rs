//! The read side of the ledger: session summaries, grouped stats and session lists, for `run`,
//! `stats` and `sessions`. Each read opens its own connection, so it never waits on the writer.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::Serialize;

use super::LedgerError;

/// Totals for a group of requests (one model, one provider, one session, or everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub key: String,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// None when no request of the group has a known cost.
    pub cost_usd: Option<f64>,
    /// Successful requests whose model has no known price.
    pub unpriced: u64,
    /// Requests whose token counts are estimates.
    pub estimated: u64,
    /// The part of `cost_usd` that is notional: list-price cost of requests billed to a
    /// subscription (pass-through), not money spent. None when there are none.
    pub subscription_usd: Option<f64>,
}

impl Totals {
    /// What the group cost: nothing is `$0` (no requests, or only failures, which cost
    /// nothing), unknown only when a successful request has no price and nothing else does.
    pub fn known_cost(&self) -> Option<f64> {
        self.cost_usd.or((self.unpriced == 0).then_some(0.0))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub tag: Option<String>,
    pub program: Option<String>,
    pub cwd: Option<String>,
    pub pid: Option<i64>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub budget_usd: Option<f64>,
    pub requests: u64,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    Model,
    Provider,
    Session,
    Tag,
}

impl GroupBy {
    fn sql(self) -> &'static str {
        match self {
            Self::Model => "COALESCE(r.served_model, r.requested_model, '(none)')",
            Self::Provider => "COALESCE(r.provider, '(none)')",
            Self::Session => "COALESCE(r.session_id, '(none)')",
            Self::Tag => "COALESCE(s.tag, '(untagged)')",
        }
    }
}

/// Which requests to count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub session_id: Option<String>,
    pub since_ms: Option<i64>,
}

/// Opens the ledger for reading; a missing file is an error that says nothing was recorded yet.
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Open {
            path: path.to_path_buf(),
            source: rusqlite::Error::InvalidPath(path.to_path_buf()),
        });
    }
    let conn = super::open_connection(path)?;
    super::migrations::migrate(&conn, path)?;
    Ok(conn)
}

const TOTALS_COLUMNS: &str = "COUNT(*),
    TOTAL(r.outcome = 'ok'),
    TOTAL(r.outcome != 'ok'),
    TOTAL(r.prompt_tokens),
    TOTAL(r.completion_tokens),
    TOTAL(r.cached_tokens),
    SUM(r.cost_usd),
    TOTAL(r.cost_usd IS NULL AND r.outcome = 'ok'),
    TOTAL(r.tokens_estimated),
    TOTAL(r.cache_write_tokens),
    SUM(CASE WHEN r.billing = 'subscription' THEN r.cost_usd END)";

fn totals_from_row(key: String, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Totals> {
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, f64>(at + i)? as u64) };
    Ok(Totals {
        key,
        requests: row.get::<_, i64>(at)? as u64,
        ok: n(1)?,
        failed: n(2)?,
        prompt_tokens: n(3)?,
        completion_tokens: n(4)?,
        cached_tokens: n(5)?,
        cost_usd: row.get(at + 6)?,
        unpriced: n(7)?,
        estimated: n(8)?,
        cache_write_tokens: n(9)?,
        subscription_usd: row.get(at + 10)?,
    })
}

pub(super) fn where_clause(filter: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    let mut clauses = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(id) = &filter.session_id {
        // A session's figures include the `run`s started inside it, however deep.
        args.push(id.clone().into());
        clauses.push(format!(
            "r.session_id IN (WITH RECURSIVE tree(id) AS (SELECT ?{n} UNION ALL \
             SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id) SELECT id FROM tree)",
            n = args.len()
        ));
    }
    if let Some(since) = filter.since_ms {
        args.push(since.into());
        clauses.push(format!("r.started_ms >= ?{}", args.len()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

/// Totals over every request that matches `filter`.
pub fn totals(conn: &Connection, filter: &Filter) -> rusqlite::Result<Totals> {
    let (clause, args) = where_clause(filter);
    let sql = format!("SELECT {TOTALS_COLUMNS} FROM requests r {clause}");
    conn.query_row(&sql, params_from_iter(args), |row| {
        totals_from_row("total".to_owned(), row, 0)
    })
}

/// Totals per group, most expensive first.
pub fn grouped(conn: &Connection, filter: &Filter, by: GroupBy) -> rusqlite::Result<Vec<Totals>> {
    let (clause, args) = where_clause(filter);
    let sql = format!(
        "SELECT {key}, {TOTALS_COLUMNS} FROM requests r LEFT JOIN sessions s ON s.id = r.session_id {clause}
         GROUP BY 1 ORDER BY TOTAL(r.cost_usd) DESC, COUNT(*) DESC, 1",
        key = by.sql()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |row| {
        totals_from_row(row.get(0)?, row, 1)
    })?;
    rows.collect()
}

const SESSION_COLUMNS: &str =
    "s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid, s.started_ms, s.ended_ms,
    s.exit_code, s.budget_usd,
    (SELECT COUNT(*) FROM requests r WHERE r.session_id = s.id),
    (SELECT SUM(r.cost_usd) FROM requests r WHERE r.session_id = s.id)";

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

/// The most recent sessions, newest first.
pub fn sessions(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s ORDER BY s.started_ms DESC, s.rowid DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], session_from_row)?;
    rows.collect()
}

pub fn session(conn: &Connection, id: &str) -> rusqlite::Result<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1");
    conn.query_row(&sql, [id], session_from_row).optional()
}

/// How a session reference given by a user resolved.
#[derive(Debug, PartialEq)]
pub enum Resolved {
    Found(String),
    NotFound,
    Ambiguous(Vec<String>),
}

/// Resolves a full session id or an unambiguous prefix of one.
pub fn resolve_session(conn: &Connection, reference: &str) -> rusqlite::Result<Resolved> {
    let escaped = reference
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let mut stmt = conn.prepare(
        "SELECT id FROM sessions WHERE id LIKE ?1 ESCAPE '\\' ORDER BY started_ms DESC LIMIT 6",
    )?;
    let ids: Vec<String> = stmt
        .query_map([format!("{escaped}%")], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(if ids.iter().any(|id| id == reference) {
        Resolved::Found(reference.to_owned())
    } else {
        match ids.len() {
            0 => Resolved::NotFound,
            1 => Resolved::Found(ids.into_iter().next().unwrap_or_default()),
            _ => Resolved::Ambiguous(ids),
        }
    })
}

/// Whether any request of the session was served by `provider`.
pub fn session_used_provider(
    conn: &Connection,
    session_id: &str,
    provider: &str,
) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM requests WHERE session_id = ?1 AND provider = ?2)",
        [session_id, provider],
        |r| r.get(0),
    )
}

/// The id of the newest session.
pub fn last_session(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM sessions ORDER BY started_ms DESC, rowid DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}
