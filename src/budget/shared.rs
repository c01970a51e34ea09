//! Daily, weekly, monthly and rolling-window budgets shared by every process on the ledger: a request reserves its
//! estimated cost in the ledger before it is sent (`budget::store` in a SQLite ledger,
//! `ledger::postgres::budget` in team mode), and its row settles the reservation when it is
//! written.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::policy::{self, Period, Refusal};
use super::scopes::{self, Holder, Payer};
use super::store::{self, Limit, Reserve, Standing};
use super::window;
use super::{Reservation, SessionBudget};
use crate::config::{BudgetConfig, ProjectBudget, WindowLimit};
use crate::ledger::postgres::budget::{Admit, Counter, Scope};
use crate::ledger::{Ledger, LedgerError};

/// Why the shared budgets did not grant a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum Denied {
    /// A limit would be exceeded.
    Refused(Refusal),
    /// The ledger could not be read in time, or at all: refused, never let through unchecked.
    Unavailable(String),
    /// PostgreSQL could not be reached (and no offline grace covered the request): what the
    /// client is told, without the server's address.
    StoreDown(String),
}

/// Where the shared books are kept: the SQLite ledger file, or team mode's PostgreSQL.
enum Store {
    Sqlite(Mutex<Connection>),
    Postgres(crate::ledger::postgres::Handle),
}

/// A reservation granted: the standings after it, and the claim on this process's offline
/// grace when PostgreSQL could not be reached and the grace covered the request instead.
#[derive(Debug, Default)]
pub struct Granted {
    pub standings: Vec<Standing>,
    pub grace: Option<Reservation>,
}

pub struct SharedBudget {
    store: Store,
    daily_usd: Option<f64>,
    weekly_usd: Option<f64>,
    monthly_usd: Option<f64>,
    windows: Vec<WindowLimit>,
    utc_offset_s: Option<i32>,
    count_subscription: bool,
    /// How long a PostgreSQL reservation holds if never settled.
    reservation_expiry_ms: i64,
    /// What this process may spend while PostgreSQL is down (`budget.offline_grace_usd`).
    grace: Option<SessionBudget>,
    /// Limits of the daemon's client keys (daily, weekly, rolling), by key name.
    key_budgets: RwLock<HashMap<String, ProjectBudget>>,
    /// The project this process's requests are charged to, when it has limits.
    project: RwLock<Option<Payer>>,
}

impl SharedBudget {
    /// None when no daily or monthly limit is configured and `always` is false (the daemon
    /// passes true: its client keys may bring budgets of their own). The books are kept in
    /// `ledger`'s file, or in its PostgreSQL database.
    pub fn open(
        ledger: &Ledger,
        config: &BudgetConfig,
        always: bool,
    ) -> Result<Option<Self>, LedgerError> {
        match (ledger.postgres(), ledger.path()) {
            (Some(pg), _) => Ok(Self::with_store(
                Store::Postgres(pg.clone()),
                config,
                always,
            )),
            (None, Some(path)) => Self::open_file(path, config, always),
            (None, None) => Ok(None),
        }
    }

    /// [`Self::open`] on a SQLite ledger file (`smartproxy budget`, which reads no other).
    pub fn open_file(
        path: &Path,
        config: &BudgetConfig,
        always: bool,
    ) -> Result<Option<Self>, LedgerError> {
        if !has_limits(config) && !always {
            return Ok(None);
        }
        let conn = crate::ledger::open_connection(path)?;
        Ok(Self::with_store(
            Store::Sqlite(Mutex::new(conn)),
            config,
            always,
        ))
    }

    fn with_store(store: Store, config: &BudgetConfig, always: bool) -> Option<Self> {
        if !has_limits(config) && !always {
            return None;
        }
        Some(Self {
            store,
            daily_usd: config.daily_usd,
            weekly_usd: config.weekly_usd,
            monthly_usd: config.monthly_usd,
            windows: config.windows.clone(),
            utc_offset_s: config.utc_offset_s,
            count_subscription: config.count_subscription,
            reservation_expiry_ms: i64::try_from(config.reservation_expiry.as_millis())
                .unwrap_or(i64::MAX),
            grace: config
                .offline_grace_usd
                .map(|g| SessionBudget::new(Some(g))),
            key_budgets: RwLock::default(),
            project: RwLock::default(),
        })
    }

