//! Provider adapters: one small `Provider` trait, one implementation per kind. A provider does
//! HTTP and auth; it sends an OpenAI Chat Completions body and returns the reply as it came.

pub mod anthropic;
pub mod http;
pub mod mock;
pub mod ollama;
pub mod openai;
mod plain_http;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::config::{Config, ProviderConfig, ProviderKind};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The format of a request or reply body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// OpenAI Chat Completions, the format every provider accepts.
    OpenAi,
    /// Anthropic Messages, sent as they are to a provider whose native format it is.
    Anthropic,
}

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    /// Legacy `/v1/completions`, for OpenAI-compatible targets only.
    Completions,
    /// `/v1/embeddings`, for OpenAI-compatible targets (and the mock) only.
    Embeddings,
    /// `/v1/responses`, OpenAI's Responses API, passed to OpenAI-compatible targets.
    Responses,
}

/// What the proxy asks a provider to send.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// The body, already rewritten for this target (model, stream options).
    pub body: Bytes,
    pub format: WireFormat,
    pub endpoint: Endpoint,
    /// The model asked of this target.
    pub model: String,
    pub stream: bool,
    pub request_id: String,
    /// Client headers the provider's API depends on (`anthropic-version`, `anthropic-beta`).
    pub headers: Vec<(String, String)>,
    /// The client's own credential, sent in place of the provider's key (pass-through mode;
    /// only `anthropic` providers take it).
    pub credential: Option<ClientCredential>,
    /// The most a whole (non-streamed) reply may hold (`limits.max_reply_bytes`): it is read
    /// into memory before anything is sent on.
    pub max_reply_bytes: usize,
}

/// A client's own Anthropic credential, forwarded in the header it came in. Redacted in
/// `Debug`, like every `Secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredential {
    /// `Authorization: Bearer` (Claude Code logged in with a subscription: an OAuth token).
    Bearer(crate::config::Secret),
    /// `x-api-key`: the client's own API key.
    ApiKey(crate::config::Secret),
}

impl ClientCredential {
    /// The header to send, marked sensitive so no debug output shows it.
    pub fn header(&self) -> Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> {
        let (name, text) = match self {
            Self::Bearer(token) => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            ),
            Self::ApiKey(key) => (
                reqwest::header::HeaderName::from_static("x-api-key"),
                key.expose().to_owned(),
            ),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }
}

/// A reply, delivered as soon as its status and headers are known.
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// The provider's `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// The provider said not to retry (`x-should-retry: false`): a parent session's proxy
    /// refusing a nested run's request past its budget, which no retry or breaker should
    /// treat as the provider failing.
    pub final_refusal: bool,
    /// The format of `body`: the request's, except that translating providers answer OpenAI.
    pub format: WireFormat,
    pub body: BodyStream,
}

/// The reply body, chunk by chunk, as the provider sends it.
pub type BodyStream = BoxStream<'static, Result<Bytes, ProviderError>>;

/// Where an error came from, for status codes and for the ledger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot connect to {provider}: {detail}")]
    Connect { provider: String, detail: String },
    #[error("{provider} sent no response within {seconds:.1}s")]
    FirstByteTimeout { provider: String, seconds: f64 },
    /// `resilience.deadline_ms` passed before any target started answering.
    #[error(
        "no provider started answering within {seconds:.0}s (the last tried: {provider}); resilience.deadline_ms bounds a request's attempts, retries and failovers together"
    )]
    Deadline { provider: String, seconds: f64 },
    #[error("{provider} sent nothing for {seconds:.1}s in the middle of the response")]
    IdleTimeout { provider: String, seconds: f64 },
    #[error("the connection to {provider} broke: {detail}")]
    Broken { provider: String, detail: String },
    /// smartproxy does not follow redirects: the provider's key would go with them.
    #[error(
        "{provider} answered {status}, redirecting to {location}; smartproxy does not follow redirects (they would carry your key): set the provider's base_url to the new address"
    )]
    Redirected {
        provider: String,
        status: u16,
        location: String,
    },
    /// A whole reply over `limits.max_reply_bytes`.
    #[error(
        "{provider} sent a reply larger than {limit} bytes, the most smartproxy holds in memory (limits.max_reply_bytes): ask for a stream (\"stream\": true) or raise the limit"
    )]
    TooLarge { provider: String, limit: usize },
    #[error("{0}")]
    Unavailable(String),
    /// The request cannot be expressed for this provider (a translation refused it).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Internal(String),
}

