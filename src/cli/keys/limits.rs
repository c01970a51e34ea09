//! `smartproxy keys limit` on a team (PostgreSQL) ledger: a user's or a team's own daily and
//! monthly limits, which every key of theirs counts toward together; the ledger's trigger
//! notifies every daemon, which enforces the change within seconds.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

use super::super::format;
use crate::config::PgUrl;
use crate::ledger::keys::{valid_person, validate_limits};
use crate::ledger::now_ms;
use crate::ledger::postgres::keys::{self as pg, LimitHolder, Limits};
use crate::printer;

/// What `keys limit` was asked.
pub(super) struct LimitArgs<'a> {
    pub user: Option<&'a str>,
    pub team: Option<&'a str>,
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
    pub clear: bool,
    pub json: bool,
}

pub(super) fn limit(url: &PgUrl, args: &LimitArgs<'_>) -> anyhow::Result<u8> {
    let (holder, what, name) = match (args.user, args.team) {
        (Some(user), _) => (LimitHolder::User, "user", user),
        (None, Some(team)) => (LimitHolder::Team, "team", team),
        (None, None) => {
            anyhow::ensure!(
                args.daily.is_none() && args.monthly.is_none() && !args.clear,
                "say whose limit to set: `--user NAME` or `--team NAME`, e.g. \
                 `smartproxy keys limit --user ana --daily 20`"
            );
            return show(url, args.json);
        }
    };
    anyhow::ensure!(
        valid_person(name),
        "--{what} `{name}`: use letters, digits, `-`, `_`, `.` and `@`"
    );
    anyhow::ensure!(
        args.daily.is_some() || args.monthly.is_some() || args.clear,
        "give --daily USD, --monthly USD or --clear, e.g. `smartproxy keys limit --{what} {name} \
         --daily 20`"
    );
    validate_limits([("--daily", args.daily), ("--monthly", args.monthly)])?;
    // Given: set; not given: kept, or removed with --clear.
    let change = |usd: Option<f64>| match usd {
        Some(usd) => Some(Some(usd)),
        None if args.clear => Some(None),
        None => None,
    };
    let set = pg::set_limits(
        url,
        holder,
        name,
        change(args.daily),
        change(args.monthly),
        now_ms(),
    )?;
    if args.json {
        printer::out(
            &json!({what: name, "daily_usd": set.daily_usd, "monthly_usd": set.monthly_usd})
                .to_string(),
        );
    } else {
        printer::out(&format!("{what} {name}: {}", shown(set)));
    }
    printer::note(
        "every daemon on this ledger enforces it within seconds (`smartproxy budget` shows \
         where it stands)",
    );
    Ok(0)
}

fn shown(limits: Limits) -> String {
    let limit = |usd: Option<f64>| {
        usd.map_or_else(|| "no limit".to_owned(), |usd| format::money(Some(usd)))
    };
    format!(
        "daily {}, monthly {}",
        limit(limits.daily_usd),
        limit(limits.monthly_usd)
    )
}

/// Every user and team with a limit.
fn show(url: &PgUrl, as_json: bool) -> anyhow::Result<u8> {
    let users = pg::holder_limits(url, LimitHolder::User)?;
    let teams = pg::holder_limits(url, LimitHolder::Team)?;
    if as_json {
        printer::out(&json!({"users": users, "teams": teams}).to_string());
        return Ok(0);
    }
    if users.is_empty() && teams.is_empty() {
        printer::out(
            "no user or team limits yet; set one with `smartproxy keys limit --user NAME --daily USD`",
        );
        return Ok(0);
    }
    let limit =
        |usd: Option<f64>| usd.map_or_else(|| "-".to_owned(), |usd| format::money(Some(usd)));
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["scope", "daily", "monthly"]);
    for (what, rows) in [("user", &users), ("team", &teams)] {
        for row in rows {
            table.add_row(vec![
                format!("{what}:{}", row.name),
                limit(row.limits.daily_usd),
                limit(row.limits.monthly_usd),
            ]);
        }
    }
    printer::out(&table.to_string());
    Ok(0)
}
