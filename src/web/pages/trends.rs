//! `/trends`: requests and failures, cost, tokens and latency p50/p95 per local hour, day or
//! month over a range, each chart with its table, and the same rows as CSV or JSON Lines.
//! Latency percentiles are not in the roll-ups: they come from the requests' own latencies,
//! at most `LATENCY_SAMPLE` of the newest, and the page says when the sample is cut.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ledger::query::{GroupBy, Totals};
use crate::ledger::time_groups;
use crate::web::download;
use crate::web::html::{self, Nav, esc};
use crate::web::range::{self, Range};

/// The periods the page offers: query value and grouping.
pub const EVERY: [(&str, GroupBy); 3] = [
    ("hour", GroupBy::Hour),
    ("day", GroupBy::Day),
    ("month", GroupBy::Month),
];

/// The longest range drawn hour by hour (a month of hours is ~740 bars).
pub const MAX_HOUR_DAYS: i64 = 31;

/// `every=`: a period of `EVERY` (day when empty) for `range`, or a sentence for a 400.
pub fn every(text: &str, range: &Range) -> Result<(&'static str, GroupBy), String> {
    let text = if text.is_empty() { "day" } else { text };
    let found = EVERY.iter().find(|(name, _)| *name == text).copied();
    let (name, by) =
        found.ok_or_else(|| format!("every={text} is not a period: use hour, day or month"))?;
    if by == GroupBy::Hour && (range.to - range.from).num_days() >= MAX_HOUR_DAYS {
        return Err(format!(
            "every=hour covers at most {MAX_HOUR_DAYS} days: pick a shorter range or every=day"
        ));
    }
    Ok((name, by))
}

/// One period's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Period {
    /// `2026-12-07 10:00`, `2026-12-07` or `2026-12` (local time).
    pub period: String,
    pub requests: u64,
    pub failed: u64,
    /// None when a successful request has no price and nothing else does.
    pub cost_usd: Option<f64>,
    pub unpriced: u64,
    pub simulated_usd: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Over the period's sampled requests; None without any.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// What the page shows (and `/api/trends` answers).
#[derive(Debug, Clone, Serialize)]
pub struct Trends {
    pub every: &'static str,
    pub from: String,
    pub to: String,
    pub total: Totals,
    /// Requests whose latencies the percentiles are taken from, and whether the range held
    /// more (the newest `sample` are used then).
    pub latency_sample: usize,
    pub latency_capped: bool,
    /// Every period of the range, oldest first, empty ones included.
    pub periods: Vec<Period>,
}

