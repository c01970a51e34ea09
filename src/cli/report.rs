//! `smartproxy report daily|monthly|blocks`: spend in the views ccusage made familiar. Daily
//! and monthly are local periods; blocks are 5-hour windows, as subscription limits count
//! them: a block starts at the hour of the first request after the last block ended, and the
//! block still open shows its burn rate and where it ends up at that rate.

use std::path::Path;

use serde_json::json;

use super::format;
use super::stats::{parse_since, parse_time};
use crate::ledger::query::{Filter, GroupBy, Totals};
use crate::ledger::reader::LedgerReader;
use crate::ledger::usage::HOUR_MS;
use crate::printer;

/// A block's length: the window subscription plans count usage in.
const BLOCK_MS: i64 = 5 * HOUR_MS;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy report daily --since 7d\n  smartproxy report monthly --json\n  \
smartproxy report blocks --since 2d\n\n\
Blocks are 5-hour windows (as Claude's subscription limits count usage, and as ccusage shows \
them): each starts at the hour of the first request after the previous block ended. The open \
block shows its burn rate (spend per hour since it started) and what it comes to by its end \
at that rate. Costs are what was spent: simulated (mock) costs apart. Works on a SQLite or a \
PostgreSQL ledger alike."
)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub view: View,
}

#[derive(Debug, clap::Subcommand)]
pub enum View {
    /// Spend per local day, oldest first.
    Daily(RangeArgs),
    /// Spend per local month, oldest first.
    Monthly(RangeArgs),
    /// Spend per 5-hour block, oldest first; the open one with its burn rate and projection.
    Blocks(RangeArgs),
}

#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only requests before DATE (same forms as --since).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn report(args: &ReportArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let reader = LedgerReader::open(&config.database)?;
    let (name, range, by) = match &args.view {
        View::Daily(range) => ("daily", range, Some(GroupBy::Day)),
        View::Monthly(range) => ("monthly", range, Some(GroupBy::Month)),
        View::Blocks(range) => ("blocks", range, None),
    };
    let filter = Filter {
        session_id: None,
        since_ms: range.since.as_deref().map(parse_since).transpose()?,
        until_ms: range
            .until
            .as_deref()
            .map(|text| parse_time("--until", text))
            .transpose()?,
    };
    let out = match by {
        Some(by) => periods(&reader, &filter, name, by, range.json)?,
        None => block_view(&reader, &filter, range.json, crate::ledger::now_ms())?,
    };
    printer::out(&out);
    Ok(0)
}

/// `report daily` and `report monthly`: the totals table per period.
fn periods(
    reader: &LedgerReader,
    filter: &Filter,
    name: &str,
    by: GroupBy,
    json: bool,
) -> anyhow::Result<String> {
    let rows = reader.grouped(filter, by)?;
    let total = Totals::sum("total", &rows);
    if json {
        return Ok(json!({
            "report": name, "since_ms": filter.since_ms, "until_ms": filter.until_ms,
            "rows": rows, "total": total,
        })
        .to_string());
    }
    if total.requests == 0 {
        return Ok("no requests recorded for this selection".to_owned());
    }
    let column = if by == GroupBy::Day { "day" } else { "month" };
    Ok(format::totals_table(column, &rows, &total))
}

/// One 5-hour block.
#[derive(Debug, serde::Serialize)]
struct Block {
    start_ms: i64,
    end_ms: i64,
    /// Now is inside it.
    active: bool,
    totals: Totals,
    /// The open block's spend per hour since it started.
    burn_usd_per_hour: Option<f64>,
    /// The open block's spend by its end at that rate.
    projected_usd: Option<f64>,
}

