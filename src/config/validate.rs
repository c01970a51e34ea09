//! Turns the raw file into a `Config`: finds the file, parses it, checks every value, applies the
//! environment overrides and the zero-config providers. Errors carry file, line and key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::{RawConfig, RawProvider, RawUnpriced};
use super::{
    BudgetConfig, Config, ConfigError, MockConfig, MockReply, ModelPattern, ProviderConfig,
    ProviderKind, Secret, Timeouts, locate, paths,
};

/// Key variables of the providers smartproxy knows without a config file.
pub(super) const WELL_KNOWN_KEY_VARS: &[&str] =
    &["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY"];

const DEFAULT_LISTEN: &str = "127.0.0.1:4100";
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Generous: the largest real replies (long completions with logprobs, big embeddings batches)
/// are a few MiB.
const DEFAULT_MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
const KNOWN_CAPABILITIES: &[&str] = &["tools", "vision", "json"];

/// Every problem found in one config, shown together so one edit can fix them all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

/// Finds and loads the config: `explicit` when given, else the first discovered file, else the
/// zero-config defaults. `env` looks up environment variables (injected for tests).
pub fn load(
    explicit: Option<&Path>,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    // SmolRouter's ROUTES_CONFIG names its routes file; it counts as an explicit choice.
    let routes_config = env("ROUTES_CONFIG")
        .filter(|p| !p.trim().is_empty())
        .map(|p| cwd.join(p));
    let path = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => routes_config.or_else(|| {
            paths::config_candidates(cwd)
                .into_iter()
                .find(|p| p.is_file())
        }),
    };
    let Some(path) = path else {
        return from_yaml("", None, env);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: Some(path.clone()),
            line: None,
            key: None,
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    from_yaml(&text, Some(&path), env)
}

/// Parses and validates config text. `file` is used in messages and to resolve relative paths.
pub fn from_yaml(
    text: &str,
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let raw = parse(text, file).map_err(|e| ConfigErrors(vec![e]))?;
    let mut v = Validator {
        text,
        file,
        errors: Vec::new(),
    };
    let config = v.config(raw, env);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(v.errors))
    }
}

fn parse(text: &str, file: Option<&Path>) -> Result<RawConfig, ConfigError> {
    let has_content = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    });
    if !has_content {
        return Ok(RawConfig::default());
    }
    serde_yaml_ng::from_str(text).map_err(|err| {
        let line = err.location().map(|l| l.line());
        let full = err.to_string();
        // serde_yaml_ng says "path.to.key: message at line L column C"; split those parts out.
        let without_location = match full.rfind(" at line ") {
            Some(i) => &full[..i],
            None => &full,
        };
        let (key, message) = match without_location.split_once(": ") {
            Some((key, rest)) if !key.contains(' ') => (Some(key.to_owned()), rest.to_owned()),
            _ => (None, without_location.to_owned()),
        };
        ConfigError {
            file: file.map(Path::to_path_buf),
            line,
            key,
            message,
        }
    })
}

