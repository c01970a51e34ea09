//! Rolling windows (`budget.windows: [{every: 5h, usd: 10}]`), pure: the spend of the last
//! `every` at any moment stays under the cap. Spend is kept in time buckets and a window is
//! the sum of the buckets it touches, so an admission reads a bounded number of rows whatever
//! the traffic. On PostgreSQL a window's bucket is 1/60 of it, at least a minute
//! ([`bucket_ms`]): a 5-hour window sums 61 five-minute counters. On SQLite the `spend`
//! roll-up's quarter hours are summed, with the requests of the partial oldest quarter hour
//! one by one. A bucket counts until all of it has left the window, so spend leaves a window
//! up to one bucket late, never early.

pub use crate::config::every::{MAX_EVERY_MS, every_text};

/// The width of a window's PostgreSQL counters: 1/60 of the window in whole minutes, at least
/// one minute.
pub fn bucket_ms(every_ms: i64) -> i64 {
    (every_ms / 60 / 60_000).max(1) * 60_000
}

/// The start of the bucket holding `at_ms`.
pub fn bucket_start(at_ms: i64, bucket_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(bucket_ms)
}

/// The oldest bucket a window of `every_ms` ending at `now_ms` still counts: the one holding
/// `now - every` (part of it is still inside).
pub fn first_bucket(now_ms: i64, every_ms: i64, bucket_ms: i64) -> i64 {
    bucket_start(now_ms - every_ms, bucket_ms)
}

/// When at least `need_usd` of a window's spend has left it: `spend` is (when it leaves the
/// window, USD), oldest first. `None`: not even all of it leaving frees that much (the rest is
/// reserved by requests in flight, or the request costs more than the cap).
pub fn frees_at_ms(spend: &[(i64, f64)], need_usd: f64) -> Option<i64> {
    let mut freed = 0.0;
    for &(leaves_at, usd) in spend {
        freed += usd;
        if usd > 0.0 && freed >= need_usd - 1e-9 {
            return Some(leaves_at);
        }
    }
    None
}

/// When `need_usd` of a window of `every_ms` kept in PostgreSQL `buckets` (start, USD; oldest
/// first) has aged out.
pub fn frees_at_from_buckets(buckets: &[(i64, f64)], every_ms: i64, need_usd: f64) -> Option<i64> {
    let spend = leaving(buckets, bucket_ms(every_ms), every_ms);
    frees_at_ms(&spend, need_usd)
}

/// A window's PostgreSQL buckets (start, USD) as (when each leaves the window, USD).
pub fn leaving(buckets: &[(i64, f64)], bucket_ms: i64, every_ms: i64) -> Vec<(i64, f64)> {
    buckets
        .iter()
        .map(|&(start, usd)| (start + bucket_ms + every_ms, usd))
        .collect()
}

/// `at_ms` as `YYYY-MM-DD HH:MM` in the calendar of `utc_offset_s` (`None`: local time).
pub fn clock_text(at_ms: i64, utc_offset_s: Option<i32>) -> String {
    let utc = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    let offset = utc_offset_s
        .and_then(chrono::FixedOffset::east_opt)
        .unwrap_or_else(|| *utc.with_timezone(&chrono::Local).offset());
    utc.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_a_sixtieth_of_the_window_at_least_a_minute() {
        assert_eq!(bucket_ms(5 * 3_600_000), 5 * 60_000);
        assert_eq!(bucket_ms(60_000), 60_000);
        assert_eq!(bucket_ms(10 * 60_000), 60_000);
        assert_eq!(bucket_ms(MAX_EVERY_MS), 744 * 60_000);
        assert_eq!(
            first_bucket(10 * 60_000 + 5, 5 * 60_000, 60_000),
            5 * 60_000
        );
    }

    #[test]
    fn spend_frees_up_when_enough_of_it_has_left_the_window() {
        let buckets = leaving(&[(0, 1.0), (300, 0.0), (600, 2.0), (900, 3.0)], 300, 10_000);
        assert_eq!(frees_at_ms(&buckets, 0.5), Some(10_300));
        assert_eq!(frees_at_ms(&buckets, 2.5), Some(10_900));
        assert_eq!(frees_at_ms(&buckets, 6.0), Some(11_200));
        assert_eq!(frees_at_ms(&buckets, 7.0), None);
    }
}
