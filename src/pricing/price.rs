//! One model's prices (also the shape of a config override) and the rules that turn a request's
//! usage into USD. The rules are LiteLLM's `generic_cost_per_token` (litellm 1.109.1,
//! `litellm_core_utils/llm_cost_calc/utils.py`), followed exactly so that a bill can be checked
//! against that calculator: see `testdata/accounting/README.md`. Prices by prompt-size range
//! follow LiteLLM's DashScope calculator (`llms/dashscope/cost_calculator.py`) and off-peak
//! prices its `apply_off_peak_pricing`.

use super::hours::Hours;

/// Prices in USD per million tokens. Also the shape of a config override:
/// `pricing: {my-model: {input_per_mtok: 0.0, output_per_mtok: 0.0}}`; every other field is
/// optional and falls back as documented on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// USD per million uncached prompt tokens.
    pub input_per_mtok: f64,
    /// USD per million completion tokens.
    pub output_per_mtok: f64,
    /// USD per million cached prompt tokens; `None` bills them at `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// USD per million prompt tokens written to the provider's prompt cache (Anthropic's
    /// 5-minute writes); `None` bills them at `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    /// USD per million tokens written with Anthropic's 1-hour lifetime; `None` bills them at
    /// the (5-minute) cache-write price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
    /// USD per million reasoning tokens (`completion_tokens_details.reasoning_tokens`);
    /// `None` bills them as output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_mtok: Option<f64>,
    /// USD per web search the provider ran (`usage.server_tool_use.web_search_requests`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_per_call: Option<f64>,
    /// Long-context prices: a prompt above `above_tokens` bills the WHOLE request at them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierPrice>,
    /// Prices when the reply says `service_tier: flex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<ServiceTierPrice>,
    /// Prices when the reply says `service_tier: priority` (or `fast`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<ServiceTierPrice>,
    /// Prices by prompt-size range (LiteLLM `tiered_pricing`: DashScope's Qwen models), in
    /// order; unused slots are `None`. When any is set, the range the prompt falls in prices
    /// the whole request. Built-in and overlay prices only.
    #[serde(skip)]
    pub ranges: [Option<RangePrice>; MAX_RANGES],
    /// Prices at off-peak hours (LiteLLM `off_peak_pricing`: DeepSeek). Built-in and overlay
    /// prices only.
    #[serde(skip)]
    pub off_peak: Option<OffPeakPrice>,
}

/// Most prompt-size ranges a model has (DashScope's have up to four).
pub const MAX_RANGES: usize = 4;

/// Prices for prompts of more than `above_tokens` and at most `up_to_tokens` tokens (cached
/// and written tokens included). A prompt above every range pays the last one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RangePrice {
    pub above_tokens: u64,
    pub up_to_tokens: u64,
    pub input_per_mtok: f64,
    /// `None`: the model's output price.
    pub output_per_mtok: Option<f64>,
    /// `None`: this range's input price.
    pub cached_input_per_mtok: Option<f64>,
    /// `None`: this range's input price.
    pub cache_write_per_mtok: Option<f64>,
    /// `None`: the output price when this range has one, else the model's reasoning price.
    pub reasoning_per_mtok: Option<f64>,
}

/// Prices that apply while the schedule `hours` is open; a missing one keeps the price that
/// applies otherwise (a missing cache price follows the off-peak input price).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OffPeakPrice {
    pub input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
    pub cached_input_per_mtok: Option<f64>,
    pub cache_write_per_mtok: Option<f64>,
    pub reasoning_per_mtok: Option<f64>,
    pub hours: Hours,
}

/// Which of a model's time-of-day prices a request paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Standard,
    OffPeak,
}

impl Period {
    /// As the ledger's `price_period` stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::OffPeak => "off_peak",
        }
    }
}

/// Prices that apply when the prompt (cached and written tokens included) is above a size.
/// A missing price keeps the one that applies below the threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// Prompt tokens above which these prices apply.
    pub above_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
    /// A prompt of exactly `above_tokens` already pays these prices (xAI bills so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inclusive: bool,
}

