//! Configuration: found (`paths`), parsed raw (`raw`, unknown keys refused), then validated into
//! the types below (`validate`), with every error naming the file, the line and the key.

pub mod every;
mod key_line;
mod ledger_location;
pub mod paths;
mod pg_tls;
mod price_overlay;
mod provider;
pub mod raw;
mod routing;
pub mod tls;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ledger_location::{LedgerLocation, NotSqlite, PgUrl};
pub use pg_tls::{PgTls, SslMode};
pub use provider::{
    CaBundle, DEFAULT_MAX_TOKENS, MockConfig, MockReply, ModelPattern, ProviderConfig,
    ProviderKind, Secret, Timeouts,
};
pub use routing::{Matcher, ModelMatch, Resilience, Route, Target, TransformConfig};
pub use validate::{Browsers, from_yaml, load};

use crate::pricing::Price;

/// The runaway-loop breaker's limits (`loop_breaker:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopBreakerConfig {
    /// Refuse at this many repeats of one newest turn in the last `repeat + 2` requests of a
    /// session (or `repeat` requests alternating between two); `None`: off.
    pub repeat: Option<usize>,
    /// Refuse past this many tokens in a session's last minute; `None`: no ceiling.
    pub tokens_per_minute: Option<u64>,
    /// Count newest turns that are a user message alone, not only tool calls with their
    /// results (off by default: a script that asks one question many times, an eval sampling
    /// one prompt, a benchmark, are no runaway agent).
    pub user_messages: bool,
}

/// On by default: six repeats of one newest turn (tool call, arguments and result) in eight
/// requests is a loop, not a build being polled (whose output changes).
pub const DEFAULT_LOOP_REPEAT: usize = 6;

impl Default for LoopBreakerConfig {
    fn default() -> Self {
        Self {
            repeat: Some(DEFAULT_LOOP_REPEAT),
            tokens_per_minute: None,
            user_messages: false,
        }
    }
}

/// The validated configuration the rest of the program uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for the zero-config defaults.
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    /// The ledger: a SQLite file, or a PostgreSQL URL (team mode, `run` and `daemon` only).
    pub database: LedgerLocation,
    pub log_level: Option<String>,
    pub providers: Vec<ProviderConfig>,
    /// Index into `providers` of the provider for models no provider lists.
    pub default_provider: Option<usize>,
    pub budget: BudgetConfig,
    pub pricing: HashMap<String, Price>,
    pub mock: MockConfig,
    pub max_body_bytes: usize,
    /// The most a whole (non-streamed) upstream reply may hold in memory; beyond it, 502.
    pub max_reply_bytes: usize,
    /// Slow and many clients: timeouts and the cap on open connections (`limits:`).
    pub clients: ClientLimits,
    /// Incoming model name -> model to use instead, applied before everything else.
    pub model_map: HashMap<String, String>,
    /// Alias name -> targets in failover order.
    pub aliases: BTreeMap<String, Vec<Target>>,
    pub routes: Vec<Route>,
    pub resilience: Resilience,
    /// Whether replies carry the `x-smartproxy-*` routing headers.
    pub response_headers: bool,
    pub transforms: TransformConfig,
    pub cache: CacheConfig,
    /// Ledger rows older than this many days are deleted by the daemon once a day
    /// (`retention.max_age_days`, `MAX_LOG_AGE_DAYS`); `None` keeps everything.
    pub retention_days: Option<u32>,
    /// The runaway-loop breaker (`loop_breaker:`).
    pub loop_breaker: LoopBreakerConfig,
    /// Opt-in capture of request and response bodies (`capture:`).
    pub capture: CaptureConfig,
    /// Where budget warnings and loop alerts go (`notify:`); nowhere by default.
    pub notify: NotifyConfig,
    /// `cassette.redact`: patterns (checked to compile) replaced in recorded cassettes.
    pub cassette_redact: Vec<String>,
    /// The daemon's named client keys from the config file.
    pub client_keys: Vec<ClientKeyConfig>,
    /// Whether the daemon serves Ollama's `/api/*` to loopback clients without a client key
    /// (`ollama.keyless`). `run` sessions always do: their proxy is theirs alone.
    pub ollama_keyless: bool,
    /// `run --preset NAME` settings: the built-in presets with the config's over them.
    pub presets: BTreeMap<String, Preset>,
    /// `passthrough: anthropic` (or `run --passthrough`): a request to the Anthropic endpoints
    /// that brings the client's own credential instead of a smartproxy key is forwarded with
    /// that credential to an `anthropic` provider (see `Config::enable_passthrough`).
    pub passthrough: bool,
    /// `webui_security:` as written (upper-cased, checked): who may see the web dashboard.
    /// `WEBUI_SECURITY` wins over it; `None` leaves the default (`AUTH_WHEN_PROXIED`).
    pub webui_security: Option<String>,
    /// `server_names:` and `allowed_origins:`: who may reach the listeners from a browser
    /// besides loopback pages (`crate::http_guard`).
    pub browsers: Browsers,
    /// `project:`: the project `run` sessions (without `--project`) and the daemon's sessions
    /// are attributed to; `run` otherwise names it after the git repository's folder.
    pub project: Option<String>,
}

