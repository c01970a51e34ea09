//! The runaway-loop breaker: per session, the signatures of the last requests' newest turns
//! (`wire::turn`) and the tokens of the last minute, and whether the session is stopped.
//!
//! The rule, with N = `loop_breaker.repeat` (default 6):
//! - **repeat**: one signature makes up N of the last N + 2 requests (a stuck agent with an
//!   unrelated request or two in between is still caught);
//! - **cycle**: the last N requests alternate between two signatures, A,B,A,B,... (each makes
//!   up only half of any window, so the first rule alone would never see it); looked for from
//!   4 requests on (two whole periods);
//! - **velocity**: the session used more than `loop_breaker.tokens_per_minute` tokens in the
//!   last minute (off unless configured).
//!
//! At N - 1 (or 80 % of the token ceiling) requests are answered with the
//! `x-smartproxy-loop-warning` header and one stderr line per episode; at N the request is
//! refused (429 `loop_detected`) and so is every later one of the session, until `smartproxy
//! resume SESSION` removes the session's marker file (`markers`), which the proxy checks on the
//! session's next request: the session then starts afresh, with at least N - 1 requests before
//! the breaker can stop it again. The lock is held for a few comparisons, never across I/O or
//! an await.

use std::collections::{HashMap, VecDeque};
use std::hash::RandomState;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::LoopBreakerConfig;
use crate::wire::turn::Turn;

/// A session not seen for this long is forgotten (the daemon's sessions come and go).
const IDLE_MS: i64 = 3_600_000;
/// Forgetting idle sessions is looked at once the map holds this many.
const SWEEP_AT: usize = 256;
/// The token ceiling's window.
const MINUTE_MS: i64 = 60_000;

/// What the breaker says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Answer, with this warning; `first` when the episode's stderr line is still due.
    Warn {
        warning: String,
        first: bool,
    },
    /// Refuse. `fresh` when this request tripped the breaker (its marker is still to write).
    Stop(Stopped),
}

/// Why a session was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// For the client and the terminal: what repeated, named (a tool's name is the client's
    /// own), and how to resume.
    pub message: String,
    /// For the ledger row: kinds, hashes and counts only.
    pub row: String,
    pub fresh: bool,
}

/// A pattern the window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// The newest turn makes up `count` of the last `window` requests.
    Repeat { count: usize, window: usize },
    /// The last `len` requests alternate between the newest turn and `other`.
    Cycle { len: usize, other: Turn },
}

/// Which pattern, if any, the last requests make at `threshold` (PURE). `recent` ends with the
/// newest turn.
pub fn pattern(recent: &VecDeque<Turn>, threshold: usize) -> Option<Pattern> {
    let newest = recent.back()?;
    let count = recent.iter().filter(|t| t.hash == newest.hash).count();
    if count >= threshold {
        return Some(Pattern::Repeat {
            count,
            window: recent.len(),
        });
    }
    let n = recent.len();
    // Two whole periods at least: A,B alone is no cycle.
    if threshold >= 4 && n >= threshold {
        let last = recent.range(n - threshold..).collect::<Vec<_>>();
        let alternates = last[0].hash != last[1].hash
            && last
                .iter()
                .enumerate()
                .skip(2)
                .all(|(i, t)| t.hash == last[i - 2].hash);
        if alternates {
            return Some(Pattern::Cycle {
                len: threshold,
                other: recent[n - 2].clone(),
            });
        }
    }
    None
}

/// One session's recent requests.
#[derive(Default)]
struct Watch {
    recent: VecDeque<Turn>,
    tokens: VecDeque<(i64, u64)>,
    warned: bool,
    stopped: Option<Stopped>,
    seen_ms: i64,
}

impl Watch {
    fn tokens_in_last_minute(&mut self, now_ms: i64) -> u64 {
        while self
            .tokens
            .front()
            .is_some_and(|(at, _)| *at <= now_ms - MINUTE_MS)
        {
            self.tokens.pop_front();
        }
        self.tokens.iter().map(|(_, n)| n).sum()
    }
}