pub(super) struct Validator<'a> {
    text: &'a str,
    file: Option<&'a Path>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.map(Path::to_path_buf),
            line: locate::line_of(self.text, key),
            key: Some(key.to_owned()),
            message: message.into(),
        });
    }

    pub(super) fn env_error(&mut self, var: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: None,
            line: None,
            key: Some(var.to_owned()),
            message: format!("(environment variable) {}", message.into()),
        });
    }

    fn config(&mut self, mut raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Config {
        let listen_text = match env("SMARTPROXY_LISTEN") {
            Some(value) => (value, Some("SMARTPROXY_LISTEN")),
            None => (
                raw.listen
                    .clone()
                    .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
                None,
            ),
        };
        let listen = match listen_text.0.trim().parse() {
            Ok(addr) => addr,
            Err(_) => {
                let message = format!(
                    "`{}` is not a socket address; write it as IP:PORT, e.g. {DEFAULT_LISTEN}",
                    listen_text.0
                );
                match listen_text.1 {
                    Some(var) => self.env_error(var, message),
                    None => self.error("listen", message),
                }
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 4100)))
            }
        };

        let database = env("SMARTPROXY_DB")
            .filter(|v| !v.trim().is_empty())
            .or(raw.database.clone())
            .map_or_else(paths::default_database, |p| paths::expand_home(&p));
        let log_level = env("SMARTPROXY_LOG_LEVEL").or(raw.log_level.clone());

        let mut providers: Vec<ProviderConfig> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for (i, p) in std::mem::take(&mut raw.providers).into_iter().enumerate() {
            let name = p.name.trim().to_owned();
            if let Some(provider) = self.provider(i, p, &names, env) {
                providers.push(provider);
            }
            names.push(name);
        }
        if providers.is_empty() && self.errors.is_empty() {
            providers = zero_config_providers(env);
        }
        let routing = self.routing(&mut raw, &mut providers, env);

        let default_provider = match &raw.default_provider {
            Some(name) => {
                let found = providers.iter().position(|p| &p.name == name);
                if found.is_none() {
                    self.error("default_provider", format!("no provider is named `{name}`"));
                }
                found
            }
            None => routing
                .default_upstream
                .or((!providers.is_empty()).then_some(0)),
        };

        let budget = self.budget(&raw, env);
        for (model, price) in &raw.pricing {
            if price
                .all_prices()
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
            {
                self.error(
                    &format!("pricing.{model}"),
                    "prices must be zero or more (USD per million tokens; web_search_per_call in USD)",
                );
            }
        }
        if let super::Unpriced::PriceAs(model) = &budget.unpriced
            && !raw.pricing.contains_key(model)
            && crate::pricing::lookup(None, model).is_none()
        {
            self.error(
                "budget.unpriced.price_as",
                format!("`{model}` has no known price either: name a priced model, or give it one under `pricing:`"),
            );
        }
        let mock = self.mock(&raw);
        let max_body_bytes = match raw.limits.max_body_bytes {
            Some(0) => {
                self.error("limits.max_body_bytes", "must be more than 0");
                DEFAULT_MAX_BODY_BYTES
            }
            Some(n) => n,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let max_reply_bytes = match raw.limits.max_reply_bytes {
            Some(0) => {
                self.error("limits.max_reply_bytes", "must be more than 0");
                DEFAULT_MAX_REPLY_BYTES
            }
            Some(n) => n,
            None => DEFAULT_MAX_REPLY_BYTES,
        };
        let clients = self.client_limits(&raw);

        let cache = self.cache(&raw, &database, env);
        let retention_days = self.retention(&raw, env);
        let capture = self.capture(&raw, &database, env);
        let client_keys = self.client_keys(&raw, env);
        let resilience = self.resilience(&raw);
        let transforms = self.transforms(&raw, env);
        let presets = self.presets(&raw);
        let passthrough = self.passthrough(&raw);
        let webui_security = self.webui_security(&raw);
        let browsers = self.browsers(&raw);
        let mut config = Config {
            source: self.file.map(Path::to_path_buf),
            listen,
            database,
            log_level,
            providers,
            default_provider,
            budget,
            pricing: raw.pricing.into_iter().collect::<HashMap<_, _>>(),
            mock,
            max_body_bytes,
            max_reply_bytes,
            clients,
            model_map: routing.model_map,
            aliases: routing.aliases,
            routes: routing.routes,
            resilience,
            cache,
            retention_days,
            capture,
            client_keys,
            response_headers: raw.observability.response_headers.unwrap_or(true),
            transforms,
            ollama_keyless: raw.ollama.keyless.unwrap_or(false),
            presets,
            passthrough: false,
            webui_security,
            browsers,
        };
        if passthrough {
            config.enable_passthrough();
        }
        config
    }

    /// `limits:`' timeouts and cap on open connections, each more than 0.
    fn client_limits(&mut self, raw: &RawConfig) -> super::ClientLimits {
        let defaults = super::ClientLimits::default();
        let limits = &raw.limits;
        let mut seconds = |key: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => {
                self.error(&format!("limits.{key}"), "must be more than 0 seconds");
                default
            }
            Some(n) => Duration::from_secs(n),
            None => default,
        };
        let header_timeout = seconds(
            "header_timeout_s",
            limits.header_timeout_s,
            defaults.header_timeout,
        );
        let body_timeout = seconds(
            "body_timeout_s",
            limits.body_timeout_s,
            defaults.body_timeout,
        );
        let max_connections = match limits.max_connections {
            Some(0) => {
                self.error("limits.max_connections", "must be more than 0");
                defaults.max_connections
            }
            Some(n) => n,
            None => defaults.max_connections,
        };
        super::ClientLimits {
            header_timeout,
            body_timeout,
            max_connections,
        }
    }

    /// `passthrough:`, whose one kind today is `anthropic`.
    fn passthrough(&mut self, raw: &RawConfig) -> bool {
        match raw.passthrough.as_deref().map(str::trim) {
            None | Some("none") => false,
            Some("anthropic") => true,
            Some(other) => {
                self.error(
                    "passthrough",
                    format!(
                        "`{other}` is not a pass-through kind: write `anthropic` (forward Anthropic clients' own credentials, e.g. a Claude subscription) or `none`"
                    ),
                );
                false
            }
        }
    }

    /// `webui_security:`, one of the dashboard's three access modes.
    fn webui_security(&mut self, raw: &RawConfig) -> Option<String> {
        let written = raw.webui_security.as_deref()?.trim();
        let text = written.to_ascii_uppercase();
        if ["NONE", "AUTH_WHEN_PROXIED", "ALWAYS_AUTH"].contains(&text.as_str()) {
            return Some(text);
        }
        self.error(
            "webui_security",
            format!(
                "`{written}` is not a dashboard access mode: write AUTH_WHEN_PROXIED (a token when a reverse proxy forwards the request; the default), ALWAYS_AUTH, or NONE (loopback only)"
            ),
        );
        None
    }

    fn provider(
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
            default_max_tokens: raw.default_max_tokens.unwrap_or(super::DEFAULT_MAX_TOKENS),
            ca_bundle,
            responses_api: kind == ProviderKind::OpenAi && raw.responses_api.unwrap_or(true),
        })
    }

    /// Reads and checks a provider's `tls.ca_file` (relative to the config file's folder).
    fn ca_bundle(&mut self, key: &str, file: &str, base_url: &str) -> Option<super::CaBundle> {
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
        match super::tls::ca_certificates(&pem) {
            Ok(_) => Some(super::CaBundle {
                path,
                pem: pem.into(),
            }),
            Err(problem) => {
                self.error(key, format!("{}: {problem}", path.display()));
                None
            }
        }
    }

    fn budget(&mut self, raw: &RawConfig, env: &dyn Fn(&str) -> Option<String>) -> BudgetConfig {
        let b = &raw.budget;
        let session_usd = self.limit(
            "SMARTPROXY_BUDGET_SESSION_LIMIT_USD",
            "budget.session_usd",
            b.session_usd,
            env,
        );
        let daily_usd = self.limit(
            "SMARTPROXY_BUDGET_DAILY_LIMIT_USD",
            "budget.daily_usd",
            b.daily_usd,
            env,
        );
        let monthly_usd = self.limit(
            "SMARTPROXY_BUDGET_MONTHLY_LIMIT_USD",
            "budget.monthly_usd",
            b.monthly_usd,
            env,
        );
        let utc_offset_s = match b.timezone.as_deref().map(str::trim) {
            None | Some("local" | "Local" | "") => None,
            Some("utc" | "UTC" | "Z") => Some(0),
            Some(text) => match chrono::FixedOffset::from_str(text) {
                Ok(offset) => Some(offset.local_minus_utc()),
                Err(_) => {
                    self.error(
                        "budget.timezone",
                        format!("`{text}` is not `local`, `utc` or an offset like +05:30"),
                    );
                    None
                }
            },
        };
        let on_exceed = match b.on_exceed.as_deref().map(str::trim) {
            None | Some("fit") => super::OnExceed::Fit,
            Some("refuse") => super::OnExceed::Refuse,
            Some("downgrade") => super::OnExceed::Downgrade,
            Some(other) => {
                self.error(
                    "budget.on_exceed",
                    format!("`{other}` is not `refuse`, `fit` or `downgrade`"),
                );
                super::OnExceed::Fit
            }
        };
        let downgrade_to = b
            .downgrade_to
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        if on_exceed == super::OnExceed::Downgrade && downgrade_to.is_none() {
            self.error(
                "budget.on_exceed",
                "`downgrade` needs `budget.downgrade_to`, the cheaper model or alias to use",
            );
        }
        let unpriced = match &b.unpriced {
            None => super::Unpriced::Refuse,
            Some(RawUnpriced::Word(word)) => match word.trim() {
                "refuse" => super::Unpriced::Refuse,
                "allow" => super::Unpriced::Allow,
                other => {
                    self.error(
                        "budget.unpriced",
                        format!(
                            "`{other}` is not `refuse`, `allow` or `{{price_as: MODEL}}` (a model whose price to use)"
                        ),
                    );
                    super::Unpriced::Refuse
                }
            },
            Some(RawUnpriced::PriceAs(p)) if p.price_as.trim().is_empty() => {
                self.error(
                    "budget.unpriced.price_as",
                    "name the model whose price unpriced models are charged at, e.g. `{price_as: gpt-4o}`",
                );
                super::Unpriced::Refuse
            }
            Some(RawUnpriced::PriceAs(p)) => super::Unpriced::PriceAs(p.price_as.trim().to_owned()),
        };
        let check_timeout = match b.check_timeout_ms {
            None => super::BUDGET_CHECK_TIMEOUT,
            Some(0) => {
                self.error(
                    "budget.check_timeout_ms",
                    "must be at least 1 (milliseconds a request waits for a busy ledger)",
                );
                super::BUDGET_CHECK_TIMEOUT
            }
            Some(ms) => Duration::from_millis(ms),
        };
        BudgetConfig {
            session_usd,
            daily_usd,
            monthly_usd,
            utc_offset_s,
            count_subscription: b.count_subscription.unwrap_or(false),
            on_exceed,
            downgrade_to,
            unpriced,
            check_timeout,
        }
    }

    /// A limit from its variable or the file; 0 means no limit (the seed's convention).
    fn limit(
        &mut self,
        var: &str,
        key: &str,
        configured: Option<f64>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<f64> {
        let value = match env(var).filter(|v| !v.trim().is_empty()) {
            Some(text) => match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => {
                    self.env_error(
                        var,
                        format!("`{text}` is not an amount in USD, e.g. 5 or 0.50"),
                    );
                    None
                }
            },
            None => {
                if configured.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    self.error(key, "must be an amount in USD of zero or more");
                }
                configured
            }
        };
        value.filter(|v| *v > 0.0)
    }

    fn mock(&mut self, raw: &RawConfig) -> MockConfig {
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

impl Validator<'_> {
    fn presets(&mut self, raw: &RawConfig) -> BTreeMap<String, super::Preset> {
        let mut presets: BTreeMap<String, super::Preset> = super::BUILTIN_PRESETS
            .iter()
            .map(|name| {
                let preset = super::Preset {
                    tag: Some((*name).to_owned()),
                    args: super::builtin_preset_args(name),
                    ..super::Preset::default()
                };
                ((*name).to_owned(), preset)
            })
            .collect();
        for (name, p) in &raw.presets {
            let at = |key: &str| format!("presets.{name}.{key}");
            if let Some(budget) = p.budget_usd.filter(|b| !b.is_finite() || *b < 0.0) {
                self.error(
                    &at("budget_usd"),
                    format!("{budget} is not an amount in USD of zero or more"),
                );
            }
            for var in p.env.keys() {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    self.error(&at("env"), format!("`{var}` is not a variable name"));
                }
            }
            let base = presets.remove(name).unwrap_or_default();
            presets.insert(
                name.clone(),
                super::Preset {
                    tag: p.tag.clone().or(base.tag).or_else(|| Some(name.clone())),
                    budget_usd: p.budget_usd.or(base.budget_usd),
                    passthrough: p.passthrough.unwrap_or(base.passthrough),
                    env: p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    args: p.args.clone().unwrap_or(base.args),
                },
            );
        }
        presets
    }

    fn client_keys(
        &mut self,
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<super::ClientKeyConfig> {
        let mut out: Vec<super::ClientKeyConfig> = Vec::new();
        for (i, k) in raw.client_keys.iter().enumerate() {
            let at = |key: &str| format!("client_keys[{i}].{key}");
            let name = k.name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(
                    &at("name"),
                    "a key name is letters, digits, `-` or `_`, e.g. `cursor`",
                );
                continue;
            }
            if out.iter().any(|o| o.name == name) {
                self.error(
                    &at("name"),
                    format!("another client key is already named `{name}`"),
                );
                continue;
            }
            if k.key_env.is_empty()
                || !k
                    .key_env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.error(
                    &at("key_env"),
                    "name the environment variable that holds the key",
                );
                continue;
            }
            if k.budget_daily_usd
                .is_some_and(|b| !b.is_finite() || b < 0.0)
            {
                self.error(
                    &at("budget_daily_usd"),
                    "must be an amount in USD of zero or more",
                );
            }
            out.push(super::ClientKeyConfig {
                name: name.to_owned(),
                key_env: k.key_env.clone(),
                key: env(&k.key_env)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Secret::new(v.trim().to_owned())),
                budget_daily_usd: k.budget_daily_usd.filter(|b| *b > 0.0),
            });
        }
        out
    }

    /// `retention.max_age_days`, or `SMARTPROXY_MAX_LOG_AGE_DAYS` / SmolRouter's
    /// `MAX_LOG_AGE_DAYS` over it; 0 keeps everything.
    fn retention(&mut self, raw: &RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<u32> {
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

    fn cache(
        &mut self,
        raw: &RawConfig,
        database: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> super::CacheConfig {
        const VAR: &str = "SMARTPROXY_CACHE_ENABLED";
        let enabled = match env(VAR).as_deref().map(str::trim) {
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off" | "") => false,
            Some(other) => {
                self.env_error(VAR, format!("`{other}` is not true or false"));
                false
            }
            None => raw.cache.enabled.unwrap_or(false),
        };
        if raw.cache.max_mb == Some(0) {
            self.error("cache.max_mb", "must be more than 0");
        }
        let path = match &raw.cache.path {
            Some(p) => resolve_beside(self.file, p),
            None => database.with_file_name("cache.db"),
        };
        super::CacheConfig {
            enabled,
            ttl: Duration::from_secs(raw.cache.ttl_s.unwrap_or(24 * 3600)),
            max_bytes: raw.cache.max_mb.unwrap_or(256).max(1) * 1024 * 1024,
            encrypt: raw.cache.encrypt.unwrap_or(false),
            path,
        }
    }

    fn capture(
        &mut self,
        raw: &RawConfig,
        database: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> super::CaptureConfig {
        const VAR: &str = "SMARTPROXY_CAPTURE_ENABLED";
        let c = &raw.capture;
        let enabled = match env(VAR).as_deref().map(str::trim) {
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off" | "") => false,
            Some(other) => {
                self.env_error(VAR, format!("`{other}` is not true or false"));
                false
            }
            None => c.enabled.unwrap_or(false),
        };
        let store = match c.store.as_deref().map(str::trim) {
            None | Some("file") => super::CaptureStoreKind::File,
            Some("memory") => super::CaptureStoreKind::Memory,
            Some(other) => {
                self.error(
                    "capture.store",
                    format!(
                        "`{other}` is not a capture store: write `file` (a folder beside the ledger) or `memory` (kept by the running proxy only)"
                    ),
                );
                super::CaptureStoreKind::File
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
            None | Some("refuse") => super::WhenFull::Refuse,
            Some("drop_oldest") => super::WhenFull::DropOldest,
            Some(other) => {
                self.error(
                    "capture.when_full",
                    format!(
                        "`{other}` is not a choice: write `refuse` (keep the oldest bodies, refuse new ones) or `drop_oldest` (delete the oldest requests' bodies to make room)"
                    ),
                );
                super::WhenFull::Refuse
            }
        };
        let path = match &c.path {
            Some(p) => resolve_beside(self.file, p),
            None => database.with_file_name("captures"),
        };
        super::CaptureConfig {
            enabled,
            store,
            path,
            max_blob_bytes,
            max_total_bytes,
            when_full,
        }
    }
}

/// A captured body's default size cap: 1 MiB.
const DEFAULT_CAPTURE_BLOB_BYTES: u64 = 1024 * 1024;
/// The capture store's default size cap: 256 MiB.
const DEFAULT_CAPTURE_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

/// Resolves a path written in a config file relative to that file's folder.
fn resolve_beside(file: Option<&Path>, path: &str) -> PathBuf {
    let path = paths::expand_home(path);
    match file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// The providers that exist with no config file: one per well-known key found in the environment.
fn zero_config_providers(env: &dyn Fn(&str) -> Option<String>) -> Vec<ProviderConfig> {
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
                default_max_tokens: super::DEFAULT_MAX_TOKENS,
                // Of the providers found by key, only OpenAI's own serves the Responses API.
                responses_api: *name == "openai",
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        from_yaml(text, Some(Path::new("sp.yaml")), &no_env)
            .unwrap_err()
            .0
    }

    #[test]
    fn the_issue_example_loads() {
        let text = "providers:\n  - name: openai\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n    models: [gpt-4o-mini, gpt-4o]\nbudget:\n  session_usd: 5\npricing:\n  my-local-model: {input_per_mtok: 0.0, output_per_mtok: 0.0}\n";
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-test".to_owned());
        let config = from_yaml(text, None, &env).unwrap();
        assert_eq!(config.providers.len(), 1);
        assert_eq!(
            config.providers[0].api_key.as_ref().map(Secret::expose),
            Some("sk-test")
        );
        assert!(config.providers[0].serves("gpt-4o"));
        assert_eq!(config.budget.session_usd, Some(5.0));
        assert!(config.pricing.contains_key("my-local-model"));
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let errs =
            errors("providers:\n  - name: openai\n    kind: openai\n    base_ur: https://x\n");
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!(e.line, Some(4), "{e}");
        assert_eq!(e.key.as_deref(), Some("providers[0]"));
        assert!(e.message.contains("unknown field `base_ur`"), "{e}");
        assert!(e.to_string().starts_with("sp.yaml:4: "), "{e}");
    }

    #[test]
    fn semantic_errors_are_located_and_all_reported() {
        let text = "listen: nowhere\nproviders:\n  - name: a\n    kind: openai\n    base_url: ftp://x\n  - name: a\n    kind: bogus\nbudget:\n  session_usd: -1\n";
        let errs = errors(text);
        let got: Vec<(Option<usize>, Option<&str>)> =
            errs.iter().map(|e| (e.line, e.key.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), Some("listen")),
                (Some(5), Some("providers[0].base_url")),
                (Some(6), Some("providers[1].name")),
                (Some(7), Some("providers[1].kind")),
                (Some(9), Some("budget.session_usd")),
            ]
        );
    }

    #[test]
    fn zero_config_comes_from_the_environment() {
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-1".to_owned()),
            "DEEPSEEK_API_KEY" => Some("ds-1".to_owned()),
            _ => None,
        };
        let config = from_yaml("# nothing\n", None, &env).unwrap();
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["openai", "deepseek"]);
        assert!(config.providers[1].serves("deepseek-chat"));
        assert_eq!(config.default_provider, Some(0));
        assert!(
            config
                .key_variables()
                .contains(&"ANTHROPIC_API_KEY".to_owned())
        );
    }

    #[test]
    fn environment_overrides_win_and_are_checked() {
        let env = |k: &str| match k {
            "SMARTPROXY_LISTEN" => Some("127.0.0.1:9999".to_owned()),
            "SMARTPROXY_BUDGET_SESSION_LIMIT_USD" => Some("2.5".to_owned()),
            _ => None,
        };
        let config = from_yaml(
            "listen: 127.0.0.1:1\nbudget: {session_usd: 9}\n",
            None,
            &env,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.budget.session_usd, Some(2.5));
        let bad = |k: &str| (k == "SMARTPROXY_BUDGET_SESSION_LIMIT_USD").then(|| "lots".to_owned());
        let errs = from_yaml("", None, &bad).unwrap_err().0;
        assert_eq!(
            errs[0].key.as_deref(),
            Some("SMARTPROXY_BUDGET_SESSION_LIMIT_USD")
        );
    }

    #[test]
    fn budget_on_exceed_is_checked() {
        let errs = errors("budget:\n  on_exceed: sometimes\n");
        assert_eq!(errs[0].key.as_deref(), Some("budget.on_exceed"));
        assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
        let errs = errors("budget:\n  on_exceed: downgrade\n");
        assert!(errs[0].message.contains("downgrade_to"), "{}", errs[0]);
        let config = from_yaml("", None, &no_env).unwrap();
        assert_eq!(config.budget.on_exceed, super::super::OnExceed::Fit);
        let config = from_yaml(
            "budget: {on_exceed: downgrade, downgrade_to: gpt-4o-mini}\n",
            None,
            &no_env,
        )
        .unwrap();
        assert_eq!(config.budget.downgrade_to.as_deref(), Some("gpt-4o-mini"));
    }

    #[test]
    fn passthrough_is_checked_and_brings_an_anthropic_provider() {
        let errs = errors("log_level: info\npassthrough: claude\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
        assert_eq!(errs[0].key.as_deref(), Some("passthrough"));
        assert!(errs[0].message.contains("`anthropic`"), "{}", errs[0]);
        let errs = errors("budget:\n  count_subscription: maybe\n");
        assert_eq!(errs[0].line, Some(2), "{}", errs[0]);

        // A subscription user has no key: a keyless `anthropic` provider is added.
        let config = from_yaml(
            "passthrough: anthropic\nbudget: {count_subscription: true}\n",
            None,
            &no_env,
        )
        .unwrap();
        assert!(config.passthrough && config.budget.count_subscription);
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["anthropic"]);
        assert!(!config.providers[0].missing_credential());
        assert!(config.providers[0].serves("claude-sonnet-4-5"));
        assert_eq!(config.default_provider, Some(0));

        // A configured `anthropic` provider is used as it is.
        let text = "passthrough: anthropic\nproviders:\n  - name: claude\n    kind: anthropic\n    api_key_env: K\n    models: [\"claude-*\"]\n";
        let config = from_yaml(text, None, &no_env).unwrap();
        assert_eq!(config.providers.len(), 1);
        assert!(!from_yaml("", None, &no_env).unwrap().passthrough);
    }

    #[test]
    fn client_limits_default_read_and_refuse_zero() {
        let config = from_yaml("{}", None, &no_env).unwrap();
        assert_eq!(config.clients, super::super::ClientLimits::default());
        let text = "limits:\n  header_timeout_s: 2\n  body_timeout_s: 3\n  max_connections: 50\n";
        let config = from_yaml(text, None, &no_env).unwrap();
        assert_eq!(config.clients.header_timeout, Duration::from_secs(2));
        assert_eq!(config.clients.body_timeout, Duration::from_secs(3));
        assert_eq!(config.clients.max_connections, 50);

        let text = "limits:\n  header_timeout_s: 0\n  body_timeout_s: 0\n  max_connections: 0\n";
        let got: Vec<String> = errors(text).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "sp.yaml:2: `limits.header_timeout_s`: must be more than 0 seconds",
                "sp.yaml:3: `limits.body_timeout_s`: must be more than 0 seconds",
                "sp.yaml:4: `limits.max_connections`: must be more than 0",
            ]
        );
    }

    #[test]
    fn the_example_documents_the_client_limits_at_their_defaults() {
        let text = include_str!("../../smartproxy.yaml.example");
        for key in ["header_timeout_s", "body_timeout_s", "max_connections"] {
            assert!(text.contains(&format!("  {key}: ")), "{key}");
        }
        let env = |name: &str| name.ends_with("_KEY").then(|| "x".to_owned());
        let config = from_yaml(text, None, &env).unwrap();
        assert_eq!(config.clients, super::super::ClientLimits::default());
    }
}
