//! Budget decisions, pure: given a limit, what is spent, what is reserved by requests in flight
//! and what a new request is expected to cost, may it go?

/// What a refused request is told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// Which budget: `session`, `daily`, `monthly`.
    pub budget: &'static str,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub estimate_usd: f64,
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
        });
    }
    Ok(())
}

/// A calendar period of a shared budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Month => "monthly",
        }
    }
}

/// When the period containing `now_ms` began, in the calendar of `utc_offset_s` (`None`: the
/// system's local time), as epoch milliseconds.
pub fn period_start_ms(period: Period, now_ms: i64, utc_offset_s: Option<i32>) -> i64 {
    use chrono::{Datelike, TimeZone};
    let utc = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let offset = utc_offset_s
        .and_then(chrono::FixedOffset::east_opt)
        .unwrap_or_else(|| *utc.with_timezone(&chrono::Local).offset());
    let local = utc.with_timezone(&offset).date_naive();
    let first = match period {
        Period::Day => local,
        Period::Month => local.with_day(1).unwrap_or(local),
    };
    first
        .and_hms_opt(0, 0, 0)
        .and_then(|t| offset.from_local_datetime(&t).single())
        .map_or(now_ms, |t| t.timestamp_millis())
}

/// The oldest moment a configured budget still counts spend from: the start of this month
/// when there is a monthly limit, else the start of today (daily and client-key limits).
/// Deleting ledger rows from after it would hand the spend back to the budget.
pub fn counted_since_ms(config: &crate::config::BudgetConfig, now_ms: i64) -> i64 {
    let period = if config.monthly_usd.is_some() {
        Period::Month
    } else {
        Period::Day
    };
    period_start_ms(period, now_ms, config.utc_offset_s)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // At -05:00 it is still the 21st.
        assert_eq!(
            period_start_ms(Period::Day, now, Some(-18_000)),
            1_795_237_200_000
        );
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
