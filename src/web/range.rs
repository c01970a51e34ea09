//! The date-range picker the pages share (`/team`, `/breakdown`, `/sessions`): today, 7 days,
//! 30 days, this month, or `?from=&to=` (`YYYY-MM-DD`, both days included). Parsed here from
//! the query string and today's date, which the caller passes in; PURE.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use crate::web::html::esc;

/// The longest range a `?from=&to=` may ask for.
const MAX_DAYS: i64 = 366;

/// The preset ranges: query value, label, days back from today (`None`: this month).
pub const PRESETS: [(&str, &str, Option<u64>); 4] = [
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

impl Range {
    /// The query string that asks for this range again (`range=7d` or `from=..&to=..`).
    pub fn query(&self) -> String {
        match self.preset {
            Some(name) => format!("range={name}"),
            None => format!("from={}&to={}", self.from, self.to),
        }
    }
}

/// The range `range=`, or `from=` and `to=` (`YYYY-MM-DD`), ask for; `default` (a preset's
/// name) when neither is given. The error is a sentence for a 400.
pub fn parse(
    preset: &str,
    from: &str,
    to: &str,
    today: NaiveDate,
    default: &'static str,
) -> Result<Range, String> {
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
    let preset = if preset.is_empty() { default } else { preset };
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

/// The preset links and the from/to form, for the page at `path` (`None`: no range chosen, as
/// `/sessions` allows); `keep` are the page's other parameters (name, value), carried along by
/// both.
pub fn picker(path: &str, range: Option<&Range>, keep: &[(&str, String)]) -> String {
    let carried: String = keep
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("&{k}={}", crate::web::html::url_segment(v)))
        .collect();
    let mut out = String::from(r#"<nav class="ranges">"#);
    for (name, label, _) in PRESETS {
        let current = if range.is_some_and(|r| r.preset == Some(name)) {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<a href="{path}?range={name}{carried}"{current}>{label}</a> "#,
            carried = esc(&carried),
        );
    }
    out.push_str("</nav>\n");
    let hidden: String = keep
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v)))
        .collect();
    let _ = write!(
        out,
        r#"<form method="get" action="{path}" class="range">{hidden}<label>From <input type="date" name="from" value="{from}"></label> <label>To <input type="date" name="to" value="{to}"></label> <button type="submit">Show</button></form>"#,
        from = range.map(|r| r.from.to_string()).unwrap_or_default(),
        to = range.map(|r| r.to.to_string()).unwrap_or_default(),
    );
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
        let r = |preset: &str, from: &str, to: &str| parse(preset, from, to, today, "7d");
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
        assert_eq!(
            r("", "2026-11-01", "2026-11-30").unwrap().query(),
            "from=2026-11-01&to=2026-11-30"
        );
    }

    #[test]
    fn the_picker_keeps_the_other_parameters() {
        let range = parse("", "", "", day("2026-12-07"), "7d").unwrap();
        let html = picker(
            "/breakdown",
            Some(&range),
            &[("by", "tag".to_owned()), ("x", String::new())],
        );
        assert!(
            html.contains(r#"href="/breakdown?range=today&amp;by=tag""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<input type="hidden" name="by" value="tag">"#),
            "{html}"
        );
        assert!(!html.contains("name=\"x\""), "{html}");
    }
}