    /// Sets the project this process's requests are charged to, with its limits from
    /// `budget.projects` (at start-up, and on the daemon's reload). A project without limits
    /// is charged nothing.
    pub fn set_project(&self, project: Option<&str>, budgets: &BTreeMap<String, ProjectBudget>) {
        let payer = project.and_then(|name| {
            let b = budgets.get(name)?;
            Some(Payer {
                holder: Holder::Project,
                name: name.to_owned(),
                daily_usd: b.daily_usd,
                monthly_usd: b.monthly_usd,
                weekly_usd: b.weekly_usd,
                windows: b.windows.clone(),
            })
        });
        *self
            .project
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = payer;
    }

    /// Replaces the per-key limits (at start-up and on reload).
    pub fn set_key_budgets(&self, budgets: HashMap<String, ProjectBudget>) {
        *self
            .key_budgets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = budgets;
    }

    /// The limits a request of client key `key` is held to, each with the name of its counter
    /// in PostgreSQL: the process-wide ones, the config's limits of `key` (daily, weekly,
    /// rolling), its project's, and the limits of its `payers` (a team key's own, its user's, its team's). A
    /// scope named twice (a config key and a ledger key of one name) counts once, the
    /// ledger's limit winning.
    fn scoped_limits(
        &self,
        now_ms: i64,
        key: Option<&str>,
        payers: &[Payer],
    ) -> Vec<(Limit, String)> {
        let since = |period| policy::period_start_ms(period, now_ms, self.utc_offset_s);
        let limit = |name, limit_usd, period: Period, payer: Option<&Payer>| Limit {
            name,
            limit_usd,
            since_ms: since(period),
            window_ms: period.window_ms(),
            key: payer
                .filter(|p| p.holder == Holder::Key)
                .map(|p| p.name.clone()),
            project: payer
                .filter(|p| p.holder == Holder::Project)
                .map(|p| p.name.clone()),
            count_subscription: self.count_subscription,
        };
        let mut limits: Vec<(Limit, String)> = Vec::new();
        for (period, cap) in periods(
            self.daily_usd,
            self.weekly_usd,
            self.monthly_usd,
            &self.windows,
        ) {
            if let Some(cap) = cap {
                limits.push((
                    limit(period.name(), cap, period, None),
                    scopes::counter_name(None, period),
                ));
            }
        }
        let project = self
            .project
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // The config's limits of `key`, held like a project's; after the ledger's payers, so a
        // ledger key's limit of one period wins over the config's.
        let own = key.and_then(|key| {
            let budgets = self
                .key_budgets
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let b = budgets.get(key)?;
            Some(Payer {
                holder: Holder::Key,
                name: key.to_owned(),
                daily_usd: b.daily_usd,
                monthly_usd: b.monthly_usd,
                weekly_usd: b.weekly_usd,
                windows: b.windows.clone(),
            })
        });
        for payer in payers.iter().chain(project.as_ref()).chain(own.as_ref()) {
            for (period, cap) in periods(
                payer.daily_usd,
                payer.weekly_usd,
                payer.monthly_usd,
                &payer.windows,
            ) {
                let Some(cap) = cap else { continue };
                let counter = scopes::counter_name(Some((payer.holder, &payer.name)), period);
                if limits.iter().all(|(_, c)| *c != counter) {
                    limits.push((
                        limit(payer.holder.limit_name(period), cap, period, Some(payer)),
                        counter,
                    ));
                }
            }
        }
        limits
    }

    /// The limits a request of client key `key` (charged to `payers`) is held to.
    pub fn limits(&self, now_ms: i64, key: Option<&str>, payers: &[Payer]) -> Vec<Limit> {
        self.scoped_limits(now_ms, key, payers)
            .into_iter()
            .map(|(limit, _)| limit)
            .collect()
    }

