//! `smartproxy status`: one line of live cost for shell prompts and Claude Code's statusline.
//! Inside `smartproxy run` it reports that session (nested runs included); elsewhere, today.
//! It must stay fast (a prompt runs it every time): one short read of the ledger, no network.

use std::path::Path;

use serde_json::json;

use std::io::IsTerminal;
use std::os::fd::AsFd;

use super::format::money;
use super::status_burn::{self, Outlook, Scope, outlook};
use crate::budget::policy::{Period, period_start_ms};
use crate::config::LedgerLocation;
use crate::ledger::query::{self, Filter, Totals};
use crate::ledger::reader::LedgerReader;
use crate::ledger::{self, spool};
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy status                 inside `run`: this session; else today\n  \
smartproxy status --json\n  PS1='$(smartproxy status --line) \\$ '   bash prompt\n\n\
Claude Code status line (.claude/settings.json), for sessions started with `smartproxy run`:\n  \
\"statusLine\": {\"type\": \"command\", \"command\": \"smartproxy status --line\"}\n\n\
The burn rate is the spend of the last hour per hour (of the session's life if shorter); the \
model is the newest request's; `left` is how long the tightest budget (the session's, daily \
or monthly) lasts at that rate. JSON on stdin (Claude Code sends some) is read and ignored.\n\n\
The session is the one in SMARTPROXY_SESSION_ID, which `run` gives its command. Figures lag \
the proxy by the ledger's batching (well under a second)."
)]
pub struct StatusArgs {
    /// This session instead of the one in SMARTPROXY_SESSION_ID (a full id or a unique prefix).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Only the amount spent and, when there is a budget, what is left: `$0.42 ($1.58 left)`.
    #[arg(long, conflicts_with = "line")]
    pub short: bool,

    /// One short line for a prompt or Claude Code's status line: spent, burn rate, model and
    /// time left: `$0.42 · $0.52/h · gpt-4o · 3h10m left`. Coloured only on a terminal.
    #[arg(long, conflicts_with = "json")]
    pub line: bool,

    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,
}

/// What the line says.
#[derive(Debug, serde::Serialize)]
struct Status {
    /// `session` or `today`.
    scope: &'static str,
    session_id: Option<String>,
    tag: Option<String>,
    requests: u64,
    failed: u64,
    /// Real spending: simulated (mock) costs are apart, unpriced requests are not in it.
    spent_usd: f64,
    /// List-price cost of requests the mock provider served (nothing spent).
    simulated_usd: Option<f64>,
    /// Successful requests to models with no known price: `spent_usd` leaves them out.
    unpriced: u64,
    budget_usd: Option<f64>,
    left_usd: Option<f64>,
    #[serde(flatten)]
    outlook: Outlook,
}

