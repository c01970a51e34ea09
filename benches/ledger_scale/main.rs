//! Reads over a large ledger, each timed as a user meets it: `stats`, `sessions`, `status`,
//! `prune`'s dry run, `export` (time and peak memory) as the real binary; the web dashboard's
//! pages from `smartproxy ui`; the terminal dashboard's first frame in this process. The
//! ledger holds 1,000,000 requests (90 days, 3,000 sessions with nested runs, six models, 3%
//! errors, one long-lived daemon session).
//!
//! Run with `cargo bench --bench ledger_scale` (`-- --rows N` for another size, `-- --quick`
//! for 20,000 rows and one repetition: a smoke run whose figures mean nothing). The ledger is
//! built once through the library's own writer (so the `usage` rollup is filled the way the
//! proxy fills it) and kept in `<target dir>/bench/ledger-<rows>-v<schema>.db` for later runs.
//! Figures are medians of 7 runs after a warm-up, printed as a markdown table and written as
//! JSON to `<target dir>/bench/ledger_scale.json`. Without `--bench` (as `cargo test
//! --all-targets` runs it) it does nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../shared/die_with_bench.rs"]
mod die_with_bench;
mod generate;
mod pages;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

/// Every read a person waits on must answer within this.
const TARGET_MS: f64 = 200.0;
/// Exporting a million rows must take less than this.
const EXPORT_TARGET_S: f64 = 10.0;
const REPEAT: usize = 7;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let rows: u64 = match args.iter().position(|a| a == "--rows") {
        Some(i) => args.get(i + 1).context("--rows needs a number")?.parse()?,
        None if quick => 20_000,
        None => 1_000_000,
    };
    let repeat = if quick { 1 } else { REPEAT };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smartproxy"));
    let out_dir = bench_dir();
    std::fs::create_dir_all(&out_dir)?;
    let ledger = generate::ledger(&out_dir, rows)?;
    let home = tempfile::tempdir()?;
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .env_clear()
            .env("HOME", home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SMARTPROXY_DB", &ledger.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };

    let mut results: Vec<(String, f64, f64)> = Vec::new();
    let mut time_cli = |name: &str, args: &[&str], envs: &[(&str, &str)], target_ms: f64| {
        let ms = median_ms(repeat, || {
            let mut cmd = cli(args);
            cmd.envs(envs.iter().copied());
            let out = cmd.output().expect("the binary runs");
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        results.push((name.to_owned(), ms, target_ms));
    };
    time_cli("stats (all time, by model)", &["stats"], &[], TARGET_MS);
    time_cli(
        "stats --by session",
        &["stats", "--by", "session"],
        &[],
        TARGET_MS,
    );
    time_cli("stats --by tag", &["stats", "--by", "tag"], &[], TARGET_MS);
    time_cli("stats --today", &["stats", "--today"], &[], TARGET_MS);
    let week = ["stats", "--since", "7d", "--by", "provider"];
    time_cli("stats --since 7d --by provider", &week, &[], TARGET_MS);
    let session = ledger.busiest_session.as_str();
    time_cli(
        "stats --session (busiest)",
        &["stats", "--session", session],
        &[],
        TARGET_MS,
    );
    time_cli("sessions", &["sessions"], &[], TARGET_MS);
    let month = ["stats", "--since", "30d", "--by", "day"];
    time_cli("stats --since 30d --by day", &month, &[], TARGET_MS);
    time_cli(
        "stats --by project",
        &["stats", "--by", "project"],
        &[],
        TARGET_MS,
    );
    time_cli("report daily", &["report", "daily"], &[], TARGET_MS);
    time_cli("report blocks", &["report", "blocks"], &[], TARGET_MS);
    time_cli("status --line", &["status", "--line"], &[], 20.0);
    time_cli("budget", &["budget"], &[], TARGET_MS);
    time_cli("status (today)", &["status"], &[], 20.0);
    let in_session = [("SMARTPROXY_SESSION_ID", session)];
    time_cli("status (in a session)", &["status"], &in_session, 20.0);
    time_cli(
        "prune --older-than 30d (dry run)",
        &["prune", "--older-than", "30d"],
        &[],
        1000.0,
    );

    let pages = pages::measure(
        &bin,
        &ledger.path,
        home.path(),
        &ledger.busiest_session,
        repeat,
    )?;
    for (name, ms, target) in pages {
        results.push((name, ms, target));
    }

    // The dashboard's first frame, in this process: the poller's first reads, applied to a
    // state and drawn at 80x24 (what `smartproxy dash` shows before its first poll).
    let frame_ms = median_ms(repeat, || {
        let mut state = smartproxy::dash::state::State::new(true);
        let filter = smartproxy::ledger::live::LiveFilter::default();
        for action in smartproxy::dash::source::first_frame(&ledger.path, &filter).unwrap() {
            state.update(action);
        }
        let backend = ratatui::backend::TestBackend::new(80, 24);
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        terminal
            .draw(|frame| smartproxy::dash::ui::draw(frame, &state))
            .unwrap();
    });
    results.push(("dash: first frame (80x24)".to_owned(), frame_ms, TARGET_MS));

    // Export: wall time and the process's peak memory (`/usr/bin/time -f %M`), at a tenth of
    // the rows and at all of them; flat memory means the two peaks are about equal.
    let csv = out_dir.join("export.csv");
    let mut exports = Vec::new();
    let tenth = chrono::DateTime::from_timestamp_millis(ledger.tenth_since)
        .context("a time")?
        .to_rfc3339();
    for (label, since) in [("10%", Some(tenth.as_str())), ("100%", None)] {
        let mut args = vec!["export", "--format", "csv", "-o", csv.to_str().unwrap()];
        args.extend(since.map(|s| ["--since", s]).into_iter().flatten());
        let started = Instant::now();
        let out = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg(&bin)
            .args(&args)
            .env_clear()
            .env("HOME", home.path())
            .env("SMARTPROXY_DB", &ledger.path)
            .stdin(Stdio::null())
            .output()
            .context("/usr/bin/time (Debian's `time` package) runs the export")?;
        let secs = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("export failed: {stderr}");
        }
        let peak_kb: u64 = stderr
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .context("no peak memory from /usr/bin/time")?;
        let lines = std::fs::read_to_string(&csv)?.lines().count() - 1;
        exports.push((label, lines, secs, peak_kb));
    }
    let _ = std::fs::remove_file(&csv);

    println!(
        "\n## ledger_scale: {} requests, {} sessions\n",
        ledger.rows, ledger.sessions
    );
    println!("| read | median | target | |\n|---|---:|---:|---|");
    for (name, ms, target) in &results {
        let verdict = if *ms < *target { "ok" } else { "**over**" };
        println!("| `{name}` | {ms:.1} ms | < {target:.0} ms | {verdict} |");
    }
    println!("\n| export | rows | time | peak RSS |\n|---|---:|---:|---:|");
    for (label, lines, secs, peak_kb) in &exports {
        println!(
            "| {label} | {lines} | {secs:.2} s | {:.1} MB |",
            *peak_kb as f64 / 1024.0
        );
    }
    let full = exports.last().context("no export")?;
    let flat = full.3 as f64 <= exports[0].3 as f64 * 1.25 + 4096.0;
    println!(
        "\nexport of all rows: {} (target < {EXPORT_TARGET_S} s), memory {}",
        if full.2 < EXPORT_TARGET_S {
            "ok"
        } else {
            "**over**"
        },
        if flat { "flat" } else { "**grows with rows**" }
    );
    let report = json!({
        "rows": ledger.rows,
        "reads": results.iter().map(|(n, ms, t)| json!({"name": n, "median_ms": ms, "target_ms": t})).collect::<Vec<_>>(),
        "exports": exports.iter().map(|(l, n, s, kb)| json!({"part": l, "rows": n, "seconds": s, "peak_kb": kb})).collect::<Vec<_>>(),
    });
    std::fs::write(out_dir.join("ledger_scale.json"), report.to_string())?;
    Ok(())
}

/// Median wall time of `runs` calls of `f` (after one warm-up call), in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench")
}
