//! `smartproxy sessions`: recent sessions, each sub-session (a `run` inside a `run`) shown under
//! its parent.

use std::collections::HashSet;
use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::format;
use crate::ledger::query::SessionRow;
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// How many recent sessions to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn sessions(args: &SessionsArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let reader = LedgerReader::open(&config.database)?;
    let rows = reader.sessions(args.limit)?;
    if args.json {
        printer::out(&serde_json::to_string(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        printer::out("no sessions recorded yet; start one with `smartproxy run -- <command>`");
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "session", "started", "tag", "program", "requests", "cost", "budget", "exit",
        ]);
    for (depth, row) in tree_order(&rows) {
        let id = format!(
            "{}{}",
            "  ".repeat(depth),
            if depth > 0 {
                format!("└ {}", row.id)
            } else {
                row.id.clone()
            }
        );
        let exit = match (row.ended_ms, row.exit_code) {
            (None, _) => row.status_text(),
            (Some(_), Some(code)) => code.to_string(),
            (Some(_), None) => "-".to_owned(),
        };
        table.add_row(vec![
            Cell::new(id),
            Cell::new(format::local_time(row.started_ms)),
            Cell::new(row.tag.as_deref().unwrap_or("")),
            Cell::new(row.program.as_deref().unwrap_or("")),
            Cell::new(format::count(row.requests)).set_alignment(CellAlignment::Right),
            Cell::new(crate::format::cost_and_simulated(
                row.cost_usd,
                row.unpriced,
                row.simulated_usd,
            ))
            .set_alignment(CellAlignment::Right),
            Cell::new(
                row.budget_usd
                    .map(|b| format::money(Some(b)))
                    .unwrap_or_default(),
            )
            .set_alignment(CellAlignment::Right),
            Cell::new(exit).set_alignment(CellAlignment::Right),
        ]);
    }
    printer::out(&table.to_string());
    Ok(0)
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
