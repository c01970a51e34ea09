//! `smartproxy export` from a PostgreSQL ledger: the same columns, in the same order and written
//! byte for byte as a SQLite ledger's export (ids, dollars and milliseconds turned back from
//! their stored forms), fetched in pages through a cursor of one read-only snapshot.

use std::io::Write;

use rusqlite::types::ValueRef;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::export::{ExportError, Format, Sink};
use super::super::query::Filter;
use super::query::{Reader, clause, dollars, in_tree};
use super::rows::shown_id;

/// Rows fetched per round trip.
const PAGE: i32 = 2000;

/// SQLite's `requests` view's columns (less its internal `seq`) and the session's tag.
const COLUMNS: [&str; 32] = [
    "id",
    "session_id",
    "started_ms",
    "endpoint",
    "route",
    "provider",
    "requested_model",
    "served_model",
    "status",
    "outcome",
    "error_code",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "tokens_estimated",
    "cost_usd",
    "latency_ms",
    "ttfb_ms",
    "attempts",
    "cache_status",
    "client_hash",
    "fingerprint",
    "user_agent",
    "client_session",
    "saved_usd",
    "cache_write_tokens",
    "billing",
    "budget_action",
    "skipped",
    "price_period",
    "session_tag",
];

/// How each selected column is shown.
#[derive(Clone, Copy)]
enum Kind {
    Id,
    Text,
    /// A `bigint` (a `smallint`, `integer` or `boolean` is cast to one in the query).
    Int,
    Nanos,
    Micros,
    Hex,
}

/// The select list, in `COLUMNS` order, with how each is turned into SQLite's value.
const SELECT: [(&str, Kind); 32] = [
    ("r.id", Kind::Id),
    ("st.text", Kind::Text),
    ("r.started_ms", Kind::Int),
    ("k.endpoint", Kind::Text),
    ("k.route", Kind::Text),
    ("k.provider", Kind::Text),
    ("k.requested_model", Kind::Text),
    ("k.served_model", Kind::Text),
    ("r.status::bigint", Kind::Int),
    ("k.outcome", Kind::Text),
    ("k.error_code", Kind::Text),
    ("r.stream::int::bigint", Kind::Int),
    ("r.prompt_tokens", Kind::Int),
    ("r.completion_tokens", Kind::Int),
    ("r.cached_tokens", Kind::Int),
    ("r.tokens_estimated::int::bigint", Kind::Int),
    ("r.cost_nusd", Kind::Nanos),
    ("r.latency_us", Kind::Micros),
    ("r.ttfb_us", Kind::Micros),
    ("r.attempts::bigint", Kind::Int),
    ("k.cache_status", Kind::Text),
    ("ch.text", Kind::Text),
    ("r.fingerprint", Kind::Hex),
    ("k.user_agent", Kind::Text),
    ("cs.text", Kind::Text),
    ("r.saved_nusd", Kind::Nanos),
    ("r.cache_write_tokens", Kind::Int),
    ("k.billing", Kind::Text),
    ("r.budget_action", Kind::Text),
    ("sk.text", Kind::Text),
    ("k.price_period", Kind::Text),
    ("s.tag", Kind::Text),
];

/// The requests `filter` selects: the WHERE clause and its parameters.
fn selection(filter: &Filter) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut parts = Vec::new();
    if let Some(id) = &filter.session_id {
        params.push(Box::new(id.clone()));
        parts.push(in_tree(params.len()));
    }
    if let Some(since) = filter.since_ms {
        params.push(Box::new(since));
        parts.push(format!("r.started_ms >= ${}", params.len()));
    }
    if let Some(until) = filter.until_ms {
        params.push(Box::new(until));
        parts.push(format!("r.started_ms < ${}", params.len()));
    }
    (clause(&parts), params)
}

