//! The built-in `mock` provider: deterministic OpenAI-shaped replies with realistic usage,
//! streamed or whole, with optional latency and scripted replies. No key, no network: agents can
//! be tested offline at no cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use sha2::Digest as _;

use super::{
    BoxFuture, Endpoint, Provider, ProviderError, UpstreamRequest, UpstreamResponse, WireFormat,
};
use crate::config::{MockConfig, MockReply};
use crate::wire::openai::{ChatRequestView, EmbeddingsView};
use crate::wire::sse;

pub const DEFAULT_REPLY: &str = "Hello from the smartproxy mock provider. This reply is deterministic and never left your machine.";

pub struct MockProvider {
    config: MockConfig,
    turn: Arc<AtomicUsize>,
}

impl MockProvider {
    pub fn new(config: MockConfig) -> Self {
        Self {
            config,
            turn: Arc::default(),
        }
    }

    /// The next reply of the script, in turn; the default reply without a script.
    fn next_reply(&self) -> MockReply {
        if self.config.script.is_empty() {
            return MockReply::Text(DEFAULT_REPLY.to_owned());
        }
        let n = self.turn.fetch_add(1, Ordering::Relaxed);
        self.config.script[n % self.config.script.len()].clone()
    }
}

impl Provider for MockProvider {
    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        Box::pin(async move {
            if !self.config.latency.is_zero() {
                tokio::time::sleep(self.config.latency).await;
            }
            if request.format != WireFormat::OpenAi
                || matches!(
                    request.endpoint,
                    Endpoint::Completions | Endpoint::Responses
                )
            {
                return Err(ProviderError::Rejected(
                    "the mock provider answers chat completions and embeddings only".to_owned(),
                ));
            }
            if request.endpoint == Endpoint::Embeddings {
                return embeddings_response(&request.body);
            }
            let view = ChatRequestView::parse(&request.body).map_err(|e| {
                ProviderError::Internal(format!("mock provider got a bad request: {}", e.message))
            })?;
            let (content, status, message) = match self.next_reply() {
                MockReply::Text(text) => (text, None, None),
                MockReply::Scripted {
                    content,
                    status,
                    message,
                } => (content.unwrap_or_default(), status, message),
            };
            if let Some(status) = status.filter(|s| *s >= 400) {
                return Ok(error_response(status, message));
            }
            let (content, finish_reason) = fit_to_cap(content, view.output_cap());
            let reply = Reply {
                id: format!(
                    "chatcmpl-mock-{}",
                    request.request_id.trim_start_matches("req_")
                ),
                model: view.model.to_string(),
                created: super::http::unix_now(),
                prompt_tokens: mock_tokens(view.messages.get().len()),
                content,
                finish_reason,
            };
            if view.is_stream() {
                Ok(stream_response(
                    &reply,
                    view.wants_stream_usage(),
                    self.config.chunk_delay,
                ))
            } else {
                Ok(UpstreamResponse {
                    status: 200,
                    content_type: Some("application/json".to_owned()),
                    retry_after: None,
                    final_refusal: false,
                    format: WireFormat::OpenAi,
                    body: once(Bytes::from(reply.completion().to_string())),
                })
            }
        })
    }
}

struct Reply {
    id: String,
    model: String,
    created: u64,
    prompt_tokens: u64,
    content: String,
    /// `stop`, or `length` when the client's `max_tokens` cut the reply short.
    finish_reason: &'static str,
}

/// The mock's own token count: a token per four bytes (of the JSON it was sent, of the text it
/// writes), simple enough for tests to predict.
fn mock_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// The reply cut to the client's output cap, as a real model stops at `max_tokens`: whole words
/// while they fit (the mock counts a token per four bytes, as its usage does), and
/// `finish_reason: length` when anything was cut.
fn fit_to_cap(content: String, cap: Option<u64>) -> (String, &'static str) {
    let Some(cap) = cap else {
        return (content, "stop");
    };
    let max_bytes = usize::try_from(cap.saturating_mul(4)).unwrap_or(usize::MAX);
    if content.len() <= max_bytes {
        return (content, "stop");
    }
    let mut end = 0;
    for piece in content.split_inclusive(' ') {
        if end + piece.len() > max_bytes {
            break;
        }
        end += piece.len();
    }
    if end == 0 {
        // Not even the first word fits: cut inside it, on a character boundary.
        end = max_bytes;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
    }
    let mut cut = content;
    cut.truncate(end);
    (cut, "length")
}

