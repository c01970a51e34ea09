//! The report: the markdown table printed at the end and the JSON written beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::json;

use crate::load::{BODIES, SideFigures};
use crate::startup::Startup;
use crate::stats::{Pct, SideStats, mb, pct, verdict};
use crate::{ROUNDS, target};

/// A second smartproxy binary measured in the same run (`--baseline`).
pub struct Baseline {
    pub bin: PathBuf,
    pub figures: SideFigures,
    pub rss_idle_kb: u64,
    pub rss_loaded_kb: u64,
    pub rss_peak_kb: u64,
    pub shutdown_ms: f64,
    pub status: ExitStatus,
    pub ledger_rows: i64,
}

pub struct Report {
    pub quick: bool,
    pub connections: usize,
    pub throughput_warmup: Duration,
    pub throughput_blocks: usize,
    pub throughput_run: Duration,
    pub pinned: bool,
    pub mock_addr: SocketAddr,
    pub direct: SideFigures,
    pub bare_hop: SideFigures,
    pub proxy: SideFigures,
    pub baseline: Option<Baseline>,
    pub rss_idle_kb: u64,
    pub rss_loaded_kb: u64,
    pub rss_peak_kb: u64,
    pub shutdown_ms: f64,
    pub proxy_status: ExitStatus,
    pub ledger_rows: i64,
    pub startup: Startup,
    pub elapsed: Duration,
}

/// Reads one CPU figure (total, ledger writer) from a side's stats.
type CpuField = fn(&SideStats) -> Option<(f64, f64)>;

/// Each figure judged against its target.
struct Verdicts {
    added_p50: bool,
    added_p99: bool,
    throughput: bool,
    stream_added_p50: bool,
    startup: bool,
    rss_idle: bool,
    rss_loaded: bool,
}

impl Report {
    fn stats(&self) -> (SideStats, SideStats, SideStats) {
        (
            SideStats::of(&self.direct),
            SideStats::of(&self.bare_hop),
            SideStats::of(&self.proxy),
        )
    }

    fn startup_medians(&self) -> (f64, f64) {
        (
            pct(&self.startup.true_ms).p50,
            pct(&self.startup.run_ms).p50,
        )
    }

    fn verdicts(&self) -> Verdicts {
        let (d, _, p) = self.stats();
        let (t_true, t_run) = self.startup_medians();
        Verdicts {
            added_p50: p.latency.p50 - d.latency.p50 <= target::ADDED_P50_US,
            added_p99: p.latency.p99 - d.latency.p99 <= target::ADDED_P99_US,
            throughput: p.rps >= target::THROUGHPUT_RPS && p.failed == 0,
            stream_added_p50: p.first_event.p50 - d.first_event.p50 <= target::STREAM_ADDED_P50_US,
            startup: t_run - t_true <= target::STARTUP_OVERHEAD_MS
                && self.startup.failure.is_none(),
            rss_idle: mb(self.rss_idle_kb) <= target::RSS_IDLE_MB,
            rss_loaded: mb(self.rss_loaded_kb) <= target::RSS_LOADED_MB,
        }
    }

