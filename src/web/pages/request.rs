//! `/request/{id}`: every recorded field of one request, its attempts at providers (the routing
//! trail), its session, and its payloads when body capture recorded them.

use std::fmt::Write as _;

use crate::ledger::request_view::RequestDetail;
use crate::web::html::{self, Nav, esc};

/// A captured body, the bytes as recorded (capture stores a body whole or not at all).
#[derive(Debug, Clone, Copy)]
pub struct Payload<'a> {
    pub bytes: &'a [u8],
}

pub fn render(
    d: &RequestDetail,
    request_body: Option<Payload<'_>>,
    response_body: Option<Payload<'_>>,
) -> String {
    let r = &d.request;
    let mut body = String::new();
    if let Some(session) = &d.session {
        let _ = write!(
            body,
            r#"<nav class="crumbs">{} › {}</nav>"#,
            html::session_link(&session.id),
            esc(&r.id)
        );
    }
    let _ = write!(
        body,
        r#"<h1>Request <code>{}</code> {}</h1>"#,
        esc(&r.id),
        html::status_badge(r.status, &r.outcome)
    );
    let opt_ms = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), html::millis);
    let estimated = if r.tokens_estimated {
        " (estimated)"
    } else {
        ""
    };
    let fields: Vec<(&str, String)> = vec![
        ("id", esc(&r.id)),
        ("started", html::time_cell(r.started_ms)),
        (
            "session",
            r.session_id
                .as_deref()
                .map_or_else(|| "–".to_owned(), html::session_link),
        ),
        ("endpoint", esc(&r.endpoint)),
        ("route", html::opt_text(r.route.as_deref())),
        ("provider", html::opt_text(r.provider.as_deref())),
        (
            "requested model",
            html::opt_text(r.requested_model.as_deref()),
        ),
        ("served model", html::opt_text(r.served_model.as_deref())),
        ("status", r.status.to_string()),
        (
            "outcome",
            format!(
                r#"<span class="{}">{}</span>"#,
                if r.failed() { "bad" } else { "ok" },
                esc(&r.outcome)
            ),
        ),
        (
            "error code",
            r.error_code.as_deref().map_or_else(
                || "–".to_owned(),
                |c| format!(r#"<span class="bad">{}</span>"#, esc(c)),
            ),
        ),
        ("stream", if r.stream { "yes" } else { "no" }.to_owned()),
        (
            "prompt tokens",
            format!("{}{estimated}", html::opt_count(r.prompt_tokens)),
        ),
        (
            "completion tokens",
            format!("{}{estimated}", html::opt_count(r.completion_tokens)),
        ),
        ("cached prompt tokens", html::opt_count(r.cached_tokens)),
        (
            "prompt tokens written to cache",
            html::opt_count(r.cache_write_tokens),
        ),
        ("cost", html::money(r.cost_usd)),
        ("billing", esc(&r.billing)),
        ("price period", html::opt_text(r.price_period.as_deref())),
        (
            "saved by the response cache",
            r.saved_usd
                .map_or_else(|| "–".to_owned(), |s| html::money(Some(s))),
        ),
        ("latency", html::millis(r.latency_ms)),
        ("first byte", opt_ms(r.ttfb_ms)),
        ("attempts", r.attempts.to_string()),
        ("response cache", esc(&r.cache_status)),
        ("budget action", html::opt_text(r.budget_action.as_deref())),
        (
            "client (salted hash)",
            html::opt_text(r.client_hash.as_deref()),
        ),
        (
            "request fingerprint",
            html::opt_text(r.fingerprint.as_deref()),
        ),
        ("user agent", html::opt_text(r.user_agent.as_deref())),
        (
            "client session",
            html::opt_text(r.client_session.as_deref()),
        ),
    ];
    body.push_str(r#"<dl class="fields">"#);
    for (name, value) in fields {
        let _ = write!(body, "<dt>{name}</dt><dd>{value}</dd>");
    }
    body.push_str("</dl>");

    body.push_str(r#"<section><h2>Attempts (routing trail)</h2>"#);
    if let Some(route) = &r.route {
        let _ = write!(
            body,
            r#"<p class="route">Targets chosen by <code>{}</code>.</p>"#,
            esc(route)
        );
    }
    if let Some(skipped) = &r.skipped {
        body.push_str(r#"<p>Passed over before any attempt:</p><ul class="skipped">"#);
        for skip in skipped.split("; ") {
            let _ = write!(body, "<li>{}</li>", esc(skip));
        }
        body.push_str("</ul>");
    }
    if d.attempts.is_empty() {
        body.push_str(r#"<p class="muted">No provider was tried (answered by smartproxy itself, from the cache, or refused before routing).</p>"#);
    } else {
        body.push_str(
            r#"<div class="scroll"><table class="attempts"><thead><tr><th>#</th><th>provider</th><th>model</th><th>status</th><th>error</th><th class="num">latency</th><th class="num">waited before</th></tr></thead><tbody>"#,
        );
        for a in &d.attempts {
            let failed = a.error_class.is_some() || a.status.is_some_and(|s| s >= 400);
            let _ = write!(
                body,
                r#"<tr{class}><td>{n}</td><td>{provider}</td><td>{model}</td><td>{status}</td><td>{error}</td><td class="num">{latency}</td><td class="num">{waited}</td></tr>"#,
                class = if failed { r#" class="failed""# } else { "" },
                n = a.n,
                provider = html::opt_text(a.provider.as_deref()),
                model = html::opt_text(a.model.as_deref()),
                status = a.status.map_or_else(|| "–".to_owned(), |s| s.to_string()),
                error = html::opt_text(a.error_class.as_deref()),
                latency = opt_ms(a.latency_ms),
                waited = opt_ms(a.waited_ms),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</section>");
    body.push_str(&payloads(request_body, response_body));
    html::page(&format!("Request {}", r.id), Nav::None, &body)
}

/// The request and response bodies, HTML-escaped in `<pre>`, or "not captured". The one place
/// the capture store (`src/capture/`) plugs into the request page.
pub fn payloads(request: Option<Payload<'_>>, response: Option<Payload<'_>>) -> String {
    let mut out = String::from(r#"<section id="payloads"><h2>Payloads</h2>"#);
    for (label, payload) in [("Request body", request), ("Response body", response)] {
        let _ = write!(out, "<h3>{label}</h3>");
        match payload {
            Some(p) => {
                let text = String::from_utf8_lossy(p.bytes);
                let pretty = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok());
                let _ = write!(
                    out,
                    r#"<pre class="payload">{}</pre>"#,
                    esc(pretty.as_deref().unwrap_or(&text)),
                );
            }
            None => out.push_str(
                r#"<p class="muted not-captured">Not captured. smartproxy records metadata only unless body capture is turned on.</p>"#,
            ),
        }
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_escaped_or_marked_missing() {
        let html = payloads(
            Some(Payload {
                bytes: br#"{"content":"<script>x</script>"}"#,
            }),
            None,
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("Not captured"), "{html}");
    }

    #[test]
    fn the_routing_trail_names_the_route_and_what_it_passed_over() {
        let detail = RequestDetail {
            request: crate::ledger::request_view::RequestRow {
                id: "req_1".to_owned(),
                route: Some("alias:fast".to_owned()),
                skipped: Some(
                    "a/gpt-4o: circuit open; <b>/x: missing credential ($B_KEY is not set)"
                        .to_owned(),
                ),
                price_period: Some("off_peak".to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        let html = render(&detail, None, None);
        assert!(
            html.contains("off_peak"),
            "the price period is shown: {html}"
        );
        assert!(html.contains("<code>alias:fast</code>"), "{html}");
        assert!(html.contains("<li>a/gpt-4o: circuit open</li>"), "{html}");
        assert!(
            html.contains("<li>&lt;b&gt;/x: missing credential ($B_KEY is not set)</li>"),
            "{html}"
        );
    }
}
