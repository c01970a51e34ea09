//! Validation of what smartproxy keeps on disk: ledger `retention`, the response `cache` and
//! body `capture` (paths relative to the config file, size caps).

use std::path::Path;
use std::time::Duration;

use super::{Validator, resolve_beside};
use crate::config::raw::RawConfig;

/// A captured body's default size cap: 1 MiB.
const DEFAULT_CAPTURE_BLOB_BYTES: u64 = 1024 * 1024;
/// The capture store's default size cap: 256 MiB.
const DEFAULT_CAPTURE_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

impl Validator<'_> {
    /// `retention.max_age_days`, or `SMARTPROXY_MAX_LOG_AGE_DAYS` / SmolRouter's
    /// `MAX_LOG_AGE_DAYS` over it; 0 keeps everything.
    pub(super) fn retention(
        &mut self,
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<u32> {
        for var in ["SMARTPROXY_MAX_LOG_AGE_DAYS", "MAX_LOG_AGE_DAYS"] {
            if let Some(text) = env(var).filter(|v| !v.trim().is_empty()) {
                return match text.trim().parse::<u32>() {
                    Ok(days) => (days > 0).then_some(days),
                    Err(_) => {
                        self.env_error(var, format!("`{text}` is not a number of days"));
                        None
                    }
                };
            }
        }
        raw.retention.max_age_days.filter(|d| *d > 0)
    }

    /// `loop_breaker`: on unless `enabled: false`; `repeat` from 2 to 100.
    pub(super) fn loop_breaker(&mut self, raw: &RawConfig) -> crate::config::LoopBreakerConfig {
        let l = &raw.loop_breaker;
        let repeat = match l.repeat {
            None => crate::config::DEFAULT_LOOP_REPEAT,
            Some(n @ 2..=100) => usize::try_from(n).unwrap_or(crate::config::DEFAULT_LOOP_REPEAT),
            Some(n) => {
                self.error(
                    "loop_breaker.repeat",
                    format!(
                        "{n} is not a number of repeats from 2 to 100 (turn the breaker off with `enabled: false`)"
                    ),
                );
                crate::config::DEFAULT_LOOP_REPEAT
            }
        };
        if l.tokens_per_minute == Some(0) {
            self.error(
                "loop_breaker.tokens_per_minute",
                "must be more than 0 (leave it out for no ceiling)",
            );
        }
        crate::config::LoopBreakerConfig {
            repeat: l.enabled.unwrap_or(true).then_some(repeat),
            tokens_per_minute: l.tokens_per_minute.filter(|n| *n > 0),
            user_messages: l.user_messages.unwrap_or(false),
        }
    }

    /// An on/off setting: the environment variable `var` when set (an error unless it reads as
    /// true or false), else the config's value, else off.
    fn switch(
        &mut self,
        var: &str,
        env: &dyn Fn(&str) -> Option<String>,
        configured: Option<bool>,
    ) -> bool {
        match env(var).as_deref().map(str::trim) {
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off" | "") => false,
            Some(other) => {
                self.env_error(var, format!("`{other}` is not true or false"));
                false
            }
            None => configured.unwrap_or(false),
        }
    }

    pub(super) fn cache(
        &mut self,
        raw: &RawConfig,
        database: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> crate::config::CacheConfig {
        let enabled = self.switch("SMARTPROXY_CACHE_ENABLED", env, raw.cache.enabled);
        if raw.cache.max_mb == Some(0) {
            self.error("cache.max_mb", "must be more than 0");
        }
        let path = match &raw.cache.path {
            Some(p) => resolve_beside(self.file, p),
            None => database.with_file_name("cache.db"),
        };
        crate::config::CacheConfig {
            enabled,
            ttl: Duration::from_secs(raw.cache.ttl_s.unwrap_or(24 * 3600)),
            max_bytes: raw.cache.max_mb.unwrap_or(256).max(1) * 1024 * 1024,
            encrypt: raw.cache.encrypt.unwrap_or(false),
            path,
        }
    }

    /// `cassette.redact`: every pattern must compile (a typo must not leak what it was meant
    /// to hide).
    pub(super) fn cassette_redact(&mut self, raw: &RawConfig) -> Vec<String> {
        let mut patterns = Vec::new();
        for (i, pattern) in raw.cassette.redact.iter().enumerate() {
            match regex::Regex::new(pattern) {
                Ok(_) => patterns.push(pattern.clone()),
                Err(err) => self.error(
                    "cassette.redact",
                    format!(
                        "pattern {} (`{pattern}`) is not a regular expression: {err}",
                        i + 1
                    ),
                ),
            }
        }
        patterns
    }

    pub(super) fn capture(
        &mut self,
        raw: &RawConfig,
        database: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> crate::config::CaptureConfig {
        let c = &raw.capture;
        let enabled = self.switch("SMARTPROXY_CAPTURE_ENABLED", env, c.enabled);
        let store = match c.store.as_deref().map(str::trim) {
            None | Some("file") => crate::config::CaptureStoreKind::File,
            Some("memory") => crate::config::CaptureStoreKind::Memory,
            Some(other) => {
                self.error(
                    "capture.store",
                    format!(
                        "`{other}` is not a capture store: write `file` (a folder beside the ledger) or `memory` (kept by the running proxy only)"
                    ),
                );
                crate::config::CaptureStoreKind::File
            }
        };
        for (key, value) in [
            ("capture.max_blob_bytes", c.max_blob_bytes),
            ("capture.max_total_bytes", c.max_total_bytes),
        ] {
            if value == Some(0) {
                self.error(
                    key,
                    "must be more than 0 (turn capture off with `enabled: false`)",
                );
            }
        }
        let max_blob_bytes = c
            .max_blob_bytes
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_CAPTURE_BLOB_BYTES);
        let max_total_bytes = c
            .max_total_bytes
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_CAPTURE_TOTAL_BYTES);
        if max_blob_bytes > max_total_bytes {
            self.error(
                "capture.max_blob_bytes",
                format!(
                    "{max_blob_bytes} is more than capture.max_total_bytes ({max_total_bytes}): no body that size could ever be kept"
                ),
            );
        }
        let when_full = match c.when_full.as_deref().map(str::trim) {
            None | Some("refuse") => crate::config::WhenFull::Refuse,
            Some("drop_oldest") => crate::config::WhenFull::DropOldest,
            Some(other) => {
                self.error(
                    "capture.when_full",
                    format!(
                        "`{other}` is not a choice: write `refuse` (keep the oldest bodies, refuse new ones) or `drop_oldest` (delete the oldest requests' bodies to make room)"
                    ),
                );
                crate::config::WhenFull::Refuse
            }
        };
        let path = match &c.path {
            Some(p) => resolve_beside(self.file, p),
            None => database.with_file_name("captures"),
        };
        crate::config::CaptureConfig {
            enabled,
            store,
            path,
            max_blob_bytes,
            max_total_bytes,
            when_full,
        }
    }
}
