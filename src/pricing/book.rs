//! The price book a proxy holds: config overrides, then an installed overlay, then the
//! built-in table; what a request cost and where its price came from.

use std::collections::HashMap;
use std::sync::Arc;

use super::lookup::{Origin, Tables, resolve, strip_date_suffix};
use super::overlay::Overlay;
use super::price::{Period, Price, TokenCounts, UsageDetail};

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
