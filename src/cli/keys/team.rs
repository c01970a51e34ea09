//! `smartproxy keys` on a team (PostgreSQL) ledger: every key names its user and team and may
//! carry daily and monthly limits; a change reaches every daemon on the ledger within seconds
//! (the ledger's trigger notifies them, `ledger::postgres::keys`).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

use super::super::format;
use super::KeysCommand;
use crate::config::{PgUrl, WindowLimit};
use crate::ledger::keys::{Revoked, validate_team_key};
use crate::ledger::now_ms;
use crate::ledger::postgres::keys::{self as pg, NewKey};
use crate::printer;
use crate::proxy;

pub(super) fn keys(cmd: &KeysCommand, url: &PgUrl) -> anyhow::Result<u8> {
    match cmd {
        KeysCommand::Create {
            positional_name,
            name,
            user,
            team,
            daily,
            monthly,
            weekly,
            windows,
            json,
        } => {
            let (Some(user), Some(team)) = (user.as_deref(), team.as_deref()) else {
                anyhow::bail!(
                    "on a team ledger every key names who holds it: add --user NAME --team NAME, \
                     e.g. `smartproxy keys create --user ana --team search`"
                );
            };
            let name = match name.as_deref().or(positional_name.as_deref()) {
                Some(name) => name.to_owned(),
                None => default_name(user),
            };
            create(
                url,
                &name,
                (user, team),
                [
                    ("--daily", *daily),
                    ("--monthly", *monthly),
                    ("--weekly", *weekly),
                ],
                windows,
                *json,
            )
        }
        KeysCommand::List { json } => list(url, *json),
        KeysCommand::Revoke { name } => revoke(url, name),
        KeysCommand::Limit {
            user,
            team,
            daily,
            monthly,
            weekly,
            windows,
            clear,
            json,
        } => super::limits::limit(
            url,
            &super::limits::LimitArgs {
                user: user.as_deref(),
                team: team.as_deref(),
                daily: *daily,
                monthly: *monthly,
                weekly: *weekly,
                windows,
                clear: *clear,
                json: *json,
            },
        ),
    }
}

/// A name for a key made without one: its user's (as a key name may spell it) and four random
/// hex digits, e.g. `ana-example-com-1f3c`.
fn default_name(user: &str) -> String {
    let base: String = user
        .chars()
        .take(58)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{base}-{}", &super::super::serving::random_hex(2))
}

fn create(
    url: &PgUrl,
    name: &str,
    (user, team): (&str, &str),
    limits: [(&'static str, Option<f64>); 3],
    windows: &[WindowLimit],
    as_json: bool,
) -> anyhow::Result<u8> {
    validate_team_key(name, user, team, limits)?;
    super::limits::distinct_windows(windows)?;
    let [(_, daily_usd), (_, monthly_usd), (_, weekly_usd)] = limits;
    let key = super::new_key();
    let created_ms = now_ms();
    pg::create(
        url,
        &NewKey {
            name,
            digest: proxy::keys::digest(&key),
            user,
            team,
            daily_usd,
            monthly_usd,
            weekly_usd,
            windows,
            created_ms,
        },
    )?;
    if as_json {
        printer::out(
            &json!({"name": name, "key": key, "user": user, "team": team,
                "daily_usd": daily_usd, "weekly_usd": weekly_usd, "monthly_usd": monthly_usd,
                "windows": windows, "created_ms": created_ms})
            .to_string(),
        );
    } else {
        printer::out(&key);
    }
    printer::note(&format!(
        "key `{name}` created for {user} ({team}); copy it now, it is not shown again (the ledger \
         keeps only its digest).\nClients send it as `Authorization: Bearer <key>`. Every daemon \
         on this ledger accepts it within seconds."
    ));
    Ok(0)
}

fn list(url: &PgUrl, as_json: bool) -> anyhow::Result<u8> {
    let rows = pg::list(url)?;
    if as_json {
        printer::out(&serde_json::to_string(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        printer::out(
            "no client keys yet; make one with `smartproxy keys create --user <name> --team <name>`",
        );
        return Ok(0);
    }
    let limit =
        |usd: Option<f64>| usd.map_or_else(|| "-".to_owned(), |usd| format::money(Some(usd)));
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "name", "user", "team", "daily", "weekly", "monthly", "windows", "created", "revoked",
        ]);
    for row in &rows {
        table.add_row(vec![
            row.name.clone(),
            row.user.clone(),
            row.team.clone(),
            limit(row.daily_usd),
            limit(row.weekly_usd),
            limit(row.monthly_usd),
            super::limits::windows_shown(&row.windows),
            format::local_time(row.created_ms),
            row.revoked_ms
                .map_or_else(|| "-".to_owned(), format::local_time),
        ]);
    }
    printer::out(&table.to_string());
    Ok(0)
}

fn revoke(url: &PgUrl, name: &str) -> anyhow::Result<u8> {
    match pg::revoke(url, name, now_ms())? {
        Revoked::Now => printer::out(&format!(
            "key `{name}` revoked; every daemon on this ledger refuses it within seconds"
        )),
        Revoked::Already(at) => printer::out(&format!(
            "key `{name}` was already revoked on {}",
            format::local_time(at)
        )),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_key_names() {
        for user in ["ana", "ana@example.com", &"x".repeat(64)] {
            let name = default_name(user);
            assert!(crate::ledger::keys::valid_name(&name), "{name}");
        }
        assert!(default_name("ana@example.com").starts_with("ana-example-com-"));
    }
}
