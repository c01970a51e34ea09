//! `/budgets`: every budget scope (process-wide, per key, and on a team ledger per user and
//! team) with its cap, spent, reserved, left as a bar, and when it runs out at the rate spent so
//! far this day or month (`budget::standings`, the lines `smartproxy budget` prints).

use std::fmt::Write as _;

use crate::budget::standings::{ScopeStanding, period_name};
use crate::web::html::{self, Nav, esc};

pub fn render(lines: &[ScopeStanding], session_usd: Option<f64>, now_ms: i64) -> String {
    let mut body = String::from("<h1>Budgets</h1>\n");
    let session = match session_usd {
        Some(usd) => format!("Each <code>run</code> session may spend {}.", html::money(Some(usd))),
        None => "<code>run</code> sessions have no limit of their own (<code>run --budget USD</code> sets one).".to_owned(),
    };
    let _ = writeln!(body, r#"<p class="muted">{session}</p>"#);
    if lines.is_empty() {
        body.push_str(
            r#"<section class="notice empty" id="no-budgets"><h2>No daily or monthly limit</h2>
<p>Set <code>budget.daily_usd</code>, <code>budget.weekly_usd</code>, <code>budget.monthly_usd</code> or <code>budget.windows</code> in the config, give a client key <code>budget_daily_usd</code>, <code>budget_weekly_usd</code> or <code>windows</code>, or on a team ledger <code>smartproxy keys limit --user NAME --daily USD</code>.</p></section>
"#,
        );
        return html::page("Budgets", Nav::Budgets, &body);
    }
    body.push_str(
        r#"<div class="scroll"><table class="budgets" id="budgets"><thead><tr><th>scope</th><th>period</th><th class="num">cap</th><th class="num">spent</th><th class="num">reserved</th><th class="num">left</th><th>used</th><th>runs out</th></tr></thead><tbody>"#,
    );
    for l in lines {
        let used = if l.cap_usd > 0.0 {
            ((l.spent_usd + l.reserved_usd) / l.cap_usd * 100.0).clamp(0.0, 100.0)
        } else {
            100.0
        };
        let runs_out = match (l.every_ms, l.runs_out_ms, l.frees_at_ms) {
            (Some(_), _, Some(at)) => format!("frees up {}", esc(&html::time(at))),
            (Some(_), _, None) => "nothing to free".to_owned(),
            (None, Some(at), _) if at <= now_ms => r#"<strong class="bad">now</strong>"#.to_owned(),
            (None, Some(at), _) => esc(&html::time(at)),
            (None, None, _) => format!("not this {}", period_name(l.period)),
        };
        let _ = write!(
            body,
            r#"<tr><td>{scope}</td><td>{period}</td><td class="num">{cap}</td><td class="num">{spent}</td><td class="num">{reserved}</td><td class="num">{left}</td><td><meter min="0" max="100" low="80" high="95" optimum="0" value="{used:.1}" title="{used:.0}% used">{used:.0}%</meter></td><td>{runs_out}</td></tr>"#,
            scope = esc(&l.scope),
            period = period_name(l.period),
            cap = html::money(Some(l.cap_usd)),
            spent = html::money(Some(l.spent_usd)),
            reserved = html::money(Some(l.reserved_usd)),
            left = html::money(Some(l.left_usd)),
        );
    }
    body.push_str("</tbody></table></div>\n");
    body.push_str(&crate::web::download::links("/budgets", ""));
    body.push_str(
        r#"<p class="muted">Spent counts every process on this ledger; reserved is what requests in flight hold until their cost is known. Runs out: at the rate spent so far this period; a rolling window frees up as its oldest spend leaves it. JSON: <a href="/api/budgets">/api/budgets</a>.</p>"#,
    );
    html::page("Budgets", Nav::Budgets, &body)
}
