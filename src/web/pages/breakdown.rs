//! `/breakdown`: where the money went. Cost, requests, failures and tokens per model, provider,
//! tag, key, project, user or team over a range of local days, each group's share of the cost
//! as a bar, and the same rows as CSV or JSON Lines.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ledger::query::{GroupBy, Totals};
use crate::web::download;
use crate::web::html::{self, Nav, esc};
use crate::web::range::{self, Range};

/// The groupings the page offers: query value and label.
pub const GROUPS: [(&str, GroupBy); 7] = [
    ("model", GroupBy::Model),
    ("provider", GroupBy::Provider),
    ("tag", GroupBy::Tag),
    ("key", GroupBy::Key),
    ("project", GroupBy::Project),
    ("user", GroupBy::User),
    ("team", GroupBy::Team),
];

/// `by=`: a grouping of `GROUPS` (model when empty), or a sentence for a 400.
pub fn group(text: &str) -> Result<(&'static str, GroupBy), String> {
    let text = if text.is_empty() { "model" } else { text };
    GROUPS
        .iter()
        .find(|(name, _)| *name == text)
        .copied()
        .ok_or_else(|| {
            format!(
                "by={text} is not a grouping: use model, provider, tag, key, project, user or team"
            )
        })
}

/// What the page shows (and `/api/breakdown` answers).
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub by: &'static str,
    /// The local days, both included (`2026-12-01`).
    pub from: String,
    pub to: String,
    pub total: Totals,
    /// Most expensive first.
    pub rows: Vec<Totals>,
}

impl Breakdown {
    pub fn new(by: &'static str, range: &Range, rows: Vec<Totals>) -> Self {
        Self {
            by,
            from: range.from.to_string(),
            to: range.to.to_string(),
            total: Totals::sum("total", &rows),
            rows,
        }
    }

    /// A group's share of the known cost, 0 to 1.
    fn share(&self, t: &Totals) -> f64 {
        match (self.total.cost_usd, t.cost_usd) {
            (Some(all), Some(part)) if all > 0.0 => (part / all).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }

    /// The rows as a download: one line per group.
    pub fn file(&self, format: download::Format) -> download::File {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|t| {
                json!({
                    self.by: t.key, "from": self.from, "to": self.to, "cost_usd": t.cost_usd,
                    "share": self.share(t), "requests": t.requests, "ok": t.ok,
                    "failed": t.failed, "prompt_tokens": t.prompt_tokens,
                    "completion_tokens": t.completion_tokens, "unpriced": t.unpriced,
                    "simulated_usd": t.simulated_usd,
                })
            })
            .collect();
        let columns = [
            self.by,
            "from",
            "to",
            "cost_usd",
            "share",
            "requests",
            "ok",
            "failed",
            "prompt_tokens",
            "completion_tokens",
            "unpriced",
            "simulated_usd",
        ];
        let name = format!("breakdown-{}-{}-{}", self.by, self.from, self.to);
        download::file(&name, format, &columns, &rows)
    }
}

pub fn render(b: &Breakdown, range: &Range) -> String {
    let mut body = String::from("<h1>Where the money went</h1>\n<nav class=\"groups\">By ");
    for (name, _) in GROUPS {
        let current = if name == b.by {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"<a href="/breakdown?by={name}&amp;{q}"{current}>{name}</a> "#,
            q = esc(&range.query()),
        );
    }
    body.push_str("</nav>\n");
    body.push_str(&range::picker(
        "/breakdown",
        Some(range),
        &[("by", b.by.to_owned())],
    ));
    let _ = write!(
        body,
        r#"<p class="muted">{from} to {to} (local days, both included).</p>"#,
        from = esc(&b.from),
        to = esc(&b.to),
    );
    body.push_str(&download::links(
        "/breakdown",
        &format!("by={}&{}", b.by, range.query()),
    ));
    body.push_str(&table(b));
    html::page("Breakdown", Nav::Breakdown, &body)
}

fn table(b: &Breakdown) -> String {
    if b.rows.is_empty() {
        return r#"<p class="muted" id="no-rows">No requests in this range.</p>"#.to_owned();
    }
    let mut out = format!(
        r#"<div class="scroll"><table class="breakdown" id="breakdown"><thead><tr><th>{by}</th><th class="num">cost</th><th>share of cost</th><th class="num">requests</th><th class="num">failed</th><th class="num">tokens in</th><th class="num">tokens out</th></tr></thead><tbody>"#,
        by = b.by,
    );
    for t in b.rows.iter().chain(std::iter::once(&b.total)) {
        let share = b.share(t);
        let total = std::ptr::eq(t, &b.total);
        let _ = write!(
            out,
            r#"<tr{class}><td>{key}</td><td class="num">{cost}</td><td><meter min="0" max="1" value="{share:.4}"></meter> {pct:.1}%</td><td class="num">{requests}</td><td class="num{fclass}">{failed}</td><td class="num">{tin}</td><td class="num">{tout}</td></tr>"#,
            class = if total { r#" class="total""# } else { "" },
            key = if total {
                "total".to_owned()
            } else {
                esc(&t.key)
            },
            cost = esc(&crate::format::cost_and_simulated(
                t.known_cost(),
                t.unpriced,
                t.simulated_usd
            )),
            pct = share * 100.0,
            requests = html::count(t.requests),
            fclass = if t.failed > 0 { " bad" } else { "" },
            failed = html::count(t.failed),
            tin = html::count(t.prompt_tokens),
            tout = html::count(t.completion_tokens),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn totals(key: &str, cost: f64, requests: u64) -> Totals {
        Totals {
            key: key.to_owned(),
            requests,
            ok: requests,
            cost_usd: Some(cost),
            ..Totals::default()
        }
    }

    #[test]
    fn shares_rows_and_downloads() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let range = range::parse("", "", "", today, "7d").unwrap();
        let b = Breakdown::new(
            "model",
            &range,
            vec![totals("gpt-4o", 3.0, 2), totals("<llama>", 1.0, 5)],
        );
        assert_eq!(b.total.requests, 7);
        let page = render(&b, &range);
        assert!(page.contains(r#"value="0.7500""#), "{page}");
        assert!(page.contains("&lt;llama&gt;"), "{page}");
        assert!(
            page.contains("/breakdown?by=model&amp;range=7d&amp;format=csv"),
            "{page}"
        );
        let csv = b.file(download::Format::Csv);
        assert_eq!(csv.name, "breakdown-model-2026-12-01-2026-12-07.csv");
        assert!(
            csv.body
                .starts_with("model,from,to,cost_usd,share,requests"),
            "{}",
            csv.body
        );
        assert!(
            csv.body
                .contains("\ngpt-4o,2026-12-01,2026-12-07,3.0,0.75,2,2,0,0,0,0,\n"),
            "{}",
            csv.body
        );
        assert!(group("nope").unwrap_err().contains("model, provider"));
    }
}
