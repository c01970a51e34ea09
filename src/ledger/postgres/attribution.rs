//! `smartproxy cost` on a PostgreSQL ledger: the sessions `ledger::attribution` selects, each
//! with its own requests' totals, answered as SQLite's reader answers.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::attribution::{AttributedSession, Selection, Value, conditions};
use super::super::query::Totals;
use super::query::{Reader, SUMS, clause, request_rows, totals_from_row};

impl Reader {
    /// The sessions `sel` selects, oldest first, each with its own requests' totals.
    pub fn attributed(&self, sel: &Selection) -> Result<Vec<AttributedSession>, LedgerError> {
        let (parts, values) = conditions(sel, '$', 1);
        let params: Vec<Box<dyn ToSql + Sync>> = values
            .into_iter()
            .map(|v| -> Box<dyn ToSql + Sync> {
                match v {
                    Value::Text(t) => Box::new(t),
                    Value::List(items) => Box::new(items),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        let sql = format!(
            "SELECT s.id, s.started_ms, s.project, s.branch, s.head, s.end_branch, s.end_head
             FROM sessions s {} ORDER BY s.started_ms, s.id COLLATE \"C\"",
            clause(&parts)
        );
        let rows = self.read(&sql, &refs)?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let sums = format!(
            "SELECT key, {SUMS} FROM ({}) x GROUP BY key",
            request_rows("st.text", &["st.text = ANY($1::text[])".to_owned()])
        );
        let mut totals: HashMap<String, Totals> = self
            .read(&sums, &[&ids])?
            .iter()
            .map(|r| {
                let t = totals_from_row(r);
                (t.key.clone(), t)
            })
            .collect();
        Ok(rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                let totals = totals.remove(&id).unwrap_or_else(|| Totals {
                    key: id.clone(),
                    ..Totals::default()
                });
                AttributedSession {
                    id,
                    started_ms: r.get(1),
                    project: r.get(2),
                    branch: r.get(3),
                    head: r.get(4),
                    end_branch: r.get(5),
                    end_head: r.get(6),
                    totals,
                }
            })
            .collect())
    }

    fn read(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        self.runtime
            .block_on(self.client.query(sql, params))
            .map_err(|e| super::db_error(&self.url, &e))
    }
}
