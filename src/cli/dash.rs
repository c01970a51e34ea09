//! `smartproxy dash`: the live terminal dashboard over the shared ledger, and the pieces that
//! `run --dash` and `daemon --dash` share with it (where logs go, how the daemon is found).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::dash;
use crate::ledger::{live, query};
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(after_help = "A live view over the ledger that every `run` and the daemon write to: \
sessions running now and today with their cost and budget bars, requests as they come in \
(failed ones marked `!`), today's totals per model and provider, and the daemon's circuit \
breakers when it runs. No server is needed; it reads the ledger file.\n\n\
Keys: q/Esc quit · p pause · / filter (session id, tag, model or provider text) · s show one \
session of today, the next, then all · Enter a request's every field and attempt · ↑/↓ or j/k \
move · ? help.\n\nWorks over SSH and at 80x24; NO_COLOR turns colours off (markers and bold \
remain). smartproxy's own logs go to dash.log in the data dir while it runs.\n\nExamples:\n  \
smartproxy dash\n  smartproxy dash --session 3f2a          one session and the runs inside it\n  \
smartproxy dash --filter gpt-4o         requests whose model, tag or session match\n  \
smartproxy run --dash -- python agent.py\n  smartproxy daemon --dash")]
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
    let session = match &args.session {
        Some(reference) => Some(resolve(&config.database, reference)?),
        None => None,
    };
    let log = log_path("dash.log");
    let _redirect = redirect_logs(&log);
    let options = dash::Options {
        ledger: config.database.clone(),
        session,
        filter: args.filter.clone(),
        no_color: dash::no_color_from_env(),
        log_path: None,
        locate_daemon: Box::new(running_daemon),
        admin_key: admin_key(),
        interrupt: None,
        exit_with_command: false,
    };
    dash::run(options, dash::channel()).context("the dashboard failed")?;
    Ok(0)
}

/// The dashboard draws on stdout and reads keys from the terminal.
pub(super) fn ensure_terminal() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdout().is_terminal(),
        "the dashboard needs a terminal on stdout; for figures in a script use `smartproxy stats`"
    );
    Ok(())
}

fn resolve(database: &Path, reference: &str) -> anyhow::Result<String> {
    let conn = live::open(database)
        .with_context(|| format!("cannot read the ledger {}", database.display()))?;
    match query::resolve_session(&conn, reference)? {
        query::Resolved::Found(id) => Ok(id),
        query::Resolved::NotFound => anyhow::bail!("no session matches `{reference}`"),
        query::Resolved::Ambiguous(ids) => anyhow::bail!(
            "`{reference}` matches several sessions: {}; give more of the id",
            ids.join(", ")
        ),
    }
}

/// A file in smartproxy's data dir (created), for logs while the dashboard owns the terminal.
pub(super) fn log_path(name: &str) -> PathBuf {
    let dir = directories::ProjectDirs::from("", "", "smartproxy")
        .map(|d| d.data_dir().join("logs"))
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Sends smartproxy's logs to `path` while the guard lives; warns (and keeps stderr) when the
/// file cannot be opened.
pub(super) fn redirect_logs(path: &Path) -> Option<crate::telemetry::Redirect> {
    match crate::telemetry::redirect_to(path) {
        Ok(guard) => Some(guard),
        Err(err) => {
            printer::warn(&format!(
                "cannot open {} for logs ({err}); they go to stderr",
                path.display()
            ));
            None
        }
    }
}

/// The admin listener of the running daemon, if one runs (its pid file and a live process).
fn running_daemon() -> Option<String> {
    super::daemon::read_pid_file()
        .filter(|f| super::daemon::alive(f.pid))
        .map(|f| loopback(&f.admin_listen))
}

/// A listener on every address is asked on loopback.
pub(super) fn loopback(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(mut a) if a.ip().is_unspecified() => {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            a.to_string()
        }
        _ => addr.to_owned(),
    }
}

pub(super) fn admin_key() -> Option<String> {
    std::env::var("SMARTPROXY_ADMIN_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
}