/// Why `name` cannot be a project name (`project:`, `--project`, `budget.projects`), if it
/// cannot: it is shown in stats tables and used as a budget scope's name.
pub fn project_name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("a project name cannot be empty")
    } else if name.chars().count() > 100 {
        Some("a project name is at most 100 characters")
    } else if name.chars().any(char::is_control) {
        Some("a project name cannot hold control characters")
    } else {
        None
    }
}

/// How the listeners bound slow and many clients (`limits:`); read when a listener starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// A request's head must arrive within this, counted from when the connection opens or
    /// goes idle after a reply (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this once its head has: beyond, 408.
    pub body_timeout: Duration,
    /// Open connections each listener serves at once; beyond it a client is answered 503.
    pub max_connections: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// What `run --preset NAME` applies: a default tag and budget (flags still win) and extra
/// variables for the command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preset {
    pub tag: Option<String>,
    pub budget_usd: Option<f64>,
    /// Turns on pass-through (`run --passthrough`).
    pub passthrough: bool,
    pub env: Vec<(String, String)>,
    /// Arguments put right after the command's program name; `{url}` in them becomes the
    /// session proxy's URL (`http://127.0.0.1:PORT`).
    pub args: Vec<String>,
}

/// The arguments a built-in preset adds to its tool's command line.
pub fn builtin_preset_args(name: &str) -> Vec<String> {
    match name {
        // Codex CLI reads no base URL from the environment: a model provider of its own,
        // defined on the command line, points it at the session's proxy. It speaks the
        // Responses API (`wire_api = "responses"`) and takes the session key from
        // OPENAI_API_KEY; as a custom provider it does not try OpenAI's WebSocket transport.
        "codex" => vec![
            "-c".to_owned(),
            "model_provider=\"smartproxy\"".to_owned(),
            "-c".to_owned(),
            "model_providers.smartproxy={ name = \"smartproxy\", base_url = \"{url}/v1\", \
             env_key = \"OPENAI_API_KEY\", wire_api = \"responses\" }"
                .to_owned(),
        ],
        _ => Vec::new(),
    }
}

/// The presets smartproxy knows without a config: one per common agent tool, tagging its
/// sessions with its name. Each tool already reads the variables `run` sets (OpenAI's,
/// Anthropic's, Ollama's); Gemini's CLI is missing because smartproxy does not speak its API.
pub const BUILTIN_PRESETS: &[&str] = &["claude", "codex", "aider", "llm", "python"];

/// Credentials of providers and tools that a `run` child must not see either, though no provider
/// is registered from them: Anthropic's OAuth/bearer token and the common providers' keys.
const OTHER_CREDENTIAL_VARS: &[&str] = &[
    "ANTHROPIC_AUTH_TOKEN",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "OPENROUTER_API_KEY",
    "XAI_API_KEY",
    "FIREWORKS_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "COHERE_API_KEY",
];

/// A named client key of the config; its value is read from `key_env` at load time.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientKeyConfig {
    pub name: String,
    pub key_env: String,
    pub key: Option<Secret>,
    pub budget_daily_usd: Option<f64>,
    pub budget_weekly_usd: Option<f64>,
    /// Rolling windows of this key's spend (`windows: [{every: 5h, usd: 10}]`).
    pub windows: Vec<WindowLimit>,
}

/// The exact-match response cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl: Duration,
    pub max_bytes: u64,
    pub encrypt: bool,
    /// Where entries live; default: `cache.db` beside the ledger.
    pub path: PathBuf,
}

/// Where notifications go (`notify:`): the desktop's notifications and webhooks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyConfig {
    pub desktop: bool,
    /// `http://` or `https://` URLs, each sent a JSON body per event.
    pub webhooks: Vec<String>,
}

impl NotifyConfig {
    pub fn any(&self) -> bool {
        self.desktop || !self.webhooks.is_empty()
    }
}

/// Opt-in capture of request and response bodies (`capture:`); off by default.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    pub enabled: bool,
    pub store: CaptureStoreKind,
    /// The folder of a file store; default: `captures` beside the ledger.
    pub path: PathBuf,
    /// Largest body captured, in bytes; a larger one is refused and counted.
    pub max_blob_bytes: u64,
    /// Most bytes the store holds; what happens to a body that would pass it is `when_full`.
    pub max_total_bytes: u64,
    pub when_full: WhenFull,
}

