//! Draws the list of requests (draw only). The model column gets what the fixed columns leave;
//! below `WITH_PROVIDER` wide the provider column goes (today's totals name the providers), and
//! a model still too long loses its middle, not its end: `claude-sonnet-4-5` never reads as
//! `claude-sonnet-4`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::state::State;
use super::style::{bold, clock, elide_middle, error_style, latency, short};
use crate::format::money;
use crate::ledger::request_view::RequestRow;

/// From this width on the list has a provider column.
const WITH_PROVIDER: u16 = 100;

/// The columns other than the model's: header and width.
const MARK: (&str, u16) = ("", 1);
const TIME: (&str, u16) = ("time", 8);
const SESSION: (&str, u16) = ("session", 10);
const PROVIDER: (&str, u16) = ("provider", 8);
const STATUS: (&str, u16) = ("st", 3);
const TOKENS: (&str, u16) = ("tokens", 11);
const COST: (&str, u16) = ("cost", 10);
const MS: (&str, u16) = ("ms", 6);

pub fn draw(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let mut title = format!(" requests ({}) ", state.requests.len());
    if !state.filter_text.is_empty() {
        title = format!(
            " requests matching \"{}\" ({}) ",
            state.filter_text,
            state.requests.len()
        );
    }
    let block = Block::default().borders(Borders::TOP).title(title);
    if state.requests.is_empty() {
        let text = if !state.loaded {
            "reading the ledger…"
        } else if state.filter_text.is_empty() && state.session_filter.is_none() {
            "no requests yet"
        } else {
            "no request matches the filter"
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let with_provider = area.width >= WITH_PROVIDER;
    let before = [MARK, TIME, SESSION];
    let mut after = vec![STATUS, TOKENS, COST, MS];
    if with_provider {
        after.insert(0, PROVIDER);
    }
    let fixed: u16 = before.iter().chain(&after).map(|c| c.1 + 1).sum();
    let model_width = area.width.saturating_sub(fixed).max(8);
    let mut widths: Vec<Constraint> = before.iter().map(|c| Constraint::Length(c.1)).collect();
    widths.push(Constraint::Length(model_width));
    widths.extend(after.iter().map(|c| Constraint::Length(c.1)));
    let mut header: Vec<&str> = before.iter().map(|c| c.0).collect();
    header.push("model");
    header.extend(after.iter().map(|c| c.0));
    let rows = state
        .requests
        .iter()
        .map(|r| request_row(state, r, model_width as usize, with_provider));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(bold()))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .block(block);
    let mut table_state = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn request_row<'a>(
    state: &State,
    r: &'a RequestRow,
    model_width: usize,
    with_provider: bool,
) -> Row<'a> {
    let who = r
        .tag
        .clone()
        .or_else(|| r.session_id.as_deref().map(|s| short(s).to_owned()))
        .unwrap_or_else(|| "-".to_owned());
    let tokens = match (r.prompt_tokens, r.completion_tokens) {
        (None, None) => "-".to_owned(),
        (p, c) => format!(
            "{}/{}{}",
            compact(p.unwrap_or(0)),
            compact(c.unwrap_or(0)),
            if r.tokens_estimated { "*" } else { "" }
        ),
    };
    let mut cells = vec![
        Cell::from(if r.failed() { "!" } else { " " }),
        Cell::from(clock(r.started_ms)),
        Cell::from(who),
        Cell::from(elide_middle(r.model(), model_width)),
    ];
    if with_provider {
        cells.push(Cell::from(
            r.provider.clone().unwrap_or_else(|| "-".to_owned()),
        ));
    }
    cells.extend([
        Cell::from(r.status.to_string()),
        Cell::from(tokens),
        Cell::from(
            // No cost on a successful request: its model has no known price.
            match r.cost_usd {
                Some(c) => money(Some(c)),
                None if r.failed() => "-".to_owned(),
                None => "n/a".to_owned(),
            },
        ),
        Cell::from(latency(r.latency_ms)),
    ]);
    let row = Row::new(cells);
    if r.failed() {
        row.style(error_style(state))
    } else {
        row
    }
}

fn compact(n: i64) -> String {
    if n >= 10_000 {
        format!("{:.0}k", n as f64 / 1000.0)
    } else {
        n.to_string()
    }
}
