//! What the config says about routing: `routes:` rules and their targets and matchers,
//! `resilience:` (retries, backoff, breakers) and SmolRouter's transforms.

use std::fmt;
use std::time::Duration;

/// A provider and the model to ask it for (`None`: the model the client asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: usize,
    pub model: Option<String>,
}

/// One rule of `routes:`.
#[derive(Debug, Clone)]
pub struct Route {
    pub label: String,
    pub matcher: Matcher,
    pub targets: Vec<Target>,
}

/// What a rule matches on; every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub model: Option<ModelMatch>,
    pub source: Option<ipnet::IpNet>,
    pub stream: Option<bool>,
    pub tools: Option<bool>,
    pub images: Option<bool>,
    pub min_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ModelMatch {
    Exact(String),
    Regex(regex::Regex),
}

impl ModelMatch {
    pub fn matches(&self, model: &str) -> bool {
        match self {
            Self::Exact(name) => name == model,
            Self::Regex(re) => re.is_match(model),
        }
    }
}

impl fmt::Display for ModelMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

/// Retries, backoff and circuit breakers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resilience {
    /// Attempts per target, the first included.
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub retry_after_cap: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    /// The longest a request waits for a provider to start answering, attempts, waits and
    /// failovers together (a stream that has started is then held to the idle timeout only).
    pub deadline: Duration,
}

impl Default for Resilience {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(30),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            // The OpenAI and Anthropic SDKs' own default request timeout: a client would give
            // up by then anyway.
            deadline: Duration::from_secs(600),
        }
    }
}

/// SmolRouter's response transforms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransformConfig {
    pub strip_thinking: bool,
    pub unwrap_json_fence: bool,
    pub disable_thinking: bool,
}
