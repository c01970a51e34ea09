//! `smartproxy run -- <command>`: a private proxy for one command, with a session key, a budget
//! and a ledger session; the command's exit status passes through and the cost is printed.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

mod args;
mod attribution;
mod gates;
mod summary;

pub use args::{RunArgs, SummaryFormat};

use super::quote::program_name;
use super::serving::{open_stores, random_hex};
use crate::budget::SessionBudget;
use crate::config::Config;
use crate::ledger::{Ledger, SessionEnd, SessionStart, now_ms};
use crate::printer;
use crate::proxy::{AppState, ClientKeys, Server, SessionInfo};
use crate::session::{env, signals::Forwarder, spawn};

/// How long requests still open when the command exits may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long notifications still queued at the end may take to be delivered.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a preset adds to the command: variables, and arguments after the program name.
type PresetAdditions = (Vec<(String, String)>, Vec<String>);

/// Fills the tag and budget the flags left open from preset `name`, and returns the variables
/// and arguments it adds to the command.
fn apply_preset(
    args: &mut RunArgs,
    config: &crate::config::Config,
    name: &str,
) -> anyhow::Result<PresetAdditions> {
    let Some(preset) = config.presets.get(name) else {
        let known: Vec<&str> = config.presets.keys().map(String::as_str).collect();
        anyhow::bail!(
            "--preset {name}: no such preset; known: {} (add one under `presets:` in the config)",
            known.join(", ")
        );
    };
    if let Some(var) = preset
        .env
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| env::SET_BY_RUN.contains(k))
    {
        anyhow::bail!(
            "presets.{name}.env in {}: `{var}` is set by run itself (it points the command at the session's proxy)",
            config.source_display()
        );
    }
    args.tag = args.tag.take().or_else(|| preset.tag.clone());
    args.budget = args.budget.or(preset.budget_usd);
    // A preset's arguments are its tool's own: `--preset codex -- bash -c "..."` must not give
    // bash Codex's flags.
    let program = args.command.first().map(program_name).unwrap_or_default();
    let extra = if program == name {
        preset.args.clone()
    } else {
        if !preset.args.is_empty() {
            printer::note(&format!(
                "preset {name}: its arguments are for the `{name}` program, so they are not added to `{program}`"
            ));
        }
        Vec::new()
    };
    args.passthrough |= preset.passthrough;
    Ok((preset.env.clone(), extra))
}

/// The preset of the command's program when `--preset` was not given (`run -- codex`), said
/// on stderr when it changes the command line.
fn implied_preset(args: &RunArgs, config: &crate::config::Config) -> Option<String> {
    let program = args.command.first().map(program_name)?;
    let name =
        crate::session::preset::implied(&program, config.presets.keys().map(String::as_str))?;
    if config.presets.get(name).is_some_and(|p| !p.args.is_empty()) {
        printer::note(&format!(
            "smartproxy: `{program}` runs with preset {name} (as with `--preset {name}`): its arguments point it at this session"
        ));
    }
    Some(name.to_owned())
}

/// The command with a preset's arguments after its program name, `{url}` filled in.
fn with_preset_args(command: &[OsString], extra: &[String], proxy_url: &str) -> Vec<OsString> {
    let Some((program, rest)) = command.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(command.len() + extra.len());
    out.push(program.clone());
    out.extend(
        extra
            .iter()
            .map(|a| OsString::from(a.replace("{url}", proxy_url))),
    );
    out.extend(rest.iter().cloned());
    out
}

