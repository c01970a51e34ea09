//! `smartproxy budget`: every configured limit, what every process has spent against it and
//! what requests in flight have reserved (on a team ledger, every scope: `budget_pg.rs`).

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::format;
use crate::budget::SharedBudget;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Limits come from `budget:` in the config (session_usd, daily_usd, monthly_usd, timezone) \
or SMARTPROXY_BUDGET_{SESSION,DAILY,MONTHLY}_LIMIT_USD; on a team (PostgreSQL) ledger also from \
client keys and `smartproxy keys limit`, and every scope with a counter is listed with a forecast. \
Example:\n  smartproxy budget --json"
)]
pub struct BudgetArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn budget(args: &BudgetArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let now = crate::ledger::now_ms();
    if let crate::config::LedgerLocation::Postgres(_) = &config.database {
        return super::budget_pg::budget(args.json, &config, now);
    }
    let database = config.database.sqlite("budget")?;
    let shared = if database.exists() {
        SharedBudget::open_file(database, &config.budget, false)
            .context("cannot open the ledger")?
    } else {
        None
    };
    let standings = shared
        .as_ref()
        .map(|s| s.standings(now))
        .unwrap_or_default();
    // Each project of `budget.projects`, as a session of that project is held to it.
    let mut projects = Vec::new();
    if let Some(shared) = &shared {
        for name in config.budget.projects.keys() {
            shared.set_project(Some(name), &config.budget.projects);
            projects.extend(
                shared
                    .standings(now)
                    .into_iter()
                    .filter(|s| s.name.starts_with("project "))
                    .map(|s| (name.clone(), s)),
            );
        }
    }
    let figures = |s: &crate::budget::store::Standing| {
        json!({"limit_usd": s.limit_usd, "spent_usd": s.spent_usd,
            "reserved_usd": s.reserved_usd, "remaining_usd": s.remaining_usd()})
    };
    if args.json {
        let mut body = json!({"session": {"limit_usd": config.budget.session_usd}});
        for s in &standings {
            body[s.name] = figures(s);
        }
        for (name, s) in &projects {
            body["projects"][name][s.name.trim_start_matches("project ")] = figures(s);
        }
        printer::out(&body.to_string());
        return Ok(0);
    }
    let mut text = match config.budget.session_usd {
        Some(limit) => format!(
            "session: {} per `run` session\n",
            format::money(Some(limit))
        ),
        None => "session: no limit (run --budget USD sets one)\n".to_owned(),
    };
    if standings.is_empty()
        && config.budget.daily_usd.is_none()
        && config.budget.monthly_usd.is_none()
    {
        text.push_str("daily, monthly: no limit (budget.daily_usd / budget.monthly_usd)\n");
    }
    let named = projects.iter().map(|(name, s)| {
        (
            format!("project {name}, {}", s.name.trim_start_matches("project ")),
            s,
        )
    });
    for (label, s) in standings
        .iter()
        .map(|s| (s.name.to_owned(), s))
        .chain(named)
    {
        text.push_str(&format!(
            "{}: {} spent of {}, {} reserved in flight, {} left\n",
            label,
            format::money(Some(s.spent_usd)),
            format::money(Some(s.limit_usd)),
            format::money(Some(s.reserved_usd)),
            format::money(Some(s.remaining_usd()))
        ));
    }
    printer::out(&text);
    Ok(0)
}