impl Reply {
    fn usage(&self) -> serde_json::Value {
        let completion = mock_tokens(self.content.len());
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        })
    }

    fn completion(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "smartproxy-mock",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.content, "refusal": null},
                "logprobs": null,
                "finish_reason": self.finish_reason,
            }],
            "usage": self.usage(),
        })
    }

    fn chunk(
        &self,
        delta: serde_json::Value,
        finish: Option<&str>,
        with_usage_field: bool,
    ) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "smartproxy-mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if with_usage_field {
            chunk["usage"] = serde_json::Value::Null;
        }
        sse::data_event(chunk.to_string().as_bytes())
    }

    /// The events of a streamed reply, as OpenAI sends them: a role chunk, one chunk per word, a
    /// finish chunk, the usage chunk when asked for, then `[DONE]`.
    fn events(&self, include_usage: bool) -> Vec<Bytes> {
        let mut events = vec![self.chunk(
            json!({"role": "assistant", "content": ""}),
            None,
            include_usage,
        )];
        for piece in self.content.split_inclusive(' ') {
            events.push(self.chunk(json!({"content": piece}), None, include_usage));
        }
        events.push(self.chunk(json!({}), Some(self.finish_reason), include_usage));
        if include_usage {
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "smartproxy-mock",
                "choices": [],
                "usage": self.usage(),
            });
            events.push(sse::data_event(usage.to_string().as_bytes()));
        }
        events.push(Bytes::from_static(sse::DONE_EVENT));
        events
    }
}

fn stream_response(
    reply: &Reply,
    include_usage: bool,
    delay: std::time::Duration,
) -> UpstreamResponse {
    let events = reply.events(include_usage);
    let body = futures_util::stream::iter(events)
        .then(move |event| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(event)
        })
        .boxed();
    UpstreamResponse {
        status: 200,
        content_type: Some("text/event-stream".to_owned()),
        retry_after: None,
        final_refusal: false,
        format: WireFormat::OpenAi,
        body,
    }
}

/// Length of the mock's embedding vectors.
const EMBEDDING_DIMENSIONS: usize = 8;

/// Deterministic embeddings (the same text always gets the same vector) with OpenAI's usage.
fn embeddings_response(body: &[u8]) -> Result<UpstreamResponse, ProviderError> {
    let view = EmbeddingsView::parse(body).map_err(|e| {
        ProviderError::Internal(format!("mock provider got a bad request: {}", e.message))
    })?;
    let inputs: Vec<String> = match serde_json::from_str::<serde_json::Value>(view.input.get()) {
        Ok(serde_json::Value::Array(items)) => items.iter().map(ToString::to_string).collect(),
        Ok(single) => vec![single.to_string()],
        Err(_) => Vec::new(),
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let digest = sha2::Sha256::digest(text.as_bytes());
            let vector: Vec<f64> = digest[..EMBEDDING_DIMENSIONS]
                .iter()
                .map(|b| f64::from(*b) / 255.0 - 0.5)
                .collect();
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let tokens = mock_tokens(view.input.get().len());
    let reply = json!({
        "object": "list",
        "data": data,
        "model": view.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok(UpstreamResponse {
        status: 200,
        content_type: Some("application/json".to_owned()),
        retry_after: None,
        final_refusal: false,
        format: WireFormat::OpenAi,
        body: once(Bytes::from(reply.to_string())),
    })
}

fn error_response(status: u16, message: Option<String>) -> UpstreamResponse {
    let kind = match status {
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let message = message.unwrap_or_else(|| format!("scripted mock error {status}"));
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    UpstreamResponse {
        status,
        content_type: Some("application/json".to_owned()),
        retry_after: None,
        final_refusal: false,
        format: WireFormat::OpenAi,
        body: once(Bytes::from(body.to_string())),
    }
}

fn once(bytes: Bytes) -> super::BodyStream {
    futures_util::stream::once(async move { Ok(bytes) }).boxed()
}

/// What `GET /v1/models` lists for the mock provider (it answers to any model name).
pub const LISTED_MODELS: &[&str] = &[
    "gpt-4o-mini",
    "gpt-4o",
    "claude-sonnet-4-5",
    "deepseek-chat",
    "mock",
];

#[cfg(test)]
mod tests {
    use super::fit_to_cap;

    #[test]
    fn replies_within_the_cap_are_whole() {
        let (text, finish) = fit_to_cap("one two".to_owned(), Some(2));
        assert_eq!((text.as_str(), finish), ("one two", "stop"));
        let (text, finish) = fit_to_cap("one two".to_owned(), None);
        assert_eq!((text.as_str(), finish), ("one two", "stop"));
    }

    #[test]
    fn longer_replies_stop_at_a_word_inside_the_cap() {
        // Two tokens = eight bytes: "one two " fits, "three" does not.
        let (text, finish) = fit_to_cap("one two three four".to_owned(), Some(2));
        assert_eq!((text.as_str(), finish), ("one two ", "length"));
        let (text, finish) = fit_to_cap("extraordinarily".to_owned(), Some(1));
        assert_eq!((text.as_str(), finish), ("extr", "length"));
        let (text, finish) = fit_to_cap("ééééé".to_owned(), Some(1));
        assert_eq!((text.as_str(), finish), ("éé", "length"));
        let (text, _) = fit_to_cap("abc".to_owned(), Some(0));
        assert_eq!(text, "");
    }
}
