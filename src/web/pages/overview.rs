//! `/`: today, this month, spend per day over the last 30 days, recent sessions (sub-sessions
//! under their parents) and the latest requests.

use std::fmt::Write as _;

use serde_json::json;

use crate::ledger::pages::Overview;
use crate::ledger::query::SessionRow;
use crate::ledger::request_view::RequestRow;
use crate::web::html::{self, Nav, esc};

pub fn render(overview: &Overview, latest: &[RequestRow]) -> String {
    // The overview updates itself (live.js), empty or not: the first request shows up.
    let mut body = String::from(html::LIVE);
    if overview.empty {
        body.push_str(
            r#"<section class="notice empty"><h1>Nothing recorded yet</h1>
<p>This dashboard reads the smartproxy ledger, and no request has been recorded in it.</p>
<p>Wrap a tool with <code>smartproxy run -- &lt;command&gt;</code> (try <code>smartproxy run --mock -- curl ...</code> to see it work offline), or point a tool at the daemon (<code>eval "$(smartproxy env)"</code>). Its sessions and requests show up here.</p></section>"#,
        );
        return html::page("Overview", Nav::Overview, &body);
    }
    let t = &overview.today;
    let _ = write!(
        body,
        r#"<h1>Overview</h1>
<section class="cards">
<div class="card" id="today"><h2><a href="/breakdown?range=today">Today</a></h2><p class="big"><a href="/breakdown?range=today">{cost}</a></p>{details}</div>
<div class="card" id="month"><h2><a href="/breakdown?range=month">This month</a></h2><p class="big"><a href="/breakdown?range=month">{mcost}</a></p><p>{mreq} requests</p>{mnote}</div>
</section>
"#,
        cost = esc(&crate::format::cost_marked(t.known_cost(), t.unpriced)),
        details = super::totals_lines(t),
        mcost = esc(&crate::format::cost_marked(
            Some(overview.month.cost_usd),
            overview.month.unpriced
        )),
        mreq = html::count(overview.month.requests),
        mnote = crate::format::unpriced_note(overview.month.unpriced)
            .map(|n| format!(r#"<p class="muted">+ {}</p>"#, esc(&n)))
            .unwrap_or_default(),
    );
    let days: Vec<serde_json::Value> = overview
        .days
        .iter()
        // `+ 0.0`: a day with nothing spent is 0, never -0 (Rust's empty f64 sum), whichever
        // ledger summed it.
        .map(|d| json!({"label": d.day, "value": d.cost_usd + 0.0, "text": crate::format::money(Some(d.cost_usd))}))
        .collect();
    body.push_str(r#"<section><h2>Spend per day, last 30 days</h2><div class="chart" id="spend-chart" data-kind="bars" data-source="spend-data">"#);
    if days.is_empty() {
        body.push_str(r#"<p class="muted">No spend in the last 30 days.</p>"#);
    }
    body.push_str("</div>");
    body.push_str(&html::json_block("spend-data", &json!(days)));
    body.push_str("</section>\n");

    body.push_str(r#"<section><h2>Recent sessions</h2>"#);
    body.push_str(&sessions_table(&overview.sessions));
    body.push_str(
        r#"<p><a href="/sessions" id="all-sessions">All sessions</a> · <a href="/sessions?sort=cost&amp;range=30d">the costliest of 30 days</a></p>"#,
    );
    body.push_str("</section>\n");
    body.push_str(r#"<section><h2>Latest requests</h2>"#);
    body.push_str(&super::requests_table(latest, true));
    body.push_str("</section>\n");
    html::page("Overview", Nav::Overview, &body)
}

/// A table of sessions in tree order, sub-sessions indented under their parents.
pub fn sessions_table(rows: &[(usize, SessionRow)]) -> String {
    if rows.is_empty() {
        return r#"<p class="muted">No sessions.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<div class="scroll"><table class="sessions"><thead><tr><th>session</th><th>started</th><th>kind</th><th>tag</th><th>program</th><th class="num">requests</th><th class="num">cost</th><th class="num">budget</th><th>exit</th></tr></thead><tbody>"#,
    );
    for (depth, s) in rows {
        let exit = match (s.ended_ms, s.exit_code) {
            (None, _) if s.lost => r#"<span class="badge bad">ended (lost)</span>"#.to_owned(),
            (None, _) => r#"<span class="badge run">running</span>"#.to_owned(),
            (Some(_), Some(0)) => r#"<span class="badge ok">0</span>"#.to_owned(),
            (Some(_), Some(code)) => format!(r#"<span class="badge bad">{code}</span>"#),
            (Some(_), None) => "–".to_owned(),
        };
        let _ = write!(
            out,
            r#"<tr class="depth-{d}"><td class="tree">{marker}{link}</td><td>{started}</td><td>{kind}</td><td>{tag}</td><td>{program}</td><td class="num">{requests}</td><td class="num">{cost}</td><td class="num">{budget}</td><td>{exit}</td></tr>"#,
            d = (*depth).min(8),
            marker = if *depth > 0 { "└ " } else { "" },
            link = html::session_link(&s.id),
            started = html::time_cell(s.started_ms),
            kind = esc(&s.kind),
            tag = html::opt_text(s.tag.as_deref()),
            program = html::opt_text(s.program.as_deref()),
            requests = html::count(s.requests),
            // Without a cost figure a session spent nothing (failures only, or no requests).
            cost = esc(&crate::format::cost_and_simulated(
                s.cost_usd.or((s.unpriced == 0).then_some(0.0)),
                s.unpriced,
                s.simulated_usd
            )),
            budget = s
                .budget_usd
                .map_or_else(|| "–".to_owned(), |b| html::money(Some(b))),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_whose_process_is_gone_reads_lost() {
        let row = |id: &str, lost: bool| {
            (
                0,
                SessionRow {
                    id: id.to_owned(),
                    kind: "run".to_owned(),
                    lost,
                    ..SessionRow::default()
                },
            )
        };
        let html = sessions_table(&[row("alive", false), row("killed", true)]);
        let line = |id: &str| html.split("<tr").find(|r| r.contains(id)).unwrap();
        assert!(line("alive").contains(">running<"), "{html}");
        assert!(line("killed").contains(">ended (lost)<"), "{html}");
        assert!(!line("killed").contains("running"), "{html}");
    }
}