/// Prices of one service tier; a missing price falls back to the standard one.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTierPrice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_mtok: Option<f64>,
    /// This tier's long-context prices (missing ones fall back to the standard tier's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierPrice>,
}

/// The service tier a reply says served it. Anything but flex and priority is standard,
/// as LiteLLM prices it (`default`, `auto`, `scale`, `standard`, `batch`...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServiceTier {
    #[default]
    Standard,
    Flex,
    Priority,
}

impl ServiceTier {
    pub fn parse(name: &str) -> Self {
        if name.eq_ignore_ascii_case("flex") {
            Self::Flex
        } else if name.eq_ignore_ascii_case("priority") || name.eq_ignore_ascii_case("fast") {
            Self::Priority
        } else {
            Self::Standard
        }
    }
}

/// Token usage of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenCounts {
    /// All prompt tokens, INCLUDING `cached_prompt` and `cache_write` (OpenAI convention:
    /// `usage.prompt_tokens` includes `prompt_tokens_details.cached_tokens`).
    pub prompt: u64,
    /// Completion (output) tokens, reasoning tokens included.
    pub completion: u64,
    /// Prompt tokens served from the provider's prompt cache.
    pub cached_prompt: u64,
    /// Prompt tokens written to the provider's prompt cache (also counted in `prompt`).
    pub cache_write: u64,
}

/// What else a reply said that changes its price, beyond [`TokenCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageDetail {
    /// Of `cache_write`, the tokens written with a 1-hour lifetime.
    pub cache_write_1h: u64,
    /// Of `completion`, the reasoning tokens (0 when the provider does not say).
    pub reasoning: u64,
    /// Web searches the provider ran and bills per call.
    pub web_searches: u64,
    pub service_tier: ServiceTier,
    /// When the request started, in milliseconds since the Unix epoch: time-of-day prices
    /// apply by it (the moment DeepSeek bills by). `None` pays the standard price, the upper
    /// bound.
    pub started_ms: Option<i64>,
}

/// USD per million tokens that apply to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
    cache_write_1h: f64,
    reasoning: f64,
}

impl Price {
    /// Cost in USD of `tokens` at these prices, standard tier, nothing else reported.
    pub fn cost_usd(&self, tokens: TokenCounts) -> f64 {
        self.cost_usd_with(tokens, UsageDetail::default())
    }

    /// Cost in USD of a request's whole usage.
    pub fn cost_usd_with(&self, tokens: TokenCounts, detail: UsageDetail) -> f64 {
        let r = self.rates(detail.service_tier, tokens.prompt, detail.started_ms);
        let uncached = tokens
            .prompt
            .saturating_sub(tokens.cached_prompt)
            .saturating_sub(tokens.cache_write) as f64;
        let written_1h = detail.cache_write_1h;
        let written_5m = tokens.cache_write.saturating_sub(written_1h) as f64;
        // LiteLLM bills the reasoning tokens and the rest of the completion apart only when
        // the provider reports reasoning tokens at all.
        let reasoning = detail.reasoning;
        let text = tokens.completion.saturating_sub(reasoning) as f64;
        let tokens_usd = (uncached * r.input
            + tokens.cached_prompt as f64 * r.cache_read
            + written_5m * r.cache_write
            + written_1h as f64 * r.cache_write_1h
            + text * r.output
            + reasoning as f64 * r.reasoning)
            / 1e6;
        let searches = detail.web_searches as f64 * self.web_search_per_call.unwrap_or(0.0);
        tokens_usd + searches
    }

