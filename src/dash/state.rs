//! What the dashboard knows and how it changes: `State`, the `Action`s that change it (keys
//! and data alike) and `update`, which applies one and says what the loop must do next. Pure:
//! no terminal, no ledger, no clock, so every key's behaviour is a plain unit test.

use crate::budget::standings::ScopeStanding;
use crate::ledger::live::{DayTotals, LiveFilter};
use crate::ledger::query::SessionRow;
use crate::ledger::request_view::{RequestDetail, RequestRow};

/// How many requests the list keeps (the newest); the query's LIMIT.
pub const REQUEST_LIMIT: usize = 500;

/// A session with what it spent, for its line and budget bar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionView {
    pub session: SessionRow,
    pub requests: u64,
    pub spent_usd: f64,
}

/// How long a model's recent successful requests took (total time at the proxy, ms).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLatency {
    pub model: String,
    pub requests: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// A circuit breaker as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    pub provider: String,
    pub model: String,
    /// `closed`, `open` or `half-open`.
    pub state: String,
}

/// What is known about the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Daemon {
    /// Not asked yet.
    #[default]
    Unknown,
    /// No daemon runs, or it does not answer.
    Down,
    /// Running, but its admin endpoint wants a key this process does not have.
    Locked,
    Up(Vec<Breaker>),
}

/// Which screen has the keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    List,
    /// Typing a filter after `/`.
    Filter,
    /// One request's every field and attempt.
    Detail,
    Help,
}

/// Things that happen: a key, or data from the ledger or the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    TogglePause,
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterCommit,
    FilterCancel,
    /// Next session of today as the filter (then none again).
    CycleSession,
    /// Scroll the sessions panel (`[` and `]`).
    SessionsUp,
    SessionsDown,
    Up,
    Down,
    PageUp,
    PageDown,
    OpenDetail,
    /// Close the detail or the help.
    Back,
    ToggleHelp,
    /// Ctrl-C: quit, or under `run --dash` interrupt the command.
    Interrupt,
    Requests(Vec<RequestRow>),
    Sessions(Vec<SessionView>),
    Totals(DayTotals),
    /// Where every budget stands (`budget::standings`), process-wide first.
    Budgets(Vec<ScopeStanding>),
    Daemon(Daemon),
    Detail(Option<Box<RequestDetail>>),
    /// The wrapped command of `run --dash` ended with this exit code.
    ChildExited(u8),
    /// The terminal is this many rows tall (before the first frame and after a resize).
    Resized(u16),
    /// A read failed; shown in the header until the next success.
    ReadError(String),
}

/// What the loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The list's filter changed: read again with it.
    Refilter(LiveFilter),
    FetchDetail(String),
    /// Pass Ctrl-C on to the wrapped command.
    Interrupt,
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub mode: Mode,
    pub requests: Vec<RequestRow>,
    pub sessions: Vec<SessionView>,
    /// p50 and p95 per model over `requests`, worked out when they arrive (not per frame).
    pub latencies: Vec<ModelLatency>,
    /// None until the first totals arrive (they read all of today, off the first frame's path).
    pub totals: Option<DayTotals>,
    /// None until first read (at the pace of the totals).
    pub budgets: Option<Vec<ScopeStanding>>,
    pub daemon: Daemon,
    /// The first session the panel shows (the panel clamps it to a full last page).
    pub sessions_scroll: usize,
    /// The terminal's height in rows, for how many sessions the panel shows.
    pub height: u16,
    /// Index into `requests`.
    pub selected: usize,
    pub paused: bool,
    /// The committed text filter, and the one being typed.
    pub filter_text: String,
    pub input: String,
    pub session_filter: Option<String>,
    pub detail: Option<RequestDetail>,
    pub detail_scroll: u16,
    /// No colours at all (`NO_COLOR`): bold, reverse and markers instead.
    pub no_color: bool,
    pub quit: bool,
    /// Under `run --dash`: the command's log file and, once it ended, its exit code.
    pub log_path: Option<String>,
    pub child_exit: Option<u8>,
    /// Under `run --dash`: Ctrl-C interrupts the command instead of quitting.
    pub wraps_command: bool,
    pub error: Option<String>,
    /// Whether the first requests have arrived.
    pub loaded: bool,
}

