//! One entry of LiteLLM's `model_prices_and_context_window.json` to a price, at run time: the
//! same trim as `trim_prices.py` and the same field mapping as the generator of `table.rs`
//! (`tests/pricing_table.rs`), so an installed overlay prices exactly as a rebuilt table would.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::{
    CAP_PROMPT_CACHING, CAP_REASONING, CAP_TOOLS, CAP_VISION, Extra, Price, Rates, entry_price,
};

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
    /// Prices above several prompt sizes: smartproxy prices one long-context tier a model,
    /// so such a model is left out rather than priced wrong.
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
    let (Some(input), Some(output)) = (
        opt_rate(m, "input_cost_per_token")?,
        opt_rate(m, "output_cost_per_token")?,
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
    let Some(extra) = extra(m)? else {
        return Ok(Outcome::SeveralThresholds);
    };
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
    };
    let none = Extra {
        cache_write_1h: None,
        reasoning: None,
        web_search: None,
        above_tokens: None,
        above: Rates::NONE,
        flex: Rates::NONE,
        flex_above: Rates::NONE,
        priority: Rates::NONE,
        priority_above: Rates::NONE,
    };
    // The generator leaves out an `Extra` with nothing in it.
    Ok(Some((extra != none).then_some(extra)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// The run-time conversion of `model_prices.json` gives exactly the built-in table.
    #[test]
    fn converting_the_source_of_the_table_gives_the_table() {
        let root: Value = serde_json::from_str(include_str!("model_prices.json")).unwrap();
        let models = root["models"].as_object().unwrap();
        let mut converted = 0;
        for (name, fields) in models {
            let trimmed = trim(fields.as_object().unwrap());
            let Outcome::Priced(c) = convert(&trimmed).unwrap() else {
                assert!(super::super::exact(name).is_none(), "{name} skipped");
                continue;
            };
            let entry = super::super::exact(name).unwrap_or_else(|| panic!("{name} not built in"));
            assert_eq!(c.price, entry.price(), "{name}");
            assert_eq!(c.provider, entry.provider, "{name}");
            assert_eq!(c.context_window, entry.context_window, "{name}");
            assert_eq!(c.max_output, entry.max_output, "{name}");
            assert_eq!(c.caps, entry.caps, "{name}");
            converted += 1;
        }
        assert_eq!(converted, super::super::entries().len());
    }

    #[test]
    fn trim_keeps_what_the_rules_read() {
        let entry = obj(serde_json::json!({
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "input_cost_per_token_above_200k_tokens_priority": 3e-6,
            "input_cost_per_audio_token": 9e-6,
            "cache_read_input_token_cost": null,
            "supports_vision": true,
            "deprecation_date": "2026-01-01",
        }));
        let kept: Vec<String> = trim(&entry).keys().cloned().collect();
        assert_eq!(
            kept,
            [
                "input_cost_per_token",
                "input_cost_per_token_above_200k_tokens_priority",
                "mode",
                "output_cost_per_token",
                "provider",
                "supports_vision"
            ]
        );
    }

    #[test]
    fn wrong_fields_are_named() {
        let cases = [
            (
                serde_json::json!({"input_cost_per_token": "cheap", "output_cost_per_token": 1e-6}),
                "input_cost_per_token",
            ),
            (
                serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": -1e-6}),
                "output_cost_per_token",
            ),
            (
                serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "max_input_tokens": "lots"}),
                "max_input_tokens",
            ),
            (
                serde_json::json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "supports_vision": "yes"}),
                "supports_vision",
            ),
            (
                serde_json::json!({"mode": 3, "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}),
                "mode",
            ),
            // a rate is checked even in an entry that is skipped
            (
                serde_json::json!({"mode": "embedding", "input_cost_per_token": "x"}),
                "input_cost_per_token",
            ),
        ];
        for (entry, key) in cases {
            let err = convert(&trim(&obj(entry.clone()))).unwrap_err();
            assert_eq!(err.key, key, "{entry}");
        }
    }

    #[test]
    fn skipped_entries() {
        for (entry, want) in [
            (
                serde_json::json!({"mode": "embedding", "input_cost_per_token": 1e-7}),
                Outcome::NotPriced,
            ),
            (
                serde_json::json!({"mode": "chat", "input_cost_per_token": 1e-7}),
                Outcome::NotPriced,
            ),
            (
                serde_json::json!({"mode": "image_generation"}),
                Outcome::NotPriced,
            ),
            (
                serde_json::json!({"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7,
                    "input_cost_per_token_above_32k_tokens": 2e-7,
                    "input_cost_per_token_above_256k_tokens": 3e-7}),
                Outcome::SeveralThresholds,
            ),
        ] {
            assert_eq!(convert(&trim(&obj(entry.clone()))), Ok(want), "{entry}");
        }
    }
}