    /// Every price in the override, for validation.
    pub fn all_prices(&self) -> Vec<f64> {
        let mut all = vec![self.input_per_mtok, self.output_per_mtok];
        all.extend(
            [
                self.cached_input_per_mtok,
                self.cache_write_per_mtok,
                self.cache_write_1h_per_mtok,
                self.reasoning_per_mtok,
                self.web_search_per_call,
            ]
            .into_iter()
            .flatten(),
        );
        let tier_prices = |t: &TierPrice| {
            [
                t.input_per_mtok,
                t.output_per_mtok,
                t.cached_input_per_mtok,
                t.cache_write_per_mtok,
                t.cache_write_1h_per_mtok,
            ]
        };
        if let Some(t) = &self.tier {
            all.extend(tier_prices(t).into_iter().flatten());
        }
        for s in [&self.flex, &self.priority].into_iter().flatten() {
            all.extend(
                [
                    s.input_per_mtok,
                    s.output_per_mtok,
                    s.cached_input_per_mtok,
                    s.cache_write_per_mtok,
                    s.cache_write_1h_per_mtok,
                    s.reasoning_per_mtok,
                ]
                .into_iter()
                .flatten(),
            );
            if let Some(t) = &s.tier {
                all.extend(tier_prices(t).into_iter().flatten());
            }
        }
        for r in self.ranges.iter().flatten() {
            all.push(r.input_per_mtok);
            all.extend(
                [
                    r.output_per_mtok,
                    r.cached_input_per_mtok,
                    r.cache_write_per_mtok,
                    r.reasoning_per_mtok,
                ]
                .into_iter()
                .flatten(),
            );
        }
        if let Some(o) = &self.off_peak {
            all.extend(
                [
                    o.input_per_mtok,
                    o.output_per_mtok,
                    o.cached_input_per_mtok,
                    o.cache_write_per_mtok,
                    o.reasoning_per_mtok,
                ]
                .into_iter()
                .flatten(),
            );
        }
        all
    }

    /// Which time-of-day price a request that started at `started_ms` pays; `None` for a model
    /// with one price at all hours.
    pub fn period(&self, started_ms: Option<i64>) -> Option<Period> {
        let off_peak = self.off_peak.as_ref()?;
        Some(match started_ms {
            Some(at) if off_peak.hours.contains(at) => Period::OffPeak,
            _ => Period::Standard,
        })
    }

    /// The range a prompt of `prompt` tokens pays (LiteLLM `select_tier_for_input`: more than
    /// its start and at most its end; above them all, the last). An empty prompt pays the
    /// first, where LiteLLM would fall back to the model's flat price, which these models lack.
    fn range_for(&self, prompt: u64) -> Option<&RangePrice> {
        let ranges = self.ranges.iter().flatten();
        let first = ranges.clone().next()?;
        if prompt == 0 {
            return Some(first);
        }
        ranges
            .clone()
            .find(|r| r.above_tokens < prompt && prompt <= r.up_to_tokens)
            .or_else(|| ranges.last())
    }

    /// The prices for a request served at `service_tier` with `prompt` prompt tokens, in
    /// LiteLLM's order (`_get_token_base_cost`): the service tier's price or else the standard
    /// one; then, above the threshold, the service tier's long-context price, else the
    /// standard long-context price, else what applied below; a missing cache price is the
    /// input price and a missing 1-hour write price the write price.
    ///
    /// A model priced by prompt-size range pays its range's prices instead (service tiers and
    /// thresholds do not apply to it). Off-peak prices, when `started_ms` is in their hours,
    /// then replace whatever applied.
    fn rates(&self, service_tier: ServiceTier, prompt: u64, started_ms: Option<i64>) -> Rates {
        let mut r = match self.range_for(prompt) {
            Some(range) => self.range_rates(range),
            None => self.listed_rates(service_tier, prompt),
        };
        if self.period(started_ms) == Some(Period::OffPeak)
            && let Some(o) = &self.off_peak
        {
            r.input = o.input_per_mtok.unwrap_or(r.input);
            r.output = o.output_per_mtok.unwrap_or(r.output);
            r.cache_read = o.cached_input_per_mtok.or(r.cache_read);
            r.cache_write = o.cache_write_per_mtok.or(r.cache_write);
            r.reasoning = o.reasoning_per_mtok.or(r.reasoning);
        }
        let cache_write = r.cache_write.unwrap_or(r.input);
        Rates {
            input: r.input,
            output: r.output,
            cache_read: r.cache_read.unwrap_or(r.input),
            cache_write,
            cache_write_1h: r.cache_write_1h.unwrap_or(cache_write),
            reasoning: r.reasoning.unwrap_or(r.output),
        }
    }

