//! `smartproxy prices show`: the prices the proxy bills at, from the built-in table, the
//! installed overlay and the config's `pricing:` overrides, resolved as the proxy resolves them.

use std::collections::BTreeMap;
use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde_json::{Value, json};

use super::format::{count, money};
use super::prices_update;
use crate::config::paths;
use crate::pricing::{self, Origin, Overlay, Price, PriceBook, Resolved};
use crate::printer;

#[derive(Debug, clap::Subcommand)]
pub enum PricesCommand {
    /// Show the price table, or one model's full price as the proxy resolves it.
    #[command(
        after_help = "Examples:\n  smartproxy prices show --provider anthropic\n  smartproxy prices show --search mini\n  \
smartproxy prices show gpt-4o-2024-08-06\n  smartproxy prices show gpt-5.4 --json"
    )]
    Show(ShowArgs),
    /// Install a newer LiteLLM price file (model_prices_and_context_window.json) as an overlay
    /// in the data dir; its prices replace the built-in ones (config `pricing:` still wins).
    Update(prices_update::UpdateArgs),
    /// Remove the installed overlay: back to the built-in table.
    Reset,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// One model (dated names and `provider/` prefixes resolve as in the proxy); without it, a
    /// table of every model.
    pub model: Option<String>,

    /// Only models of this provider (table); the provider serving MODEL (one model).
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,

    /// Only models whose name contains TEXT (table).
    #[arg(long, value_name = "TEXT", conflicts_with = "model")]
    pub search: Option<String>,

    /// Print JSON (prices in USD per million tokens).
    #[arg(long)]
    pub json: bool,
}

pub fn prices(cmd: &PricesCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    match cmd {
        PricesCommand::Show(args) => show(args, config_path),
        PricesCommand::Update(args) => prices_update::update(args),
        PricesCommand::Reset => prices_update::reset(),
    }
}

/// The book the proxy would build: config overrides and the installed overlay. A broken
/// overlay is an error here (the proxy only warns), since showing prices is the point.
fn book(config_path: Option<&Path>) -> anyhow::Result<PriceBook> {
    let config = super::load_config(config_path)?;
    let overlay = Overlay::load(&paths::price_overlay())?;
    Ok(PriceBook::new(config.pricing.clone()).with_overlay(overlay.map(std::sync::Arc::new)))
}

fn show(args: &ShowArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let book = book(config_path)?;
    match &args.model {
        Some(model) => show_one(&book, model, args),
        None => show_table(&book, args),
    }
}

/// `price table: LiteLLM 1.109.1 (...), 936 models; overlay PATH: ...`.
pub(super) fn header(overlay: Option<&Overlay>) -> String {
    let mut line = format!(
        "price table: {}, {} models",
        pricing::table_label(),
        count(pricing::entries().len() as u64)
    );
    if let Some(o) = overlay {
        line.push_str(&format!(
            "; overlay {}: {} models from {}, installed {}",
            paths::price_overlay().display(),
            count(o.entries().len() as u64),
            o.origin,
            o.installed
        ));
    }
    line
}

fn header_json(overlay: Option<&Overlay>) -> (Value, Value) {
    let table = json!({
        "source": pricing::TABLE_SOURCE,
        "version": pricing::TABLE_VERSION,
        "date": pricing::TABLE_DATE,
        "models": pricing::entries().len(),
    });
    let overlay = overlay.map_or(Value::Null, |o| {
        json!({
            "path": paths::price_overlay().display().to_string(),
            "source": o.origin,
            "installed": o.installed,
            "models": o.entries().len(),
        })
    });
    (table, overlay)
}

/// One table row.
struct Row {
    name: String,
    provider: String,
    origin: Origin,
    price: Price,
    context_window: Option<u32>,
}

