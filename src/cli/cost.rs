//! `smartproxy cost`: the exact cost of the sessions whose HEAD was on some commits (or a
//! branch), from the git state every `run` records at its start and end; no time windows.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::json;

use crate::ledger::attribution::{AttributedSession, Selection};
use crate::ledger::query::Totals;
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).args(["commit", "branch", "range"])),
    after_help = "A session counts for a commit when HEAD was on that commit at the session's start \
or at its end (a session that committed counts for the commit it started on and the one it made). \
--range A..B takes the commits `git rev-list A..B` lists (those in B and not in A: a pull \
request's commits with A its base). --branch counts sessions that started or ended on that branch \
in any working tree of this repository. Each session's figures are its own requests' (a `run` \
nested in it is a session of its own). Revisions are resolved by `git` in the current folder's \
repository; the ledger is the configured one (SQLite or PostgreSQL).\n\nExamples:\n  \
smartproxy cost --commit HEAD\n  smartproxy cost --range origin/main..HEAD --json     # for a PR \
comment or a CI step\n  smartproxy cost --branch feature/login\n  smartproxy cost --commit \
HEAD --trailer            # `AI-Cost: ...` (what `hooks install` adds)"
)]
pub struct CostArgs {
    /// Sessions whose HEAD at start or end was this commit (any revision git understands).
    #[arg(long, value_name = "REV")]
    pub commit: Option<String>,

    /// Sessions that started or ended on this branch (in this repository's working trees).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// Sessions whose HEAD at start or end was one of `git rev-list A..B`.
    #[arg(long, value_name = "A..B")]
    pub range: Option<String>,

    /// Print JSON: the selection, the total and every session with its figures.
    #[arg(long, conflicts_with = "trailer")]
    pub json: bool,

    /// Print one `AI-Cost: $X.XX (N requests, M sessions)` line, or nothing when no session
    /// matches (for commit messages).
    #[arg(long)]
    pub trailer: bool,
}

pub fn cost(args: &CostArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let (selection, label) = select(args)?;
    let config = super::load_config(config_path)?;
    let reader = LedgerReader::open(&config.database)?;
    let sessions = reader.attributed(&selection)?;
    let rows: Vec<Totals> = sessions.iter().map(|s| s.totals.clone()).collect();
    let total = Totals::sum("total", &rows);
    if args.trailer {
        if !sessions.is_empty() {
            printer::out(&trailer(&total, sessions.len()));
        }
        return Ok(0);
    }
    if args.json {
        printer::out(
            &json!({
                "selection": label,
                "commits": selection.commits,
                "branch": selection.branch,
                "sessions": sessions.len(),
                "total": total,
                "rows": sessions,
            })
            .to_string(),
        );
        return Ok(0);
    }
    printer::out(&table(&label, &total, &sessions));
    Ok(0)
}

/// The sessions to add up, and how to name them (`commit 1a2b3c4d5e6f`, `range a..b`).
fn select(args: &CostArgs) -> anyhow::Result<(Selection, String)> {
    git(&["rev-parse", "--git-dir"]).map_err(|_| {
        anyhow::anyhow!(
            "not in a git repository: run `smartproxy cost` inside the repository whose commits you ask about"
        )
    })?;
    if let Some(rev) = &args.commit {
        let id = git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .map_err(|_| anyhow::anyhow!("--commit {rev}: no such commit in this repository"))?;
        let label = format!("commit {}", short(&id));
        return Ok((
            Selection {
                commits: Some(vec![id]),
                ..Selection::default()
            },
            label,
        ));
    }
    if let Some(range) = &args.range {
        anyhow::ensure!(
            range.contains(".."),
            "--range {range}: write two revisions as A..B (the commits in B and not in A)"
        );
        let listed = git(&["rev-list", range, "--"])
            .map_err(|e| anyhow::anyhow!("--range {range}: git cannot list it: {e}"))?;
        let commits = listed.lines().map(str::to_owned).collect();
        return Ok((
            Selection {
                commits: Some(commits),
                ..Selection::default()
            },
            format!("range {range}"),
        ));
    }
    let branch = args.branch.clone().unwrap_or_default();
    let worktrees = git(&["worktree", "list", "--porcelain"])?;
    let repos = worktrees
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(str::to_owned)
        .collect();
    let label = format!("branch {branch}");
    Ok((
        Selection {
            branch: Some(branch),
            repos,
            ..Selection::default()
        },
        label,
    ))
}

/// `git ARGS` in the current folder: its stdout, trimmed, or what it said on failure.
fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("cannot run git (is it installed and on PATH?)")?;
    if !out.status.success() {
        anyhow::bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// `AI-Cost: $0.42 (17 requests, 2 sessions)`.
fn trailer(total: &Totals, sessions: usize) -> String {
    format!(
        "AI-Cost: {} ({}, {})",
        crate::format::money(total.known_cost()),
        plural(total.requests, "request"),
        plural(sessions as u64, "session")
    )
}

/// `1 request`, `3 requests` (counts grouped by thousands).
fn plural(n: u64, word: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {word}{s}", crate::format::count(n))
}

/// The total, then one line per session.
fn table(label: &str, total: &Totals, sessions: &[AttributedSession]) -> String {
    use crate::format::{cost_and_simulated, count, local_time};
    let mut out = format!(
        "{label}: {} · {} · {} · {} tokens in, {} out",
        cost_and_simulated(total.cost_usd, total.unpriced, total.simulated_usd),
        plural(total.requests, "request"),
        plural(sessions.len() as u64, "session"),
        count(total.prompt_tokens),
        count(total.completion_tokens),
    );
    for s in sessions {
        let at = |branch: &Option<String>, head: &Option<String>| {
            format!(
                "{}@{}",
                branch.as_deref().unwrap_or("detached"),
                head.as_deref().map_or("-", short)
            )
        };
        out.push_str(&format!(
            "\n  {}  {}  {} -> {}  {}  {}",
            s.id,
            local_time(s.started_ms),
            at(&s.branch, &s.head),
            at(&s.end_branch, &s.end_head),
            plural(s.totals.requests, "request"),
            cost_and_simulated(s.totals.cost_usd, s.totals.unpriced, s.totals.simulated_usd),
        ));
    }
    out
}
