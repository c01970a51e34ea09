//! Draws the dashboard from a `State`, and nothing else: no reads, no state changes. Fits 80x24
//! (one column: sessions, today's totals, requests), uses a side column from 120 wide, and
//! says so when the terminal is too small. Without colour (`NO_COLOR`) errors keep their `!`
//! marker and bold, the selection is reversed.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::state::{Mode, SessionView, State, sessions_shown};
use super::style::{bold, error_style, fg, short};
use super::{detail, requests, totals};
use crate::format::{cost_marked, money};

/// Below this the dashboard does not try to fit.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;
/// From this width on, totals and breakers get their own column.
const WIDE: u16 = 120;

pub fn draw(frame: &mut Frame<'_>, state: &State) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: {}x{} (needs {MIN_WIDTH}x{MIN_HEIGHT}); q quits",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let header_lines = if state.log_path.is_some() { 2 } else { 1 };
    let sessions_height = sessions_shown(area.height, state.sessions.len()) as u16 + 2;
    let wide = area.width >= WIDE;
    let [header, sessions, totals, body, footer] = Layout::vertical([
        Constraint::Length(header_lines),
        Constraint::Length(sessions_height),
        Constraint::Length(if wide { 0 } else { totals::COMPACT_LINES + 2 }),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, state);
    draw_sessions(frame, sessions, state);
    if wide {
        let [list, side] = Layout::horizontal([
            Constraint::Min(60),
            // A third of a very wide terminal, so long model names fit.
            Constraint::Length((area.width / 3).max(46)),
        ])
        .areas(body);
        requests::draw(frame, list, state);
        totals::draw_side(frame, side, state);
    } else {
        totals::draw_compact(frame, totals, state);
        requests::draw(frame, body, state);
    }
    draw_footer(frame, footer, state);
    match state.mode {
        Mode::Detail => detail::draw(frame, popup(area), state),
        Mode::Help => draw_help(frame, popup(area), state),
        Mode::List | Mode::Filter => {}
    }
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let mut spans = vec![Span::styled("smartproxy dash", bold())];
    match &state.totals {
        Some(t) => {
            spans.push(Span::raw(format!(
                " · today {} · {} req",
                cost_marked(Some(t.all.cost_usd), t.all.unpriced),
                t.all.requests
            )));
            if t.all.unpriced > 0 {
                spans.push(Span::raw(format!(" ({} unpriced)", t.all.unpriced)));
            }
            if t.all.simulated_usd > 0.0 {
                spans.push(Span::raw(format!(
                    " · {} simulated",
                    money(Some(t.all.simulated_usd))
                )));
            }
            if t.all.errors > 0 {
                spans.push(Span::raw(" · "));
                spans.push(Span::styled(
                    format!("{} err", t.all.errors),
                    error_style(state),
                ));
            }
        }
        None => spans.push(Span::raw(" · today …")),
    }
    spans.push(Span::raw(format!(" · {}", totals::daemon_summary(state))));
    if state.paused {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(
            "PAUSED",
            bold().add_modifier(Modifier::REVERSED),
        ));
    }
    if let Some(err) = &state.error {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(format!("! {err}"), error_style(state)));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(log) = &state.log_path {
        let status = match state.child_exit {
            None => "command running".to_owned(),
            Some(code) => format!("command exited {code} (q quits)"),
        };
        lines.push(Line::from(format!("{status} · output: {log}")));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_sessions(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let mut title = match &state.session_filter {
        Some(id) => format!(" sessions · showing {} ", short(id)),
        None => " sessions today ".to_owned(),
    };
    let visible = area.height.saturating_sub(2) as usize;
    let total = state.sessions.len();
    // Clamped here too (the state clamps it at its idea of the height): a full last page.
    let first = state.sessions_scroll.min(total.saturating_sub(visible));
    if total > visible {
        title.push_str(&format!(
            "{}-{} of {total} ([ ] scroll) ",
            first + 1,
            (first + visible).min(total)
        ));
    }
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if state.sessions.is_empty() {
        frame.render_widget(Paragraph::new("no sessions today"), inner);
        return;
    }
    let lines: Vec<Line<'_>> = state
        .sessions
        .iter()
        .skip(first)
        .take(inner.height as usize)
        .map(|s| session_line(state, s, inner.width))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn session_line<'a>(state: &State, view: &'a SessionView, width: u16) -> Line<'a> {
    let s = &view.session;
    let selected = state.session_filter.as_deref() == Some(s.id.as_str());
    let marker = if s.running() { "● " } else { "  " };
    let name = s.tag.clone().unwrap_or_else(|| short(&s.id).to_owned());
    // The program only where there is room for it next to the budget bar.
    let who = match s.program.as_deref() {
        Some(program) if width >= 100 => format!("{name:<14.14} {program:<10.10}"),
        _ => format!("{name:<14.14}"),
    };
    let mut spans = vec![
        Span::styled(
            format!("{marker}{who} "),
            if selected { bold() } else { Style::default() },
        ),
        Span::raw(format!(
            "{:>9} ",
            cost_marked(Some(view.spent_usd), s.unpriced)
        )),
    ];
    if s.simulated_usd.is_some() {
        spans.push(Span::raw("sim "));
    }
    if let Some(budget) = s.budget_usd.filter(|b| *b > 0.0) {
        let share = view.spent_usd / budget;
        let style = if share >= 0.9 {
            error_style(state)
        } else if share >= 0.7 {
            fg(state, Color::Yellow)
        } else {
            fg(state, Color::Green)
        };
        let bar_width = if width >= 100 { 20 } else { 10 };
        spans.push(Span::styled(bar(share, bar_width), style));
        spans.push(Span::raw(format!(
            " {:>3.0}% of {}",
            share * 100.0,
            money(Some(budget))
        )));
    } else {
        spans.push(Span::raw("no budget"));
    }
    let end = match s.exit_code {
        _ if s.running() => String::new(),
        _ if s.lost => " ended (lost)".to_owned(),
        Some(code) => format!(" exit {code}"),
        None => " ended".to_owned(),
    };
    spans.push(Span::raw(format!(" {} req{end}", view.requests)));
    Line::from(spans)
}

/// `[#####-----]`: readable without colour.
fn bar(share: f64, width: usize) -> String {
    let filled = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let line = match state.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("filter: ", bold()),
            Span::raw(format!("{}_", state.input)),
            Span::raw("  Enter apply · Esc cancel · empty clears"),
        ]),
        Mode::Detail => Line::from("Esc/q back · ↑↓ scroll"),
        Mode::Help => Line::from("Esc/? back"),
        // Every key fits 80 columns; the moves (obvious, and in the help) only wider ones.
        Mode::List if area.width < 100 => Line::from(
            "q quit · p pause · / filter · s session · [ ] sessions · Enter detail · ? help",
        ),
        Mode::List => Line::from(
            "q quit · p pause · / filter · s session · [ ] scroll sessions · Enter detail · ↑↓ jk move · ? help",
        ),
    };
    frame.render_widget(
        Paragraph::new(line).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}

fn draw_help(frame: &mut Frame<'_>, area: Rect, _state: &State) {
    let keys = [
        ("q, Esc", "quit (Esc closes a detail first)"),
        ("Ctrl-C", "quit; under `run --dash`, interrupt the command"),
        ("p", "pause or resume the live list"),
        ("/", "filter by session id, tag, model or provider text"),
        ("s", "show one session of today, the next, then all"),
        ("[ ]", "scroll the sessions panel up, down"),
        ("Enter", "the selected request: every field and attempt"),
        ("↑ ↓ j k", "move; PgUp PgDn by ten"),
        ("?", "this help"),
    ];
    let mut lines: Vec<Line<'_>> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<9}"), bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        "! marks a failed request; * estimated tokens; ● a running session",
    ));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        area,
    );
}

/// The area of an overlay: everything above the key bar, less a margin on wide terminals.
fn popup(area: Rect) -> Rect {
    let margin_x = if area.width >= WIDE {
        area.width / 8
    } else {
        0
    };
    Rect {
        x: area.x + margin_x,
        y: area.y,
        width: area.width.saturating_sub(2 * margin_x),
        height: area.height.saturating_sub(1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
#[path = "ui_tests.rs"]
mod tests;
