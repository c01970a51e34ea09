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

mod book;
mod entry;
pub mod hours;
mod litellm;
mod lookup;
mod overlay;
mod price;
mod search;
mod table;
mod version;

pub use book::{Bill, PriceBook, Resolved};
pub use entry::{
    CAP_PROMPT_CACHING, CAP_REASONING, CAP_TOOLS, CAP_VISION, Extra, NO_RANGES, OffPeak,
    PriceEntry, Range, Rates,
};

pub use hours::{Hours, Window};
pub use lookup::{Origin, builtin, entries, litellm_prefix, lookup};
pub use overlay::{Comparison, Overlay, OverlayEntry, OverlayError};
pub use price::{
    MAX_RANGES, OffPeakPrice, Period, Price, RangePrice, ServiceTier, ServiceTierPrice, TierPrice,
    TokenCounts, UsageDetail,
};
pub use version::{TABLE_DATE, TABLE_SOURCE, TABLE_VERSION, table_label};

#[cfg(test)]
mod tests;
