//! Shared budgets in a PostgreSQL ledger: one counter row per (scope, period) with its cap, what
//! was spent and what requests in flight reserve, and a row per reservation.
//!
//! Admission is one conditional upsert per scope (`... DO UPDATE SET reserved = reserved + x
//! WHERE spent + reserved + x <= cap RETURNING`), every scope of a request in one statement
//! (the function `smartproxy_admit`, so no row lock waits on a client's round trip): all or none, and no second counter anywhere else, so N daemons cannot together take more
//! than the cap plus what is in flight. Reservations expire; whoever admits next releases the
//! expired ones in the same transaction first, so a crashed process's claims come back. The
//! ledger writer settles a reservation in the transaction that writes its request's row
//! (`settle`): spent += cost, reserved -= amount, the reservation row deleted; a retried batch
//! finds no reservation and counts nothing twice.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::Transaction;
use tokio_postgres::error::SqlState;

use super::{Handle, db_error, pool_error};
use crate::ledger::{LedgerError, RequestRecord};

/// How often a transaction that lost a deadlock or serialization race is tried again.
const RETRIES: usize = 3;

/// How long a released (expired, never settled) reservation is kept so that a late settle
/// still counts what the request cost; after that it is deleted.
const KEEP_RELEASED_MS: i64 = 24 * 60 * 60 * 1000;

/// One budget a request is held to: its scope (`daily`, `monthly`, `key:<name>`, later
/// `user:`/`team:`/`project:`), the start of its period and its cap.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub scope: String,
    pub period_ms: i64,
    /// The first counter counted: `period_ms` itself, or a rolling window's oldest bucket
    /// (its counters from `from_ms` to `period_ms` add up to the window).
    pub from_ms: i64,
    pub cap_usd: f64,
    /// A rolling window's length (its counters are buckets of `budget::window::bucket_ms`).
    pub window_ms: Option<i64>,
}

/// Where a scope's counter stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    pub scope: String,
    pub cap_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    /// A rolling window's buckets (start, spent and reserved USD), oldest first, from which
    /// `budget::window` tells when its spend frees up; empty for a calendar scope.
    pub buckets: Vec<(i64, f64)>,
}

/// The outcome of an admission.
#[derive(Debug, Clone, PartialEq)]
pub enum Admit {
    /// Reserved under the request's id; the counters after the reservation, in the order asked.
    Granted(Vec<Counter>),
    /// Refused by this scope; nothing reserved anywhere.
    Refused(Counter),
}

/// US dollars as integer nano-dollars, the unit every PostgreSQL amount is kept in.
pub fn nusd(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

fn usd(nusd: i64) -> f64 {
    nusd as f64 / 1e9
}

fn retryable(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

/// The admission: releases expired reservations (skipping any another transaction holds) and
/// forgets released ones older than `$7` (kept so that a late settle still counts its cost),
/// then reserves `$5` under `$1` in every scope or in none. A new counter starts with this
/// reservation when it fits the cap at all; an existing one takes it only when spent +
/// reserved + amount still fits (and something is left: an unpriced request reserving 0 is
/// refused once the cap is used up, as on SQLite). A row per scope, in the order sent.
const ADMIT: &str = "SELECT o_ord, o_granted, o_spent, o_reserved
     FROM smartproxy_admit($1, $2, $3, $4, $5, $6, $7, $8, $9) ORDER BY o_ord";

/// Reserves `amount_usd` under `id` in every scope of `scopes`, or in none.
pub async fn admit(
    client: &mut deadpool_postgres::Object,
    scopes: &[Scope],
    id: &str,
    amount_usd: f64,
    now_ms: i64,
    expires_ms: i64,
) -> Result<Admit, tokio_postgres::Error> {
    let mut attempt = 0;
    loop {
        match admit_once(client, scopes, id, amount_usd, now_ms, expires_ms).await {
            Err(err) if retryable(&err) && attempt < RETRIES => attempt += 1,
            other => return other,
        }
    }
}

async fn admit_once(
    client: &mut deadpool_postgres::Object,
    scopes: &[Scope],
    id: &str,
    amount_usd: f64,
    now_ms: i64,
    expires_ms: i64,
) -> Result<Admit, tokio_postgres::Error> {
    let amount = nusd(amount_usd);
    // Counters are always locked in the same order, so two admissions never deadlock.
    let mut order: Vec<usize> = (0..scopes.len()).collect();
    order.sort_by(|&a, &b| {
        (&scopes[a].scope, scopes[a].period_ms).cmp(&(&scopes[b].scope, scopes[b].period_ms))
    });
    let names: Vec<&str> = order.iter().map(|&i| scopes[i].scope.as_str()).collect();
    let periods: Vec<i64> = order.iter().map(|&i| scopes[i].period_ms).collect();
    let from: Vec<i64> = order.iter().map(|&i| scopes[i].from_ms).collect();
    let caps: Vec<i64> = order.iter().map(|&i| nusd(scopes[i].cap_usd)).collect();
    let forget_before = now_ms - KEEP_RELEASED_MS;
    // One statement (the function `smartproxy_admit`, see the migrations) in its own implicit
    // transaction: one round trip, and the counters' row locks are held only while PostgreSQL
    // runs it and commits, never while it waits on this process.
    let admit = client.prepare_cached(ADMIT).await?;
    let rows = client
        .query(
            &admit,
            &[
                &id,
                &names,
                &periods,
                &from,
                &caps,
                &amount,
                &now_ms,
                &forget_before,
                &expires_ms,
            ],
        )
        .await?;
    let mut after = vec![None; scopes.len()];
    for (&i, row) in order.iter().zip(&rows) {
        let mut counter = Counter {
            scope: scopes[i].scope.clone(),
            cap_usd: scopes[i].cap_usd,
            spent_usd: usd(row.get(2)),
            reserved_usd: usd(row.get(3)),
            buckets: Vec::new(),
        };
        if !row.get::<_, bool>(1) {
            counter.buckets = buckets(client, &scopes[i]).await?;
            return Ok(Admit::Refused(counter));
        }
        after[i] = Some(counter);
    }
    Ok(Admit::Granted(after.into_iter().flatten().collect()))
}

/// A rolling window's buckets (start, spent and reserved USD), oldest first; none for a
/// calendar scope.
async fn buckets(
    client: &tokio_postgres::Client,
    scope: &Scope,
) -> Result<Vec<(i64, f64)>, tokio_postgres::Error> {
    if scope.window_ms.is_none() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT period_ms, spent_nusd + reserved_nusd FROM budget_counters
             WHERE scope = $1 AND period_ms >= $2 AND period_ms <= $3 ORDER BY period_ms",
            &[&scope.scope, &scope.from_ms, &scope.period_ms],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), usd(r.get(1)))).collect())
}

