//! `/performance`: tokens against response time for the most recent requests, one colour per
//! model, and a table of latency figures per model over the same sample.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::ledger::pages::PERFORMANCE_SAMPLE;
use crate::ledger::request_view::RequestRow;
use crate::web::html::{self, Nav, esc};

/// Latency figures of one model over the sample.
#[derive(Debug, Default, PartialEq)]
pub struct ModelStats {
    pub requests: usize,
    pub failed: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub median_ttfb_ms: Option<f64>,
    /// Median output tokens per second of the successful requests with usage.
    pub tokens_per_s: Option<f64>,
}

/// The value at fraction `p` (0 to 1) of `sorted`, nearest rank.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Figures per model, by model name.
pub fn model_stats(rows: &[RequestRow]) -> BTreeMap<String, ModelStats> {
    let mut by_model: BTreeMap<String, Vec<&RequestRow>> = BTreeMap::new();
    for r in rows {
        by_model.entry(r.model().to_owned()).or_default().push(r);
    }
    by_model
        .into_iter()
        .map(|(model, rs)| {
            let latencies = sorted(rs.iter().map(|r| r.latency_ms).collect());
            let ttfb = sorted(rs.iter().filter_map(|r| r.ttfb_ms).collect());
            let speeds = sorted(
                rs.iter()
                    .filter(|r| !r.failed() && r.latency_ms > 0.0)
                    .filter_map(|r| Some(r.completion_tokens? as f64 / (r.latency_ms / 1000.0)))
                    .collect(),
            );
            let stats = ModelStats {
                requests: rs.len(),
                failed: rs.iter().filter(|r| r.failed()).count(),
                median_ms: percentile(&latencies, 0.5).unwrap_or(0.0),
                p95_ms: percentile(&latencies, 0.95).unwrap_or(0.0),
                median_ttfb_ms: percentile(&ttfb, 0.5),
                tokens_per_s: percentile(&speeds, 0.5),
            };
            (model, stats)
        })
        .collect()
}

pub fn render(rows: &[RequestRow]) -> String {
    let mut body = String::from("<h1>Performance</h1>");
    if rows.is_empty() {
        body.push_str(
            r#"<section class="notice empty"><p>No requests recorded yet. Run a tool with <code>smartproxy run -- &lt;command&gt;</code>; its requests are plotted here.</p></section>"#,
        );
        return html::page("Performance", Nav::Performance, &body);
    }
    let stats = model_stats(rows);
    let models: Vec<&String> = stats.keys().collect();
    let points: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let tokens = r.prompt_tokens.unwrap_or(0) + r.completion_tokens.unwrap_or(0);
            let series = models
                .iter()
                .position(|m| m.as_str() == r.model())
                .unwrap_or(0);
            json!({"x": tokens, "y": r.latency_ms, "s": series, "id": r.id, "bad": r.failed()})
        })
        .collect();
    let _ = write!(
        body,
        r#"<p class="muted">The {n} most recent requests (at most {max}): tokens in + out against response time. Failed requests are drawn hollow; click a point for its request.</p>
<div class="chart" id="perf-chart" data-kind="scatter" data-source="perf-data"></div>"#,
        n = html::count(rows.len() as u64),
        max = html::count(PERFORMANCE_SAMPLE as u64),
    );
    body.push_str(&html::json_block(
        "perf-data",
        &json!({"series": models, "points": points}),
    ));
    body.push_str(
        r#"<section><h2>Per model</h2><div class="scroll"><table class="models"><thead><tr><th>model</th><th class="num">requests</th><th class="num">failed</th><th class="num">median</th><th class="num">p95</th><th class="num">median first byte</th><th class="num">output tokens/s</th></tr></thead><tbody>"#,
    );
    for (i, (model, s)) in stats.iter().enumerate() {
        let _ = write!(
            body,
            r#"<tr><td><span class="swatch s{c} m{m}"></span>{model}</td><td class="num">{n}</td><td class="num{fclass}">{failed}</td><td class="num">{median}</td><td class="num">{p95}</td><td class="num">{ttfb}</td><td class="num">{speed}</td></tr>"#,
            // As chart.js: 12 colours, then the marker's shape changes.
            c = i % 12,
            m = (i / 12) % 4,
            model = esc(model),
            n = s.requests,
            fclass = if s.failed > 0 { " bad" } else { "" },
            failed = s.failed,
            median = html::millis(s.median_ms),
            p95 = html::millis(s.p95_ms),
            ttfb = s
                .median_ttfb_ms
                .map_or_else(|| "–".to_owned(), html::millis),
            speed = s
                .tokens_per_s
                .map_or_else(|| "–".to_owned(), |v| format!("{v:.1}")),
        );
    }
    body.push_str("</tbody></table></div></section>");
    html::page("Performance", Nav::Performance, &body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn figures_per_model() {
        let row = |model: &str, latency: f64, out: i64, outcome: &str| RequestRow {
            served_model: Some(model.to_owned()),
            latency_ms: latency,
            completion_tokens: Some(out),
            outcome: outcome.to_owned(),
            ..RequestRow::default()
        };
        let rows = vec![
            row("a", 100.0, 10, "ok"),
            row("a", 200.0, 10, "ok"),
            row("a", 1000.0, 0, "upstream_error"),
            row("b", 50.0, 5, "ok"),
        ];
        let stats = model_stats(&rows);
        assert_eq!(stats["a"].requests, 3);
        assert_eq!(stats["a"].failed, 1);
        assert_eq!(stats["a"].median_ms, 200.0);
        assert_eq!(stats["a"].p95_ms, 1000.0);
        assert_eq!(stats["b"].tokens_per_s, Some(100.0));
    }
}
