//! `/team`: cost, requests and tokens per team and per user over a range of UTC days (today, 7
//! days, 30 days, this month, or `?from=&to=`: `web::range`), from a PostgreSQL ledger's daily
//! roll-up.

use std::fmt::Write as _;

use crate::ledger::pages::TeamUsage;
use crate::ledger::query::Totals;
use crate::web::html::{self, Nav, esc};
use crate::web::range::{self, Range};

pub fn render(usage: &TeamUsage, range: &Range) -> String {
    let mut body = String::from("<h1>Team</h1>\n");
    body.push_str(&range::picker("/team", Some(range), &[]));
    let _ = writeln!(
        body,
        r#"<p class="muted">{from} to {to} (UTC days, both included), from the daily roll-up.</p>"#,
        from = esc(&usage.from),
        to = esc(&usage.to),
    );
    if !usage.team_keys {
        body.push_str(
            r#"<section class="notice empty" id="no-team-keys"><h2>No team keys</h2>
<p>Costs per user and team come from team keys, which live in a PostgreSQL ledger: set <code>database: postgres://...</code> (or <code>SMARTPROXY_DB</code>) and create keys with <code>smartproxy keys create --user NAME --team NAME</code>.</p></section>
"#,
        );
    }
    if usage.team_keys || !usage.teams.is_empty() {
        body.push_str(r#"<section id="teams"><h2>Per team</h2>"#);
        body.push_str(&table("team", None, &usage.teams));
        body.push_str("</section>\n");
        let users: Vec<Totals> = usage.users.iter().map(|u| u.totals.clone()).collect();
        let teams: Vec<&str> = usage.users.iter().map(|u| u.team.as_str()).collect();
        body.push_str(r#"<section id="users"><h2>Per user</h2>"#);
        body.push_str(&table("user", Some(&teams), &users));
        body.push_str("</section>\n");
        body.push_str(
            r#"<p class="muted"><code>-</code>: requests made without a team key (a config key, a <code>run</code>, no key).</p>"#,
        );
    }
    body.push_str(&crate::web::download::links("/team", &range.query()));
    html::page("Team", Nav::Team, &body)
}

/// One row per group: its name (and team), requests, tokens and cost.
fn table(what: &str, teams: Option<&[&str]>, rows: &[Totals]) -> String {
    if rows.is_empty() {
        return r#"<p class="muted">No requests in this range.</p>"#.to_owned();
    }
    let mut out = format!(
        r#"<div class="scroll"><table class="team"><thead><tr><th>{what}</th>{team}<th class="num">requests</th><th class="num">failed</th><th class="num">tokens in</th><th class="num">tokens out</th><th class="num">cost</th></tr></thead><tbody>"#,
        team = if teams.is_some() { "<th>team</th>" } else { "" },
    );
    for (i, t) in rows.iter().enumerate() {
        let team = teams
            .and_then(|teams| teams.get(i))
            .map(|team| format!("<td>{}</td>", esc(team)))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr><td>{key}</td>{team}<td class="num">{requests}</td><td class="num">{failed}</td><td class="num">{tin}</td><td class="num">{tout}</td><td class="num">{cost}</td></tr>"#,
            key = esc(&t.key),
            requests = html::count(t.requests),
            failed = html::count(t.failed),
            tin = html::count(t.prompt_tokens),
            tout = html::count(t.completion_tokens),
            cost = esc(&crate::format::cost_and_simulated(
                t.known_cost(),
                t.unpriced,
                t.simulated_usd
            )),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day(text: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn without_team_keys_the_page_says_so() {
        let range = range::parse("", "", "", day("2026-12-07"), "7d").unwrap();
        let usage = TeamUsage {
            from: "2026-12-01".to_owned(),
            to: "2026-12-07".to_owned(),
            ..TeamUsage::default()
        };
        let page = render(&usage, &range);
        assert!(page.contains("No team keys"), "{page}");
        assert!(!page.contains(r#"id="users""#), "{page}");
    }
}