impl State {
    pub fn new(no_color: bool) -> Self {
        Self {
            no_color,
            ..Self::default()
        }
    }

    /// The filter the list is read with.
    pub fn filter(&self) -> LiveFilter {
        LiveFilter {
            session_id: self.session_filter.clone(),
            text: Some(self.filter_text.clone()).filter(|t| !t.is_empty()),
            since_ms: None,
        }
    }

    pub fn selected_request(&self) -> Option<&RequestRow> {
        self.requests.get(self.selected)
    }

    /// Applies `action`; returns what the loop must do about it, if anything.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => self.quit = true,
            Action::Interrupt if self.wraps_command && self.child_exit.is_none() => {
                return Some(Effect::Interrupt);
            }
            Action::Interrupt => self.quit = true,
            Action::TogglePause => self.paused = !self.paused,
            Action::StartFilter => {
                self.input = self.filter_text.clone();
                self.mode = Mode::Filter;
            }
            Action::FilterChar(c) => self.input.push(c),
            Action::FilterBackspace => {
                self.input.pop();
            }
            Action::FilterCommit => {
                self.mode = Mode::List;
                self.filter_text = self.input.trim().to_owned();
                return Some(self.refilter());
            }
            Action::FilterCancel => self.mode = Mode::List,
            Action::CycleSession => {
                self.session_filter = next_session(&self.sessions, self.session_filter.as_deref());
                return Some(self.refilter());
            }
            Action::SessionsUp => self.sessions_scroll = self.sessions_scroll.saturating_sub(1),
            Action::SessionsDown => {
                self.sessions_scroll = (self.sessions_scroll + 1).min(self.last_sessions_page());
            }
            Action::Resized(height) => {
                self.height = height;
                self.sessions_scroll = self.sessions_scroll.min(self.last_sessions_page());
            }
            Action::Up if self.mode == Mode::Detail => {
                self.detail_scroll = self.detail_scroll.saturating_sub(1);
            }
            Action::Down if self.mode == Mode::Detail => {
                self.detail_scroll = self.detail_scroll.saturating_add(1);
            }
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.move_down(1),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::PageDown => self.move_down(10),
            Action::OpenDetail => {
                if let Some(id) = self.selected_request().map(|r| r.id.clone()) {
                    self.mode = Mode::Detail;
                    self.detail_scroll = 0;
                    return Some(Effect::FetchDetail(id));
                }
            }
            Action::Back => {
                self.mode = Mode::List;
                self.detail = None;
            }
            Action::ToggleHelp => {
                self.mode = if self.mode == Mode::Help {
                    Mode::List
                } else {
                    Mode::Help
                };
            }
            Action::Requests(rows) => {
                self.loaded = true;
                self.error = None;
                if !self.paused {
                    self.replace_requests(rows);
                }
            }
            Action::Sessions(sessions) => {
                if !self.paused {
                    self.sessions = sessions;
                    self.sessions_scroll = self.sessions_scroll.min(self.last_sessions_page());
                }
            }
            Action::Totals(totals) => {
                if !self.paused {
                    self.totals = Some(totals);
                }
            }
            Action::Budgets(lines) => {
                if !self.paused {
                    self.budgets = Some(lines);
                }
            }
            Action::Daemon(daemon) => self.daemon = daemon,
            Action::Detail(detail) => {
                if self.mode == Mode::Detail {
                    self.detail = detail.map(|d| *d);
                }
            }
            Action::ChildExited(code) => self.child_exit = Some(code),
            Action::ReadError(message) => self.error = Some(message),
        }
        None
    }

    /// The first session of the panel's last, full page.
    fn last_sessions_page(&self) -> usize {
        let shown = sessions_shown(self.height, self.sessions.len());
        self.sessions.len().saturating_sub(shown)
    }

    fn refilter(&mut self) -> Effect {
        self.selected = 0;
        // Rows of the old filter would flash until the new ones arrive.
        self.requests.clear();
        Effect::Refilter(self.filter())
    }

    fn move_down(&mut self, by: usize) {
        self.selected = (self.selected + by).min(self.requests.len().saturating_sub(1));
    }

    /// New rows keep the selection on the same request, except at the top, which follows the
    /// newest.
    fn replace_requests(&mut self, rows: Vec<RequestRow>) {
        let keep = (self.selected > 0)
            .then(|| self.selected_request().map(|r| r.id.clone()))
            .flatten();
        self.requests = rows;
        self.latencies = latency_by_model(&self.requests);
        self.selected = keep
            .and_then(|id| self.requests.iter().position(|r| r.id == id))
            .unwrap_or(0)
            .min(self.requests.len().saturating_sub(1));
    }
}

