//! Which price table is built in: printed by `prices show` and `doctor` so that a bill can be
//! checked against the same table elsewhere.

/// Where `model_prices.json` (and so `table.rs`) was trimmed from.
pub const TABLE_SOURCE: &str = "LiteLLM";

/// The litellm release on PyPI whose `model_prices_and_context_window_backup.json` it is.
pub const TABLE_VERSION: &str = "1.109.1";

/// The release date of [`TABLE_VERSION`], when known. `None`: the wheel carries no date (its
/// files are stamped 1980-01-01 for reproducible builds) and pip's index reply used to fetch it
/// does not say, so rather than guess, the date is printed as unknown.
pub const TABLE_DATE: Option<&str> = None;

/// `LiteLLM 1.109.1 (released YYYY-MM-DD)` or `... (release date unknown)`.
pub fn table_label() -> String {
    match TABLE_DATE {
        Some(date) => format!("{TABLE_SOURCE} {TABLE_VERSION} (released {date})"),
        None => format!("{TABLE_SOURCE} {TABLE_VERSION} (release date unknown)"),
    }
}
