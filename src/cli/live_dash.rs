//! The dashboards `run --dash` and `daemon --dash` show alongside their work, and the pieces
//! they share with `smartproxy dash`: the terminal check, where logs go while a dashboard owns
//! the terminal, and how the daemon's admin listener is asked. Either ledger, SQLite or
//! PostgreSQL, is read as `smartproxy dash` reads it: on the dashboard's own threads, so an
//! unreachable PostgreSQL shows in the header while the proxy keeps serving, and quitting
//! never waits on it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;

use crate::config::LedgerLocation;
use crate::dash;
use crate::printer;

/// The dashboard draws on stdout and reads keys from the terminal.
pub(super) fn ensure_terminal() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::io::stdout().is_terminal(),
        "the dashboard needs a terminal on stdout; for figures in a script use `smartproxy stats`"
    );
    Ok(())
}

/// A file in smartproxy's data dir (created), for logs while the dashboard owns the terminal.
pub(super) fn log_path(name: &str) -> PathBuf {
    let dir = directories::ProjectDirs::from("", "", "smartproxy")
        .map(|d| d.data_dir().join("logs"))
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Sends smartproxy's logs, notes and warnings to `path` while the guard lives; warns (and
/// keeps stderr) when the file cannot be opened.
pub(super) fn redirect_logs(path: &Path) -> Option<printer::Redirect> {
    match printer::redirect_stderr(path) {
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

/// The dashboard of `run --dash`: on its own thread while the command runs, showing the
/// session; the command's output goes to a log file.
pub(super) struct RunDash {
    pub(super) log: std::fs::File,
    pub(super) log_path: PathBuf,
    actions: Sender<dash::Action>,
    pid: Arc<AtomicU32>,
    proxy: Arc<Mutex<Option<String>>>,
    ui: Option<JoinHandle<std::io::Result<()>>>,
    _redirect: Option<printer::Redirect>,
}

impl RunDash {
    /// Opens the log, says where it is, and starts the dashboard on `session_id`. The session's
    /// own proxy (its breakers) answers `/debug/status` to `session_key`.
    pub(super) fn start(
        ledger: LedgerLocation,
        budgets: dash::Budgets,
        session_id: &str,
        session_key: &str,
    ) -> anyhow::Result<Self> {
        ensure_terminal()?;
        let log_path = log_path(&format!("run-{session_id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        printer::note(&format!(
            "smartproxy run --dash: the command's output goes to {}",
            log_path.display()
        ));
        let redirect = redirect_logs(&log_path);
        let pid = Arc::new(AtomicU32::new(0));
        let proxy: Arc<Mutex<Option<String>>> = Arc::default();
        let (tx, rx) = dash::channel();
        let options = dash::Options {
            ledger,
            session: Some(session_id.to_owned()),
            filter: None,
            no_color: dash::no_color_from_env(),
            log_path: Some(log_path.display().to_string()),
            budgets,
            locate_daemon: Box::new({
                let proxy = Arc::clone(&proxy);
                move || proxy.lock().ok().and_then(|p| p.clone())
            }),
            admin_key: Some(session_key.to_owned()),
            interrupt: Some(Box::new({
                let pid = Arc::clone(&pid);
                move || interrupt(pid.load(Ordering::Relaxed))
            })),
            // Without a terminal on stdin nobody may be there to press q (a script, CI).
            exit_with_command: !std::io::stdin().is_terminal(),
        };
        let ui = std::thread::Builder::new()
            .name("dash".to_owned())
            .spawn({
                let tx = tx.clone();
                move || dash::run(options, (tx, rx))
            })
            .context("cannot start the dashboard")?;
        Ok(Self {
            log,
            log_path,
            actions: tx,
            pid,
            proxy,
            ui: Some(ui),
            _redirect: redirect,
        })
    }

    /// The session proxy is listening at `addr` (for its breakers).
    pub(super) fn proxy_listening(&self, addr: String) {
        if let Ok(mut proxy) = self.proxy.lock() {
            *proxy = Some(addr);
        }
    }

    /// The command runs as `pid` (Ctrl-C in the dashboard interrupts it).
    pub(super) fn command_started(&self, pid: Option<u32>) {
        self.pid.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    /// A line of smartproxy's own in the command's log.
    pub(super) fn log_line(&self, text: &str) {
        use std::io::Write;
        let _ = writeln!(&self.log, "{text}");
    }

    pub(super) fn command_exited(&self, code: u8) {
        self.pid.store(0, Ordering::Relaxed);
        let _ = self.actions.send(dash::Action::ChildExited(code));
    }

    /// Waits for the user to close the dashboard, then tells where the output went.
    pub(super) fn finish(mut self) {
        if let Some(ui) = self.ui.take() {
            match ui.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => printer::warn(&format!("the dashboard failed: {err}")),
                Err(_) => printer::warn("the dashboard crashed"),
            }
        }
        drop(self._redirect.take());
        printer::note(&format!(
            "smartproxy run --dash: the command's output is in {}",
            self.log_path.display()
        ));
    }
}

/// Ctrl-C in the dashboard: the terminal is raw, so it sends no SIGINT; pass one on.
fn interrupt(pid: u32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        );
    }
}

/// The dashboard of `daemon --dash`: everything in the ledger, the daemon's own breakers.
pub(super) struct DaemonDash {
    actions: Sender<dash::Action>,
    ui: JoinHandle<()>,
    log_path: PathBuf,
    redirect: Option<printer::Redirect>,
}

impl DaemonDash {
    /// Starts the dashboard; `closed` fires when the user quits it (which stops the daemon).
    pub(super) fn start(
        ledger: LedgerLocation,
        budgets: dash::Budgets,
        admin_listen: String,
        closed: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<Self> {
        let log_path = log_path("daemon.log");
        printer::note(&format!(
            "smartproxy daemon --dash: logs go to {}",
            log_path.display()
        ));
        let redirect = redirect_logs(&log_path);
        let (tx, rx) = dash::channel();
        let admin = loopback(&admin_listen);
        let options = dash::Options {
            ledger,
            session: None,
            filter: None,
            no_color: dash::no_color_from_env(),
            log_path: None,
            budgets,
            locate_daemon: Box::new(move || Some(admin.clone())),
            admin_key: admin_key(),
            interrupt: None,
            exit_with_command: false,
        };
        let ui = std::thread::Builder::new()
            .name("dash".to_owned())
            .spawn({
                let tx = tx.clone();
                move || {
                    if let Err(err) = dash::run(options, (tx, rx)) {
                        tracing::error!(%err, "the dashboard failed");
                    }
                    let _ = closed.send(());
                }
            })
            .context("cannot start the dashboard")?;
        Ok(Self {
            actions: tx,
            ui,
            log_path,
            redirect,
        })
    }

    /// Closes the dashboard (when the daemon stops for another reason) and waits for it.
    pub(super) fn stop(self) {
        let _ = self.actions.send(dash::Action::Quit);
        let _ = self.ui.join();
        drop(self.redirect);
        printer::note(&format!(
            "smartproxy daemon --dash: logs are in {}",
            self.log_path.display()
        ));
    }
}
