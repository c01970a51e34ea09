//! `smartproxy sessions`: recent sessions, each sub-session (a `run` inside a `run`) shown under
//! its parent.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;

use chrono::Datelike;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table};

use super::format;
use crate::ledger::query::SessionRow;
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The table shows each session's id by its first 8 characters (more when two \
shown would share them): any unique prefix works with `--session`. `--json` has the full ids. \
The table fits the terminal's width, or COLUMNS when stdout is not a terminal."
)]
pub struct SessionsArgs {
    /// How many recent sessions to show; 0 shows them all.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn sessions(args: &SessionsArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let reader = LedgerReader::open(&config.database)?;
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    let rows = reader.sessions(limit)?;
    if args.json {
        printer::out(&serde_json::to_string(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        printer::out("no sessions recorded yet; start one with `smartproxy run -- <command>`");
        return Ok(0);
    }
    printer::out(&table(&rows));
    Ok(0)
}

/// The sessions as a table that reads at 80 columns: short ids, no vertical rules, the
/// simulated and budget columns only when some session has one.
fn table(rows: &[SessionRow]) -> String {
    let simulated = rows.iter().any(|r| r.simulated_usd.is_some());
    let budget = rows.iter().any(|r| r.budget_usd.is_some());
    let id_len = short_id_len(rows);
    let this_year = chrono::Local::now().year();
    let mut header = vec!["session", "started", "tag", "program", "req", "cost"];
    header.extend(simulated.then_some("simulated"));
    header.extend(budget.then_some("budget"));
    header.push("exit");
    let mut table = Table::new();
    table
        .load_preset(HEADER_RULE_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    if let Some(width) = columns_from_env() {
        table.set_width(width);
    }
    let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
    for (depth, row) in tree_order(rows) {
        let id = row.id.get(..id_len).unwrap_or(&row.id);
        let id = match depth {
            0 => id.to_owned(),
            _ => format!("{}└ {id}", " ".repeat(depth - 1)),
        };
        let exit = match (row.ended_ms, row.exit_code) {
            (None, _) => row.status_text(),
            (Some(_), Some(code)) => code.to_string(),
            (Some(_), None) => "-".to_owned(),
        };
        let mut cells = vec![
            Cell::new(id),
            Cell::new(started(row.started_ms, this_year)),
            Cell::new(row.tag.as_deref().unwrap_or("")),
            Cell::new(row.program.as_deref().unwrap_or("")),
            right(format::count(row.requests)),
            right(crate::format::cost_marked(row.cost_usd, row.unpriced)),
        ];
        if simulated {
            cells.push(right(
                row.simulated_usd
                    .map(|s| format::money(Some(s)))
                    .unwrap_or_default(),
            ));
        }
        if budget {
            cells.push(right(
                row.budget_usd
                    .map(|b| format::money(Some(b)))
                    .unwrap_or_default(),
            ));
        }
        cells.push(right(exit));
        table.add_row(cells);
    }
    // Only the tag and the program may wrap: an id or a time split over lines cannot be read.
    for (i, column) in table.column_iter_mut().enumerate() {
        if i != 2 && i != 3 {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    table.to_string()
}

/// No borders and no vertical rules, a rule under the header: the columns get the width.
const HEADER_RULE_ONLY: &str = "     ─             ";

/// `COLUMNS`, for a table written to a pipe or file (a terminal gives its own width).
fn columns_from_env() -> Option<u16> {
    if std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

/// The shortest id prefix, 8 characters at least, that tells the shown sessions apart.
fn short_id_len(rows: &[SessionRow]) -> usize {
    let longest = rows.iter().map(|r| r.id.len()).max().unwrap_or(0);
    (8..longest)
        .find(|&n| {
            let prefixes: HashSet<&str> = rows
                .iter()
                .map(|r| r.id.get(..n).unwrap_or(&r.id))
                .collect();
            prefixes.len() == rows.len()
        })
        .unwrap_or(longest)
}

/// `12-07 10:14` this year, `2025-12-07` before it.
fn started(ms: i64, this_year: i32) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            let local = t.with_timezone(&chrono::Local);
            let format = if local.year() == this_year {
                "%m-%d %H:%M"
            } else {
                "%Y-%m-%d"
            };
            local.format(format).to_string()
        })
        .unwrap_or_default()
}

/// Sessions newest first, each followed by its children (depth-first), with their depth.
fn tree_order(rows: &[SessionRow]) -> Vec<(usize, &SessionRow)> {
    let ids: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut out = Vec::with_capacity(rows.len());
    fn visit<'a>(
        row: &'a SessionRow,
        depth: usize,
        rows: &'a [SessionRow],
        out: &mut Vec<(usize, &'a SessionRow)>,
    ) {
        out.push((depth, row));
        // Children oldest first, so a tree reads in the order things happened.
        for child in rows
            .iter()
            .rev()
            .filter(|r| r.parent_id.as_deref() == Some(row.id.as_str()))
        {
            if depth < 16 {
                visit(child, depth + 1, rows, out);
            }
        }
    }
    for root in rows
        .iter()
        .filter(|r| r.parent_id.as_deref().is_none_or(|p| !ids.contains(p)))
    {
        visit(root, 0, rows, &mut out);
    }
    out
}
