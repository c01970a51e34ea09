//! The budgets panel's reading: every scope's standing (`budget::standings`, the same lines
//! as `smartproxy budget`) from either backend, on the poller's thread at the pace of
//! today's totals (not every frame), through a read connection of its own.

use std::time::{Duration, Instant};

use super::state::Action;
use crate::budget::standings::{self, Limits};
use crate::config::{BudgetConfig, Config, LedgerLocation};
use crate::ledger::LedgerError;
use crate::ledger::reader::LedgerReader;

/// Read at most this often, however often the ledger changes.
const EVERY: Duration = Duration::from_secs(2);

/// The limits the standings are read against.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    pub budget: BudgetConfig,
    /// The client keys' daily budgets (name, USD).
    pub key_budgets: Vec<(String, crate::config::ProjectBudget)>,
}

impl Budgets {
    pub fn from_config(config: &Config) -> Self {
        Self {
            budget: config.budget.clone(),
            key_budgets: config.client_key_budgets(),
        }
    }
}

/// Reads the standings for a poller; connects on first use and again after a failure.
pub(super) struct Reader {
    location: LedgerLocation,
    limits: Budgets,
    reader: Option<LedgerReader>,
    due: Instant,
}

impl Reader {
    pub(super) fn new(location: LedgerLocation, limits: Budgets) -> Self {
        Self {
            location,
            limits,
            reader: None,
            due: Instant::now(),
        }
    }

    /// The standings when a read is due, else None. A failure is shown like any read error.
    pub(super) fn read_if_due(&mut self, now_ms: i64) -> Option<Action> {
        if Instant::now() < self.due {
            return None;
        }
        self.due = Instant::now() + EVERY;
        let limits = Limits {
            budget: &self.limits.budget,
            key_budgets: &self.limits.key_budgets,
        };
        if self.reader.is_none() {
            match LedgerReader::open(&self.location) {
                Ok(reader) => self.reader = Some(reader),
                // Nothing recorded yet: every limit stands untouched.
                Err(LedgerError::Missing { .. }) => {
                    return standings::read(None, &limits, now_ms)
                        .ok()
                        .map(Action::Budgets);
                }
                Err(err) => return Some(Action::ReadError(format!("budgets: {err}"))),
            }
        }
        match standings::read(self.reader.as_ref(), &limits, now_ms) {
            Ok(lines) => Some(Action::Budgets(lines)),
            Err(err) => {
                self.reader = None;
                Some(Action::ReadError(format!("budgets: {err}")))
            }
        }
    }
}
