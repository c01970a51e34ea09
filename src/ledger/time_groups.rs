//! `stats --by hour|day|week|month`: both backends read these groups keyed by the start of
//! each UTC hour; here they become local-time periods, in Rust, so both label and order them
//! alike.

use std::collections::BTreeMap;

use chrono::{Datelike, Local, TimeZone};

use super::query::{GroupBy, Totals};

/// Rows keyed by the start of their UTC hour (ms, as text) into the local periods of `by`,
/// oldest first: `2026-12-07 10:00`, `2026-12-07`, the Monday `2026-12-07`, `2026-12`. An hour
/// belongs to the period its start is in (in a zone off the hour by 30 minutes, the hour's
/// second half counts with the first).
pub fn regroup(rows: Vec<Totals>, by: GroupBy) -> Vec<Totals> {
    let mut periods: BTreeMap<String, Vec<Totals>> = BTreeMap::new();
    for row in rows {
        let label = row
            .key
            .parse::<i64>()
            .ok()
            .and_then(|ms| label(ms, by))
            .unwrap_or_else(|| row.key.clone());
        periods.entry(label).or_default().push(row);
    }
    periods
        .into_iter()
        .map(|(label, rows)| Totals::sum(&label, &rows))
        .collect()
}

/// The local period `ms` is in, as `regroup` names it.
pub fn label(ms: i64, by: GroupBy) -> Option<String> {
    let at = Local.timestamp_millis_opt(ms).single()?;
    Some(match by {
        GroupBy::Hour => at.format("%Y-%m-%d %H:00").to_string(),
        GroupBy::Week => {
            let monday =
                at.date_naive() - chrono::Days::new(u64::from(at.weekday().num_days_from_monday()));
            monday.format("%Y-%m-%d").to_string()
        }
        GroupBy::Month => at.format("%Y-%m").to_string(),
        _ => at.format("%Y-%m-%d").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn hours_regroup_into_periods_oldest_first() {
        let row = |ms: i64, n: u64| Totals {
            key: ms.to_string(),
            requests: n,
            ..Totals::default()
        };
        let rows = vec![row(50 * 24 * H, 1), row(3 * H, 2), row(4 * H, 3)];
        let days = regroup(rows.clone(), GroupBy::Month);
        assert_eq!(days.len(), 2);
        assert!(days[0].key < days[1].key, "{days:?}");
        assert_eq!(days.iter().map(|d| d.requests).sum::<u64>(), 6);
        assert_eq!(regroup(rows, GroupBy::Hour).len(), 3);
    }
}
