//! `smartproxy daemon` (alias `start`): the persistent proxy for editors and IDEs, with an admin
//! listener, reload on SIGHUP / `--watch` / `POST /admin/reload`, a pid file for `daemon status`
//! and `daemon stop`, and a graceful stop on SIGTERM.

mod install;
mod retention;
mod team_keys;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use super::pid_file::{PidFile, alive, pid_path, read_pid_file, write_pid_file};
use super::serving::open_stores;
use crate::config::ProjectBudget;
use crate::ledger::Ledger;
use crate::printer;
use crate::proxy::server::Listener;
use crate::proxy::{AppState, ClientKeys, Server};

/// How long requests in flight may take to finish after SIGTERM.
const DRAIN_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:4101";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy daemon --watch\n  smartproxy daemon --detach && smartproxy daemon status\n  \
SMARTPROXY_API_KEY=$(openssl rand -hex 24) SMARTPROXY_LISTEN=0.0.0.0:4100 smartproxy daemon\n\n\
Client keys (SMARTPROXY_API_KEY, `smartproxy keys create`) open the model API; the admin \
endpoints (/admin/*, /metrics, /debug/*, /stats) take SMARTPROXY_ADMIN_KEY instead. The admin \
listener also serves the web dashboard at / (access: WEBUI_SECURITY and JWT_SECRET, see \
`smartproxy ui --help`)."
)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub action: Option<DaemonAction>,
    /// Reload when the config file changes (SIGHUP and POST /admin/reload always reload).
    #[arg(long)]
    pub watch: bool,
    /// Run in the background; logs go to the data dir (see `daemon status`).
    #[arg(long)]
    pub detach: bool,
    /// Public listener [env: SMARTPROXY_LISTEN; config: listen; default: 127.0.0.1:4100].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Admin listener [env: SMARTPROXY_ADMIN_LISTEN; default: 127.0.0.1:4101].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Show the live dashboard (`smartproxy dash`) in this terminal while the daemon serves;
    /// its logs go to a file in the data dir (path printed). Quitting the dashboard (q) stops
    /// the daemon.
    #[arg(long, conflicts_with = "detach")]
    pub dash: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum DaemonAction {
    /// Is the daemon running? Where does it listen?
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon gracefully (SIGTERM; requests in flight finish).
    Stop,
    /// Run the daemon at login: write a systemd user unit (Linux) or a launchd agent (macOS)
    /// that restarts it on failure. Keys are never written into it.
    Install(install::InstallArgs),
}

pub fn daemon(args: DaemonArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    match args.action {
        Some(DaemonAction::Status { json }) => status(json),
        Some(DaemonAction::Stop) => stop(),
        Some(DaemonAction::Install(install)) => install::install(&install, config_path),
        None if args.detach => detach(),
        None => serve(&args, config_path),
    }
}

fn status(as_json: bool) -> anyhow::Result<u8> {
    let Some(file) = read_pid_file().filter(|f| alive(f.pid)) else {
        if as_json {
            printer::out(
                &json!({"running": false, "pid_file": pid_path().display().to_string()})
                    .to_string(),
            );
        } else {
            printer::out("smartproxy daemon is not running");
        }
        return Ok(3);
    };
    if as_json {
        printer::out(&json!({"running": true, "pid": file.pid, "listen": file.listen, "admin_listen": file.admin_listen,
            "started_ms": file.started_ms, "log": file.log}).to_string());
    } else {
        printer::out(&format!(
            "smartproxy daemon is running (pid {})\n  listen:       http://{}/v1\n  admin:        http://{}\n  since:        {}{}",
            file.pid,
            file.listen,
            file.admin_listen,
            super::format::local_time(file.started_ms),
            file.log
                .map(|l| format!("\n  log:          {l}"))
                .unwrap_or_default()
        ));
    }
    Ok(0)
}

