//! `smartproxy keys create | list | revoke | limit`: named client keys for the daemon, stored in the
//! ledger as SHA-256 digests only; a new key is printed once, when it is made. On a team
//! (PostgreSQL) ledger a key also names its user and team and may carry daily and monthly
//! limits (`team.rs`), and every daemon on that ledger picks up a change within seconds.

mod limits;
mod team;

use std::path::Path;

use anyhow::Context;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use rand::RngCore;
use serde_json::json;

use super::format;
use crate::ledger::keys::{self, Revoked};
use crate::ledger::now_ms;
use crate::printer;
use crate::proxy;

/// What a new key starts with, so it is recognisable in a config or a leak scanner.
const KEY_PREFIX: &str = "sk-sp-";

#[derive(Debug, clap::Subcommand)]
#[command(
    after_help = "Examples:\n  smartproxy keys create --name cursor            make a key for Cursor (shown once)\n  \
smartproxy keys create --name ci --daily 5\n  smartproxy keys list\n  smartproxy keys revoke cursor\n  \
smartproxy keys create --user ana --team search --monthly 50 ana-laptop   (team ledger)\n\n\
The daemon accepts the keys not revoked, by name, as `Authorization: Bearer <key>` (or x-api-key);\n\
its ledger sessions and stats are tagged with the key's name. Once any key exists the daemon\n\
requires one from every client. On a SQLite ledger a running daemon picks up changes on a reload\n\
(`kill -HUP <pid>`, or `daemon --watch` when the config changes) or a restart; on a team\n\
(PostgreSQL) ledger every daemon picks them up within seconds."
)]
pub enum KeysCommand {
    /// Make a new client key and print it once on stdout: only its SHA-256 digest is kept, so
    /// copy it now (a lost key is revoked and replaced, never shown again).
    Create {
        /// The key's name: letters, digits, `-` and `_`, e.g. `cursor` or `ci_bot`. Names are
        /// never reused, not even after a revoke. On a team ledger it may be left out: the
        /// key is then named after its user (`ana-1f3c`).
        #[arg(value_name = "NAME", conflicts_with = "name")]
        positional_name: Option<String>,
        /// The key's name (the same as NAME).
        #[arg(long)]
        name: Option<String>,
        /// Team ledger only: the person who holds the key (letters, digits, `-`, `_`, `.`,
        /// `@`), e.g. `ana` or `ana@example.com`.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Team ledger only: the holder's team, e.g. `search`.
        #[arg(long, value_name = "NAME")]
        team: Option<String>,
        /// A daily spending limit in USD for this key (`--budget-daily` is the same).
        #[arg(
            long,
            alias = "budget-daily",
            value_name = "USD",
            allow_negative_numbers = true
        )]
        daily: Option<f64>,
        /// Team ledger only: a monthly spending limit in USD for this key.
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        monthly: Option<f64>,
        /// Team ledger only: a weekly spending limit in USD for this key (weeks start on
        /// Monday, in `budget.utc_offset`'s calendar).
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        weekly: Option<f64>,
        /// Team ledger only: a rolling window, `EVERY=USD`: the key's spend of any `EVERY`
        /// (`90m`, `5h`, `7d`; 1 minute to 31 days) stays under USD. Repeat for several.
        #[arg(long = "window", value_name = "EVERY=USD", value_parser = limits::window_arg)]
        windows: Vec<crate::config::WindowLimit>,
        /// Print the key and what it was made with as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys: name, user and team (team ledger), limits, when made, when revoked. Never
    /// the keys or their digests.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name: on a team ledger every daemon refuses it within seconds; on a
    /// SQLite ledger the daemon refuses it after its next reload or restart.
    Revoke {
        /// The key's name (see `smartproxy keys list`).
        name: String,
    },
    /// Team ledger only: set a user's or a team's own daily, weekly and monthly limits and
    /// rolling windows in USD, which hold every key of that user or team together (besides
    /// each key's own). Every daemon on the ledger enforces a change within seconds. Without a
    /// limit flag, shows the limits set.
    #[command(
        after_help = "Examples:\n  smartproxy keys limit --user ana --daily 20\n  \
smartproxy keys limit --user ana --weekly 60 --window 5h=10\n  \
smartproxy keys limit --team search --monthly 500\n  smartproxy keys limit --team search --clear\n  \
smartproxy keys limit            (every user and team with a limit)"
    )]
    Limit {
        /// The user whose limits to set (as in `keys create --user`).
        #[arg(long, value_name = "NAME", conflicts_with = "team")]
        user: Option<String>,
        /// The team whose limits to set (as in `keys create --team`).
        #[arg(long, value_name = "NAME")]
        team: Option<String>,
        /// The daily limit in USD (0 stops all spending).
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        daily: Option<f64>,
        /// The monthly limit in USD.
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        monthly: Option<f64>,
        /// The weekly limit in USD (weeks start on Monday).
        #[arg(long, value_name = "USD", allow_negative_numbers = true)]
        weekly: Option<f64>,
        /// A rolling window, `EVERY=USD` (`5h=10`: the spend of any 5 hours stays under $10;
        /// 1 minute to 31 days). Repeat for several; given, they replace the windows set.
        #[arg(long = "window", value_name = "EVERY=USD", value_parser = limits::window_arg)]
        windows: Vec<crate::config::WindowLimit>,
        /// Remove the limits and windows not given (with none given: all of them).
        #[arg(long)]
        clear: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn keys(cmd: &KeysCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let path = match &config.database {
        crate::config::LedgerLocation::Postgres(url) => return team::keys(cmd, url),
        crate::config::LedgerLocation::Sqlite(path) => path,
    };
    let conn = keys::open(path).context("cannot open the ledger")?;
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
            anyhow::ensure!(
                user.is_none()
                    && team.is_none()
                    && monthly.is_none()
                    && weekly.is_none()
                    && windows.is_empty(),
                "--user, --team, --monthly, --weekly and --window need a team ledger (`database:` or SMARTPROXY_DB set \
                 to a postgres:// URL); on this SQLite ledger a key has a name and an optional --daily limit"
            );
            let Some(name) = name.as_deref().or(positional_name.as_deref()) else {
                anyhow::bail!(
                    "name the key: `smartproxy keys create --name <name>`, e.g. `--name cursor`"
                );
            };
            create(&conn, name, *daily, *json)
        }
        KeysCommand::List { json } => list(&conn, *json),
        KeysCommand::Revoke { name } => revoke(&conn, name),
        KeysCommand::Limit { .. } => anyhow::bail!(
            "user and team limits need a team ledger (`database:` or SMARTPROXY_DB set to a \
             postgres:// URL); on this SQLite ledger give a key its own `--daily` limit"
        ),
    }
}

