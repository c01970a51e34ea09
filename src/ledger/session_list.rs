//! `/sessions`: every session, newest (or costliest, or busiest) first, a page at a time with
//! keyset paging (a cursor of the last row's sort value and id, never OFFSET), filtered by tag,
//! program, project, status, start day and cost. The question and its cursor are shared; SQLite answers
//! here, PostgreSQL in `postgres::session_list`, row for row alike.

use rusqlite::{Connection, params_from_iter, types::Value};
use serde::Serialize;

use super::query::{SESSION_COLUMNS, SessionRow, session_from_row};

/// What the list is ordered by, largest first (ties by id, descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionSort {
    #[default]
    Started,
    Cost,
    Requests,
}

/// How a session stands: running (no end recorded), ended with exit 0, or with another code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Running,
    Ok,
    Failed,
}

/// The sort value and id of the last row shown: the next page starts after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Milliseconds or a count (`Started`, `Requests`), or dollars (`Cost`), as text.
    pub value: String,
    pub id: String,
}

impl Cursor {
    /// `value~id`, as the `after=` parameter carries it.
    pub fn parse(text: &str, sort: SessionSort) -> Option<Cursor> {
        let (value, id) = text.split_once('~')?;
        let valid = match sort {
            SessionSort::Cost => value.parse::<f64>().is_ok_and(f64::is_finite),
            _ => value.parse::<i64>().is_ok(),
        };
        (valid && !id.is_empty()).then(|| Cursor {
            value: value.to_owned(),
            id: id.to_owned(),
        })
    }

    fn of(row: &SessionRow, sort: SessionSort) -> Cursor {
        let value = match sort {
            SessionSort::Started => row.started_ms.to_string(),
            SessionSort::Requests => row.requests.to_string(),
            SessionSort::Cost => row.cost_usd.unwrap_or(0.0).to_string(),
        };
        Cursor {
            value,
            id: row.id.clone(),
        }
    }

    pub fn text(&self) -> String {
        format!("{}~{}", self.value, self.id)
    }
}

/// Which sessions, in what order, after which row.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub tag: Option<String>,
    pub program: Option<String>,
    pub project: Option<String>,
    pub status: Option<SessionStatus>,
    /// Started at or after / before (ms).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Spent at least this (simulated costs apart, as the cost column shows).
    pub min_cost_usd: Option<f64>,
    pub sort: SessionSort,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// One page of sessions and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionList {
    pub sessions: Vec<SessionRow>,
    pub next_after: Option<String>,
}

impl SessionList {
    /// Cuts `rows` (read `limit + 1`, to know whether more follow) to a page.
    pub fn page(mut rows: Vec<SessionRow>, query: &SessionQuery) -> SessionList {
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let next_after = rows
            .last()
            .filter(|_| more)
            .map(|row| Cursor::of(row, query.sort).text());
        SessionList {
            sessions: rows,
            next_after,
        }
    }
}

/// Every session's own requests and cost, from the hourly roll-up in one pass: sorting or
/// filtering by them reads them all (a subquery per session costs several times more).
const FIGURES: &str = "WITH fig AS (SELECT u.session_id AS id, SUM(u.requests) AS n,
    COALESCE(ROUND(SUM(u.cost_usd) - TOTAL(u.simulated_usd), 12), 0) AS cost
    FROM usage u GROUP BY u.session_id)";

/// The sort value of a session row `s` (its figures joined as `f`).
fn sort_sql(sort: SessionSort) -> &'static str {
    match sort {
        SessionSort::Started => "s.started_ms",
        SessionSort::Cost => "COALESCE(f.cost, 0)",
        SessionSort::Requests => "COALESCE(f.n, 0)",
    }
}

/// A page of sessions from a SQLite ledger.
pub fn session_list(conn: &Connection, query: &SessionQuery) -> rusqlite::Result<SessionList> {
    let (sql, args) = list_sql(query);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), session_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(SessionList::page(rows, query))
}

