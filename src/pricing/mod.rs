//! Model prices: what a request cost, from a built-in table plus config overrides.
//!
//! The built-in table (`table.rs`) is generated from `model_prices.json` beside it, a trim of
//! LiteLLM's `model_prices_and_context_window_backup.json` (litellm 1.109.1, MIT License,
//! Copyright (c) 2023 Berri AI; see `SOURCE.md`), by `tests/pricing_table.rs`; regenerate it with
//! `SMARTPROXY_UPDATE_GENERATED=1 cargo test --test pricing_table`.
//!
//! A price overlay installed with `smartproxy prices update` (`overlay.rs`) is looked up before
//! the built-in table; config `pricing:` overrides before both.
//!
//! An unknown model has no price and no cost (`None`), never a silent zero.

use std::collections::HashMap;
use std::sync::Arc;

pub mod hours;
mod litellm;
mod overlay;
mod price;
mod table;
mod version;

pub use hours::{Hours, Window};
pub use overlay::{Comparison, Overlay, OverlayEntry, OverlayError};
pub use price::{
    MAX_RANGES, OffPeakPrice, Period, Price, RangePrice, ServiceTier, ServiceTierPrice, TierPrice,
    TokenCounts, UsageDetail,
};
pub use version::{TABLE_DATE, TABLE_SOURCE, TABLE_VERSION, table_label};

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
fn entry_price(
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
fn per_mtok(per_token: f64) -> f64 {
    (per_token * 1e15).round() / 1e9
}

/// What a request cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bill {
    pub cost_usd: f64,
    /// The time-of-day price paid, for a model that has several (`None`: one price at all
    /// hours).
    pub period: Option<Period>,
}

/// Built-in prices, an installed overlay and the user's overrides.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    overrides: HashMap<String, Price>,
    overlay: Option<Arc<Overlay>>,
}

/// Where a model's price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A config `pricing:` override.
    Config,
    /// The overlay installed with `smartproxy prices update`.
    Overlay,
    /// The built-in table.
    BuiltIn,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Overlay => "overlay",
            Self::BuiltIn => "built-in",
        }
    }
}

/// How a model's price was found: what [`PriceBook::price`] returns, and from where.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub origin: Origin,
    /// The override or table name that matched (`gpt-4o` for `gpt-4o-2099-01-01`).
    pub name: String,
    /// LiteLLM provider name of the table row; `None` for an override.
    pub provider: Option<String>,
    pub price: Price,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
}