/// A fresh key: the prefix and 32 random bytes in hex.
pub(super) fn new_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

fn create(
    conn: &rusqlite::Connection,
    name: &str,
    budget: Option<f64>,
    as_json: bool,
) -> anyhow::Result<u8> {
    if let Some(usd) = budget {
        anyhow::ensure!(
            usd.is_finite() && usd > 0.0,
            "--daily must be a positive amount of USD, e.g. `--daily 5`"
        );
    }
    let key = new_key();
    let created_ms = now_ms();
    keys::create(conn, name, &proxy::keys::digest(&key), budget, created_ms)?;
    if as_json {
        printer::out(
            &json!({"name": name, "key": key, "created_ms": created_ms, "budget_daily_usd": budget})
                .to_string(),
        );
    } else {
        printer::out(&key);
    }
    printer::note(&format!(
        "key `{name}` created; copy it now, it is not shown again (the ledger keeps only its digest).\n\
         Clients send it as `Authorization: Bearer <key>`. A running daemon accepts it after a \
         reload (`kill -HUP <pid>`; `smartproxy daemon status` shows the pid) or a restart."
    ));
    Ok(0)
}

fn list(conn: &rusqlite::Connection, as_json: bool) -> anyhow::Result<u8> {
    let rows = keys::list(conn)?;
    if as_json {
        printer::out(&serde_json::to_string(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        printer::out("no client keys yet; make one with `smartproxy keys create --name <name>`");
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["name", "created", "revoked", "daily budget"]);
    for row in &rows {
        table.add_row(vec![
            row.name.clone(),
            format::local_time(row.created_ms),
            row.revoked_ms
                .map_or_else(|| "-".to_owned(), format::local_time),
            row.budget_daily_usd
                .map_or_else(|| "-".to_owned(), |usd| format::money(Some(usd))),
        ]);
    }
    printer::out(&table.to_string());
    Ok(0)
}

fn revoke(conn: &rusqlite::Connection, name: &str) -> anyhow::Result<u8> {
    match keys::revoke(conn, name, now_ms())? {
        Revoked::Now => printer::out(&format!(
            "key `{name}` revoked; a running daemon refuses it after its next reload or restart"
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
    fn keys_are_prefixed_random_hex() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        let hex = a.strip_prefix(KEY_PREFIX).unwrap_or_default();
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
