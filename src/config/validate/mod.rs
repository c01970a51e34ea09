//! Turns the raw file into a `Config`: finds the file, parses it, checks every value, applies the
//! environment overrides and the zero-config providers. Errors carry file, line and key.

mod browsers;
mod budget;
mod notify;
mod providers;
mod routes;
mod storage;
mod zero_config;

pub use browsers::Browsers;
pub(super) use zero_config::WELL_KNOWN_KEY_VARS;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawConfig;
use super::{Config, ConfigError, LedgerLocation, PgUrl, ProviderConfig, Secret, key_line, paths};
use zero_config::zero_config_providers;

const DEFAULT_LISTEN: &str = "127.0.0.1:4100";
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Generous: the largest real replies (long completions with logprobs, big embeddings batches)
/// are a few MiB.
const DEFAULT_MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

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
    pub(super) file: Option<&'a Path>,
    pub(super) errors: Vec<ConfigError>,
}

impl Validator<'_> {
    pub(super) fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.map(Path::to_path_buf),
            line: key_line::line_of(self.text, key),
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

    /// `SMARTPROXY_DB`, else `database:`, else the default file: a path, or a PostgreSQL URL
    /// checked here so a typo is a config error, not a failed connection later.
    fn database(
        &mut self,
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> LedgerLocation {
        let (text, var) = match env("SMARTPROXY_DB").filter(|v| !v.trim().is_empty()) {
            Some(value) => (value, Some("SMARTPROXY_DB")),
            None => match &raw.database {
                Some(value) => (value.clone(), None),
                None => return LedgerLocation::Sqlite(paths::default_database()),
            },
        };
        if !LedgerLocation::is_postgres_text(&text) {
            return LedgerLocation::Sqlite(paths::expand_home(&text));
        }
        match PgUrl::parse(&text) {
            Ok(url) => LedgerLocation::Postgres(url),
            Err(message) => {
                match var {
                    Some(var) => self.env_error(var, message),
                    None => self.error("database", message),
                }
                LedgerLocation::Sqlite(paths::default_database())
            }
        }
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

        let database = self.database(&raw, env);
        // The cache and captures sit beside a SQLite ledger; beside the default one when the
        // ledger is in PostgreSQL (they stay local to the machine).
        let stores_beside = match &database {
            LedgerLocation::Sqlite(path) => path.clone(),
            LedgerLocation::Postgres(_) => paths::default_database(),
        };
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

        let cache = self.cache(&raw, &stores_beside, env);
        let retention_days = self.retention(&raw, env);
        let loop_breaker = self.loop_breaker(&raw);
        let capture = self.capture(&raw, &stores_beside, env);
        let notify = self.notify(&raw);
        let cassette_redact = self.cassette_redact(&raw);
        let client_keys = self.client_keys(&raw, env);
        let resilience = self.resilience(&raw);
        let transforms = self.transforms(&raw, env);
        let presets = self.presets(&raw);
        let passthrough = self.passthrough(&raw);
        let webui_security = self.webui_security(&raw);
        let browsers = self.browsers(&raw);
        let project = self.project(&raw);
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
            loop_breaker,
            capture,
            notify,
            cassette_redact,
            client_keys,
            response_headers: raw.observability.response_headers.unwrap_or(true),
            transforms,
            ollama_keyless: raw.ollama.keyless.unwrap_or(false),
            presets,
            passthrough: false,
            webui_security,
            browsers,
            project,
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

    /// `project:`, a name sessions are attributed to.
    fn project(&mut self, raw: &RawConfig) -> Option<String> {
        let name = raw.project.as_deref()?.trim();
        if let Some(problem) = super::project_name_problem(name) {
            self.error("project", problem);
            return None;
        }
        Some(name.to_owned())
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
            if k.budget_weekly_usd
                .is_some_and(|b| !b.is_finite() || b < 0.0)
            {
                self.error(
                    &at("budget_weekly_usd"),
                    "must be an amount in USD of zero or more",
                );
            }
            let windows = self.windows(&at("windows"), &k.windows);
            out.push(super::ClientKeyConfig {
                name: name.to_owned(),
                key_env: k.key_env.clone(),
                key: env(&k.key_env)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| Secret::new(v.trim().to_owned())),
                budget_daily_usd: k.budget_daily_usd.filter(|b| *b > 0.0),
                budget_weekly_usd: k.budget_weekly_usd.filter(|b| *b > 0.0),
                windows,
            });
        }
        out
    }
}

/// Resolves a path written in a config file relative to that file's folder.
pub(super) fn resolve_beside(file: Option<&Path>, path: &str) -> PathBuf {
    let path = paths::expand_home(path);
    match file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

#[cfg(test)]
mod tests;