fn stop() -> anyhow::Result<u8> {
    let Some(file) = read_pid_file().filter(|f| alive(f.pid)) else {
        printer::out("smartproxy daemon is not running");
        return Ok(0);
    };
    let pid =
        nix::unistd::Pid::from_raw(i32::try_from(file.pid).context("bad pid in the pid file")?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .context("cannot signal the daemon")?;
    let deadline = std::time::Instant::now() + DRAIN_GRACE + Duration::from_secs(5);
    while alive(file.pid) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the daemon (pid {}) did not stop; it may still be draining requests",
            file.pid
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "a synchronous CLI command polling for the daemon"
        )]
        std::thread::sleep(Duration::from_millis(50));
    }
    printer::out(&format!("smartproxy daemon (pid {}) stopped", file.pid));
    Ok(0)
}

/// Starts the daemon in the background: the same command without `--detach`, in its own
/// process group, its output in a log file.
fn detach() -> anyhow::Result<u8> {
    if let Some(file) = read_pid_file().filter(|f| alive(f.pid)) {
        anyhow::bail!(
            "the daemon is already running (pid {}); `smartproxy daemon stop` first",
            file.pid
        );
    }
    let log_dir = directories::ProjectDirs::from("", "", "smartproxy")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log_path = log_dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    let exe = std::env::current_exe().context("cannot find the smartproxy executable")?;
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(exe)
        .args(args)
        .env("SMARTPROXY_DAEMON_LOG", &log_path)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the daemon")?;
    // Wait for the pid file so `daemon status` right after works.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read_pid_file().is_none_or(|f| f.pid != child.id()) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the daemon did not come up; see {}",
            log_path.display()
        );
        #[allow(
            clippy::disallowed_methods,
            reason = "a synchronous CLI command polling for the daemon"
        )]
        std::thread::sleep(Duration::from_millis(20));
    }
    printer::out(&format!(
        "smartproxy daemon started (pid {}); log: {}",
        child.id(),
        log_path.display()
    ));
    Ok(0)
}

fn serve(args: &DaemonArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    // Provider and client keys live in this process: no other process of the user reads them.
    crate::session::secrets::hide_from_same_user();
    // A descriptor per client: the soft limit (often 1024) is what a burst exhausts first.
    // (The daemon starts no commands that would inherit the raised limit.)
    let open_files = crate::http_server::raise_open_files_limit();
    crate::http_server::keep_request_buffers();
    if args.dash {
        super::live_dash::ensure_terminal()?;
    }
    let config = super::load_config(config_path)?;
    let needed = crate::http_server::descriptors_needed(2, config.clients.max_connections);
    if let Some(limit) = open_files.filter(|limit| *limit < needed) {
        printer::warn(&format!(
            "this process may open {limit} files, and two listeners at limits.max_connections \
             ({}) may need {needed}: past the limit, new connections wait unanswered. Lower \
             limits.max_connections or raise the hard limit (`ulimit -Hn`)",
            config.clients.max_connections
        ));
    }
    let listen = args.listen.unwrap_or(config.listen);
    let admin_listen = match args.admin_listen {
        Some(addr) => addr,
        None => admin_listen_from_env()?,
    };
    let team = config.database.is_postgres();
    // A team ledger holds client keys too: it is opened first so they count from the start.
    let team_ledger = if team {
        Some(Ledger::open_at(&config.database).context("cannot open the ledger")?)
    } else {
        None
    };
    let keys = client_keys(config.database.as_sqlite(), &config)?;
    if let Some(ledger) = &team_ledger {
        keys.set_stored(team_keys::load(ledger, &config)?);
    }
    let admin_keys = admin_keys();
    check_exposure(&config, (listen, &keys), (admin_listen, &admin_keys))?;
    let web_security = web_security(&config, admin_listen, &keys)?;
    let ledger = match team_ledger {
        Some(ledger) => ledger,
        None => Ledger::open_at(&config.database).context("cannot open the ledger")?,
    };
    let source = config.source.clone();
    // The web dashboard reads the ledger, SQLite or PostgreSQL, on its own connections.
    let mut web = Some(crate::web::Web::new(
        config.database.clone(),
        web_security,
        crate::web::Bodies::None,
    ));
    if let Some(web) = &mut web {
        web.budgets = crate::web::BudgetLimits {
            budget: config.budget.clone(),
            key_budgets: config.client_key_budgets(),
        };
    }
    let (cache, capture) = open_stores(&config)?;
    if let (Some(capture), Some(web)) = (&capture, &mut web) {
        web.bodies = crate::web::Bodies::Live(Arc::clone(capture));
    }
    let mut builder = AppState::builder(Arc::new(config), ledger.clone())
        .client_keys(keys)
        .admin_keys(admin_keys)
        .daemon(source.clone(), reload_keys)
        .stores(cache, capture)
        .loop_markers(super::pid_file::loop_markers_dir());
    if let Some(web) = web {
        builder = builder.web(web);
    }
    let state = builder.build()?;
    apply_key_budgets(&state);
    let state = Arc::new(state);

    let runtime = crate::http_server::serving_runtime("smartproxy")
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_stopped(
        args,
        &state,
        (listen, admin_listen),
        source.as_deref(),
    ))?;
    drop(runtime);
    if let Some(capture) = &state.capture {
        capture.close();
    }
    if let Some(notifier) = &state.notifier {
        notifier.close(Duration::from_secs(5));
    }
    if let Some(sessions) = &state.daemon_sessions {
        sessions.close_all(&ledger);
    }
    if let Err(err) = ledger.flush(Duration::from_secs(30)) {
        printer::warn(&format!("the ledger could not be flushed: {err}"));
    }
    let _ = std::fs::remove_file(pid_path());
    Ok(0)
}

