//! Where every budget stands, for `smartproxy budget` and the web's `/budgets`: each scope
//! (process-wide, per project, per client key, and on a team ledger per user and team) with its cap, what
//! was spent and is reserved this day, week or month or in its rolling window, what is left, and when it runs out at the rate
//! spent so far. The same lines from a SQLite ledger (its `spend` roll-up and reservations)
//! and from PostgreSQL's counters.

use serde::Serialize;

use super::policy::{Period, period_start_ms};
use super::scopes;
use super::store::{self, Limit};
use super::window;
use crate::config::{BudgetConfig, ProjectBudget};
use crate::ledger::postgres::budget::Scope;
use crate::ledger::postgres::query::Reader as PgReader;
use crate::ledger::reader::{LedgerReader, ReadError};

/// One scope in one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeStanding {
    /// `all`, `project:NAME`, `key:NAME`, `user:NAME` or `team:NAME`.
    pub scope: String,
    #[serde(serialize_with = "period_word")]
    pub period: Period,
    pub period_start_ms: i64,
    pub cap_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub left_usd: f64,
    /// When it runs out at the rate spent so far; `None`: not this period (a rolling window:
    /// never forecast, see `frees_at_ms`).
    pub runs_out_ms: Option<i64>,
    /// A rolling window's length in ms (`None`: a calendar period).
    pub every_ms: Option<i64>,
    /// A rolling window's: when its oldest spend ages out and frees up room (`None`: nothing
    /// spent in it).
    pub frees_at_ms: Option<i64>,
}

/// A period as people say it: `day`, `week`, `month` or `rolling 5h`.
pub fn period_name(period: Period) -> String {
    match period {
        Period::Day => "day".to_owned(),
        Period::Week => "week".to_owned(),
        Period::Month => "month".to_owned(),
        Period::Window(every_ms) => format!("rolling {}", super::window::every_text(every_ms)),
    }
}

fn period_word<S: serde::Serializer>(period: &Period, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&period_name(*period))
}

/// Days, then weeks, months and windows, shortest first.
fn period_rank(period: Period) -> (u8, i64) {
    match period {
        Period::Day => (0, 0),
        Period::Week => (1, 0),
        Period::Month => (2, 0),
        Period::Window(every_ms) => (3, every_ms),
    }
}

/// What the standings are read against: the budget config and the config's client keys'
/// limits, by name.
pub struct Limits<'a> {
    pub budget: &'a BudgetConfig,
    pub key_budgets: &'a [(String, ProjectBudget)],
}

/// Every scope's standing at `now_ms`, process-wide first, days before months. No reader:
/// nothing is recorded yet (no ledger file), so the configured limits stand untouched.
pub fn read(
    reader: Option<&LedgerReader>,
    limits: &Limits<'_>,
    now_ms: i64,
) -> Result<Vec<ScopeStanding>, ReadError> {
    let offset = limits.budget.utc_offset_s;
    let start = |period| period_start_ms(period, now_ms, offset);
    let mut lines = match reader {
        None => configured(limits, &start),
        Some(LedgerReader::Sqlite(conn)) => from_sqlite(conn, limits, now_ms, &start)?,
        Some(LedgerReader::Postgres(pg)) => from_postgres(pg, limits, now_ms, &start)?,
    };
    for line in &mut lines {
        line.left_usd = (line.cap_usd - line.spent_usd - line.reserved_usd).max(0.0);
        if line.every_ms.is_some() {
            continue;
        }
        line.runs_out_ms = scopes::runs_out_ms(
            line.cap_usd,
            line.spent_usd,
            line.reserved_usd,
            line.period_start_ms,
            next_start(line.period, line.period_start_ms, offset),
            now_ms,
        );
    }
    lines.sort_by(|a, b| {
        (period_rank(a.period), a.scope != "all", &a.scope).cmp(&(
            period_rank(b.period),
            b.scope != "all",
            &b.scope,
        ))
    });
    Ok(lines)
}

/// The next period's start: past the longest day (25 h), week or month (31 days), and back.
fn next_start(period: Period, start_ms: i64, offset: Option<i32>) -> i64 {
    let past = match period {
        Period::Day => 26 * 3_600_000,
        Period::Week => 7 * 86_400_000 + 2 * 3_600_000,
        Period::Month => 32 * 86_400_000,
        Period::Window(every_ms) => return start_ms + every_ms,
    };
    period_start_ms(period, start_ms + past, offset)
}

fn line(scope: String, period: Period, start_ms: i64, cap_usd: f64) -> ScopeStanding {
    ScopeStanding {
        scope,
        period,
        period_start_ms: start_ms,
        cap_usd,
        spent_usd: 0.0,
        reserved_usd: 0.0,
        left_usd: 0.0,
        runs_out_ms: None,
        every_ms: period.window_ms(),
        frees_at_ms: None,
    }
}

