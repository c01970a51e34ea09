//! Binary searches over a table sorted by name in byte order: the built-in table (and its
//! embedding models) here, the overlay with the same comparison (`cmp_prefixed`).

use super::entry::PriceEntry;
use super::table;

pub(super) fn exact(name: &str) -> Option<&'static PriceEntry> {
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
pub(super) fn exact_prefixed(prefix: &str, name: &str) -> Option<&'static PriceEntry> {
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
pub(super) fn cmp_prefixed(entry: &[u8], prefix: &[u8], name: &[u8]) -> std::cmp::Ordering {
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
