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
use super::super::request_view::{Attempt, RequestDetail, RequestRow};
use super::query::{Reader, SESSION_SELECT, clause, dollars, in_tree, session_from_row};
use super::rows::{shown_id, stored_id};

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

/// A request row's columns, in `request_row`'s order.
const REQUEST_SELECT: &str = "
    SELECT r.id, st.text, s.tag, r.started_ms, k.endpoint, k.route, k.provider,
        k.requested_model, k.served_model, r.status, k.outcome, k.error_code, r.stream,
        r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,
        r.tokens_estimated, r.cost_nusd, r.saved_nusd, r.latency_us, r.ttfb_us, r.attempts,
        k.cache_status, ch.text, r.fingerprint, k.user_agent, cs.text, k.billing,
        r.budget_action, sk.text, k.price_period
    FROM requests r JOIN request_shapes k ON k.id = r.shape
    LEFT JOIN strings st ON st.id = r.session
    LEFT JOIN sessions s ON s.id = st.text
    LEFT JOIN strings ch ON ch.id = r.client_hash
    LEFT JOIN strings cs ON cs.id = r.client_session
    LEFT JOIN strings sk ON sk.id = r.skipped";

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
    pub fn recent_requests(
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
                return Ok(rows.iter().map(request_row).collect());
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

impl Reader {
    /// One request by id with its attempts in order and its session; None for an unknown id.
    pub fn request_detail(&self, id: &str) -> Result<Option<RequestDetail>, LedgerError> {
        let stored = stored_id(id);
        let rows = self.live_query(
            &format!("{REQUEST_SELECT} WHERE r.id = $1 LIMIT 1"),
            &[&stored],
        )?;
        let Some(request) = rows.first().map(request_row) else {
            return Ok(None);
        };
        let attempts = self
            .live_query(
                "SELECT a.n, p.text, m.text, a.status, e.text, a.latency_us, a.waited_us
                 FROM attempts a LEFT JOIN strings p ON p.id = a.provider
                 LEFT JOIN strings m ON m.id = a.model LEFT JOIN strings e ON e.id = a.error_class
                 WHERE a.request_id = $1 ORDER BY a.n",
                &[&stored],
            )?
            .iter()
            .map(|r| Attempt {
                n: i64::from(r.get::<_, i16>(0)),
                provider: r.get(1),
                model: r.get(2),
                status: r.get::<_, Option<i16>>(3).map(i64::from),
                error_class: r.get(4),
                latency_ms: r.get::<_, Option<i64>>(5).map(|us| us as f64 / 1e3),
                waited_ms: r.get::<_, Option<i64>>(6).map(|us| us as f64 / 1e3),
            })
            .collect();
        let session = match &request.session_id {
            Some(sid) => {
                let sql = SESSION_SELECT.replacen(
                    "FROM (SELECT * FROM sessions ORDER BY",
                    "FROM (SELECT * FROM sessions WHERE id = $2 ORDER BY",
                    1,
                );
                self.live_query(&sql, &[&1_i64, sid])?
                    .first()
                    .map(session_from_row)
            }
            None => None,
        };
        Ok(Some(RequestDetail {
            request,
            attempts,
            session,
        }))
    }
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A `REQUEST_SELECT` row as the dashboards' `RequestRow`.
fn request_row(row: &tokio_postgres::Row) -> RequestRow {
    let text = |i: usize| row.get::<_, Option<String>>(i);
    RequestRow {
        id: shown_id(row.get::<_, &[u8]>(0)),
        session_id: text(1),
        tag: text(2),
        started_ms: row.get(3),
        endpoint: row.get(4),
        route: text(5),
        provider: text(6),
        requested_model: text(7),
        served_model: text(8),
        status: i64::from(row.get::<_, i16>(9)),
        outcome: row.get(10),
        error_code: text(11),
        stream: row.get(12),
        prompt_tokens: row.get(13),
        completion_tokens: row.get(14),
        cached_tokens: row.get(15),
        cache_write_tokens: row.get(16),
        tokens_estimated: row.get(17),
        cost_usd: row.get::<_, Option<i64>>(18).map(dollars),
        saved_usd: row.get::<_, Option<i64>>(19).map(dollars),
        latency_ms: row.get::<_, i64>(20) as f64 / 1e3,
        ttfb_ms: row.get::<_, Option<i64>>(21).map(|us| us as f64 / 1e3),
        attempts: i64::from(row.get::<_, i32>(22)),
        cache_status: row.get(23),
        client_hash: text(24),
        fingerprint: row.get::<_, Option<Vec<u8>>>(25).map(hex::encode),
        user_agent: text(26),
        client_session: text(27),
        billing: row.get(28),
        budget_action: text(29),
        skipped: text(30),
        price_period: text(31),
    }
}