/// How many of `count` sessions the panel shows on a terminal `height` rows tall: a tall one
/// shows more at once; `[` and `]` scroll through the rest.
pub fn sessions_shown(height: u16, count: usize) -> usize {
    let most = if height >= 40 { 10 } else { 4 };
    count.clamp(1, most)
}

/// p50 and p95 of each model's successful requests among `rows`, busiest model first. Failed
/// requests are left out: a quick refusal or a timeout says nothing of how fast a model answers.
pub fn latency_by_model(rows: &[RequestRow]) -> Vec<ModelLatency> {
    let mut by_model: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for r in rows.iter().filter(|r| !r.failed()) {
        by_model.entry(r.model()).or_default().push(r.latency_ms);
    }
    let mut out: Vec<ModelLatency> = by_model
        .into_iter()
        .map(|(model, mut ms)| {
            ms.sort_by(f64::total_cmp);
            ModelLatency {
                model: model.to_owned(),
                requests: ms.len(),
                p50_ms: percentile(&ms, 50.0),
                p95_ms: percentile(&ms, 95.0),
            }
        })
        .collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.model.cmp(&b.model)));
    out
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest value with at least `p`
/// percent of the values at or below it; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The session after `current` in the list, None after the last.
fn next_session(sessions: &[SessionView], current: Option<&str>) -> Option<String> {
    let ids = sessions.iter().map(|s| s.session.id.as_str());
    match current {
        None => ids.clone().next().map(str::to_owned),
        Some(current) => ids
            .clone()
            .skip_while(|id| *id != current)
            .nth(1)
            .map(str::to_owned),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(id: &str) -> RequestRow {
        RequestRow {
            id: id.to_owned(),
            ..RequestRow::default()
        }
    }

    fn session(id: &str) -> SessionView {
        SessionView {
            session: SessionRow {
                id: id.to_owned(),
                ..SessionRow::default()
            },
            ..SessionView::default()
        }
    }

    #[test]
    fn the_selection_follows_its_request_or_the_newest() {
        let mut s = State::new(true);
        s.update(Action::Requests(vec![row("b"), row("a")]));
        assert_eq!(s.selected_request().unwrap().id, "b");
        s.update(Action::Requests(vec![row("c"), row("b"), row("a")]));
        assert_eq!(
            s.selected_request().unwrap().id,
            "c",
            "the top follows the newest"
        );
        s.update(Action::Down);
        s.update(Action::Down);
        s.update(Action::Down);
        assert_eq!(s.selected_request().unwrap().id, "a", "clamped at the end");
        s.update(Action::Requests(vec![
            row("d"),
            row("c"),
            row("b"),
            row("a"),
        ]));
        assert_eq!(
            s.selected_request().unwrap().id,
            "a",
            "stays on its request"
        );
        s.update(Action::Up);
        assert_eq!(s.selected_request().unwrap().id, "b");
    }

    #[test]
    fn pause_freezes_the_list_but_not_the_daemon() {
        let mut s = State::new(true);
        s.update(Action::Requests(vec![row("a")]));
        s.update(Action::TogglePause);
        s.update(Action::Requests(vec![row("b"), row("a")]));
        s.update(Action::Daemon(Daemon::Down));
        assert_eq!(s.requests.len(), 1);
        assert_eq!(s.daemon, Daemon::Down);
        s.update(Action::TogglePause);
        s.update(Action::Requests(vec![row("b"), row("a")]));
        assert_eq!(s.requests.len(), 2);
    }

    #[test]
    fn typing_a_filter_commits_on_enter_and_not_on_escape() {
        let mut s = State::new(true);
        s.update(Action::StartFilter);
        assert_eq!(s.mode, Mode::Filter);
        for c in "mini ".chars() {
            s.update(Action::FilterChar(c));
        }
        s.update(Action::FilterBackspace);
        let effect = s.update(Action::FilterCommit);
        assert_eq!(s.filter_text, "mini");
        assert_eq!(
            effect,
            Some(Effect::Refilter(LiveFilter {
                text: Some("mini".into()),
                ..LiveFilter::default()
            }))
        );
        s.update(Action::StartFilter);
        s.update(Action::FilterChar('x'));
        assert_eq!(s.update(Action::FilterCancel), None);
        assert_eq!(s.filter_text, "mini");
        assert_eq!(s.mode, Mode::List);
    }

    #[test]
    fn s_cycles_through_todays_sessions_then_none() {
        let mut s = State::new(true);
        s.update(Action::Sessions(vec![session("one"), session("two")]));
        s.update(Action::CycleSession);
        assert_eq!(s.session_filter.as_deref(), Some("one"));
        s.update(Action::CycleSession);
        assert_eq!(s.session_filter.as_deref(), Some("two"));
        s.update(Action::CycleSession);
        assert_eq!(s.session_filter, None);
    }

    #[test]
    fn the_sessions_panel_scrolls_within_the_list() {
        let mut s = State::new(true);
        s.update(Action::SessionsUp);
        assert_eq!(s.sessions_scroll, 0);
        s.update(Action::Resized(24));
        let six: Vec<SessionView> = ["a", "b", "c", "d", "e", "f"].map(session).to_vec();
        s.update(Action::Sessions(six.clone()));
        for _ in 0..5 {
            s.update(Action::SessionsDown);
        }
        assert_eq!(s.sessions_scroll, 2, "stops at the last full page of four");
        s.update(Action::SessionsUp);
        assert_eq!(s.sessions_scroll, 1, "one up moves at once");
        s.update(Action::Sessions(six[..5].to_vec()));
        assert_eq!(
            s.sessions_scroll, 1,
            "five: the last page starts at the second"
        );
        s.update(Action::Resized(48));
        assert_eq!(s.sessions_scroll, 0, "all fit on a tall terminal");
    }

    #[test]
    fn enter_asks_for_the_selected_requests_detail() {
        let mut s = State::new(true);
        assert_eq!(s.update(Action::OpenDetail), None, "nothing selected");
        s.update(Action::Requests(vec![row("a")]));
        assert_eq!(
            s.update(Action::OpenDetail),
            Some(Effect::FetchDetail("a".into()))
        );
        assert_eq!(s.mode, Mode::Detail);
        s.update(Action::Back);
        assert_eq!(s.mode, Mode::List);
        s.update(Action::Detail(None));
        assert!(s.detail.is_none(), "a late answer does not reopen it");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&ms, 50.0), 10.0);
        assert_eq!(percentile(&ms, 95.0), 19.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[1.0, 100.0], 50.0), 1.0);
        assert_eq!(percentile(&[1.0, 100.0], 95.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn latency_per_model_leaves_failures_out() {
        let timed = |model: &str, ms: f64, status: i64| RequestRow {
            requested_model: Some(model.to_owned()),
            latency_ms: ms,
            status,
            outcome: if status < 400 { "ok" } else { "upstream_error" }.to_owned(),
            ..row("x")
        };
        let mut s = State::new(true);
        let mut rows: Vec<RequestRow> = (1..=10)
            .map(|i| timed("a", f64::from(i) * 100.0, 200))
            .collect();
        rows.push(timed("a", 60_000.0, 504));
        rows.push(timed("b", 50.0, 200));
        s.update(Action::Requests(rows));
        assert_eq!(
            s.latencies,
            vec![
                ModelLatency {
                    model: "a".into(),
                    requests: 10,
                    p50_ms: 500.0,
                    p95_ms: 1000.0
                },
                ModelLatency {
                    model: "b".into(),
                    requests: 1,
                    p50_ms: 50.0,
                    p95_ms: 50.0
                },
            ]
        );
    }

    #[test]
    fn ctrl_c_interrupts_a_wrapped_command_until_it_ended() {
        let mut s = State::new(true);
        s.wraps_command = true;
        assert_eq!(s.update(Action::Interrupt), Some(Effect::Interrupt));
        assert!(!s.quit);
        s.update(Action::ChildExited(130));
        s.update(Action::Interrupt);
        assert!(s.quit);
    }
}
