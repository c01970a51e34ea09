//! Where the dashboard's data comes from, each on its own thread so a slow read never freezes
//! the keys: the ledger poller (one read-only connection; `PRAGMA data_version` says when
//! another process committed, and only then are the newest rows read again) and the daemon
//! prober (`GET /debug/status` on the admin listener, short timeout).
//!
//! The poller sends the newest requests and today's sessions first, cheap index walks bounded
//! by LIMIT and time, and today's totals after them (from the hourly rollup), off the first
//! frame's path and re-read at most every few times what they took.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::budgets;
use super::state::{Action, Breaker, Daemon, REQUEST_LIMIT, SessionView};
use crate::ledger::live::{self, DayTotals, LiveFilter};
use crate::ledger::now_ms;
use crate::ledger::query::SessionRow;
use crate::ledger::request_view;

/// How often the ledger is probed for commits.
const POLL: Duration = Duration::from_millis(250);
/// How often the daemon is asked, and how long it may take to answer.
const DAEMON_EVERY: Duration = Duration::from_secs(2);
const DAEMON_TIMEOUT: Duration = Duration::from_millis(800);
/// Sessions read for the panel and for `s`.
pub(super) const SESSION_LIMIT: usize = 30;

/// Requests from the loop to the poller.
#[derive(Debug)]
pub enum Command {
    Filter(LiveFilter),
    Detail(String),
}

/// Starts the ledger poller. It ends when `out`'s receiver is gone.
pub(super) fn spawn_ledger(
    path: PathBuf,
    budgets: budgets::Reader,
    filter: LiveFilter,
    commands: Receiver<Command>,
    out: Sender<Action>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dash-ledger".to_owned())
        .spawn(move || Poller::new(path, filter, out, Some(budgets)).run(&commands))
}

struct Poller {
    path: PathBuf,
    filter: LiveFilter,
    out: Sender<Action>,
    conn: Option<Connection>,
    version: Option<i64>,
    totals_due: Instant,
    /// A commit came after the last totals were read.
    totals_stale: bool,
    lists_due: Instant,
    lists_stale: bool,
    /// The budgets panel's reading (none for `first_frame`).
    budgets: Option<budgets::Reader>,
}

impl Poller {
    fn new(
        path: PathBuf,
        filter: LiveFilter,
        out: Sender<Action>,
        budgets: Option<budgets::Reader>,
    ) -> Self {
        Self {
            path,
            filter,
            out,
            conn: None,
            version: None,
            totals_due: Instant::now(),
            totals_stale: true,
            lists_due: Instant::now(),
            lists_stale: true,
            budgets,
        }
    }