    /// Reserves `estimate_usd` for request `id`, or says which limit refuses it. Books that
    /// cannot be read within `wait` refuse too (a budget is never skipped), unless PostgreSQL
    /// is down and the offline grace covers the request.
    pub async fn reserve(
        self: &Arc<Self>,
        id: &str,
        key: Option<&str>,
        payers: &[Payer],
        estimate_usd: f64,
        now_ms: i64,
        wait: Duration,
    ) -> Result<Granted, Denied> {
        let pg = match &self.store {
            Store::Postgres(pg) => pg.clone(),
            Store::Sqlite(_) => {
                let (shared, id, key) = (Arc::clone(self), id.to_owned(), key.map(str::to_owned));
                let deadline = Instant::now() + wait;
                // A short SQLite transaction, off the runtime, that waits for a busy ledger
                // until the deadline and no longer.
                let standings = tokio::task::spawn_blocking(move || {
                    shared.reserve_sqlite(&id, key.as_deref(), estimate_usd, now_ms, deadline)
                })
                .await
                .map_err(|e| Denied::Unavailable(format!("budget check failed: {e}")))??;
                return Ok(Granted {
                    standings,
                    grace: None,
                });
            }
        };
        let scoped = self.scoped_limits(now_ms, key, payers);
        if scoped.is_empty() {
            return Ok(Granted::default());
        }
        let scopes: Vec<Scope> = scoped.iter().map(scope_of).collect();
        let limits: Vec<Limit> = scoped.into_iter().map(|(limit, _)| limit).collect();
        let expires_ms = now_ms.saturating_add(self.reservation_expiry_ms);
        let admitted = pg
            .admit_budget(
                scopes.clone(),
                id.to_owned(),
                estimate_usd,
                now_ms,
                expires_ms,
                wait,
            )
            .await;
        match admitted {
            Ok(Admit::Granted(counters)) => Ok(Granted {
                standings: limits.iter().zip(counters).map(standing_of).collect(),
                grace: None,
            }),
            Ok(Admit::Refused(counter)) => {
                let name = limits
                    .iter()
                    .zip(&scopes)
                    .find(|(_, s)| s.scope == counter.scope)
                    .map_or("daily", |(l, _)| l.name);
                let window_ms = scopes
                    .iter()
                    .find(|s| s.scope == counter.scope)
                    .and_then(|s| s.window_ms);
                let need =
                    counter.spent_usd + counter.reserved_usd + estimate_usd - counter.cap_usd;
                let frees_at_ms = window_ms.and_then(|every_ms| {
                    window::frees_at_from_buckets(&counter.buckets, every_ms, need.max(1e-9))
                });
                Err(Denied::Refused(Refusal {
                    budget: name,
                    limit_usd: counter.cap_usd,
                    spent_usd: counter.spent_usd,
                    reserved_usd: counter.reserved_usd,
                    estimate_usd,
                    window_ms,
                    frees_at_ms,
                    utc_offset_s: self.utc_offset_s,
                }))
            }
            Err(err) => {
                // The detail (the server's address, the driver's words) goes to the log; the
                // client is told what happened and what to do.
                let detail = err.to_string();
                let Some(grace) = &self.grace else {
                    tracing::warn!(%detail, "shared budget unreachable; request refused");
                    return Err(Denied::StoreDown("PostgreSQL did not answer".to_owned()));
                };
                match grace.reserve(estimate_usd) {
                    Ok(reservation) => {
                        tracing::warn!(%detail, "shared budget unreachable; request served on the offline grace");
                        Ok(Granted {
                            standings: Vec::new(),
                            grace: Some(reservation),
                        })
                    }
                    Err(_) => {
                        tracing::warn!(%detail, "shared budget unreachable and the offline grace used up; request refused");
                        Err(Denied::StoreDown(format!(
                            "PostgreSQL did not answer, and this process's offline grace \
                             (budget.offline_grace_usd ${:.2}) is used up",
                            grace.limit_usd().unwrap_or(0.0)
                        )))
                    }
                }
            }
        }
    }