pub fn run(mut args: RunArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let started = Instant::now();
    // The child must not read the real keys out of this process (`/proc/$PPID/environ`).
    crate::session::secrets::hide_from_same_user();
    check_args(&args)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(gates::load_baseline)
        .transpose()?;
    let (config, plan) = session_config(&mut args, config_path)?;
    if args.quote {
        super::quote::print_for_run(
            &config,
            &args.command,
            args.tag.as_deref(),
            args.project.as_deref(),
        );
    }
    let budget_usd = args
        .budget
        .filter(|b| *b > 0.0)
        .or(config.budget.session_usd);
    let ledger = Ledger::open_at(&config.database).context("cannot open the ledger")?;
    let session = Session {
        id: random_hex(8),
        key: format!("{}{}", env::SESSION_KEY_PREFIX, random_hex(24)),
        parent_id: std::env::var("SMARTPROXY_SESSION_ID")
            .ok()
            .filter(|s| !s.is_empty()),
        budget_usd,
        attribution: attribution::at_start(args.project.as_deref(), config.project.as_deref()),
    };
    let config = Arc::new(config);
    let state = Arc::new(session_state(&config, &ledger, &session, &args)?);
    let dash = if args.dash {
        Some(super::live_dash::RunDash::start(
            config.database.clone(),
            crate::dash::Budgets::from_config(&config),
            &session.id,
            &session.key,
        )?)
    } else {
        None
    };

    crate::http_server::keep_request_buffers();
    // One thread serves one session's agent with room to spare (tens of thousands of requests a
    // second) and skips the multi-thread scheduler's cross-thread bookkeeping; the daemon,
    // which serves everyone, keeps the multi-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("smartproxy")
        .build()
        .context("cannot start the async runtime")?;
    let exit_code = runtime.block_on(serve_command(
        &args,
        &session,
        &plan,
        &state,
        &ledger,
        dash.as_ref(),
    ))?;
    drop(runtime);
    end_session(&ledger, &state, &session, exit_code, dash);
    let gated = args.max_cost.is_some() || baseline.is_some();
    let figures = match summary::read_back(&ledger, &session.id) {
        Ok(figures) => figures,
        Err(err) => {
            printer::warn(&format!("cannot read the session summary: {err:#}"));
            if gated && exit_code == 0 {
                printer::error("the cost gates could not be checked");
                return Ok(super::EXIT_FAILURE);
            }
            return Ok(exit_code);
        }
    };
    summary::print_summary(&args, &figures, &state, &session.id, started.elapsed());
    let verdict = gates::check(&figures, args.max_cost, baseline.as_ref(), args.max_ratio);
    for line in &verdict.lines {
        printer::note(line);
    }
    // The command's own failure says more than a gate; a gate fails a command that succeeded.
    Ok(match verdict.exit_code {
        Some(code) if exit_code == 0 => code,
        _ => exit_code,
    })
}

/// The flags `clap` cannot check by itself.
fn check_args(args: &RunArgs) -> anyhow::Result<()> {
    if let Some(problem) = args
        .project
        .as_deref()
        .and_then(crate::config::project_name_problem)
    {
        anyhow::bail!("--project: {problem}");
    }
    if let Some(budget) = args.budget {
        anyhow::ensure!(
            budget.is_finite() && budget >= 0.0,
            "--budget must be an amount in USD of zero or more"
        );
    }
    if let Some(limit) = args.max_cost {
        anyhow::ensure!(
            limit.is_finite() && limit >= 0.0,
            "--max-cost must be an amount in USD of zero or more"
        );
    }
    anyhow::ensure!(
        args.max_ratio.is_finite() && args.max_ratio > 0.0,
        "--max-ratio must be a number above zero (1.5: the session may cost half again its baseline)"
    );
    for name in &args.pass_env {
        anyhow::ensure!(
            !env::SET_BY_RUN.contains(&name.as_str()),
            "--pass-env {name}: run always sets {name} for the command (it points the command at the session's \
             proxy); pass the real key under another variable name if a tool needs it"
        );
    }
    Ok(())
}

/// The session's ids and key, and what it may spend.
struct Session {
    id: String,
    key: String,
    /// The session of the `run` this one was started in.
    parent_id: Option<String>,
    budget_usd: Option<f64>,
    /// Its project and the git state of the folder it runs in, at the start.
    attribution: crate::ledger::Attribution,
}

/// What the command gets besides the session's variables: the key variables kept out of its
/// environment, and a preset's variables and arguments.
struct CommandPlan {
    key_vars: Vec<String>,
    /// Pass-through: the command keeps its own Anthropic login.
    passthrough: bool,
    preset_env: Vec<(String, String)>,
    preset_args: Vec<String>,
}