/// Every model of the built-in table, the overlay and the overrides, an overlay or override
/// row replacing the row of the same name.
fn rows(book: &PriceBook) -> Vec<Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for e in pricing::entries() {
        rows.insert(
            e.name.to_owned(),
            Row {
                name: e.name.to_owned(),
                provider: e.provider.to_owned(),
                origin: Origin::BuiltIn,
                price: e.price(),
                context_window: e.context_window,
            },
        );
    }
    for e in book.overlay().map(Overlay::entries).unwrap_or_default() {
        rows.insert(
            e.name.clone(),
            Row {
                name: e.name.clone(),
                provider: e.provider.clone(),
                origin: Origin::Overlay,
                price: e.price,
                context_window: e.context_window,
            },
        );
    }
    for (name, price) in book.overrides() {
        let resolved = book.resolve(None, name);
        let row = rows.entry(name.clone()).or_insert_with(|| Row {
            name: name.clone(),
            provider: String::new(),
            origin: Origin::Config,
            price: *price,
            context_window: resolved.as_ref().and_then(|r| r.context_window),
        });
        row.origin = Origin::Config;
        row.price = *price;
    }
    rows.into_values().collect()
}

fn show_table(book: &PriceBook, args: &ShowArgs) -> anyhow::Result<u8> {
    let provider = args.provider.as_deref().map(str::trim);
    let search = args.search.as_deref().map(str::to_lowercase);
    let rows: Vec<Row> = rows(book)
        .into_iter()
        .filter(|r| {
            provider.is_none_or(|p| {
                r.provider.eq_ignore_ascii_case(p)
                    || r.provider == pricing::litellm_prefix(p)
                    || r.name
                        .starts_with(&format!("{}/", pricing::litellm_prefix(p)))
            })
        })
        .filter(|r| {
            search
                .as_deref()
                .is_none_or(|s| r.name.to_lowercase().contains(s))
        })
        .collect();
    if args.json {
        let (table, overlay) = header_json(book.overlay());
        let models: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "provider": r.provider,
                    "source": r.origin.as_str(),
                    "context_window": r.context_window,
                    "price": r.price,
                })
            })
            .collect();
        printer::out(&json!({"table": table, "overlay": overlay, "models": models}).to_string());
        return Ok(0);
    }
    if rows.is_empty() {
        printer::out(&format!(
            "{}\nno model matches; `smartproxy prices show` lists them all",
            header(book.overlay())
        ));
        return Ok(0);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "model",
            "provider",
            "input",
            "output",
            "cache read",
            "cache write",
            "context",
            "source",
        ]);
    let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
    for r in &rows {
        table.add_row(vec![
            Cell::new(&r.name),
            Cell::new(&r.provider),
            right(money(Some(r.price.input_per_mtok))),
            right(money(Some(r.price.output_per_mtok))),
            right(opt_money(r.price.cached_input_per_mtok)),
            right(opt_money(r.price.cache_write_per_mtok)),
            right(r.context_window.map_or("-".to_owned(), |n| count(n.into()))),
            Cell::new(r.origin.as_str()),
        ]);
    }
    printer::out(&format!(
        "{}\n{table}\n{} model(s); USD per million tokens; - : billed at the input price",
        header(book.overlay()),
        rows.len()
    ));
    Ok(0)
}

fn opt_money(usd: Option<f64>) -> String {
    usd.map_or_else(|| "-".to_owned(), |v| money(Some(v)))
}

