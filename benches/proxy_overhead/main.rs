//! End-to-end speed of `smartproxy run`: the same mock upstream is hit directly, through a bare
//! forwarding hop, and through smartproxy in one run; the figures are printed as a markdown table
//! and written as JSON to `<target dir>/bench/proxy_overhead.json`.
//!
//! Run with `cargo bench --bench proxy_overhead` (add `-- --quick` for a short smoke run that
//! checks the bench works; its figures mean nothing; `-- --profile` for a 20 s throughput phase
//! to profile with `perf record -p <pid>`; `-- --baseline /path/to/smartproxy` to measure a second,
//! older smartproxy binary in the same run, as a fourth side taking its turn in every block, so
//! that before/after figures share the machine's noise). Without `--bench` (as `cargo test
//! --all-targets` runs it) it does nothing.
//!
//! Setup: this process runs the mock upstream (hyper 1 server) and the load generator (hyper 1
//! client connections, keep-alive) on one current-thread tokio runtime pinned to CPU 1; the proxy
//! runs as `taskset -c 0 smartproxy run ...` pinned to CPU 0. The bare hop (a minimal hyper
//! forwarder on a thread of this process, also pinned to CPU 0) pays the same extra loopback hop
//! and cross-CPU wake-ups as smartproxy and nothing else: `smartproxy − bare hop` is the cost of
//! smartproxy's own work, while `smartproxy − direct` (what the targets judge) also holds the
//! machine's cost of any hop. CPU time per request is read from /proc/…/schedstat, so it holds
//! up on a noisy machine better than wall-clock figures do.
//!
//! All traffic stays on 127.0.0.1; every phase is bounded in count and time; the proxy is stopped
//! by a guard even on panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod bare_hop;
mod cpu;
#[path = "../shared/die_with_bench.rs"]
mod die_with_bench;
mod load;
mod mock_upstream;
mod nginx;
mod proxy_process;
mod report;
mod sides;
mod startup;
mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use bare_hop::BareHop;
use cpu::CpuProbe;
use load::{ManyStreams, Side, Target, many_streams, run_load};
use mock_upstream::{ANTHROPIC_MODEL, PACED_MODEL, start_mock};
use proxy_process::{ProxyProcess, count_ledger_rows, proc_status_kb};
use report::{Baseline, Report};
use sides::{Comparison, Row};
use startup::measure_startup;

/// The key the proxy's provider sends upstream; the mock refuses any other.
const UPSTREAM_KEY: &str = "sk-bench-upstream-0123456789abcdef";
const MODEL: &str = "gpt-4o-mini";
/// Latency and streaming samples are taken in alternating direct/proxy blocks, so that
/// background noise hits both sides alike.
const ROUNDS: usize = 10;

/// How much work each phase does.
struct Plan {
    latency_warmup: usize,
    latency_requests: usize,
    /// Requests of ~256 KiB (an agent's turn) at 1 connection.
    big_warmup: usize,
    big_requests: usize,
    connections: usize,
    throughput_warmup: Duration,
    /// The throughput window, split into this many blocks taken by the sides in turn.
    throughput_blocks: usize,
    /// The warm-up of each block after the first.
    throughput_block_warmup: Duration,
    throughput_run: Duration,
    stream_warmup: usize,
    stream_requests: usize,
    startup_warmup: usize,
    startup_runs: usize,
    /// Concurrent paced streams in the many-streams phase.
    many_streams: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            latency_warmup: 2_000,
            latency_requests: 20_000,
            big_warmup: 100,
            big_requests: 2_000,
            connections: 32,
            throughput_warmup: Duration::from_secs(1),
            throughput_blocks: 5,
            throughput_block_warmup: Duration::from_millis(250),
            throughput_run: Duration::from_secs(10),
            stream_warmup: 200,
            stream_requests: 2_000,
            startup_warmup: 3,
            startup_runs: 30,
            many_streams: 1_000,
        }
    }

    /// `--profile`: token latency and streaming phases and a 20 s throughput phase, long enough
    /// for `perf record -p <smartproxy pid>` to see the 32-connection path and little else.
    fn profile() -> Self {
        Self {
            latency_warmup: 10,
            latency_requests: 10,
            big_warmup: 10,
            big_requests: 10,
            connections: 32,
            throughput_warmup: Duration::from_secs(1),
            throughput_blocks: 1,
            throughput_block_warmup: Duration::ZERO,
            throughput_run: Duration::from_secs(20),
            stream_warmup: 10,
            stream_requests: 10,
            startup_warmup: 0,
            startup_runs: 1,
            many_streams: 10,
        }
    }

    fn quick() -> Self {
        Self {
            latency_warmup: 200,
            latency_requests: 1_000,
            big_warmup: 10,
            big_requests: 100,
            connections: 32,
            throughput_warmup: Duration::from_millis(200),
            throughput_blocks: 2,
            throughput_block_warmup: Duration::from_millis(100),
            throughput_run: Duration::from_millis(500),
            stream_warmup: 20,
            stream_requests: 200,
            startup_warmup: 1,
            startup_runs: 5,
            many_streams: 100,
        }
    }
}

