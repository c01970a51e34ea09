//! The side-by-side table: `smartproxy run`, `smartproxy daemon` (and the baseline binary's
//! two) against the floor (nginx when installed, the bare hop otherwise), each figure with its
//! ratio to the floor's, and the targets of issue 19 judged on it.

use std::fmt::Write as _;

use serde_json::json;

use crate::load::{ManyStreams, SideFigures};
use crate::stats::{mb, pct, verdict};

/// One side's figures, reduced to what the table shows.
pub struct Row {
    pub name: String,
    pub c1_p50_us: f64,
    /// c1 p50 minus the direct side's.
    pub c1_added_us: f64,
    /// The same for ~256 KiB requests (an agent's turn), chat and Anthropic Messages.
    pub c1_big_added_us: f64,
    pub c1_messages_added_us: f64,
    pub c32_rps: f64,
    pub c32_p50_us: f64,
    pub c32_p99_us: f64,
    /// Time to the first event minus the direct side's (p50).
    pub first_event_added_us: f64,
    /// CPU µs per request in the 32-connection phase, warm-up included in both terms.
    pub cpu_c32_us: Option<f64>,
    pub threads_after: Option<u64>,
    pub many: Option<ManyRow>,
}

pub struct ManyRow {
    pub streams: usize,
    pub first_p50_ms: f64,
    pub first_p99_ms: f64,
    pub failed: u64,
    pub rss_peak_mb: f64,
    pub threads_peak: u64,
}

impl Row {
    pub fn of(
        name: &str,
        fig: &SideFigures,
        direct: &SideFigures,
        threads_after: Option<u64>,
        many: Option<&ManyStreams>,
    ) -> Self {
        let first = |f: &SideFigures| {
            let v: Vec<f64> = f
                .stream
                .iter()
                .map(|s| s.first_event.as_secs_f64() * 1e6)
                .collect();
            pct(&v).p50
        };
        let c32 = pct(&fig.loaded_latency);
        Self {
            name: name.to_owned(),
            c1_p50_us: pct(&fig.latency).p50,
            c1_added_us: pct(&fig.latency).p50 - pct(&direct.latency).p50,
            c1_big_added_us: pct(&fig.big_latency).p50 - pct(&direct.big_latency).p50,
            c1_messages_added_us: pct(&fig.messages_latency).p50
                - pct(&direct.messages_latency).p50,
            c32_rps: fig.rps.rps,
            c32_p50_us: c32.p50,
            c32_p99_us: c32.p99,
            first_event_added_us: first(fig) - first(direct),
            cpu_c32_us: fig.has_cpu.then(|| {
                fig.cpu_throughput
                    .per_request_us(usize::try_from(fig.rps.total).unwrap_or(usize::MAX))
                    .0
            }),
            threads_after,
            many: many.map(|m| {
                let p = pct(&m.first_event_ms);
                ManyRow {
                    streams: m.first_event_ms.len() + usize::try_from(m.failed).unwrap_or(0),
                    first_p50_ms: p.p50,
                    first_p99_ms: p.p99,
                    failed: m.failed,
                    rss_peak_mb: mb(m.rss_peak_kb),
                    threads_peak: m.threads_peak,
                }
            }),
        }
    }
}

/// The rows, the first being the floor.
pub struct Comparison {
    pub rows: Vec<Row>,
}

