//! `status`'s outlook: the burn rate ($/h over the last hour, or the scope's life if shorter),
//! the model in use (the newest request's) and how long the tightest budget lasts at that rate.
//! A few reads of the hourly roll-up: fast enough for a prompt.

use crate::budget::policy::{Period, period_start_ms};
use crate::budget::standings::{self, Limits, period_name};
use crate::config::BudgetConfig;
use crate::ledger::query::{Filter, Totals};
use crate::ledger::reader::LedgerReader;

const HOUR_MS: i64 = 3_600_000;
/// A rate over less than a minute says little: the window counts as a minute at least.
const MIN_WINDOW_MS: i64 = 60_000;

/// The budget that runs out first, and when at the current rate.
#[derive(Debug, serde::Serialize)]
pub(super) struct Tightest {
    /// `session`, `daily`, `weekly`, `monthly` or `rolling 5h`.
    pub budget: String,
    pub left_usd: f64,
    /// None when nothing is being spent (it lasts).
    pub hours_left: Option<f64>,
    /// A rolling window's: when its oldest spend ages out and frees up room.
    pub frees_at_ms: Option<i64>,
}

#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Outlook {
    pub burn_usd_per_hour: Option<f64>,
    pub model: Option<String>,
    pub tightest: Option<Tightest>,
}

/// What `status` looks at: a session (its id, start and own budget) or today.
pub(super) struct Scope<'a> {
    pub session_id: Option<&'a str>,
    pub started_ms: i64,
    pub session_left_usd: Option<f64>,
}

/// Spend that counts against the scope's budgets: a session's own budget counts its simulated
/// (mock) costs too, as `run --mock` does; the daily and monthly ones count real spending.
fn counted(totals: &Totals, session: bool) -> f64 {
    let spent = totals.known_cost().unwrap_or(0.0);
    if session {
        spent + totals.simulated_usd.unwrap_or(0.0)
    } else {
        spent
    }
}

pub(super) fn outlook(
    reader: &LedgerReader,
    scope: &Scope<'_>,
    budget: &BudgetConfig,
    now_ms: i64,
) -> anyhow::Result<Outlook> {
    let session = scope.session_id.map(str::to_owned);
    let from = scope.started_ms.max(now_ms - HOUR_MS).min(now_ms);
    let window = reader.totals(&Filter {
        session_id: session.clone(),
        since_ms: Some(from),
        until_ms: None,
    })?;
    let hours = (now_ms - from).max(MIN_WINDOW_MS) as f64 / HOUR_MS as f64;
    let burn = counted(&window, session.is_some()) / hours;
    let model = reader.last_model(&Filter {
        session_id: session.clone(),
        since_ms: session.is_none().then_some(scope.started_ms),
        until_ms: None,
    })?;
    let mut budgets: Vec<(String, f64, Option<i64>)> = Vec::new();
    budgets.extend(
        scope
            .session_left_usd
            .map(|left| ("session".to_owned(), left, None)),
    );
    for (period, limit) in [
        (Period::Day, budget.daily_usd),
        (Period::Week, budget.weekly_usd),
        (Period::Month, budget.monthly_usd),
    ] {
        let Some(limit) = limit else { continue };
        let spent = reader.totals(&Filter {
            session_id: None,
            since_ms: Some(period_start_ms(period, now_ms, budget.utc_offset_s)),
            until_ms: None,
        })?;
        budgets.push((
            period.name().to_owned(),
            (limit - counted(&spent, false)).max(0.0),
            None,
        ));
    }
    budgets.extend(windows(reader, budget, now_ms)?);
    let tightest =
        budgets
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, left, frees_at_ms)| Tightest {
                budget: name,
                left_usd: left,
                hours_left: (burn > 0.0).then(|| left / burn),
                frees_at_ms,
            });
    Ok(Outlook {
        burn_usd_per_hour: Some(burn),
        model,
        tightest,
    })
}

/// The process-wide rolling windows (`budget.windows`) as `budget` reads them: name, what is
/// left, when the oldest spend frees up.
fn windows(
    reader: &LedgerReader,
    budget: &BudgetConfig,
    now_ms: i64,
) -> anyhow::Result<Vec<(String, f64, Option<i64>)>> {
    if budget.windows.is_empty() {
        return Ok(Vec::new());
    }
    let only_windows = BudgetConfig {
        windows: budget.windows.clone(),
        utc_offset_s: budget.utc_offset_s,
        count_subscription: budget.count_subscription,
        ..BudgetConfig::default()
    };
    let limits = Limits {
        budget: &only_windows,
        key_budgets: &[],
    };
    Ok(standings::read(Some(reader), &limits, now_ms)?
        .into_iter()
        .filter(|l| l.scope == "all" && l.every_ms.is_some())
        .map(|l| (period_name(l.period), l.left_usd, l.frees_at_ms))
        .collect())
}

/// `$0.52/h`
pub(super) fn rate(usd_per_hour: f64) -> String {
    format!("{}/h", crate::format::money(Some(usd_per_hour)))
}

/// `3h10m`, `12m05s`, or `>99h` (a budget that outlasts any prompt's interest).
pub(super) fn hours(hours: f64) -> String {
    if hours > 99.0 {
        return ">99h".to_owned();
    }
    crate::format::duration((hours * HOUR_MS as f64) as i64)
}