/// The targets the figures are judged against.
mod target {
    pub const ADDED_P50_US: f64 = 200.0;
    pub const ADDED_P99_US: f64 = 600.0;
    pub const THROUGHPUT_RPS: f64 = 30_000.0;
    pub const STREAM_ADDED_P50_US: f64 = 200.0;
    pub const STARTUP_OVERHEAD_MS: f64 = 20.0;
    pub const RSS_IDLE_MB: f64 = 20.0;
    pub const RSS_LOADED_MB: f64 = 40.0;
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` / `--all-targets` runs bench binaries without `--bench`.
        println!("proxy_overhead: skipped (run it with `cargo bench --bench proxy_overhead`)");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let plan = if quick {
        Plan::quick()
    } else if args.iter().any(|a| a == "--profile") {
        Plan::profile()
    } else {
        Plan::full()
    };
    let baseline_bin = match args.iter().position(|a| a == "--baseline") {
        Some(i) => {
            let Some(path) = args.get(i + 1) else {
                bail!("--baseline needs the path of a smartproxy binary");
            };
            let path = std::fs::canonicalize(path)
                .with_context(|| format!("--baseline {path}: no such file"))?;
            Some(path)
        }
        None => None,
    };
    let started = Instant::now();

    // Pin before the runtime exists, so every thread of this process inherits CPU 1.
    let pinned = pin_this_thread_to(1);
    if let Err(err) = &pinned {
        eprintln!("warning: cannot pin the bench to CPU 1 ({err}); figures will be noisier");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::Builder::new()
        .prefix("smartproxy-bench-")
        .tempdir()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smartproxy"));

    let mock_addr = runtime.block_on(start_mock())?;
    let config_path = tmp.path().join("bench.yaml");
    std::fs::write(
        &config_path,
        format!(
            "providers:\n  - name: bench\n    kind: openai\n    base_url: http://{mock_addr}/v1\n    api_key_env: \
             BENCH_UPSTREAM_KEY\n    models: [{MODEL}, {PACED_MODEL}]\n  - name: claude\n    kind: anthropic\n    \
             base_url: http://{mock_addr}\n    api_key_env: BENCH_UPSTREAM_KEY\n    models: [{ANTHROPIC_MODEL}]\n"
        ),
    )?;

    eprintln!("proxy_overhead: mock upstream on {mock_addr}; starting the proxy (CPU 0)");
    let mut process = ProxyProcess::start(&bin, &config_path, tmp.path())?;
    let info = process.wait_for_info(Duration::from_secs(20))?;
    eprintln!(
        "proxy_overhead: smartproxy pid {} listening on {}",
        info.pid, info.addr
    );
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread lets the proxy settle before its idle memory is read"
    )]
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kb = proc_status_kb(info.pid, "VmRSS")?;
    let mut baseline = match &baseline_bin {
        Some(bin) => {
            let dir = tmp.path().join("baseline");
            std::fs::create_dir_all(&dir)?;
            let mut process = ProxyProcess::start(bin, &config_path, &dir)?;
            let info = process.wait_for_info(Duration::from_secs(20))?;
            eprintln!(
                "proxy_overhead: baseline {} pid {} listening on {}",
                bin.display(),
                info.pid,
                info.addr
            );
            #[allow(
                clippy::disallowed_methods,
                reason = "a plain thread lets the proxy settle before its idle memory is read"
            )]
            std::thread::sleep(Duration::from_millis(300));
            let rss_idle_kb = proc_status_kb(info.pid, "VmRSS")?;
            Some((process, info, dir, rss_idle_kb))
        }
        None => None,
    };

    // The daemon (as editors use it: no budgets, a client key) and, when installed, nginx.
    let start_daemon = |bin: &Path, dir: PathBuf| -> anyhow::Result<_> {
        std::fs::create_dir_all(&dir)?;
        let mut process = ProxyProcess::start_daemon(bin, &config_path, &dir)?;
        let info = process.wait_for_info(Duration::from_secs(20))?;
        eprintln!(
            "proxy_overhead: daemon {} pid {} listening on {}",
            bin.display(),
            info.pid,
            info.addr
        );
        Ok((process, info))
    };
    let daemon = start_daemon(&bin, tmp.path().join("daemon"))?;
    let baseline_daemon = match &baseline_bin {
        Some(b) => Some(start_daemon(b, tmp.path().join("baseline-daemon"))?),
        None => None,
    };
    let nginx = match nginx::find() {
        Some(nginx_bin) => {
            let n = nginx::Nginx::start(&nginx_bin, mock_addr, &tmp.path().join("nginx"))?;
            eprintln!("proxy_overhead: nginx pid {} on {}", n.pid, n.addr);
            Some(n)
        }
        None => {
            eprintln!("proxy_overhead: no nginx on the PATH; the bare hop is the floor");
            None
        }
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain thread lets the upstream and nginx settle"
    )]
    std::thread::sleep(Duration::from_millis(300));

    let hop = BareHop::start(mock_addr, 0)?;
    let direct = Target::new(mock_addr, UPSTREAM_KEY)?;
    let bare_hop = Target::new(hop.addr, UPSTREAM_KEY)?;
    let proxied = Target::new(info.addr, &info.key)?;
    let base_target = match &baseline {
        Some((_, info, _, _)) => Some(Target::new(info.addr, &info.key)?),
        None => None,
    };
    let mut sides = vec![
        Side {
            name: "direct",
            target: &direct,
            cpu: None,
        },
        Side {
            name: "bare hop",
            target: &bare_hop,
            cpu: Some(CpuProbe::Thread(std::process::id().try_into()?, hop.tid)),
        },
        Side {
            name: "smartproxy",
            target: &proxied,
            cpu: Some(CpuProbe::Process(info.pid)),
        },
    ];
    if let (Some((_, info, _, _)), Some(target)) = (&baseline, &base_target) {
        sides.push(Side {
            name: "baseline",
            target,
            cpu: Some(CpuProbe::Process(info.pid)),
        });
    }
    let daemon_target = Target::new(daemon.1.addr, &daemon.1.key)?;
    let base_daemon_target = match &baseline_daemon {
        Some((_, info)) => Some(Target::new(info.addr, &info.key)?),
        None => None,
    };
    let nginx_target = match &nginx {
        Some(n) => Some(Target::new(n.addr, UPSTREAM_KEY)?),
        None => None,
    };
    // (name, target, pid) of the sides the comparison table shows, the floor first.
    let mut compared: Vec<(&str, &Target, Option<i32>)> = Vec::new();
    match (&nginx, &nginx_target) {
        (Some(n), Some(t)) => compared.push(("nginx", t, Some(n.pid))),
        _ => compared.push(("bare hop", &bare_hop, None)),
    }
    compared.push(("run", &proxied, Some(info.pid)));
    compared.push(("daemon", &daemon_target, Some(daemon.1.pid)));
    if let (Some((_, i, _, _)), Some(t)) = (&baseline, &base_target) {
        compared.push(("baseline run", t, Some(i.pid)));
    }
    if let (Some((_, i)), Some(t)) = (&baseline_daemon, &base_daemon_target) {
        compared.push(("baseline daemon", t, Some(i.pid)));
    }
    let extra_start = sides.len();
    for (name, target, pid) in &compared {
        if matches!(*name, "nginx" | "daemon" | "baseline daemon") {
            sides.push(Side {
                name,
                target,
                cpu: pid.map(CpuProbe::Process),
            });
        }
    }
    let all_figures = runtime.block_on(run_load(&plan, &sides))?;
    // RSS after the request load, before the many-streams phase (reported apart).
    let rss_loaded_kb = proc_status_kb(info.pid, "VmRSS")?;
    let rss_peak_kb = proc_status_kb(info.pid, "VmHWM")?;
    let baseline_rss = match &baseline {
        Some((_, i, _, _)) => Some((
            proc_status_kb(i.pid, "VmRSS")?,
            proc_status_kb(i.pid, "VmHWM")?,
        )),
        None => None,
    };
    let names: Vec<&str> = sides.iter().map(|s| s.name).collect();
    let threads: Vec<Option<u64>> = compared
        .iter()
        .map(|(_, _, pid)| pid.and_then(|p| proc_status_kb(p, "Threads").ok()))
        .collect();
    eprintln!(
        "proxy_overhead: {} concurrent paced streams per side",
        plan.many_streams
    );
    let mut many: Vec<ManyStreams> = Vec::new();
    for (name, target, pid) in &compared {
        let m = runtime.block_on(many_streams(
            target,
            plan.many_streams,
            *pid,
            Duration::from_secs(30),
        ));
        eprintln!(
            "proxy_overhead:   {name}: {} streams, {} failed",
            m.first_event_ms.len(),
            m.failed
        );
        many.push(m);
    }
    let mut load = all_figures.into_iter();
    let (Some(direct), Some(bare_hop), Some(proxy)) = (load.next(), load.next(), load.next())
    else {
        bail!("missing figures");
    };
    let baseline_figures = if extra_start > 3 { load.next() } else { None };
    let mut proxy = proxy;
    let mut baseline_figures = baseline_figures;
    // The many-streams requests reach the ledgers too: counted as sent, for the rows check.
    for ((name, _, _), m) in compared.iter().zip(&many) {
        let sent = m.first_event_ms.len() as u64 + m.failed;
        match *name {
            "run" => proxy.requests += sent,
            "baseline run" => {
                if let Some(b) = baseline_figures.as_mut() {
                    b.requests += sent;
                }
            }
            _ => {}
        }
    }
    let extra: Vec<_> = names[extra_start..].iter().copied().zip(load).collect();
    let figures_of = |name: &str| -> Option<&load::SideFigures> {
        match name {
            "bare hop" => Some(&bare_hop),
            "run" => Some(&proxy),
            "baseline run" => baseline_figures.as_ref(),
            _ => extra.iter().find(|(n, _)| *n == name).map(|(_, f)| f),
        }
    };
    let mut rows = Vec::new();
    for (((name, _, _), threads), many) in compared.iter().zip(&threads).zip(&many) {
        if let Some(fig) = figures_of(name) {
            rows.push(Row::of(name, fig, &direct, *threads, Some(many)));
        }
    }
    let comparison = Comparison { rows };
    drop(hop);
    drop(nginx);
    drop(daemon);
    drop(baseline_daemon);

    let stop_started = Instant::now();
    let proxy_status = process.stop(Duration::from_secs(30))?;
    let shutdown_ms = stop_started.elapsed().as_secs_f64() * 1e3;
    let ledger_rows = count_ledger_rows(&tmp.path().join("ledger.db")).unwrap_or(-1);
    let baseline = match (baseline.take(), baseline_figures, &baseline_bin) {
        (Some((mut process, _, dir, rss_idle_kb)), Some(figures), Some(bin)) => {
            let (rss_loaded_kb, rss_peak_kb) = baseline_rss.unwrap_or_default();
            let stop_started = Instant::now();
            let status = process.stop(Duration::from_secs(30))?;
            let shutdown_ms = stop_started.elapsed().as_secs_f64() * 1e3;
            Some(Baseline {
                bin: bin.clone(),
                figures,
                rss_idle_kb,
                rss_loaded_kb,
                rss_peak_kb,
                shutdown_ms,
                status,
                ledger_rows: count_ledger_rows(&dir.join("ledger.db")).unwrap_or(-1),
            })
        }
        _ => None,
    };

    eprintln!("proxy_overhead: start-up runs");
    let startup = measure_startup(
        &plan,
        &bin,
        baseline_bin.as_deref(),
        &config_path,
        tmp.path(),
    )?;
    drop(runtime);

    let report = Report {
        quick,
        connections: plan.connections,
        throughput_warmup: plan.throughput_warmup,
        throughput_blocks: plan.throughput_blocks,
        throughput_run: plan.throughput_run,
        pinned: pinned.is_ok() && process.pinned,
        mock_addr,
        direct,
        bare_hop,
        proxy,
        baseline,
        rss_idle_kb,
        rss_loaded_kb,
        rss_peak_kb,
        shutdown_ms,
        proxy_status,
        ledger_rows,
        startup,
        elapsed: started.elapsed(),
    };
    println!("{}", report.markdown());
    println!("{}", comparison.markdown());
    let json_path = json_path();
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut json = report.json();
    json["compared"] = comparison.json();
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)?;
    println!("figures written to {}", json_path.display());
    Ok(())
}

/// Pins the calling thread (threads it starts later inherit the mask).
fn pin_this_thread_to(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// `<target dir>/bench/proxy_overhead.json`, honouring CARGO_TARGET_DIR.
fn json_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let target = if target.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    } else {
        target
    };
    target.join("bench").join("proxy_overhead.json")
}