/// Where each of `scopes` stands (a counter not created yet: nothing spent or reserved); a
/// rolling window adds up its buckets.
pub async fn read(
    client: &tokio_postgres::Client,
    scopes: &[Scope],
) -> Result<Vec<Counter>, tokio_postgres::Error> {
    let mut counters = Vec::with_capacity(scopes.len());
    for s in scopes {
        let row = client
            .query_one(
                "SELECT coalesce(sum(spent_nusd), 0)::bigint, coalesce(sum(reserved_nusd), 0)::bigint
                 FROM budget_counters WHERE scope = $1 AND period_ms >= $2 AND period_ms <= $3",
                &[&s.scope, &s.from_ms, &s.period_ms],
            )
            .await?;
        counters.push(Counter {
            scope: s.scope.clone(),
            cap_usd: s.cap_usd,
            spent_usd: usd(row.get(0)),
            reserved_usd: usd(row.get(1)),
            buckets: buckets(client, s).await?,
        });
    }
    Ok(counters)
}

/// Settles the reservations of `requests` to their real cost, in the writer's transaction
/// that writes their rows: spent += cost, reserved -= amount (unless the reservation had
/// expired and was released already), the reservation deleted. Idempotent: a settle (or a
/// whole batch) tried again finds no reservation and changes nothing.
pub async fn settle(
    tx: &Transaction<'_>,
    requests: &[&RequestRecord],
) -> Result<(), tokio_postgres::Error> {
    let costs: BTreeMap<&str, i64> = requests
        .iter()
        .filter_map(|r| {
            Some((
                r.reservation_id.as_deref()?,
                nusd(r.cost_usd.unwrap_or(0.0)),
            ))
        })
        .collect();
    settle_costs(tx, &costs).await
}

/// [`settle`] of reservation ids and their costs in nano-dollars.
pub async fn settle_costs(
    tx: &Transaction<'_>,
    costs: &BTreeMap<&str, i64>,
) -> Result<(), tokio_postgres::Error> {
    if costs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = costs.keys().copied().collect();
    let rows = tx
        .query(
            "DELETE FROM budget_reservations WHERE id = ANY($1)
             RETURNING id, scopes, periods, amount_nusd, released",
            &[&ids],
        )
        .await?;
    // (spent, reserved) changes per counter, applied in one order (no deadlock with admissions).
    let mut deltas: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for row in rows {
        let id: String = row.get(0);
        let scopes: Vec<String> = row.get(1);
        let periods: Vec<i64> = row.get(2);
        let amount: i64 = row.get(3);
        let released: bool = row.get(4);
        let cost = costs.get(id.as_str()).copied().unwrap_or(0);
        for (scope, period) in scopes.into_iter().zip(periods) {
            let delta = deltas.entry((scope, period)).or_default();
            delta.0 += cost;
            if !released {
                delta.1 += amount;
            }
        }
    }
    for ((scope, period), (spent, reserved)) in deltas {
        tx.execute(
            "UPDATE budget_counters SET spent_nusd = spent_nusd + $3,
                 reserved_nusd = GREATEST(reserved_nusd - $4, 0)
             WHERE scope = $1 AND period_ms = $2",
            &[&scope, &period, &spent, &reserved],
        )
        .await?;
    }
    Ok(())
}