    pub fn markdown(&self) -> String {
        let (d, h, p) = self.stats();
        let b = self.baseline.as_ref().map(|b| SideStats::of(&b.figures));
        let v = self.verdicts();
        let mut rows: Vec<Vec<String>> = Vec::new();
        // The baseline's two cells (its figure, and smartproxy against it) for a row whose
        // figure `f` reads from a side's stats; `ratio_only` for rates.
        let base_cells = |f: &dyn Fn(&SideStats) -> Option<f64>, ratio_only: bool| -> Vec<String> {
            let Some(b) = &b else {
                return Vec::new();
            };
            match (f(b), f(&p)) {
                (Some(x), Some(y)) if ratio_only => {
                    vec![format!("{x:.0}"), format!("×{:.2}", y / x)]
                }
                (Some(x), Some(y)) => vec![
                    format!("{x:.1}"),
                    format!("{:+.1} µs (×{:.2})", y - x, y / x),
                ],
                _ => vec!["–".to_owned(), String::new()],
            }
        };
        let mut row = |cells: [&str; 8], base: Vec<String>| {
            let mut r: Vec<String> = cells[..6].iter().map(|c| (*c).to_owned()).collect();
            r.extend(base);
            r.push(cells[6].to_owned());
            r.push(cells[7].to_owned());
            rows.push(r);
        };
        let us = |x: f64| format!("{x:.1}");
        let added = |base: f64, x: f64| format!("{:+.1} µs (×{:.2})", x - base, x / base);
        let latency_row = |name: &str, f: fn(&Pct) -> f64, d: &Pct, h: &Pct, p: &Pct| {
            [
                name.to_owned(),
                us(f(d)),
                us(f(h)),
                us(f(p)),
                added(f(d), f(p)),
                added(f(h), f(p)),
            ]
        };
        let mut push = |cells: [String; 6], base: Vec<String>, target: &str, result: &str| {
            let [a, b, c, e, f, g] = cells;
            row([&a, &b, &c, &e, &f, &g, target, result], base);
        };
        push(
            latency_row(
                "latency p50, 1 conn (µs)",
                |p| p.p50,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            base_cells(&|s| Some(s.latency.p50), false),
            "added ≤ 200 µs",
            verdict(v.added_p50),
        );
        push(
            latency_row(
                "latency p90, 1 conn (µs)",
                |p| p.p90,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            base_cells(&|s| Some(s.latency.p90), false),
            "",
            "",
        );
        push(
            latency_row(
                "latency p99, 1 conn (µs)",
                |p| p.p99,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            base_cells(&|s| Some(s.latency.p99), false),
            "added ≤ 600 µs",
            verdict(v.added_p99),
        );
        push(
            latency_row(
                "latency mean, 1 conn (µs)",
                |p| p.mean,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            base_cells(&|s| Some(s.latency.mean), false),
            "",
            "",
        );
        push(
            latency_row(
                "latency p50, 1 conn, ~256 KiB request (µs)",
                |p| p.p50,
                &d.big_latency,
                &h.big_latency,
                &p.big_latency,
            ),
            base_cells(&|s| Some(s.big_latency.p50), false),
            "",
            "",
        );
        push(
            latency_row(
                "latency p50, 1 conn, ~256 KiB Messages request (µs)",
                |p| p.p50,
                &d.messages_latency,
                &h.messages_latency,
                &p.messages_latency,
            ),
            base_cells(&|s| Some(s.messages_latency.p50), false),
            "",
            "",
        );
        let failed = if d.failed + h.failed + p.failed > 0 {
            format!(" ({} / {} / {} failed)", d.failed, h.failed, p.failed)
        } else {
            String::new()
        };
        push(
            [
                format!("throughput, {} conns (req/s)", self.connections),
                format!("{:.0}", d.rps),
                format!("{:.0}", h.rps),
                format!("{:.0}", p.rps),
                format!("×{:.2}{failed}", p.rps / d.rps),
                format!("×{:.2}", p.rps / h.rps),
            ],
            base_cells(&|s| Some(s.rps), true),
            "≥ 30,000 req/s",
            verdict(v.throughput),
        );
        push(
            latency_row(
                "stream first event p50 (µs)",
                |p| p.p50,
                &d.first_event,
                &h.first_event,
                &p.first_event,
            ),
            base_cells(&|s| Some(s.first_event.p50), false),
            "added ≤ 200 µs",
            verdict(v.stream_added_p50),
        );
        push(
            latency_row(
                "stream first event p99 (µs)",
                |p| p.p99,
                &d.first_event,
                &h.first_event,
                &p.first_event,
            ),
            base_cells(&|s| Some(s.first_event.p99), false),
            "",
            "",
        );
        push(
            latency_row(
                "stream complete p50 (µs)",
                |p| p.p50,
                &d.complete,
                &h.complete,
                &p.complete,
            ),
            base_cells(&|s| Some(s.complete.p50), false),
            "",
            "",
        );
        let events = |e: Option<usize>| e.map_or_else(|| "varies".to_owned(), |n| n.to_string());
        push(
            [
                "stream events per reply".to_owned(),
                events(d.events),
                events(h.events),
                events(p.events),
                String::new(),
                String::new(),
            ],
            b.as_ref()
                .map(|b| vec![events(b.events), String::new()])
                .unwrap_or_default(),
            "same",
            verdict(d.events.is_some() && d.events == p.events && d.events == h.events),
        );
        let cpu = |c: Option<(f64, f64)>, ledger: bool| match c {
            Some((total, writer)) if ledger => format!("{total:.1} (ledger {writer:.1})"),
            Some((total, _)) => format!("{total:.1}"),
            None => "–".to_owned(),
        };
        let cpu_diff = |h: Option<(f64, f64)>, p: Option<(f64, f64)>| match (h, p) {
            (Some((h, _)), Some((p, _))) => format!("{:+.1} µs (×{:.2})", p - h, p / h),
            _ => String::new(),
        };
        let cpu_fields: [CpuField; 5] = [
            |s| s.cpu_latency,
            |s| s.cpu_big,
            |s| s.cpu_messages,
            |s| s.cpu_stream,
            |s| s.cpu_throughput,
        ];
        for ((name, h_cpu, p_cpu), field) in [
            ("CPU per request, 1 conn (µs)", h.cpu_latency, p.cpu_latency),
            (
                "CPU per ~256 KiB request, 1 conn (µs)",
                h.cpu_big,
                p.cpu_big,
            ),
            (
                "CPU per ~256 KiB Messages request, 1 conn (µs)",
                h.cpu_messages,
                p.cpu_messages,
            ),
            ("CPU per stream, 1 conn (µs)", h.cpu_stream, p.cpu_stream),
            (
                &*format!("CPU per request, {} conns (µs)", self.connections),
                h.cpu_throughput,
                p.cpu_throughput,
            ),
        ]
        .into_iter()
        .zip(cpu_fields)
        {
            let base = match &b {
                Some(b) => vec![cpu(field(b), true), cpu_diff(field(b), p_cpu)],
                None => Vec::new(),
            };
            push(
                [
                    name.to_owned(),
                    "–".to_owned(),
                    cpu(h_cpu, false),
                    cpu(p_cpu, true),
                    String::new(),
                    cpu_diff(h_cpu, p_cpu),
                ],
                base,
                "",
                "",
            );
        }
        let (t_true, t_run) = self.startup_medians();
        push(
            [
                format!("start-up, median of {} (ms)", self.startup.run_ms.len()),
                format!("{t_true:.2} (`true`)"),
                "–".to_owned(),
                format!("{t_run:.2} (`run --mock -- true`)"),
                format!("{:+.2} ms", t_run - t_true),
                String::new(),
            ],
            match &b {
                Some(_) => {
                    let t_base = pct(&self.startup.baseline_ms).p50;
                    vec![
                        format!("{t_base:.2}"),
                        format!("{:+.2} ms (×{:.2})", t_run - t_base, t_run / t_base),
                    ]
                }
                None => Vec::new(),
            },
            "≤ 20 ms",
            verdict(v.startup),
        );
        push(
            [
                "RSS idle (MB)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{:.1}", mb(self.rss_idle_kb)),
                String::new(),
                String::new(),
            ],
            match &self.baseline {
                Some(b) => vec![
                    format!("{:.1}", mb(b.rss_idle_kb)),
                    format!("{:+.1} MB", mb(self.rss_idle_kb) - mb(b.rss_idle_kb)),
                ],
                None => Vec::new(),
            },
            "≤ 20 MB",
            verdict(v.rss_idle),
        );
        push(
            [
                "RSS after load (MB)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!(
                    "{:.1} (peak {:.1})",
                    mb(self.rss_loaded_kb),
                    mb(self.rss_peak_kb)
                ),
                format!(
                    "{:+.1} MB vs idle",
                    mb(self.rss_loaded_kb) - mb(self.rss_idle_kb)
                ),
                String::new(),
            ],
            match &self.baseline {
                Some(b) => vec![
                    format!("{:.1} (peak {:.1})", mb(b.rss_loaded_kb), mb(b.rss_peak_kb)),
                    format!("{:+.1} MB", mb(self.rss_loaded_kb) - mb(b.rss_loaded_kb)),
                ],
                None => Vec::new(),
            },
            "≤ 40 MB",
            verdict(v.rss_loaded),
        );
        push(
            [
                "ledger rows / requests sent".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{} / {}", self.ledger_rows, self.proxy.requests),
                String::new(),
                String::new(),
            ],
            match &self.baseline {
                Some(b) => vec![
                    format!("{} / {}", b.ledger_rows, b.figures.requests),
                    String::new(),
                ],
                None => Vec::new(),
            },
            "equal",
            verdict(
                u64::try_from(self.ledger_rows).ok() == Some(self.proxy.requests)
                    && self.baseline.as_ref().is_none_or(|b| {
                        u64::try_from(b.ledger_rows).ok() == Some(b.figures.requests)
                    }),
            ),
        );
        push(
            [
                "exit after SIGTERM (ms)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{:.1} ({})", self.shutdown_ms, self.proxy_status),
                String::new(),
                String::new(),
            ],
            match &self.baseline {
                Some(b) => vec![
                    format!("{:.1} ({})", b.shutdown_ms, b.status),
                    String::new(),
                ],
                None => Vec::new(),
            },
            "",
            "",
        );

        let mut out = format!(
            "\n## smartproxy proxy overhead{}\n\n",
            if self.quick {
                " (QUICK smoke run: figures not meaningful)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "Load generator + mock upstream on CPU 1; smartproxy and the bare hop on CPU 0 ({}). \
             Mock on {}; request body {} bytes ({} streaming). {} sequential requests and {} streams \
             per side at 1 connection, in {ROUNDS} alternating blocks; throughput: the median of the \
             one-second rates over {} s in {} alternating blocks, after {} s warm-up (the mean over the window is in the JSON). Bare hop = a minimal hyper HTTP/1 forwarder (no parsing, no ledger): the floor \
             for any proxy hop on this machine. Differences are between percentiles. Bench time {:.1} s.\n\n",
            if self.pinned { "pinned" } else { "NOT pinned" },
            self.mock_addr,
            BODIES[0].len(),
            BODIES[1].len(),
            self.direct.latency.len(),
            self.direct.stream.len(),
            self.throughput_run.as_secs_f64(),
            self.throughput_blocks,
            self.throughput_warmup.as_secs_f64(),
            self.elapsed.as_secs_f64(),
        ));
        if let Some(b) = &self.baseline {
            out.push_str(&format!(
                "Baseline = {}, started and pinned like smartproxy and measured as a fourth side in \
                 every block of the same run.\n\n",
                b.bin.display()
            ));
            out.push_str(
                "| figure | direct | bare hop | smartproxy | smartproxy − direct | smartproxy − bare hop | baseline | smartproxy − baseline | target | result |\n",
            );
            out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
        } else {
            out.push_str(
                "| figure | direct | bare hop | smartproxy | smartproxy − direct | smartproxy − bare hop | target | result |\n",
            );
            out.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
        }
        for r in &rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        if let Some(f) = &self.startup.failure {
            out.push_str(&format!(
                "\nwarning: `smartproxy run --mock -- true` failed: {f}\n"
            ));
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let (d, h, p) = self.stats();
        let v = self.verdicts();
        let (t_true, t_run) = self.startup_medians();
        json!({
            "quick": self.quick,
            "pinned": self.pinned,
            "connections": self.connections,
            "request_body_bytes": BODIES[0].len(),
            "direct": d.json(&self.direct),
            "bare_hop": h.json(&self.bare_hop),
            "smartproxy": p.json(&self.proxy),
            "baseline": self.baseline.as_ref().map(|b| {
                let s = SideStats::of(&b.figures);
                json!({
                    "bin": b.bin.display().to_string(),
                    "figures": s.json(&b.figures),
                    "added_us": {
                        "latency_p50": s.latency.p50 - d.latency.p50,
                        "latency_p99": s.latency.p99 - d.latency.p99,
                        "stream_first_event_p50": s.first_event.p50 - d.first_event.p50,
                    },
                    "smartproxy_over_baseline": {
                        "latency_p50": p.latency.p50 / s.latency.p50,
                        "latency_p99": p.latency.p99 / s.latency.p99,
                        "throughput": p.rps / s.rps,
                        "cpu_per_request_throughput": match (p.cpu_throughput, s.cpu_throughput) {
                            (Some(p), Some(s)) => Some(p.0 / s.0),
                            _ => None,
                        },
                    },
                    "rss_kb": {"idle": b.rss_idle_kb, "after_load": b.rss_loaded_kb, "peak": b.rss_peak_kb},
                    "startup_ms_median": pct(&self.startup.baseline_ms).p50,
                    "ledger_rows": b.ledger_rows,
                    "shutdown_ms": b.shutdown_ms,
                })
            }),
            "added_us": {
                "latency_p50": p.latency.p50 - d.latency.p50,
                "latency_p90": p.latency.p90 - d.latency.p90,
                "latency_p99": p.latency.p99 - d.latency.p99,
                "latency_p50_vs_bare_hop": p.latency.p50 - h.latency.p50,
                "latency_p99_vs_bare_hop": p.latency.p99 - h.latency.p99,
                "stream_first_event_p50": p.first_event.p50 - d.first_event.p50,
                "stream_first_event_p99": p.first_event.p99 - d.first_event.p99,
                "stream_first_event_p50_vs_bare_hop": p.first_event.p50 - h.first_event.p50,
            },
            "throughput_ratio": p.rps / d.rps,
            "throughput_ratio_vs_bare_hop": p.rps / h.rps,
            "rss_kb": {"idle": self.rss_idle_kb, "after_load": self.rss_loaded_kb, "peak": self.rss_peak_kb},
            "startup_ms": {
                "runs": self.startup.run_ms.len(),
                "true_median": t_true,
                "run_median": t_run,
                "overhead": t_run - t_true,
                "failure": self.startup.failure,
            },
            "ledger_rows": self.ledger_rows,
            "shutdown_ms": self.shutdown_ms,
            "bench_seconds": self.elapsed.as_secs_f64(),
            "targets": {
                "added_p50_us": target::ADDED_P50_US,
                "added_p99_us": target::ADDED_P99_US,
                "throughput_rps": target::THROUGHPUT_RPS,
                "stream_added_p50_us": target::STREAM_ADDED_P50_US,
                "startup_overhead_ms": target::STARTUP_OVERHEAD_MS,
                "rss_idle_mb": target::RSS_IDLE_MB,
                "rss_loaded_mb": target::RSS_LOADED_MB,
            },
            "pass": {
                "added_p50": v.added_p50,
                "added_p99": v.added_p99,
                "throughput": v.throughput,
                "stream_added_p50": v.stream_added_p50,
                "startup": v.startup,
                "rss_idle": v.rss_idle,
                "rss_loaded": v.rss_loaded,
            },
        })
    }
}
