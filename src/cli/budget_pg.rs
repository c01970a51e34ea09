//! `smartproxy budget` on a team (PostgreSQL) ledger: every scope with a counter in the current
//! day or month (process-wide, per key, per user, per team), its cap, what was spent and is
//! reserved, what is left, and when it runs out at the rate spent so far this period.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

use super::format;
use crate::budget::policy::{Period, period_start_ms};
use crate::budget::scopes;
use crate::config::Config;
use crate::ledger::reader::LedgerReader;
use crate::printer;

/// One scope's line.
struct Line {
    scope: String,
    period: Period,
    start_ms: i64,
    cap_usd: f64,
    spent_usd: f64,
    reserved_usd: f64,
    runs_out_ms: Option<i64>,
}

impl Line {
    fn left_usd(&self) -> f64 {
        (self.cap_usd - self.spent_usd - self.reserved_usd).max(0.0)
    }
}

fn period_word(period: Period) -> &'static str {
    match period {
        Period::Day => "day",
        Period::Month => "month",
    }
}

pub(super) fn budget(as_json: bool, config: &Config, now: i64) -> anyhow::Result<u8> {
    let LedgerReader::Postgres(reader) = LedgerReader::open(&config.database)? else {
        anyhow::bail!("the ledger is not PostgreSQL");
    };
    let offset = config.budget.utc_offset_s;
    let start = |period| period_start_ms(period, now, offset);
    // The next period's start: past the longest day (25 h) or month (31 days) and back.
    let end = |period| match period {
        Period::Day => period_start_ms(Period::Day, start(Period::Day) + 26 * 3_600_000, offset),
        Period::Month => period_start_ms(
            Period::Month,
            start(Period::Month) + 32 * 86_400_000,
            offset,
        ),
    };
    let counters = reader.budget_counters(&[start(Period::Day), start(Period::Month)])?;
    let mut lines: Vec<Line> = counters
        .into_iter()
        .filter_map(|row| {
            let (scope, period) = scopes::parse_counter(&row.scope)?;
            // A day and a month that start together (the 1st) are told apart by the name.
            (row.period_ms == start(period)).then_some(Line {
                scope,
                period,
                start_ms: row.period_ms,
                cap_usd: row.counter.cap_usd,
                spent_usd: row.counter.spent_usd,
                reserved_usd: row.counter.reserved_usd,
                runs_out_ms: None,
            })
        })
        .collect();
    // Limits show before a request makes their counter (or when every request was refused):
    // the config's own, and the ledger's keys', users' and teams'.
    let mut limits: Vec<(String, Period, f64)> = Vec::new();
    for (period, cap) in [
        (Period::Day, config.budget.daily_usd),
        (Period::Month, config.budget.monthly_usd),
    ] {
        limits.extend(cap.map(|cap| ("all".to_owned(), period, cap)));
    }
    for limit in reader.ledger_limits()? {
        let scope = format!("{}:{}", limit.holder, limit.name);
        for (period, cap) in [
            (Period::Day, limit.daily_usd),
            (Period::Month, limit.monthly_usd),
        ] {
            limits.extend(cap.map(|cap| (scope.clone(), period, cap)));
        }
    }
    for (scope, period, cap) in limits {
        // The limit as set now (a counter keeps the cap of its last admission).
        if let Some(line) = lines
            .iter_mut()
            .find(|l| l.scope == scope && l.period == period)
        {
            line.cap_usd = cap;
        } else {
            lines.push(Line {
                scope,
                period,
                start_ms: start(period),
                cap_usd: cap,
                spent_usd: 0.0,
                reserved_usd: 0.0,
                runs_out_ms: None,
            });
        }
    }
    for line in &mut lines {
        line.runs_out_ms = scopes::runs_out_ms(
            line.cap_usd,
            line.spent_usd,
            line.reserved_usd,
            line.start_ms,
            end(line.period),
            now,
        );
    }
    lines.sort_by(|a, b| {
        (a.period == Period::Month, a.scope != "all", &a.scope).cmp(&(
            b.period == Period::Month,
            b.scope != "all",
            &b.scope,
        ))
    });
    if as_json {
        let scopes: Vec<_> = lines
            .iter()
            .map(|l| {
                json!({"scope": l.scope, "period": period_word(l.period),
                    "period_start_ms": l.start_ms, "cap_usd": l.cap_usd,
                    "spent_usd": l.spent_usd, "reserved_usd": l.reserved_usd,
                    "left_usd": l.left_usd(), "runs_out_ms": l.runs_out_ms})
            })
            .collect();
        let body = json!({"backend": "postgres",
            "session": {"limit_usd": config.budget.session_usd}, "scopes": scopes});
        printer::out(&body.to_string());
        return Ok(0);
    }
    let mut text = match config.budget.session_usd {
        Some(limit) => format!(
            "session: {} per `run` session\n",
            format::money(Some(limit))
        ),
        None => "session: no limit (run --budget USD sets one)\n".to_owned(),
    };
    if lines.is_empty() {
        text.push_str(
            "no shared budget counts anything this day or month (budget.daily_usd / \
             budget.monthly_usd, `keys create --daily`, `keys limit --user NAME --daily USD`)\n",
        );
        printer::out(&text);
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "scope", "period", "cap", "spent", "reserved", "left", "runs out",
        ]);
    for l in &lines {
        let runs_out = match l.runs_out_ms {
            Some(at) if at <= now => "now".to_owned(),
            Some(at) => format::local_time(at),
            None => format!("not this {}", period_word(l.period)),
        };
        table.add_row(vec![
            l.scope.clone(),
            period_word(l.period).to_owned(),
            format::money(Some(l.cap_usd)),
            format::money(Some(l.spent_usd)),
            format::money(Some(l.reserved_usd)),
            format::money(Some(l.left_usd())),
            runs_out,
        ]);
    }
    text.push_str(&table.to_string());
    text.push('\n');
    printer::out(&text);
    Ok(0)
}