/// What kind of failure a `ProviderError` is, without its details: what status codes, error
/// codes and retry decisions are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Connect,
    FirstByteTimeout,
    IdleTimeout,
    Broken,
    Redirected,
    TooLarge,
    Unavailable,
    Rejected,
    Internal,
}

impl FailureKind {
    /// A short code for the ledger and the error body.
    pub fn code(self) -> &'static str {
        match self {
            Self::Connect => "upstream_connect_error",
            Self::FirstByteTimeout => "upstream_timeout",
            Self::IdleTimeout => "upstream_idle_timeout",
            Self::Broken => "upstream_stream_broken",
            Self::Redirected => "upstream_redirect",
            Self::TooLarge => "upstream_reply_too_large",
            Self::Unavailable => "no_available_target",
            Self::Rejected => "untranslatable_request",
            Self::Internal => "internal_error",
        }
    }
}

impl ProviderError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Connect { .. } => FailureKind::Connect,
            Self::FirstByteTimeout { .. } | Self::Deadline { .. } => FailureKind::FirstByteTimeout,
            Self::IdleTimeout { .. } => FailureKind::IdleTimeout,
            Self::Broken { .. } => FailureKind::Broken,
            Self::Redirected { .. } => FailureKind::Redirected,
            Self::TooLarge { .. } => FailureKind::TooLarge,
            Self::Unavailable(_) => FailureKind::Unavailable,
            Self::Rejected(_) => FailureKind::Rejected,
            Self::Internal(_) => FailureKind::Internal,
        }
    }

    /// A short code for the ledger and the error body.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether trying again (the same or another target) could succeed.
    pub fn retryable(&self) -> bool {
        !matches!(
            self.kind(),
            FailureKind::Internal
                | FailureKind::Unavailable
                | FailureKind::Rejected
                | FailureKind::Redirected
                | FailureKind::TooLarge
        )
    }
}

/// A provider adapter.
pub trait Provider: Send + Sync {
    /// Sends one request; resolves when the reply's status is known.
    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>>;

    /// The format the provider takes without translation. Every provider also takes OpenAI's.
    fn native_format(&self) -> WireFormat {
        WireFormat::OpenAi
    }

    /// Reads a stored Responses API object: `path` is what follows `/responses/` (an id, or
    /// `{id}/input_items`). Only OpenAI's own API stores responses.
    fn retrieve_response(
        &self,
        path: &str,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        let _ = path;
        Box::pin(async {
            Err(ProviderError::Rejected(
                "this provider stores no Responses API objects".to_owned(),
            ))
        })
    }
}

/// Builds one adapter per configured provider, in config order.
pub fn build_all(config: &Config) -> Result<Vec<Arc<dyn Provider>>, ProviderError> {
    config.providers.iter().map(|p| build(p, config)).collect()
}

fn build(provider: &ProviderConfig, config: &Config) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match provider.kind {
        ProviderKind::OpenAi => Arc::new(openai::OpenAiProvider::new(provider)?),
        ProviderKind::Mock => Arc::new(mock::MockProvider::new(config.mock.clone())),
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicProvider::new(provider)?),
        ProviderKind::Ollama => Arc::new(ollama::OllamaProvider::new(provider)?),
    })
}

/// Reads a whole body of `provider`'s, refusing one over `limit` bytes as soon as it passes it.
pub async fn collect(
    mut body: BodyStream,
    limit: usize,
    provider: &str,
) -> Result<Bytes, ProviderError> {
    let too_large = || ProviderError::TooLarge {
        provider: provider.to_owned(),
        limit,
    };
    let Some(first) = body.next().await.transpose()? else {
        return Ok(Bytes::new());
    };
    if first.len() > limit {
        return Err(too_large());
    }
    let Some(second) = body.next().await.transpose()? else {
        return Ok(first);
    };
    let mut all = Vec::with_capacity(first.len() + second.len());
    all.extend_from_slice(&first);
    all.extend_from_slice(&second);
    while all.len() <= limit
        && let Some(chunk) = body.next().await.transpose()?
    {
        all.extend_from_slice(&chunk);
    }
    if all.len() > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(all))
}
