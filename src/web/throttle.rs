//! A brake on guessing keys at `/login`: after `MAX_FAILURES` wrong keys within `WINDOW`, every
//! attempt is refused (429 with `Retry-After`) until the window ends, the right key included,
//! so a guesser learns nothing meanwhile. One budget for the whole listener: behind a reverse
//! proxy every client has the proxy's address. Tokens sent as a bearer header or cookie are
//! not throttled (a signature cannot be guessed), so `smartproxy ui token` still gets in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong keys allowed per window.
pub const MAX_FAILURES: u32 = 10;
/// How long a window lasts, from its first failure.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct LoginThrottle {
    /// The first failure of the current window, and the failures since.
    window: Mutex<Option<(Instant, u32)>>,
}

impl LoginThrottle {
    /// Ok when an attempt may be checked now; otherwise how long until one may.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        let window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *window {
            Some((started, failures)) if failures >= MAX_FAILURES => {
                let ends = started + WINDOW;
                if now < ends { Err(ends - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong key.
    pub fn failed(&self, now: Instant) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *window = match *window {
            Some((started, failures)) if now < started + WINDOW => Some((started, failures + 1)),
            _ => Some((now, 1)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_wrong_keys_a_minute_then_a_pause() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.admit(t0), Ok(()), "attempt {i}");
            throttle.failed(t0);
        }
        let later = t0 + Duration::from_secs(15);
        assert_eq!(throttle.admit(later), Err(Duration::from_secs(45)));
        assert_eq!(throttle.admit(t0 + WINDOW), Ok(()), "the window ended");
        // A failure after the window starts a new one.
        throttle.failed(t0 + WINDOW);
        assert_eq!(throttle.admit(t0 + WINDOW), Ok(()));
    }

    #[test]
    fn failures_spread_over_windows_never_lock() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for minute in 0..5u32 {
            let at = t0 + WINDOW * minute;
            for _ in 0..MAX_FAILURES - 1 {
                throttle.failed(at);
            }
            assert_eq!(throttle.admit(at), Ok(()));
        }
    }
}
