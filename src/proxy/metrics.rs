//! In-process metrics for `/metrics`, in Prometheus' text format: requests by route, target and
//! status, tokens, cost, a latency histogram, circuit states and ledger health. Updated once
//! per request, under a short lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::ledger::RequestRecord;
use crate::routing::health::BreakerView;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// provider -> model -> status -> count
type ByProvider = BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>;

#[derive(Default)]
struct Inner {
    /// route -> provider -> model -> status -> count, nested so that a known series is found
    /// with borrowed keys and costs no allocation.
    requests: BTreeMap<String, ByProvider>,
    /// model -> (tokens in, tokens out)
    tokens: BTreeMap<String, (u64, u64)>,
    /// model -> USD
    cost: BTreeMap<String, f64>,
    /// route -> histogram
    latency: BTreeMap<String, Histogram>,
    cache_hits: u64,
}

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Runs `f` on the value under `key`; the key is copied only the first time it is seen.
fn with_entry<V: Default>(map: &mut BTreeMap<String, V>, key: &str, f: impl FnOnce(&mut V)) {
    match map.get_mut(key) {
        Some(value) => f(value),
        None => {
            let mut value = V::default();
            f(&mut value);
            map.insert(key.to_owned(), value);
        }
    }
}

/// Label values escaped as the text format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn record(&self, r: &RequestRecord) {
        let route = r.route.as_deref().unwrap_or("none");
        let model = r.served_model.as_deref().unwrap_or("none");
        let provider = r.provider.as_deref().unwrap_or("none");
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let m = &mut *guard;
        with_entry(&mut m.requests, route, |providers| {
            with_entry(providers, provider, |models| {
                with_entry(models, model, |statuses| {
                    *statuses.entry(r.status).or_default() += 1
                });
            });
        });
        with_entry(&mut m.tokens, model, |(tokens_in, tokens_out)| {
            *tokens_in += r.prompt_tokens.unwrap_or(0);
            *tokens_out += r.completion_tokens.unwrap_or(0);
        });
        if let Some(cost) = r.cost_usd {
            with_entry(&mut m.cost, model, |total| *total += cost);
        }
        if r.cache_status == "hit" {
            m.cache_hits += 1;
        }
        with_entry(&mut m.latency, route, |h| h.observe(r.latency_ms / 1000.0));
    }

    /// The exposition text.
    pub fn render(
        &self,
        breakers: &[BreakerView],
        ledger_dropped: u64,
        ledger_queued: u64,
    ) -> String {
        let m = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP smartproxy_requests_total Requests answered, by route, target and status.\n",
        );
        out.push_str("# TYPE smartproxy_requests_total counter\n");
        for (route, providers) in &m.requests {
            for (provider, models) in providers {
                for (model, statuses) in models {
                    for (status, n) in statuses {
                        let _ = writeln!(
                            out,
                            "smartproxy_requests_total{{route=\"{}\",target=\"{}/{}\",status=\"{status}\"}} {n}",
                            escape(route),
                            escape(provider),
                            escape(model)
                        );
                    }
                }
            }
        }
        out.push_str("# HELP smartproxy_tokens_total Tokens by model and direction (in = prompt, out = completion).\n");
        out.push_str("# TYPE smartproxy_tokens_total counter\n");
        for (model, (tokens_in, tokens_out)) in &m.tokens {
            let model = escape(model);
            let _ = writeln!(
                out,
                "smartproxy_tokens_total{{model=\"{model}\",direction=\"in\"}} {tokens_in}"
            );
            let _ = writeln!(
                out,
                "smartproxy_tokens_total{{model=\"{model}\",direction=\"out\"}} {tokens_out}"
            );
        }
        out.push_str("# HELP smartproxy_cost_usd_total Cost of requests in USD, by model.\n");
        out.push_str("# TYPE smartproxy_cost_usd_total counter\n");
        for (model, usd) in &m.cost {
            let _ = writeln!(
                out,
                "smartproxy_cost_usd_total{{model=\"{}\"}} {usd}",
                escape(model)
            );
        }
        out.push_str("# HELP smartproxy_request_duration_seconds Time from request to the end of the reply.\n");
        out.push_str("# TYPE smartproxy_request_duration_seconds histogram\n");
        for (route, h) in &m.latency {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let n = h.counts.get(i).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "smartproxy_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "smartproxy_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "smartproxy_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "smartproxy_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP smartproxy_circuit_open Whether a target's circuit breaker is open (1) or not (0).\n");
        out.push_str("# TYPE smartproxy_circuit_open gauge\n");
        for b in breakers {
            let open = u8::from(b.state != "closed");
            let _ = writeln!(
                out,
                "smartproxy_circuit_open{{provider=\"{}\",model=\"{}\"}} {open}",
                escape(&b.provider),
                escape(&b.model)
            );
        }
        out.push_str(
            "# HELP smartproxy_cache_hits_total Replies served from the response cache.\n",
        );
        out.push_str("# TYPE smartproxy_cache_hits_total counter\n");
        let _ = writeln!(out, "smartproxy_cache_hits_total {}", m.cache_hits);
        out.push_str("# HELP smartproxy_ledger_dropped_total Ledger rows dropped because the writer fell behind.\n");
        out.push_str("# TYPE smartproxy_ledger_dropped_total counter\n");
        let _ = writeln!(out, "smartproxy_ledger_dropped_total {ledger_dropped}");
        out.push_str(
            "# HELP smartproxy_ledger_queue_depth Ledger records waiting for the writer.\n",
        );
        out.push_str("# TYPE smartproxy_ledger_queue_depth gauge\n");
        let _ = writeln!(out, "smartproxy_ledger_queue_depth {ledger_queued}");
        out
    }
}

