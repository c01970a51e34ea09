//! How a model name finds its row: exact, provider-prefixed, without a date suffix, without
//! leading `segment/`s, then by bare name (the maker's own price when several sell it).

use std::collections::HashMap;

use super::entry::PriceEntry;
use super::overlay::{Overlay, OverlayEntry};
use super::price::Price;
use super::search::{exact, exact_prefixed};
use super::table;

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

/// A row the lookup found: a built-in entry or an overlay's.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row<'a> {
    Builtin(&'static PriceEntry),
    Overlay(&'a OverlayEntry),
}

impl<'a> Row<'a> {
    pub(super) fn name(self) -> &'a str {
        match self {
            Self::Builtin(e) => e.name,
            Self::Overlay(e) => &e.name,
        }
    }
    pub(super) fn provider(self) -> &'a str {
        match self {
            Self::Builtin(e) => e.provider,
            Self::Overlay(e) => &e.provider,
        }
    }
    pub(super) fn price(self) -> Price {
        match self {
            Self::Builtin(e) => e.price(),
            Self::Overlay(e) => e.price,
        }
    }
    pub(super) fn context_window(self) -> Option<u32> {
        match self {
            Self::Builtin(e) => e.context_window,
            Self::Overlay(e) => e.context_window,
        }
    }
    pub(super) fn max_output(self) -> Option<u32> {
        match self {
            Self::Builtin(e) => e.max_output,
            Self::Overlay(e) => e.max_output,
        }
    }
    pub(super) fn origin(self) -> Origin {
        match self {
            Self::Builtin(_) => Origin::BuiltIn,
            Self::Overlay(_) => Origin::Overlay,
        }
    }
}

/// The overlay (if any) over the built-in table, seen as one table: an overlay row replaces
/// the built-in row of the same name, so the lookup rules work the same on both.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tables<'a> {
    pub(super) overlay: Option<&'a Overlay>,
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
pub(super) fn resolve<'a>(
    tables: Tables<'a>,
    provider: Option<&str>,
    model: &str,
) -> Option<Row<'a>> {
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

/// is listed by several providers, the maker's price is the list price.
/// LiteLLM providers that make the models they list under their own prefix: when a model name
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
pub(super) fn strip_date_suffix(name: &str) -> Option<&str> {
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