    /// DashScope's `_tier_rates`: the range's prices, its input price for cache prices it
    /// lacks, the model's output price if it has none.
    fn range_rates(&self, range: &RangePrice) -> Partial {
        let reasoning = match range.output_per_mtok {
            _ if range.reasoning_per_mtok.is_some() => range.reasoning_per_mtok,
            Some(_) => None,
            None => self.reasoning_per_mtok,
        };
        Partial {
            input: range.input_per_mtok,
            output: range.output_per_mtok.unwrap_or(self.output_per_mtok),
            cache_read: Some(range.cached_input_per_mtok.unwrap_or(range.input_per_mtok)),
            cache_write: Some(range.cache_write_per_mtok.unwrap_or(range.input_per_mtok)),
            cache_write_1h: None,
            reasoning,
        }
    }

    /// The listed prices for `service_tier` and a prompt of `prompt` tokens, before the
    /// fallbacks of missing cache and reasoning prices.
    fn listed_rates(&self, service_tier: ServiceTier, prompt: u64) -> Partial {
        let st = match service_tier {
            ServiceTier::Standard => None,
            ServiceTier::Flex => self.flex.as_ref(),
            ServiceTier::Priority => self.priority.as_ref(),
        };
        let pick = |f: fn(&ServiceTierPrice) -> Option<f64>, standard: Option<f64>| {
            st.and_then(f).or(standard)
        };
        let mut input = pick(|s| s.input_per_mtok, None).unwrap_or(self.input_per_mtok);
        let mut output = pick(|s| s.output_per_mtok, None).unwrap_or(self.output_per_mtok);
        let mut cache_read = pick(|s| s.cached_input_per_mtok, self.cached_input_per_mtok);
        let mut cache_write = pick(|s| s.cache_write_per_mtok, self.cache_write_per_mtok);
        let mut cache_write_1h = pick(|s| s.cache_write_1h_per_mtok, self.cache_write_1h_per_mtok);

        // Standard long-context prices always count; a service tier's own only for it.
        let st_tier = st.and_then(|s| s.tier.as_ref());
        let std_tier = self.tier.as_ref();
        let crossed = [std_tier, st_tier]
            .into_iter()
            .flatten()
            .any(|t| prompt > t.above_tokens || (t.inclusive && prompt == t.above_tokens));
        if crossed {
            let above = |f: fn(&TierPrice) -> Option<f64>| {
                st_tier.and_then(f).or_else(|| std_tier.and_then(f))
            };
            input = above(|t| t.input_per_mtok).unwrap_or(input);
            output = above(|t| t.output_per_mtok).unwrap_or(output);
            cache_read = above(|t| t.cached_input_per_mtok).or(cache_read);
            cache_write = above(|t| t.cache_write_per_mtok).or(cache_write);
            // LiteLLM looks up the 1-hour price above the threshold by the exact key of the
            // request's tier only, so a service tier skips the standard long-context one.
            let long_1h = match st {
                Some(_) => st_tier.and_then(|t| t.cache_write_1h_per_mtok),
                None => std_tier.and_then(|t| t.cache_write_1h_per_mtok),
            };
            cache_write_1h = long_1h.or(cache_write_1h);
        }
        // `_resolve_reasoning_token_cost`: the tier's reasoning price; else, when the tier
        // has its own output price, the output price (`None` here); else the standard
        // reasoning price.
        let reasoning = match st {
            Some(s) if s.reasoning_per_mtok.is_some() => s.reasoning_per_mtok,
            Some(s) if s.output_per_mtok.is_some() => None,
            _ => self.reasoning_per_mtok,
        };
        Partial {
            input,
            output,
            cache_read,
            cache_write,
            cache_write_1h,
            reasoning,
        }
    }
}

/// The prices that apply before missing ones fall back: a missing cache price is the input
/// price, a missing 1-hour write price the write price, a missing reasoning price the output
/// price, all taken after off-peak prices are put in.
struct Partial {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    cache_write_1h: Option<f64>,
    reasoning: Option<f64>,
}

#[cfg(test)]
#[path = "price_tests.rs"]
mod tests;
