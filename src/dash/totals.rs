//! Draws today's totals (per model and provider), the recent latency per model and the
//! breakers: a compact panel of lines at 80 columns, tables in the side column when wide.
//! Draw only.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use super::state::{Daemon, ModelLatency, State};
use super::style::{bold, elide_middle, error_style, latency};
use crate::budget::standings::{ScopeStanding, period_name};
use crate::format::cost_marked;
use crate::ledger::live::GroupTotals;

/// The lines of the compact panel (its height less the borders).
pub(super) const COMPACT_LINES: u16 = 5;

/// The daemon's state in a few words; under `run --dash` it is the session's own proxy.
pub(super) fn daemon_summary(state: &State) -> String {
    let name = if state.wraps_command {
        "proxy"
    } else {
        "daemon"
    };
    match &state.daemon {
        Daemon::Unknown => format!("{name} …"),
        Daemon::Down if state.wraps_command => "proxy stopped".to_owned(),
        Daemon::Down => "no daemon".to_owned(),
        Daemon::Locked => format!("{name} up (admin key needed)"),
        Daemon::Up(breakers) => {
            let open = breakers.iter().filter(|b| b.state != "closed").count();
            if open == 0 {
                format!("{name} up")
            } else {
                format!("{name} up, {open} breaker(s) open")
            }
        }
    }
}

pub(super) fn draw_compact(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let block = Block::default().borders(Borders::ALL).title(" today ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(totals) = &state.totals else {
        frame.render_widget(Paragraph::new("adding up today's requests…"), inner);
        return;
    };
    let joined = |groups: &[GroupTotals]| {
        if groups.is_empty() {
            return "-".to_owned();
        }
        groups
            .iter()
            .map(|g| {
                format!(
                    "{} {} ({})",
                    g.key,
                    cost_marked(Some(g.cost_usd), g.unpriced),
                    g.requests
                )
            })
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("models    ", bold()),
            Span::raw(joined(&totals.by_model)),
        ]),
        Line::from(vec![
            Span::styled("providers ", bold()),
            Span::raw(joined(&totals.by_provider)),
        ]),
        Line::from(vec![
            Span::styled("latency   ", bold()),
            Span::raw(latency_joined(&state.latencies)),
        ]),
        Line::from(budget_spans(state, "budgets   ")),
        Line::from(breaker_spans(state, "breakers  ")),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

fn breaker_spans<'a>(state: &State, label: &'a str) -> Vec<Span<'a>> {
    let mut spans = vec![Span::styled(label, bold())];
    match &state.daemon {
        Daemon::Up(breakers) if breakers.is_empty() => spans.push(Span::raw("all closed")),
        Daemon::Up(breakers) => {
            for (i, b) in breakers.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::raw(" · "));
                }
                let text = format!("{}/{} {}", b.provider, b.model, b.state);
                if b.state == "closed" {
                    spans.push(Span::raw(text));
                } else {
                    spans.push(Span::styled(format!("! {text}"), error_style(state)));
                }
            }
        }
        _ => spans.push(Span::raw(daemon_summary(state))),
    }
    spans
}

pub(super) fn draw_side(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let [models, latencies, providers, budgets, breakers] = Layout::vertical([
        Constraint::Percentage(28),
        Constraint::Percentage(24),
        Constraint::Percentage(16),
        Constraint::Percentage(20),
        Constraint::Percentage(12),
    ])
    .areas(area);
    let groups = |title: &'static str,
                  pick: fn(&crate::ledger::live::DayTotals) -> &[GroupTotals]| {
        let rows: Vec<Row<'_>> = state
            .totals
            .as_ref()
            .map(|t| {
                pick(t)
                    .iter()
                    .map(|g| {
                        Row::new(vec![
                            Cell::from(g.key.clone()),
                            Cell::from(g.requests.to_string()),
                            Cell::from(if g.errors > 0 {
                                Span::styled(format!("!{}", g.errors), error_style(state))
                            } else {
                                Span::raw("0")
                            }),
                            Cell::from(cost_marked(Some(g.cost_usd), g.unpriced)),
                        ])
                    })
                    .collect()
            })
            .unwrap_or_default();
        Table::new(
            rows,
            [
                Constraint::Min(14),
                Constraint::Length(6),
                Constraint::Length(5),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(["", "req", "err", "cost"]).style(bold()))
        .block(Block::default().borders(Borders::ALL).title(title))
    };
    frame.render_widget(groups(" today by model ", |t| &t.by_model), models);
    frame.render_widget(latency_table(state, latencies.width), latencies);
    frame.render_widget(groups(" today by provider ", |t| &t.by_provider), providers);
    frame.render_widget(
        Paragraph::new(budget_lines(state)).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" budgets left "),
        ),
        budgets,
    );
    let block = Block::default().borders(Borders::ALL).title(" breakers ");
    frame.render_widget(
        Paragraph::new(Line::from(breaker_spans(state, "")))
            .wrap(Wrap { trim: true })
            .block(block),
        breakers,
    );
}

