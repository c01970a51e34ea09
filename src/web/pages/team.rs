//! `/team`: cost, requests and tokens per team and per user over a range of UTC days (today, 7
//! days, 30 days, this month, or `?from=&to=`), from a PostgreSQL ledger's daily roll-up. The
//! range is parsed here from the query string and today's date, which the caller passes in.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use crate::ledger::pages::TeamUsage;
use crate::ledger::query::Totals;
use crate::web::html::{self, Nav, esc};

/// The longest range a `?from=&to=` may ask for.
const MAX_DAYS: i64 = 366;

/// The preset ranges: query value, label, days back from today (`None`: this month).
const PRESETS: [(&str, &str, Option<u64>); 4] = [
    ("today", "Today", Some(0)),
    ("7d", "7 days", Some(6)),
    ("30d", "30 days", Some(29)),
    ("month", "This month", None),
];

/// The days a page shows, inclusive, and which preset they are (`None` for `?from=&to=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub preset: Option<&'static str>,
}

/// The range `range=`, or `from=` and `to=` (`YYYY-MM-DD`), ask for; 7 days when neither is
/// given. The error is a sentence for a 400.
pub fn range(preset: &str, from: &str, to: &str, today: NaiveDate) -> Result<Range, String> {
    if !from.is_empty() || !to.is_empty() {
        let day = |text: &str, name: &str| {
            if text.is_empty() {
                return Ok(today);
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("{name}={text} is not a date: give it as YYYY-MM-DD"))
        };
        let (from, to) = (day(from, "from")?, day(to, "to")?);
        if from > to {
            return Err(format!("from={from} is after to={to}: swap them"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(format!(
                "from={from} to={to} spans more than {MAX_DAYS} days: ask for a shorter range"
            ));
        }
        return Ok(Range {
            from,
            to,
            preset: None,
        });
    }
    let preset = if preset.is_empty() { "7d" } else { preset };
    let Some(&(name, _, back)) = PRESETS.iter().find(|(name, ..)| *name == preset) else {
        return Err(format!(
            "range={preset} is not a range: use today, 7d, 30d or month (or from= and to=)"
        ));
    };
    let from = match back {
        Some(days) => today - chrono::Days::new(days),
        None => today.with_day(1).unwrap_or(today),
    };
    Ok(Range {
        from,
        to: today,
        preset: Some(name),
    })
}

pub fn render(usage: &TeamUsage, range: &Range) -> String {
    let mut body = String::from("<h1>Team</h1>\n<nav class=\"ranges\">");
    for (name, label, _) in PRESETS {
        let current = if range.preset == Some(name) {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(
            body,
            r#"<a href="/team?range={name}"{current}>{label}</a> "#
        );
    }
    let _ = write!(
        body,
        r#"</nav>
<form method="get" action="/team" class="range"><label>From <input type="date" name="from" value="{from}"></label> <label>To <input type="date" name="to" value="{to}"></label> <button type="submit">Show</button></form>
<p class="muted">{from} to {to} (UTC days, both included), from the daily roll-up.</p>
"#,
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

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ranges_from_presets_and_dates() {
        let today = day("2026-12-07");
        let r = |preset: &str, from: &str, to: &str| range(preset, from, to, today);
        let got = |preset: &str, from: &str, to: &str| {
            let got = r(preset, from, to).unwrap();
            (got.from.to_string(), got.to.to_string(), got.preset)
        };
        let owned = |a: &str, b: &str, p: Option<&'static str>| (a.to_owned(), b.to_owned(), p);
        assert_eq!(
            got("", "", ""),
            owned("2026-12-01", "2026-12-07", Some("7d"))
        );
        assert_eq!(
            got("today", "", ""),
            owned("2026-12-07", "2026-12-07", Some("today"))
        );
        assert_eq!(
            got("30d", "", ""),
            owned("2026-11-08", "2026-12-07", Some("30d"))
        );
        assert_eq!(
            got("month", "", ""),
            owned("2026-12-01", "2026-12-07", Some("month"))
        );
        assert_eq!(
            got("7d", "2026-11-01", "2026-11-30"),
            owned("2026-11-01", "2026-11-30", None)
        );
        assert_eq!(
            got("", "2026-12-05", ""),
            owned("2026-12-05", "2026-12-07", None)
        );
        assert!(
            r("week", "", "")
                .unwrap_err()
                .contains("today, 7d, 30d or month")
        );
        assert!(r("", "11/01/2026", "").unwrap_err().contains("YYYY-MM-DD"));
        assert!(
            r("", "2026-12-07", "2026-12-01")
                .unwrap_err()
                .contains("swap")
        );
        assert!(
            r("", "2024-01-01", "2026-01-01")
                .unwrap_err()
                .contains("shorter")
        );
    }

    #[test]
    fn without_team_keys_the_page_says_so() {
        let range = range("", "", "", day("2026-12-07")).unwrap();
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
