//! A price overlay: a newer LiteLLM price file the user installed with `smartproxy prices
//! update`, kept in the data dir and looked up before the built-in table (config `pricing:`
//! overrides still win). Stored trimmed, in the shape of `model_prices.json`, and converted
//! again when loaded, so a file edited by hand is checked like a downloaded one.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::litellm::{self, Converted, Outcome};
use super::price::Price;
use super::search::{self, cmp_prefixed};

/// One model of an overlay.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayEntry {
    pub name: String,
    /// LiteLLM provider name (`openai`, `together_ai`...), empty when the file gave none.
    pub provider: String,
    pub price: Price,
    pub context_window: Option<u32>,
    pub max_output: Option<u32>,
}

/// An installed (or about to be installed) overlay.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Where its prices came from: the file or URL given to `prices update`.
    pub origin: String,
    /// When it was installed, RFC 3339 UTC; empty until stored (the clock is the caller's).
    pub installed: String,
    /// Sorted by name in byte order, like the built-in table, for the same binary searches.
    entries: Vec<OverlayEntry>,
    /// Entry indexes by their name without the leading `{litellm-provider}/`.
    by_bare_name: HashMap<String, Vec<usize>>,
    /// The trimmed LiteLLM fields of each entry, which is what is stored.
    trimmed: Map<String, Value>,
    /// Entries of the input that the proxy does not price (not chat or completion models, or
    /// without input and output prices).
    pub skipped: usize,
    /// Models left out for their several long-context thresholds (see [`Outcome`]).
    pub several_thresholds: Vec<String>,
}

/// Counts of an overlay's models against the built-in table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Models the built-in table does not have.
    pub added: usize,
    /// Models whose prices or context window differ from the built-in ones.
    pub changed: usize,
    pub unchanged: usize,
}

