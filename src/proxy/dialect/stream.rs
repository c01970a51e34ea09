//! How a streamed reply is framed for each client format: OpenAI SSE as it came, OpenAI chunks
//! converted to Anthropic's events or Ollama's NDJSON lines, or an Anthropic provider's events
//! passed to an Anthropic client untouched.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{Dialect, rfc3339_now};
use crate::providers::WireFormat;
use crate::proxy::context::PromptEstimate;
use crate::translate::anthropic::{StreamFromAnthropic, StreamToAnthropic, error_to_anthropic};
use crate::translate::ollama::{self, NdjsonFromOpenAi, error_to_ollama};
use crate::translate::responses::{StreamToResponses, ToolKinds};
use crate::wire::sse;

/// What the client receives of a stream.
pub enum StreamFraming {
    /// OpenAI events; `drop_usage_chunk` when the proxy asked for usage on the client's behalf.
    OpenAi { drop_usage_chunk: bool },
    /// OpenAI events converted to Anthropic's.
    Anthropic(Box<StreamToAnthropic>),
    /// OpenAI events converted to Ollama's NDJSON lines.
    Ndjson(Box<NdjsonFromOpenAi>),
    /// Anthropic events from an Anthropic provider, forwarded untouched; the translator only
    /// reads the token counts.
    AnthropicNative(Box<StreamFromAnthropic>),
    /// Responses API events, forwarded untouched (usage is read from `response.completed`).
    Responses,
    /// OpenAI chat chunks converted to Responses API events.
    ResponsesFromChat(Box<StreamToResponses>),
}

impl StreamFraming {
    /// The framing for a client speaking `dialect` of a stream in `format`.
    pub fn for_client(
        dialect: Dialect,
        format: WireFormat,
        request_id: &str,
        requested_model: &str,
        prompt: &PromptEstimate,
        client_wants_usage: bool,
        responses_from_chat: Option<ToolKinds>,
    ) -> Self {
        if let Some(kinds) = responses_from_chat {
            let id = crate::translate::responses::response_id(request_id);
            return Self::ResponsesFromChat(Box::new(StreamToResponses::new(
                &id,
                requested_model,
                crate::providers::http::unix_now(),
                kinds,
            )));
        }
        match (dialect, format) {
            (Dialect::Anthropic, WireFormat::Anthropic) => {
                Self::AnthropicNative(Box::new(StreamFromAnthropic::new(true, 0)))
            }
            (Dialect::Anthropic, WireFormat::OpenAi) => {
                let id = format!("msg_{}", request_id.trim_start_matches("req_"));
                Self::Anthropic(Box::new(
                    StreamToAnthropic::new(requested_model, &id)
                        .with_input_estimate(prompt.tokens()),
                ))
            }
            (Dialect::OllamaChat | Dialect::OllamaGenerate, _) => {
                let kind = if dialect == Dialect::OllamaChat {
                    ollama::Endpoint::Chat
                } else {
                    ollama::Endpoint::Generate
                };
                Self::Ndjson(Box::new(NdjsonFromOpenAi::new(
                    kind,
                    requested_model,
                    rfc3339_now(),
                )))
            }
            (Dialect::Responses, _) => Self::Responses,
            (Dialect::OpenAi | Dialect::Completions | Dialect::Embeddings, _) => Self::OpenAi {
                drop_usage_chunk: !client_wants_usage,
            },
        }
    }

    /// The Anthropic provider's stream, when it passes through untouched.
    pub fn native(&mut self) -> Option<&mut StreamFromAnthropic> {
        match self {
            Self::AnthropicNative(counter) => Some(counter),
            _ => None,
        }
    }

    /// The token counter of an untouched Anthropic stream.
    pub fn native_ref(&self) -> Option<&StreamFromAnthropic> {
        match self {
            Self::AnthropicNative(counter) => Some(counter),
            _ => None,
        }
    }

    /// Whether the stream is the Responses API's typed events.
    pub fn is_responses(&self) -> bool {
        matches!(self, Self::Responses)
    }

    /// Whether usage-only chunks the client did not ask for are held back.
    pub fn drops_usage_chunks(&self) -> bool {
        matches!(
            self,
            Self::OpenAi {
                drop_usage_chunk: true
            }
        )
    }

    /// Whether the client reads the provider's own events (so partial bytes may be passed on).
    pub fn passes_events_through(&self) -> bool {
        matches!(
            self,
            Self::OpenAi { .. } | Self::AnthropicNative(_) | Self::Responses
        )
    }

    /// Whether the client's format needs an ending of smartproxy's writing when the provider
    /// stops without `[DONE]` (converters ignore a second finish).
    pub fn needs_ending(&self) -> bool {
        matches!(
            self,
            Self::Anthropic(_) | Self::Ndjson(_) | Self::ResponsesFromChat(_)
        )
    }

    /// One OpenAI chunk payload in the client's format, appended to `out` (`raw`: the event as
    /// it came, for OpenAI clients).
    pub fn chunk(&mut self, payload: &[u8], raw: Option<Bytes>, out: &mut VecDeque<Bytes>) {
        match self {
            Self::OpenAi { .. } => out.push_back(raw.unwrap_or_else(|| sse::data_event(payload))),
            Self::Anthropic(conv) => out.extend(conv.push(payload)),
            Self::Ndjson(conv) => out.extend(conv.push(payload)),
            Self::ResponsesFromChat(conv) => out.extend(conv.push(payload)),
            Self::AnthropicNative(_) | Self::Responses => {}
        }
    }

    /// The end of the OpenAI stream in the client's format.
    pub fn finish(&mut self, done_event: Option<Bytes>, out: &mut VecDeque<Bytes>) {
        match self {
            Self::OpenAi { .. } => out.extend(done_event),
            Self::Anthropic(conv) => out.extend(conv.finish()),
            Self::Ndjson(conv) => out.extend(conv.finish()),
            Self::ResponsesFromChat(conv) => out.extend(conv.finish()),
            Self::AnthropicNative(_) | Self::Responses => {}
        }
    }

    /// An OpenAI-shaped error body as the event that ends the client's stream.
    pub fn error_event(&self, openai_body: &[u8]) -> Bytes {
        match self {
            Self::OpenAi { .. } => sse::data_event(openai_body),
            // The Responses API's own error event: `{"type":"error", "code", "message"}`.
            Self::Responses | Self::ResponsesFromChat(_) => {
                sse::named_event("error", &responses_error(openai_body))
            }
            Self::Anthropic(_) | Self::AnthropicNative(_) => {
                sse::named_event("error", &error_to_anthropic(502, openai_body))
            }
            Self::Ndjson(_) => {
                let mut line = error_to_ollama(502, openai_body);
                line.push(b'\n');
                Bytes::from(line)
            }
        }
    }
}

/// An OpenAI error body (`{"error":{"message","type","code"}}`) as a Responses API `error`
/// stream event.
fn responses_error(openai_body: &[u8]) -> Vec<u8> {
    let parsed: serde_json::Value = serde_json::from_slice(openai_body).unwrap_or_default();
    let error = &parsed["error"];
    serde_json::json!({
        "type": "error",
        "code": error["code"],
        "message": error["message"],
        "param": error["param"],
    })
    .to_string()
    .into_bytes()
}