/// The opt-in body capture's counters, appended to the exposition when capture is on.
pub fn render_capture(out: &mut String, c: &crate::capture::CaptureCounters) {
    for (name, help, value) in [
        (
            "smartproxy_capture_stored_total",
            "Bodies written to the capture store.",
            c.stored,
        ),
        (
            "smartproxy_capture_refused_total",
            "Bodies not captured because they were over capture.max_blob_bytes or would pass capture.max_total_bytes.",
            c.refused,
        ),
        (
            "smartproxy_capture_dropped_total",
            "Bodies not captured because the capture writer fell behind.",
            c.dropped,
        ),
        (
            "smartproxy_capture_failed_total",
            "Bodies the capture store could not write.",
            c.failed,
        ),
        (
            "smartproxy_capture_evicted_total",
            "Requests whose captured bodies a full store deleted to keep newer ones (capture.when_full: drop_oldest).",
            c.evicted,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    out.push_str("# HELP smartproxy_capture_bytes Bytes held by the capture store.\n");
    out.push_str("# TYPE smartproxy_capture_bytes gauge\n");
    let _ = writeln!(out, "smartproxy_capture_bytes {}", c.bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let metrics = Metrics::default();
        let mut r = RequestRecord::new("req_1".into(), None, 0, "chat.completions");
        r.route = Some("model".into());
        r.provider = Some("openai".into());
        r.served_model = Some("gpt-4o\"x".into());
        r.status = 200;
        r.prompt_tokens = Some(10);
        r.completion_tokens = Some(5);
        r.cost_usd = Some(0.5);
        r.latency_ms = 30.0;
        metrics.record(&r);
        metrics.record(&r);
        let text = metrics.render(&[], 0, 0);
        assert!(text.contains("smartproxy_requests_total{route=\"model\",target=\"openai/gpt-4o\\\"x\",status=\"200\"} 2"), "{text}");
        assert!(
            text.contains("smartproxy_tokens_total{model=\"gpt-4o\\\"x\",direction=\"in\"} 20")
        );
        assert!(
            text.contains(
                "smartproxy_request_duration_seconds_bucket{route=\"model\",le=\"0.05\"} 2"
            )
        );
        assert!(text.contains(
            "smartproxy_request_duration_seconds_bucket{route=\"model\",le=\"0.025\"} 0"
        ));
        assert!(text.contains("smartproxy_request_duration_seconds_count{route=\"model\"} 2"));
    }
}