/// How long `--line` and `--short` wait for a PostgreSQL ledger before saying it is unreachable.
const PROMPT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn status(args: &StatusArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    drain_stdin();
    let config = super::load_config(config_path)?;
    // Rows waiting in the local spool for an unreachable PostgreSQL ledger (team mode).
    let spooled = spool::pending_at(&spool::default_path()).unwrap_or_else(|err| {
        printer::warn(&format!("cannot read the ledger spool: {err}"));
        0
    });
    let reference = args
        .session
        .clone()
        .or_else(|| std::env::var("SMARTPROXY_SESSION_ID").ok())
        .filter(|s| !s.trim().is_empty());
    // Nothing recorded yet is a status too: nothing spent. A PostgreSQL ledger that cannot be
    // reached is said so, with the rows waiting for it, and no amount: a zero would be a lie.
    // A prompt redraws often: it waits a second for a team ledger, not the usual ten.
    let opened = if args.line || args.short {
        LedgerReader::open_within(&config.database, PROMPT_WAIT)
    } else {
        LedgerReader::open(&config.database)
    };
    let conn = match opened {
        Ok(reader) => Some(reader),
        Err(err) => {
            if let LedgerLocation::Postgres(url) = &config.database {
                printer::out(&unreachable_line(url.redacted(), &err, spooled, args.json));
                return Ok(0);
            }
            None
        }
    };
    // A session named on the command line must exist (`SMARTPROXY_SESSION_ID` may name one
    // `run` has not written yet).
    if let Some(named) = &args.session {
        match &conn {
            Some(conn) => drop(super::stats::select_session(conn, false, Some(named))?),
            None => anyhow::bail!("no session matches `{named}`: nothing is recorded yet"),
        }
    }
    let now_ms = ledger::now_ms();
    let day_start_ms = period_start_ms(Period::Day, now_ms, config.budget.utc_offset_s);
    let (mut status, started_ms) = match (&conn, reference) {
        (Some(conn), Some(reference)) => session_status(conn, &reference, now_ms)?,
        (None, Some(reference)) => (
            Status {
                scope: "session",
                session_id: Some(reference),
                ..today(Totals::default(), None)
            },
            now_ms,
        ),
        (Some(conn), None) => {
            let filter = Filter {
                session_id: None,
                since_ms: Some(day_start_ms),
                until_ms: None,
            };
            let totals = conn.totals(&filter)?;
            (today(totals, config.budget.daily_usd), day_start_ms)
        }
        (None, None) => (
            today(Totals::default(), config.budget.daily_usd),
            day_start_ms,
        ),
    };
    // `--short` prints none of the outlook: it skips its reads.
    if let Some(conn) = conn.as_ref().filter(|_| !args.short) {
        let scope = Scope {
            session_id: (status.scope == "session")
                .then_some(status.session_id.as_deref())
                .flatten(),
            started_ms,
            session_left_usd: (status.scope == "session")
                .then_some(status.left_usd)
                .flatten(),
        };
        status.outlook = outlook(conn, &scope, &config.budget, now_ms)?;
    }
    let spool_note = if spooled > 0 {
        spool_note(spooled)
    } else {
        String::new()
    };
    printer::out(&if args.json {
        let mut value = json!(status);
        value["ledger"] = json!(config.database.to_string());
        value["backend"] = json!(if config.database.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        });
        value["spooled"] = json!(spooled);
        value.to_string()
    } else if args.short {
        short_line(&status)
    } else if args.line {
        prompt_line(&status, colour())
    } else {
        line(&status) + &spool_note
    });
    Ok(0)
}

/// Team mode with PostgreSQL out of reach: where rows go, why they cannot, and how many wait
/// in the local spool. `smartproxy ledger: postgres://me@db/sp unreachable · 12 rows wait in
/// the spool`
fn unreachable_line(url: &str, err: &ledger::LedgerError, spooled: u64, json: bool) -> String {
    if json {
        return json!({
            "ledger": url,
            "backend": "postgres",
            "reachable": false,
            "error": err.to_string(),
            "spooled": spooled,
        })
        .to_string();
    }
    format!(
        "smartproxy ledger: {url} unreachable{}",
        spool_note(spooled)
    )
}

/// ` · 12 rows wait in the spool`
fn spool_note(spooled: u64) -> String {
    format!(
        " · {spooled} row{} wait in the spool",
        if spooled == 1 { "" } else { "s" }
    )
}

/// A session's status and its start (`now_ms` when `run` has not written it yet).
fn session_status(
    conn: &LedgerReader,
    reference: &str,
    now_ms: i64,
) -> anyhow::Result<(Status, i64)> {
    // A session `run` just started may not be written yet: its id is taken as it is.
    let id = match conn.resolve_session(reference)? {
        query::Resolved::Found(id) => id,
        _ => reference.to_owned(),
    };
    let (tag, budget_usd) = conn.session_tag_and_budget(&id)?.unwrap_or_default();
    let started_ms = conn
        .session_span(&id)?
        .map_or(now_ms, |span| span.started_ms);
    let filter = Filter {
        session_id: Some(id.clone()),
        since_ms: None,
        until_ms: None,
    };
    let totals = conn.totals(&filter)?;
    let spent_usd = totals.known_cost().unwrap_or(0.0);
    // A session's own budget counts its simulated costs too, as `run --mock` does.
    let counted = spent_usd + totals.simulated_usd.unwrap_or(0.0);
    let status = Status {
        scope: "session",
        session_id: Some(id),
        tag,
        requests: totals.requests,
        failed: totals.failed,
        spent_usd,
        simulated_usd: totals.simulated_usd,
        unpriced: totals.unpriced,
        budget_usd,
        left_usd: budget_usd.map(|b| (b - counted).max(0.0)),
        outlook: Outlook::default(),
    };
    Ok((status, started_ms))
}

fn today(totals: Totals, daily_usd: Option<f64>) -> Status {
    let spent_usd = totals.known_cost().unwrap_or(0.0);
    Status {
        scope: "today",
        session_id: None,
        tag: None,
        requests: totals.requests,
        failed: totals.failed,
        spent_usd,
        simulated_usd: totals.simulated_usd,
        unpriced: totals.unpriced,
        budget_usd: daily_usd,
        left_usd: daily_usd.map(|b| (b - spent_usd).max(0.0)),
        outlook: Outlook::default(),
    }
}

