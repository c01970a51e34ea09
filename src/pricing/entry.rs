//! One row of the built-in price table (`PriceEntry`: rates, extras, capabilities) and the
//! one conversion of a row's USD-per-token prices to a [`Price`], for the table and overlays.

use super::hours::Hours;
use super::price::{MAX_RANGES, OffPeakPrice, Price, RangePrice, ServiceTierPrice, TierPrice};

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
    /// Prices beyond the four plain ones, for the models that have any.
    pub extra: Option<&'static Extra>,
}

/// USD per token of one kind of price; `None` where the table has no such field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    /// LiteLLM `cache_creation_input_token_cost_above_1hr`: Anthropic's 1-hour cache writes.
    pub cache_write_1h: Option<f64>,
    pub reasoning: Option<f64>,
}

impl Rates {
    pub const NONE: Rates = Rates {
        input: None,
        output: None,
        cache_read: None,
        cache_write: None,
        cache_write_1h: None,
        reasoning: None,
    };
}

/// The table's extra prices of a model (LiteLLM field names in the comments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extra {
    /// `cache_creation_input_token_cost_above_1hr`.
    pub cache_write_1h: Option<f64>,
    /// `output_cost_per_reasoning_token`.
    pub reasoning: Option<f64>,
    /// `search_context_cost_per_query.search_context_size_medium`: USD per web search.
    pub web_search: Option<f64>,
    /// The `N` of the `*_above_N_tokens` fields (LiteLLM tables have one threshold a model).
    pub above_tokens: Option<u64>,
    /// `*_above_N_tokens`.
    pub above: Rates,
    /// `*_flex` and `*_above_N_tokens_flex`.
    pub flex: Rates,
    pub flex_above: Rates,
    /// `*_priority` and `*_above_N_tokens_priority`.
    pub priority: Rates,
    pub priority_above: Rates,
    /// `off_peak_pricing`.
    pub off_peak: Option<OffPeak>,
    /// `tiered_pricing`: prices by prompt-size range, in order, unused slots `None`.
    pub ranges: [Option<Range>; MAX_RANGES],
}

/// No prompt-size ranges.
pub const NO_RANGES: [Option<Range>; MAX_RANGES] = [None; MAX_RANGES];

/// A model's off-peak prices (LiteLLM `off_peak_pricing`) and when they apply, in UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffPeak {
    /// `input_cost_per_token`, `output_cost_per_token`, `cache_read_input_token_cost`,
    /// `cache_creation_input_token_cost`, `output_cost_per_reasoning_token` of the block.
    pub rates: Rates,
    /// `hours_utc` (every day) and `windows` (`hours_utc` on `weekdays`).
    pub hours: Hours,
}

/// One entry of LiteLLM `tiered_pricing`: prices for a prompt of more than `above_tokens` and
/// at most `up_to_tokens` tokens (its `range`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub above_tokens: u64,
    pub up_to_tokens: u64,
    /// The range's prices; `input` is always set.
    pub rates: Rates,
}

/// Fireworks bills cached input at half the input price on every model; LiteLLM
/// (`FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO`) applies it where the table has no cache price.
const FIREWORKS_CACHE_READ_RATIO: f64 = 0.5;

impl PriceEntry {
    /// Whether every flag in `cap` (a `CAP_*` constant or several or-ed together) is set.
    pub const fn supports(&self, cap: u8) -> bool {
        self.caps & cap == cap
    }

    /// The entry's prices in USD per million tokens.
    pub fn price(&self) -> Price {
        entry_price(
            self.provider,
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.extra,
        )
    }
}

/// A table row's prices (USD per token, LiteLLM provider name) in USD per million tokens: the
/// one conversion for the built-in table and overlays alike.
pub(super) fn entry_price(
    provider: &str,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    extra: Option<&Extra>,
) -> Price {
    let cache_read = match (cache_read, provider) {
        (None, "fireworks_ai") => Some(input * FIREWORKS_CACHE_READ_RATIO),
        (read, _) => read,
    };
    let mut price = Price {
        input_per_mtok: per_mtok(input),
        output_per_mtok: per_mtok(output),
        cached_input_per_mtok: cache_read.map(per_mtok),
        cache_write_per_mtok: cache_write.map(per_mtok),
        ..Price::default()
    };
    let Some(extra) = extra else {
        return price;
    };
    // xAI bills the long-context price from the threshold itself (LiteLLM
    // `_INCLUSIVE_THRESHOLD_PROVIDERS`).
    let inclusive = provider == "xai";
    let tier = |rates: &Rates| {
        let above_tokens = extra.above_tokens?;
        (*rates != Rates::NONE).then(|| TierPrice {
            above_tokens,
            input_per_mtok: rates.input.map(per_mtok),
            output_per_mtok: rates.output.map(per_mtok),
            cached_input_per_mtok: rates.cache_read.map(per_mtok),
            cache_write_per_mtok: rates.cache_write.map(per_mtok),
            cache_write_1h_per_mtok: rates.cache_write_1h.map(per_mtok),
            inclusive,
        })
    };
    let service = |rates: &Rates, above: &Rates| {
        (*rates != Rates::NONE || *above != Rates::NONE).then(|| ServiceTierPrice {
            input_per_mtok: rates.input.map(per_mtok),
            output_per_mtok: rates.output.map(per_mtok),
            cached_input_per_mtok: rates.cache_read.map(per_mtok),
            cache_write_per_mtok: rates.cache_write.map(per_mtok),
            cache_write_1h_per_mtok: rates.cache_write_1h.map(per_mtok),
            reasoning_per_mtok: rates.reasoning.map(per_mtok),
            tier: tier(above),
        })
    };
    price.cache_write_1h_per_mtok = extra.cache_write_1h.map(per_mtok);
    price.reasoning_per_mtok = extra.reasoning.map(per_mtok);
    price.web_search_per_call = extra.web_search;
    price.tier = tier(&extra.above);
    price.flex = service(&extra.flex, &extra.flex_above);
    price.priority = service(&extra.priority, &extra.priority_above);
    price.ranges = extra.ranges.map(|range| {
        range.map(|r| RangePrice {
            above_tokens: r.above_tokens,
            up_to_tokens: r.up_to_tokens,
            input_per_mtok: per_mtok(r.rates.input.unwrap_or(0.0)),
            output_per_mtok: r.rates.output.map(per_mtok),
            cached_input_per_mtok: r.rates.cache_read.map(per_mtok),
            cache_write_per_mtok: r.rates.cache_write.map(per_mtok),
            reasoning_per_mtok: r.rates.reasoning.map(per_mtok),
        })
    });
    price.off_peak = extra.off_peak.map(|o| OffPeakPrice {
        input_per_mtok: o.rates.input.map(per_mtok),
        output_per_mtok: o.rates.output.map(per_mtok),
        cached_input_per_mtok: o.rates.cache_read.map(per_mtok),
        cache_write_per_mtok: o.rates.cache_write.map(per_mtok),
        reasoning_per_mtok: o.rates.reasoning.map(per_mtok),
        hours: o.hours,
    });
    price
}

/// USD per token to USD per million tokens, rounded to 1e-9 so that table values such as
/// `2.85e-6` come out as `2.85` rather than `2.8499999999999996`.
pub(super) fn per_mtok(per_token: f64) -> f64 {
    (per_token * 1e15).round() / 1e9
}