impl Reader {
    /// The model of the newest request `filter` selects (as an export would) that names one:
    /// `status`'s model in use.
    pub fn last_model(&self, filter: &Filter) -> Result<Option<String>, LedgerError> {
        let (clause, params) = selection(filter);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        let and = if clause.is_empty() { "WHERE" } else { "AND" };
        let sql = format!(
            "SELECT COALESCE(k.served_model, k.requested_model) FROM requests r
             JOIN request_shapes k ON k.id = r.shape {clause}
             {and} COALESCE(k.served_model, k.requested_model) IS NOT NULL
             ORDER BY r.started_ms DESC LIMIT 1"
        );
        self.runtime
            .block_on(self.client.query_opt(&sql, &refs))
            .map(|row| row.and_then(|r| r.get(0)))
            .map_err(|e| super::db_error(&self.url, &e))
    }

    /// How many requests `filter` selects (for a progress bar's length).
    pub fn export_count(&self, filter: &Filter) -> Result<u64, LedgerError> {
        let (clause, params) = selection(filter);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        let sql = format!("SELECT count(*) FROM requests r {clause}");
        self.runtime
            .block_on(self.client.query_one(&sql, &refs))
            .map(|row| row.get::<_, i64>(0).max(0) as u64)
            .map_err(|e| super::db_error(&self.url, &e))
    }

    /// Writes the requests `filter` selects to `out`, oldest first (ties by id), and returns
    /// how many it wrote. `progress` hears the running count every few thousand rows.
    pub fn export(
        &mut self,
        filter: &Filter,
        format: Format,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ExportError> {
        let columns: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        let mut sink = Sink::new(format, &columns, out, progress)?;
        let (clause, params) = selection(filter);
        let select: Vec<&str> = SELECT.iter().map(|(sql, _)| *sql).collect();
        let sql = format!(
            "SELECT {} FROM requests r JOIN request_shapes k ON k.id = r.shape
             LEFT JOIN strings st ON st.id = r.session
             LEFT JOIN sessions s ON s.id = st.text
             LEFT JOIN strings ch ON ch.id = r.client_hash
             LEFT JOIN strings cs ON cs.id = r.client_session
             LEFT JOIN strings sk ON sk.id = r.skipped
             {clause} ORDER BY r.started_ms, r.id",
            select.join(", ")
        );
        let url = self.url.clone();
        let fail = |e: tokio_postgres::Error| ExportError::Ledger(super::db_error(&url, &e));
        let Self {
            client, runtime, ..
        } = self;
        runtime.block_on(async {
            // One read-only snapshot, however long the export takes, as on SQLite.
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(fail)?;
            let statement = tx.prepare(&sql).await.map_err(fail)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
            let portal = tx.bind(&statement, &refs).await.map_err(fail)?;
            loop {
                let page = tx.query_portal(&portal, PAGE).await.map_err(fail)?;
                for row in &page {
                    write_row(&mut sink, row)?;
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
            tx.commit().await.map_err(fail)
        })?;
        sink.finish()
    }
}

/// One row, each value as SQLite's `requests` view would give it.
fn write_row(sink: &mut Sink<'_, '_>, row: &tokio_postgres::Row) -> Result<(), ExportError> {
    sink.begin(ValueRef::Integer(row.get(2)));
    for (i, (_, kind)) in SELECT.iter().enumerate() {
        match kind {
            Kind::Id => {
                let id = shown_id(row.get::<_, &[u8]>(i));
                sink.value(ValueRef::Text(id.as_bytes()))?;
            }
            Kind::Text => {
                let text: Option<&str> = row.get(i);
                sink.value(text.map_or(ValueRef::Null, |t| ValueRef::Text(t.as_bytes())))?;
            }
            Kind::Int => {
                let n: Option<i64> = row.get(i);
                sink.value(n.map_or(ValueRef::Null, ValueRef::Integer))?;
            }
            Kind::Nanos => {
                let n: Option<i64> = row.get(i);
                sink.value(n.map_or(ValueRef::Null, |n| ValueRef::Real(dollars(n))))?;
            }
            Kind::Micros => {
                let n: Option<i64> = row.get(i);
                sink.value(n.map_or(ValueRef::Null, |n| ValueRef::Real(n as f64 / 1e3)))?;
            }
            Kind::Hex => {
                let hex = row.get::<_, Option<&[u8]>>(i).map(hex::encode);
                sink.value(
                    hex.as_deref()
                        .map_or(ValueRef::Null, |h| ValueRef::Text(h.as_bytes())),
                )?;
            }
        }
    }
    sink.end()
}
