//! Budget decisions, pure: given a limit, what is spent, what is reserved by requests in flight
//! and what a new request is expected to cost, may it go? And when it may not, what then:
//! the output cap that still fits (`budget.on_exceed: fit`), a cheaper model, or a refusal.

use crate::config::OnExceed;

/// What a refused request is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// Which budget: `session`, `daily`, `monthly`.
    pub budget: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub estimate_usd: f64,
    /// A rolling window's length, and when enough of its spend ages out for this request.
    pub window_ms: Option<i64>,
    pub frees_at_ms: Option<i64>,
    /// The calendar `frees_at_ms` is told in (`None`: local time).
    pub utc_offset_s: Option<i32>,
}

/// Allows a request when the spent amount, everything reserved and its own estimate fit the
/// limit. A request is never refused because of an unknown price (estimate 0) unless the budget
/// is already used up.
pub fn decide(
    limit_usd: Option<f64>,
    spent_usd: f64,
    reserved_usd: f64,
    estimate_usd: f64,
) -> Result<(), Refusal> {
    let Some(limit_usd) = limit_usd else {
        return Ok(());
    };
    let committed = spent_usd + reserved_usd;
    if committed >= limit_usd || committed + estimate_usd > limit_usd {
        return Err(Refusal {
            budget: "session",
            limit_usd,
            spent_usd,
            reserved_usd,
            estimate_usd,
            window_ms: None,
            frees_at_ms: None,
            utc_offset_s: None,
        });
    }
    Ok(())
}

/// The shortest answer `fit` lowers a request to; below it the request is refused.
pub const MIN_FIT_TOKENS: u64 = 32;

/// Share of a budget after which responses carry a warning (and stderr says so once).
pub const WARN_AT: f64 = 0.8;

/// A request's cost as a function of its output cap, at its first target's prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The prompt alone.
    pub prompt_usd: f64,
    /// Each output token.
    pub per_output_usd: f64,
}

impl Estimate {
    /// The estimate from the cost of the request at no output and at a million output tokens
    /// (prices are linear in output tokens; a long-context tier depends on the prompt alone).
    pub fn from_costs(at_zero_usd: f64, at_a_million_usd: f64) -> Self {
        Self {
            prompt_usd: at_zero_usd,
            per_output_usd: (at_a_million_usd - at_zero_usd) / 1e6,
        }
    }

    pub fn usd(&self, output_cap: u64) -> f64 {
        self.prompt_usd + self.per_output_usd * output_cap as f64
    }

    /// The largest output cap the budget `refusal` reported room for.
    pub fn cap_within(&self, refusal: &Refusal) -> Option<u64> {
        let room = refusal.limit_usd - refusal.spent_usd - refusal.reserved_usd - self.prompt_usd;
        if self.per_output_usd <= 0.0 || room <= 0.0 {
            return None;
        }
        Some((room / self.per_output_usd).floor() as u64)
    }
}

/// What the config says to do when a reservation does not fit (`budget.on_exceed`).
#[derive(Debug, Clone, Copy)]
pub struct ExceedPolicy<'a> {
    pub on_exceed: OnExceed,
    pub downgrade_to: Option<&'a str>,
    /// The request was already sent to `downgrade_to`: from here it can only be fitted.
    pub downgraded: bool,
}

/// The next step after a refused reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Try again with this lower output cap.
    Fit(u64),
    /// Send the request to this model instead.
    Downgrade(&'a str),
    Refuse,
}

impl<'a> ExceedPolicy<'a> {
    /// What to do when `refusal` turned down a request estimated at `estimate` with output cap
    /// `cap`.
    pub fn next(&self, refusal: &Refusal, estimate: &Estimate, cap: u64) -> Step<'a> {
        if self.on_exceed == OnExceed::Refuse {
            return Step::Refuse;
        }
        if self.on_exceed == OnExceed::Downgrade
            && !self.downgraded
            && let Some(model) = self.downgrade_to
        {
            return Step::Downgrade(model);
        }
        match estimate.cap_within(refusal) {
            // Each step lowers the cap, so a race with other requests cannot loop.
            Some(lower) if lower >= MIN_FIT_TOKENS && lower < cap => Step::Fit(lower),
            _ => Step::Refuse,
        }
    }
}

