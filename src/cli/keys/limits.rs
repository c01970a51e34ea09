//! `smartproxy keys limit` on a team (PostgreSQL) ledger: a user's or a team's own daily,
//! weekly and monthly limits and rolling windows, which every key of theirs counts toward together; the ledger's trigger
//! notifies every daemon, which enforces the change within seconds.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

use super::super::format;
use crate::config::every::{MAX_EVERY_MS, MIN_EVERY_MS, every_text, parse_every};
use crate::config::{PgUrl, WindowLimit};
use crate::ledger::keys::{valid_person, validate_limits};
use crate::ledger::now_ms;
use crate::ledger::postgres::keys::{self as pg, LimitChange, LimitHolder, Limits};
use crate::printer;

/// What `keys limit` was asked.
pub(super) struct LimitArgs<'a> {
    pub user: Option<&'a str>,
    pub team: Option<&'a str>,
    pub daily: Option<f64>,
    pub monthly: Option<f64>,
    pub weekly: Option<f64>,
    pub windows: &'a [WindowLimit],
    pub clear: bool,
    pub json: bool,
}

pub(super) fn limit(url: &PgUrl, args: &LimitArgs<'_>) -> anyhow::Result<u8> {
    let (holder, what, name) = match (args.user, args.team) {
        (Some(user), _) => (LimitHolder::User, "user", user),
        (None, Some(team)) => (LimitHolder::Team, "team", team),
        (None, None) => {
            anyhow::ensure!(
                !args.sets_any() && !args.clear,
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
        args.sets_any() || args.clear,
        "give --daily USD, --weekly USD, --monthly USD, --window EVERY=USD or --clear, e.g. \
         `smartproxy keys limit --{what} {name} --daily 20`"
    );
    validate_limits([
        ("--daily", args.daily),
        ("--weekly", args.weekly),
        ("--monthly", args.monthly),
    ])?;
    distinct_windows(args.windows)?;
    // Given: set; not given: kept, or removed with --clear.
    let change = |usd: Option<f64>| match usd {
        Some(usd) => Some(Some(usd)),
        None if args.clear => Some(None),
        None => None,
    };
    let windows = if !args.windows.is_empty() {
        Some(args.windows.to_vec())
    } else {
        args.clear.then(Vec::new)
    };
    let change = LimitChange {
        daily_usd: change(args.daily),
        weekly_usd: change(args.weekly),
        monthly_usd: change(args.monthly),
        windows,
    };
    let set = pg::set_limits(url, holder, name, &change, now_ms())?;
    if args.json {
        printer::out(
            &json!({what: name, "daily_usd": set.daily_usd, "weekly_usd": set.weekly_usd,
                "monthly_usd": set.monthly_usd, "windows": set.windows})
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

impl LimitArgs<'_> {
    fn sets_any(&self) -> bool {
        self.daily.is_some()
            || self.weekly.is_some()
            || self.monthly.is_some()
            || !self.windows.is_empty()
    }
}

/// `--window EVERY=USD` read (clap's value parser): `5h=10`, one minute to 31 days, USD from
/// 0 up.
pub(super) fn window_arg(text: &str) -> Result<WindowLimit, String> {
    let Some((every, usd)) = text.split_once('=') else {
        return Err(format!(
            "`{text}`: write EVERY=USD, e.g. `5h=10` (the spend of any 5 hours stays under $10)"
        ));
    };
    let every_ms = parse_every(every).ok_or_else(|| {
        format!(
            "`{every}` is not a length: use a whole number with m, h or d, e.g. `90m`, `5h`, `7d`"
        )
    })?;
    if !(MIN_EVERY_MS..=MAX_EVERY_MS).contains(&every_ms) {
        return Err(format!(
            "`{every}`: a window lasts from 1 minute to 31 days"
        ));
    }
    let usd: f64 = usd
        .trim()
        .parse()
        .ok()
        .filter(|usd: &f64| usd.is_finite() && (0.0..1e9).contains(usd))
        .ok_or_else(|| format!("`{usd}`: the window's limit is USD, a number from 0, e.g. `10`"))?;
    Ok(WindowLimit { every_ms, usd })
}

/// Refuses two `--window`s of one length (they would share one counter).
pub(super) fn distinct_windows(windows: &[WindowLimit]) -> anyhow::Result<()> {
    for (i, w) in windows.iter().enumerate() {
        anyhow::ensure!(
            windows[..i].iter().all(|o| o.every_ms != w.every_ms),
            "--window {} given twice: give each length once",
            every_text(w.every_ms)
        );
    }
    Ok(())
}

/// Windows as `keys list` and `keys limit` show them: `5h $10.00, 7d $50.00`, or `-`.
pub(super) fn windows_shown(windows: &[WindowLimit]) -> String {
    if windows.is_empty() {
        return "-".to_owned();
    }
    windows
        .iter()
        .map(|w| format!("{} {}", every_text(w.every_ms), format::money(Some(w.usd))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown(limits: Limits) -> String {
    let limit = |usd: Option<f64>| {
        usd.map_or_else(|| "no limit".to_owned(), |usd| format::money(Some(usd)))
    };
    let windows = if limits.windows.is_empty() {
        "no windows".to_owned()
    } else {
        format!("windows {}", windows_shown(&limits.windows))
    };
    format!(
        "daily {}, weekly {}, monthly {}, {windows}",
        limit(limits.daily_usd),
        limit(limits.weekly_usd),
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
        .set_header(vec!["scope", "daily", "weekly", "monthly", "windows"]);
    for (what, rows) in [("user", &users), ("team", &teams)] {
        for row in rows {
            table.add_row(vec![
                format!("{what}:{}", row.name),
                limit(row.limits.daily_usd),
                limit(row.limits.weekly_usd),
                limit(row.limits.monthly_usd),
                windows_shown(&row.limits.windows),
            ]);
        }
    }
    printer::out(&table.to_string());
    Ok(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn window_args_read_or_say_what_is_wrong() {
        assert_eq!(
            window_arg("5h=10"),
            Ok(WindowLimit {
                every_ms: 5 * 3_600_000,
                usd: 10.0
            })
        );
        for (bad, says) in [
            ("5h", "EVERY=USD"),
            ("5x=10", "not a length"),
            ("30s=10", "1 minute to 31 days"),
            ("40d=10", "1 minute to 31 days"),
            ("5h=-1", "from 0"),
            ("5h=ten", "from 0"),
        ] {
            let err = window_arg(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
