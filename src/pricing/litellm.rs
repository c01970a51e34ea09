//! One entry of LiteLLM's `model_prices_and_context_window.json` to a price, at run time: the
//! same trim as `trim_prices.py` and the same field mapping as the generator of `table.rs`
//! (`tests/pricing_table.rs`), so an installed overlay prices exactly as a rebuilt table would.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::entry::{
    CAP_PROMPT_CACHING, CAP_REASONING, CAP_TOOLS, CAP_VISION, Extra, NO_RANGES, OffPeak, Range,
    Rates, entry_price,
};
use super::hours::{self, EVERY_DAY, Hours, Window};
use super::price::{MAX_RANGES, Price};

/// Plain fields kept from an entry, beside the rates ([`RATE`]).
const PLAIN: &[&str] = &[
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "supports_function_calling",
    "supports_tool_choice",
    "supports_vision",
    "supports_reasoning",
    "supports_prompt_caching",
    "search_context_cost_per_query",
    "tiered_pricing",
    "off_peak_pricing",
];

/// Per-token rates, optionally above a prompt-size threshold and/or for a service tier or
/// batches (the pattern of `trim_prices.py`).
static RATE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(
        r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr|output_cost_per_reasoning_token)(_above_\d+k?_tokens)?(_flex|_priority|_batches)?$",
    )
    .ok()
});

fn is_rate(key: &str) -> bool {
    RATE.as_ref().is_some_and(|re| re.is_match(key))
}

/// What is wrong with one key of an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub key: String,
    pub problem: String,
}

fn wrong(key: &str, problem: impl Into<String>) -> FieldError {
    FieldError {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// What became of an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Priced(Box<Converted>),
    /// Not a chat or completion model, or without both an input and an output price: the
    /// generator of the built-in table leaves these out too.
    NotPriced,
    /// Prices above several prompt sizes (or more prompt-size ranges than smartproxy holds):
    /// smartproxy prices one long-context tier a model, so such a model is left out rather
    /// than priced wrong.
    SeveralThresholds,
}

/// An entry converted to the crate's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub provider: String,
    pub price: Price,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
    pub caps: u8,
}

/// The fields of `entry` the pricing rules read, nulls dropped, with LiteLLM's
/// `litellm_provider` stored as `provider` (the shape of `model_prices.json`).
pub fn trim(entry: &Map<String, Value>) -> Map<String, Value> {
    let mut kept: Map<String, Value> = entry
        .iter()
        .filter(|(k, v)| !v.is_null() && (PLAIN.contains(&k.as_str()) || is_rate(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(provider) = entry
        .get("litellm_provider")
        .or_else(|| entry.get("provider"))
        .filter(|v| !v.is_null())
    {
        kept.insert("provider".to_owned(), provider.clone());
    }
    kept.sort_keys();
    kept
}

/// Converts a trimmed entry (see [`Outcome`]); an error names the key that is wrong.
pub fn convert(m: &Map<String, Value>) -> Result<Outcome, FieldError> {
    for (key, value) in m {
        if is_rate(key) {
            rate(key, value)?;
        }
    }
    match m.get("mode") {
        None => {}
        Some(Value::String(mode)) if mode == "chat" || mode == "completion" => {}
        Some(Value::String(_)) => return Ok(Outcome::NotPriced),
        Some(other) => return Err(wrong("mode", format!("expected a string, got {other}"))),
    }
    let Some(ranges) = ranges(m)? else {
        return Ok(Outcome::SeveralThresholds);
    };
    // A model priced only by range lists the first range's prices as its own.
    let first = ranges[0].map(|r| r.rates);
    let (Some(input), Some(output)) = (
        opt_rate(m, "input_cost_per_token")?.or(first.and_then(|r| r.input)),
        opt_rate(m, "output_cost_per_token")?.or(first.and_then(|r| r.output)),
    ) else {
        return Ok(Outcome::NotPriced);
    };
    let provider = match m.get("provider") {
        None => String::new(),
        Some(Value::String(p)) => p.clone(),
        Some(other) => return Err(wrong("provider", format!("expected a string, got {other}"))),
    };
    let mut caps = 0;
    for (keys, cap) in [
        (
            &["supports_function_calling", "supports_tool_choice"][..],
            CAP_TOOLS,
        ),
        (&["supports_vision"][..], CAP_VISION),
        (&["supports_reasoning"][..], CAP_REASONING),
        (&["supports_prompt_caching"][..], CAP_PROMPT_CACHING),
    ] {
        for key in keys {
            if flag(m, key)? {
                caps |= cap;
            }
        }
    }
    let Some(mut extra) = extra(m)? else {
        return Ok(Outcome::SeveralThresholds);
    };
    let off_peak = off_peak(m)?;
    if off_peak.is_some() || ranges[0].is_some() {
        let mut e = extra.unwrap_or(NO_EXTRA);
        e.off_peak = off_peak;
        e.ranges = ranges;
        extra = Some(e);
    }
    Ok(Outcome::Priced(Box::new(Converted {
        price: entry_price(
            &provider,
            input,
            output,
            opt_rate(m, "cache_read_input_token_cost")?,
            opt_rate(m, "cache_creation_input_token_cost")?,
            extra.as_ref(),
        ),
        provider,
        context_window: tokens(m, "max_input_tokens")?,
        max_output: tokens(m, "max_output_tokens")?,
        caps,
    })))
}

/// A price in USD per token: a finite number, not negative.
fn rate(key: &str, value: &Value) -> Result<f64, FieldError> {
    match value.as_f64() {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Some(x) => Err(wrong(
            key,
            format!("{x} is not a price (USD per token, 0 or more)"),
        )),
        None => Err(wrong(
            key,
            format!("expected a number (USD per token), got {value}"),
        )),
    }
}

fn opt_rate(m: &Map<String, Value>, key: &str) -> Result<Option<f64>, FieldError> {
    m.get(key)
        .filter(|v| !v.is_null())
        .map(|v| rate(key, v))
        .transpose()
}

fn flag(m: &Map<String, Value>, key: &str) -> Result<bool, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong(key, format!("expected true or false, got {other}"))),
    }
}

