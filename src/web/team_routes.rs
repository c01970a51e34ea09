//! `/team` and `/budgets` (and their `/api/...` JSON and `?format=csv|jsonl` downloads): who
//! spent what over a range of UTC days, and where every budget stands.

use serde_json::{Value, json};

use super::download::{self, Format};
use super::{RenderError, Rendered, Web, pages, query_param, range};
use crate::ledger::pages as queries;
use crate::ledger::reader::LedgerReader;

/// `/team`: the range (UTC days), `format=`.
pub(super) fn team(
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let today = chrono::Utc::now().date_naive();
    let parsed = range::parse(
        &query_param(query, "range"),
        &query_param(query, "from"),
        &query_param(query, "to"),
        today,
        "7d",
    )
    .and_then(|range| Ok((range, Format::parse(&query_param(query, "format"))?)));
    let (range, format) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    let (from, to) = (range.from.to_string(), range.to.to_string());
    let usage = match conn {
        Some(conn) => conn.team_usage(&from, &to)?,
        None => queries::TeamUsage {
            from,
            to,
            ..queries::TeamUsage::default()
        },
    };
    Ok(match format {
        Some(format) => Rendered::File(team_file(&usage, format)),
        None if api => Rendered::Json(serde_json::to_value(&usage)?),
        None => Rendered::Html(pages::team::render(&usage, &range)),
    })
}

/// One row per team, then one per user (with their team), as the page lists them.
fn team_file(usage: &queries::TeamUsage, format: Format) -> download::File {
    const COLUMNS: [&str; 9] = [
        "from",
        "to",
        "kind",
        "name",
        "team",
        "requests",
        "failed",
        "tokens_in",
        "cost_usd",
    ];
    let row = |kind: &str, t: &crate::ledger::query::Totals, team: &str| -> Value {
        json!({"from": usage.from, "to": usage.to, "kind": kind, "name": t.key, "team": team,
            "requests": t.requests, "failed": t.failed, "tokens_in": t.prompt_tokens,
            "cost_usd": t.cost_usd})
    };
    let rows: Vec<Value> = usage
        .teams
        .iter()
        .map(|t| row("team", t, &t.key))
        .chain(usage.users.iter().map(|u| row("user", &u.totals, &u.team)))
        .collect();
    let name = format!("smartproxy-team-{}-{}", usage.from, usage.to);
    download::file(&name, format, &COLUMNS, &rows)
}

/// `/budgets`: `format=`.
pub(super) fn budgets(
    web: &Web,
    conn: Option<&LedgerReader>,
    api: bool,
    query: &str,
) -> Result<Rendered, RenderError> {
    let format = match Format::parse(&query_param(query, "format")) {
        Ok(format) => format,
        Err(message) => return Ok(Rendered::BadRequest(message)),
    };
    let now = crate::ledger::now_ms();
    let limits = crate::budget::standings::Limits {
        budget: &web.budgets.budget,
        key_budgets: &web.budgets.key_budgets,
    };
    let lines = crate::budget::standings::read(conn, &limits, now)?;
    let session_usd = web.budgets.budget.session_usd;
    Ok(match format {
        Some(format) => {
            const COLUMNS: [&str; 8] = [
                "scope",
                "period",
                "period_start_ms",
                "cap_usd",
                "spent_usd",
                "reserved_usd",
                "left_usd",
                "runs_out_ms",
            ];
            let rows: Vec<Value> = lines
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?;
            Rendered::File(download::file(
                "smartproxy-budgets",
                format,
                &COLUMNS,
                &rows,
            ))
        }
        None if api => {
            Rendered::Json(json!({"session": {"limit_usd": session_usd}, "scopes": lines}))
        }
        None => Rendered::Html(pages::budgets::render(&lines, session_usd, now)),
    })
}