/// Refuses to listen off loopback without a key, or with one short enough to guess.
fn check_exposure(
    config: &crate::config::Config,
    (listen, keys): (SocketAddr, &ClientKeys),
    (admin_listen, admin_keys): (SocketAddr, &ClientKeys),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        admin_listen.ip().is_loopback() || !admin_keys.is_empty(),
        "refusing to listen for admin requests on {admin_listen} without an admin key: anyone who can reach \
         it could reload the config and read every session's spend. Set SMARTPROXY_ADMIN_KEY \
         (e.g. `export SMARTPROXY_ADMIN_KEY=$(openssl rand -hex 24)`), or keep the admin listener on 127.0.0.1"
    );
    anyhow::ensure!(
        listen.ip().is_loopback() || !keys.is_open(),
        "refusing to listen on {listen} without a client key: anyone who can reach it could spend your \
         provider credit. Set SMARTPROXY_API_KEY (e.g. `export SMARTPROXY_API_KEY=$(openssl rand -hex 24)`) \
         and have clients send it as `Authorization: Bearer <key>`, or listen on 127.0.0.1"
    );
    // Off loopback a key is all that stands between the network and the provider credit: one a
    // person picked ("x", "secret") is guessed long before the per-address brake matters.
    let (weak_client, weak_admin) = weak_keys(config);
    for (addr, weak, what) in [
        (listen, &weak_client, "client"),
        (admin_listen, &weak_admin, "admin"),
    ] {
        anyhow::ensure!(
            addr.ip().is_loopback() || weak.is_empty(),
            "refusing to listen on {addr} with a {what} key shorter than {MIN_KEY_CHARS} characters ({}): \
             off loopback anyone who can reach it may guess. Use a random one, e.g. `openssl rand -hex 24`",
            weak.join(", ")
        );
    }
    Ok(())
}

/// Who may open the web dashboard the admin listener serves.
fn web_security(
    config: &crate::config::Config,
    admin_listen: SocketAddr,
    keys: &ClientKeys,
) -> anyhow::Result<crate::web::Security> {
    // WEBUI_SECURITY wins over the config's `webui_security:`.
    let env = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            (name == "WEBUI_SECURITY")
                .then(|| config.webui_security.clone())
                .flatten()
        })
    };
    let mut web_security = crate::web::Security::from_env(&env, admin_listen)
        .context("cannot serve the web dashboard")?;
    // The dashboard shows what `/admin/stats` does: on a daemon with keys it asks for one too.
    web_security.keys_set |= !keys.is_open();
    if web_security.keys_set && web_security.mode == crate::web::Mode::None {
        printer::warn(
            "WEBUI_SECURITY=NONE does not open the dashboard of a daemon with keys: it asks for the admin key or a `smartproxy ui token` token",
        );
    }
    Ok(web_security)
}