/// The warning a response carries once budget `name` is mostly spent (reservations are not
/// spending: a fitted request reserves all the room there is).
pub fn mostly_spent(name: &str, spent_usd: f64, limit_usd: f64) -> Option<String> {
    (spent_usd >= WARN_AT * limit_usd).then(|| {
        format!(
            "{name} budget {:.0}% spent (${spent_usd:.4} of ${limit_usd:.4})",
            spent_usd / limit_usd * 100.0
        )
    })
}

/// The period of a shared budget: a calendar day, ISO week (Monday to Sunday) or month in the
/// budget's calendar, or a rolling window of the last `every` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Window(i64),
}

impl Period {
    /// The word in limit names, counter names and refusals (`daily budget exceeded`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Week => "weekly",
            Self::Month => "monthly",
            Self::Window(_) => "rolling",
        }
    }

    /// The window's length, for a rolling window.
    pub fn window_ms(self) -> Option<i64> {
        match self {
            Self::Window(every_ms) => Some(every_ms),
            _ => None,
        }
    }
}

/// When the period containing `now_ms` began, in the calendar of `utc_offset_s` (`None`: the
/// system's local time), as epoch milliseconds; a rolling window "began" `every` ago.
pub fn period_start_ms(period: Period, now_ms: i64, utc_offset_s: Option<i32>) -> i64 {
    use chrono::{Datelike, TimeZone};
    if let Period::Window(every_ms) = period {
        return now_ms.saturating_sub(every_ms);
    }
    let utc = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let offset = utc_offset_s
        .and_then(chrono::FixedOffset::east_opt)
        .unwrap_or_else(|| *utc.with_timezone(&chrono::Local).offset());
    let local = utc.with_timezone(&offset).date_naive();
    let first = match period {
        Period::Day | Period::Window(_) => local,
        Period::Week => {
            local - chrono::Days::new(u64::from(local.weekday().num_days_from_monday()))
        }
        Period::Month => local.with_day(1).unwrap_or(local),
    };
    first
        .and_hms_opt(0, 0, 0)
        .and_then(|t| offset.from_local_datetime(&t).single())
        .map_or(now_ms, |t| t.timestamp_millis())
}

