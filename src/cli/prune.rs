//! `smartproxy prune`: deletes old ledger rows. A dry run unless `--execute`; never deletes
//! rows a budget in force still counts; `--vacuum` gives the freed space back to the disk.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::format::{count, local_time};
use super::stats::parse_time;
use crate::budget::policy::counted_since_ms;
use crate::config::{Config, LedgerLocation, PgUrl};
use crate::ledger::postgres::query::Reader;
use crate::ledger::{self, query, retention};
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy prune --older-than 30d             what would go\n  \
smartproxy prune --older-than 30d --execute   delete it\n  \
smartproxy prune --older-than 90d --execute --vacuum\n\n\
Deleted: requests and their attempts older than the cutoff, anomalies, and sessions that ended \
before it and keep no newer request or running nested run. Budgets are not affected: they \
count from a rollup that prune keeps for the current day and month. SQLite keeps freed pages for \
reuse, so the file does not shrink until VACUUM (`--vacuum`), which rewrites the whole file: run \
it when no smartproxy is busy writing. The daemon prunes by itself once a day when \
retention.max_age_days (or MAX_LOG_AGE_DAYS) is set.\n\n\
On a PostgreSQL ledger (team mode) the months that end before the cutoff are dropped whole, \
as partitions (the month being written is never one of them); only the cutoff's own month is \
deleted row by row, in batches, while daemons keep writing. The daily roll-up is trimmed as \
SQLite's is: its days before the cutoff go, and the deleted requests of the cutoff's day are \
taken out of it, so totals count exactly the requests left. Shared budgets keep their own \
counters and are not affected. `--vacuum` runs VACUUM (ANALYZE) on the ledger's tables."
)]
pub struct PruneArgs {
    /// Delete rows older than AGE (`30d`, `12h`, `5m`: exactly that long before now) or from
    /// before a date (`2026-10-01`, local midnight). Default: retention.max_age_days from the
    /// config.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<String>,

    /// Delete for real; without it, only say what would be deleted.
    #[arg(long)]
    pub execute: bool,

    /// After deleting, VACUUM the ledger to shrink the file.
    #[arg(long, requires = "execute")]
    pub vacuum: bool,