fn ratio(v: f64, floor: f64) -> String {
    if floor.is_finite() && floor.abs() > f64::EPSILON && v.is_finite() {
        format!(" ({:.2}x)", v / floor)
    } else {
        String::new()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

impl Comparison {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let Some(floor) = self.rows.first() else {
            return out;
        };
        let _ = writeln!(
            out,
            "\n### run and daemon against {} (ratio to it in brackets)\n",
            floor.name
        );
        out.push_str(
            "| side | c1 added p50 µs | c1 added p50 µs, 256 KiB request | the same, Messages | c32 rps | c32 p50 µs | c32 p99 µs | SSE first event added µs \
             | CPU µs/req c32 | threads after | many streams: n, first event p50 / p99 ms, failed \
             | RSS peak MiB | threads peak |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let cpu = opt(r.cpu_c32_us, 1)
                + &match (r.cpu_c32_us, floor.cpu_c32_us) {
                    (Some(v), Some(f)) => ratio(v, f),
                    _ => String::new(),
                };
            let (many, rss, threads_peak) = match (&r.many, &floor.many) {
                (Some(m), f) => (
                    format!(
                        "{}, {:.1}{} / {:.1}, {}",
                        m.streams,
                        m.first_p50_ms,
                        f.as_ref()
                            .map_or_else(String::new, |f| ratio(m.first_p50_ms, f.first_p50_ms)),
                        m.first_p99_ms,
                        m.failed
                    ),
                    format!("{:.1}", m.rss_peak_mb),
                    m.threads_peak.to_string(),
                ),
                (None, _) => ("—".to_owned(), "—".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {:.0}{} | {:.0}{} | {:.0}{} | {:.0}{} | {:.0} | {:.0}{} | {:.0}{} | {} | {} | {} | {} | {} |",
                r.name,
                r.c1_added_us,
                ratio(r.c1_added_us, floor.c1_added_us),
                r.c1_big_added_us,
                ratio(r.c1_big_added_us, floor.c1_big_added_us),
                r.c1_messages_added_us,
                ratio(r.c1_messages_added_us, floor.c1_messages_added_us),
                r.c32_rps,
                ratio(r.c32_rps, floor.c32_rps),
                r.c32_p50_us,
                r.c32_p99_us,
                ratio(r.c32_p99_us, floor.c32_p99_us),
                r.first_event_added_us,
                ratio(r.first_event_added_us, floor.first_event_added_us),
                cpu,
                r.threads_after
                    .map_or_else(|| "—".to_owned(), |t| t.to_string()),
                many,
                rss,
                threads_peak,
            );
        }
        let _ = writeln!(out, "\nTargets against {}:\n", floor.name);
        let run = self.rows.iter().find(|r| r.name == "run");
        for r in self
            .rows
            .iter()
            .filter(|r| r.name == "run" || r.name == "daemon")
        {
            for (what, pass) in self.verdicts(r, floor, run) {
                let _ = writeln!(out, "- {}: {what}: {}", r.name, verdict(pass));
            }
        }
        out
    }

    fn verdicts(&self, r: &Row, floor: &Row, run: Option<&Row>) -> Vec<(String, bool)> {
        let mut v = Vec::new();
        if let (Some(cpu), Some(floor_cpu)) = (r.cpu_c32_us, floor.cpu_c32_us) {
            v.push((
                format!(
                    "CPU per request at c32 <= 1.5x the floor's ({cpu:.1} vs {floor_cpu:.1} µs)"
                ),
                cpu <= 1.5 * floor_cpu,
            ));
            if r.name == "daemon"
                && let Some(run_cpu) = run.and_then(|r| r.cpu_c32_us)
            {
                v.push((
                    format!("CPU per request <= run's ({cpu:.1} vs {run_cpu:.1} µs)"),
                    cpu <= run_cpu,
                ));
            }
        }
        v.push((
            format!(
                "c32 throughput >= 0.9x the floor's ({:.0} vs {:.0})",
                r.c32_rps, floor.c32_rps
            ),
            r.c32_rps >= 0.9 * floor.c32_rps,
        ));
        v.push((
            format!(
                "c1 added p50 <= the floor's + 30 µs ({:.0} vs {:.0} µs)",
                r.c1_added_us, floor.c1_added_us
            ),
            r.c1_added_us <= floor.c1_added_us + 30.0,
        ));
        v.push((
            format!(
                "c32 p99 <= 2x the floor's ({:.0} vs {:.0} µs)",
                r.c32_p99_us, floor.c32_p99_us
            ),
            r.c32_p99_us <= 2.0 * floor.c32_p99_us,
        ));
        v.push((
            format!(
                "SSE first event added <= the floor's ({:.0} vs {:.0} µs)",
                r.first_event_added_us, floor.first_event_added_us
            ),
            r.first_event_added_us <= floor.first_event_added_us,
        ));
        if let (Some(m), Some(f)) = (&r.many, &floor.many) {
            v.push((
                format!(
                    "{} streams: first event p50 <= 2x the floor's ({:.1} vs {:.1} ms), none failed",
                    m.streams, m.first_p50_ms, f.first_p50_ms
                ),
                m.first_p50_ms <= 2.0 * f.first_p50_ms && m.failed == 0,
            ));
            v.push((
                format!(
                    "{} streams: RSS <= 100 MiB ({:.1})",
                    m.streams, m.rss_peak_mb
                ),
                m.rss_peak_mb <= 100.0,
            ));
        }
        v
    }

    pub fn json(&self) -> serde_json::Value {
        json!(
            self.rows
                .iter()
                .map(|r| json!({
                    "side": r.name,
                    "c1_p50_us": r.c1_p50_us,
                    "c1_added_p50_us": r.c1_added_us,
                    "c1_256kib_added_p50_us": r.c1_big_added_us,
                    "c1_256kib_messages_added_p50_us": r.c1_messages_added_us,
                    "c32_rps": r.c32_rps,
                    "c32_p50_us": r.c32_p50_us,
                    "c32_p99_us": r.c32_p99_us,
                    "stream_first_event_added_p50_us": r.first_event_added_us,
                    "cpu_per_request_c32_us": r.cpu_c32_us,
                    "threads_after_load": r.threads_after,
                    "many_streams": r.many.as_ref().map(|m| json!({
                        "streams": m.streams,
                        "first_event_p50_ms": m.first_p50_ms,
                        "first_event_p99_ms": m.first_p99_ms,
                        "failed": m.failed,
                        "rss_peak_mib": m.rss_peak_mb,
                        "threads_peak": m.threads_peak,
                    })),
                }))
                .collect::<Vec<_>>()
        )
    }
}
