//! Draws one request's detail: every recorded field, then its attempts. Two columns when the
//! overlay is wide enough, one scrolled column otherwise.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::state::State;
use super::style::{bold, latency};
use crate::format::money;
use crate::ledger::request_view::{Attempt, RequestDetail};

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State) {
    frame.render_widget(Clear, area);
    let Some(detail) = &state.detail else {
        let text = match state.selected_request() {
            Some(_) => "reading…",
            None => "no request selected",
        };
        frame.render_widget(
            Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" request ")),
            area,
        );
        return;
    };
    let r = &detail.request;
    let title = format!(
        " request {}{} ",
        r.id,
        if r.failed() { " ! failed" } else { "" }
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    let fields = fields(detail);
    let label_width = 18;
    let mut lines: Vec<Line<'_>> = Vec::new();
    if inner.width >= 2 * (label_width + 20) {
        // Two columns, so that 80x24 shows every field and the attempts without scrolling.
        let half = fields.len().div_ceil(2);
        let column = (inner.width / 2) as usize;
        for i in 0..half {
            let mut spans = field_spans(&fields[i], label_width as usize, column);
            if let Some(right) = fields.get(i + half) {
                spans.extend(field_spans(right, label_width as usize, column));
            }
            lines.push(Line::from(spans));
        }
    } else {
        for field in &fields {
            lines.push(Line::from(field_spans(
                field,
                label_width as usize,
                inner.width as usize,
            )));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("attempts ({})", detail.attempts.len()),
        bold(),
    )));
    lines.extend(detail.attempts.iter().map(attempt_line));
    lines.extend(ATTEMPT_TIMES.map(Line::from));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((state.detail_scroll, 0)),
        area,
    );
}

fn field_spans(field: &(&'static str, String), label: usize, width: usize) -> Vec<Span<'static>> {
    let value_width = width.saturating_sub(label + 1).max(1);
    let mut value = field.1.clone();
    if value.chars().count() > value_width {
        value = value.chars().take(value_width.saturating_sub(1)).collect();
        value.push('…');
    }
    vec![
        Span::styled(format!("{:<label$}", field.0), bold()),
        Span::raw(format!("{value:<value_width$} ")),
    ]
}

/// What an attempt's time is, said under the attempts: from its start to its reply's last byte
/// (a stream's last attempt is timed to the stream's end when the row is written), the same
/// measure as the request's `total time`, so the attempts and their waits add up to it.
const ATTEMPT_TIMES: [&str; 2] = [
    "upstream: an attempt from its start to its reply's last byte, a stream's too",
    "total time: the whole request at the proxy; attempts and waits add up to it",
];

fn attempt_line(a: &Attempt) -> Line<'static> {
    let failed = a.status.is_some_and(|s| s >= 400) || a.error_class.is_some();
    let label = "upstream";
    Line::from(format!(
        "{} #{} {}/{} status {} {}{}{}",
        if failed { "!" } else { " " },
        a.n,
        a.provider.as_deref().unwrap_or("-"),
        a.model.as_deref().unwrap_or("-"),
        a.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        a.latency_ms
            .map(|l| format!("{label} {}ms", latency(l)))
            .unwrap_or_default(),
        a.waited_ms
            .filter(|w| *w > 0.0)
            .map(|w| format!(" waited {}ms", latency(w)))
            .unwrap_or_default(),
        a.error_class
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default(),
    ))
}

/// Local `2026-11-22 14:03:07`.
fn started(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Every recorded field, labelled.
fn fields(d: &RequestDetail) -> Vec<(&'static str, String)> {
    let r = &d.request;
    vec![
        ("started", started(r.started_ms)),
        ("status", r.status.to_string()),
        ("outcome", r.outcome.clone()),
        ("error code", opt(r.error_code.as_ref())),
        ("session", opt(r.session_id.as_ref())),
        ("tag", opt(r.tag.as_ref())),
        ("endpoint", r.endpoint.clone()),
        ("route", opt(r.route.as_ref())),
        ("provider", opt(r.provider.as_ref())),
        ("requested model", opt(r.requested_model.as_ref())),
        ("served model", opt(r.served_model.as_ref())),
        ("stream", r.stream.to_string()),
        ("prompt tokens", opt(r.prompt_tokens)),
        ("completion tokens", opt(r.completion_tokens)),
        ("cached tokens", opt(r.cached_tokens)),
        ("cache write tok.", opt(r.cache_write_tokens)),
        ("tokens estimated", r.tokens_estimated.to_string()),
        ("cost", money(r.cost_usd)),
        ("saved", money(r.saved_usd)),
        ("billing", r.billing.clone()),
        ("price period", opt(r.price_period.as_ref())),
        ("budget action", opt(r.budget_action.as_ref())),
        ("passed over", opt(r.skipped.as_ref())),
        ("total time", format!("{}ms", latency(r.latency_ms))),
        (
            "ttfb",
            r.ttfb_ms
                .map_or_else(|| "-".to_owned(), |t| format!("{}ms", latency(t))),
        ),
        ("attempts", r.attempts.to_string()),
        ("cache", r.cache_status.clone()),
        ("client session", opt(r.client_session.as_ref())),
        ("user agent", opt(r.user_agent.as_ref())),
        ("client hash", opt(r.client_hash.as_ref())),
        ("fingerprint", opt(r.fingerprint.as_ref())),
    ]
}
