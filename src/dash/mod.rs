//! `smartproxy dash`: a live terminal view over the shared ledger (no server needed) with
//! ratatui. `state` holds what is shown and how keys and data change it (pure), `ui` draws it
//! (draw only) with `requests` (the list) and `totals` (today, latency, budgets, breakers),
//! `detail` draws one request (all with `style`'s helpers), `event` runs the loop and maps
//! keys, `input` reads the keys on a thread of its own, `source` polls the ledger and the
//! daemon on theirs (`pg_source` a PostgreSQL ledger; both read `budgets`' standings).

mod budgets;
mod detail;
pub mod event;
mod input;
mod pg_source;
mod requests;
pub mod source;
pub mod state;
mod style;
mod totals;
pub mod ui;

use std::sync::mpsc::{self, Receiver, Sender};

pub use budgets::Budgets;
pub use state::{Action, State};

use crate::config::LedgerLocation;

/// How the dashboard starts.
pub struct Options {
    pub ledger: LedgerLocation,
    /// Show only this session (and the `run`s inside it) at first.
    pub session: Option<String>,
    /// A text filter to start with.
    pub filter: Option<String>,
    pub no_color: bool,
    /// Under `run --dash`: where the command's output goes, shown in the header.
    pub log_path: Option<String>,
    /// The limits the budgets panel reads the standings against.
    pub budgets: Budgets,
    /// Finds the daemon's admin listener for its breakers.
    pub locate_daemon: source::Locate,
    /// `SMARTPROXY_ADMIN_KEY`, for a daemon whose admin endpoints want one.
    pub admin_key: Option<String>,
    /// Under `run --dash`: Ctrl-C interrupts the command through this.
    pub interrupt: Option<Box<dyn Fn() + Send>>,
    /// Quit by itself once the wrapped command ended (`ChildExited`).
    pub exit_with_command: bool,
}

/// A channel for actions from outside the dashboard (`ChildExited`), and the dashboard's end.
pub fn channel() -> (Sender<Action>, Receiver<Action>) {
    mpsc::channel()
}

/// Whether colours are off: `NO_COLOR` set and not empty (no-color.org).
pub fn no_color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Runs the dashboard in the terminal until the user quits (or the wrapped command ended,
/// with `exit_with_command`). `actions` is the pair from `channel`.
pub fn run(options: Options, actions: (Sender<Action>, Receiver<Action>)) -> std::io::Result<()> {
    let (tx, rx) = actions;
    let mut state = State::new(options.no_color);
    state.session_filter = options.session;
    state.filter_text = options.filter.unwrap_or_default();
    state.log_path = options.log_path;
    state.wraps_command = options.interrupt.is_some();
    let (commands, command_rx) = mpsc::channel();
    // The SQLite poller is joined at the end; PostgreSQL's is not: it may be waiting on a
    // server that does not answer (up to its connect or read timeout), and quitting must not
    // wait for that. It ends at its next send once the dashboard is gone.
    let budgets = budgets::Reader::new(options.ledger.clone(), options.budgets);
    let poller = match options.ledger {
        LedgerLocation::Sqlite(path) => Some(source::spawn_ledger(
            path,
            budgets,
            state.filter(),
            command_rx,
            tx.clone(),
        )?),
        LedgerLocation::Postgres(url) => {
            pg_source::spawn(url, budgets, state.filter(), command_rx, tx.clone())?;
            None
        }
    };
    // The prober is not joined: it may be waiting on a daemon's answer, and it ends at its next
    // report once the dashboard is gone.
    source::spawn_daemon(options.locate_daemon, options.admin_key, tx)?;
    let channels = event::Channels {
        actions: rx,
        commands,
        interrupt: options.interrupt,
        exit_with_command: options.exit_with_command,
    };
    let result = event::run(&mut state, &channels);
    drop(channels);
    if let Some(poller) = poller {
        let _ = poller.join();
    }
    result
}