/// What a full capture store does with a new body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuses it (and counts it): the oldest bodies are kept.
    #[default]
    Refuse,
    /// Deletes the bodies of the oldest requests until it fits: the newest are kept.
    DropOldest,
}

/// Where captured bodies are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureStoreKind {
    /// One file per body in a folder of the data dir.
    File,
    /// In the proxy's memory, gone when it stops (the daemon's web UI, tests).
    Memory,
}

impl CaptureStoreKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Memory => "memory",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub session_usd: Option<f64>,
    pub daily_usd: Option<f64>,
    /// Per ISO week (Monday 00:00 to Sunday 24:00) in the same calendar as days.
    pub weekly_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// `budget.windows`: rolling windows, each capping the spend of its last `every`.
    pub windows: Vec<WindowLimit>,
    /// Offset of the calendar the periods follow; `None`: the system's local time.
    pub utc_offset_s: Option<i32>,
    /// Whether subscription-billed pass-through requests count at their notional cost.
    pub count_subscription: bool,
    /// What a request whose reservation does not fit a budget gets.
    pub on_exceed: OnExceed,
    /// The model or alias `OnExceed::Downgrade` routes such a request to.
    pub downgrade_to: Option<String>,
    /// What a request to a model with no known price gets while a budget applies.
    pub unpriced: Unpriced,
    /// How long a request waits for the shared budgets in a busy ledger before it is refused
    /// with 503 `budget_unavailable` (never let through unchecked).
    pub check_timeout: Duration,
    /// What one process may spend on budgeted requests while a PostgreSQL ledger is down.
    pub offline_grace_usd: Option<f64>,
    /// How long a shared reservation in PostgreSQL holds if its request never settles it.
    pub reservation_expiry: Duration,
    /// `budget.projects`: each project's daily and monthly limits (USD; a 0 or missing one is
    /// no limit), enforced for the sessions attributed to it.
    pub projects: BTreeMap<String, ProjectBudget>,
}

/// One project's limits (`budget.projects.NAME`), or one client key's (`client_keys[i]`, which
/// has no monthly one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectBudget {
    pub daily_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub windows: Vec<WindowLimit>,
}

impl ProjectBudget {
    /// Whether any of its limits is set.
    pub fn has_limits(&self) -> bool {
        self.daily_usd.is_some()
            || self.weekly_usd.is_some()
            || self.monthly_usd.is_some()
            || !self.windows.is_empty()
    }
}

/// A rolling window's limit: the spend of any `every_ms` stays under `usd`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WindowLimit {
    pub every_ms: i64,
    pub usd: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            session_usd: None,
            daily_usd: None,
            weekly_usd: None,
            monthly_usd: None,
            windows: Vec::new(),
            utc_offset_s: None,
            count_subscription: false,
            on_exceed: OnExceed::default(),
            downgrade_to: None,
            unpriced: Unpriced::default(),
            check_timeout: BUDGET_CHECK_TIMEOUT,
            offline_grace_usd: None,
            reservation_expiry: RESERVATION_EXPIRY,
            projects: BTreeMap::new(),
        }
    }
}

/// The default of `budget.check_timeout_ms`.
pub const BUDGET_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a shared reservation in PostgreSQL holds by default (SQLite's holds as long).
pub const RESERVATION_EXPIRY: Duration = Duration::from_secs(600);

/// What a request to a model with no known price gets (`budget.unpriced`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Unpriced {
    /// Refused (400 `model_unpriced`) whenever a budget applies: its cost could not be capped.
    #[default]
    Refuse,
    /// Let through, recorded with no cost (`n/a`); budgets cannot count it.
    Allow,
    /// Priced, reserved and recorded at this model's prices.
    PriceAs(String),
}

/// What a request that does not fit a budget gets (`budget.on_exceed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnExceed {
    /// 429 `budget_exceeded`.
    Refuse,
    /// Its output cap lowered to what the budget has left; refused only when not even a short
    /// answer fits.
    #[default]
    Fit,
    /// Sent to `budget.downgrade_to` instead, when that fits; else fitted, else refused.
    Downgrade,
}

