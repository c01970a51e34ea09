//! Shared formatting for tables and summaries: money, token counts, times, and the totals table
//! that `run` and `stats` both print.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

pub use crate::format::{count, duration, local_time, money};
use crate::ledger::query::Totals;

/// A figure with `*` when some of it is estimated.
fn tokens(n: u64, estimated: bool) -> String {
    if estimated {
        format!("{}*", count(n))
    } else {
        count(n)
    }
}

fn cost_cell(t: &Totals) -> String {
    let mut text = money(t.known_cost());
    if t.unpriced > 0 && t.cost_usd.is_some() {
        text.push('+');
    }
    if t.estimated > 0 && t.cost_usd.is_some() {
        text.push('*');
    }
    if t.subscription_usd.is_some() {
        text.push('~');
    }
    text
}

/// The totals table: one row per group, then a total row. Simulated (mock) costs get a column
/// of their own, only when there are some: they were never spent.
pub fn totals_table(first_column: &str, rows: &[Totals], total: &Totals) -> String {
    let simulated = total.simulated_usd.is_some();
    let mut header = vec![
        first_column,
        "requests",
        "ok",
        "failed",
        "tokens in",
        "tokens out",
        "cost",
    ];
    if simulated {
        header.push("simulated");
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    let mut push = |t: &Totals, label: &str| {
        let estimated = t.estimated > 0;
        let mut row = vec![
            Cell::new(label),
            Cell::new(count(t.requests)).set_alignment(CellAlignment::Right),
            Cell::new(count(t.ok)).set_alignment(CellAlignment::Right),
            Cell::new(count(t.failed)).set_alignment(CellAlignment::Right),
            Cell::new(tokens(t.prompt_tokens, estimated)).set_alignment(CellAlignment::Right),
            Cell::new(tokens(t.completion_tokens, estimated)).set_alignment(CellAlignment::Right),
            Cell::new(cost_cell(t)).set_alignment(CellAlignment::Right),
        ];
        if simulated {
            let text = t.simulated_usd.map_or_else(String::new, |s| money(Some(s)));
            row.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        table.add_row(row);
    };
    for row in rows {
        push(row, &row.key);
    }
    if rows.len() != 1 {
        push(total, "total");
    }
    let mut text = table.to_string();
    if total.cached_tokens > 0 || total.cache_write_tokens > 0 {
        text.push_str(&format!(
            "\nprompt cache: {} tokens read, {} written (both in \"tokens in\", each at its own price)",
            count(total.cached_tokens),
            count(total.cache_write_tokens)
        ));
    }
    if total.estimated > 0 {
        text.push_str(&format!(
            "\n* includes estimates: {} request{} came back without usage figures",
            count(total.estimated),
            if total.estimated == 1 { "" } else { "s" }
        ));
    }
    if let Some(notional) = total.subscription_usd {
        text.push_str(&format!(
            "\n~ includes {} notional: list-price cost of requests billed to a subscription (--passthrough), not charged",
            money(Some(notional))
        ));
    }
    if let Some(simulated) = total.simulated_usd {
        text.push_str(&format!(
            "\nsimulated: {} at list prices for requests the mock provider served; nothing was spent, and no shared budget counts it",
            money(Some(simulated))
        ));
    }
    if total.unpriced > 0 {
        text.push_str(&format!(
            "\n{} request{} to models with no known price are not in the cost (n/a; add them under `pricing:`)",
            count(total.unpriced),
            if total.unpriced == 1 { "" } else { "s" }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_costs_are_marked_notional() {
        let row = Totals {
            key: "claude-sonnet-4-5".to_owned(),
            requests: 1,
            ok: 1,
            cost_usd: Some(0.5),
            subscription_usd: Some(0.5),
            ..Totals::default()
        };
        let text = totals_table("model", std::slice::from_ref(&row), &row);
        assert!(text.contains("$0.5000~"), "{text}");
        assert!(text.contains("~ includes $0.5000 notional"), "{text}");
        let api = Totals {
            subscription_usd: None,
            ..row
        };
        assert!(!totals_table("model", std::slice::from_ref(&api), &api).contains('~'));
    }

    #[test]
    fn simulated_costs_stand_apart() {
        let row = Totals {
            key: "gpt-4o".to_owned(),
            requests: 2,
            ok: 2,
            cost_usd: Some(0.0),
            simulated_usd: Some(0.25),
            ..Totals::default()
        };
        let text = totals_table("model", std::slice::from_ref(&row), &row);
        assert!(text.contains("simulated"), "{text}");
        assert!(text.contains("$0.2500"), "{text}");
        assert!(text.contains("nothing was spent"), "{text}");
        let real = Totals {
            simulated_usd: None,
            ..row
        };
        assert!(!totals_table("model", std::slice::from_ref(&real), &real).contains("simulated"));
    }
}