/// The SQL of a page of sessions (`limit + 1` rows) and its arguments.
fn list_sql(query: &SessionQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let arg = |args: &mut Vec<Value>, value: Value| {
        args.push(value);
        format!("?{}", args.len())
    };
    if let Some(tag) = &query.tag {
        clauses.push(format!("s.tag = {}", arg(&mut args, tag.clone().into())));
    }
    if let Some(program) = &query.program {
        clauses.push(format!(
            "s.program = {}",
            arg(&mut args, program.clone().into())
        ));
    }
    if let Some(project) = &query.project {
        clauses.push(format!(
            "s.project = {}",
            arg(&mut args, project.clone().into())
        ));
    }
    clauses.extend(query.status.map(|status| {
        match status {
            SessionStatus::Running => "s.ended_ms IS NULL",
            SessionStatus::Ok => "s.exit_code = 0",
            SessionStatus::Failed => "s.exit_code <> 0",
        }
        .to_owned()
    }));
    if let Some(since) = query.since_ms {
        clauses.push(format!("s.started_ms >= {}", arg(&mut args, since.into())));
    }
    if let Some(until) = query.until_ms {
        clauses.push(format!("s.started_ms < {}", arg(&mut args, until.into())));
    }
    if let Some(min) = query.min_cost_usd {
        let cost = sort_sql(SessionSort::Cost);
        clauses.push(format!("{cost} >= {}", arg(&mut args, min.into())));
    }
    let key = sort_sql(query.sort);
    if let Some(after) = &query.after {
        let value: Value = match query.sort {
            SessionSort::Cost => after.value.parse::<f64>().unwrap_or(0.0).into(),
            _ => after.value.parse::<i64>().unwrap_or(0).into(),
        };
        let value = arg(&mut args, value);
        let id = arg(&mut args, after.id.clone().into());
        clauses.push(format!("({key}, s.id) < ({value}, {id})"));
    }
    let limit = arg(
        &mut args,
        i64::try_from(query.limit + 1).unwrap_or(i64::MAX).into(),
    );
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    // The newest first, unfiltered by cost, reads the start index from the cursor on alone.
    let (with, join) = if query.sort == SessionSort::Started && query.min_cost_usd.is_none() {
        ("", "")
    } else {
        (FIGURES, "LEFT JOIN fig f ON f.id = s.id")
    };
    // The page's ids first: a sort computes its result columns for every row it sorts, and a
    // session's figures are four subqueries.
    let sql = format!(
        "{with} SELECT {SESSION_COLUMNS} FROM (SELECT s.id AS pick, {key} AS k FROM sessions s
             {join} {filter} ORDER BY {key} DESC, s.id DESC LIMIT {limit}) p
         JOIN sessions s ON s.id = p.pick ORDER BY p.k DESC, s.id DESC"
    );
    (sql, args)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_nonsense() {
        let c = Cursor::parse("0.25~run-a~b", SessionSort::Cost).unwrap();
        assert_eq!((c.value.as_str(), c.id.as_str()), ("0.25", "run-a~b"));
        assert_eq!(c.text(), "0.25~run-a~b");
        assert!(Cursor::parse("0.25~x", SessionSort::Started).is_none());
        assert!(Cursor::parse("inf~x", SessionSort::Cost).is_none());
        assert!(Cursor::parse("12~", SessionSort::Requests).is_none());
        let row = |id: &str| SessionRow {
            id: id.to_owned(),
            cost_usd: Some(0.5),
            ..SessionRow::default()
        };
        let query = SessionQuery {
            sort: SessionSort::Cost,
            limit: 2,
            ..SessionQuery::default()
        };
        let list = SessionList::page(vec![row("a"), row("b"), row("c")], &query);
        assert_eq!(list.sessions.len(), 2);
        assert_eq!(list.next_after.as_deref(), Some("0.5~b"));
        let list = SessionList::page(vec![row("a")], &query);
        assert_eq!(list.next_after, None);
    }
}

#[cfg(test)]
#[path = "session_list_tests.rs"]
mod store_tests;
