//! Retry policy, pure: which failures are worth another try, how long to wait (exponential
//! backoff with jitter, or the provider's `Retry-After`), all with time passed in.

use std::time::{Duration, SystemTime};

/// Statuses worth retrying: timeouts, rate limits, server errors, Anthropic's overloaded (529).
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.timestamp()).ok()?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Backoff before attempt `n` (2 = the first retry): `base * 2^(n-2)`, at most `max`, scaled by
/// `jitter` in [0.5, 1.0] so that clients that failed together do not retry together.
pub fn backoff(n: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = n.saturating_sub(2).min(16);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    raw.mul_f64(jitter.clamp(0.5, 1.0))
}

/// What to do about a failed attempt's wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Wait this long, then retry the same target.
    Retry(Duration),
    /// The provider asks for longer than we are willing to wait: go to the next target.
    FailOver,
}

/// Chooses the wait after a failure, honouring `Retry-After` up to `cap`.
pub fn wait_before_retry(retry_after: Option<Duration>, backoff: Duration, cap: Duration) -> Wait {
    match retry_after {
        Some(wait) if wait > cap => Wait::FailOver,
        Some(wait) => Wait::Retry(wait),
        None => Wait::Retry(backoff),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 422, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, base, max, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(5, base, max, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(9, base, max, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(2, base, max, 0.5), Duration::from_millis(50));
        assert_eq!(
            backoff(2, base, max, 0.1),
            Duration::from_millis(50),
            "jitter is clamped"
        );
    }

    #[test]
    fn waits() {
        let cap = Duration::from_secs(10);
        let b = Duration::from_millis(100);
        assert_eq!(wait_before_retry(None, b, cap), Wait::Retry(b));
        assert_eq!(
            wait_before_retry(Some(Duration::from_secs(3)), b, cap),
            Wait::Retry(Duration::from_secs(3))
        );
        assert_eq!(
            wait_before_retry(Some(Duration::from_secs(30)), b, cap),
            Wait::FailOver
        );
    }
}
