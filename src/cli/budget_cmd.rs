//! `smartproxy budget`: every configured limit, what every process has spent against it and
//! what requests in flight have reserved, with when it runs out at the current rate; the same
//! lines from a SQLite or a PostgreSQL ledger (`budget::standings`).

use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

use super::format;
use crate::budget::policy::Period;
use crate::budget::standings::{self, Limits, ScopeStanding, period_name};
use crate::config::LedgerLocation;
use crate::ledger::LedgerError;
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Limits come from `budget:` in the config (session_usd, daily_usd, weekly_usd, monthly_usd, \
windows, timezone) or SMARTPROXY_BUDGET_{SESSION,DAILY,WEEKLY,MONTHLY}_LIMIT_USD, and from client keys' \
daily budgets; on a team (PostgreSQL) ledger also from `smartproxy keys limit`, and every scope with \
a counter is listed. `runs out` is when the limit is used up at the rate spent so far this day, week \
or month; a rolling window (`budget.windows: [{every: 5h, usd: 10}]`) instead shows when its oldest \
spend ages out (`frees up`).\n\n\
Examples:\n  smartproxy budget\n  smartproxy budget --json | jq '.scopes[] | select(.left_usd < 1)'"
)]
pub struct BudgetArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn budget(args: &BudgetArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let now = crate::ledger::now_ms();
    let keys = config.client_key_budgets();
    let limits = Limits {
        budget: &config.budget,
        key_budgets: &keys,
    };
    let lines = match LedgerReader::open(&config.database) {
        Ok(reader) => standings::read(Some(&reader), &limits, now)?,
        // Nothing recorded yet: every limit stands untouched.
        Err(LedgerError::Missing { .. }) => standings::read(None, &limits, now)?,
        Err(err) => return Err(err.into()),
    };
    let backend = match config.database {
        LedgerLocation::Sqlite(_) => "sqlite",
        LedgerLocation::Postgres(_) => "postgres",
    };
    if args.json {
        printer::out(&as_json(backend, config.budget.session_usd, &lines).to_string());
        return Ok(0);
    }
    printer::out(&as_text(config.budget.session_usd, &lines, now));
    Ok(0)
}

fn as_json(backend: &str, session_usd: Option<f64>, lines: &[ScopeStanding]) -> serde_json::Value {
    let mut body = json!({"backend": backend, "session": {"limit_usd": session_usd},
        "scopes": lines});
    // The process-wide limits also under their old names (`daily`, `monthly`), for scripts
    // written against earlier versions.
    for l in lines.iter().filter(|l| l.scope == "all") {
        let name = match l.period {
            Period::Day => "daily",
            Period::Month => "monthly",
            Period::Week | Period::Window(_) => continue,
        };
        body[name] = json!({"limit_usd": l.cap_usd, "spent_usd": l.spent_usd,
            "reserved_usd": l.reserved_usd, "remaining_usd": l.left_usd});
    }
    body
}

fn as_text(session_usd: Option<f64>, lines: &[ScopeStanding], now: i64) -> String {
    let mut text = match session_usd {
        Some(limit) => format!(
            "session: {} per `run` session\n",
            format::money(Some(limit))
        ),
        None => "session: no limit (run --budget USD sets one)\n".to_owned(),
    };
    if lines.is_empty() {
        text.push_str(
            "no shared limit (budget.daily_usd / weekly_usd / monthly_usd / windows, a client \
             key's budget_daily_usd, budget_weekly_usd or windows; team ledger: `keys create --daily`, `keys limit`)\n",
        );
        return text;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "scope", "period", "cap", "spent", "reserved", "left", "runs out",
        ]);
    for l in lines {
        let runs_out = match (l.every_ms, l.runs_out_ms, l.frees_at_ms) {
            (Some(_), _, Some(at)) => format!("frees up {}", format::local_time(at)),
            (Some(_), _, None) => "nothing to free".to_owned(),
            (None, Some(at), _) if at <= now => "now".to_owned(),
            (None, Some(at), _) => format::local_time(at),
            (None, None, _) => format!("not this {}", period_name(l.period)),
        };
        table.add_row(vec![
            l.scope.clone(),
            period_name(l.period),
            format::money(Some(l.cap_usd)),
            format::money(Some(l.spent_usd)),
            format::money(Some(l.reserved_usd)),
            format::money(Some(l.left_usd)),
            runs_out,
        ]);
    }
    text.push_str(&table.to_string());
    text.push('\n');
    text
}
