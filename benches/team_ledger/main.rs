//! Team mode's figures (issue 20), each from one run on this machine:
//! (a) ingestion: rows/s into PostgreSQL from one process through the real `Ledger` handle, and
//!     what each `record` call (the request path's share) costs;
//! (b) request latency through `smartproxy daemon`, no budget, SQLite vs PostgreSQL ledger,
//!     measured side by side; (c) the same on PostgreSQL with a shared daily budget, against a
//!     PostgreSQL round trip; (d) bytes per request row and `stats` time at N rows, both
//!     backends.
//!
//! `cargo bench --bench team_ledger` (N = 1,000,000; `-- --quick`: N = 100,000 and shorter
//! latency blocks; `-- --rows N`). It creates and drops a database of its own on the PostgreSQL
//! at 127.0.0.1:5432 (`SMARTPROXY_BENCH_PG` names another server's maintenance database).
//! Prints a markdown table; JSON in `<target dir>/bench/team_ledger.json`. Without `--bench`
//! (as `cargo test --all-targets` runs it) it does nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod daemons;
#[path = "../shared/die_with_bench.rs"]
mod die_with_bench;
#[allow(
    dead_code,
    reason = "shared with proxy_overhead; this bench uses the plain replies"
)]
#[path = "../proxy_overhead/mock_upstream.rs"]
mod mock_upstream;
mod pgdb;
mod rows;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, ensure};
use serde_json::json;
use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::Ledger;

use daemons::{Daemon, median, quantile};

