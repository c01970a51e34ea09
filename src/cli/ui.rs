//! `smartproxy ui`: the web dashboard over the ledger alone (no proxy) on a loopback port, and
//! `smartproxy ui token`, which prints a dashboard token signed with `JWT_SECRET`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::printer;
use crate::web::{Bodies, Security, SecurityError, Web, security, serve::UiServer};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
smartproxy ui                     the dashboard on a free port of 127.0.0.1 (URL on stderr)\n  \
smartproxy ui --port 4102         on 127.0.0.1:4102\n  \
smartproxy ui token --ttl 7d      a token for the dashboard behind a reverse proxy\n\n\
Pages: / (today, this month, spend per day, sessions), /sessions/ID (the session tree and its \
requests), /performance (tokens against response time per model), /request/ID (every field, \
attempts), /team (cost per user and team over a date range, from a PostgreSQL ledger's team \
keys). The ledger is SQLite or PostgreSQL (`database:`, SMARTPROXY_DB). The daemon serves the same pages on its admin listener (127.0.0.1:4101).\n\n\
Access (WEBUI_SECURITY): AUTH_WHEN_PROXIED (default) asks for a token when a request carries \
X-Forwarded-For, Forwarded or X-Real-IP, or comes from another host; ALWAYS_AUTH always asks; \
NONE never asks on loopback (refused off loopback, where a token is always required). A token \
is a JWT signed with JWT_SECRET (32+ random characters; weak ones are refused): send it as \
`Authorization: Bearer <token>` or paste it (or SMARTPROXY_ADMIN_KEY) into the /login form, \
which sets an HttpOnly cookie.")]
pub struct UiArgs {
    #[command(subcommand)]
    pub action: Option<UiAction>,
    /// Port on 127.0.0.1 to serve on; 0 picks a free one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
}

#[derive(Debug, clap::Subcommand)]
pub enum UiAction {
    /// Print a dashboard token (a JWT signed with JWT_SECRET) on stdout.
    ///
    /// The dashboard (daemon or `smartproxy ui`) must run with the same JWT_SECRET.
    /// Example: `curl -H "Authorization: Bearer $(smartproxy ui token)" https://dash.example/`
    Token {
        /// How long the token is valid: 90s, 30m, 12h, 7d.
        #[arg(long, value_name = "DURATION", default_value = "12h")]
        ttl: String,
    },
}

pub fn ui(args: &UiArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    match &args.action {
        Some(UiAction::Token { ttl }) => token(ttl),
        None => serve(args, config_path),
    }
}

fn token(ttl: &str) -> anyhow::Result<u8> {
    let ttl = security::parse_ttl(ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    let secret = std::env::var("JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or(SecurityError::NoSecret)?;
    security::check_secret(&secret)?;
    let signer = Security::with_secret(crate::web::Mode::AlwaysAuth, &secret, true);
    printer::out(&signer.issue(crate::ledger::now_ms() / 1000, ttl));
    Ok(0)
}

fn serve(args: &UiArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let _ = crate::http_server::raise_open_files_limit();
    // A SQLite ledger is brought up to this build's schema here; a PostgreSQL one by each
    // page's connection (as the read commands do).
    if let Some(database) = config.database.as_sqlite() {
        crate::ledger::upgrade_if_present(database)?;
    }
    let database = config.database.clone();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    // WEBUI_SECURITY wins over the config's `webui_security:`.
    let env = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            (name == "WEBUI_SECURITY")
                .then(|| config.webui_security.clone())
                .flatten()
        })
    };
    let security = Security::from_env(&env, addr)?;
    // The file store, whether or not this config captures now: bodies captured earlier are
    // still on disk.
    let mut web = Web::new(database, security, Bodies::Files(config.capture.clone()));
    web.browsers = config.browsers.clone();
    web.budgets = crate::web::BudgetLimits {
        budget: config.budget.clone(),
        key_budgets: config.client_key_budgets(),
    };
    let web = Arc::new(web);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("smartproxy-ui")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let limits = crate::http_server::ConnLimits {
            header_timeout: config.clients.header_timeout,
            max_connections: config.clients.max_connections,
        };
        let server = UiServer::bind(addr, Arc::clone(&web), limits)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        printer::note(&format!(
            "smartproxy dashboard on http://{}/ (ledger {}, WEBUI_SECURITY={}); Ctrl-C stops it",
            server.local_addr(),
            web.readers.location(),
            web.security.mode.name()
        ));
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        server.shutdown(Duration::from_secs(2)).await;
        anyhow::Ok(())
    })?;
    Ok(0)
}