/// A config problem, located as precisely as the text allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, _) => {}
        }
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl Config {
    /// The client keys with a limit (daily, weekly or a rolling window), by name.
    pub fn client_key_budgets(&self) -> Vec<(String, ProjectBudget)> {
        self.client_keys
            .iter()
            .map(|k| {
                let budget = ProjectBudget {
                    daily_usd: k.budget_daily_usd,
                    weekly_usd: k.budget_weekly_usd,
                    monthly_usd: None,
                    windows: k.windows.clone(),
                };
                (k.name.clone(), budget)
            })
            .filter(|(_, b)| b.has_limits())
            .collect()
    }

    /// Replaces every provider with the built-in mock, for `run --mock`: no key, no network.
    pub fn mock_only(mut self) -> Self {
        self.providers = vec![ProviderConfig::builtin_mock()];
        self.default_provider = Some(0);
        // Nothing is forwarded anywhere: every client gets the session key.
        self.passthrough = false;
        self.aliases.clear();
        self.routes.clear();
        self
    }

    /// Sends everything through the proxy of the `run` this one is nested in, for a `run`
    /// inside a `run`: the outer session routes, holds the provider keys (the outer `run`
    /// removed them from this one's environment) and applies its budgets; this session's own
    /// providers, aliases and routes would need those keys. Anthropic-format requests for Claude
    /// models go to its Anthropic endpoint untouched, everything else to its OpenAI endpoint.
    /// `model_map` stays: it renames models, whoever serves them.
    pub fn through_outer_session(mut self, url: &str, key: &str) -> Self {
        let outer = |name: &str, kind, base_url: String, models| ProviderConfig {
            name: name.to_owned(),
            kind,
            base_url,
            api_key_env: None,
            api_key: Some(Secret::new(key.to_owned())),
            models,
            context_window: None,
            capabilities: Vec::new(),
            timeouts: Timeouts::default(),
            enabled: true,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            ca_bundle: None,
            // The outer proxy serves the Responses API whatever its providers speak.
            responses_api: kind == ProviderKind::OpenAi,
        };
        self.providers = vec![
            outer(
                "outer-anthropic",
                ProviderKind::Anthropic,
                url.to_owned(),
                vec![ModelPattern::Prefix("claude-".to_owned())],
            ),
            // The default provider, listing no model: it takes what the other does not, so
            // a failing request is never tried twice at the same outer proxy.
            outer(
                "outer",
                ProviderKind::OpenAi,
                format!("{url}/v1"),
                Vec::new(),
            ),
        ];
        self.default_provider = Some(1);
        self.aliases.clear();
        self.routes.clear();
        self
    }

    /// Turns on pass-through for Anthropic clients. Without a provider of kind `anthropic`, a
    /// keyless one for Anthropic's API is added: a subscription user has no API key to give
    /// it, and pass-through requests bring their own credential.
    pub fn enable_passthrough(&mut self) {
        self.passthrough = true;
        if self
            .providers
            .iter()
            .any(|p| p.enabled && p.kind == ProviderKind::Anthropic)
        {
            return;
        }
        let name = if self.providers.iter().any(|p| p.name == "anthropic") {
            "anthropic-passthrough"
        } else {
            "anthropic"
        };
        self.providers.push(ProviderConfig {
            name: name.to_owned(),
            kind: ProviderKind::Anthropic,
            base_url: "https://api.anthropic.com".to_owned(),
            api_key_env: None,
            api_key: None,
            models: vec![ModelPattern::Prefix("claude-".to_owned())],
            context_window: None,
            capabilities: Vec::new(),
            timeouts: Timeouts::default(),
            enabled: true,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            ca_bundle: None,
            responses_api: false,
        });
        if self.default_provider.is_none() {
            self.default_provider = Some(self.providers.len() - 1);
        }
    }

    /// The environment variables that hold real provider keys, which a `run` child must not see.
    pub fn key_variables(&self) -> Vec<String> {
        let mut vars: Vec<String> = validate::WELL_KNOWN_KEY_VARS
            .iter()
            .chain(OTHER_CREDENTIAL_VARS)
            .map(|v| (*v).to_owned())
            .collect();
        for provider in &self.providers {
            if let Some(var) = &provider.api_key_env
                && !vars.contains(var)
            {
                vars.push(var.clone());
            }
        }
        vars
    }

    pub fn source_display(&self) -> String {
        self.source.as_deref().map_or_else(
            || "built-in defaults".to_owned(),
            |p: &Path| p.display().to_string(),
        )
    }

    /// The keys whose change from `self` to `newer` a running daemon takes up only when it
    /// restarts: its listeners, ledger, cache and capture stores, retention task and dashboard
    /// security are set up once, at start. A reload says which, instead of ignoring them.
    pub fn restart_only_changes(&self, newer: &Config) -> Vec<&'static str> {
        [
            ("listen", self.listen != newer.listen),
            ("database", self.database != newer.database),
            ("cache", self.cache != newer.cache),
            ("capture", self.capture != newer.capture),
            ("retention", self.retention_days != newer.retention_days),
            (
                "webui_security",
                self.webui_security != newer.webui_security,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}
