//! The cost summary `run` prints when the command exits: a table on stderr, or JSON (also into
//! `--summary-file`).

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::{RunArgs, SummaryFormat};
use crate::budget::store::Standing;
use crate::cli::format;
use crate::ledger::query::{self, Filter, GroupBy};
use crate::ledger::session_parts::{self, KindTotals};
use crate::ledger::{Ledger, now_ms};
use crate::printer;
use crate::proxy::AppState;

/// The cost summary, on stderr or in `--summary-file`; with `--save-baseline`, its JSON in
/// that file too.
pub(super) fn print_summary(
    args: &RunArgs,
    figures: &Figures,
    state: &AppState,
    session_id: &str,
    elapsed: Duration,
) {
    // Where the daily and monthly limits stand as the session ends, for the summary.
    let shared_standings = state
        .shared_budget
        .as_ref()
        .map(|shared| shared.standings(now_ms()))
        .unwrap_or_default();
    let unpriced = state.unpriced_models();
    if let Some(path) = &args.save_baseline {
        let json = summary(
            figures,
            session_id,
            SummaryFormat::Json,
            elapsed,
            &unpriced,
            &shared_standings,
        );
        if let Err(err) = std::fs::write(path, format!("{json}\n")) {
            printer::warn(&format!(
                "cannot write the baseline to {}: {err}",
                path.display()
            ));
        }
    }
    if args.summary == SummaryFormat::None {
        return;
    }
    let text = summary(
        figures,
        session_id,
        args.summary,
        elapsed,
        &unpriced,
        &shared_standings,
    );
    match &args.summary_file {
        Some(path) => {
            let text = format!("{}\n", text.trim());
            if let Err(err) = std::fs::write(path, text) {
                printer::warn(&format!(
                    "cannot write the summary to {}: {err}",
                    path.display()
                ));
            }
        }
        None => printer::note(&text),
    }
}