impl PriceBook {
    /// A price book with config overrides keyed by model name.
    pub fn new(overrides: HashMap<String, Price>) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(name, price)| (name.trim().to_owned(), price))
            .collect();
        Self {
            overrides,
            overlay: None,
        }
    }

    /// The same book with `overlay` looked up before the built-in table.
    pub fn with_overlay(mut self, overlay: Option<Arc<Overlay>>) -> Self {
        self.overlay = overlay;
        self
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_deref()
    }

    /// The config overrides, by model name.
    pub fn overrides(&self) -> &HashMap<String, Price> {
        &self.overrides
    }

    fn tables(&self) -> Tables<'_> {
        Tables {
            overlay: self.overlay.as_deref(),
        }
    }

    /// The price of `model` as served by the smartproxy provider `provider`.
    ///
    /// Lookup order: a config override (see [`Self::override_for`]); then the overlay and the
    /// built-in table as one table where the overlay's rows replace the built-in rows of the
    /// same name (see [`lookup`] for the rules).
    pub fn price(&self, provider: Option<&str>, model: &str) -> Option<Price> {
        let model = model.trim();
        if let Some(price) = self.override_for(model) {
            return Some(*price);
        }
        resolve(self.tables(), provider, model).map(|row| row.price())
    }

    /// What [`Self::price`] finds for `model`, with where it comes from (for `prices show`).
    pub fn resolve(&self, provider: Option<&str>, model: &str) -> Option<Resolved> {
        let model = model.trim();
        let row = resolve(self.tables(), provider, model);
        if let Some((name, price)) = self.override_entry(model) {
            return Some(Resolved {
                origin: Origin::Config,
                name: name.to_owned(),
                provider: None,
                price: *price,
                context_window: row.and_then(|r| r.context_window()),
                max_output: row.and_then(|r| r.max_output()),
            });
        }
        row.map(|row| Resolved {
            origin: row.origin(),
            name: row.name().to_owned(),
            provider: Some(row.provider().to_owned()),
            price: row.price(),
            context_window: row.context_window(),
            max_output: row.max_output(),
        })
    }

    /// The override for `model`: an override named exactly so, else the longest override name
    /// the model is a dated version of (`gpt-4o` for `gpt-4o-2024-08-06`), also with leading
    /// `provider/` segments removed (`openai/gpt-4o-2024-08-06`). An exact dated override beats
    /// an undated one. `gpt-4o` never matches `gpt-4o-mini`: only a date may follow the name.
    pub fn override_for(&self, model: &str) -> Option<&Price> {
        self.override_entry(model).map(|(_, price)| price)
    }

    /// [`Self::override_for`] with the override's name.
    fn override_entry(&self, model: &str) -> Option<(&str, &Price)> {
        if self.overrides.is_empty() {
            return None;
        }
        let mut best: Option<(bool, &str, &Price)> = None;
        let mut rest = model;
        loop {
            let candidates = [
                Some((true, rest)),
                strip_date_suffix(rest).map(|b| (false, b)),
            ];
            for (exact, name) in candidates.into_iter().flatten() {
                if let Some((key, price)) = self.overrides.get_key_value(name)
                    && best.is_none_or(|(e, best, _)| (exact, name.len()) > (e, best.len()))
                {
                    best = Some((exact, key.as_str(), price));
                }
            }
            match rest.split_once('/') {
                Some((_, tail)) => rest = tail,
                None => break,
            }
        }
        best.map(|(_, name, price)| (name, price))
    }

    /// Cost in USD of a request, or `None` when the model has no known price.
    pub fn cost_usd(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
    ) -> Option<f64> {
        self.cost_usd_with(provider, model, tokens, UsageDetail::default())
    }

    /// Cost in USD of a request's whole usage, or `None` when the model has no known price.
    pub fn cost_usd_with(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
        detail: UsageDetail,
    ) -> Option<f64> {
        self.bill(provider, model, tokens, detail)
            .map(|bill| bill.cost_usd)
    }

    /// What a request cost, and which time-of-day price it paid; `None` when the model has no
    /// known price.
    pub fn bill(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens: TokenCounts,
        detail: UsageDetail,
    ) -> Option<Bill> {
        self.price(provider, model).map(|price| Bill {
            cost_usd: price.cost_usd_with(tokens, detail),
            period: price.period(detail.started_ms),
        })
    }

    /// Maximum input tokens of `model`, from the overlay or the built-in table.
    pub fn context_window(&self, model: &str) -> Option<u32> {
        resolve(self.tables(), None, model.trim()).and_then(|row| row.context_window())
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
///
/// Then, whatever the provider is called (`google`, `my-gateway`), the model by its name
/// alone: the table's one `{litellm-provider}/{name}` entry, or the model maker's own when
/// several providers sell it (`gemini-2.5-pro` -> `gemini/gemini-2.5-pro`); a name only
/// resellers list, at different prices, stays unpriced rather than guessed.
pub fn lookup(provider: Option<&str>, model: &str) -> Option<&'static PriceEntry> {
    match resolve(Tables { overlay: None }, provider, model.trim())? {
        Row::Builtin(entry) => Some(entry),
        Row::Overlay(_) => None,
    }
}

/// A row the lookup found: a built-in entry or an overlay's.
#[derive(Debug, Clone, Copy)]
enum Row<'a> {
    Builtin(&'static PriceEntry),
    Overlay(&'a OverlayEntry),
}

impl<'a> Row<'a> {
    fn name(self) -> &'a str {
        match self {
            Self::Builtin(e) => e.name,
            Self::Overlay(e) => &e.name,
        }
    }
    fn provider(self) -> &'a str {
        match self {
            Self::Builtin(e) => e.provider,
            Self::Overlay(e) => &e.provider,
        }
    }
    fn price(self) -> Price {
        match self {
            Self::Builtin(e) => e.price(),
            Self::Overlay(e) => e.price,
        }
    }
    fn context_window(self) -> Option<u32> {
        match self {
            Self::Builtin(e) => e.context_window,
            Self::Overlay(e) => e.context_window,
        }
    }
    fn max_output(self) -> Option<u32> {
        match self {
            Self::Builtin(e) => e.max_output,
            Self::Overlay(e) => e.max_output,
        }
    }
    fn origin(self) -> Origin {
        match self {
            Self::Builtin(_) => Origin::BuiltIn,
            Self::Overlay(_) => Origin::Overlay,
        }
    }
}