/// Hours with requests (oldest first) into blocks: a block starts at the first hour not
/// inside the previous one. The roll-up's hours are whole, as a block's start is.
fn blocks(hours: Vec<(i64, Totals)>, now_ms: i64) -> Vec<Block> {
    let mut groups: Vec<(i64, Vec<Totals>)> = Vec::new();
    for (hour, totals) in hours {
        match groups.last_mut() {
            Some((start, group)) if hour < *start + BLOCK_MS => group.push(totals),
            _ => groups.push((hour, vec![totals])),
        }
    }
    groups
        .into_iter()
        .map(|(start_ms, group)| {
            let end_ms = start_ms + BLOCK_MS;
            let totals = Totals::sum(&block_label(start_ms, end_ms), &group);
            let active = (start_ms..end_ms).contains(&now_ms);
            let spent = totals.known_cost().unwrap_or(0.0);
            // A rate over less than a minute says little: a minute at least.
            let hours = (now_ms - start_ms).max(60_000) as f64 / HOUR_MS as f64;
            let burn = active.then_some(spent / hours);
            Block {
                start_ms,
                end_ms,
                active,
                projected_usd: burn.map(|b| spent + b * (end_ms - now_ms) as f64 / HOUR_MS as f64),
                burn_usd_per_hour: burn,
                totals,
            }
        })
        .collect()
}

/// `2026-12-07 10:00-15:00` in local time.
fn block_label(start_ms: i64, end_ms: i64) -> String {
    let end = format::local_time(end_ms);
    format!(
        "{}-{}",
        format::local_time(start_ms),
        end.get(11..).unwrap_or(&end)
    )
}

fn block_view(
    reader: &LedgerReader,
    filter: &Filter,
    json: bool,
    now_ms: i64,
) -> anyhow::Result<String> {
    let blocks = blocks(reader.hourly(filter)?, now_ms);
    let rows: Vec<Totals> = blocks.iter().map(|b| b.totals.clone()).collect();
    let total = Totals::sum("total", &rows);
    if json {
        return Ok(json!({
            "report": "blocks", "since_ms": filter.since_ms, "until_ms": filter.until_ms,
            "blocks": blocks, "total": total,
        })
        .to_string());
    }
    if total.requests == 0 {
        return Ok("no requests recorded for this selection".to_owned());
    }
    let mut text = format::totals_table("block (5 h)", &rows, &total);
    if let Some(open) = blocks.iter().find(|b| b.active) {
        text.push_str(&format!(
            "\nopen block {}: {} so far, {}/h, {} by {} at this rate ({} left)",
            open.totals.key,
            format::money(open.totals.known_cost()),
            format::money(open.burn_usd_per_hour),
            format::money(open.projected_usd),
            format::local_time(open.end_ms)
                .get(11..)
                .unwrap_or_default(),
            format::duration(open.end_ms - now_ms),
        ));
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hour(n: i64, requests: u64, cost: f64) -> (i64, Totals) {
        let totals = Totals {
            key: (n * HOUR_MS).to_string(),
            requests,
            ok: requests,
            cost_usd: Some(cost),
            ..Totals::default()
        };
        (n * HOUR_MS, totals)
    }

    #[test]
    fn blocks_start_at_the_first_hour_after_the_last_one_ended() {
        let hours = vec![
            hour(10, 1, 1.0),
            hour(14, 2, 1.0),
            hour(15, 1, 0.5),
            hour(30, 4, 2.0),
        ];
        // Now is 1.5 h into the block that started at hour 30.
        let now = 30 * HOUR_MS + HOUR_MS * 3 / 2;
        let blocks = blocks(hours, now);
        let starts: Vec<i64> = blocks.iter().map(|b| b.start_ms / HOUR_MS).collect();
        assert_eq!(starts, [10, 15, 30]);
        assert_eq!(blocks[0].totals.requests, 3);
        assert!(!blocks[0].active && blocks[2].active);
        let burn = blocks[2].burn_usd_per_hour.unwrap();
        assert!((burn - 2.0 / 1.5).abs() < 1e-9);
        let projected = blocks[2].projected_usd.unwrap();
        assert!((projected - (2.0 + burn * 3.5)).abs() < 1e-9);
    }
}