/// Why a price file cannot be used. Every message names the file (or URL).
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: {problem}")]
    Shape { path: String, problem: String },
    #[error("{path}: model {model:?}, key {key:?}: {problem}")]
    Entry {
        path: String,
        model: String,
        key: String,
        problem: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

fn parse(text: &str, origin: &str) -> Result<Value, OverlayError> {
    serde_json::from_str(text).map_err(|source| OverlayError::Json {
        path: origin.to_owned(),
        source,
    })
}

/// LiteLLM's documentation entry at the top of its file, not a model.
const SAMPLE_SPEC: &str = "sample_spec";

impl Overlay {
    /// Parses a LiteLLM price file (`{model: {...}}`) or one in the shape of
    /// `model_prices.json` (`{"models": {model: {...}}}`); `origin` names it in errors.
    pub fn from_litellm(text: &str, origin: &str) -> Result<Self, OverlayError> {
        Self::from_value(&parse(text, origin)?, origin)
    }

    fn from_value(root: &Value, origin: &str) -> Result<Self, OverlayError> {
        let shape = |problem: &str| OverlayError::Shape {
            path: origin.to_owned(),
            problem: problem.to_owned(),
        };
        let Value::Object(root) = root else {
            return Err(shape(
                "expected a JSON object of models (LiteLLM's model_prices_and_context_window.json)",
            ));
        };
        let models = match root.get("models") {
            Some(Value::Object(models)) => models,
            Some(_) => return Err(shape("\"models\" is not an object of models")),
            None => root,
        };
        let mut overlay = Overlay {
            origin: origin.to_owned(),
            ..Overlay::default()
        };
        for (name, fields) in models {
            if name == SAMPLE_SPEC || name.starts_with('_') {
                continue;
            }
            let entry_error = |key: &str, problem: String| OverlayError::Entry {
                path: origin.to_owned(),
                model: name.clone(),
                key: key.to_owned(),
                problem,
            };
            let Value::Object(fields) = fields else {
                return Err(entry_error(
                    "",
                    format!("expected an object of prices, got {fields}"),
                ));
            };
            let trimmed = litellm::trim(fields);
            match litellm::convert(&trimmed) {
                Err(e) => return Err(entry_error(&e.key, e.problem)),
                Ok(Outcome::NotPriced) => overlay.skipped += 1,
                Ok(Outcome::SeveralThresholds) => overlay.several_thresholds.push(name.clone()),
                Ok(Outcome::Priced(c)) => overlay.push(name.trim(), *c, trimmed),
            }
        }
        if overlay.entries.is_empty() {
            return Err(shape(
                "no chat or completion model with an input and an output price in it",
            ));
        }
        overlay.index();
        Ok(overlay)
    }

    fn push(&mut self, name: &str, c: Converted, trimmed: Map<String, Value>) {
        self.entries.push(OverlayEntry {
            name: name.to_owned(),
            provider: c.provider,
            price: c.price,
            context_window: c.context_window,
            max_output: c.max_output,
        });
        self.trimmed.insert(name.to_owned(), Value::Object(trimmed));
    }

    fn index(&mut self) {
        self.entries
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        self.entries.dedup_by(|a, b| a.name == b.name);
        self.trimmed.sort_keys();
        self.by_bare_name.clear();
        for (i, entry) in self.entries.iter().enumerate() {
            if let Some((_, rest)) = entry.name.split_once('/') {
                self.by_bare_name
                    .entry(rest.to_owned())
                    .or_default()
                    .push(i);
            }
        }
    }

    /// The overlay's models, sorted by name.
    pub fn entries(&self) -> &[OverlayEntry] {
        &self.entries
    }

    pub(super) fn exact(&self, name: &str) -> Option<&OverlayEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    pub(super) fn exact_prefixed(&self, prefix: &str, name: &str) -> Option<&OverlayEntry> {
        self.entries
            .binary_search_by(|e| {
                cmp_prefixed(e.name.as_bytes(), prefix.as_bytes(), name.as_bytes())
            })
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// Entries named `{provider}/{bare}`.
    pub(super) fn named<'a>(&'a self, bare: &str) -> impl Iterator<Item = &'a OverlayEntry> {
        self.by_bare_name
            .get(bare)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.entries.get(i))
    }

    /// How the overlay differs from the built-in table, by model name.
    pub fn compared_to_builtin(&self) -> Comparison {
        let mut c = Comparison::default();
        for entry in &self.entries {
            match search::exact(&entry.name) {
                None => c.added += 1,
                Some(b) if b.price() != entry.price || b.context_window != entry.context_window => {
                    c.changed += 1;
                }
                Some(_) => c.unchanged += 1,
            }
        }
        c
    }

    /// An overlay from the text [`Self::stored_json`] wrote; `shown` names the file in errors.
    /// (Reading and writing the file is `config::price_overlay`'s: this module is pure.)
    pub fn from_stored(text: &str, shown: &str) -> Result<Self, OverlayError> {
        let root = parse(text, shown)?;
        let mut overlay = Self::from_value(&root, shown)?;
        let field = |key: &str| root.get(key).and_then(Value::as_str).map(str::to_owned);
        overlay.origin = field("_source").unwrap_or_else(|| shown.to_owned());
        overlay.installed = field("_installed").unwrap_or_default();
        Ok(overlay)
    }

    /// The text stored in the data dir, installed at `now` (RFC 3339) unless it already says
    /// when.
    pub fn stored_json(&self, now: &str) -> String {
        let installed = if self.installed.is_empty() {
            now
        } else {
            &self.installed
        };
        let value = json!({
            "_source": self.origin,
            "_installed": installed,
            "models": self.trimmed,
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{
        "sample_spec": {"max_input_tokens": "max input tokens, if the provider specifies it"},
        "my-new-model": {"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6, "max_input_tokens": 64000},
        "openai/dall-e-9": {"litellm_provider": "openai", "mode": "image_generation"}
    }"#;

    #[test]
    fn parses_and_reads_back_what_it_stores() {
        let overlay = Overlay::from_litellm(SMALL, "prices.json").unwrap();
        assert_eq!(overlay.entries().len(), 1);
        assert_eq!(overlay.skipped, 1);
        let entry = overlay.exact("my-new-model").unwrap();
        assert_eq!(entry.price.input_per_mtok, 1.0);
        assert_eq!(entry.price.output_per_mtok, 4.0);
        assert_eq!(entry.context_window, Some(64_000));
        assert_eq!(
            overlay.compared_to_builtin(),
            Comparison {
                added: 1,
                changed: 0,
                unchanged: 0
            }
        );

        let stored = overlay.stored_json("2026-01-02T03:04:05Z");
        let loaded = Overlay::from_stored(&stored, "overlay.json").unwrap();
        assert_eq!(loaded.entries(), overlay.entries());
        assert_eq!(loaded.origin, "prices.json");
        assert_eq!(loaded.installed, "2026-01-02T03:04:05Z");
        assert_eq!(
            loaded.stored_json("later"),
            stored,
            "a stored overlay keeps its date"
        );
    }

    #[test]
    fn errors_name_the_file_model_and_key() {
        let cases = [
            ("[1, 2]", "prices.json: expected a JSON object"),
            ("{\"a\": ", "prices.json is not valid JSON"),
            (
                r#"{"m": {"input_cost_per_token": "1e-6", "output_cost_per_token": 1e-6}}"#,
                "prices.json: model \"m\", key \"input_cost_per_token\": expected a number",
            ),
            (r#"{"m": 3}"#, "prices.json: model \"m\""),
            (
                r#"{"m": {"mode": "embedding"}}"#,
                "prices.json: no chat or completion model",
            ),
        ];
        for (text, want) in cases {
            let err = Overlay::from_litellm(text, "prices.json")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }
}
