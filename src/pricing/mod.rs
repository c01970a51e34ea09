//! Model prices: what a request cost, from a built-in table plus config overrides.
//!
//! The built-in table (`table.rs`) is generated from `model_prices.json` beside it, a trim of
//! LiteLLM's `model_prices_and_context_window_backup.json` (litellm 1.109.1, MIT License,
//! Copyright (c) 2023 Berri AI; see `SOURCE.md`), by `tests/pricing_table.rs`; regenerate it with
//! `SMARTPROXY_UPDATE_GENERATED=1 cargo test --test pricing_table`.
//!
//! An unknown model has no price and no cost (`None`), never a silent zero.

use std::collections::HashMap;

mod table;

/// The model can call tools (LiteLLM `supports_function_calling` or `supports_tool_choice`).
pub const CAP_TOOLS: u8 = 1 << 0;
/// The model accepts images (LiteLLM `supports_vision`).
pub const CAP_VISION: u8 = 1 << 1;
/// The model is a reasoning model (LiteLLM `supports_reasoning`).
pub const CAP_REASONING: u8 = 1 << 2;
/// The provider offers prompt caching for the model (LiteLLM `supports_prompt_caching`).
pub const CAP_PROMPT_CACHING: u8 = 1 << 3;

/// One row of the built-in table. Costs are USD per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceEntry {
    /// LiteLLM model name, e.g. `gpt-4o-mini` or `deepseek/deepseek-chat`.
    pub name: &'static str,
    /// LiteLLM provider name, e.g. `openai`, `together_ai`.
    pub provider: &'static str,
    /// USD per uncached input token.
    pub input: f64,
    /// USD per output token.
    pub output: f64,
    /// USD per input token read from the prompt cache.
    pub cache_read: Option<f64>,
    /// USD per input token written to the prompt cache.
    pub cache_write: Option<f64>,
    /// Maximum input tokens.
    pub context_window: Option<u32>,
    /// Maximum output tokens.
    pub max_output: Option<u32>,
    /// `CAP_*` bit flags.
    pub caps: u8,
}

impl PriceEntry {
    /// Whether every flag in `cap` (a `CAP_*` constant or several or-ed together) is set.
    pub const fn supports(&self, cap: u8) -> bool {
        self.caps & cap == cap
    }

    /// The entry's prices in USD per million tokens.
    pub fn price(&self) -> Price {
        Price {
            input_per_mtok: per_mtok(self.input),
            output_per_mtok: per_mtok(self.output),
            cached_input_per_mtok: self.cache_read.map(per_mtok),
            cache_write_per_mtok: self.cache_write.map(per_mtok),
        }
    }
}

/// USD per token to USD per million tokens, rounded to 1e-9 so that table values such as
/// `2.85e-6` come out as `2.85` rather than `2.8499999999999996`.
fn per_mtok(per_token: f64) -> f64 {
    (per_token * 1e15).round() / 1e9
}

/// Prices in USD per million tokens. Also the shape of a config override:
/// `pricing: {my-model: {input_per_mtok: 0.0, output_per_mtok: 0.0}}`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million uncached prompt tokens.
    pub input_per_mtok: f64,
    /// USD per million completion tokens.
    pub output_per_mtok: f64,
    /// USD per million cached prompt tokens; `None` bills them at `input_per_mtok`.
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per million prompt tokens written to the provider's prompt cache (Anthropic bills
    /// them above the input price); `None` bills them at `input_per_mtok`.
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
}

impl Price {
    /// Cost in USD of `tokens` at these prices.
    pub fn cost_usd(&self, tokens: TokenCounts) -> f64 {
        let uncached = tokens
            .prompt
            .saturating_sub(tokens.cached_prompt)
            .saturating_sub(tokens.cache_write) as f64;
        let cached = tokens.cached_prompt as f64;
        let written = tokens.cache_write as f64;
        let completion = tokens.completion as f64;
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        let write_price = self.cache_write_per_mtok.unwrap_or(self.input_per_mtok);
        (uncached * self.input_per_mtok
            + cached * cached_price
            + written * write_price
            + completion * self.output_per_mtok)
            / 1e6
    }
}