    /// The SQLite side of [`Self::reserve`]. Blocking.
    fn reserve_sqlite(
        &self,
        id: &str,
        key: Option<&str>,
        estimate_usd: f64,
        now_ms: i64,
        deadline: Instant,
    ) -> Result<Vec<Standing>, Denied> {
        let limits = self.limits(now_ms, key, &[]);
        if limits.is_empty() {
            return Ok(Vec::new());
        }
        let Store::Sqlite(conn) = &self.store else {
            return Ok(Vec::new());
        };
        let mut conn = conn
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
                window_ms: s.window_ms,
                frees_at_ms: s.frees_at_ms,
                utc_offset_s: self.utc_offset_s,
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
    pub fn applies(&self, now_ms: i64, key: Option<&str>, payers: &[Payer]) -> bool {
        !self.scoped_limits(now_ms, key, payers).is_empty()
    }

    /// Where the daily and monthly limits stand. Blocking: run it off the async threads.
    pub fn standings(&self, now_ms: i64) -> Vec<Standing> {
        let scoped = self.scoped_limits(now_ms, None, &[]);
        let limits: Vec<Limit> = scoped.iter().map(|(l, _)| l.clone()).collect();
        match &self.store {
            Store::Sqlite(conn) => {
                let conn = conn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                store::standings(&conn, &limits, now_ms).unwrap_or_default()
            }
            Store::Postgres(pg) => {
                match pg.budget_counters(scoped.iter().map(scope_of).collect()) {
                    Ok(counters) => limits.iter().zip(counters).map(standing_of).collect(),
                    Err(err) => {
                        tracing::warn!(%err, "shared budget standings not read");
                        Vec::new()
                    }
                }
            }
        }
    }
}

/// Whether `config` sets any shared limit (else a proxy keeps no shared books).
fn has_limits(config: &BudgetConfig) -> bool {
    config.daily_usd.is_some()
        || config.weekly_usd.is_some()
        || config.monthly_usd.is_some()
        || !config.windows.is_empty()
        || !config.projects.is_empty()
}

/// A scope's limits by period: day, week, month, then each rolling window.
fn periods(
    daily: Option<f64>,
    weekly: Option<f64>,
    monthly: Option<f64>,
    windows: &[WindowLimit],
) -> Vec<(Period, Option<f64>)> {
    let mut out = vec![
        (Period::Day, daily),
        (Period::Week, weekly),
        (Period::Month, monthly),
    ];
    out.extend(
        windows
            .iter()
            .map(|w| (Period::Window(w.every_ms), Some(w.usd))),
    );
    out
}

/// A limit's counter in PostgreSQL (named by `scopes::counter_name`), in the period that began
/// at its `since_ms`; a rolling window's is the bucket holding now (`since_ms` + its length),
/// counted with the buckets back to the one holding `since_ms`.
fn scope_of((limit, counter): &(Limit, String)) -> Scope {
    match limit.window_ms {
        Some(every_ms) => {
            let bucket = window::bucket_ms(every_ms);
            let now_ms = limit.since_ms + every_ms;
            Scope {
                scope: counter.clone(),
                period_ms: window::bucket_start(now_ms, bucket),
                from_ms: window::first_bucket(now_ms, every_ms, bucket),
                cap_usd: limit.limit_usd,
                window_ms: Some(every_ms),
            }
        }
        None => Scope {
            scope: counter.clone(),
            period_ms: limit.since_ms,
            from_ms: limit.since_ms,
            cap_usd: limit.limit_usd,
            window_ms: None,
        },
    }
}

fn standing_of((limit, counter): (&Limit, Counter)) -> Standing {
    Standing {
        name: limit.name,
        limit_usd: limit.limit_usd,
        spent_usd: counter.spent_usd,
        reserved_usd: counter.reserved_usd,
        window_ms: limit.window_ms,
        // A window frees up as its oldest spend ages out.
        frees_at_ms: limit
            .window_ms
            .and_then(|every_ms| window::frees_at_from_buckets(&counter.buckets, every_ms, 1e-9)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn payer(holder: Holder, name: &str, daily: Option<f64>, monthly: Option<f64>) -> Payer {
        Payer {
            holder,
            name: name.to_owned(),
            daily_usd: daily,
            monthly_usd: monthly,
            weekly_usd: None,
            windows: Vec::new(),
        }
    }

    /// A team key's request is held to the process-wide limits, then each payer's; a config
    /// key budget of the same name as a ledger key's daily limit counts once (the ledger's).
    #[test]
    fn a_team_keys_request_is_held_to_every_scope_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = BudgetConfig {
            daily_usd: Some(10.0),
            utc_offset_s: Some(0),
            ..BudgetConfig::default()
        };
        let shared = SharedBudget::open_file(&dir.path().join("l.db"), &config, true)
            .unwrap()
            .unwrap();
        let daily = |usd| ProjectBudget {
            daily_usd: Some(usd),
            ..ProjectBudget::default()
        };
        shared.set_key_budgets(HashMap::from([("ci".to_owned(), daily(1.0))]));
        let payers = [
            payer(Holder::Key, "ci", Some(2.0), Some(5.0)),
            payer(Holder::User, "ana", Some(3.0), None),
            payer(Holder::Team, "search", None, None),
        ];
        let now = 1_796_619_600_000; // 2026-12-07T05:00:00Z
        let got: Vec<(&str, f64, String)> = shared
            .scoped_limits(now, Some("ci"), &payers)
            .into_iter()
            .map(|(l, c)| (l.name, l.limit_usd, c))
            .collect();
        let want = [
            ("daily", 10.0, "daily"),
            ("key daily", 2.0, "key:ci"),
            ("key monthly", 5.0, "monthly:key:ci"),
            ("user daily", 3.0, "user:ana"),
        ];
        let want: Vec<(&str, f64, String)> = want
            .iter()
            .map(|(n, c, s)| (*n, *c, (*s).to_owned()))
            .collect();
        assert_eq!(got, want);
        // A config key alone keeps its daily budget; no key, no payers: the daily limit only.
        assert_eq!(shared.limits(now, Some("ci"), &[]).len(), 2);
        assert_eq!(shared.limits(now, None, &[]).len(), 1);
    }
}
