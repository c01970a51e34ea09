//! `smartproxy dash`: the live terminal dashboard over the shared ledger. The dashboards of
//! `run --dash` and `daemon --dash` are `live_dash`'s, with the pieces all three share.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use anyhow::Context;

use super::live_dash::{admin_key, ensure_terminal, log_path, loopback, redirect_logs};
use crate::config::LedgerLocation;
use crate::dash;
use crate::ledger::postgres::query::Reader;
use crate::ledger::reader::LedgerReader;
use crate::ledger::{live, query};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A live view over the ledger that every `run` and the daemon write to: \
sessions running now and today with their cost and budget bars, requests as they come in \
(failed ones marked `!`), today's totals per model and provider, p50/p95 latency per model, \
what is left of every daily and monthly budget, and the daemon's circuit breakers when it runs. No server is needed; it reads the ledger file, or in team mode the \
PostgreSQL ledger (re-read every second; while PostgreSQL is out of reach the header says so \
and the dashboard keeps answering keys; a request's detail is not read from PostgreSQL yet).\n\n\
Keys: q/Esc quit · p pause · / filter (session id, tag, model or provider text) · s show one \
session of today, the next, then all · [ ] scroll the sessions panel · Enter a request's every field and attempt · ↑/↓ or j/k \
move · ? help.\n\nWorks over SSH and at 80x24; NO_COLOR turns colours off (markers and bold \
remain). While it runs, smartproxy's own logs and warnings go to logs/dash.log in the data dir.\n\nExamples:\n  \
smartproxy dash\n  smartproxy dash --session 3f2a          one session and the runs inside it\n  \
smartproxy dash --filter gpt-4o         requests whose model, tag or session match\n  \
smartproxy run --dash -- python agent.py\n  smartproxy daemon --dash"
)]
pub struct DashArgs {
    /// Show only this session (an id or an unambiguous prefix) and the runs started inside it.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Start with this text filter (as typed after `/`).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
}

pub fn dash(args: &DashArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    ensure_terminal()?;
    let config = super::load_config(config_path)?;
    let session = match (&config.database, &args.session) {
        (LedgerLocation::Sqlite(database), reference) => {
            crate::ledger::upgrade_if_present(database)?;
            match reference {
                Some(reference) => Some(resolve(database, reference)?),
                None => None,
            }
        }
        // Team mode: the session is looked up (and the ledger reached) before the screen turns.
        (LedgerLocation::Postgres(url), Some(reference)) => {
            let reader = LedgerReader::Postgres(Reader::connect(url)?.into());
            Some(found(reader.resolve_session(reference)?, reference)?)
        }
        (LedgerLocation::Postgres(_), None) => None,
    };
    let log = log_path("dash.log");
    let _redirect = redirect_logs(&log);
    let options = dash::Options {
        ledger: config.database.clone(),
        session,
        filter: args.filter.clone(),
        no_color: dash::no_color_from_env(),
        log_path: None,
        budgets: dash::Budgets::from_config(&config),
        locate_daemon: Box::new(running_daemon),
        admin_key: admin_key(),
        interrupt: None,
        exit_with_command: false,
    };
    let (tx, rx) = dash::channel();
    let signals = QuitOnSignal::start(tx.clone())?;
    let result = dash::run(options, (tx, rx));
    signals.stop();
    result.context("the dashboard failed")?;
    Ok(0)
}

/// SIGTERM, SIGHUP and SIGINT (a `kill`, a closed SSH session) end the dashboard through its
/// loop, which restores the terminal, instead of killing the process in raw mode.
struct QuitOnSignal {
    done: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl QuitOnSignal {
    fn start(actions: Sender<dash::Action>) -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal handler")?;
        // Installed here, before the terminal turns raw, so no signal is missed.
        let (mut term, mut hup, mut int) = runtime
            .block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                    signal(SignalKind::interrupt())?,
                ))
            })
            .context("cannot install signal handlers")?;
        let (done, mut stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("dash-signals".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                        _ = int.recv() => {}
                        _ = &mut stopped => return,
                    }
                    let _ = actions.send(dash::Action::Quit);
                });
            })
            .context("cannot start the signal handler")?;
        Ok(Self {
            done: Some(done),
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn resolve(database: &Path, reference: &str) -> anyhow::Result<String> {
    let conn = live::open(database)
        .with_context(|| format!("cannot read the ledger {}", database.display()))?;
    found(query::resolve_session(&conn, reference)?, reference)
}

fn found(resolved: query::Resolved, reference: &str) -> anyhow::Result<String> {
    match resolved {
        query::Resolved::Found(id) => Ok(id),
        query::Resolved::NotFound => anyhow::bail!("no session matches `{reference}`"),
        query::Resolved::Ambiguous(ids) => anyhow::bail!(
            "`{reference}` matches several sessions: {}; give more of the id",
            ids.join(", ")
        ),
    }
}

/// The admin listener of the running daemon, if one runs (its pid file and a live process).
fn running_daemon() -> Option<String> {
    super::pid_file::running_daemon().map(|f| loopback(&f.admin_listen))
}
