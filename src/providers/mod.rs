//! Provider adapters: one small `Provider` trait, one implementation per kind. A provider does
//! HTTP and auth; it sends an OpenAI Chat Completions body and returns the reply as it came.

pub mod mock;
pub mod openai;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::config::{Config, ProviderConfig, ProviderKind};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the proxy asks a provider to send.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// A Chat Completions body, already rewritten for this provider (model, stream options).
    pub body: Bytes,
    pub stream: bool,
    pub request_id: String,
}

/// A reply, delivered as soon as its status and headers are known.
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// The provider's `Retry-After`, as sent.
    pub retry_after: Option<String>,
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
    #[error("{provider} sent nothing for {seconds:.1}s in the middle of the response")]
    IdleTimeout { provider: String, seconds: f64 },
    #[error("the connection to {provider} broke: {detail}")]
    Broken { provider: String, detail: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ProviderError {
    /// A short code for the ledger and the error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "upstream_connect_error",
            Self::FirstByteTimeout { .. } => "upstream_timeout",
            Self::IdleTimeout { .. } => "upstream_idle_timeout",
            Self::Broken { .. } => "upstream_stream_broken",
            Self::Unavailable(_) => "no_available_target",
            Self::Internal(_) => "internal_error",
        }
    }

    /// Whether trying again (the same or another target) could succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Internal(_) | Self::Unavailable(_))
    }
}

/// A provider adapter.
pub trait Provider: Send + Sync {
    /// Sends one request; resolves when the reply's status is known.
    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>>;
}

/// Builds one adapter per configured provider, in config order.
pub fn build_all(config: &Config) -> Result<Vec<Arc<dyn Provider>>, ProviderError> {
    config.providers.iter().map(|p| build(p, config)).collect()
}

fn build(provider: &ProviderConfig, config: &Config) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match provider.kind {
        ProviderKind::OpenAi => Arc::new(openai::OpenAiProvider::new(provider)?),
        ProviderKind::Mock => Arc::new(mock::MockProvider::new(config.mock.clone())),
        ProviderKind::Anthropic | ProviderKind::Ollama => {
            return Err(ProviderError::Internal(format!(
                "provider {}: the {} adapter is not built into this version yet",
                provider.name,
                provider.kind.as_str()
            )));
        }
    })
}
