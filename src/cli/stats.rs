//! `smartproxy stats`: what requests cost, grouped, from the ledger.

use std::path::Path;

use anyhow::Context;
use chrono::{Local, NaiveDate, TimeZone};
use serde_json::json;

use super::format;
use crate::ledger::query::{Filter, GroupBy, Resolved, SessionSpan, Totals};
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy stats --last\n  smartproxy stats --today --by provider\n  \
smartproxy stats --since 7d --by tag --json\n  smartproxy stats --session 3f2a\n  \
smartproxy stats --since 30d --by day\n  \
smartproxy stats --since 2026-11-01 --until 2026-12-01 --by week\n  \
smartproxy stats --since 30d --by user\n  smartproxy stats --since 7d --by branch\n  \
smartproxy stats --by commit --json\n\n\
A line above the table says what it covers: the session, the range and the grouping. \
--by hour, day, week (named by its Monday) and month are local time, oldest first; the \
other groups are most expensive first.\n\n\
--by project, branch and commit group by the session: its project (`run --project`, the config's \
`project:`, else the git repository's folder name) and the branch and commit HEAD was on when it \
started (a session that committed counts under the commit it started from; `smartproxy cost \
--commit` counts it under both). Requests outside any repository are in `-`.\n\n\
--by key, user and team are team mode's groups: on a SQLite ledger a key is a daemon \
session's tag and every request is in the user and team `-`. Works on a SQLite or a \
PostgreSQL ledger alike."
)]
pub struct StatsArgs {
    /// Only this session (a full id or a unique prefix, as `smartproxy sessions` shows).
    #[arg(long, value_name = "ID", conflicts_with = "last")]
    pub session: Option<String>,

    /// Only the most recent session.
    #[arg(long)]
    pub last: bool,

    /// Only requests since local midnight.
    #[arg(long, conflicts_with = "since")]
    pub today: bool,

    /// Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `90m`, `24h`, `7d`.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only requests before DATE (same forms as --since): `--since 2026-11-01 --until
    /// 2026-12-01` is November.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    /// How to group the rows.
    #[arg(long, value_enum, default_value = "model")]
    pub by: GroupBy,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn stats(args: &StatsArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let reader = LedgerReader::open(&config.database)?;
    let session_id = select_session(&reader, args.last, args.session.as_deref())?;
    let since_ms = if args.today {
        Some(local_midnight_ms(Local::now().date_naive())?)
    } else {
        args.since.as_deref().map(parse_since).transpose()?
    };
    let until_ms = args
        .until
        .as_deref()
        .map(|text| parse_time("--until", text))
        .transpose()?;
    let filter = Filter {
        session_id,
        since_ms,
        until_ms,
    };
    let span = match &filter.session_id {
        Some(id) => reader.session_span(id)?,
        None => None,
    };
    let by = format!("{:?}", args.by).to_lowercase();
    let heading = heading(&filter, span.as_ref(), args.today, &by);
    // Every request is in exactly one group, so the groups add up to the total: one pass.
    let rows = reader.grouped(&filter, args.by)?;
    let total = Totals::sum("total", &rows);
    if args.json {
        // The range covered: the one asked for, else the session's life (open ends null).
        let from_ms = filter.since_ms.or(span.as_ref().map(|s| s.started_ms));
        let to_ms = filter.until_ms.or(span.as_ref().and_then(|s| s.ended_ms));
        printer::out(
            &json!({
                "session_id": filter.session_id,
                "since_ms": filter.since_ms,
                "until_ms": filter.until_ms,
                "range": {"from_ms": from_ms, "to_ms": to_ms},
                "heading": heading,
                "by": by,
                "total": total,
                "rows": rows,
            })
            .to_string(),
        );
        return Ok(0);
    }
    printer::out(&heading);
    if total.requests == 0 {
        printer::out("no requests recorded for this selection");
        return Ok(0);
    }
    printer::out(&format::totals_table(&by, &rows, &total));
    Ok(0)
}

/// What the table covers, in one line: `Session 3f2a9c1d (claude, started 2026-12-07 10:14)
/// by model`, `Requests since 2026-12-01 00:00 by day`, `All requests by provider`.
fn heading(filter: &Filter, span: Option<&SessionSpan>, today: bool, by: &str) -> String {
    let range = match (filter.since_ms, filter.until_ms) {
        (Some(since), None) if today => format!("today (since {})", format::local_time(since)),
        (Some(since), Some(until)) if today => format!(
            "today (since {}, before {})",
            format::local_time(since),
            format::local_time(until)
        ),
        (Some(since), Some(until)) => format!(
            "from {} to {}",
            format::local_time(since),
            format::local_time(until)
        ),
        (Some(since), None) => format!("since {}", format::local_time(since)),
        (None, Some(until)) => format!("before {}", format::local_time(until)),
        (None, None) => String::new(),
    };
    let whose = match (&filter.session_id, span) {
        (Some(id), span) => {
            let what = span
                .and_then(|s| s.tag.as_deref().or(s.program.as_deref()))
                .map(|name| format!("{name}, "))
                .unwrap_or_default();
            let started = span.map_or_else(
                || "not recorded".to_owned(),
                |s| format!("started {}", format::local_time(s.started_ms)),
            );
            format!("Session {} ({what}{started})", id.get(..8).unwrap_or(id))
        }
        (None, _) if range.is_empty() => "All requests".to_owned(),
        (None, _) => "Requests".to_owned(),
    };
    let range = if range.is_empty() {
        range
    } else {
        format!(" {range}")
    };
    format!("{whose}{range} by {by}")
}

/// The session `--last` or `--session REF` (a full id or a unique prefix) names, if any.
pub(super) fn select_session(
    reader: &LedgerReader,
    last: bool,
    reference: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if last {
        return Ok(Some(
            reader
                .last_session()?
                .context("the ledger has no sessions yet")?,
        ));
    }
    let Some(reference) = reference else {
        return Ok(None);
    };
    match reader.resolve_session(reference)? {
        Resolved::Found(id) => Ok(Some(id)),
        Resolved::NotFound => {
            anyhow::bail!("no session matches `{reference}` (see `smartproxy sessions`)")
        }
        Resolved::Ambiguous(ids) => anyhow::bail!(
            "`{reference}` matches several sessions ({}); give more of the id",
            ids.join(", ")
        ),
    }
}

fn local_midnight_ms(date: NaiveDate) -> anyhow::Result<i64> {
    let midnight = date.and_hms_opt(0, 0, 0).context("invalid date")?;
    let local = Local
        .from_local_datetime(&midnight)
        .earliest()
        .context("that local midnight does not exist")?;
    Ok(local.timestamp_millis())
}

/// `--since`'s time: see [`parse_time`].
pub fn parse_since(text: &str) -> anyhow::Result<i64> {
    parse_time("--since", text)
}

/// `2026-11-01` (local midnight), RFC 3339, or an age like `90m`, `24h`, `7d`, `2w` (that long
/// before now, to the millisecond); an error names `flag`.
pub fn parse_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return local_midnight_ms(date);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ms: i64 = match unit {
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if unit_ms > 0 => Ok(crate::ledger::now_ms() - n * unit_ms),
        _ => anyhow::bail!(
            "{flag} `{text}`: expected a date (2026-11-01), an RFC 3339 time, or an age (90m, 24h, 7d)"
        ),
    }
}