/// Serves both listeners until SIGTERM, SIGINT or the dashboard closing; reloads on SIGHUP and,
/// with `--watch`, when the config file changes; prunes daily.
async fn serve_until_stopped(
    args: &DaemonArgs,
    state: &Arc<AppState>,
    (listen, admin_listen): (SocketAddr, SocketAddr),
    source: Option<&Path>,
) -> anyhow::Result<()> {
    let public = Server::bind_as(listen, Arc::clone(state), Listener::Public)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {listen} (is another daemon running? `smartproxy daemon status`)"
            )
        })?;
    let admin = Server::bind_as(admin_listen, Arc::clone(state), Listener::Admin)
        .await
        .with_context(|| format!("cannot listen on {admin_listen} (admin)"))?;
    let pid_file = PidFile {
        pid: std::process::id(),
        listen: public.local_addr().to_string(),
        admin_listen: admin.local_addr().to_string(),
        started_ms: crate::ledger::now_ms(),
        log: std::env::var("SMARTPROXY_DAEMON_LOG").ok(),
    };
    write_pid_file(&pid_file)?;
    printer::note(&format!(
        "smartproxy daemon listening on http://{}/v1 (admin http://{}), config: {}",
        public.local_addr(),
        admin.local_addr(),
        state.runtime().config.source_display()
    ));
    let (closed_tx, mut closed) = tokio::sync::oneshot::channel();
    let dash = if args.dash {
        Some(super::live_dash::DaemonDash::start(
            state.runtime().config.database.clone(),
            crate::dash::Budgets::from_config(&state.runtime().config),
            admin.local_addr().to_string(),
            closed_tx,
        )?)
    } else {
        drop(closed_tx);
        None
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut watched = source.and_then(modified);
    let key_watcher = team_keys::start(state);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut daily = tokio::time::interval(retention::EVERY);
    let mut pruning = None;
    loop {
        tokio::select! {
            _ = daily.tick() => retention::start(state, &mut pruning),
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(state),
            _ = &mut closed, if dash.is_some() => break,
            _ = tick.tick(), if args.watch => {
                let now = source.and_then(modified);
                if now != watched {
                    watched = now;
                    reload(state);
                }
            }
        }
    }
    if let Some(dash) = dash {
        dash.stop();
    }
    printer::note("smartproxy daemon stopping: finishing requests in flight");
    admin.shutdown(Duration::from_secs(1)).await;
    public.shutdown(DRAIN_GRACE).await;
    if let Some(pruning) = pruning {
        let _ = pruning.await;
    }
    if let Some(watcher) = key_watcher {
        watcher.stop().await;
    }
    Ok(())
}

/// The admin listener when `--admin-listen` is not given: `SMARTPROXY_ADMIN_LISTEN` or the default.
pub(super) fn admin_listen_from_env() -> anyhow::Result<SocketAddr> {
    std::env::var("SMARTPROXY_ADMIN_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned())
        .trim()
        .parse()
        .context("SMARTPROXY_ADMIN_LISTEN is not a socket address (IP:PORT)")
}

fn reload(state: &AppState) {
    match state.reload_from_source() {
        Ok(reloaded) => printer::note(&format!("config reloaded from {}", reloaded.source)),
        Err(err) => printer::warn(&format!(
            "config not reloaded, the old one keeps serving:\n{err}"
        )),
    }
    reload_keys(state);
}

/// Reloads the client keys and their budgets; also run after `POST /admin/reload`.
fn reload_keys(state: &AppState) {
    // The keys come from the ledger the daemon started with (`database` is not reloaded).
    match client_keys(state.ledger.path(), &state.runtime().config) {
        Ok(keys) => {
            let was_open = state.keys.is_open();
            // A team ledger's keys are kept (`set_stored`): its watcher keeps them current.
            state.keys.replace(keys);
            if state.keys.is_empty() && !was_open {
                printer::warn(
                    "no client keys are left; every request is refused until a key is created \
                     (`smartproxy keys create`) or the daemon restarts",
                );
            }
            let count = state.keys.len();
            apply_key_budgets(state);
            printer::note(&format!("client keys reloaded ({count} accepted)"));
        }
        Err(err) => printer::warn(&format!(
            "client keys not reloaded, the old ones stay accepted: {err:#}"
        )),
    }
}

/// The shortest client or admin key a daemon listening off loopback accepts, as for
/// `JWT_SECRET`.
const MIN_KEY_CHARS: usize = 32;

/// Where the keys a person chose come from that are shorter than `MIN_KEY_CHARS`: client keys
/// (`SMARTPROXY_API_KEY`, `client_keys:` of the config), then the admin key. Keys made by
/// `smartproxy keys create` are random and long.
fn weak_keys(config: &crate::config::Config) -> (Vec<String>, Vec<String>) {
    let short = |key: &str| key.trim().chars().count() < MIN_KEY_CHARS;
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|k| !k.trim().is_empty() && short(k))
            .map(|_| name.to_owned())
    };
    let client = env("SMARTPROXY_API_KEY")
        .into_iter()
        .chain(config.client_keys.iter().filter_map(|k| {
            let key = k.key.as_ref()?;
            short(key.expose()).then(|| format!("${}", k.key_env))
        }))
        .collect();
    (client, env("SMARTPROXY_ADMIN_KEY").into_iter().collect())
}