/// The key the mock upstream accepts (read by `mock_upstream`).
const UPSTREAM_KEY: &str = "sk-bench-upstream-0123456789abcdef";
const TARGET_ROWS_PER_S: f64 = 20_000.0;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rows: u64 = match args.iter().position(|a| a == "--rows") {
        Some(i) => args.get(i + 1).context("--rows needs a number")?.parse()?,
        None if quick => 100_000,
        None => 1_000_000,
    };
    let (blocks, per_block, repeat) = if quick { (6, 150, 3) } else { (20, 500, 7) };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smartproxy"));
    let tmp = tempfile::tempdir()?;
    let db = pgdb::BenchDb::create()
        .context("team_ledger needs PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`)")?;

    // (a) Ingestion into PostgreSQL. The ledger is opened (and migrated) before the empty
    // database is measured, so (d) counts the rows only.
    eprintln!("team_ledger: {rows} rows into PostgreSQL");
    let pg = Ledger::open_at(&LedgerLocation::Postgres(
        PgUrl::parse(&db.url).map_err(anyhow::Error::msg)?,
    ))?;
    let pg_empty = db.database_bytes()?;
    let pg_ingest = rows::ingest(&pg, rows)?;
    drop(pg);
    ensure!(
        db.count("SELECT count(*) FROM requests")? == rows as i64,
        "PostgreSQL holds another number of rows than were recorded"
    );
    let pg_bytes = (db.database_bytes()? - pg_empty) as f64 / rows as f64;
    let pg_request_bytes = db.request_tables_bytes()? as f64 / rows as f64;

    eprintln!("team_ledger: {rows} rows into SQLite");
    let sqlite_path = tmp.path().join("ledger.db");
    let sqlite = Ledger::open(&sqlite_path)?;
    let sqlite_empty = file_bytes(&sqlite_path);
    let sqlite_ingest = rows::ingest(&sqlite, rows)?;
    drop(sqlite);
    let sqlite_bytes = (file_bytes(&sqlite_path) - sqlite_empty) as f64 / rows as f64;

    // (d) `stats` at N rows, as the real binary.
    eprintln!("team_ledger: stats");
    let home = tmp.path().join("stats-home");
    std::fs::create_dir_all(&home)?;
    let sqlite_db = sqlite_path.display().to_string();
    let stats_sqlite = stats_ms(&bin, &home, &sqlite_db, repeat)?;
    let stats_pg = stats_ms(&bin, &home, &db.url, repeat)?;

    // (b) and (c): three daemons side by side in front of one mock upstream.
    eprintln!("team_ledger: daemon latency");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mock = runtime.block_on(mock_upstream::start_mock())?;
    let provider = format!(
        "providers:\n  - name: bench\n    kind: openai\n    base_url: http://{mock}/v1\n    api_key_env: \
         BENCH_UPSTREAM_KEY\n    models: [gpt-4o-mini]\n"
    );
    let budget = "budget:\n  daily_usd: 1000000\n  timezone: utc\n  on_exceed: refuse\n";
    let dir = |name: &str| tmp.path().join(name);
    let sqlite_daemon_db = dir("d-sqlite").join("ledger.db").display().to_string();
    let side_sqlite = Daemon::start(
        "sqlite",
        &bin,
        &dir("d-sqlite"),
        &provider,
        &sqlite_daemon_db,
        UPSTREAM_KEY,
    )?;
    let side_pg = Daemon::start(
        "postgres",
        &bin,
        &dir("d-pg"),
        &provider,
        &db.url,
        UPSTREAM_KEY,
    )?;
    let side_budget = Daemon::start(
        "postgres+budget",
        &bin,
        &dir("d-pg-budget"),
        &format!("{provider}{budget}"),
        &db.url,
        UPSTREAM_KEY,
    )?;
    let samples = runtime.block_on(daemons::measure(
        &[&side_sqlite, &side_pg, &side_budget],
        100,
        blocks,
        per_block,
    ))?;
    drop((side_sqlite, side_pg, side_budget));
    let admitted = db.count("SELECT count(*) FROM budget_reservations")?
        + db.count("SELECT coalesce(sum(spent_nusd), 0)::bigint FROM budget_counters")?;
    ensure!(
        admitted > 0,
        "the budgeted daemon admitted nothing through PostgreSQL's counters"
    );
    let rtt_ms = db.round_trip_ms(500)?;
    let commit_ms = db.commit_ms(200)?;

    let [lat_sqlite, lat_pg, lat_budget] = [0, 1, 2].map(|i| median(&samples[i]));
    let [p99_sqlite, p99_pg, p99_budget] = [0, 1, 2].map(|i| quantile(&samples[i], 0.99));
    let mode = if quick { "quick" } else { "full" };
    println!(
        "\n### team_ledger ({mode}: {rows} rows; latency {blocks} blocks x {per_block} requests per side)\n"
    );
    println!("| figure | SQLite | PostgreSQL | note |\n|---|---:|---:|---|");
    println!(
        "| (a) ingestion, rows/s (one process, `Ledger` handle) | {:.0} | {:.0} | target >= {TARGET_ROWS_PER_S:.0} on PostgreSQL: {} |",
        sqlite_ingest.rows_per_s(),
        pg_ingest.rows_per_s(),
        if pg_ingest.rows_per_s() >= TARGET_ROWS_PER_S {
            "ok"
        } else {
            "**under**"
        }
    );
    for (label, i) in [("p50", 0), ("p99", 1), ("max", 2)] {
        println!(
            "| (a) `record` call (request path), {label} | {:.2} µs | {:.2} µs | a try_send; dropped {} / {} |",
            sqlite_ingest.enqueue_ns[i] as f64 / 1000.0,
            pg_ingest.enqueue_ns[i] as f64 / 1000.0,
            sqlite_ingest.dropped,
            pg_ingest.dropped
        );
    }
    println!(
        "| (a) bench paused for the writer (queue bound 16,384) | {} | {} | the producer's waits, not the request path's |",
        sqlite_ingest.paces, pg_ingest.paces
    );
    println!(
        "| (b) daemon latency, no budget, median | {lat_sqlite:.3} ms | {lat_pg:.3} ms | PostgreSQL / SQLite = {:.3} |",
        lat_pg / lat_sqlite
    );
    println!("| (b) daemon latency, no budget, p99 | {p99_sqlite:.3} ms | {p99_pg:.3} ms | |");
    println!(
        "| (c) daemon latency, shared daily budget, median | | {lat_budget:.3} ms | +{:.3} ms over no budget; a PostgreSQL round trip (`SELECT 1`) is {rtt_ms:.3} ms, a durable one-row commit {commit_ms:.3} ms |",
        lat_budget - lat_pg,
    );
    println!("| (c) daemon latency, shared daily budget, p99 | | {p99_budget:.3} ms | |");
    println!(
        "| (d) bytes per request row (whole ledger growth) | {sqlite_bytes:.0} | {pg_bytes:.0} | PostgreSQL `requests`+`attempts` with indexes: {pg_request_bytes:.0} |"
    );
    println!(
        "| (d) `stats` (all time, by model), median of {repeat} | {stats_sqlite:.1} ms | {stats_pg:.1} ms | at {rows} rows |"
    );
    let report = json!({
        "mode": mode,
        "rows": rows,
        "ingest_rows_per_s": {"sqlite": sqlite_ingest.rows_per_s(), "postgres": pg_ingest.rows_per_s()},
        "record_ns_p50_p99_max": {"sqlite": sqlite_ingest.enqueue_ns, "postgres": pg_ingest.enqueue_ns},
        "dropped": {"sqlite": sqlite_ingest.dropped, "postgres": pg_ingest.dropped},
        "latency_median_ms": {"sqlite": lat_sqlite, "postgres": lat_pg, "postgres_budget": lat_budget},
        "latency_p99_ms": {"sqlite": p99_sqlite, "postgres": p99_pg, "postgres_budget": p99_budget},
        "postgres_round_trip_ms": rtt_ms,
        "postgres_commit_ms": commit_ms,
        "bytes_per_row": {"sqlite": sqlite_bytes, "postgres": pg_bytes, "postgres_request_tables": pg_request_bytes},
        "stats_ms": {"sqlite": stats_sqlite, "postgres": stats_pg},
    });
    let out_dir = bench_dir();
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("team_ledger.json"), report.to_string())?;
    Ok(())
}

/// The SQLite file and its WAL, bytes.
fn file_bytes(path: &Path) -> i64 {
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len() as i64);
    size(path.to_path_buf()) + size(PathBuf::from(format!("{}-wal", path.display())))
}

/// Median wall time of `smartproxy stats` on ledger `db` (after one warm-up run), ms.
fn stats_ms(bin: &Path, home: &Path, db: &str, runs: usize) -> anyhow::Result<f64> {
    let once = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let out = Command::new(bin)
            .arg("stats")
            .env_clear()
            .env("HOME", home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SMARTPROXY_DB", db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            out.status.success(),
            "stats: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(ms)
    };
    once()?;
    let mut samples = (0..runs)
        .map(|_| once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}