/// The oldest moment a configured budget still counts spend from: the earliest start of the
/// periods with a limit (this month, this week, the longest rolling window; the process's,
/// a project's or a client key's), at least the start of today (daily limits). Deleting
/// ledger rows from after it would hand the spend back to the budget.
pub fn counted_since_ms(config: &crate::config::Config, now_ms: i64) -> i64 {
    let budget = &config.budget;
    let keys = config.client_key_budgets();
    let scopes: Vec<&crate::config::ProjectBudget> = budget
        .projects
        .values()
        .chain(keys.iter().map(|(_, b)| b))
        .collect();
    let mut periods = vec![Period::Day];
    if budget.monthly_usd.is_some() || scopes.iter().any(|p| p.monthly_usd.is_some()) {
        periods.push(Period::Month);
    }
    if budget.weekly_usd.is_some() || scopes.iter().any(|p| p.weekly_usd.is_some()) {
        periods.push(Period::Week);
    }
    let windows = budget
        .windows
        .iter()
        .chain(scopes.iter().flat_map(|p| p.windows.iter()));
    periods.extend(windows.map(|w| Period::Window(w.every_ms)));
    periods
        .into_iter()
        .map(|p| period_start_ms(p, now_ms, budget.utc_offset_s))
        .min()
        .unwrap_or(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limit: f64, spent: f64) -> Refusal {
        Refusal {
            budget: "session",
            limit_usd: limit,
            spent_usd: spent,
            reserved_usd: 0.0,
            estimate_usd: 1.0,
            window_ms: None,
            frees_at_ms: None,
            utc_offset_s: None,
        }
    }

    const ESTIMATE: Estimate = Estimate {
        prompt_usd: 0.001,
        per_output_usd: 0.000_01,
    };

    fn policy(on_exceed: OnExceed) -> ExceedPolicy<'static> {
        ExceedPolicy {
            on_exceed,
            downgrade_to: Some("cheap"),
            downgraded: false,
        }
    }

    #[test]
    fn fit_lowers_the_cap_to_the_room_left() {
        // $0.01 left: $0.001 for the prompt, $0.009 buys 900 output tokens.
        assert_eq!(
            policy(OnExceed::Fit).next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Fit(900)
        );
    }

    #[test]
    fn fit_refuses_when_not_even_a_short_answer_fits() {
        // $0.0012 left: the prompt and 20 tokens.
        assert_eq!(
            policy(OnExceed::Fit).next(&refusal(1.0, 0.9988), &ESTIMATE, 4096),
            Step::Refuse
        );
    }

    #[test]
    fn refuse_and_downgrade_do_what_they_say() {
        assert_eq!(
            policy(OnExceed::Refuse).next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Refuse
        );
        assert_eq!(
            policy(OnExceed::Downgrade).next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Downgrade("cheap")
        );
        let after = ExceedPolicy {
            downgraded: true,
            ..policy(OnExceed::Downgrade)
        };
        assert_eq!(
            after.next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Fit(900)
        );
    }

    #[test]
    fn estimates_are_linear_in_output_tokens() {
        let estimate = Estimate::from_costs(0.001, 10.001);
        assert!((estimate.per_output_usd - 0.000_01).abs() < 1e-12);
        assert!((estimate.usd(1000) - 0.011).abs() < 1e-9);
    }

    #[test]
    fn warns_from_four_fifths_spent() {
        assert_eq!(mostly_spent("daily", 0.79, 1.0), None);
        assert_eq!(
            mostly_spent("daily", 0.8, 1.0).as_deref(),
            Some("daily budget 80% spent ($0.8000 of $1.0000)")
        );
    }

    #[test]
    fn periods_follow_the_configured_calendar() {
        // 2026-11-22 02:30 UTC
        let now = 1_795_314_600_000;
        assert_eq!(
            period_start_ms(Period::Day, now, Some(0)),
            1_795_305_600_000
        );
        assert_eq!(
            period_start_ms(Period::Month, now, Some(0)),
            1_793_491_200_000
        );
        // At +05:30 it is already 08:00 on the 22nd; the day began at 18:30 UTC on the 21st.
        assert_eq!(
            period_start_ms(Period::Day, now, Some(19_800)),
            1_795_285_800_000
        );
        // A Sunday: its ISO week began on Monday the 16th.
        assert_eq!(
            period_start_ms(Period::Week, now, Some(0)),
            1_795_305_600_000 - 6 * 86_400_000
        );
        assert_eq!(
            period_start_ms(Period::Window(5 * 3_600_000), now, Some(0)),
            now - 5 * 3_600_000
        );
        // At -05:00 it is still the 21st.
        assert_eq!(
            period_start_ms(Period::Day, now, Some(-18_000)),
            1_795_237_200_000
        );
    }

    /// Pruning keeps what a client key's week and window still count, not just today.
    #[test]
    #[allow(clippy::expect_used)]
    fn client_keys_limits_keep_their_spend_from_pruning() {
        let config = |keys: &str| {
            let text = format!("budget:\n  timezone: utc\nclient_keys:\n{keys}");
            crate::config::from_yaml(&text, None, &|_| None).expect("valid")
        };
        // Monday 2026-12-07 02:00 UTC.
        let now = 1_796_608_800_000;
        let today = now - 2 * 3_600_000;
        let daily = config("  - {name: ci, key_env: K, budget_daily_usd: 1}\n");
        assert_eq!(counted_since_ms(&daily, now), today);
        let windowed = config("  - {name: ci, key_env: K, windows: [{every: 5h, usd: 1}]}\n");
        assert_eq!(counted_since_ms(&windowed, now), now - 5 * 3_600_000);
        // Tuesday: the week began on Monday.
        let weekly = config("  - {name: ci, key_env: K, budget_weekly_usd: 1}\n");
        assert_eq!(counted_since_ms(&weekly, now + 86_400_000), today);
    }

    #[test]
    fn decisions() {
        // (limit, spent, reserved, estimate, allowed)
        let cases = [
            (None, 100.0, 100.0, 100.0, true),
            (Some(1.0), 0.0, 0.0, 0.5, true),
            (Some(1.0), 0.5, 0.0, 0.5, true),
            (Some(1.0), 0.5, 0.2, 0.5, false),
            (Some(1.0), 1.0, 0.0, 0.0, false),
            (Some(1.0), 0.9, 0.0, 0.0, true),
            (Some(1.0), 1.2, 0.0, 0.0, false),
            (Some(1.0), 0.0, 0.0, 2.0, false),
        ];
        for (limit, spent, reserved, estimate, allowed) in cases {
            assert_eq!(
                decide(limit, spent, reserved, estimate).is_ok(),
                allowed,
                "{limit:?} {spent} {reserved} {estimate}"
            );
        }
    }
}
