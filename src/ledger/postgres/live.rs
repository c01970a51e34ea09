//! The terminal dashboard's bounded reads (SQLite's `ledger::live`) asked of a PostgreSQL
//! ledger: the newest requests (a LIMIT inside a time window that widens only when the window
//! holds too few: the BRIN index on `started_ms` finds a window's pages), today's and running
//! sessions, and today's totals per session, model and provider. Every read gives up after
//! `READ_TIMEOUT`, so a silent server shows as an error instead of holding the poller.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::live::{DayTotals, GroupKey, GroupTotals, LiveFilter, fold};
use super::super::query::SessionRow;
use super::super::request_view::RequestRow;
use super::pages::{REQUEST_SELECT, request_from_row};
use super::query::{Reader, SESSION_SELECT, clause, dollars, in_tree, session_from_row};

/// How long one dashboard read may take before it counts as a failure.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The windows the newest requests are looked for in, widest last (`None`: all).
const WINDOWS_MS: [Option<i64>; 4] = [
    Some(86_400_000),
    Some(7 * 86_400_000),
    Some(35 * 86_400_000),
    None,
];

/// How far back a session without an end is still taken for running (as SQLite's).
const RUNNING_HORIZON_MS: i64 = 7 * 24 * 3600 * 1000;

impl Reader {
    fn live_query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        let read = self.runtime.block_on(async {
            tokio::time::timeout(READ_TIMEOUT, self.client.query(sql, params)).await
        });
        match read {
            Ok(rows) => rows.map_err(|e| super::db_error(&self.url, &e)),
            Err(_) => Err(LedgerError::Postgres {
                url: self.url.clone(),
                detail: format!("no answer within {} s", READ_TIMEOUT.as_secs()),
            }),
        }
    }

    /// The newest requests matching `filter`, newest first, at most `limit`.
    pub fn live_requests(
        &self,
        filter: &LiveFilter,
        limit: usize,
        now_ms: i64,
    ) -> Result<Vec<RequestRow>, LedgerError> {
        let limit_n = i64::try_from(limit).unwrap_or(i64::MAX);
        for window in WINDOWS_MS {
            let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
            let mut parts = Vec::new();
            if let Some(id) = &filter.session_id {
                params.push(Box::new(id.clone()));
                parts.push(in_tree(params.len()));
            }
            if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
                params.push(Box::new(like_pattern(text)));
                let n = params.len();
                parts.push(format!(
                    "(st.text ILIKE ${n} OR s.tag ILIKE ${n} OR k.served_model ILIKE ${n} \
                     OR k.requested_model ILIKE ${n} OR k.provider ILIKE ${n})"
                ));
            }
            let since = match (filter.since_ms, window) {
                (Some(a), Some(w)) => Some(a.max(now_ms - w)),
                (a, w) => a.or(w.map(|w| now_ms - w)),
            };
            if let Some(since) = since {
                params.push(Box::new(since));
                parts.push(format!("r.started_ms >= ${}", params.len()));
            }
            params.push(Box::new(limit_n));
            let sql = format!(
                "{REQUEST_SELECT} {} ORDER BY r.started_ms DESC, r.id DESC LIMIT ${}",
                clause(&parts),
                params.len()
            );
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
            let rows = self.live_query(&sql, &refs)?;
            // Enough in this window, or nothing wider to look in.
            if rows.len() >= limit
                || window.is_none()
                || filter.since_ms.is_some_and(|s| Some(s) == since)
            {
                return Ok(rows.iter().map(request_from_row).collect());
            }
        }
        Ok(Vec::new())
    }

    /// Sessions started since `since_ms` and those still running (started in the last week),
    /// newest first, at most `limit`, each with its own requests' figures.
    pub fn live_sessions(
        &self,
        since_ms: i64,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<SessionRow>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = SESSION_SELECT.replacen(
            "FROM (SELECT * FROM sessions ORDER BY",
            "FROM (SELECT * FROM sessions WHERE started_ms >= $2
                   OR (started_ms >= $3 AND ended_ms IS NULL) ORDER BY",
            1,
        ) + " ORDER BY s.started_ms DESC, s.id COLLATE \"C\" DESC";
        let horizon = now_ms - RUNNING_HORIZON_MS;
        Ok(self
            .live_query(&sql, &[&limit, &since_ms, &horizon])?
            .iter()
            .map(session_from_row)
            .collect())
    }

    /// Totals of the requests started since `since_ms` (today's) per session, model and
    /// provider, read from the requests of the window.
    pub fn live_totals(&self, since_ms: i64) -> Result<DayTotals, LedgerError> {
        let rows = self.live_query(
            "SELECT COALESCE(st.text, '(none)'),
                 COALESCE(k.served_model, k.requested_model, '(none)'),
                 COALESCE(k.provider, '(none)'),
                 count(*), count(*) FILTER (WHERE r.status >= 400 OR k.outcome <> 'ok'),
                 COALESCE(sum(r.prompt_tokens), 0)::bigint,
                 COALESCE(sum(r.completion_tokens), 0)::bigint,
                 COALESCE(sum(r.cost_nusd), 0)::bigint,
                 count(*) FILTER (WHERE r.cost_nusd IS NULL AND k.outcome = 'ok'),
                 COALESCE(sum(r.cost_nusd) FILTER (WHERE k.billing = 'simulated'), 0)::bigint
             FROM requests r JOIN request_shapes k ON k.id = r.shape
             LEFT JOIN strings st ON st.id = r.session
             WHERE r.started_ms >= $1 GROUP BY 1, 2, 3",
            &[&since_ms],
        )?;
        let count = |row: &tokio_postgres::Row, i: usize| row.get::<_, i64>(i).max(0) as u64;
        let groups: BTreeMap<GroupKey, GroupTotals> = rows
            .iter()
            .map(|row| {
                let simulated = dollars(row.get(9));
                let totals = GroupTotals {
                    key: String::new(),
                    requests: count(row, 3),
                    errors: count(row, 4),
                    prompt_tokens: count(row, 5),
                    completion_tokens: count(row, 6),
                    cost_usd: dollars(row.get(7)) - simulated,
                    unpriced: count(row, 8),
                    simulated_usd: simulated,
                };
                ((row.get(0), row.get(1), row.get(2)), totals)
            })
            .collect();
        Ok(fold(&groups))
    }
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