/// Token usage of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenCounts {
    /// All prompt tokens, INCLUDING `cached_prompt` (OpenAI convention:
    /// `usage.prompt_tokens` includes `prompt_tokens_details.cached_tokens`).
    pub prompt: u64,
    /// Completion (output) tokens, reasoning tokens included.
    pub completion: u64,
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_prompt: u64,
    /// Prompt tokens written to the provider's prompt cache (also counted in `prompt`).
    pub cache_write: u64,
}

/// Built-in prices plus the user's overrides.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    overrides: HashMap<String, Price>,
}

impl PriceBook {
    /// A price book with config overrides keyed by exact model name.
    pub fn new(overrides: HashMap<String, Price>) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(name, price)| (name.trim().to_owned(), price))
            .collect();
        Self { overrides }
    }

    /// The price of `model` as served by the smartproxy provider `provider`.
    ///
    /// Lookup order: a config override for the exact name; then the built-in table
    /// (see [`lookup`]). Surrounding whitespace is ignored; otherwise names match exactly.
    pub fn price(&self, provider: Option<&str>, model: &str) -> Option<Price> {
        let model = model.trim();
        if let Some(price) = self.overrides.get(model) {
            return Some(*price);
        }
        lookup(provider, model).map(PriceEntry::price)
    }

    /// Cost in USD of a request, or `None` when the model has no known price.
    pub fn cost_usd(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
    ) -> Option<f64> {
        self.price(provider, model)
            .map(|price| price.cost_usd(tokens))
    }

    /// Maximum input tokens of `model`, from the built-in table.
    pub fn context_window(&self, model: &str) -> Option<u32> {
        builtin(model).and_then(|entry| entry.context_window)
    }
}

/// The whole built-in table, sorted by name.
pub fn entries() -> &'static [PriceEntry] {
    table::MODELS
}

/// The built-in entry for `model`, with the same name normalisation as [`lookup`] but no
/// provider hint.
pub fn builtin(model: &str) -> Option<&'static PriceEntry> {
    lookup(None, model)
}

/// The built-in entry for `model` served by the smartproxy provider `provider`.
///
/// Tries, in order, for the trimmed name and then for it with a trailing date suffix
/// (`-YYYY-MM-DD` or `-YYYYMMDD`) removed:
/// 1. `{prefix}/{name}` where `prefix` is the LiteLLM prefix of `provider` (when given), so
///    a provider's own price wins over another provider's price for the same model name;
/// 2. `name` exactly;
/// 3. the same two steps for `name` with each leading `segment/` removed in turn
///    (`openai/gpt-4o` -> `gpt-4o`).
pub fn lookup(provider: Option<&str>, model: &str) -> Option<&'static PriceEntry> {
    let model = model.trim();
    let prefix = provider
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(litellm_prefix);
    find(prefix, model).or_else(|| strip_date_suffix(model).and_then(|base| find(prefix, base)))
}

fn find(prefix: Option<&str>, name: &str) -> Option<&'static PriceEntry> {
    let mut rest = name;
    loop {
        if rest.is_empty() {
            return None;
        }
        if let Some(prefix) = prefix
            && let Some(entry) = exact_prefixed(prefix, rest)
        {
            return Some(entry);
        }
        if let Some(entry) = exact(rest) {
            return Some(entry);
        }
        match rest.split_once('/') {
            Some((_, tail)) => rest = tail,
            None => return None,
        }
    }
}

fn exact(name: &str) -> Option<&'static PriceEntry> {
    let models = table::MODELS;
    models
        .binary_search_by(|entry| entry.name.cmp(name))
        .ok()
        .and_then(|i| models.get(i))
        .or_else(|| EMBEDDING_MODELS.iter().find(|entry| entry.name == name))
}

/// Embedding models, which the chat-and-completion trim `table.rs` comes from leaves out:
/// OpenAI's list prices (USD per input token; embeddings have no output).
static EMBEDDING_MODELS: &[PriceEntry] = &[
    embedding("text-embedding-3-small", 2e-8),
    embedding("text-embedding-3-large", 1.3e-7),
    embedding("text-embedding-ada-002", 1e-7),
];

