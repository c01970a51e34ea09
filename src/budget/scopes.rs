//! The scopes of team-mode budgets: who a request is charged to besides the process-wide limits
//! (its team key, the key's user, the user's team, its session's project), the counter names they are kept under in
//! PostgreSQL, and the forecast `smartproxy budget` shows for each. Pure: no I/O, time passed in.

use super::policy::Period;

/// Whom a scope belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Key,
    User,
    Team,
    /// The project of the session the request belongs to (`budget.projects`).
    Project,
}

impl Holder {
    fn prefix(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::User => "user",
            Self::Team => "team",
            Self::Project => "project",
        }
    }

    /// The limit's name in refusals and headers (`user daily budget exceeded`).
    pub fn limit_name(self, period: Period) -> &'static str {
        const NAMES: [[&str; 4]; 4] = [
            ["key daily", "key weekly", "key monthly", "key rolling"],
            ["user daily", "user weekly", "user monthly", "user rolling"],
            ["team daily", "team weekly", "team monthly", "team rolling"],
            [
                "project daily",
                "project weekly",
                "project monthly",
                "project rolling",
            ],
        ];
        let row = match self {
            Self::Key => 0,
            Self::User => 1,
            Self::Team => 2,
            Self::Project => 3,
        };
        let column = match period {
            Period::Day => 0,
            Period::Week => 1,
            Period::Month => 2,
            Period::Window(_) => 3,
        };
        NAMES[row][column]
    }
}

/// One holder a request is charged to and its limits in USD (none: not held to a limit).
#[derive(Debug, Clone, PartialEq)]
pub struct Payer {
    pub holder: Holder,
    pub name: String,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// The weekly limit and rolling windows (a project's or config key's from the config, a
    /// ledger key's, user's or team's from `keys create|limit --weekly --window`).
    pub weekly_usd: Option<f64>,
    pub windows: Vec<crate::config::WindowLimit>,
}

/// A counter's name in PostgreSQL (`budget_counters.scope`): `daily`, `weekly` and `monthly`
/// for the process-wide limits; `key:NAME`, `user:NAME`, `team:NAME` for a holder's daily
/// limit (the form config keys' daily budgets have used) and `monthly:key:NAME` ... for its
/// monthly one (`weekly:` alike). The period is in the name because a day and a month can
/// start at the same instant (the 1st), and a counter is keyed by (scope, period start). A
/// rolling window's counters are `rolling:MS` and `rolling:MS:project:NAME`, one per bucket
/// (`budget::window`).
pub fn counter_name(holder: Option<(Holder, &str)>, period: Period) -> String {
    let prefix = match period {
        Period::Day => String::new(),
        Period::Week => "weekly:".to_owned(),
        Period::Month => "monthly:".to_owned(),
        Period::Window(every_ms) => format!("rolling:{every_ms}:"),
    };
    match holder {
        None => match period {
            Period::Window(every_ms) => format!("rolling:{every_ms}"),
            period => period.name().to_owned(),
        },
        Some((holder, name)) => format!("{prefix}{}:{name}", holder.prefix()),
    }
}

/// A counter's name read back: the scope as `budget` shows it (`all`, `key:ci`) and its period.
pub fn parse_counter(name: &str) -> Option<(String, Period)> {
    match name {
        "daily" => Some(("all".to_owned(), Period::Day)),
        "weekly" => Some(("all".to_owned(), Period::Week)),
        "monthly" => Some(("all".to_owned(), Period::Month)),
        _ => {
            let (scope, period) = if let Some(rest) = name.strip_prefix("monthly:") {
                (rest, Period::Month)
            } else if let Some(rest) = name.strip_prefix("weekly:") {
                (rest, Period::Week)
            } else if let Some(rest) = name.strip_prefix("rolling:") {
                let (every, rest) = rest.split_once(':').unwrap_or((rest, ""));
                let period = Period::Window(every.parse().ok()?);
                if rest.is_empty() {
                    return Some(("all".to_owned(), period));
                }
                (rest, period)
            } else {
                (name, Period::Day)
            };
            let (prefix, holder) = scope.split_once(':')?;
            (matches!(prefix, "key" | "user" | "team" | "project") && !holder.is_empty())
                .then(|| (scope.to_owned(), period))
        }
    }
}

/// When a counter runs out at the rate it was spent so far this period (spent / time elapsed):
/// the instant in ms, `None` when nothing was spent yet or it lasts past `period_end_ms`.
/// Already out (nothing left): `now_ms`.
pub fn runs_out_ms(
    cap_usd: f64,
    spent_usd: f64,
    reserved_usd: f64,
    period_start_ms: i64,
    period_end_ms: i64,
    now_ms: i64,
) -> Option<i64> {
    let left = cap_usd - spent_usd - reserved_usd;
    if left <= 0.0 {
        return Some(now_ms);
    }
    let elapsed = (now_ms - period_start_ms).max(1) as f64;
    if spent_usd <= 0.0 {
        return None;
    }
    let per_ms = spent_usd / elapsed;
    let at = now_ms as f64 + left / per_ms;
    (at < period_end_ms as f64).then_some(at as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_round_trip() {
        let cases = [
            (None, Period::Day, "daily", "all"),
            (None, Period::Month, "monthly", "all"),
            (Some((Holder::Key, "ci")), Period::Day, "key:ci", "key:ci"),
            (
                Some((Holder::User, "ana@x.io")),
                Period::Month,
                "monthly:user:ana@x.io",
                "user:ana@x.io",
            ),
            (
                Some((Holder::Team, "search")),
                Period::Day,
                "team:search",
                "team:search",
            ),
            (
                Some((Holder::Project, "web app")),
                Period::Month,
                "monthly:project:web app",
                "project:web app",
            ),
        ];
        for (holder, period, name, shown) in cases {
            assert_eq!(counter_name(holder, period), name);
            assert_eq!(parse_counter(name), Some((shown.to_owned(), period)));
        }
        assert_eq!(parse_counter("other"), None);
        assert_eq!(parse_counter("key:"), None);
        assert_eq!(parse_counter("rolling:x"), None);
    }

    #[test]
    fn forecasts_at_the_rate_so_far() {
        // Half the day gone, $2 of $10 spent: $8 more at $4/day takes two days, past the end.
        assert_eq!(runs_out_ms(10.0, 2.0, 0.0, 0, 1000, 500), None);
        // $6 of $10 at half time: $4 more takes 333 ms of the 500 left.
        assert_eq!(runs_out_ms(10.0, 6.0, 0.0, 0, 1000, 500), Some(833));
        assert_eq!(runs_out_ms(10.0, 0.0, 0.0, 0, 1000, 500), None);
        assert_eq!(runs_out_ms(10.0, 9.0, 1.0, 0, 1000, 500), Some(500));
    }
}