/// A scope's limits by period: day, week, month, then each rolling window.
fn periods(
    daily: Option<f64>,
    weekly: Option<f64>,
    monthly: Option<f64>,
    windows: &[crate::config::WindowLimit],
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

/// The config's limits: process-wide daily, weekly, monthly and rolling, each project's, and
/// each client key's.
fn configured(limits: &Limits<'_>, start: &dyn Fn(Period) -> i64) -> Vec<ScopeStanding> {
    let mut lines = Vec::new();
    let b = limits.budget;
    for (period, cap) in periods(b.daily_usd, b.weekly_usd, b.monthly_usd, &b.windows) {
        lines.extend(cap.map(|cap| line("all".to_owned(), period, start(period), cap)));
    }
    let projects = limits
        .budget
        .projects
        .iter()
        .map(|(n, b)| ("project", n, b));
    let keys = limits.key_budgets.iter().map(|(n, b)| ("key", n, b));
    for (holder, name, budget) in projects.chain(keys) {
        for (period, cap) in periods(
            budget.daily_usd,
            budget.weekly_usd,
            budget.monthly_usd,
            &budget.windows,
        ) {
            let cap = cap.filter(|cap| *cap > 0.0);
            lines.extend(
                cap.map(|cap| line(format!("{holder}:{name}"), period, start(period), cap)),
            );
        }
    }
    lines
}

/// Puts `limit` in `lines`, or sets the cap of the line of its scope and period (the later
/// source wins, as a proxy's limits do).
fn set_limit(lines: &mut Vec<ScopeStanding>, limit: ScopeStanding) {
    match lines
        .iter_mut()
        .find(|l| l.scope == limit.scope && l.period == limit.period)
    {
        Some(line) => line.cap_usd = limit.cap_usd,
        None => lines.push(limit),
    }
}

/// A SQLite ledger: the configured limits and its keys' (`smartproxy keys create
/// --budget-daily`), counted from its rows and reservations.
fn from_sqlite(
    conn: &rusqlite::Connection,
    limits: &Limits<'_>,
    now_ms: i64,
    start: &dyn Fn(Period) -> i64,
) -> Result<Vec<ScopeStanding>, ReadError> {
    let mut lines = configured(limits, start);
    for (name, cap) in crate::ledger::keys::active_budgets(conn)? {
        let scope = format!("key:{name}");
        set_limit(
            &mut lines,
            line(scope, Period::Day, start(Period::Day), cap),
        );
    }
    let checks: Vec<Limit> = lines
        .iter()
        .map(|l| Limit {
            name: "",
            limit_usd: l.cap_usd,
            since_ms: l.period_start_ms,
            key: l.scope.strip_prefix("key:").map(str::to_owned),
            project: l.scope.strip_prefix("project:").map(str::to_owned),
            count_subscription: limits.budget.count_subscription,
            window_ms: l.every_ms,
        })
        .collect();
    for (line, standing) in lines
        .iter_mut()
        .zip(store::standings(conn, &checks, now_ms)?)
    {
        line.spent_usd = standing.spent_usd;
        line.reserved_usd = standing.reserved_usd;
        line.frees_at_ms = standing.frees_at_ms;
    }
    Ok(lines)
}

/// A team ledger: every counter of this day and month, and every limit set in the config or
/// the ledger (a limit shows before a request made its counter, or when all were refused).
fn from_postgres(
    reader: &PgReader,
    limits: &Limits<'_>,
    now_ms: i64,
    start: &dyn Fn(Period) -> i64,
) -> Result<Vec<ScopeStanding>, ReadError> {
    let counters = reader.budget_counters(&[
        start(Period::Day),
        start(Period::Week),
        start(Period::Month),
    ])?;
    let mut lines: Vec<ScopeStanding> = counters
        .into_iter()
        .filter_map(|row| {
            let (scope, period) = scopes::parse_counter(&row.scope)?;
            // A day and a month that start together (the 1st) are told apart by the name;
            // windows' buckets are read below.
            (period.window_ms().is_none() && row.period_ms == start(period)).then(|| {
                let mut l = line(scope, period, row.period_ms, row.counter.cap_usd);
                l.spent_usd = row.counter.spent_usd;
                l.reserved_usd = row.counter.reserved_usd;
                l
            })
        })
        .collect();
    let mut set = configured(limits, start);
    for limit in reader.ledger_limits()? {
        let scope = format!("{}:{}", limit.holder, limit.name);
        for (period, cap) in periods(
            limit.daily_usd,
            limit.weekly_usd,
            limit.monthly_usd,
            &limit.windows,
        ) {
            if let Some(cap) = cap {
                set_limit(&mut set, line(scope.clone(), period, start(period), cap));
            }
        }
    }
    let (windows, set): (Vec<ScopeStanding>, Vec<ScopeStanding>) =
        set.into_iter().partition(|l| l.every_ms.is_some());
    for limit in set {
        // The limit as set now (a counter keeps the cap of its last admission).
        set_limit(&mut lines, limit);
    }
    lines.extend(window_lines(reader, windows, now_ms)?);
    Ok(lines)
}

/// The configured rolling windows on a team ledger, each its buckets added up.
fn window_lines(
    reader: &PgReader,
    mut windows: Vec<ScopeStanding>,
    now_ms: i64,
) -> Result<Vec<ScopeStanding>, ReadError> {
    let asked: Vec<Scope> = windows
        .iter()
        .filter_map(|l| {
            let every_ms = l.every_ms?;
            let holder = match l.scope.split_once(':') {
                Some(("project", name)) => Some((scopes::Holder::Project, name)),
                Some(("key", name)) => Some((scopes::Holder::Key, name)),
                Some(("user", name)) => Some((scopes::Holder::User, name)),
                Some(("team", name)) => Some((scopes::Holder::Team, name)),
                _ => None,
            };
            let bucket = window::bucket_ms(every_ms);
            Some(Scope {
                scope: scopes::counter_name(holder, l.period),
                period_ms: window::bucket_start(now_ms, bucket),
                from_ms: window::first_bucket(now_ms, every_ms, bucket),
                cap_usd: l.cap_usd,
                window_ms: Some(every_ms),
            })
        })
        .collect();
    for (line, counter) in windows.iter_mut().zip(reader.window_counters(asked)?) {
        line.spent_usd = counter.spent_usd;
        line.reserved_usd = counter.reserved_usd;
        line.frees_at_ms = line
            .every_ms
            .and_then(|every_ms| window::frees_at_from_buckets(&counter.buckets, every_ms, 1e-9));
    }
    Ok(windows)
}