    /// Print JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

pub fn prune(args: &PruneArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let requested = match (&args.older_than, config.retention_days) {
        (Some(age), _) => parse_time("--older-than", age)?,
        (None, Some(days)) => ledger::now_ms() - i64::from(days) * 86_400_000,
        (None, None) => anyhow::bail!(
            "say how old: `smartproxy prune --older-than 30d` (or set retention.max_age_days)"
        ),
    };
    let cutoff_ms = requested;
    let path = match &config.database {
        LedgerLocation::Postgres(url) => return prune_postgres(args, &config, url, cutoff_ms),
        LedgerLocation::Sqlite(path) => path,
    };
    let conn = query::open(path)?;
    if !args.execute {
        let plan = retention::plan(&conn, cutoff_ms)?;
        print_plan(&plan, args.json);
        return Ok(0);
    }
    let bar = printer::progress(None, "{spinner} deleting: {human_pos} requests so far");
    let budget_from = counted_since_ms(&config, ledger::now_ms());
    let done = retention::execute(&conn, cutoff_ms, budget_from, &mut |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let bodies = remove_bodies(&config, done.cutoff_ms)?;
    let (size, free) = retention::file_pages(&conn)?;
    let vacuumed = if args.vacuum {
        let bar = printer::progress(None, "{spinner} VACUUM: rewriting the ledger");
        conn.execute_batch("VACUUM").with_context(|| {
            "VACUUM needs the ledger to itself for a moment: retry when no smartproxy is writing"
        })?;
        bar.finish_and_clear();
        Some(retention::file_pages(&conn)?.0)
    } else {
        None
    };
    if args.json {
        printer::out(
            &json!({"dry_run": false, "deleted": done, "captured_bodies_deleted": bodies, "file_bytes": vacuumed.unwrap_or(size),
                    "free_bytes": if vacuumed.is_some() { 0 } else { free }})
            .to_string(),
        );
        return Ok(0);
    }
    print_done(&done, bodies);
    match vacuumed {
        Some(after) => printer::out(&format!(
            "vacuumed: the ledger went from {} to {}",
            mib(size),
            mib(after)
        )),
        None if free > size / 4 && free > 8 << 20 => printer::out(&format!(
            "{} of the ledger's {} are free pages SQLite keeps for reuse; to shrink the file, \
             run with --vacuum while no smartproxy is writing",
            mib(free),
            mib(size)
        )),
        None => {}
    }
    Ok(0)
}

/// `prune` on a PostgreSQL ledger: the same figures, partitions dropped whole.
fn prune_postgres(
    args: &PruneArgs,
    config: &Config,
    url: &PgUrl,
    cutoff_ms: i64,
) -> anyhow::Result<u8> {
    let reader = Reader::connect(url)?;
    if !args.execute {
        print_plan(&reader.prune_plan(cutoff_ms)?, args.json);
        return Ok(0);
    }
    let bar = printer::progress(None, "{spinner} deleting: {human_pos} requests so far");
    let done = reader.prune_execute(cutoff_ms, &mut |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let bodies = remove_bodies(config, done.cutoff_ms)?;
    if args.vacuum {
        let bar = printer::progress(None, "{spinner} VACUUM (ANALYZE) of the ledger's tables");
        reader.vacuum()?;
        bar.finish_and_clear();
    }
    if args.json {
        printer::out(
            &json!({"dry_run": false, "deleted": done, "captured_bodies_deleted": bodies,
                    "vacuumed": args.vacuum})
            .to_string(),
        );
        return Ok(0);
    }
    print_done(&done, bodies);
    if args.vacuum {
        printer::out("vacuumed the ledger's tables");
    }
    Ok(0)
}

fn print_plan(plan: &retention::Pruned, json: bool) {
    if json {
        printer::out(&json!({"dry_run": true, "would_delete": plan}).to_string());
    } else {
        printer::out(&describe(plan, "would delete"));
        if !plan.is_empty() {
            printer::out("run again with --execute to delete them");
        }
    }
}

fn print_done(done: &retention::Pruned, bodies: u64) {
    printer::out(&describe(done, "deleted"));
    if bodies > 0 {
        printer::out(&format!(
            "deleted {} captured bodies of that age",
            count(bodies)
        ));
    }
}

/// Captured bodies go with their rows (by file time, which is the request's).
fn remove_bodies(config: &Config, cutoff_ms: i64) -> anyhow::Result<u64> {
    crate::capture::remove_older_than(
        &config.capture,
        std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(cutoff_ms).unwrap_or_default()),
    )
    .context("cannot delete old captured bodies")
}

fn describe(p: &retention::Pruned, verb: &str) -> String {
    if p.is_empty() {
        format!("nothing older than {} to delete", cutoff_time(p.cutoff_ms))
    } else {
        let span = match (p.oldest_ms, p.newest_ms) {
            (Some(a), Some(b)) => format!(" ({} to {})", local_time(a), local_time(b)),
            _ => String::new(),
        };
        let attempts = p
            .attempts
            .map_or_else(String::new, |n| format!(" ({} attempts)", count(n)));
        let partitions = match p.partitions {
            Some(n) if n > 0 => format!(
                "; {} whole month{} dropped as partitions",
                count(n),
                if n == 1 { "" } else { "s" }
            ),
            _ => String::new(),
        };
        format!(
            "{verb} {} requests{span}{attempts}, {} sessions and {} anomalies older than {}{partitions}",
            count(p.requests),
            count(p.sessions),
            count(p.anomalies),
            cutoff_time(p.cutoff_ms)
        )
    }
}

/// The cutoff to the second, local time: `--older-than 5m` is exactly five minutes ago.
fn cutoff_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}