/// Every session's watch, and where stopped sessions' markers go.
pub struct LoopBreaker {
    /// Keyed per process: hashes on ledger rows cannot be matched against guesses.
    pub hasher: RandomState,
    sessions: Mutex<HashMap<Arc<str>, Watch>>,
    markers: Option<PathBuf>,
}

impl LoopBreaker {
    /// `markers`: the folder of stopped sessions' marker files (`smartproxy resume` removes
    /// them); `None` leaves a stopped session stopped until the proxy ends.
    pub fn new(markers: Option<PathBuf>) -> Self {
        Self {
            hasher: RandomState::new(),
            sessions: Mutex::new(HashMap::new()),
            markers,
        }
    }

    /// Judges a request of `session` whose newest turn is `turn` (`None`: a request with no
    /// conversation, which only the token ceiling can stop).
    pub fn check(
        &self,
        config: LoopBreakerConfig,
        session: &Arc<str>,
        turn: Option<Turn>,
        now_ms: i64,
    ) -> Verdict {
        if config.repeat.is_none() && config.tokens_per_minute.is_none() {
            return Verdict::Pass;
        }
        // The common case takes the lock once: a session that is not stopped is judged at once.
        let (verdict, turn) = self.with(session, now_ms, |w| match &w.stopped {
            None => (Some(judge(w, config, session, turn, now_ms)), None),
            Some(_) => (None, turn),
        });
        let verdict = match verdict {
            Some(verdict) => verdict,
            // Stopped: still, unless `smartproxy resume` removed the marker (a file check,
            // outside the lock, only for a stopped session's requests).
            None if !self.resumed(session) => {
                let still = self.with(session, now_ms, |w| w.stopped.clone());
                return still.map_or(Verdict::Pass, |mut stop| {
                    stop.fresh = false;
                    Verdict::Stop(stop)
                });
            }
            None => self.with(session, now_ms, |w| {
                *w = Watch {
                    seen_ms: now_ms,
                    ..Watch::default()
                };
                judge(w, config, session, turn, now_ms)
            }),
        };
        if let Verdict::Stop(stop) = &verdict {
            self.write_marker(session, stop);
        }
        verdict
    }

    /// Counts a finished request's tokens against its session's last minute.
    pub fn note_tokens(&self, session: &Arc<str>, tokens: u64, now_ms: i64) {
        if tokens == 0 {
            return;
        }
        self.with(session, now_ms, |w| w.tokens.push_back((now_ms, tokens)));
    }

    fn with<T>(&self, session: &Arc<str>, now_ms: i64, f: impl FnOnce(&mut Watch) -> T) -> T {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sessions.len() >= SWEEP_AT && !sessions.contains_key(session) {
            sessions.retain(|_, w| w.stopped.is_some() || now_ms - w.seen_ms < IDLE_MS);
        }
        let watch = sessions.entry(Arc::clone(session)).or_default();
        watch.seen_ms = now_ms;
        f(watch)
    }

    /// Whether `smartproxy resume` removed the session's marker.
    fn resumed(&self, session: &str) -> bool {
        self.markers
            .as_deref()
            .is_some_and(|dir| !marker_path(dir, session).exists())
    }

    fn write_marker(&self, session: &str, stop: &Stopped) {
        let Some(dir) = &self.markers else {
            return;
        };
        let marker = Marker {
            session: session.to_owned(),
            pid: std::process::id(),
            reason: stop.row.clone(),
        };
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let text = serde_json::to_string(&marker).unwrap_or_default();
            std::fs::write(marker_path(dir, session), text)
        });
        if let Err(e) = written {
            tracing::warn!(
                "the loop breaker could not write its marker in {}: {e}; `smartproxy resume` \
                 will not find this session, which goes on with its next request",
                dir.display()
            );
        }
    }
}

impl Drop for LoopBreaker {
    /// A proxy that ends takes its stopped sessions' markers with it: there is nothing left to
    /// resume (`smartproxy resume` also clears those of a proxy that died).
    fn drop(&mut self) {
        let Some(dir) = &self.markers else {
            return;
        };
        let sessions = self
            .sessions
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (session, watch) in sessions.iter() {
            if watch.stopped.is_some() {
                let _ = std::fs::remove_file(marker_path(dir, session));
            }
        }
    }
}

