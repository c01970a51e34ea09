//! A brake on guessing keys, per client address: after `MAX_FAILURES` wrong keys from one
//! address within `WINDOW`, that address's attempts are refused (429 with `Retry-After`) until
//! the window ends, the right key included, so a guesser learns nothing meanwhile; other
//! addresses go on as usual, so no one can lock a listener for everyone. An IPv6 client counts
//! by its /64 (one host holds a whole /64), and all of loopback as one. Behind a reverse proxy
//! every client has the proxy's address and shares its budget. Used by the dashboard's
//! `/login` (where tokens sent as a bearer header or cookie are not throttled: a signature
//! cannot be guessed) and by the proxy's client and admin keys for clients off loopback.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong keys allowed per window.
pub const MAX_FAILURES: u32 = 10;
/// How long a window lasts, from its first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond, windows that ended are dropped, then the oldest.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Default)]
pub struct KeyThrottle {
    /// Per client: the first failure of its current window, and the failures since.
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The address a client is counted under. Every loopback address is one client: a local
/// guesser could otherwise take a fresh one of 127.0.0.0/8 for each ten guesses.
fn client(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        ip if ip.is_loopback() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

impl KeyThrottle {
    /// Ok when an attempt from `ip` may be checked now; otherwise how long until one may.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(&client(ip)) {
            Some(&(started, failures)) if failures >= MAX_FAILURES => {
                let ends = started + WINDOW;
                if now < ends { Err(ends - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong key from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_CLIENTS {
            windows.retain(|_, (started, _)| now < *started + WINDOW);
            if windows.len() >= MAX_CLIENTS
                && let Some(oldest) = windows.iter().min_by_key(|(_, w)| w.0).map(|(ip, _)| *ip)
            {
                windows.remove(&oldest);
            }
        }
        let window = windows.entry(client(ip)).or_insert((now, 0));
        *window = if now < window.0 + WINDOW {
            (window.0, window.1 + 1)
        } else {
            (now, 1)
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn ten_wrong_keys_a_minute_then_a_pause() {
        let throttle = KeyThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.admit(A, t0), Ok(()), "attempt {i}");
            throttle.failed(A, t0);
        }
        let later = t0 + Duration::from_secs(15);
        assert_eq!(throttle.admit(A, later), Err(Duration::from_secs(45)));
        assert_eq!(throttle.admit(A, t0 + WINDOW), Ok(()), "the window ended");
        // A failure after the window starts a new one.
        throttle.failed(A, t0 + WINDOW);
        assert_eq!(throttle.admit(A, t0 + WINDOW), Ok(()));
    }

    #[test]
    fn failures_spread_over_windows_never_lock() {
        let throttle = KeyThrottle::default();
        let t0 = Instant::now();
        for minute in 0..5u32 {
            let at = t0 + WINDOW * minute;
            for _ in 0..MAX_FAILURES - 1 {
                throttle.failed(A, at);
            }
            assert_eq!(throttle.admit(A, at), Ok(()));
        }
    }

    #[test]
    fn one_guesser_does_not_lock_out_another_address() {
        let throttle = KeyThrottle::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            throttle.failed(A, t0);
        }
        assert!(throttle.admit(A, t0).is_err());
        assert_eq!(throttle.admit(B, t0), Ok(()));
        // One IPv6 host's /64 is one client.
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for i in 0..MAX_FAILURES {
            throttle.failed(v6(i as u16), t0);
        }
        assert!(throttle.admit(v6(999), t0).is_err());
        assert_eq!(
            throttle.admit(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]), t0),
            Ok(())
        );
        // Loopback is one client, however many of its addresses a guesser uses.
        for i in 0..MAX_FAILURES {
            throttle.failed(IpAddr::from([127, 0, 0, 2 + i as u8]), t0);
        }
        assert!(throttle.admit(IpAddr::from([127, 0, 0, 1]), t0).is_err());
        assert!(throttle.admit("::1".parse().unwrap(), t0).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let throttle = KeyThrottle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            throttle.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(throttle.windows.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