/// A counter as `smartproxy budget` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterRow {
    pub scope: String,
    pub period_ms: i64,
    pub counter: Counter,
}

/// A limit set in the ledger (a key's, a user's or a team's), as `smartproxy budget` lists it
/// before a request made its counter.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerLimit {
    /// `key`, `user` or `team`.
    pub holder: String,
    pub name: String,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub windows: Vec<crate::config::WindowLimit>,
}

impl super::query::Reader {
    /// The limits of the active keys, the users and the teams that have any.
    pub fn ledger_limits(&self) -> Result<Vec<LedgerLimit>, LedgerError> {
        let rows = self
            .runtime
            .block_on(self.client.query(
                "SELECT 'key', name, daily_nusd, monthly_nusd, weekly_nusd, window_limits
                     FROM client_keys WHERE revoked_ms IS NULL
                     AND num_nonnulls(daily_nusd, monthly_nusd, weekly_nusd, window_limits) > 0
                 UNION ALL SELECT 'user', name, daily_nusd, monthly_nusd, weekly_nusd,
                     window_limits FROM people
                     WHERE num_nonnulls(daily_nusd, monthly_nusd, weekly_nusd, window_limits) > 0
                 UNION ALL SELECT 'team', name, daily_nusd, monthly_nusd, weekly_nusd,
                     window_limits FROM teams
                     WHERE num_nonnulls(daily_nusd, monthly_nusd, weekly_nusd, window_limits) > 0",
                &[],
            ))
            .map_err(|e| db_error(&self.url, &e))?;
        Ok(rows
            .iter()
            .map(|r| LedgerLimit {
                holder: r.get(0),
                name: r.get(1),
                daily_usd: r.get::<_, Option<i64>>(2).map(usd),
                monthly_usd: r.get::<_, Option<i64>>(3).map(usd),
                weekly_usd: r.get::<_, Option<i64>>(4).map(usd),
                windows: super::keys::windows_from(r.get(5)),
            })
            .collect())
    }

    /// Where rolling windows `scopes` stand (their buckets added up), for `smartproxy budget`.
    pub fn window_counters(&self, scopes: Vec<Scope>) -> Result<Vec<Counter>, LedgerError> {
        self.runtime
            .block_on(read(&self.client, &scopes))
            .map_err(|e| db_error(&self.url, &e))
    }

    /// Every counter of the periods that start at `periods` (today's and this month's).
    pub fn budget_counters(&self, periods: &[i64]) -> Result<Vec<CounterRow>, LedgerError> {
        let rows = self
            .runtime
            .block_on(self.client.query(
                "SELECT scope, period_ms, cap_nusd, spent_nusd, reserved_nusd
                 FROM budget_counters WHERE period_ms = ANY($1) ORDER BY scope, period_ms",
                &[&periods],
            ))
            .map_err(|e| db_error(&self.url, &e))?;
        Ok(rows
            .iter()
            .map(|r| CounterRow {
                scope: r.get(0),
                period_ms: r.get(1),
                counter: Counter {
                    scope: r.get(0),
                    cap_usd: usd(r.get(2)),
                    spent_usd: usd(r.get(3)),
                    reserved_usd: usd(r.get(4)),
                    buckets: Vec::new(),
                },
            })
            .collect())
    }
}

impl Handle {
    /// Runs `f` on the ledger's runtime with a pooled connection, for callers on another
    /// runtime (the proxy's): the pool's connections live on the ledger's runtime.
    async fn on_ledger_runtime<T, F, Fut>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pool = self.pool.clone();
        let url = self.url.clone();
        // Not fire-and-forget: the caller awaits the answer (or gives up at its deadline, and
        // the task ends within the pool's own connect and wait timeouts).
        drop(self.runtime.spawn(async move {
            let result = match pool.get().await {
                Ok(client) => f(client).await.map_err(|e| db_error(&url, &e)),
                Err(e) => Err(pool_error(&url, e)),
            };
            let _ = tx.send(result);
        }));
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }

    /// [`admit`] on the ledger's runtime, given up after `wait`.
    pub async fn admit_budget(
        &self,
        scopes: Vec<Scope>,
        id: String,
        amount_usd: f64,
        now_ms: i64,
        expires_ms: i64,
        wait: Duration,
    ) -> Result<Admit, LedgerError> {
        let work = self.on_ledger_runtime(move |mut client| async move {
            admit(&mut client, &scopes, &id, amount_usd, now_ms, expires_ms).await
        });
        match tokio::time::timeout(wait, work).await {
            Ok(result) => result,
            Err(_) => Err(LedgerError::Postgres {
                url: self.url.clone(),
                detail: format!("no answer within {} ms", wait.as_millis()),
            }),
        }
    }

    /// Where `scopes` stand, for `/admin/budget` and `run`'s summary. Blocking.
    pub fn budget_counters(&self, scopes: Vec<Scope>) -> Result<Vec<Counter>, LedgerError> {
        self.block_on(move |client| async move { read(&client, &scopes).await })
    }
}