/// The window's verdict on one more request (the lock held).
fn judge(
    w: &mut Watch,
    config: LoopBreakerConfig,
    session: &str,
    turn: Option<Turn>,
    now_ms: i64,
) -> Verdict {
    // Formatted only when it is said.
    let resume = || {
        let short = session.get(..8).unwrap_or(session);
        format!("run `smartproxy resume {short}` to let it continue")
    };
    if let Some(ceiling) = config.tokens_per_minute {
        let used = w.tokens_in_last_minute(now_ms);
        if used >= ceiling {
            let stop = Stopped {
                message: format!(
                    "loop breaker: this session used {used} tokens in the last minute, over \
                     loop_breaker.tokens_per_minute ({ceiling}); {}",
                    resume()
                ),
                row: format!("loop refused: {used} tokens in a minute (ceiling {ceiling})"),
                fresh: true,
            };
            w.stopped = Some(stop.clone());
            return Verdict::Stop(stop);
        }
        if used * 5 >= ceiling * 4 {
            return warn(w, format!("{used} of {ceiling} tokens a minute used"));
        }
    }
    let (Some(repeat), Some(turn)) = (config.repeat, turn) else {
        return Verdict::Pass;
    };
    w.recent.push_back(turn);
    while w.recent.len() > repeat + 2 {
        w.recent.pop_front();
    }
    let newest = w.recent.back().cloned();
    let Some(newest) = newest else {
        return Verdict::Pass;
    };
    if let Some(found) = pattern(&w.recent, repeat) {
        let (what, hashes) = described(&newest, &found);
        let stop = Stopped {
            message: format!(
                "loop detected: {what}; smartproxy refuses this session's requests now, so the \
                 agent stops instead of spending on the same step. {}: the breaker then \
                 starts afresh and lets at least the next {} requests through",
                resume(),
                repeat - 1
            ),
            row: format!("loop refused: {hashes}"),
            fresh: true,
        };
        w.stopped = Some(stop.clone());
        return Verdict::Stop(stop);
    }
    match pattern(&w.recent, repeat - 1) {
        Some(found) => {
            let (what, _) = described(&newest, &found);
            warn(w, format!("{what}; at {repeat} smartproxy refuses it"))
        }
        None => {
            w.warned = false;
            Verdict::Pass
        }
    }
}

fn warn(w: &mut Watch, warning: String) -> Verdict {
    let first = !w.warned;
    w.warned = true;
    Verdict::Warn { warning, first }
}

/// The pattern in words with names (for the client) and with hashes only (for the row).
fn described(newest: &Turn, found: &Pattern) -> (String, String) {
    match found {
        Pattern::Repeat { count, window } => (
            format!(
                "{} #{} repeated {count} of the last {window} requests",
                newest.describe(),
                newest.short()
            ),
            format!(
                "{} #{} {count} of the last {window} requests",
                kind(newest),
                newest.short()
            ),
        ),
        Pattern::Cycle { len, other } => (
            format!(
                "{} #{} and {} #{} alternating over the last {len} requests",
                other.describe(),
                other.short(),
                newest.describe(),
                newest.short()
            ),
            format!(
                "{} #{} and {} #{} alternating over {len} requests",
                kind(other),
                other.short(),
                kind(newest),
                newest.short()
            ),
        ),
    }
}

fn kind(turn: &Turn) -> &'static str {
    if turn.tool.is_some() {
        "tool call"
    } else {
        "user message"
    }
}

/// A stopped session's marker file, for `smartproxy resume`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub session: String,
    /// The proxy's process, to tell a marker left by one that ended.
    pub pid: u32,
    /// What stopped it (the ledger row's words: kinds and hashes).
    pub reason: String,
}

/// Where a session's marker lives in `dir`: its id made safe as a file name.
pub fn marker_path(dir: &Path, session: &str) -> PathBuf {
    let safe: String = session
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.json"))
}

#[cfg(test)]
#[path = "loop_breaker_tests.rs"]
mod tests;
