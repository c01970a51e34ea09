//! What the subcommands that serve a proxy (`run`, `daemon`, `request`) set up alike: the
//! stores a config enables and the random ids and keys of a session.

use std::sync::Arc;

use rand::RngCore;

use crate::cache::CacheHandle;
use crate::capture::CaptureHandle;
use crate::config::Config;

/// The response cache and body capture, each opened when the config enables it.
pub(super) fn open_stores(
    config: &Config,
) -> anyhow::Result<(Option<CacheHandle>, Option<Arc<CaptureHandle>>)> {
    let cache = super::cache_cmd::open_for_serving(config)?;
    let capture = super::capture_cmd::open_for_serving(config)?;
    Ok((cache, capture))
}

/// `bytes` random bytes in hex: session ids and keys.
pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Team mode's first step keeps no budgets in PostgreSQL (shared budgets there come later):
/// a process that would enforce one refuses to start rather than enforce it on nothing.
/// `session_usd` is `run`'s own limit (`--budget` or `budget.session_usd`).
pub(super) fn refuse_team_budgets(config: &Config, session_usd: Option<f64>) -> anyhow::Result<()> {
    let mut limits = config.shared_budget_limits();
    if session_usd.is_some() {
        limits.insert(
            0,
            "a session budget (--budget, budget.session_usd)".to_owned(),
        );
    }
    anyhow::ensure!(
        limits.is_empty(),
        "budgets are not kept in a PostgreSQL ledger yet ({} {}): remove the limit or use a SQLite \
         ledger until shared budgets land",
        config.database,
        limits.join(", ")
    );
    Ok(())
}