fn show_one(book: &PriceBook, model: &str, args: &ShowArgs) -> anyhow::Result<u8> {
    let Some(found) = book.resolve(args.provider.as_deref(), model) else {
        let close = close_matches(book, model);
        let hint = if close.is_empty() {
            "`smartproxy prices show --search TEXT` lists models by part of their name, and a \
             config `pricing:` entry prices any model"
                .to_owned()
        } else {
            format!("close matches: {}", close.join(", "))
        };
        anyhow::bail!(
            "no price for `{model}` in the {} table, the overlay or the config's `pricing:`; {hint}",
            pricing::table_label()
        );
    };
    if args.json {
        let (table, overlay) = header_json(book.overlay());
        printer::out(
            &json!({
                "table": table,
                "overlay": overlay,
                "model": model,
                "matched": found.name,
                "source": found.origin.as_str(),
                "provider": found.provider,
                "context_window": found.context_window,
                "max_output": found.max_output,
                "price": found.price,
                "ranges": found.price.ranges.iter().flatten().map(|r| json!({
                    "above_tokens": r.above_tokens,
                    "up_to_tokens": r.up_to_tokens,
                    "input_per_mtok": r.input_per_mtok,
                    "output_per_mtok": r.output_per_mtok,
                    "cached_input_per_mtok": r.cached_input_per_mtok,
                    "cache_write_per_mtok": r.cache_write_per_mtok,
                    "reasoning_per_mtok": r.reasoning_per_mtok,
                })).collect::<Vec<_>>(),
                "off_peak": found.price.off_peak.map(|o| json!({
                    "input_per_mtok": o.input_per_mtok,
                    "output_per_mtok": o.output_per_mtok,
                    "cached_input_per_mtok": o.cached_input_per_mtok,
                    "cache_write_per_mtok": o.cache_write_per_mtok,
                    "reasoning_per_mtok": o.reasoning_per_mtok,
                    "hours": describe_hours(&o.hours),
                })),
            })
            .to_string(),
        );
        return Ok(0);
    }
    printer::out(&format!(
        "{}\n{}",
        header(book.overlay()),
        describe(model, &found)
    ));
    Ok(0)
}

/// One model's price: where it comes from, then a table of its rates per tier.
fn describe(model: &str, r: &Resolved) -> String {
    let mut out = format!("{model}: {} price", r.origin.as_str());
    if r.name != model {
        out.push_str(&format!(" of `{}`", r.name));
    }
    if let Some(p) = r.provider.as_deref().filter(|p| !p.is_empty()) {
        out.push_str(&format!(", provider {p}"));
    }
    if let Some(n) = r.context_window {
        out.push_str(&format!(", context {} tokens", count(n.into())));
    }
    if let Some(n) = r.max_output {
        out.push_str(&format!(", output up to {}", count(n.into())));
    }
    let p = &r.price;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "USD per Mtok",
            "input",
            "output",
            "cache read",
            "cache write",
            "cache write 1h",
            "reasoning",
        ]);
    let mut row = |label: String, rates: [Option<f64>; 6]| {
        let mut cells = vec![Cell::new(label)];
        cells.extend(
            rates
                .into_iter()
                .map(|r| Cell::new(opt_money(r)).set_alignment(CellAlignment::Right)),
        );
        table.add_row(cells);
    };
    // A model priced by prompt size has no price of its own beyond its ranges' (the listed
    // one is its first range's).
    let by_range = p.ranges.iter().any(Option::is_some);
    if !by_range {
        row(
            "standard".to_owned(),
            [
                Some(p.input_per_mtok),
                Some(p.output_per_mtok),
                p.cached_input_per_mtok,
                p.cache_write_per_mtok,
                p.cache_write_1h_per_mtok,
                p.reasoning_per_mtok,
            ],
        );
    }
    let tier_row = |t: &pricing::TierPrice| {
        [
            t.input_per_mtok,
            t.output_per_mtok,
            t.cached_input_per_mtok,
            t.cache_write_per_mtok,
            t.cache_write_1h_per_mtok,
            None,
        ]
    };
    let above = |t: &pricing::TierPrice| {
        let from = if t.inclusive { "from" } else { "above" };
        format!("{from} {} tokens", count(t.above_tokens))
    };
    if let Some(t) = &p.tier {
        row(above(t), tier_row(t));
    }
    for (name, service) in [("flex", &p.flex), ("priority", &p.priority)] {
        let Some(s) = service else { continue };
        row(
            name.to_owned(),
            [
                s.input_per_mtok,
                s.output_per_mtok,
                s.cached_input_per_mtok,
                s.cache_write_per_mtok,
                s.cache_write_1h_per_mtok,
                s.reasoning_per_mtok,
            ],
        );
        if let Some(t) = &s.tier {
            row(format!("{name} {}", above(t)), tier_row(t));
        }
    }
    for r in p.ranges.iter().flatten() {
        row(
            format!(
                "prompt {}-{} tokens",
                count(r.above_tokens),
                count(r.up_to_tokens)
            ),
            [
                Some(r.input_per_mtok),
                r.output_per_mtok,
                r.cached_input_per_mtok,
                r.cache_write_per_mtok,
                None,
                r.reasoning_per_mtok,
            ],
        );
    }
    if let Some(o) = &p.off_peak {
        row(
            "off-peak".to_owned(),
            [
                o.input_per_mtok,
                o.output_per_mtok,
                o.cached_input_per_mtok,
                o.cache_write_per_mtok,
                None,
                o.reasoning_per_mtok,
            ],
        );
    }
    out.push_str(&format!("\n{table}"));
    if by_range {
        out.push_str(
            "\nby prompt size: the range the prompt falls in (cached tokens included) prices \
             the whole request",
        );
    }
    if let Some(o) = &p.off_peak {
        out.push_str(&format!(
            "\noff-peak (by the request's start): {}",
            describe_hours(&o.hours)
        ));
    }
    if let Some(fee) = p.web_search_per_call {
        out.push_str(&format!("\nweb search: {} per search", money(Some(fee))));
    }
    out.push_str(
        "\n- : billed at the standard price (cache read and write at the input price, \
         1-hour writes at the cache-write price, reasoning at the output price)",
    );
    out
}

