//! Shared formatting for tables and summaries: money, token counts, times, and the totals table
//! that `run` and `stats` both print.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::ledger::query::Totals;

/// `$1.2346`, `$0.000045`, `$0.000000012`, `$0`, or `n/a` when unknown. Amounts under a cent
/// keep at least two significant digits, so a small cost or budget never shows as zero.
pub fn money(usd: Option<f64>) -> String {
    match usd {
        None => "n/a".to_owned(),
        Some(0.0) => "$0".to_owned(),
        Some(v) if v.abs() >= 0.01 => format!("${v:.4}"),
        Some(v) if v.abs() < 1e-11 => format!("${v:.1e}"),
        Some(v) => {
            // Digits to the first significant one, plus one more.
            let leading = (-v.abs().log10()).ceil() as usize;
            let decimals = (leading + 1).clamp(6, 12);
            format!("${v:.decimals$}")
        }
    }
}

/// `1234567` -> `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Local time of an epoch-millisecond timestamp, `2026-11-22 14:03`.
pub fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn duration(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

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

/// The totals table: one row per group, then a total row.
pub fn totals_table(first_column: &str, rows: &[Totals], total: &Totals) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            first_column,
            "requests",
            "ok",
            "failed",
            "tokens in",
            "tokens out",
            "cost",
        ]);
    let mut push = |t: &Totals, label: &str| {
        let estimated = t.estimated > 0;
        table.add_row(vec![
            Cell::new(label),
            Cell::new(count(t.requests)).set_alignment(CellAlignment::Right),
            Cell::new(count(t.ok)).set_alignment(CellAlignment::Right),
            Cell::new(count(t.failed)).set_alignment(CellAlignment::Right),
            Cell::new(tokens(t.prompt_tokens, estimated)).set_alignment(CellAlignment::Right),
            Cell::new(tokens(t.completion_tokens, estimated)).set_alignment(CellAlignment::Right),
            Cell::new(cost_cell(t)).set_alignment(CellAlignment::Right),
        ]);
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
    fn formats() {
        assert_eq!(money(None), "n/a");
        assert_eq!(money(Some(0.0)), "$0");
        assert_eq!(money(Some(0.000_045)), "$0.000045");
        assert_eq!(money(Some(0.000_000_012)), "$0.000000012");
        assert_eq!(money(Some(0.000_000_001_5)), "$0.0000000015");
        assert_eq!(money(Some(0.005)), "$0.005000");
        assert_eq!(money(Some(2e-13)), "$2.0e-13");
        assert_eq!(money(Some(1.23456)), "$1.2346");
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(123), "123");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(125_000), "2m05s");
    }

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
}
