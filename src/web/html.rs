//! HTML building blocks: escaping, the page shell (navigation, stylesheet, script), cells and
//! formats shared by the pages. Everything that comes from the ledger goes through `esc`.

use std::fmt::Write as _;

use crate::format;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment for a link (`/sessions/{id}`): anything but unreserved characters is
/// percent-encoded.
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped so that no
/// value can end the block.
pub fn json_block(id: &str, value: &serde_json::Value) -> String {
    let text = value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!(
        r#"<script type="application/json" id="{}">{text}</script>"#,
        esc(id)
    )
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Breakdown,
    Sessions,
    Requests,
    Performance,
    Team,
    Budgets,
    Trends,
    /// No page current.
    None,
    /// No navigation at all (the sign-in page: its links would only lead back to it).
    Bare,
}

/// A whole page: title, navigation, body, the shared stylesheet and chart script.
pub fn page(title: &str, nav: Nav, body: &str) -> String {
    let link = |target: Nav, href: &str, label: &str| {
        let current = if target == nav {
            r#" aria-current="page""#
        } else {
            ""
        };
        format!(r#"<a href="{href}"{current}>{label}</a>"#)
    };
    let header = if nav == Nav::Bare {
        r#"<span class="brand">smartproxy</span>"#.to_owned()
    } else {
        format!(
            r#"<a class="brand" href="/">smartproxy</a><nav>{}{}{}{}{}{}{}{}</nav>"#,
            link(Nav::Overview, "/", "Overview"),
            link(Nav::Trends, "/trends", "Over time"),
            link(Nav::Breakdown, "/breakdown", "Breakdown"),
            link(Nav::Sessions, "/sessions", "Sessions"),
            link(Nav::Requests, "/requests", "Requests"),
            link(Nav::Performance, "/performance", "Performance"),
            link(Nav::Team, "/team", "Team"),
            link(Nav::Budgets, "/budgets", "Budgets"),
        )
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · smartproxy</title>
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/chart.js" defer></script>
<script src="/assets/live.js" defer></script>
</head>
<body>
<header>{header}</header>
<main>
{body}
</main>
<footer>smartproxy {version} · times in the server's local time · metadata only: no prompts or replies unless capture is on</footer>
</body>
</html>
"#,
        title = esc(title),
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The marker of a page that updates itself (`assets/live.js` polls while it is there and
/// writes the time of the last update into it).
pub const LIVE: &str = r#"<p id="live" class="live">live</p>"#;

/// `2026-11-22 14:03:05` in local time.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// A `<time>` element with the full ISO timestamp as its machine value.
pub fn time_cell(ms: i64) -> String {
    let iso = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        })
        .unwrap_or_default();
    format!(
        r#"<time datetime="{}">{}</time>"#,
        esc(&iso),
        esc(&time(ms))
    )
}

pub fn money(usd: Option<f64>) -> String {
    esc(&format::money(usd))
}

pub fn count(n: u64) -> String {
    format::count(n)
}

pub fn opt_count(n: Option<i64>) -> String {
    n.map_or_else(
        || "–".to_owned(),
        |n| format::count(u64::try_from(n).unwrap_or(0)),
    )
}

pub fn millis(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn opt_text(text: Option<&str>) -> String {
    text.map_or_else(|| "–".to_owned(), esc)
}

/// A link to a session page.
pub fn session_link(id: &str) -> String {
    format!(r#"<a href="/sessions/{}">{}</a>"#, url_segment(id), esc(id))
}

/// A link to a request page.
pub fn request_link(id: &str) -> String {
    format!(r#"<a href="/request/{}">{}</a>"#, url_segment(id), esc(id))
}

/// A status code, marked when it is an error.
pub fn status_badge(status: i64, outcome: &str) -> String {
    let class = if outcome == "ok" && status < 400 {
        "ok"
    } else {
        "bad"
    };
    format!(
        r#"<span class="badge {class}">{status} {}</span>"#,
        esc(outcome)
    )
}

/// The error page body for an unknown id or path.
pub fn not_found(what: &str) -> String {
    page(
        "Not found",
        Nav::None,
        &format!(
            r#"<section class="notice"><h1>Not found</h1><p>{}</p><p><a href="/">Back to the overview</a></p></section>"#,
            esc(what)
        ),
    )
}

/// The error page body for a query string a page cannot use, with a way back.
pub fn bad_request(message: &str, back: &str) -> String {
    page(
        "Bad request",
        Nav::None,
        &format!(
            r#"<section class="notice bad"><h1>Bad request</h1><p>{}</p><p><a href="{}">Back</a></p></section>"#,
            esc(message),
            esc(back)
        ),
    )
}

/// The error page body for a ledger that could not be read.
pub fn failure(message: &str) -> String {
    page(
        "Error",
        Nav::None,
        &format!(
            r#"<section class="notice bad"><h1>The ledger could not be read</h1><pre>{}</pre></section>"#,
            esc(message)
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(url_segment("a/b c<"), "a%2Fb%20c%3C");
        let block = json_block("d", &serde_json::json!({"m": "</script><b>"}));
        assert!(
            !block[..block.len() - 9].contains("</script><b>"),
            "{block}"
        );
    }
}
