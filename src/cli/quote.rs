//! `smartproxy quote -- <command>`: what the command's earlier runs cost and took (p50 and
//! p90 over the most recent finished sessions of the same program, tag or project), before
//! running it again; `run --quote` prints the same line as the session starts.

use std::ffi::OsString;
use std::path::Path;

use serde_json::json;

use super::format;
use crate::config::Config;
use crate::ledger::LedgerError;
use crate::ledger::reader::LedgerReader;
use crate::ledger::session_parts::{HistoryQuery, PastSession};
use crate::printer;

/// How many recent sessions a quote reads unless `--last` says otherwise.
const DEFAULT_SESSIONS: usize = 20;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "A session counts when it was a `run` that finished (not one still running), of the same program \
(the command's file name, as `run` records it: `python3`, `claude`), and of the --tag and --project given. \
Costs are what the session and the runs inside it spent, simulated (mock) list prices included; durations \
are from start to end. With no such session it prints one `no history` line and exits 0.\n\nExamples:\n  \
smartproxy quote -- python3 agent.py\n  smartproxy quote --tag nightly -- ./eval.sh\n  \
smartproxy quote --project api --json\n  smartproxy run --quote -- ./eval.sh"
)]
pub struct QuoteArgs {
    /// Only sessions with this tag (`run --tag`).
    #[arg(long, value_name = "NAME")]
    pub tag: Option<String>,

    /// Only sessions of this project (`run --project`, the config's `project:`, or the git
    /// repository's folder name).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,

    /// How many of the most recent finished sessions to read.
    #[arg(long = "last", value_name = "N", default_value_t = DEFAULT_SESSIONS)]
    pub last: usize,

    /// Print JSON instead of a line.
    #[arg(long)]
    pub json: bool,

    /// The command to quote, after `--` (only its program's name is used); without one,
    /// --tag or --project choose the sessions.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub fn quote(args: &QuoteArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    anyhow::ensure!(
        !args.command.is_empty() || args.tag.is_some() || args.project.is_some(),
        "say what to quote: a command after `--`, or --tag or --project"
    );
    anyhow::ensure!(args.last > 0, "--last must be 1 or more");
    let config = super::load_config(config_path)?;
    let q = HistoryQuery {
        program: args.command.first().map(program_name),
        tag: args.tag.clone(),
        project: args.project.clone(),
        limit: args.last,
    };
    let history = history(&config, &q)?;
    let quote = Quote::of(&history);
    if args.json {
        printer::out(&quote.json(&q).to_string());
    } else {
        printer::out(&quote.line(&q));
    }
    Ok(0)
}

/// `run --quote`: the quote's line on stderr; a ledger that cannot be read is a warning, never
/// a reason not to run the command.
pub(super) fn print_for_run(
    config: &Config,
    command: &[OsString],
    tag: Option<&str>,
    project: Option<&str>,
) {
    let q = HistoryQuery {
        program: command.first().map(program_name),
        tag: tag.map(str::to_owned),
        project: project.map(str::to_owned),
        limit: DEFAULT_SESSIONS,
    };
    match history(config, &q) {
        Ok(history) => printer::note(&format!("smartproxy: {}", Quote::of(&history).line(&q))),
        Err(err) => printer::warn(&format!("--quote: {err:#}")),
    }
}

/// The finished sessions `q` selects; none when nothing was ever recorded.
fn history(config: &Config, q: &HistoryQuery) -> anyhow::Result<Vec<PastSession>> {
    let reader = match LedgerReader::open(&config.database) {
        Ok(reader) => reader,
        Err(LedgerError::Missing { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    Ok(reader.session_history(q)?)
}

/// p50 and p90 of the history's costs and durations.
#[derive(Debug, Clone, PartialEq)]
struct Quote {
    sessions: usize,
    cost: Option<(f64, f64)>,
    duration_ms: Option<(i64, i64)>,
}

impl Quote {
    fn of(history: &[PastSession]) -> Self {
        let mut costs: Vec<f64> = history.iter().map(|s| s.spent_usd).collect();
        costs.sort_by(f64::total_cmp);
        let mut durations: Vec<i64> = history.iter().map(|s| s.duration_ms).collect();
        durations.sort_unstable();
        Self {
            sessions: history.len(),
            cost: percentile(&costs, 50).zip(percentile(&costs, 90)),
            duration_ms: percentile(&durations, 50).zip(percentile(&durations, 90)),
        }
    }

    /// `python3 [nightly]: $0.0120 (p50) to $0.0400 (p90), 1m 2s to 3m 4s, over 12 finished sessions`.
    fn line(&self, q: &HistoryQuery) -> String {
        let what = describe(q);
        match (self.cost, self.duration_ms) {
            (Some((c50, c90)), Some((d50, d90))) => format!(
                "{what}: {} (p50) to {} (p90), {} to {}, over {} finished session{}",
                format::money(Some(c50)),
                format::money(Some(c90)),
                format::duration(d50),
                format::duration(d90),
                self.sessions,
                if self.sessions == 1 { "" } else { "s" },
            ),
            _ => format!("{what}: no history (no finished run to quote from)"),
        }
    }

    fn json(&self, q: &HistoryQuery) -> serde_json::Value {
        json!({
            "program": q.program,
            "tag": q.tag,
            "project": q.project,
            "sessions": self.sessions,
            "cost_usd": self.cost.map(|(p50, p90)| json!({"p50": p50, "p90": p90})),
            "duration_ms": self.duration_ms.map(|(p50, p90)| json!({"p50": p50, "p90": p90})),
        })
    }
}

/// `python3 [tag nightly] [project api]`.
fn describe(q: &HistoryQuery) -> String {
    let mut parts = Vec::new();
    if let Some(program) = &q.program {
        parts.push(format!("`{program}`"));
    }
    if let Some(tag) = &q.tag {
        parts.push(format!("tag {tag}"));
    }
    if let Some(project) = &q.project {
        parts.push(format!("project {project}"));
    }
    format!("quote for {}", parts.join(", "))
}

/// The command's program as the ledger records it (`run` too): its file name.
pub(super) fn program_name(program: &OsString) -> String {
    Path::new(program)
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// The nearest-rank percentile `p` of sorted `values`: a value some session really had.
fn percentile<T: Copy>(sorted: &[T], p: usize) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile::<i64>(&[], 50), None);
        let three = [1, 2, 3];
        assert_eq!(percentile(&three, 50), Some(2));
        assert_eq!(percentile(&three, 90), Some(3));
    }
}
