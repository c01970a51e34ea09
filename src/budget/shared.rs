//! Daily and monthly budgets shared by every process on the ledger: a request reserves its
//! estimated cost in the ledger before it is sent (`ledger::budget`), and its row settles the
//! reservation when it is written.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

use super::policy::{self, Period, Refusal};
use crate::config::BudgetConfig;
use crate::ledger::LedgerError;
use crate::ledger::budget::{self as store, Limit, Reserve, Standing};

pub struct SharedBudget {
    conn: Mutex<Connection>,
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
    utc_offset_s: Option<i32>,
}

impl SharedBudget {
    /// None when no daily or monthly limit is configured.
    pub fn open(ledger: &Path, config: &BudgetConfig) -> Result<Option<Self>, LedgerError> {
        if config.daily_usd.is_none() && config.monthly_usd.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            conn: Mutex::new(crate::ledger::open_connection(ledger)?),
            daily_usd: config.daily_usd,
            monthly_usd: config.monthly_usd,
            utc_offset_s: config.utc_offset_s,
        }))
    }

    pub fn limits(&self, now_ms: i64) -> Vec<Limit> {
        [
            (Period::Day, self.daily_usd),
            (Period::Month, self.monthly_usd),
        ]
        .into_iter()
        .filter_map(|(period, limit)| {
            Some(Limit {
                name: period.name(),
                limit_usd: limit?,
                since_ms: policy::period_start_ms(period, now_ms, self.utc_offset_s),
            })
        })
        .collect()
    }

    /// Reserves `estimate_usd` for request `id`, or says which limit refuses it. Blocking: run
    /// it off the async threads.
    pub fn reserve(
        &self,
        id: &str,
        estimate_usd: f64,
        now_ms: i64,
    ) -> Result<Vec<Standing>, Refusal> {
        let limits = self.limits(now_ms);
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match store::reserve(&mut conn, &limits, id, estimate_usd, now_ms) {
            Ok(Reserve::Granted(standings)) => Ok(standings),
            Ok(Reserve::Refused(s)) => Err(Refusal {
                budget: s.name,
                limit_usd: s.limit_usd,
                spent_usd: s.spent_usd,
                reserved_usd: s.reserved_usd,
                estimate_usd,
            }),
            Err(err) => {
                // A ledger that cannot be read must not stop the user's work: let it through.
                tracing::warn!(%err, "shared budget check failed; request let through");
                Ok(Vec::new())
            }
        }
    }

    pub fn standings(&self, now_ms: i64) -> Vec<Standing> {
        let limits = self.limits(now_ms);
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store::standings(&conn, &limits, now_ms).unwrap_or_default()
    }
}
