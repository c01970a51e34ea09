//! `/requests`: the requests of a time range or of one session, newest first, filtered by
//! model, provider, tag and outcome, a page at a time with keyset cursors (`started_ms~id` of
//! the row a page continues from, never OFFSET), older (`after=`) or newer (`before=`). The
//! question and the paging are shared; SQLite answers here, PostgreSQL in
//! `postgres::request_list`.
//!
//! As on the session page, SQLite lists a session's requests in the order they were written
//! (its session index), PostgreSQL by start time; a range is by start time on both.

use rusqlite::{Connection, params_from_iter, types::Value};
use serde::Serialize;

use super::request_view::{COLUMNS, FROM, RequestRow, from_row};

/// The row a page continues from: its start time and id.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCursor {
    pub started_ms: i64,
    pub id: String,
}

impl RequestCursor {
    /// `started_ms~id`, as `after=` and `before=` carry it.
    pub fn parse(text: &str) -> Option<RequestCursor> {
        let (ms, id) = text.split_once('~')?;
        let started_ms = ms.parse().ok()?;
        (!id.is_empty()).then(|| RequestCursor {
            started_ms,
            id: id.to_owned(),
        })
    }

    fn of(row: &RequestRow) -> String {
        format!("{}~{}", row.started_ms, row.id)
    }
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum Direction {
    /// Rows older than the cursor (the next page).
    Older(RequestCursor),
    /// Rows newer than the cursor (the previous page).
    Newer(RequestCursor),
}

/// What an outcome filter asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeFilter {
    /// Any failure: an outcome other than `ok`, or an error status (`RequestRow::failed`).
    Failed,
    /// One recorded outcome (`ok`, `rejected`, `budget_exceeded`, ...).
    Is(String),
}

/// Which requests, from which row on.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub session: Option<String>,
    /// Started at or after / before (ms).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// The model that answered, or the one asked for when none did.
    pub model: Option<String>,
    pub provider: Option<String>,
    /// The tag of the request's session.
    pub tag: Option<String>,
    pub outcome: Option<OutcomeFilter>,
    /// The HTTP status returned.
    pub status: Option<i64>,
    pub from: Option<Direction>,
    pub limit: usize,
}

/// One page of requests, newest first, with the cursors of the pages either side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestList {
    pub requests: Vec<RequestRow>,
    /// `after=` of the next (older) page; `None` on the last.
    pub next_after: Option<String>,
    /// `before=` of the previous (newer) page; `None` on the first.
    pub prev_before: Option<String>,
}

impl RequestList {
    /// Cuts `rows` (`limit + 1` read in the query's direction) to a page, newest first.
    pub fn page(mut rows: Vec<RequestRow>, query: &RequestQuery) -> RequestList {
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        let newer = matches!(query.from, Some(Direction::Newer(_)));
        if newer {
            rows.reverse();
        }
        // Going back, the rows left behind are older; going on, the rows passed are newer.
        let (older_exist, newer_exist) = match &query.from {
            None => (more, false),
            Some(Direction::Older(_)) => (more, true),
            Some(Direction::Newer(_)) => (true, more),
        };
        RequestList {
            next_after: rows.last().filter(|_| older_exist).map(RequestCursor::of),
            prev_before: rows.first().filter(|_| newer_exist).map(RequestCursor::of),
            requests: rows,
        }
    }
}

/// A page of requests from a SQLite ledger.
pub fn request_list(conn: &Connection, query: &RequestQuery) -> rusqlite::Result<RequestList> {
    let (sql, args) = list_sql(query);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(RequestList::page(rows, query))
}

