//! Circuit breakers, one per target (provider + model): closed, open after N consecutive
//! failures, half-open after a cooldown with a single probe. Time is passed in, so the state
//! machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        since: Instant,
    },
    /// Cooldown over: one probe may go; `probing` while it is in flight.
    HalfOpen {
        probing: bool,
    },
}

const CLOSED: State = State::Closed { failures: 0 };

/// A change worth recording (as an anomaly in the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened { failures: u32 },
    Closed,
}

/// What `debug` views show of one breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerView {
    pub provider: String,
    pub model: String,
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub open_for_ms: Option<u64>,
}

/// Breakers by provider, then model: looked up with borrowed names, so the request path
/// allocates only the first time it meets a target. foldhash (seeded per process) rather than
/// SipHash: a request looks a target up three times.
type Breakers = foldhash::HashMap<String, foldhash::HashMap<String, State>>;

pub struct Health {
    failures_to_open: u32,
    cooldown: Duration,
    breakers: Mutex<Breakers>,
}

impl Health {
    pub fn new(failures_to_open: u32, cooldown: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cooldown,
            breakers: Mutex::default(),
        }
    }

    /// Runs `step` on the target's state (None: never seen) and stores the state it returns.
    fn update<T>(
        &self,
        provider: &str,
        model: &str,
        step: impl FnOnce(Option<State>) -> (State, T),
    ) -> T {
        let mut map = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = map.get(provider).and_then(|m| m.get(model)).copied();
        let (next, result) = step(current);
        if current != Some(next) {
            match map.get_mut(provider) {
                Some(models) => {
                    models.insert(model.to_owned(), next);
                }
                None => {
                    map.insert(
                        provider.to_owned(),
                        std::iter::once((model.to_owned(), next)).collect(),
                    );
                }
            }
        }
        result
    }

    /// Whether routing must skip the target now: open and still cooling down, or half-open with
    /// its one probe already in flight.
    pub fn is_open(&self, provider: &str, model: &str, now: Instant) -> bool {
        let map = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(provider).and_then(|m| m.get(model)) {
            Some(State::Open { since }) => now.duration_since(*since) < self.cooldown,
            Some(State::HalfOpen { probing }) => *probing,
            _ => false,
        }
    }

    /// Called before sending to a target. False when the breaker forbids it; an open breaker
    /// whose cooldown is over turns half-open and lets this one request through as the probe.
    pub fn try_acquire(&self, provider: &str, model: &str, now: Instant) -> bool {
        self.update(provider, model, |state| {
            let state = state.unwrap_or(CLOSED);
            match state {
                State::Closed { .. } => (state, true),
                State::Open { since } if now.duration_since(since) >= self.cooldown => {
                    (State::HalfOpen { probing: true }, true)
                }
                State::HalfOpen { probing: false } => (State::HalfOpen { probing: true }, true),
                State::Open { .. } | State::HalfOpen { probing: true } => (state, false),
            }
        })
    }

    pub fn record_success(&self, provider: &str, model: &str) -> Option<Transition> {
        self.update(provider, model, |state| {
            let recovered = matches!(state, Some(State::Open { .. } | State::HalfOpen { .. }));
            (CLOSED, recovered.then_some(Transition::Closed))
        })
    }

    pub fn record_failure(&self, provider: &str, model: &str, now: Instant) -> Option<Transition> {
        self.update(provider, model, |state| match state.unwrap_or(CLOSED) {
            State::Closed { failures } if failures + 1 >= self.failures_to_open => (
                State::Open { since: now },
                Some(Transition::Opened {
                    failures: failures + 1,
                }),
            ),
            State::Closed { failures } => (
                State::Closed {
                    failures: failures + 1,
                },
                None,
            ),
            // The probe failed: open again for another cooldown.
            State::HalfOpen { .. } => (
                State::Open { since: now },
                Some(Transition::Opened {
                    failures: self.failures_to_open,
                }),
            ),
            state @ State::Open { .. } => (state, None),
        })
    }

    /// Every breaker that has seen traffic, for debug views.
    pub fn snapshot(&self, now: Instant) -> Vec<BreakerView> {
        let map = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut views: Vec<BreakerView> = map
            .iter()
            .flat_map(|(provider, models)| {
                models
                    .iter()
                    .map(move |(model, state)| (provider, model, state))
            })
            .map(|(provider, model, state)| {
                let (name, failures, open_for) = match state {
                    State::Closed { failures } => ("closed", *failures, None),
                    State::Open { since } => (
                        "open",
                        self.failures_to_open,
                        Some(now.duration_since(*since)),
                    ),
                    State::HalfOpen { .. } => ("half-open", self.failures_to_open, None),
                };
                BreakerView {
                    provider: provider.clone(),
                    model: model.clone(),
                    state: name,
                    consecutive_failures: failures,
                    open_for_ms: open_for.map(|d| d.as_millis() as u64),
                }
            })
            .collect();
        drop(map);
        views.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        views
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_and_recovers_through_one_probe() {
        let health = Health::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(health.record_failure("p", "m", at(0)), None);
        assert_eq!(health.record_failure("p", "m", at(0)), None);
        assert!(!health.is_open("p", "m", at(0)));
        assert_eq!(
            health.record_failure("p", "m", at(1)),
            Some(Transition::Opened { failures: 3 })
        );
        assert!(health.is_open("p", "m", at(5)));
        assert!(!health.try_acquire("p", "m", at(5)));
        assert!(!health.is_open("p", "other-model", at(5)), "per target");
        // Cooldown over: one probe, and only one.
        assert!(!health.is_open("p", "m", at(11)));
        assert!(health.try_acquire("p", "m", at(11)));
        assert!(!health.try_acquire("p", "m", at(11)));
        assert!(health.is_open("p", "m", at(11)));
        // The probe fails: open again.
        assert_eq!(
            health.record_failure("p", "m", at(12)),
            Some(Transition::Opened { failures: 3 })
        );
        assert!(health.is_open("p", "m", at(20)));
        assert!(health.try_acquire("p", "m", at(23)));
        assert_eq!(health.record_success("p", "m"), Some(Transition::Closed));
        assert!(!health.is_open("p", "m", at(23)));
        assert_eq!(health.record_success("p", "m"), None);
        let views = health.snapshot(at(23));
        assert_eq!(views[0].state, "closed");
    }

    #[test]
    fn a_success_resets_the_count() {
        let health = Health::new(2, Duration::from_secs(1));
        let now = Instant::now();
        health.record_failure("p", "m", now);
        health.record_success("p", "m");
        assert_eq!(health.record_failure("p", "m", now), None);
    }
}
