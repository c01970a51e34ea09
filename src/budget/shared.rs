//! Daily and monthly budgets shared by every process on the ledger: a request reserves its
//! estimated cost in the ledger before it is sent (`budget::store`), and its row settles the
//! reservation when it is written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use rusqlite::Connection;

use super::policy::{self, Period, Refusal};
use super::store::{self, Limit, Reserve, Standing};
use crate::config::BudgetConfig;
use crate::ledger::LedgerError;

/// Why the shared budgets did not grant a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// A limit would be exceeded.
    Refused(Refusal),
    /// The ledger could not be read in time, or at all: refused, never let through unchecked.
    Unavailable(String),
}

pub struct SharedBudget {
    conn: Mutex<Connection>,
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
    utc_offset_s: Option<i32>,
    count_subscription: bool,
    /// Daily budgets of the daemon's client keys, by key name.
    key_budgets: RwLock<HashMap<String, f64>>,
}

impl SharedBudget {
    /// None when no daily or monthly limit is configured and `always` is false (the daemon
    /// passes true: its client keys may bring budgets of their own).
    pub fn open(
        ledger: &Path,
        config: &BudgetConfig,
        always: bool,
    ) -> Result<Option<Self>, LedgerError> {
        if config.daily_usd.is_none() && config.monthly_usd.is_none() && !always {
            return Ok(None);
        }
        Ok(Some(Self {
            conn: Mutex::new(crate::ledger::open_connection(ledger)?),
            daily_usd: config.daily_usd,
            monthly_usd: config.monthly_usd,
            utc_offset_s: config.utc_offset_s,
            count_subscription: config.count_subscription,
            key_budgets: RwLock::default(),
        }))
    }

    /// Replaces the per-key daily budgets (at start-up and on reload).
    pub fn set_key_budgets(&self, budgets: HashMap<String, f64>) {
        *self
            .key_budgets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = budgets;
    }

    /// The limits a request of client key `key` is held to.
    pub fn limits(&self, now_ms: i64, key: Option<&str>) -> Vec<Limit> {
        let mut limits: Vec<Limit> = [
            (Period::Day, self.daily_usd),
            (Period::Month, self.monthly_usd),
        ]
        .into_iter()
        .filter_map(|(period, limit)| {
            Some(Limit {
                name: period.name(),
                limit_usd: limit?,
                since_ms: policy::period_start_ms(period, now_ms, self.utc_offset_s),
                key: None,
                count_subscription: self.count_subscription,
            })
        })
        .collect();
        if let Some(key) = key {
            let budgets = self
                .key_budgets
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(limit) = budgets.get(key) {
                limits.push(Limit {
                    name: "key daily",
                    limit_usd: *limit,
                    since_ms: policy::period_start_ms(Period::Day, now_ms, self.utc_offset_s),
                    key: Some(key.to_owned()),
                    count_subscription: self.count_subscription,
                });
            }
        }
        limits
    }

    /// Reserves `estimate_usd` for request `id`, or says which limit refuses it. A ledger that
    /// cannot be read by `deadline` (another process holds it) refuses too: a budget is never
    /// skipped. Blocking: run it off the async threads.
    pub fn reserve(
        &self,
        id: &str,
        key: Option<&str>,
        estimate_usd: f64,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Vec<Standing>, Denied> {
        let limits = self.limits(now_ms, key);
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Requests queued behind one that waited for a busy ledger give up at their own
        // deadline instead of each waiting again in turn.
        if Instant::now() >= deadline {
            return Err(Denied::Unavailable("the ledger is busy".to_owned()));
        }
        match store::reserve(&mut conn, &limits, id, key, estimate_usd, now_ms, deadline) {
            Ok(Reserve::Granted(standings)) => Ok(standings),
            Ok(Reserve::Refused(s)) => Err(Denied::Refused(Refusal {
                budget: s.name,
                limit_usd: s.limit_usd,
                spent_usd: s.spent_usd,
                reserved_usd: s.reserved_usd,
                estimate_usd,
            })),
            Err(err) => {
                tracing::warn!(%err, "shared budget check failed; request refused");
                let detail = if crate::db::is_busy(&err) {
                    "another process holds the ledger".to_owned()
                } else {
                    err.to_string()
                };
                Err(Denied::Unavailable(detail))
            }
        }
    }

    /// Whether any limit applies to a request of client key `key`.
    pub fn applies(&self, now_ms: i64, key: Option<&str>) -> bool {
        !self.limits(now_ms, key).is_empty()
    }

    pub fn standings(&self, now_ms: i64) -> Vec<Standing> {
        let limits = self.limits(now_ms, None);
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store::standings(&conn, &limits, now_ms).unwrap_or_default()
    }
}