/// The session's figures, read back from the ledger (not a running tally), as a table or JSON.
fn summary(
    figures: &Figures,
    session_id: &str,
    format: SummaryFormat,
    elapsed: Duration,
    unpriced_models: &[String],
    shared: &[Standing],
) -> String {
    let Figures {
        total,
        by_model,
        session,
        actions,
        kinds,
        children,
    } = figures;
    let budget = session.budget_usd;
    if format == SummaryFormat::Json {
        return json!({
            "session_id": session_id,
            "tag": session.tag,
            "parent_id": session.parent_id,
            "exit_code": session.exit_code,
            "duration_ms": elapsed.as_millis() as u64,
            "requests": total.requests,
            "ok": total.ok,
            "failed": total.failed,
            "prompt_tokens": total.prompt_tokens,
            "completion_tokens": total.completion_tokens,
            "cached_tokens": total.cached_tokens,
            "cache_write_tokens": total.cache_write_tokens,
            "cost_usd": total.known_cost(),
            "subscription_usd": total.subscription_usd,
            "simulated_usd": total.simulated_usd,
            "budget_usd": budget,
            "budget_actions": actions,
            "shared_budgets": shared.iter().map(|s| json!({
                "name": s.name,
                "limit_usd": s.limit_usd,
                "spent_usd": s.spent_usd,
                "reserved_usd": s.reserved_usd,
                "left_usd": s.remaining_usd(),
            })).collect::<Vec<_>>(),
            "estimated_requests": total.estimated,
            "unpriced_requests": total.unpriced,
            "unpriced_models": unpriced_models,
            "by_model": by_model,
            "by_kind": kinds,
            "children": children.iter().map(|c| json!({
                "session_id": c.id,
                "tag": c.tag,
                "program": c.program,
                "exit_code": c.exit_code,
                "requests": c.requests,
                "cost_usd": c.cost_usd,
                "simulated_usd": c.simulated_usd,
            })).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let mut text = format!(
        "\nsmartproxy session {session_id}{} — {} request{} ({} ok, {} failed) in {}\n",
        session
            .tag
            .as_deref()
            .map(|t| format!(" [{t}]"))
            .unwrap_or_default(),
        total.requests,
        if total.requests == 1 { "" } else { "s" },
        total.ok,
        total.failed,
        format::duration(elapsed.as_millis() as i64),
    );
    if total.requests > 0 {
        text.push_str(&format::totals_table("model", by_model, total));
        text.push('\n');
    }
    // The session's own budget counts simulated costs too (budgets can be tried offline).
    let simulated = total
        .simulated_usd
        .map(|s| format!(" + {} simulated", format::money(Some(s))))
        .unwrap_or_default();
    match budget {
        Some(limit) => {
            let spent = total.cost_usd.unwrap_or(0.0) + total.simulated_usd.unwrap_or(0.0);
            text.push_str(&format!(
                "cost {}{simulated} of a {} budget ({:.1}% used)\n",
                format::money(total.known_cost()),
                format::money(Some(limit)),
                spent / limit * 100.0
            ));
        }
        None if shared.is_empty() => text.push_str(&format!(
            "cost {}{simulated} (no budget set)\n",
            format::money(total.known_cost())
        )),
        None => text.push_str(&format!(
            "cost {}{simulated}\n",
            format::money(total.known_cost())
        )),
    }
    if actions.any() {
        text.push_str(&format!("budget: {}\n", describe_actions(actions)));
    }
    if actions.loop_refused > 0 {
        let n = actions.loop_refused;
        text.push_str(&format!(
            "loop breaker: {n} {} refused (the agent repeated itself)\n",
            if n == 1 { "request" } else { "requests" }
        ));
    }
    for s in shared {
        text.push_str(&format!(
            "{} budget: {} of {} spent by every process, {} left\n",
            s.name,
            format::money(Some(s.spent_usd)),
            format::money(Some(s.limit_usd)),
            format::money(Some(s.remaining_usd())),
        ));
    }
    text.push_str(&children_lines(children));
    text
}

/// `nested runs (2, in the figures above):` and a line per run started inside this one.
fn children_lines(children: &[query::SessionRow]) -> String {
    if children.is_empty() {
        return String::new();
    }
    let mut text = format!("nested runs ({}, in the figures above):\n", children.len());
    for c in children {
        let simulated = c
            .simulated_usd
            .map(|s| format!(" + {} simulated", format::money(Some(s))))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {} {}{} — {} request{}, {}{simulated}, {}\n",
            c.id.get(..8).unwrap_or(&c.id),
            c.program.as_deref().unwrap_or("-"),
            c.tag
                .as_deref()
                .map(|t| format!(" [{t}]"))
                .unwrap_or_default(),
            c.requests,
            if c.requests == 1 { "" } else { "s" },
            format::money(c.cost_usd.or((c.unpriced == 0).then_some(0.0))),
            c.status_text(),
        ));
    }
    text
}

/// What the summary and the cost gates read about the session (and the runs inside it).
pub(super) struct Figures {
    pub total: query::Totals,
    pub by_model: Vec<query::Totals>,
    pub session: query::SessionRow,
    pub actions: query::BudgetActions,
    pub kinds: Vec<KindTotals>,
    /// The runs started directly inside this one.
    pub children: Vec<query::SessionRow>,
}

impl Figures {
    /// What the session spent, simulated (mock) list prices included, as its budget counts.
    pub fn spent_usd(&self) -> f64 {
        self.total.cost_usd.unwrap_or(0.0) + self.total.simulated_usd.unwrap_or(0.0)
    }
}

/// The session's figures from either backend, read back once the ledger is flushed.
pub(super) fn read_back(ledger: &Ledger, session_id: &str) -> anyhow::Result<Figures> {
    if let Some(pg) = ledger.postgres() {
        let id = session_id.to_owned();
        let (read, kinds, children) = pg.block_on(move |client| async move {
            use crate::ledger::postgres::read;
            let summary = read::session_summary(&client, &id).await?;
            let kinds = read::kinds(&client, &id).await?;
            let children = read::children(&client, &id).await?;
            Ok::<_, tokio_postgres::Error>((summary, kinds, children))
        })?;
        let session = read.session.context("the session row is missing")?;
        return Ok(Figures {
            total: read.total,
            by_model: read.by_model,
            session,
            actions: read.actions,
            kinds,
            children,
        });
    }
    let path = ledger.path().context("the ledger has no file")?;
    let conn = query::open(path)?;
    let filter = Filter {
        session_id: Some(session_id.to_owned()),
        since_ms: None,
        until_ms: None,
    };
    let total = query::totals(&conn, &filter)?;
    let by_model = query::grouped(&conn, &filter, GroupBy::Model)?;
    let session = query::session(&conn, session_id)?.context("the session row is missing")?;
    let actions = query::budget_actions(&conn, &filter)?;
    Ok(Figures {
        total,
        by_model,
        session,
        actions,
        kinds: session_parts::kinds(&conn, session_id)?,
        children: session_parts::children(&conn, session_id)?,
    })
}

/// `2 requests refused, 1 fitted (max_tokens lowered)`.
fn describe_actions(actions: &query::BudgetActions) -> String {
    let plural = |n: u64| if n == 1 { "request" } else { "requests" };
    let mut parts = Vec::new();
    if actions.refused > 0 {
        parts.push(format!(
            "{} {} refused",
            actions.refused,
            plural(actions.refused)
        ));
    }
    if actions.fitted > 0 {
        parts.push(format!(
            "{} {} fitted (max_tokens lowered to what was left)",
            actions.fitted,
            plural(actions.fitted)
        ));
    }
    if actions.downgraded > 0 {
        parts.push(format!(
            "{} {} downgraded to budget.downgrade_to",
            actions.downgraded,
            plural(actions.downgraded)
        ));
    }
    parts.join(", ")
}
