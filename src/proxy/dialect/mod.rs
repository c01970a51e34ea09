//! Everything that differs by the format a client speaks, in one place: how its requests are
//! read (`request`), how replies, errors and stream events are framed for it (`stream`), and the
//! names and content types it expects. The pipeline itself never branches on the format.

mod phases;
mod request;
mod stream;

pub use request::{Inbound, TurnReading, read};
pub use stream::StreamFraming;

use super::error::ApiError;
use crate::providers::Endpoint;
use crate::translate::{anthropic, ollama};
use bytes::Bytes;

/// The format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/completions`, passed through to OpenAI-compatible targets.
    Completions,
    /// `POST /v1/embeddings`, passed through to OpenAI-compatible targets.
    Embeddings,
    /// `POST /v1/responses`, OpenAI's Responses API, passed through to OpenAI-compatible targets.
    Responses,
    /// `POST /v1/messages`
    Anthropic,
    /// `POST /api/chat`
    OllamaChat,
    /// `POST /api/generate`
    OllamaGenerate,
}

impl Dialect {
    /// The endpoint name in the ledger.
    pub fn label(self) -> &'static str {
        match self {
            Self::OpenAi => "chat.completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
            Self::Anthropic => "messages",
            Self::OllamaChat => "ollama.chat",
            Self::OllamaGenerate => "ollama.generate",
        }
    }

    /// The path clients of this format post to, for messages.
    pub fn path(self) -> &'static str {
        match self {
            Self::OpenAi => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::Responses => "/v1/responses",
            Self::Anthropic => "/v1/messages",
            Self::OllamaChat => "/api/chat",
            Self::OllamaGenerate => "/api/generate",
        }
    }

    /// The provider endpoint requests of this format go to.
    pub fn endpoint(self) -> Endpoint {
        match self {
            Self::Completions => Endpoint::Completions,
            Self::Embeddings => Endpoint::Embeddings,
            Self::Responses => Endpoint::Responses,
            _ => Endpoint::Chat,
        }
    }

    /// Whether the client speaks OpenAI's format itself (its bodies go out as they came).
    pub fn is_openai(self) -> bool {
        matches!(
            self,
            Self::OpenAi | Self::Completions | Self::Embeddings | Self::Responses
        )
    }

    /// Whether requests are chat conversations (in any format): what the cache and the
    /// transforms apply to. Legacy completions, embeddings and Responses API requests pass
    /// through as they are.
    pub fn is_chat(self) -> bool {
        !matches!(self, Self::Completions | Self::Embeddings | Self::Responses)
    }

    /// Whether the client speaks Ollama's format.
    pub fn is_ollama(self) -> bool {
        matches!(self, Self::OllamaChat | Self::OllamaGenerate)
    }

    /// The content type of a streamed reply in this format.
    pub fn stream_content_type(self) -> &'static str {
        if self.is_ollama() {
            "application/x-ndjson"
        } else {
            "text/event-stream"
        }
    }

    /// The content type of a whole reply: OpenAI clients get the provider's own.
    pub fn reply_content_type(self, upstream: Option<String>) -> Option<String> {
        if self.is_openai() {
            upstream
        } else {
            Some("application/json".to_owned())
        }
    }

    /// An OpenAI-shaped error body (a provider's or smartproxy's) in this format's shape.
    pub fn error_body(self, status: u16, openai_body: Bytes) -> Bytes {
        match self {
            Self::OpenAi | Self::Completions | Self::Embeddings | Self::Responses => openai_body,
            Self::Anthropic => Bytes::from(anthropic::error_to_anthropic(status, &openai_body)),
            Self::OllamaChat | Self::OllamaGenerate => {
                Bytes::from(ollama::error_to_ollama(status, &openai_body))
            }
        }
    }

    /// smartproxy's own error in this format's shape.
    pub fn api_error_body(self, err: &ApiError) -> Bytes {
        match self {
            Self::Anthropic => Bytes::from(err.to_anthropic_json()),
            _ => self.error_body(err.status().as_u16(), Bytes::from(err.to_json())),
        }
    }

    /// A successful OpenAI reply converted into this format (`model`: the name the client
    /// asked for, which Anthropic replies repeat).
    pub fn reply_from_openai(self, body: Bytes, model: &str) -> Result<Bytes, String> {
        let converted = match self {
            Self::OpenAi | Self::Completions | Self::Embeddings | Self::Responses => {
                return Ok(body);
            }
            Self::Anthropic => anthropic::response_to_anthropic(&body, model)
                .map(|t| t.body)
                .map_err(|e| e.to_string()),
            Self::OllamaChat => ollama::chat_response_from_openai(&body, &rfc3339_now())
                .map(|t| t.body)
                .map_err(|e| e.to_string()),
            Self::OllamaGenerate => ollama::generate_response_from_openai(&body, &rfc3339_now())
                .map(|t| t.body)
                .map_err(|e| e.to_string()),
        };
        converted.map(Bytes::from)
    }
}

/// RFC 3339 time now, for Ollama's `created_at`.
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
