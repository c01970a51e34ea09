//! `smartproxy cache stats` and `cache clear`, and opening the cache for the commands that
//! serve requests.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::format;
use crate::cache::{CacheCipher, CacheHandle, CacheSettings, CacheStore};
use crate::config::Config;
use crate::printer;

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Entries, size, hits and what the hits saved.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete entries: all of them, or one model's.
    Clear {
        /// Only this model's entries.
        #[arg(long, value_name = "MODEL")]
        model: Option<String>,
    },
}

fn settings(config: &Config) -> anyhow::Result<CacheSettings> {
    let cipher = if config.cache.encrypt {
        Some(CacheCipher::from_env().context("cache.encrypt is on in the config")?)
    } else {
        None
    };
    Ok(CacheSettings {
        path: config.cache.path.clone(),
        ttl: config.cache.ttl,
        max_bytes: config.cache.max_bytes,
        cipher,
    })
}

/// The cache for a serving command, when `cache.enabled`; a missing or weak key stops start-up.
pub(crate) fn open_for_serving(config: &Config) -> anyhow::Result<Option<CacheHandle>> {
    if !config.cache.enabled {
        return Ok(None);
    }
    let handle = CacheHandle::open(settings(config)?).context("cannot open the response cache")?;
    Ok(Some(handle))
}

pub fn cache(cmd: &CacheCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let mut settings = settings(&config).or_else(|err| {
        // Stats and clear work without the key: they never read a payload.
        printer::warn(&format!("{err:#}; entries stay sealed"));
        settings_without_key(&config)
    })?;
    if !config.cache.path.exists() {
        printer::out(&format!("no cache at {} yet", config.cache.path.display()));
        return Ok(0);
    }
    settings.ttl = config.cache.ttl;
    let store = CacheStore::open(settings)?;
    let now = crate::ledger::now_ms();
    match cmd {
        CacheCommand::Stats { json } => {
            let stats = store.stats(now)?;
            if *json {
                printer::out(
                    &json!({"path": stats.path.display().to_string(), "entries": stats.entries, "bytes": stats.bytes,
                        "expired_entries": stats.expired_entries, "hits": stats.hits, "saved_usd": stats.saved_usd,
                        "encrypted_entries": stats.encrypted_entries})
                    .to_string(),
                );
            } else {
                printer::out(&format!(
                    "cache {}\n  entries: {} ({} expired), {} bytes\n  hits:    {}, saving {}\n  encrypted entries: {}",
                    stats.path.display(),
                    format::count(stats.entries),
                    format::count(stats.expired_entries),
                    format::count(stats.bytes),
                    format::count(stats.hits),
                    format::money(Some(stats.saved_usd)),
                    format::count(stats.encrypted_entries),
                ));
            }
        }
        CacheCommand::Clear { model } => {
            let removed = store.clear(model.as_deref())?;
            printer::out(&format!(
                "removed {removed} cache entr{}",
                if removed == 1 { "y" } else { "ies" }
            ));
        }
    }
    Ok(0)
}

fn settings_without_key(config: &Config) -> anyhow::Result<CacheSettings> {
    Ok(CacheSettings {
        path: config.cache.path.clone(),
        ttl: config.cache.ttl,
        max_bytes: config.cache.max_bytes,
        cipher: None,
    })
}
