//! `/sessions` from a PostgreSQL ledger: the same page of sessions, in the same order and with
//! the same cursors, as `ledger::session_list` reads from SQLite. Costs are compared in
//! nano-dollars, exact, as the rows hold them.

use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::session_list::{SessionList, SessionQuery, SessionSort, SessionStatus};
use super::query::{Reader, session_from_row};

/// A session and its own requests' figures, with its sort value (`sort_key`) last.
const SELECT: &str = "
    SELECT s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid, s.started_ms, s.ended_ms,
        s.exit_code, s.budget_usd, COALESCE(a.n, 0) AS n, a.cost, a.sim,
        COALESCE(a.unpriced, 0) AS unpriced, s.host, s.owner_pid, s.owner_start, s.project,
        s.repo, s.branch, s.head, s.end_branch, s.end_head,
        COALESCE(a.cost, 0) - COALESCE(a.sim, 0) AS real_nusd, {SORT} AS sort_key
    FROM sessions s
    LEFT JOIN LATERAL (
        SELECT count(*) AS n, sum(r.cost_nusd)::bigint AS cost,
            (sum(r.cost_nusd) FILTER (WHERE k.billing = 'simulated'))::bigint AS sim,
            count(*) FILTER (WHERE r.cost_nusd IS NULL AND k.outcome = 'ok') AS unpriced
        FROM requests r JOIN request_shapes k ON k.id = r.shape
        WHERE r.session = (SELECT st.id FROM strings st WHERE st.text = s.id)
    ) a ON true";

/// Dollars as nano-dollars.
fn nanos(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

impl Reader {
    /// A page of sessions, as `ledger::session_list::session_list`.
    pub fn session_list(&self, query: &SessionQuery) -> Result<SessionList, LedgerError> {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let arg = |params: &mut Vec<Box<dyn ToSql + Sync + Send>>,
                   value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            format!("${}", params.len())
        };
        let mut inner: Vec<String> = Vec::new();
        if let Some(tag) = &query.tag {
            inner.push(format!(
                "s.tag = {}",
                arg(&mut params, Box::new(tag.clone()))
            ));
        }
        if let Some(program) = &query.program {
            let p = arg(&mut params, Box::new(program.clone()));
            inner.push(format!("s.program = {p}"));
        }
        inner.extend(query.status.map(|status| {
            match status {
                SessionStatus::Running => "s.ended_ms IS NULL",
                SessionStatus::Ok => "s.exit_code = 0",
                SessionStatus::Failed => "s.exit_code <> 0",
            }
            .to_owned()
        }));
        if let Some(since) = query.since_ms {
            inner.push(format!(
                "s.started_ms >= {}",
                arg(&mut params, Box::new(since))
            ));
        }
        if let Some(until) = query.until_ms {
            inner.push(format!(
                "s.started_ms < {}",
                arg(&mut params, Box::new(until))
            ));
        }
        let mut outer: Vec<String> = Vec::new();
        if let Some(min) = query.min_cost_usd {
            let min = arg(&mut params, Box::new(nanos(min)));
            outer.push(format!("x.real_nusd >= {min}"));
        }
        if let Some(after) = &query.after {
            let value = match query.sort {
                SessionSort::Cost => nanos(after.value.parse::<f64>().unwrap_or(0.0)),
                _ => after.value.parse::<i64>().unwrap_or(0),
            };
            let value = arg(&mut params, Box::new(value));
            let id = arg(&mut params, Box::new(after.id.clone()));
            outer.push(format!(
                "(x.sort_key, x.id COLLATE \"C\") < ({value}, {id} COLLATE \"C\")"
            ));
        }
        let limit = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
        let limit = arg(&mut params, Box::new(limit));
        let sort = match query.sort {
            SessionSort::Started => "s.started_ms",
            SessionSort::Cost => "COALESCE(a.cost, 0) - COALESCE(a.sim, 0)",
            SessionSort::Requests => "COALESCE(a.n, 0)",
        };
        let clause = |parts: &[String]| {
            if parts.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", parts.join(" AND "))
            }
        };
        let sql = format!(
            "SELECT * FROM ({select} {inner}) x {outer}
             ORDER BY x.sort_key DESC, x.id COLLATE \"C\" DESC LIMIT {limit}",
            select = SELECT.replace("{SORT}", sort),
            inner = clause(&inner),
            outer = clause(&outer),
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.page_query(&sql, &refs)?;
        let rows = rows.iter().map(session_from_row).collect();
        Ok(SessionList::page(rows, query))
    }
}
