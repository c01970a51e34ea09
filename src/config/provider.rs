//! What the config says about a provider: its kind, address, key, models and timeouts, the
//! mock provider's script, and `Secret`, the redacted credential.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenAI-compatible Chat Completions API.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Ollama's native API.
    Ollama,
    /// The built-in offline provider.
    Mock,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
            Self::Mock => "mock",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// The environment variable holding the provider's key.
    pub api_key_env: Option<String>,
    /// The key itself, read from `api_key_env` at load time.
    pub api_key: Option<Secret>,
    pub models: Vec<ModelPattern>,
    pub context_window: Option<u32>,
    pub capabilities: Vec<String>,
    pub timeouts: Timeouts,
    pub enabled: bool,
    /// Output tokens for Anthropic requests that set none.
    pub default_max_tokens: u32,
    /// Extra CA certificates trusted for this provider (`tls.ca_file`), read at load.
    pub ca_bundle: Option<CaBundle>,
    /// The provider serves OpenAI's Responses API (`/v1/responses`) itself, so Responses
    /// requests go to it untouched; otherwise smartproxy translates them to chat completions.
    pub responses_api: bool,
}

/// The CA certificates of a provider's `tls.ca_file`, read and checked when the config loads
/// (so a reload that breaks the file is refused like any other config error).
#[derive(Clone)]
pub struct CaBundle {
    pub path: PathBuf,
    /// The file's PEM text.
    pub pem: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaBundle")
            .field("path", &self.path)
            .finish()
    }
}

/// A model name, or a prefix ending in `*` (`gpt-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPattern {
    Exact(String),
    Prefix(String),
}

impl ModelPattern {
    pub fn parse(text: &str) -> Self {
        match text.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(text.to_owned()),
        }
    }

    pub fn matches(&self, model: &str) -> bool {
        match self {
            Self::Exact(name) => name == model,
            Self::Prefix(prefix) => model.starts_with(prefix.as_str()),
        }
    }

    /// The concrete name, for listing in `/v1/models`.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Self::Exact(name) => Some(name),
            Self::Prefix(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            // Reasoning models can think for minutes before the first token.
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    pub latency: Duration,
    pub chunk_delay: Duration,
    /// Replies served in turn, from `mock.script` or `mock.reply`.
    pub script: Vec<MockReply>,
}

/// One scripted reply of the mock provider.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum MockReply {
    Text(String),
    Scripted {
        #[serde(default)]
        content: Option<String>,
        /// An HTTP error status to answer with instead of a reply.
        #[serde(default)]
        status: Option<u16>,
        #[serde(default)]
        message: Option<String>,
    },
}

/// A credential. Never printed: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Output tokens asked of Anthropic when a request sets no `max_tokens` (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

impl ProviderConfig {
    /// Whether the provider declares `capability` (`tools`, `vision`, `json`). A provider that
    /// declares none is assumed to have them all: only explicit lists restrict routing.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.is_empty() || self.capabilities.iter().any(|c| c == capability)
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|p| p.matches(model))
    }

    /// OpenAI's own API, which refuses `max_tokens` for its reasoning models (o-series, gpt-5)
    /// and takes `max_completion_tokens` for every model.
    /// Read from the URL's text: this runs per request, and the URL was validated at load.
    pub fn wants_max_completion_tokens(&self) -> bool {
        let after_scheme = self.base_url.split_once("://").map_or("", |(_, rest)| rest);
        let host = after_scheme.split(['/', ':']).next().unwrap_or_default();
        self.kind == ProviderKind::OpenAi && host.eq_ignore_ascii_case("api.openai.com")
    }

    /// True when the provider needs a key and none was found.
    pub fn missing_credential(&self) -> bool {
        self.kind != ProviderKind::Mock && self.api_key_env.is_some() && self.api_key.is_none()
    }
}

impl ProviderConfig {
    pub fn builtin_mock() -> Self {
        Self {
            name: "mock".to_owned(),
            kind: ProviderKind::Mock,
            base_url: String::new(),
            api_key_env: None,
            api_key: None,
            models: vec![ModelPattern::Prefix(String::new())],
            context_window: None,
            capabilities: vec!["tools".to_owned(), "vision".to_owned(), "json".to_owned()],
            timeouts: Timeouts::default(),
            enabled: true,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            ca_bundle: None,
            responses_api: false,
        }
    }
}
