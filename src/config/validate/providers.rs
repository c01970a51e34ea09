//! Validation of the `providers` part of the config: each entry, its TLS bundle, the mock
//! provider's script.

use std::time::Duration;

use super::{Validator, resolve_beside};
use crate::config::raw::{RawConfig, RawProvider};
use crate::config::{
    MockConfig, MockReply, ModelPattern, ProviderConfig, ProviderKind, Secret, Timeouts,
};

const KNOWN_CAPABILITIES: &[&str] = &["tools", "vision", "json"];

impl Validator<'_> {
    pub(super) fn provider(
        &mut self,
        i: usize,
        raw: RawProvider,
        earlier: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<ProviderConfig> {
        let at = |key: &str| format!("providers[{i}].{key}");
        let before = self.errors.len();
        let name = raw.name.trim().to_owned();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            self.error(
                &at("name"),
                "a provider name is letters, digits, `-`, `_` or `.`, e.g. `openai`",
            );
        } else if earlier.iter().any(|p| p.as_str() == name) {
            self.error(
                &at("name"),
                format!("another provider is already named `{name}`"),
            );
        }
        let kind = match raw.kind.as_str() {
            "openai" => Some(ProviderKind::OpenAi),
            "mock" => Some(ProviderKind::Mock),
            "anthropic" => Some(ProviderKind::Anthropic),
            "ollama" => Some(ProviderKind::Ollama),
            other => {
                self.error(
                    &at("kind"),
                    format!("unknown kind `{other}`; expected `openai` or `mock`"),
                );
                None
            }
        };
        let base_url = raw
            .base_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/').to_owned());
        let base_url = match (kind, base_url) {
            (Some(ProviderKind::Mock) | None, url) => url.unwrap_or_default(),
            (Some(ProviderKind::Anthropic), None) => "https://api.anthropic.com".to_owned(),
            (Some(ProviderKind::Ollama), None) => "http://127.0.0.1:11434".to_owned(),
            (_, None) => {
                self.error(
                    &at("kind"),
                    "an `openai` provider needs `base_url`, e.g. https://api.openai.com/v1",
                );
                String::new()
            }
            (_, Some(url)) => {
                let shown = crate::format::redact_url(&url);
                match reqwest::Url::parse(&url) {
                    Ok(parsed) if url.starts_with("http://") || url.starts_with("https://") => {
                        // The API's path goes after the base URL: `?key=...` would end up in
                        // the middle of it. Keys belong in `api_key_env`.
                        if parsed.query().is_some() || parsed.fragment().is_some() {
                            self.error(
                                &at("base_url"),
                                format!(
                                    "`{shown}` has a query string or fragment: smartproxy appends the API path \
                                     (`/chat/completions`...) to base_url, so give the address alone and the key \
                                     in `api_key_env`"
                                ),
                            );
                        }
                    }
                    _ => self.error(
                        &at("base_url"),
                        format!("`{shown}` is not an http:// or https:// URL"),
                    ),
                }
                url
            }
        };
        let kind = kind.unwrap_or(ProviderKind::OpenAi);
        if raw.responses_api.is_some() && kind != ProviderKind::OpenAi {
            self.error(
                &at("responses_api"),
                "applies to `openai` providers only (others always get Responses API requests \
                 translated to their own format)",
            );
        }
        if let Some(var) = &raw.api_key_env
            && (var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            self.error(
                &at("api_key_env"),
                "name the environment variable that holds the key, e.g. OPENAI_API_KEY",
            );
        }
        let api_key = raw
            .api_key_env
            .as_deref()
            .and_then(env)
            .filter(|k| !k.trim().is_empty())
            .map(|k| Secret::new(k.trim().to_owned()));
        for (j, model) in raw.models.iter().enumerate() {
            if model.trim().is_empty() {
                self.error(
                    &format!("providers[{i}].models[{j}]"),
                    "a model name must not be empty",
                );
            }
        }
        let models = if raw.models.is_empty() && kind == ProviderKind::Mock {
            vec![ModelPattern::Prefix(String::new())]
        } else {
            raw.models
                .iter()
                .map(|m| ModelPattern::parse(m.trim()))
                .collect()
        };
        for cap in &raw.capabilities {
            if !KNOWN_CAPABILITIES.contains(&cap.as_str()) {
                self.error(
                    &at("capabilities"),
                    format!(
                        "unknown capability `{cap}`; known: {}",
                        KNOWN_CAPABILITIES.join(", ")
                    ),
                );
            }
        }
        let defaults = Timeouts::default();
        let mut timeout = |key: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => {
                self.error(
                    &at(&format!("timeouts.{key}")),
                    "must be more than 0 milliseconds",
                );
                default
            }
            Some(ms) => Duration::from_millis(ms),
            None => default,
        };
        let timeouts = Timeouts {
            connect: timeout("connect_ms", raw.timeouts.connect_ms, defaults.connect),
            first_byte: timeout(
                "first_byte_ms",
                raw.timeouts.first_byte_ms,
                defaults.first_byte,
            ),
            idle: timeout("idle_ms", raw.timeouts.idle_ms, defaults.idle),
        };
        let ca_bundle = raw
            .tls
            .ca_file
            .as_deref()
            .and_then(|file| self.ca_bundle(&at("tls.ca_file"), file, &base_url));
        if self.errors.len() > before {
            return None;
        }
        Some(ProviderConfig {
            name,
            kind,
            base_url,
            api_key_env: raw.api_key_env,
            api_key,
            models,
            context_window: raw.context_window,
            capabilities: raw.capabilities,
            timeouts,
            enabled: raw.enabled.unwrap_or(true),
            default_max_tokens: raw
                .default_max_tokens
                .unwrap_or(crate::config::DEFAULT_MAX_TOKENS),
            ca_bundle,
            responses_api: kind == ProviderKind::OpenAi && raw.responses_api.unwrap_or(true),
        })
    }

    /// Reads and checks a provider's `tls.ca_file` (relative to the config file's folder).
    pub(super) fn ca_bundle(
        &mut self,
        key: &str,
        file: &str,
        base_url: &str,
    ) -> Option<crate::config::CaBundle> {
        if !base_url.starts_with("https://") {
            self.error(
                key,
                format!("only applies to https:// base URLs, and `{base_url}` is not one"),
            );
            return None;
        }
        let path = resolve_beside(self.file, file.trim());
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) => {
                self.error(key, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        match crate::config::tls::ca_certificates(&pem) {
            Ok(_) => Some(crate::config::CaBundle {
                path,
                pem: pem.into(),
            }),
            Err(problem) => {
                self.error(key, format!("{}: {problem}", path.display()));
                None
            }
        }
    }

    pub(super) fn mock(&mut self, raw: &RawConfig) -> MockConfig {
        let mut script = Vec::new();
        if let Some(reply) = &raw.mock.reply {
            script.push(MockReply::Text(reply.clone()));
        }
        if let Some(path) = &raw.mock.script {
            let path = resolve_beside(self.file, path);
            match std::fs::read_to_string(&path) {
                Ok(text) => match serde_yaml_ng::from_str::<Vec<MockReply>>(&text) {
                    Ok(replies) if replies.is_empty() => self.error("mock.script", format!("{} holds no replies", path.display())),
                    Ok(replies) => script.extend(replies),
                    Err(e) => self.error(
                        "mock.script",
                        format!("{}: {e}; expected a list of replies (strings or {{content, status, message}})", path.display()),
                    ),
                },
                Err(e) => self.error("mock.script", format!("cannot read {}: {e}", path.display())),
            }
        }
        MockConfig {
            latency: Duration::from_millis(raw.mock.latency_ms.unwrap_or(0)),
            chunk_delay: Duration::from_millis(raw.mock.chunk_delay_ms.unwrap_or(0)),
            script,
        }
    }
}