fn tokens(m: &Map<String, Value>, key: &str) -> Result<Option<u32>, FieldError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong(key, format!("expected a token count, got {v}"))),
    }
}

/// The prices beyond the plain four, as the generator's `extra` reads them (`Some(None)`: none),
/// or `None` when the entry has several long-context thresholds.
fn extra(m: &Map<String, Value>) -> Result<Option<Option<Extra>>, FieldError> {
    let thresholds: std::collections::BTreeSet<&str> = m
        .keys()
        .filter(|k| {
            !k.ends_with("_batches") && !k.starts_with("cache_creation_input_token_cost_above_1hr")
        })
        .filter_map(|k| k.split_once("_above_").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("_tokens").map(|(n, _)| n))
        .collect();
    let mut thresholds = thresholds.into_iter();
    let threshold = thresholds.next();
    if thresholds.next().is_some() {
        return Ok(None);
    }
    let above_tokens = threshold
        .map(|n| {
            let (digits, scale) = n.strip_suffix('k').map_or((n, 1), |d| (d, 1000));
            digits.parse::<u64>().map(|d| d * scale).map_err(|_| {
                wrong(
                    &format!("*_above_{n}_tokens"),
                    "the threshold is not a number",
                )
            })
        })
        .transpose()?;
    let above = threshold.map(|n| format!("_above_{n}_tokens"));
    let rates = |infix: &str, tier: &str| -> Result<Rates, FieldError> {
        let field = |base: &str| opt_rate(m, &format!("{base}{infix}{tier}"));
        Ok(Rates {
            input: field("input_cost_per_token")?,
            output: field("output_cost_per_token")?,
            cache_read: field("cache_read_input_token_cost")?,
            cache_write: field("cache_creation_input_token_cost")?,
            cache_write_1h: field("cache_creation_input_token_cost_above_1hr")?,
            reasoning: if infix.is_empty() {
                field("output_cost_per_reasoning_token")?
            } else {
                None
            },
        })
    };
    let above_rates = |tier: &str| above.as_deref().map_or(Ok(Rates::NONE), |a| rates(a, tier));
    let web_search = match m.get("search_context_cost_per_query") {
        None | Some(Value::Null) => None,
        Some(Value::Object(sizes)) => {
            opt_rate(sizes, "search_context_size_medium").map_err(|e| {
                wrong(
                    &format!("search_context_cost_per_query.{}", e.key),
                    e.problem,
                )
            })?
        }
        Some(other) => {
            return Err(wrong(
                "search_context_cost_per_query",
                format!("expected an object of prices per search, got {other}"),
            ));
        }
    };
    let extra = Extra {
        cache_write_1h: opt_rate(m, "cache_creation_input_token_cost_above_1hr")?,
        reasoning: opt_rate(m, "output_cost_per_reasoning_token")?,
        web_search,
        above_tokens,
        above: above_rates("")?,
        flex: rates("", "_flex")?,
        flex_above: above_rates("_flex")?,
        priority: rates("", "_priority")?,
        priority_above: above_rates("_priority")?,
        off_peak: None,
        ranges: NO_RANGES,
    };
    // The generator leaves out an `Extra` with nothing in it.
    Ok(Some((extra != NO_EXTRA).then_some(extra)))
}

/// An `Extra` with nothing in it.
const NO_EXTRA: Extra = Extra {
    cache_write_1h: None,
    reasoning: None,
    web_search: None,
    above_tokens: None,
    above: Rates::NONE,
    flex: Rates::NONE,
    flex_above: Rates::NONE,
    priority: Rates::NONE,
    priority_above: Rates::NONE,
    off_peak: None,
    ranges: NO_RANGES,
};