    fn run(mut self, commands: &Receiver<Command>) {
        loop {
            let changed = self
                .connection()
                .and_then(live::data_version)
                .map(|v| self.version.replace(v) != Some(v));
            let ok = match changed {
                Ok(changed) => {
                    if changed {
                        self.totals_stale = true;
                        self.lists_stale = true;
                    }
                    !self.lists_stale || Instant::now() < self.lists_due || self.refresh_lists()
                }
                Err(err) => {
                    self.conn = None;
                    self.version = None;
                    self.send(Action::ReadError(read_error(&self.path, &err)))
                }
            };
            if !ok || !self.refresh_totals() || !self.refresh_budgets() {
                return;
            }
            match commands.recv_timeout(POLL) {
                Ok(Command::Filter(filter)) => {
                    self.filter = filter;
                    if !self.refresh_lists() {
                        return;
                    }
                }
                Ok(Command::Detail(id)) => {
                    let detail = self
                        .connection()
                        .and_then(|c| request_view::request_detail(c, &id))
                        .ok()
                        .flatten()
                        .map(Box::new);
                    if !self.send(Action::Detail(detail)) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn connection(&mut self) -> rusqlite::Result<&Connection> {
        if self.conn.is_none() {
            self.conn = Some(live::open(&self.path)?);
        }
        self.conn.as_ref().ok_or(rusqlite::Error::InvalidQuery)
    }

    /// Reads the newest requests and today's sessions. False when the dashboard is gone.
    fn refresh_lists(&mut self) -> bool {
        self.lists_stale = false;
        let started = Instant::now();
        let requests = self.connection().map(|_| ()).and_then(|()| {
            let conn = self.conn.as_ref().ok_or(rusqlite::Error::InvalidQuery)?;
            live::recent_requests(conn, &self.filter, REQUEST_LIMIT)
        });
        // A filter that matches little walks all of today; such a read is repeated less often.
        self.lists_due = Instant::now() + started.elapsed() * 4;
        match requests {
            Ok(rows) => self.send(Action::Requests(rows)) && self.refresh_sessions(),
            Err(err) => self.send(Action::ReadError(read_error(&self.path, &err))),
        }
    }

    /// Reads today's sessions and what they spent. False when the dashboard is gone.
    fn refresh_sessions(&mut self) -> bool {
        let today = live::start_of_today_ms();
        let views = self
            .connection()
            .and_then(|conn| live::sessions_since(conn, today, now_ms(), SESSION_LIMIT))
            .map(session_views);
        match views {
            Ok(views) => self.send(Action::Sessions(views)),
            Err(err) => self.send(Action::ReadError(read_error(&self.path, &err))),
        }
    }

    /// Reads today's totals when a commit made them stale and the last read is long enough
    /// ago. False when the dashboard is gone.
    fn refresh_totals(&mut self) -> bool {
        if !self.totals_stale || Instant::now() < self.totals_due {
            return true;
        }
        self.totals_stale = false;
        let started = Instant::now();
        let totals = self.read_totals();
        // A slow read (a huge day) is repeated less often, so polling never means reading all
        // day long.
        self.totals_due = Instant::now() + (started.elapsed() * 4).max(Duration::from_secs(1));
        match totals {
            Ok(totals) => self.send(Action::Totals(totals)),
            Err(err) => self.send(Action::ReadError(read_error(&self.path, &err))),
        }
    }

    /// Reads the budgets' standings when due. False when the dashboard is gone.
    fn refresh_budgets(&mut self) -> bool {
        match self.budgets.as_mut().and_then(|b| b.read_if_due(now_ms())) {
            Some(action) => self.send(action),
            None => true,
        }
    }

    /// Today's totals per session, model and provider.
    fn read_totals(&mut self) -> rusqlite::Result<DayTotals> {
        live::totals_since(self.connection()?, live::start_of_today_ms())
    }

    fn send(&self, action: Action) -> bool {
        self.out.send(action).is_ok()
    }
}

/// What each session spent in all (a `run`'s budget covers all of it, simulated mock costs
/// included), from the rollup.
pub(super) fn session_views(sessions: Vec<SessionRow>) -> Vec<SessionView> {
    sessions
        .into_iter()
        .map(|session| SessionView {
            requests: session.requests,
            spent_usd: session.cost_usd.unwrap_or(0.0) + session.simulated_usd.unwrap_or(0.0),
            session,
        })
        .collect()
}

fn read_error(path: &std::path::Path, err: &rusqlite::Error) -> String {
    if path.exists() {
        format!("cannot read {}: {err}", path.display())
    } else {
        format!("no ledger yet at {}", path.display())
    }
}

/// What the first frame shows, read the way the poller reads it first: the newest requests
/// matching `filter` and today's sessions (today's totals come later, off the first frame's
/// path). For benchmarks and tests: apply the actions to a `State` and draw it.
pub fn first_frame(path: &std::path::Path, filter: &LiveFilter) -> rusqlite::Result<Vec<Action>> {
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut poller = Poller::new(path.to_path_buf(), filter.clone(), tx, None);
    let conn = poller.connection()?;
    let requests = live::recent_requests(conn, filter, REQUEST_LIMIT)?;
    let sessions = live::sessions_since(conn, live::start_of_today_ms(), now_ms(), SESSION_LIMIT)?;
    Ok(vec![
        Action::Requests(requests),
        Action::Sessions(session_views(sessions)),
    ])
}

/// Finds the daemon's admin listener (`host:port`), None when no daemon runs.
pub type Locate = Box<dyn Fn() -> Option<String> + Send>;

/// Starts the daemon prober: every two seconds, the breakers of the daemon `locate` finds.
pub fn spawn_daemon(
    locate: Locate,
    admin_key: Option<String>,
    out: Sender<Action>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dash-daemon".to_owned())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(DAEMON_TIMEOUT)
                .build()
                .ok();
            loop {
                let state = match (locate(), &client) {
                    (Some(addr), Some(client)) => {
                        runtime.block_on(probe(client, &addr, admin_key.as_deref()))
                    }
                    _ => Daemon::Down,
                };
                if out.send(Action::Daemon(state)).is_err() {
                    return;
                }
                std::thread::park_timeout(DAEMON_EVERY);
            }
        })
}

async fn probe(client: &reqwest::Client, addr: &str, key: Option<&str>) -> Daemon {
    let mut request = client.get(format!("http://{addr}/debug/status"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let Ok(response) = request.send().await else {
        return Daemon::Down;
    };
    if matches!(response.status().as_u16(), 401 | 403) {
        return Daemon::Locked;
    }
    let Ok(bytes) = response.bytes().await else {
        return Daemon::Down;
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Daemon::Down;
    };
    Daemon::Up(breakers(&body))
}

/// The breakers of a `/debug/status` body.
pub fn breakers(body: &serde_json::Value) -> Vec<Breaker> {
    let text = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|s| s.as_str()).unwrap_or("-").to_owned()
    };
    body.get("breakers")
        .and_then(|b| b.as_array())
        .map(|list| {
            list.iter()
                .map(|b| Breaker {
                    provider: text(b, "provider"),
                    model: text(b, "model"),
                    state: text(b, "state"),
                })
                .collect()
        })
        .unwrap_or_default()
}