/// The overlay (if any) over the built-in table, seen as one table: an overlay row replaces
/// the built-in row of the same name, so the lookup rules work the same on both.
#[derive(Debug, Clone, Copy)]
struct Tables<'a> {
    overlay: Option<&'a Overlay>,
}

impl<'a> Tables<'a> {
    fn exact(self, name: &str) -> Option<Row<'a>> {
        self.overlay
            .and_then(|o| o.exact(name))
            .map(Row::Overlay)
            .or_else(|| exact(name).map(Row::Builtin))
    }

    fn exact_prefixed(self, prefix: &str, name: &str) -> Option<Row<'a>> {
        self.overlay
            .and_then(|o| o.exact_prefixed(prefix, name))
            .map(Row::Overlay)
            .or_else(|| exact_prefixed(prefix, name).map(Row::Builtin))
    }

    /// The rows named `{litellm-provider}/{bare}`.
    fn named(self, bare: &str) -> Vec<Row<'a>> {
        let builtin = by_name_index().get(bare).into_iter().flatten().copied();
        let Some(overlay) = self.overlay else {
            return builtin.map(Row::Builtin).collect();
        };
        overlay
            .named(bare)
            .map(Row::Overlay)
            .chain(
                builtin
                    .filter(|e| overlay.exact(e.name).is_none())
                    .map(Row::Builtin),
            )
            .collect()
    }
}

/// The lookup rules of [`lookup`] over `tables`.
fn resolve<'a>(tables: Tables<'a>, provider: Option<&str>, model: &str) -> Option<Row<'a>> {
    let prefix = provider
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(litellm_prefix);
    let base = strip_date_suffix(model);
    find(tables, prefix, model)
        .or_else(|| base.and_then(|base| find(tables, prefix, base)))
        .or_else(|| by_name(tables, model))
        .or_else(|| base.and_then(|base| by_name(tables, base)))
}

fn find<'a>(tables: Tables<'a>, prefix: Option<&str>, name: &str) -> Option<Row<'a>> {
    let mut rest = name;
    loop {
        if rest.is_empty() {
            return None;
        }
        if let Some(prefix) = prefix
            && let Some(entry) = tables.exact_prefixed(prefix, rest)
        {
            return Some(entry);
        }
        if let Some(entry) = tables.exact(rest) {
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
        extra: None,
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

/// LiteLLM providers that make the models they list under their own prefix: when a model name
/// is listed by several providers, the maker's price is the list price.
const MAKERS: &[&str] = &[
    "anthropic",
    "cohere_chat",
    "dashscope",
    "deepseek",
    "gemini",
    "mistral",
    "moonshot",
    "openai",
    "xai",
];

/// The entry for `name` by the model's name alone, whatever the provider is called: see
/// [`lookup`]. Tries the maker's entry at every level of `name` (`a/b/c`, `b/c`, `c`) before
/// a reseller's only entry, so `google/gemini-2.5-pro` finds Gemini's own price.
fn by_name<'a>(tables: Tables<'a>, name: &str) -> Option<Row<'a>> {
    let levels = || {
        std::iter::successors(Some(name), |rest| {
            rest.split_once('/').map(|(_, tail)| tail)
        })
        .filter(|level| !level.is_empty())
    };
    let maker = levels().find_map(|level| {
        let named = tables.named(level);
        let mut makers = named.iter().filter(|row| MAKERS.contains(&row.provider()));
        match (makers.next(), makers.next()) {
            (Some(one), None) => Some(*one),
            _ => None,
        }
    });
    maker.or_else(|| {
        levels().find_map(|level| match tables.named(level).as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    })
}

/// Entries by their name without the leading `{litellm-provider}/`, built once.
fn by_name_index() -> &'static HashMap<&'static str, Vec<&'static PriceEntry>> {
    static INDEX: std::sync::OnceLock<HashMap<&'static str, Vec<&'static PriceEntry>>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: HashMap<&'static str, Vec<&'static PriceEntry>> = HashMap::new();
        for entry in table::MODELS {
            if let Some((_, rest)) = entry.name.split_once('/') {
                index.entry(rest).or_default().push(entry);
            }
        }
        index
    })
}