/// `smartproxy 3f2a1b0c (claude): $0.0420 · 12 req, 1 failed · $1.9580 of $2.0000 left`
fn line(s: &Status) -> String {
    let scope = match (&s.session_id, &s.tag) {
        (Some(id), Some(tag)) => format!("{} ({tag})", short_id(id)),
        (Some(id), None) => short_id(id).to_owned(),
        (None, _) => "today".to_owned(),
    };
    let mut text = format!("smartproxy {scope}: {} · {} req", spent(s), s.requests);
    if s.failed > 0 {
        text.push_str(&format!(", {} failed", s.failed));
    }
    if let (Some(left), Some(budget)) = (s.left_usd, s.budget_usd) {
        text.push_str(&format!(
            " · {} of {} left",
            money(Some(left)),
            money(Some(budget))
        ));
    }
    if let Some(burn) = s.outlook.burn_usd_per_hour.filter(|b| *b > 0.0) {
        text.push_str(&format!(" · {}", status_burn::rate(burn)));
        if let Some(hours) = s.outlook.tightest.as_ref().and_then(|t| t.hours_left) {
            text.push_str(&format!(", {} to go", status_burn::hours(hours)));
        }
    }
    if let Some(frees) = s.outlook.tightest.as_ref().and_then(frees_up) {
        text.push_str(&format!(" · {frees}"));
    }
    if let Some(model) = &s.outlook.model {
        text.push_str(&format!(" · {model}"));
    }
    text
}

/// `$0.42 · $0.52/h · gpt-4o · 3h10m left`: what a prompt has room for. With `colour`, the
/// amount is green, yellow under half the tightest budget left, red under a fifth.
fn prompt_line(s: &Status, colour: bool) -> String {
    let mut parts = vec![spent(s)];
    if colour && let Some(t) = &s.outlook.tightest {
        let limit = t.left_usd + s.spent_usd;
        let code = match t.left_usd / limit.max(f64::MIN_POSITIVE) {
            f if f < 0.2 => "31",
            f if f < 0.5 => "33",
            _ => "32",
        };
        parts[0] = format!("\x1b[{code}m{}\x1b[0m", parts[0]);
    }
    if let Some(burn) = s.outlook.burn_usd_per_hour.filter(|b| *b > 0.0) {
        parts.push(status_burn::rate(burn));
    }
    parts.extend(s.outlook.model.clone());
    if let Some(t) = &s.outlook.tightest {
        parts.push(match (frees_up(t), t.hours_left) {
            (Some(frees), _) => frees,
            (None, Some(hours)) => format!("{} left", status_burn::hours(hours)),
            (None, None) => format!("{} left", money(Some(t.left_usd))),
        });
    }
    parts.join(" · ")
}

/// `rolling 5h used up, frees up 03:05`: a rolling window that is the tightest budget and has
/// nothing left says when its oldest spend ages out.
fn frees_up(t: &status_burn::Tightest) -> Option<String> {
    let at = t.frees_at_ms.filter(|_| t.left_usd <= 0.0)?;
    Some(format!(
        "{} used up, frees up {}",
        t.budget,
        super::format::local_time(at)
    ))
}

/// Colour only on a terminal, and never with NO_COLOR.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Claude Code writes a JSON object to its status-line command's stdin: read and drop it, so
/// it never meets a closed pipe, without ever waiting on a terminal or on a writer that sends
/// nothing (20 ms at most, 1 MiB at most).
fn drain_stdin() {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Read;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total < 1 << 20 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        // Readable (or hung up): this read does not block.
        match stdin.lock().read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// `$0.0420 ($1.9580 left)`
fn short_line(s: &Status) -> String {
    match s.left_usd {
        Some(left) => format!("{} ({} left)", spent(s), money(Some(left))),
        None => spent(s),
    }
}

/// `$0.0420`, `$0.0420+ (2 unpriced)` when some requests have no known price (never a silent
/// zero), `$0.0000 (+$0.0446 simulated)` for mock-provider costs.
fn spent(s: &Status) -> String {
    let mut text = money(Some(s.spent_usd));
    if s.unpriced > 0 {
        text.push_str(&format!("+ ({} unpriced)", s.unpriced));
    }
    if let Some(simulated) = s.simulated_usd {
        text.push_str(&format!(" (+{} simulated)", money(Some(simulated))));
    }
    text
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