const fn embedding(name: &'static str, input: f64) -> PriceEntry {
    PriceEntry {
        name,
        provider: "openai",
        input,
        output: 0.0,
        cache_read: None,
        cache_write: None,
        context_window: Some(8191),
        max_output: None,
        caps: 0,
    }
}

/// Binary search for `{prefix}/{name}` without allocating.
fn exact_prefixed(prefix: &str, name: &str) -> Option<&'static PriceEntry> {
    let models = table::MODELS;
    models
        .binary_search_by(|entry| {
            cmp_prefixed(entry.name.as_bytes(), prefix.as_bytes(), name.as_bytes())
        })
        .ok()
        .and_then(|i| models.get(i))
}

/// `entry` against `{prefix}/{name}`, byte-wise like `str::cmp`, in slice compares (this runs
/// for every priced request; a chained byte iterator was most of the lookup's time).
fn cmp_prefixed(entry: &[u8], prefix: &[u8], name: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (head, rest) = entry.split_at(entry.len().min(prefix.len()));
    match head.cmp(prefix) {
        Ordering::Equal => {}
        unequal => return unequal,
    }
    match rest.split_first() {
        None => Ordering::Less,
        Some((&b'/', tail)) => tail.cmp(name),
        Some((&c, _)) => c.cmp(&b'/'),
    }
}

/// The LiteLLM name prefix (without `/`) for a smartproxy provider name.
fn litellm_prefix(provider: &str) -> &str {
    match provider {
        "together" => "together_ai",
        "fireworks" => "fireworks_ai",
        "google" => "gemini",
        "cohere" => "cohere_chat",
        other => other,
    }
}