/// An off-peak schedule as people read it: `Mon-Fri 00:00-01:00, 04:00-06:00; Sat-Sun all day
/// (UTC)`.
fn describe_hours(hours: &pricing::Hours) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let days = |mask: u8| {
        if mask == pricing::hours::EVERY_DAY {
            return "every day".to_owned();
        }
        let on: Vec<usize> = (0..7).filter(|d| mask & (1 << d) != 0).collect();
        let contiguous = on.windows(2).all(|w| w[1] == w[0] + 1);
        match (on.first(), on.last()) {
            (Some(&a), Some(&b)) if contiguous && b > a => format!("{}-{}", DAYS[a], DAYS[b]),
            _ => on.iter().map(|&d| DAYS[d]).collect::<Vec<_>>().join(","),
        }
    };
    let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    let mut groups: Vec<(u8, Vec<String>)> = Vec::new();
    for w in hours.windows() {
        let span = if w.start == w.end {
            "all day".to_owned()
        } else if w.end == 0 {
            format!("{}-24:00", clock(w.start))
        } else {
            format!("{}-{}", clock(w.start), clock(w.end))
        };
        match groups.iter_mut().find(|(mask, _)| *mask == w.weekdays) {
            Some((_, spans)) => spans.push(span),
            None => groups.push((w.weekdays, vec![span])),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(mask, spans)| format!("{} {}", days(mask), spans.join(", ")))
        .collect();
    format!("{} (UTC)", parts.join("; "))
}

/// Up to five model names near `model`: containing it (or its name without the provider
/// and date), else within a few edits of it.
fn close_matches(book: &PriceBook, model: &str) -> Vec<String> {
    let wanted = model.trim().to_lowercase();
    let bare = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
    let names: Vec<String> = rows(book).into_iter().map(|r| r.name).collect();
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let name_bare = lower.rsplit('/').next().unwrap_or(&lower);
            if bare.len() >= 3 && (lower.contains(&bare) || bare.contains(name_bare)) {
                return Some((name_bare.len().abs_diff(bare.len()), name));
            }
            let d = edit_distance(name_bare, &bare);
            (d <= (bare.len() / 4).max(2)).then_some((d, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.clone()).collect()
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("gpt-4o", "gpt-4o", 0),
            ("gpt-4o", "gpt-40", 1),
            ("claude", "clade", 1),
            ("", "abc", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }
}
