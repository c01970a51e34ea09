//! What `run`'s summary, its cost gates and `quote` read about sessions besides their totals:
//! a session's request kinds (endpoint, streamed or not), the runs started directly inside
//! it, and the recent finished sessions of one program, tag or project. SQLite here;
//! `postgres::read` answers the same questions in the same types.

use rusqlite::{Connection, params_from_iter};
use serde::{Deserialize, Serialize};

use super::query::{self, Filter, SessionRow};

/// One kind of request of a session: its endpoint, streamed or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindTotals {
    /// `chat.completions`, `chat.completions streamed`, `messages streamed`, ...
    pub kind: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// What its requests cost, the mock provider's simulated list price included (as the
    /// session budget counts it).
    pub spent_usd: f64,
}

/// The name of a request kind: its endpoint, and ` streamed` for a stream.
pub fn kind_name(endpoint: &str, stream: bool) -> String {
    if stream {
        format!("{endpoint} streamed")
    } else {
        endpoint.to_owned()
    }
}

/// A session's requests (the runs started inside it included) by kind, costliest first.
pub fn kinds(conn: &Connection, session_id: &str) -> rusqlite::Result<Vec<KindTotals>> {
    let (clause, args) = query::where_clause(&Filter {
        session_id: Some(session_id.to_owned()),
        since_ms: None,
        until_ms: None,
    });
    let sql = format!(
        "SELECT r.endpoint, r.stream, count(*), TOTAL(r.prompt_tokens), TOTAL(r.completion_tokens),
             TOTAL(r.cost_usd)
         FROM requests r {clause} GROUP BY 1, 2 ORDER BY 6 DESC, 3 DESC, 1, 2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |row| {
        Ok(KindTotals {
            kind: kind_name(&row.get::<_, String>(0)?, row.get::<_, i64>(1)? != 0),
            requests: row.get::<_, i64>(2)? as u64,
            prompt_tokens: row.get::<_, f64>(3)? as u64,
            completion_tokens: row.get::<_, f64>(4)? as u64,
            spent_usd: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// The runs started directly inside session `id`, oldest first, each with the figures of its
/// own tree (its requests and those of the runs inside it).
pub fn children(conn: &Connection, id: &str) -> rusqlite::Result<Vec<SessionRow>> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM sessions WHERE parent_id = ?1 ORDER BY started_ms, rowid")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for child in ids {
        let Some(mut row) = query::session(conn, &child)? else {
            continue;
        };
        let total = query::totals(
            conn,
            &Filter {
                session_id: Some(child),
                since_ms: None,
                until_ms: None,
            },
        )?;
        row.requests = total.requests;
        row.cost_usd = total.cost_usd;
        row.unpriced = total.unpriced;
        row.simulated_usd = total.simulated_usd;
        out.push(row);
    }
    Ok(out)
}

/// Which past sessions a quote reads: `run` sessions of a program, a tag or a project (the
/// ones given), finished, the most recent `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryQuery {
    pub program: Option<String>,
    pub tag: Option<String>,
    pub project: Option<String>,
    pub limit: usize,
}

impl HistoryQuery {
    /// The `WHERE` conditions and their values, with `?N` (SQLite) or `$N` (PostgreSQL).
    pub fn conditions(&self, placeholder: &str) -> (String, Vec<String>) {
        let mut sql = "kind = 'run' AND ended_ms IS NOT NULL".to_owned();
        let mut args = Vec::new();
        for (column, value) in [
            ("program", &self.program),
            ("tag", &self.tag),
            ("project", &self.project),
        ] {
            if let Some(value) = value {
                args.push(value.clone());
                sql.push_str(&format!(" AND {column} = {placeholder}{}", args.len()));
            }
        }
        (sql, args)
    }
}

/// One finished session of a quote's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PastSession {
    pub id: String,
    pub duration_ms: i64,
    /// Spent by it and the runs inside it, simulated (mock) list prices included.
    pub spent_usd: f64,
}

/// The ids, starts and ends of the sessions `q` selects, newest first.
pub fn finished_sessions(
    conn: &Connection,
    q: &HistoryQuery,
) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    let (conditions, args) = q.conditions("?");
    let sql = format!(
        "SELECT id, started_ms, ended_ms FROM sessions WHERE {conditions}
         ORDER BY started_ms DESC, rowid DESC LIMIT {}",
        q.limit
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}