/// The config this session serves with, after `--mock`, an outer session, a preset,
/// `--passthrough` and `--capture`; `args` filled in from the preset.
fn session_config(
    args: &mut RunArgs,
    config_path: Option<&Path>,
) -> anyhow::Result<(Config, CommandPlan)> {
    let mut config = super::load_config(config_path)?;
    // Every key the config names stays out of the child's reach, even when --mock replaces
    // the providers that use them.
    let key_vars = config.key_variables();
    if args.mock {
        config = config.mock_only();
    } else if let Some(outer) = env::outer_session(&|name| std::env::var(name).ok()) {
        config = config.through_outer_session(&outer.url, &outer.key);
    }
    let preset = args
        .preset
        .clone()
        .or_else(|| implied_preset(args, &config));
    let (preset_env, preset_args) = match preset {
        Some(name) => apply_preset(args, &config, &name)?,
        None => (Vec::new(), Vec::new()),
    };
    if args.passthrough {
        anyhow::ensure!(
            !args.mock,
            "--passthrough forwards the client's own Anthropic credential to Anthropic; --mock serves everything offline: use one or the other"
        );
        config.enable_passthrough();
    }
    // Only now: pass-through (from the flag or a preset) is a provider of its own, served with
    // the client's credential.
    // A replay that never goes upstream needs no provider.
    let offline_replay = args.replay.is_some() && args.replay_miss == crate::cassette::OnMiss::Fail;
    if !args.mock
        && !offline_replay
        && !config
            .providers
            .iter()
            .any(|p| p.enabled && !p.missing_credential())
    {
        printer::warn(
            "no provider is configured, so requests will fail: set OPENAI_API_KEY (or ANTHROPIC_API_KEY, \
             DEEPSEEK_API_KEY), add providers to smartproxy.yaml, or use --mock (Claude Code on a Pro/Max \
             subscription: --passthrough)",
        );
    }
    if args.capture {
        config.capture.enabled = true;
    }
    let plan = CommandPlan {
        key_vars,
        passthrough: config.passthrough,
        preset_env,
        preset_args,
    };
    Ok((config, plan))
}

/// The session's own proxy: its key opens the model API and the debug views too, and Ollama
/// clients (which cannot send a key) are served without one from loopback.
fn session_state(
    config: &Arc<Config>,
    ledger: &Ledger,
    session: &Session,
    args: &RunArgs,
) -> anyhow::Result<AppState> {
    // Inside another run: providers pointing at that session's proxy tell it this session's id.
    let parent = session.parent_id.as_ref().and_then(|_| {
        let url = std::env::var("SMARTPROXY_URL").ok()?;
        Some(crate::proxy::ParentProxy {
            url: url.trim_end_matches('/').to_owned(),
            session_id: session.id.clone(),
        })
    });
    let (cache, capture) = open_stores(config)?;
    let cassette = open_cassette(config, args)?;
    let info = SessionInfo {
        id: Some(session.id.clone()),
        tag: args.tag.clone(),
    };
    let state = AppState::builder(Arc::clone(config), ledger.clone())
        .session(info, SessionBudget::new(session.budget_usd))
        .client_keys(ClientKeys::single("session", &session.key))
        .admin_keys(ClientKeys::single("session", &session.key))
        .ollama_keyless()
        .forward_to_parent(parent)
        .stores(cache, capture)
        .cassette(cassette)
        .shared_budgets()
        .loop_markers(super::pid_file::loop_markers_dir())
        .build()?;
    if let Some(shared) = &state.shared_budget {
        shared.set_project(
            session.attribution.project.as_deref(),
            &config.budget.projects,
        );
    }
    Ok(state)
}

/// `--record` and `--replay`'s cassettes; the file replayed is read whole here, so a bad one
/// stops the session before its command starts.
fn open_cassette(
    config: &Config,
    args: &RunArgs,
) -> anyhow::Result<Option<Arc<crate::cassette::Cassette>>> {
    use crate::cassette::{Cassette, Player, Recorder};
    if args.record.is_none() && args.replay.is_none() {
        return Ok(None);
    }
    let redactions = Cassette::redactions(&config.cassette_redact)?;
    // Read before the recorder opens it: recording onto the replayed file appends the misses.
    let player = args.replay.as_deref().map(Player::load).transpose()?;
    let recorder = match args.record.as_deref() {
        Some(path) => Some(Arc::new(Recorder::open(
            path,
            args.record_timing,
            redactions.clone(),
        )?)),
        None => None,
    };
    Ok(Some(Arc::new(Cassette {
        player,
        recorder,
        on_miss: args.replay_miss,
        redactions,
    })))
}

