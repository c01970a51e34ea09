//! The command line: clap definitions (doc comments become `--help`) and one file per command.

mod budget_cmd;
mod cache_cmd;
mod capture_cmd;
mod completions;
mod config_cmd;
mod cost;
mod daemon;
mod dash;
mod doctor;
mod env_cmd;
mod export;
mod format;
mod hooks;
mod keys;
mod ledger_cmd;
mod live_dash;
mod pid_file;
mod prices;
mod prices_update;
mod providers_cmd;
mod prune;
mod quote;
mod report;
mod request;
mod resume;
mod route;
mod run;
mod serving;
mod sessions;
mod shim;
mod stats;
mod status;
mod status_burn;
mod ui;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use completions::render as render_completions;

use crate::config::{self, Config};

/// Exit code for smartproxy's own failures (bad config, unreadable ledger, ...).
pub const EXIT_FAILURE: u8 = 1;

/// A local-first LLM proxy that launches and instruments the AI tools you run.
///
/// `smartproxy run -- <command>` starts a private proxy for one command, points the command's
/// OpenAI-compatible clients at it with a session key, records every request in a local SQLite
/// ledger (metadata only, never prompts), enforces the session budget and prints what the
/// session cost.
#[derive(Debug, Parser)]
#[command(
    name = "smartproxy",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Examples:\n  smartproxy run --mock -- python agent.py     offline, no key, no cost\n  smartproxy run --budget 2 -- python agent.py  stop the agent's spending at $2\n  smartproxy stats --last                       what the last session cost\n  smartproxy sessions                           recent sessions"
)]
pub struct Cli {
    /// Config file to use instead of discovering one (./smartproxy.yaml,
    /// ~/.config/smartproxy/smartproxy.yaml, ~/.smartproxy.yaml).
    #[arg(long, global = true, value_name = "FILE", env = "SMARTPROXY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter for smartproxy's own logs on stderr, e.g. `info` or `smartproxy=debug`
    /// [env: SMARTPROXY_LOG_LEVEL; default: warn].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn log_level(&self) -> Option<String> {
        self.log_level.clone()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command behind a private, budgeted, recorded proxy.
    Run(run::RunArgs),
    /// The persistent proxy for editors and IDEs (`start` is an alias).
    #[command(alias = "start")]
    Daemon(daemon::DaemonArgs),
    /// Live terminal dashboard: sessions, requests as they come, totals, breakers.
    Dash(dash::DashArgs),
    /// Show what requests cost, grouped by model, provider, session or tag.
    Stats(stats::StatsArgs),
    /// What the sessions on a commit, a range of commits or a branch cost (from the git
    /// state every `run` records).
    Cost(cost::CostArgs),
    /// Git hooks: `hooks install` adds an `AI-Cost:` trailer to every commit message.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Let a session the loop breaker stopped continue (`run`'s or the daemon's).
    Resume(resume::ResumeArgs),
    /// List recent sessions, sub-sessions under their parents.
    Sessions(sessions::SessionsArgs),
    /// What a command's earlier runs cost and took (p50, p90), before running it again.
    Quote(quote::QuoteArgs),
    /// Spend per day, per month, or per 5-hour block (subscription windows), as ccusage shows.
    Report(report::ReportArgs),
    /// One line of live cost (this `run` session, or today) for shell prompts and statuslines.
    Status(status::StatusArgs),
    /// Write the ledger's requests as CSV or JSON Lines (streamed, any size).
    Export(export::ExportArgs),
    /// Delete ledger rows older than an age (a dry run unless --execute).
    Prune(prune::PruneArgs),
    /// Check and inspect configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Budget limits, what is spent against them and what is left.
    Budget(budget_cmd::BudgetArgs),
    /// Inspect or clear the response cache.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
    /// Read the opt-in capture of request and response bodies (capture.enabled, off by
    /// default): show one request's bodies, stats, clear.
    #[command(subcommand)]
    Capture(capture_cmd::CaptureCommand),
    /// Explain routing decisions without sending anything.
    #[command(subcommand)]
    Route(route::RouteCommand),
    /// Send one request from a file through the configured routing; print the reply on stdout
    /// and the routing headers on stderr.
    Request(request::RequestArgs),
    /// Client keys for the daemon: create, list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check that the configured providers answer and accept their keys.
    #[command(subcommand)]
    Providers(providers_cmd::ProvidersCommand),
    /// Model prices: show them, or install a newer LiteLLM price file as an overlay.
    #[command(subcommand)]
    Prices(prices::PricesCommand),
    /// Move the ledger: `ledger migrate --to postgres://...` copies a SQLite ledger into
    /// PostgreSQL.
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Check the config, the ledger, the daemon and the listeners; print a fix for each problem.
    Doctor(doctor::DoctorArgs),
    /// Shims: scripts that run a tool under `smartproxy run --preset TOOL` whenever you call it.
    #[command(subcommand)]
    Shim(shim::ShimCommand),
    /// Print the variables that point tools started outside `run` at the daemon, for `eval`.
    Env(env_cmd::EnvArgs),
    /// The web dashboard over the ledger on a loopback port; `ui token` prints a login token.
    Ui(ui::UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
}

/// Runs the command and returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let config_path = cli.config.clone();
    match cli.command {
        Command::Run(args) => run::run(args, config_path.as_deref()),
        Command::Daemon(args) => daemon::daemon(args, config_path.as_deref()),
        Command::Dash(args) => dash::dash(&args, config_path.as_deref()),
        Command::Stats(args) => stats::stats(&args, config_path.as_deref()),
        Command::Cost(args) => cost::cost(&args, config_path.as_deref()),
        Command::Hooks(cmd) => hooks::hooks(&cmd),
        Command::Resume(args) => resume::resume(&args),
        Command::Sessions(args) => sessions::sessions(&args, config_path.as_deref()),
        Command::Quote(args) => quote::quote(&args, config_path.as_deref()),
        Command::Report(args) => report::report(&args, config_path.as_deref()),
        Command::Status(args) => status::status(&args, config_path.as_deref()),
        Command::Export(args) => export::export(&args, config_path.as_deref()),
        Command::Prune(args) => prune::prune(&args, config_path.as_deref()),
        Command::Config(cmd) => config_cmd::config(&cmd, config_path.as_deref()),
        Command::Cache(cmd) => cache_cmd::cache(&cmd, config_path.as_deref()),
        Command::Capture(cmd) => capture_cmd::capture(&cmd, config_path.as_deref()),
        Command::Budget(args) => budget_cmd::budget(&args, config_path.as_deref()),
        Command::Route(cmd) => route::route(&cmd, config_path.as_deref()),
        Command::Request(args) => request::request(&args, config_path.as_deref()),
        Command::Keys(cmd) => keys::keys(&cmd, config_path.as_deref()),
        Command::Providers(cmd) => providers_cmd::providers(&cmd, config_path.as_deref()),
        Command::Prices(cmd) => prices::prices(&cmd, config_path.as_deref()),
        Command::Ledger(cmd) => ledger_cmd::ledger(&cmd, config_path.as_deref()),
        Command::Doctor(args) => doctor::doctor(&args, config_path.as_deref()),
        Command::Env(args) => env_cmd::env(&args, config_path.as_deref()),
        Command::Ui(args) => ui::ui(&args, config_path.as_deref()),
        Command::Shim(cmd) => shim::shim(&cmd, config_path.as_deref()),
        Command::Completions(args) => completions::completions(&args),
    }
}

/// Loads the config the way every command does: `--config` or discovery, plus the environment.
pub(crate) fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = |name: &str| std::env::var(name).ok();
    config::load(explicit, &cwd, &env)
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}