/// The per-token prices of an object of LiteLLM rate keys (a `tiered_pricing` entry, an
/// `off_peak_pricing` block); errors name the key under `parent`.
fn block_rates(parent: &str, m: &Map<String, Value>) -> Result<Rates, FieldError> {
    let field =
        |key: &str| opt_rate(m, key).map_err(|e| wrong(&format!("{parent}.{}", e.key), e.problem));
    Ok(Rates {
        input: field("input_cost_per_token")?,
        output: field("output_cost_per_token")?,
        cache_read: field("cache_read_input_token_cost")?,
        cache_write: field("cache_creation_input_token_cost")?,
        cache_write_1h: None,
        reasoning: field("output_cost_per_reasoning_token")?,
    })
}

/// `tiered_pricing` as prompt-size ranges sorted by their start (`NO_RANGES` when absent);
/// `None` when there are more than smartproxy holds. An entry without a token `range` or an
/// input price is not a price by prompt size and is passed over, as LiteLLM does.
fn ranges(m: &Map<String, Value>) -> Result<Option<[Option<Range>; MAX_RANGES]>, FieldError> {
    let entries = match m.get("tiered_pricing") {
        None | Some(Value::Null) => return Ok(Some(NO_RANGES)),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(wrong(
                "tiered_pricing",
                format!("expected a list of price ranges, got {other}"),
            ));
        }
    };
    let mut found = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(wrong(
                &format!("tiered_pricing[{i}]"),
                "expected an object of prices",
            ));
        };
        let bounds = match entry
            .get("range")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([start, end]) => start.as_f64().zip(end.as_f64()),
            _ => None,
        };
        let rates = block_rates(&format!("tiered_pricing[{i}]"), entry)?;
        let Some((start, end)) = bounds.filter(|(s, e)| *s >= 0.0 && e >= s) else {
            continue;
        };
        if rates.input.is_none() {
            continue;
        }
        // Token counts written as floats (`256000.0`).
        found.push(Range {
            above_tokens: start as u64,
            up_to_tokens: end as u64,
            rates,
        });
    }
    if found.len() > MAX_RANGES {
        return Ok(None);
    }
    found.sort_by_key(|r| r.above_tokens);
    let mut ranges = NO_RANGES;
    for (slot, range) in ranges.iter_mut().zip(found) {
        *slot = Some(range);
    }
    Ok(Some(ranges))
}

/// `off_peak_pricing`: its prices and UTC schedule. `None` when absent, and when its weekdays
/// are read on another calendar than UTC (`weekday_timezone`) or it has more windows than
/// smartproxy holds: such a model pays its standard price, the upper bound. Malformed windows
/// are passed over, as LiteLLM does.
fn off_peak(m: &Map<String, Value>) -> Result<Option<OffPeak>, FieldError> {
    let block = match m.get("off_peak_pricing") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(block)) => block,
        Some(other) => {
            return Err(wrong(
                "off_peak_pricing",
                format!("expected an object of prices and hours, got {other}"),
            ));
        }
    };
    let rates = block_rates("off_peak_pricing", block)?;
    if block
        .get("weekday_timezone")
        .and_then(Value::as_str)
        .is_some_and(|tz| !matches!(tz.trim(), "" | "UTC" | "Etc/UTC"))
    {
        return Ok(None);
    }
    let mut windows = Vec::new();
    let mut add = |hours: Option<&Value>, weekdays: u8| {
        let texts: Vec<&str> = match hours {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for text in texts {
            if let Some((start, end)) = hours::parse_window(text) {
                windows.push(Window::new(weekdays, start, end));
            }
        }
    };
    add(block.get("hours_utc"), EVERY_DAY);
    if let Some(Value::Array(rules)) = block.get("windows") {
        for rule in rules.iter().filter_map(Value::as_object) {
            let weekdays = match rule.get("weekdays") {
                None | Some(Value::Null) => EVERY_DAY,
                Some(Value::Array(days)) => days.iter().filter_map(weekday).fold(0, |a, d| a | d),
                Some(_) => 0,
            };
            if weekdays != 0 {
                add(rule.get("hours_utc"), weekdays);
            }
        }
    }
    Ok(Hours::of(&windows).map(|hours| OffPeak { rates, hours }))
}

/// A LiteLLM weekday (1 = Monday ... 7 = Sunday, or its English name) as its bit in
/// [`Window::weekdays`].
fn weekday(day: &Value) -> Option<u8> {
    const NAMES: [&[&str]; 7] = [
        &["mon", "monday"],
        &["tue", "tues", "tuesday"],
        &["wed", "wednesday"],
        &["thu", "thur", "thurs", "thursday"],
        &["fri", "friday"],
        &["sat", "saturday"],
        &["sun", "sunday"],
    ];
    let n = match day {
        Value::Number(n) => n.as_u64().filter(|n| (1..=7).contains(n))?,
        Value::String(name) => {
            let name = name.trim().to_ascii_lowercase();
            1 + NAMES
                .iter()
                .position(|names| names.contains(&name.as_str()))? as u64
        }
        _ => return None,
    };
    Some(1u8 << (n - 1))
}

#[cfg(test)]
#[path = "litellm_tests.rs"]
mod tests;