/// Serves the session's proxy while the command runs; the command's exit code.
async fn serve_command(
    args: &RunArgs,
    session: &Session,
    plan: &CommandPlan,
    state: &Arc<AppState>,
    ledger: &Ledger,
    dash: Option<&super::live_dash::RunDash>,
) -> anyhow::Result<u8> {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), Arc::clone(state))
        .await
        .context("cannot bind a loopback port for the session proxy")?;
    let proxy_url = format!("http://{}", server.local_addr());
    if let Some(dash) = dash {
        dash.proxy_listening(server.local_addr().to_string());
    }
    let no_proxy = std::env::var("NO_PROXY").ok();
    let no_proxy_lower = std::env::var("no_proxy").ok();
    let mut env_plan = env::plan(&env::Inputs {
        proxy_url: &proxy_url,
        session_key: &session.key,
        session_id: &session.id,
        key_vars: &plan.key_vars,
        pass_env: &args.pass_env,
        no_proxy: no_proxy.as_deref(),
        no_proxy_lower: no_proxy_lower.as_deref(),
        passthrough: plan.passthrough,
    });
    let forwarder = Forwarder::install().context("cannot install signal handlers")?;
    env_plan.set.extend(plan.preset_env.iter().cloned());
    let command = with_preset_args(&args.command, &plan.preset_args, &proxy_url);
    let spawned = spawn::spawn_with_output(&command, &env_plan, dash.map(|d| &d.log));
    // A descriptor per client: the soft limit (often 1024) is what a burst exhausts first.
    // Raised only now, so that the command keeps the limit it would have had (programs
    // that use select() rely on the usual 1024).
    let _ = crate::http_server::raise_open_files_limit();
    if let Some(dash) = dash {
        dash.command_started(spawned.as_ref().ok().and_then(tokio::process::Child::id));
    }
    ledger.session_started(SessionStart {
        id: session.id.clone(),
        parent_id: session.parent_id.clone(),
        kind: "run",
        tag: args.tag.clone(),
        program: args.command.first().map(program_name),
        cwd: std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
        pid: spawned.as_ref().ok().and_then(tokio::process::Child::id),
        started_ms: now_ms(),
        budget_usd: session.budget_usd,
        attribution: session.attribution.clone(),
    });
    let code = match spawned {
        Ok(mut child) => {
            let status = forwarder
                .wait(&mut child)
                .await
                .context("lost track of the command")?;
            spawn::exit_code(status)
        }
        Err(err) => {
            match dash {
                // The terminal is the dashboard's: the reason goes with the output.
                Some(dash) => dash.log_line(&format!("smartproxy: {err}")),
                None => printer::error(&err.to_string()),
            }
            err.exit_code()
        }
    };
    if let Some(dash) = dash {
        dash.command_exited(code);
    }
    server.shutdown(SHUTDOWN_GRACE).await;
    Ok(code)
}

/// Records the session's end once every captured body and ledger row is on disk.
fn end_session(
    ledger: &Ledger,
    state: &AppState,
    session: &Session,
    exit_code: u8,
    dash: Option<super::live_dash::RunDash>,
) {
    // Every captured body of the session is on disk before the command returns.
    if let Some(capture) = &state.capture {
        capture.close();
    }
    // Notifications the session raised reach their desktop or webhook before it returns.
    if let Some(notifier) = &state.notifier {
        notifier.close(NOTIFY_TIMEOUT);
    }
    if let Some(cassette) = &state.cassette {
        cassette.close();
    }
    // Where HEAD is now: the command may have committed or switched branches.
    let (end_branch, end_head) = attribution::at_end(&session.attribution);
    ledger.session_ended(SessionEnd {
        id: session.id.clone(),
        ended_ms: now_ms(),
        exit_code: Some(i32::from(exit_code)),
        end_branch,
        end_head,
    });
    if let Err(err) = ledger.flush(FLUSH_TIMEOUT) {
        printer::warn(&format!("the ledger could not be flushed: {err}"));
    }
    if let Some(dash) = dash {
        dash.finish();
    }
    if ledger.dropped() > 0 {
        printer::warn(&format!(
            "{} ledger rows were dropped because the writer could not keep up",
            ledger.dropped()
        ));
    }
}