impl Trends {
    /// The figures of `range` in periods of `by`: `rows` from `LedgerReader::grouped`,
    /// `latencies` (start, ms) from `LedgerReader::latencies` read with a limit of `cap + 1`.
    pub fn new(
        (every, by): (&'static str, GroupBy),
        range: &Range,
        rows: Vec<Totals>,
        mut latencies: Vec<(i64, f64)>,
        cap: usize,
    ) -> Self {
        let latency_capped = latencies.len() > cap;
        latencies.truncate(cap);
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (started, ms) in &latencies {
            // Labelled by its UTC hour's start, as the roll-up's rows are.
            if let Some(label) = time_groups::label(started - started.rem_euclid(3_600_000), by) {
                samples.entry(label).or_default().push(*ms);
            }
        }
        let by_label: BTreeMap<&str, &Totals> = rows.iter().map(|t| (t.key.as_str(), t)).collect();
        let periods = labels(range, by)
            .into_iter()
            .map(|label| {
                let mut p = by_label.get(label.as_str()).map_or_else(
                    || Period {
                        cost_usd: Some(0.0),
                        ..Period::default()
                    },
                    |t| period(t),
                );
                if let Some(mut v) = samples.remove(&label) {
                    v.sort_by(f64::total_cmp);
                    p.p50_ms = super::performance::percentile(&v, 0.5).map(thousandths);
                    p.p95_ms = super::performance::percentile(&v, 0.95).map(thousandths);
                }
                p.period = label;
                p
            })
            .collect();
        Self {
            every,
            from: range.from.to_string(),
            to: range.to.to_string(),
            total: Totals::sum("total", &rows),
            latency_sample: latencies.len(),
            latency_capped,
            periods,
        }
    }

    /// The periods as a download: one line each.
    pub fn file(&self, format: download::Format) -> download::File {
        let rows: Vec<Value> = self
            .periods
            .iter()
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect();
        let columns = [
            "period",
            "requests",
            "failed",
            "cost_usd",
            "unpriced",
            "simulated_usd",
            "prompt_tokens",
            "completion_tokens",
            "p50_ms",
            "p95_ms",
        ];
        let name = format!("trends-{}-{}-{}", self.every, self.from, self.to);
        download::file(&name, format, &columns, &rows)
    }
}

fn thousandths(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn period(t: &Totals) -> Period {
    Period {
        period: t.key.clone(),
        requests: t.requests,
        failed: t.failed,
        cost_usd: t.known_cost(),
        unpriced: t.unpriced,
        simulated_usd: t.simulated_usd,
        prompt_tokens: t.prompt_tokens,
        completion_tokens: t.completion_tokens,
        p50_ms: None,
        p95_ms: None,
    }
}

/// Every period label of the range's local days, oldest first, walked hour by hour.
fn labels(range: &Range, by: GroupBy) -> Vec<String> {
    let start = crate::web::local_midnight(range.from);
    let end = crate::web::local_midnight(range.to + chrono::Days::new(1));
    let mut out: Vec<String> = Vec::new();
    let mut hour = start - start.rem_euclid(3_600_000);
    while hour < end {
        if let Some(label) = time_groups::label(hour, by)
            && out.last() != Some(&label)
        {
            out.push(label);
        }
        hour += 3_600_000;
    }
    out
}

pub fn render(t: &Trends, range: &Range) -> String {
    let mut body = String::from("<h1>Over time</h1>\n<nav class=\"groups\">Every ");
    for (name, _) in EVERY {
        let current = if name == t.every {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"<a href="/trends?every={name}&amp;{q}"{current}>{name}</a> "#,
            q = esc(&range.query()),
        );
    }
    body.push_str("</nav>\n");
    body.push_str(&range::picker(
        "/trends",
        Some(range),
        &[("every", t.every.to_owned())],
    ));
    let _ = write!(
        body,
        r#"<p class="muted">{from} to {to} (local days, both included): {n} requests.</p>"#,
        from = esc(&t.from),
        to = esc(&t.to),
        n = html::count(t.total.requests),
    );
    body.push_str(&download::links(
        "/trends",
        &format!("every={}&{}", t.every, range.query()),
    ));
    if t.total.requests == 0 {
        body.push_str(r#"<p class="muted" id="no-rows">No requests in this range.</p>"#);
        return html::page("Over time", Nav::Trends, &body);
    }
    for chart in &CHARTS {
        body.push_str(&section(t, chart));
    }
    html::page("Over time", Nav::Trends, &body)
}

/// A table column: its heading and how a period's value is read.
type Column = (&'static str, fn(&Period) -> Option<f64>);

/// A chart: its id, heading, axis format, and the columns of its table (heading, value).
struct Chart {
    id: &'static str,
    title: &'static str,
    format: &'static str,
    /// The bar's value and the overlaid one's, with their column headings.
    main: Column,
    over: Option<Column>,
}

const CHARTS: [Chart; 4] = [
    Chart {
        id: "requests",
        title: "Requests and failures",
        format: "count",
        main: ("requests", |p| Some(p.requests as f64)),
        over: Some(("failed", |p| Some(p.failed as f64))),
    },
    Chart {
        id: "cost",
        title: "Cost",
        format: "money",
        main: ("cost", |p| p.cost_usd),
        over: None,
    },
    Chart {
        id: "tokens",
        title: "Tokens (in + out)",
        format: "count",
        main: ("tokens", |p| {
            Some((p.prompt_tokens + p.completion_tokens) as f64)
        }),
        over: None,
    },
    Chart {
        id: "latency",
        title: "Latency p95, p50 inside",
        format: "ms",
        main: ("p95", |p| p.p95_ms),
        over: Some(("p50", |p| p.p50_ms)),
    },
];

fn cell(format: &str, p: &Period, value: Option<f64>) -> String {
    match (format, value) {
        ("money", _) => esc(&crate::format::cost_and_simulated(
            value,
            p.unpriced,
            p.simulated_usd,
        )),
        ("ms", Some(v)) => html::millis(v),
        (_, Some(v)) => html::count(v as u64),
        (_, None) => "–".to_owned(),
    }
}

fn section(t: &Trends, chart: &Chart) -> String {
    let data: Vec<Value> = t
        .periods
        .iter()
        .map(|p| {
            let value = (chart.main.1)(p);
            let over = chart.over.and_then(|(_, f)| f(p));
            let mut text = format!("{} {}", cell(chart.format, p, value), chart.main.0);
            if let Some((name, _)) = chart.over {
                let _ = write!(text, ", {} {name}", cell(chart.format, p, over));
            }
            json!({"label": p.period, "value": value.unwrap_or(0.0), "over": over, "text": text})
        })
        .collect();
    let mut out = format!(
        r#"<section id="{id}"><h2>{title}</h2><div class="chart" id="{id}-chart" data-kind="bars" data-format="{format}" data-source="{id}-data"></div>{json}"#,
        id = chart.id,
        title = chart.title,
        format = chart.format,
        json = html::json_block(&format!("{}-data", chart.id), &json!(data)),
    );
    if chart.id == "latency" {
        let _ = write!(
            out,
            r#"<p class="muted" id="latency-sample">From {n} requests' latencies{cut}.</p>"#,
            n = html::count(t.latency_sample as u64),
            cut = if t.latency_capped {
                ": the range holds more, so only the newest are counted"
            } else {
                ""
            },
        );
    }
    let _ = write!(
        out,
        r#"<div class="scroll"><table class="trends" id="{id}-table"><thead><tr><th>{every}</th><th class="num">{main}</th>"#,
        id = chart.id,
        every = t.every,
        main = chart.main.0,
    );
    if let Some((name, _)) = chart.over {
        let _ = write!(out, r#"<th class="num">{name}</th>"#);
    }
    out.push_str("</tr></thead><tbody>");
    for p in &t.periods {
        let _ = write!(
            out,
            r#"<tr><td>{period}</td><td class="num">{main}</td>"#,
            period = esc(&p.period),
            main = cell(chart.format, p, (chart.main.1)(p)),
        );
        if let Some((_, f)) = chart.over {
            let _ = write!(
                out,
                r#"<td class="num">{}</td>"#,
                cell(chart.format, p, f(p))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn periods_fill_the_range_with_percentiles_and_downloads() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let range = range::parse("7d", "", "", today, "7d").unwrap();
        let day = |d: &str| crate::web::local_midnight(d.parse().unwrap());
        let rows = vec![Totals {
            key: "2026-12-03".to_owned(),
            requests: 3,
            ok: 2,
            failed: 1,
            cost_usd: Some(0.5),
            ..Totals::default()
        }];
        let at = day("2026-12-03") + 3_600_000;
        let lat = vec![
            (at, 10.0),
            (at, 30.0),
            (at, 20.0),
            (day("2026-12-01"), 99.0),
        ];
        let t = Trends::new(("day", GroupBy::Day), &range, rows, lat, 3);
        assert_eq!(t.periods.len(), 7, "{t:?}");
        assert!(t.latency_capped);
        assert_eq!(t.latency_sample, 3);
        let p = &t.periods[2];
        assert_eq!(
            (p.period.as_str(), p.requests, p.failed),
            ("2026-12-03", 3, 1)
        );
        assert_eq!((p.p50_ms, p.p95_ms), (Some(20.0), Some(30.0)));
        assert_eq!(t.periods[0].p50_ms, None, "the 4th latency was cut");
        let page = render(&t, &range);
        assert!(page.contains(r#"id="latency-sample""#), "{page}");
        assert!(page.contains("only the newest"), "{page}");
        let csv = t.file(download::Format::Csv);
        assert_eq!(csv.name, "trends-day-2026-12-01-2026-12-07.csv");
        assert!(
            csv.body.contains("\n2026-12-03,3,1,0.5,0,,0,0,20.0,30.0\n"),
            "{}",
            csv.body
        );
        assert!(every("hour", &range).is_ok());
        let year = range::parse("", "2026-01-01", "2026-12-07", today, "7d").unwrap();
        assert!(every("hour", &year).unwrap_err().contains("31 days"));
        assert!(
            every("week", &range)
                .unwrap_err()
                .contains("hour, day or month")
        );
    }
}
