//! The config file exactly as users write it: serde shapes with unknown keys refused, so a typo is
//! an error with its line instead of a silently ignored setting.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::pricing::Price;

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
    /// SmolRouter's named upstreams: `name: URL` or `name: {url, api_key_env}`.
    #[serde(default)]
    pub servers: BTreeMap<String, RawServer>,
    /// Model names clients may use, each served by targets tried in order.
    #[serde(default)]
    pub aliases: BTreeMap<String, RawAlias>,
    /// Ordered rules, evaluated top to bottom after aliases and exact model matches.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Incoming model name -> model name to use instead (SmolRouter's `MODEL_MAP`).
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    #[serde(default)]
    pub resilience: RawResilience,
    #[serde(default)]
    pub observability: RawObservability,
    #[serde(default)]
    pub transforms: RawTransforms,
    #[serde(default)]
    pub cache: RawCache,
    #[serde(default)]
    pub retention: RawRetention,
    /// The runaway-loop breaker (`proxy::loop_breaker`).
    #[serde(default)]
    pub loop_breaker: RawLoopBreaker,
    /// Opt-in capture of request and response bodies.
    #[serde(default)]
    pub capture: RawCapture,
    /// Notifications when a budget passes its warning mark or a loop trips: `desktop`, or
    /// `{desktop: true, webhook: URL or [URL, ...]}`.
    #[serde(default)]
    pub notify: Option<RawNotify>,
    /// `run --record`'s cassettes.
    #[serde(default)]
    pub cassette: RawCassette,
    /// The daemon's named client keys; each key's value comes from an environment variable.
    #[serde(default)]
    pub client_keys: Vec<RawClientKey>,
    #[serde(default)]
    pub ollama: RawOllama,
    /// `run --preset NAME` settings per tool, over the built-in ones.
    #[serde(default)]
    pub presets: BTreeMap<String, RawPreset>,
    /// `anthropic`: Anthropic clients' own credentials (a Claude subscription's OAuth token)
    /// are forwarded to an `anthropic` provider instead of being refused.
    pub passthrough: Option<String>,
    /// Who may see the web dashboard: `NONE`, `AUTH_WHEN_PROXIED` (default) or `ALWAYS_AUTH`;
    /// the `WEBUI_SECURITY` variable wins over it.
    pub webui_security: Option<String>,
    /// Host names the listeners answer to besides loopback ones (a reverse proxy's name).
    #[serde(default)]
    pub server_names: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages may send requests, besides loopback ones.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The project sessions are attributed to (`run` without `--project`, and the daemon's).
    pub project: Option<String>,
}

/// What `run --preset NAME` (and the shims) apply to a session.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPreset {
    pub tag: Option<String>,
    pub budget_usd: Option<f64>,
    /// Turns on `run --passthrough` for the tool (Claude Code with a subscription).
    pub passthrough: Option<bool>,
    /// Extra variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments put after the command's program name (`{url}`: the session proxy's URL).
    pub args: Option<Vec<String>>,
}

/// The daemon's Ollama-compatible endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOllama {
    /// Serve `/api/*` to loopback clients without a client key (Ollama clients cannot send one).
    pub keyless: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientKey {
    pub name: String,
    pub key_env: String,
    pub budget_daily_usd: Option<f64>,
    /// Per ISO week, in the budget's calendar (USD; 0 or missing: no limit).
    pub budget_weekly_usd: Option<f64>,
    /// Rolling windows of this key's spend: `[{every: 5h, usd: 10}]`.
    #[serde(default)]
    pub windows: Vec<RawWindow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// The daemon deletes ledger rows older than this many days, once a day.
    pub max_age_days: Option<u32>,
}

/// The runaway-loop breaker: on by default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoopBreaker {
    pub enabled: Option<bool>,
    /// Refuse when one newest-turn signature makes up this many of the last `repeat + 2`
    /// requests of a session (or the last `repeat` alternate between two).
    pub repeat: Option<u64>,
    /// Refuse when a session used more tokens than this in the last minute; off unless set.
    pub tokens_per_minute: Option<u64>,
    /// Count turns that are a user message alone too (default: tool-call turns only).
    pub user_messages: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub enabled: Option<bool>,
    pub ttl_s: Option<u64>,
    pub max_mb: Option<u64>,
    /// Encrypt entries with AES-256-GCM under `SMARTPROXY_CACHE_KEY`.
    pub encrypt: Option<bool>,
    pub path: Option<String>,
}

/// Opt-in capture of request and response bodies (off by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub enabled: Option<bool>,
    /// `file` (default: a folder beside the ledger) or `memory` (this process only).
    pub store: Option<String>,
    /// The folder of a `file` store; default `captures` beside the ledger.
    pub path: Option<String>,
    /// A body larger than this is not captured (refused and counted, never truncated).
    pub max_blob_bytes: Option<u64>,
    /// Bodies that would take the store past this are not captured.
    pub max_total_bytes: Option<u64>,
    /// When the store is full: `refuse` new bodies (default) or `drop_oldest` requests' bodies.
    pub when_full: Option<String>,
}