/// The SQL of a page (`limit + 1` rows in the query's direction) and its arguments.
pub(super) fn list_sql(query: &RequestQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut arg = |value: Value| {
        args.push(value);
        format!("?{}", args.len())
    };
    let text = |v: &Option<String>| v.clone().map(Value::from);
    if let Some(session) = text(&query.session) {
        clauses.push(format!("r.session_id = {}", arg(session)));
    }
    if let Some(since) = query.since_ms {
        clauses.push(format!("r.started_ms >= {}", arg(since.into())));
    }
    if let Some(until) = query.until_ms {
        clauses.push(format!("r.started_ms < {}", arg(until.into())));
    }
    if let Some(model) = text(&query.model) {
        let m = arg(model);
        clauses.push(format!(
            "COALESCE(r.served_model, r.requested_model, '(none)') = {m}"
        ));
    }
    if let Some(provider) = text(&query.provider) {
        clauses.push(format!("r.provider = {}", arg(provider)));
    }
    if let Some(tag) = text(&query.tag) {
        clauses.push(format!("s.tag = {}", arg(tag)));
    }
    match &query.outcome {
        Some(OutcomeFilter::Failed) => {
            clauses.push("(r.outcome <> 'ok' OR r.status >= 400)".to_owned());
        }
        Some(OutcomeFilter::Is(outcome)) => {
            clauses.push(format!("r.outcome = {}", arg(outcome.clone().into())));
        }
        None => {}
    }
    if let Some(status) = query.status {
        clauses.push(format!("r.status = {}", arg(status.into())));
    }
    // A session's requests in write order (its index); a range's by start time (its index).
    let by_session = query.session.is_some();
    let key = if by_session {
        "r.seq"
    } else {
        "r.started_ms, r.seq"
    };
    let (cmp, order) = match &query.from {
        Some(Direction::Newer(c)) => (Some((">", c)), "ASC"),
        Some(Direction::Older(c)) => (Some(("<", c)), "DESC"),
        None => (None, "DESC"),
    };
    if let Some((op, cursor)) = cmp {
        let seq = format!(
            "(SELECT seq FROM request_rows WHERE id = {})",
            super::narrow::encode_id!("?ID")
        );
        let id = arg(cursor.id.clone().into());
        let seq = seq.replace("?ID", &id);
        if by_session {
            clauses.push(format!("r.seq {op} {seq}"));
        } else {
            let ms = arg(cursor.started_ms.into());
            clauses.push(format!("(r.started_ms, r.seq) {op} ({ms}, {seq})"));
        }
    }
    let limit = arg(i64::try_from(query.limit + 1).unwrap_or(i64::MAX).into());
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let order = key
        .split(", ")
        .map(|k| format!("{k} {order}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {COLUMNS} FROM {FROM} {filter} ORDER BY {order} LIMIT {limit}");
    (sql, args)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(ms: i64, id: &str) -> RequestRow {
        RequestRow {
            started_ms: ms,
            id: id.to_owned(),
            ..RequestRow::default()
        }
    }

    #[test]
    fn cursors_parse_and_pages_link_both_ways() {
        let c = RequestCursor::parse("17~req_ab~c").unwrap();
        assert_eq!((c.started_ms, c.id.as_str()), (17, "req_ab~c"));
        assert!(RequestCursor::parse("x~req").is_none());
        assert!(RequestCursor::parse("5~").is_none());
        let rows = || vec![row(3, "c"), row(2, "b"), row(1, "a")];
        let mut q = RequestQuery {
            limit: 2,
            ..RequestQuery::default()
        };
        let first = RequestList::page(rows(), &q);
        assert_eq!(first.next_after.as_deref(), Some("2~b"));
        assert_eq!(first.prev_before, None);
        q.from = Some(Direction::Older(c.clone()));
        let middle = RequestList::page(rows(), &q);
        assert_eq!(middle.prev_before.as_deref(), Some("3~c"));
        // Back: read oldest first, shown newest first.
        q.from = Some(Direction::Newer(c));
        let back = RequestList::page(vec![row(1, "a"), row(2, "b")], &q);
        assert_eq!(back.requests[0].id, "b");
        assert_eq!(back.prev_before, None);
        assert_eq!(back.next_after.as_deref(), Some("1~a"));
    }

    #[test]
    fn a_session_and_a_day_page_from_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        drop(crate::ledger::Ledger::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let plan = |query: &RequestQuery| {
            let (sql, args) = list_sql(query);
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap()
                .join("\n")
        };
        let cursor = RequestCursor::parse("5~req_00").unwrap();
        let session = plan(&RequestQuery {
            session: Some("s".into()),
            model: Some("m".into()),
            from: Some(Direction::Older(cursor.clone())),
            limit: 50,
            ..RequestQuery::default()
        });
        assert!(session.contains("requests_session"), "{session}");
        assert!(!session.contains("TEMP B-TREE"), "{session}");
        let day = plan(&RequestQuery {
            since_ms: Some(0),
            until_ms: Some(86_400_000),
            outcome: Some(OutcomeFilter::Failed),
            from: Some(Direction::Newer(cursor)),
            limit: 50,
            ..RequestQuery::default()
        });
        assert!(day.contains("requests_started"), "{day}");
        assert!(!day.contains("TEMP B-TREE"), "{day}");
    }
}
