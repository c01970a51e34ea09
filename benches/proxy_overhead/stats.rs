//! Percentiles and the per-side figures the report shows.

use std::time::Duration;

use serde_json::json;

use crate::load::{SideFigures, StreamSample};

#[derive(Clone, Copy)]
pub struct Pct {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Nearest-rank percentiles and the mean.
pub fn pct(samples: &[f64]) -> Pct {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = (p * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    Pct {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
    }
}

pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "**FAIL**" }
}

/// What the table shows of one side.
pub struct SideStats {
    pub latency: Pct,
    /// ~256 KiB requests, 1 connection: chat, and Anthropic Messages.
    pub big_latency: Pct,
    pub messages_latency: Pct,
    pub first_event: Pct,
    pub complete: Pct,
    pub rps: f64,
    pub failed: u64,
    /// SSE events per reply, when every reply had the same number.
    pub events: Option<usize>,
    /// CPU µs per request (total, ledger writer), when the side's CPU time is known.
    pub cpu_latency: Option<(f64, f64)>,
    pub cpu_big: Option<(f64, f64)>,
    pub cpu_messages: Option<(f64, f64)>,
    pub cpu_stream: Option<(f64, f64)>,
    pub cpu_throughput: Option<(f64, f64)>,
}

impl SideStats {
    pub fn of(side: &SideFigures) -> Self {
        let us = |f: fn(&StreamSample) -> Duration| {
            pct(&side
                .stream
                .iter()
                .map(|s| f(s).as_secs_f64() * 1e6)
                .collect::<Vec<_>>())
        };
        let first = side.stream.first().map(|s| s.events);
        Self {
            latency: pct(&side.latency),
            big_latency: pct(&side.big_latency),
            messages_latency: pct(&side.messages_latency),
            first_event: us(|s| s.first_event),
            complete: us(|s| s.complete),
            rps: side.rps.rps,
            failed: side.rps.failed,
            events: first.filter(|n| side.stream.iter().all(|s| s.events == *n)),
            cpu_latency: side
                .has_cpu
                .then(|| side.cpu_latency.per_request_us(side.latency.len())),
            cpu_big: side
                .has_cpu
                .then(|| side.cpu_big.per_request_us(side.big_latency.len())),
            cpu_messages: side.has_cpu.then(|| {
                side.cpu_messages
                    .per_request_us(side.messages_latency.len())
            }),
            cpu_stream: side
                .has_cpu
                .then(|| side.cpu_stream.per_request_us(side.stream.len())),
            cpu_throughput: side
                .has_cpu
                .then(|| side.cpu_throughput.per_request_us(side.rps.total as usize)),
        }
    }

    pub fn json(&self, side: &SideFigures) -> serde_json::Value {
        let p = |p: Pct| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "mean": p.mean});
        json!({
            "latency_us": p(self.latency),
            "latency_samples": side.latency.len(),
            "latency_256kib_us": p(self.big_latency),
            "latency_256kib_messages_us": p(self.messages_latency),
            "stream_first_event_us": p(self.first_event),
            "stream_complete_us": p(self.complete),
            "stream_samples": side.stream.len(),
            "stream_events_per_reply": self.events,
            "cpu_us_per_request_1conn": self.cpu_latency.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_256kib_request_1conn": self.cpu_big.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_256kib_messages_request_1conn": self.cpu_messages.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_stream": self.cpu_stream.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_request_throughput": self.cpu_throughput.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "throughput_rps": self.rps,
            "throughput_mean_rps": side.rps.mean_rps,
            "throughput_measured_requests": side.rps.measured,
            "throughput_failed": self.failed,
            "requests_sent": side.requests,
        })
    }
}
