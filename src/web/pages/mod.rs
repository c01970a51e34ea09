//! The dashboard's pages, each a function from ledger data to HTML, plus the requests table
//! they share.

pub mod breakdown;
pub mod budgets;
pub mod overview;
pub mod performance;
pub mod request;
pub mod requests;
pub mod session;
pub mod sessions;
pub mod team;
pub mod trends;

use std::fmt::Write as _;

use crate::ledger::request_view::RequestRow;
use crate::web::html::{self, esc};

/// The lines under a totals card's cost: requests, failures, tokens.
pub fn totals_lines(t: &crate::ledger::query::Totals) -> String {
    let mut notes = String::new();
    // What the cost leaves out, said where the cost is shown: never a silent zero.
    if let Some(note) = crate::format::unpriced_note(t.unpriced) {
        notes.push_str(&format!(r#"<p class="muted">+ {}</p>"#, html::esc(&note)));
    }
    if let Some(simulated) = t.simulated_usd {
        notes.push_str(&format!(
            r#"<p class="muted">{} simulated (mock provider, not spent)</p>"#,
            html::money(Some(simulated))
        ));
    }
    if let Some(notional) = t.subscription_usd {
        notes.push_str(&format!(
            r#"<p class="muted">includes {} notional (billed to a subscription)</p>"#,
            html::money(Some(notional))
        ));
    }
    format!(
        r#"<p>{requests} requests · {ok} ok · <span class="{fclass}">{failed} failed</span></p><p>{tin} tokens in · {tout} out{est}</p>{notes}"#,
        requests = html::count(t.requests),
        ok = html::count(t.ok),
        failed = html::count(t.failed),
        fclass = if t.failed > 0 { "bad" } else { "muted" },
        tin = html::count(t.prompt_tokens),
        tout = html::count(t.completion_tokens),
        est = if t.estimated > 0 {
            " (some estimated)"
        } else {
            ""
        },
    )
}

/// A table of requests, each linking to its page; failed ones highlighted.
pub fn requests_table(rows: &[RequestRow], show_session: bool) -> String {
    if rows.is_empty() {
        return r#"<p class="muted">No requests.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<div class="scroll"><table class="requests"><thead><tr><th>request</th><th>time</th>"#,
    );
    if show_session {
        out.push_str("<th>session</th>");
    }
    out.push_str(
        r#"<th>model</th><th>provider</th><th>status</th><th class="num">tokens in</th><th class="num">tokens out</th><th class="num">cost</th><th class="num">latency</th><th class="num">attempts</th></tr></thead><tbody>"#,
    );
    for r in rows {
        let _ = write!(
            out,
            r#"<tr{class}><td>{link}</td><td>{time}</td>"#,
            class = if r.failed() { r#" class="failed""# } else { "" },
            link = html::request_link(&r.id),
            time = html::time_cell(r.started_ms),
        );
        if show_session {
            let session = r
                .session_id
                .as_deref()
                .map_or_else(|| "–".to_owned(), html::session_link);
            let _ = write!(out, "<td>{session}</td>");
        }
        let estimated = if r.tokens_estimated { "*" } else { "" };
        let _ = write!(
            out,
            r#"<td>{model}</td><td>{provider}</td><td>{status}{error}</td><td class="num">{tin}{estimated}</td><td class="num">{tout}{estimated}</td><td class="num">{cost}</td><td class="num">{latency}</td><td class="num">{attempts}</td></tr>"#,
            model = esc(r.model()),
            provider = html::opt_text(r.provider.as_deref()),
            status = html::status_badge(r.status, &r.outcome),
            error = r
                .error_code
                .as_deref()
                .map(|c| format!(r#" <span class="bad">{}</span>"#, esc(c)))
                .unwrap_or_default(),
            tin = html::opt_count(r.prompt_tokens),
            tout = html::opt_count(r.completion_tokens),
            cost = html::money(r.cost_usd),
            latency = html::millis(r.latency_ms),
            attempts = r.attempts,
        );
    }
    out.push_str("</tbody></table></div>");
    if rows.iter().any(|r| r.tokens_estimated) {
        out.push_str(r#"<p class="muted">* estimated: the reply carried no usage figures.</p>"#);
    }
    out
}