/// `gpt-4o 320/910ms · ...`: p50/p95 of the recent successful requests, busiest model first.
fn latency_joined(latencies: &[ModelLatency]) -> String {
    if latencies.is_empty() {
        return "-".to_owned();
    }
    let joined = latencies
        .iter()
        .map(|l| format!("{} {}/{}", l.model, latency(l.p50_ms), latency(l.p95_ms)))
        .collect::<Vec<_>>()
        .join(" · ");
    format!("p50/p95 ms: {joined}")
}

fn latency_table(state: &State, width: u16) -> Table<'static> {
    // The model gets what the three numbers and the borders leave.
    let model_width = width.saturating_sub(2 + 3 * 7 + 3).max(8);
    let rows: Vec<Row<'static>> = state
        .latencies
        .iter()
        .map(|l| {
            Row::new(vec![
                Cell::from(elide_middle(&l.model, model_width as usize)),
                Cell::from(l.requests.to_string()),
                Cell::from(latency(l.p50_ms)),
                Cell::from(latency(l.p95_ms)),
            ])
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(model_width),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
        ],
    )
    .header(Row::new(["", "req", "p50", "p95"]).style(bold()))
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(" latency ms (recent, ok only) "),
    )
}

/// Below this share of its cap left, a budget is marked like an error.
const LOW: f64 = 0.1;

/// `$3.20`, and a whole cap without cents (`$5`): budgets are read at a glance.
fn dollars(usd: f64) -> String {
    if usd.fract() == 0.0 {
        format!("${usd:.0}")
    } else {
        format!("${usd:.2}")
    }
}

/// `day $3.20/$5`: what is left of one scope's cap this period (process-wide scopes
/// without their `all`), marked `!` when nearly used up.
fn standing_span(state: &State, line: &ScopeStanding) -> Span<'static> {
    let scope = if line.scope == "all" {
        String::new()
    } else {
        format!("{} ", line.scope)
    };
    let mut text = format!(
        "{scope}{} {}/{}",
        period_name(line.period),
        dollars(line.left_usd),
        dollars(line.cap_usd)
    );
    // A used-up rolling window says when room comes back.
    if let Some(at) = line.frees_at_ms.filter(|_| line.left_usd <= 0.0) {
        text.push_str(&format!(" frees {}", crate::format::local_time(at)));
    }
    if line.cap_usd > 0.0 && line.left_usd / line.cap_usd < LOW {
        Span::styled(format!("! {text}"), error_style(state))
    } else {
        Span::raw(text)
    }
}

/// The compact panel's line: every scope's standing, process-wide first.
fn budget_spans<'a>(state: &State, label: &'a str) -> Vec<Span<'a>> {
    let mut spans = vec![Span::styled(label, bold())];
    match &state.budgets {
        None => spans.push(Span::raw("…")),
        Some(lines) if lines.is_empty() => spans.push(Span::raw("none set")),
        Some(lines) => {
            spans.push(Span::raw("left "));
            // Process-wide first, then the keys (the standings put days before months).
            let mut lines: Vec<&ScopeStanding> = lines.iter().collect();
            lines.sort_by_key(|l| l.scope != "all");
            for (i, line) in lines.into_iter().enumerate() {
                if i > 0 {
                    spans.push(Span::raw(" · "));
                }
                spans.push(standing_span(state, line));
            }
        }
    }
    spans
}

/// The side column's lines: one scope a line.
fn budget_lines(state: &State) -> Vec<Line<'static>> {
    match &state.budgets {
        None => vec![Line::from("…")],
        Some(lines) if lines.is_empty() => vec![Line::from("none set (budget: in the config)")],
        Some(lines) => lines
            .iter()
            .map(|line| Line::from(standing_span(state, line)))
            .collect(),
    }
}