/// `name` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD`, or `None` when it has neither.
fn strip_date_suffix(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let is_date = |suffix: &[u8]| match suffix.len() {
        8 => suffix.iter().all(u8::is_ascii_digit),
        10 => suffix.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        }),
        _ => false,
    };
    [8usize, 10].into_iter().find_map(|len| {
        let start = bytes.len().checked_sub(len + 1)?;
        let base = name.get(..start)?;
        (bytes.get(start) == Some(&b'-') && is_date(bytes.get(start + 1..)?) && !base.is_empty())
            .then_some(base)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    fn book() -> PriceBook {
        let mut overrides = HashMap::new();
        overrides.insert(
            "gpt-4o-mini".to_owned(),
            Price {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            },
        );
        overrides.insert(
            " my-local-model ".to_owned(),
            Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            },
        );
        PriceBook::new(overrides)
    }

    #[test]
    fn table_is_sorted_unique_and_sane() {
        let models = entries();
        assert!(models.len() > 800, "only {} models", models.len());
        for pair in models.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for entry in models {
            assert!(
                entry.input.is_finite() && entry.input >= 0.0,
                "{}",
                entry.name
            );
            assert!(
                entry.output.is_finite() && entry.output >= 0.0,
                "{}",
                entry.name
            );
            assert_eq!(exact(entry.name), Some(entry));
        }
    }

    #[test]
    fn builtin_lookup_table() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            // exact
            (None, "gpt-4o-mini", Some("gpt-4o-mini")),
            (None, "claude-sonnet-4-5", Some("claude-sonnet-4-5")),
            (
                None,
                "deepseek/deepseek-chat",
                Some("deepseek/deepseek-chat"),
            ),
            (None, "  gpt-4o-mini\n", Some("gpt-4o-mini")),
            (Some("openai"), "gpt-4o-mini", Some("gpt-4o-mini")),
            // provider prefix
            (
                Some("cerebras"),
                "llama-3.1-8b",
                Some("cerebras/llama-3.1-8b"),
            ),
            (Some("xai"), "grok-4.3", Some("xai/grok-4.3")),
            (
                Some("together"),
                "meta-llama/Meta-Llama-3.1-8B",
                Some("together_ai/meta-llama/Meta-Llama-3.1-8B"),
            ),
            // the provider's own price wins over another provider's entry of the same name
            (
                Some("dashscope"),
                "deepseek-v4-flash",
                Some("dashscope/deepseek-v4-flash"),
            ),
            (
                Some("deepseek"),
                "deepseek-v4-flash",
                Some("deepseek/deepseek-v4-flash"),
            ),
            (None, "deepseek-v4-flash", Some("deepseek-v4-flash")),
            // a leading provider segment stripped
            (None, "openai/gpt-4o", Some("gpt-4o")),
            (
                None,
                "openrouter/deepseek/deepseek-chat",
                Some("deepseek/deepseek-chat"),
            ),
            (
                Some("cerebras"),
                "meta/llama-3.1-8b",
                Some("cerebras/llama-3.1-8b"),
            ),
            // date suffix
            (
                None,
                "claude-sonnet-4-5-20250929",
                Some("claude-sonnet-4-5-20250929"),
            ),
            (
                None,
                "claude-sonnet-4-5-20990101",
                Some("claude-sonnet-4-5"),
            ),
            (
                None,
                "claude-sonnet-4-6-20990101",
                Some("claude-sonnet-4-6"),
            ),
            (
                None,
                "gpt-4o-mini-2024-07-18",
                Some("gpt-4o-mini-2024-07-18"),
            ),
            (None, "gpt-4o-mini-2099-01-01", Some("gpt-4o-mini")),
            (None, "openai/gpt-4o-mini-2099-01-01", Some("gpt-4o-mini")),
            (Some("xai"), "grok-4.3-20990101", Some("xai/grok-4.3")),
            // unknown
            (None, "no-such-model", None),
            (None, "", None),
            (None, "   ", None),
            (None, "/", None),
            (None, "-20250929", None),
            (Some("deepseek"), "gpt-4o-mini-2099-13", None),
            (None, "xai/", None),
        ];
        for (provider, model, want) in cases {
            let got = lookup(*provider, model).map(|e| e.name);
            assert_eq!(got, *want, "lookup({provider:?}, {model:?})");
        }
    }

    #[test]
    fn price_book_table() {
        let book = book();
        let mini = builtin("gpt-4o-mini").unwrap().price();
        let cases: &[(Option<&str>, &str, Option<Price>)] = &[
            // override beats builtin
            (
                None,
                "gpt-4o-mini",
                Some(Price {
                    input_per_mtok: 1.0,
                    output_per_mtok: 2.0,
                    cached_input_per_mtok: None,
                    cache_write_per_mtok: None,
                }),
            ),
            // override keys and names are trimmed
            (
                None,
                "my-local-model",
                Some(Price {
                    input_per_mtok: 0.0,
                    output_per_mtok: 0.0,
                    cached_input_per_mtok: None,
                    cache_write_per_mtok: None,
                }),
            ),
            // overrides match exactly: a dated name falls through to the builtin
            (None, "gpt-4o-mini-2099-01-01", Some(mini)),
            (None, "my-local-model-2", None),
            (
                Some("cerebras"),
                "llama-3.1-8b",
                Some(Price {
                    input_per_mtok: 0.1,
                    output_per_mtok: 0.1,
                    cached_input_per_mtok: None,
                    cache_write_per_mtok: None,
                }),
            ),
            (None, "unknown-model", None),
        ];
        for (provider, model, want) in cases {
            assert_eq!(
                book.price(*provider, model),
                *want,
                "price({provider:?}, {model:?})"
            );
        }
    }

    #[test]
    fn per_mtok_is_clean() {
        let cases = [
            (5e-7, 0.5),
            (1.5e-6, 1.5),
            (2.85e-6, 2.85),
            (9.9e-7, 0.99),
            (1e-9, 0.001),
            (0.0, 0.0),
        ];
        for (per_token, want) in cases {
            assert_eq!(per_mtok(per_token), want, "{per_token}");
        }
    }

    #[test]
    fn prefixed_compare_agrees_with_building_the_string() {
        let names = [
            "",
            "a",
            "ab",
            "a/",
            "a/b",
            "a/bc",
            "a0",
            "a.b",
            "b",
            "ab/c",
            "a/b/c",
            "deepseek/deepseek-chat",
        ];
        for entry in names {
            for prefix in ["", "a", "ab", "deepseek"] {
                for name in ["", "b", "bc", "b/c", "deepseek-chat"] {
                    let built = format!("{prefix}/{name}");
                    assert_eq!(
                        cmp_prefixed(entry.as_bytes(), prefix.as_bytes(), name.as_bytes()),
                        entry.cmp(built.as_str()),
                        "{entry:?} vs {built:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn cost_table() {
        let book = book();
        let t = |prompt, completion, cached_prompt| TokenCounts {
            prompt,
            completion,
            cached_prompt,
            cache_write: 0,
        };
        let sonnet = builtin("claude-sonnet-4-5").unwrap();
        let cache_read = sonnet.cache_read.unwrap();
        let cache_write = sonnet.cache_write.unwrap();
        assert!(cache_write > sonnet.input);
        let cases: &[(&str, TokenCounts, Option<f64>)] = &[
            // override: 1 USD / 2 USD per Mtok, no cached price -> cached billed as input
            ("gpt-4o-mini", t(1_000_000, 500_000, 0), Some(2.0)),
            ("gpt-4o-mini", t(1_000_000, 0, 400_000), Some(1.0)),
            // zero-priced override is a real zero, not unknown
            ("my-local-model", t(123, 456, 7), Some(0.0)),
            // builtin with a cache-read price
            (
                "claude-sonnet-4-5",
                t(10_000, 2_000, 8_000),
                Some(2_000.0 * sonnet.input + 8_000.0 * cache_read + 2_000.0 * sonnet.output),
            ),
            // cache writes at their own price: 10k prompt = 1k uncached + 6k read + 3k written
            (
                "claude-sonnet-4-5",
                TokenCounts {
                    prompt: 10_000,
                    completion: 2_000,
                    cached_prompt: 6_000,
                    cache_write: 3_000,
                },
                Some(
                    1_000.0 * sonnet.input
                        + 6_000.0 * cache_read
                        + 3_000.0 * cache_write
                        + 2_000.0 * sonnet.output,
                ),
            ),
            // no cache-write price: written tokens are billed as input
            (
                "gpt-4o-mini",
                TokenCounts {
                    prompt: 1_000_000,
                    completion: 0,
                    cached_prompt: 0,
                    cache_write: 500_000,
                },
                Some(1.0),
            ),
            // cached > prompt: uncached part saturates at zero
            (
                "claude-sonnet-4-5",
                t(100, 0, 300),
                Some(300.0 * cache_read),
            ),
            ("claude-sonnet-4-5", TokenCounts::default(), Some(0.0)),
            // unknown model has no cost
            ("unknown-model", t(1, 1, 0), None),
        ];
        for (model, tokens, want) in cases {
            let got = book.cost_usd(None, model, *tokens);
            match (got, want) {
                (Some(g), Some(w)) => assert!(close(g, *w), "{model} {tokens:?}: {g} != {w}"),
                _ => assert_eq!(got, *want, "{model} {tokens:?}"),
            }
        }
        assert_eq!(
            builtin("claude-sonnet-4-5").map(|e| e.price().cached_input_per_mtok),
            Some(Some(0.3))
        );
    }

    #[test]
    fn override_deserializes_and_rejects_unknown_fields() {
        let price: Price =
            serde_json::from_str(r#"{"input_per_mtok": 0.0, "output_per_mtok": 0.0}"#).unwrap();
        assert_eq!(
            price,
            Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
            }
        );
        let price: Price = serde_json::from_str(
            r#"{"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": 0.3}"#,
        )
        .unwrap();
        assert_eq!(price.cached_input_per_mtok, Some(0.3));
        assert!(
            serde_json::from_str::<Price>(r#"{"input_per_mtok": 1, "output_per_mtok": 1, "x": 1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Price>(r#"{"input_per_mtok": 1}"#).is_err());
    }

    #[test]
    fn context_window_and_caps() {
        let book = PriceBook::default();
        assert_eq!(book.context_window("gpt-4o-mini"), Some(128_000));
        assert_eq!(book.context_window("no-such-model"), None);
        let sonnet = builtin("claude-sonnet-4-5").unwrap();
        assert!(sonnet.supports(CAP_TOOLS | CAP_VISION | CAP_PROMPT_CACHING));
        assert!(!builtin("ollama/llama2").unwrap().supports(CAP_TOOLS));
    }
}