/// The LiteLLM name prefix (without `/`) for a smartproxy provider name.
pub fn litellm_prefix(provider: &str) -> &str {
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
                ..Price::default()
            },
        );
        overrides.insert(
            " my-local-model ".to_owned(),
            Price {
                input_per_mtok: 0.0,
                output_per_mtok: 0.0,
                cached_input_per_mtok: None,
                cache_write_per_mtok: None,
                ..Price::default()
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
        let search = builtin("gpt-4o-mini-search-preview").unwrap().price();
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
                    ..Price::default()
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
                    ..Price::default()
                }),
            ),
            // an override applies to the model's dated versions
            (
                None,
                "gpt-4o-mini-2099-01-01",
                Some(Price {
                    input_per_mtok: 1.0,
                    output_per_mtok: 2.0,
                    ..Price::default()
                }),
            ),
            // ... but not to another model whose name it begins
            (None, "gpt-4o-mini-tts", None),
            (None, "gpt-4o-mini-search-preview", Some(search)),
            (None, "my-local-model-2", None),
            (
                Some("cerebras"),
                "llama-3.1-8b",
                Some(Price {
                    input_per_mtok: 0.1,
                    output_per_mtok: 0.1,
                    cached_input_per_mtok: None,
                    cache_write_per_mtok: None,
                    ..Price::default()
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

    fn flat(input: f64) -> Price {
        Price {
            input_per_mtok: input,
            output_per_mtok: input,
            ..Price::default()
        }
    }

    #[test]
    fn overrides_apply_to_dated_names_longest_and_exact_first() {
        let book = PriceBook::new(HashMap::from([
            ("gpt-4o".to_owned(), flat(1.0)),
            ("openai/gpt-4o".to_owned(), flat(2.0)),
            ("gpt-4o-2024-08-06".to_owned(), flat(3.0)),
            ("claude-sonnet-4-5".to_owned(), flat(4.0)),
        ]));
        let cases: &[(&str, Option<f64>)] = &[
            ("gpt-4o", Some(1.0)),
            // undated override applies to any dated version
            ("gpt-4o-2024-11-20", Some(1.0)),
            ("gpt-4o-20241120", Some(1.0)),
            // the exact dated override beats the undated one
            ("gpt-4o-2024-08-06", Some(3.0)),
            ("openai/gpt-4o-2024-08-06", Some(3.0)),
            // the longest matching name wins
            ("openai/gpt-4o", Some(2.0)),
            ("openai/gpt-4o-2024-11-20", Some(2.0)),
            ("azure/gpt-4o-2024-11-20", Some(1.0)),
            ("claude-sonnet-4-5-20250929", Some(4.0)),
            // a name that merely starts with an override's is another model
            ("gpt-4o-mini", None),
            ("gpt-4o-mini-2024-07-18", None),
            ("gpt-4o-2024", None),
        ];
        for (model, want) in cases {
            let got = book.override_for(model).map(|p| p.input_per_mtok);
            assert_eq!(got, *want, "{model}");
        }
        // the override wins over the built-in entry of the dated name
        assert_eq!(
            book.price(None, "claude-sonnet-4-5-20250929"),
            Some(flat(4.0))
        );
    }

    #[test]
    fn models_priced_by_name_whatever_the_provider_is_called() {
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (
                Some("google"),
                "gemini-2.5-pro",
                Some("gemini/gemini-2.5-pro"),
            ),
            (
                Some("my-gateway"),
                "gemini-2.5-pro",
                Some("gemini/gemini-2.5-pro"),
            ),
            (None, "gemini-2.5-pro", Some("gemini/gemini-2.5-pro")),
            // the maker's entry beats a reseller's listing of the same name
            (
                Some("my-gateway"),
                "google/gemini-2.5-pro",
                Some("gemini/gemini-2.5-pro"),
            ),
            (Some("my-gateway"), "kimi-k3", Some("moonshot/kimi-k3")),
            (Some("fireworks"), "kimi-k3", Some("fireworks_ai/kimi-k3")),
            (Some("my-gateway"), "deepseek-chat", Some("deepseek-chat")),
            (
                Some("deepseek"),
                "deepseek-chat",
                Some("deepseek/deepseek-chat"),
            ),
            // only resellers, at different prices: not guessed
            (Some("my-gateway"), "openai/gpt-oss-120b", None),
        ];
        for (provider, model, want) in cases {
            let got = lookup(*provider, model).map(|e| e.name);
            assert_eq!(got, *want, "lookup({provider:?}, {model:?})");
        }
    }

    #[test]
    fn table_extras_become_prices() {
        let gpt = builtin("gpt-5.4").unwrap().price();
        let tier = gpt.tier.unwrap();
        assert_eq!(tier.above_tokens, 272_000);
        assert_eq!(tier.input_per_mtok, Some(5.0));
        assert!(!tier.inclusive);
        assert_eq!(gpt.flex.unwrap().input_per_mtok, Some(1.25));
        assert_eq!(gpt.priority.unwrap().output_per_mtok, Some(30.0));
        let sonnet = builtin("claude-sonnet-4-5").unwrap().price();
        assert_eq!(sonnet.cache_write_1h_per_mtok, Some(6.0));
        assert_eq!(sonnet.web_search_per_call, Some(0.01));
        assert!(
            lookup(Some("xai"), "grok-4.3")
                .unwrap()
                .price()
                .tier
                .unwrap()
                .inclusive
        );
        // Fireworks: cached input at half the input price where the table has none
        let fw = lookup(
            Some("fireworks"),
            "accounts/fireworks/models/code-llama-13b",
        )
        .unwrap();
        assert_eq!(fw.provider, "fireworks_ai");
        assert_eq!(fw.cache_read, None);
        assert_eq!(
            fw.price().cached_input_per_mtok,
            Some(per_mtok(fw.input * 0.5))
        );
        let flash = builtin("gemini/gemini-2.5-flash").unwrap().price();
        assert!(flash.reasoning_per_mtok.is_some());
    }

    #[test]
    fn lookup_order_is_override_then_overlay_then_builtin() {
        let overlay = Overlay::from_litellm(
            r#"{
                "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 200000,
                    "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
                "gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat",
                    "input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6},
                "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat",
                    "input_cost_per_token": 5e-6, "output_cost_per_token": 6e-6},
                "brand-new-model": {"litellm_provider": "openai", "mode": "chat",
                    "input_cost_per_token": 7e-6, "output_cost_per_token": 8e-6}
            }"#,
            "test.json",
        )
        .unwrap();
        let book = PriceBook::new(HashMap::from([("gpt-4o-mini".to_owned(), flat(9.0))]))
            .with_overlay(Some(Arc::new(overlay)));
        let cases: &[(Option<&str>, &str, Origin, &str, f64)] = &[
            (None, "gpt-4o", Origin::Overlay, "gpt-4o", 1.0),
            (None, "openai/gpt-4o", Origin::Overlay, "gpt-4o", 1.0),
            // the built-in dated entry still wins for its exact name
            (
                None,
                "gpt-4o-2024-08-06",
                Origin::BuiltIn,
                "gpt-4o-2024-08-06",
                2.5,
            ),
            (None, "gpt-4o-2099-01-01", Origin::Overlay, "gpt-4o", 1.0),
            (None, "gpt-4o-mini", Origin::Config, "gpt-4o-mini", 9.0),
            (
                Some("google"),
                "gemini-2.5-pro",
                Origin::Overlay,
                "gemini/gemini-2.5-pro",
                5.0,
            ),
            (
                Some("my-gateway"),
                "gemini-2.5-pro",
                Origin::Overlay,
                "gemini/gemini-2.5-pro",
                5.0,
            ),
            (
                None,
                "brand-new-model",
                Origin::Overlay,
                "brand-new-model",
                7.0,
            ),
            (
                None,
                "claude-sonnet-4-5",
                Origin::BuiltIn,
                "claude-sonnet-4-5",
                3.0,
            ),
        ];
        for (provider, model, origin, name, input) in cases {
            let r = book.resolve(*provider, model).unwrap();
            assert_eq!(
                (r.origin, r.name.as_str(), r.price.input_per_mtok),
                (*origin, *name, *input),
                "{model}"
            );
            assert_eq!(book.price(*provider, model), Some(r.price), "{model}");
        }
        assert_eq!(book.context_window("gpt-4o"), Some(200_000));
        assert!(book.resolve(None, "no-such-model").is_none());
        // the built-in lookup alone does not see the overlay
        assert_eq!(builtin("brand-new-model"), None);
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