/// `run --record`'s cassettes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCassette {
    /// Regular expressions replaced by `[REDACTED]` in every recorded request and reply (and
    /// so left out of the replay key: machine-specific text such as a date or a path).
    #[serde(default)]
    pub redact: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawServer {
    Url(String),
    Full {
        url: String,
        #[serde(default)]
        api_key_env: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAlias {
    List(Vec<RawInstance>),
    Instances { instances: Vec<RawInstance> },
}

/// A target: `"provider/model"` (or `"server/model"`), or `{server, model}` / `{provider, model}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawInstance {
    Short(String),
    Full {
        #[serde(alias = "provider")]
        server: String,
        #[serde(default)]
        model: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// A label for headers, logs and `route explain`; defaults to `rule N`.
    pub name: Option<String>,
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    pub route: RawAction,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Exact name, or `/regex/`.
    pub model: Option<String>,
    /// An IP address or CIDR range of the client.
    pub source_host: Option<String>,
    pub stream: Option<bool>,
    pub tools: Option<bool>,
    pub images: Option<bool>,
    pub min_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    /// The `run --tag` of the session.
    pub tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    /// Targets tried in order.
    #[serde(default)]
    pub targets: Vec<RawInstance>,
    /// SmolRouter's form: an upstream URL (OpenAI-compatible).
    pub upstream: Option<String>,
    /// The model name to send instead of the requested one.
    pub model: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResilience {
    /// Attempts per target, the first included.
    pub max_attempts: Option<u32>,
    pub backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    /// Longest `Retry-After` honoured by waiting; a longer one fails over instead.
    pub retry_after_cap_ms: Option<u64>,
    /// Consecutive failures that open a target's circuit.
    pub breaker_failures: Option<u32>,
    pub breaker_cooldown_ms: Option<u64>,
    /// The longest a request waits for a provider to start answering, over every attempt,
    /// retry and failover together.
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObservability {
    pub response_headers: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransforms {
    pub strip_thinking: Option<bool>,
    pub unwrap_json_fence: Option<bool>,
    pub disable_thinking: Option<bool>,
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
    #[serde(default)]
    pub tls: RawTls,
    pub enabled: Option<bool>,
    /// Output tokens for Anthropic requests that set none (Anthropic requires `max_tokens`).
    pub default_max_tokens: Option<u32>,
    /// Whether an `openai` provider serves `/v1/responses` itself (default true).
    pub responses_api: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

/// TLS settings of an `https://` provider.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// A PEM file of CA certificates trusted for this provider besides the built-in roots.
    pub ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub session_usd: Option<f64>,
    /// Shared by every process on the ledger, per calendar day / month.
    pub daily_usd: Option<f64>,
    /// Per ISO week, Monday to Sunday, in the calendar of `timezone`.
    pub weekly_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// Rolling windows: `[{every: 5h, usd: 10}]`, the spend of the last `every` under `usd`.
    #[serde(default)]
    pub windows: Vec<RawWindow>,
    /// `local` (default), `utc`, or an offset such as `+05:30`.
    pub timezone: Option<String>,
    /// Whether pass-through requests billed to a subscription count against the budgets at
    /// their notional list-price cost.
    pub count_subscription: Option<bool>,
    /// What a request that does not fit gets: `refuse`, `fit` (default) or `downgrade`.
    pub on_exceed: Option<String>,
    /// The model (or alias) `on_exceed: downgrade` sends such a request to.
    pub downgrade_to: Option<String>,
    /// A model with no known price under a budget: `refuse` (default), `allow`, or
    /// `{price_as: MODEL}`.
    pub unpriced: Option<RawUnpriced>,
    /// How long a request waits for the shared budgets in a busy ledger before it is answered
    /// 503 `budget_unavailable` (milliseconds).
    pub check_timeout_ms: Option<u64>,
    /// On a PostgreSQL ledger: what one process may spend on budgeted requests while PostgreSQL
    /// cannot be reached (USD; default 0: such requests are refused with 503).
    pub offline_grace_usd: Option<f64>,
    /// On a PostgreSQL ledger: how long a request's reservation holds before whoever comes
    /// next releases it (seconds; its process died or hung). Default 600.
    pub reservation_expiry_s: Option<u64>,
    /// Per-project limits, shared like the daily and monthly ones: `{NAME: {daily_usd,
    /// monthly_usd}}`, NAME as `stats --by project` shows it.
    #[serde(default)]
    pub projects: BTreeMap<String, RawProjectBudget>,
}

/// One project's limits under `budget.projects`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjectBudget {
    pub daily_usd: Option<f64>,
    pub weekly_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    #[serde(default)]
    pub windows: Vec<RawWindow>,
}

/// One rolling window: `every` a duration (`5h`, `90m`, `7d`), `usd` its cap.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub every: String,
    pub usd: f64,
}

/// `budget.unpriced`: a word, or `{price_as: MODEL}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawUnpriced {
    Word(String),
    PriceAs(RawPriceAs),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceAs {
    pub price_as: String,
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
    /// The most a whole (non-streamed) upstream reply may hold.
    pub max_reply_bytes: Option<usize>,
    /// Seconds a client has to send a request's head (and an idle kept-alive connection to
    /// start its next request).
    pub header_timeout_s: Option<u64>,
    /// Seconds a client has to send a whole request body.
    pub body_timeout_s: Option<u64>,
    /// Open client connections each listener serves at once; beyond, a 503 at once.
    pub max_connections: Option<usize>,
}

/// `notify:` as written: one word (`desktop`, `off`) or the detailed form.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawNotify {
    Word(String),
    Detailed(RawNotifyDetailed),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifyDetailed {
    pub desktop: Option<bool>,
    pub webhook: Option<RawUrls>,
}

/// One URL or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawUrls {
    One(String),
    Many(Vec<String>),
}
