//! The config file exactly as users write it: serde shapes with unknown keys refused, so a typo is
//! an error with its line instead of a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ledger::pricing::Price;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address of the daemon's public listener.
    pub listen: Option<String>,
    /// Path of the SQLite ledger.
    pub database: Option<String>,
    pub log_level: Option<String>,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Provider that takes models no provider lists.
    pub default_provider: Option<String>,
    #[serde(default)]
    pub budget: RawBudget,
    #[serde(default)]
    pub pricing: BTreeMap<String, Price>,
    #[serde(default)]
    pub mock: RawMock,
    #[serde(default)]
    pub limits: RawLimits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    pub context_window: Option<u32>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub session_usd: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMock {
    pub latency_ms: Option<u64>,
    pub chunk_delay_ms: Option<u64>,
    pub script: Option<String>,
    pub reply: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_body_bytes: Option<usize>,
}
