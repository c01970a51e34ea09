//! The providers that exist with no config file: one per well-known key variable set in the
//! environment.

use crate::config::{ModelPattern, ProviderConfig, ProviderKind, Secret, Timeouts};

/// Key variables of the providers smartproxy knows without a config file.
pub(in crate::config) const WELL_KNOWN_KEY_VARS: &[&str] =
    &["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"];

/// The providers that exist with no config file: one per well-known key found in the environment.
pub(super) fn zero_config_providers(env: &dyn Fn(&str) -> Option<String>) -> Vec<ProviderConfig> {
    // (name, kind, key variable, base URL variable, default base URL, models)
    type Known = (
        &'static str,
        ProviderKind,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );
    let known: [Known; 3] = [
        (
            "openai",
            ProviderKind::OpenAi,
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "https://api.openai.com/v1",
            &[
                "gpt-*",
                "o1*",
                "o3*",
                "o4*",
                "chatgpt-*",
                "codex-*",
                "computer-use-*",
            ],
        ),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "https://api.anthropic.com",
            &["claude-*"],
        ),
        (
            "deepseek",
            ProviderKind::OpenAi,
            "DEEPSEEK_API_KEY",
            "DEEPSEEK_BASE_URL",
            "https://api.deepseek.com/v1",
            &["deepseek-*"],
        ),
    ];
    known
        .iter()
        .filter_map(|(name, kind, key_var, url_var, url, models)| {
            let key = env(key_var).filter(|k| !k.trim().is_empty())?;
            // The base URL variable lets a provider point at a compatible gateway (or, for a
            // `run` inside a `run`, at the outer session's proxy).
            let base_url = env(url_var).filter(|u| !u.trim().is_empty()).map_or_else(
                || (*url).to_owned(),
                |u| u.trim().trim_end_matches('/').to_owned(),
            );
            Some(ProviderConfig {
                name: (*name).to_owned(),
                kind: *kind,
                base_url,
                api_key_env: Some((*key_var).to_owned()),
                api_key: Some(Secret::new(key.trim().to_owned())),
                models: models.iter().map(|m| ModelPattern::parse(m)).collect(),
                context_window: None,
                capabilities: vec!["tools".to_owned(), "vision".to_owned(), "json".to_owned()],
                timeouts: Timeouts::default(),
                ca_bundle: None,
                enabled: true,
                default_max_tokens: crate::config::DEFAULT_MAX_TOKENS,
                // Of the providers found by key, only OpenAI's own serves the Responses API.
                responses_api: *name == "openai",
            })
        })
        .collect()
}