/// The admin key, `SMARTPROXY_ADMIN_KEY`; client keys never open the admin endpoints.
fn admin_keys() -> ClientKeys {
    match std::env::var("SMARTPROXY_ADMIN_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        Some(key) => ClientKeys::single("admin", &key),
        None => ClientKeys::open(),
    }
}

/// The keys clients may present: `SMARTPROXY_API_KEY` (named `default`) and the keys made with
/// `smartproxy keys create` that are not revoked.
/// A PostgreSQL ledger (`database` is `None`): its keys are added apart (`team_keys`).
fn client_keys(
    database: Option<&Path>,
    config: &crate::config::Config,
) -> anyhow::Result<ClientKeys> {
    let mut keys = ClientKeys::open();
    for configured in &config.client_keys {
        match &configured.key {
            Some(key) => keys.add(&configured.name, key.expose()),
            None => printer::warn(&format!(
                "client key `{}`: ${} is not set; the key is not accepted",
                configured.name, configured.key_env
            )),
        }
    }
    if let Some(key) = std::env::var("SMARTPROXY_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
    {
        keys.add("default", &key);
    }
    let Some(database) = database else {
        return Ok(keys);
    };
    let conn = crate::ledger::keys::open(database).context("cannot open the ledger")?;
    let stored = crate::ledger::keys::active_digests(&conn)
        .context("cannot read the client keys from the ledger")?;
    for (name, digest) in stored {
        keys.add_digest(&name, digest);
    }
    Ok(keys)
}

/// Hands the client keys' limits to the shared budget.
fn apply_key_budgets(state: &AppState) {
    let Some(shared) = &state.shared_budget else {
        return;
    };
    let config = Arc::clone(&state.runtime().config);
    // The daemon's sessions are its config's `project:`; so are their project limits.
    shared.set_project(config.project.as_deref(), &config.budget.projects);
    // Keys created with `smartproxy keys` live in the SQLite ledger; on PostgreSQL only the
    // configured keys bring budgets (for now).
    let loaded = match state.ledger.path() {
        Some(database) => crate::ledger::keys::open(database)
            .map_err(|e| e.to_string())
            .and_then(|conn| crate::ledger::keys::active_budgets(&conn).map_err(|e| e.to_string())),
        None => Ok(Vec::new()),
    };
    match loaded {
        Ok(stored) => {
            let mut budgets: HashMap<String, ProjectBudget> =
                config.client_key_budgets().into_iter().collect();
            // A ledger key's daily budget wins over a configured key's of the same name.
            for (name, usd) in stored {
                budgets.entry(name).or_default().daily_usd = Some(usd);
            }
            shared.set_key_budgets(budgets);
        }
        Err(err) => printer::warn(&format!("client key budgets not loaded: {err}")),
    }
}

/// What `--watch` compares: the modification time and the size. File times are only as fine
/// as the kernel's clock tick, so an editor's truncate-then-write can leave the time unchanged
/// after the watcher read the empty file; the size still differs.
fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
