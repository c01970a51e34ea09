//! The cost summary `run` prints when the command exits: a table on stderr, or JSON (also into
//! `--summary-file`).

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::{RunArgs, SummaryFormat};
use crate::budget::store::Standing;
use crate::cli::format;
use crate::ledger::query::{self, Filter, GroupBy};
use crate::ledger::{Ledger, now_ms};
use crate::printer;
use crate::proxy::AppState;

/// The cost summary, on stderr or in `--summary-file`.
pub(super) fn print_summary(
    args: &RunArgs,
    ledger: &Ledger,
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
    let text = match summary(
        ledger,
        session_id,
        args.summary,
        elapsed,
        &state.unpriced_models(),
        &shared_standings,
    ) {
        Ok(text) => text,
        Err(err) => {
            printer::warn(&format!("cannot read the session summary: {err:#}"));
            return;
        }
    };
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
    ledger: &Ledger,
    session_id: &str,
    format: SummaryFormat,
    elapsed: Duration,
    unpriced_models: &[String],
    shared: &[Standing],
) -> anyhow::Result<String> {
    let (total, by_model, session, actions) = read_back(ledger, session_id)?;
    let budget = session.budget_usd;
    if format == SummaryFormat::Json {
        return Ok(json!({
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
        })
        .to_string());
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
        text.push_str(&format::totals_table("model", &by_model, &total));
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
        text.push_str(&format!("budget: {}\n", describe_actions(&actions)));
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
    Ok(text)
}

/// The session's totals, per model, its row and its budget actions, from either backend.
fn read_back(
    ledger: &Ledger,
    session_id: &str,
) -> anyhow::Result<(
    query::Totals,
    Vec<query::Totals>,
    query::SessionRow,
    query::BudgetActions,
)> {
    if let Some(pg) = ledger.postgres() {
        let id = session_id.to_owned();
        let read = pg.block_on(move |client| async move {
            crate::ledger::postgres::read::session_summary(&client, &id).await
        })?;
        let session = read.session.context("the session row is missing")?;
        return Ok((read.total, read.by_model, session, read.actions));
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
    Ok((total, by_model, session, actions))
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
