//! `/requests` from a PostgreSQL ledger: the same page of requests, filters and cursors as
//! `ledger::request_list` reads from SQLite, newest first by start time (then id).

use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::request_list::{Direction, OutcomeFilter, RequestList, RequestQuery};
use super::pages::{REQUEST_SELECT, request_from_row};
use super::query::Reader;
use super::rows::stored_id;

type Param = Box<dyn ToSql + Sync + Send>;

impl Reader {
    /// A page of requests, as `ledger::request_list::request_list`.
    pub fn request_list(&self, query: &RequestQuery) -> Result<RequestList, LedgerError> {
        let mut params: Vec<Param> = Vec::new();
        let mut arg = |value: Param| {
            params.push(value);
            format!("${}", params.len())
        };
        let mut clauses: Vec<String> = Vec::new();
        if let Some(session) = &query.session {
            let s = arg(Box::new(session.clone()));
            clauses.push(format!(
                "r.session = (SELECT id FROM strings WHERE text = {s})"
            ));
        }
        if let Some(since) = query.since_ms {
            clauses.push(format!("r.started_ms >= {}", arg(Box::new(since))));
        }
        if let Some(until) = query.until_ms {
            clauses.push(format!("r.started_ms < {}", arg(Box::new(until))));
        }
        if let Some(model) = &query.model {
            let m = arg(Box::new(model.clone()));
            clauses.push(format!(
                "COALESCE(k.served_model, k.requested_model, '(none)') = {m}"
            ));
        }
        if let Some(provider) = &query.provider {
            clauses.push(format!("k.provider = {}", arg(Box::new(provider.clone()))));
        }
        if let Some(tag) = &query.tag {
            clauses.push(format!("s.tag = {}", arg(Box::new(tag.clone()))));
        }
        match &query.outcome {
            Some(OutcomeFilter::Failed) => {
                clauses.push("(k.outcome <> 'ok' OR r.status >= 400)".to_owned());
            }
            Some(OutcomeFilter::Is(outcome)) => {
                clauses.push(format!("k.outcome = {}", arg(Box::new(outcome.clone()))));
            }
            None => {}
        }
        if let Some(status) = query.status {
            clauses.push(format!("r.status::bigint = {}", arg(Box::new(status))));
        }
        let (cursor, order) = match &query.from {
            Some(Direction::Newer(c)) => (Some((">", c)), "ASC"),
            Some(Direction::Older(c)) => (Some(("<", c)), "DESC"),
            None => (None, "DESC"),
        };
        if let Some((op, c)) = cursor {
            let ms = arg(Box::new(c.started_ms));
            let id = arg(Box::new(stored_id(&c.id)));
            clauses.push(format!("(r.started_ms, r.id) {op} ({ms}, {id})"));
        }
        let limit = arg(Box::new(i64::try_from(query.limit + 1).unwrap_or(i64::MAX)));
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "{REQUEST_SELECT} {filter} ORDER BY r.started_ms {order}, r.id {order} LIMIT {limit}"
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.page_query(&sql, &refs)?;
        let rows = rows.iter().map(request_from_row).collect();
        Ok(RequestList::page(rows, query))
    }
}
