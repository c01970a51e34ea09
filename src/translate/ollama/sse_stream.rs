//! Ollama `/api/chat` NDJSON lines rewritten as OpenAI `chat.completion.chunk` SSE events, for
//! OpenAI clients streaming from an Ollama provider.

use bytes::Bytes;
use serde_json::{Value, json};

use super::from_ollama::{assistant_message, openai_call, parse_line};
use super::{
    TokenUsage, TranslateError, finish_from_done_reason, openai_usage, usage_from_metrics,
};
use crate::wire::openai::ErrorBody;
use crate::wire::sse::{DONE_EVENT, data_event};

/// Turns the lines of an Ollama chat stream into OpenAI SSE events.
#[derive(Debug)]
pub struct SseFromNdjson {
    model: String,
    include_usage: bool,
    created: u64,
    id: String,
    /// OpenAI names the role on the first delta only.
    role_sent: bool,
    /// Tool calls so far: the next call's stream index and id number.
    calls: usize,
    usage: Option<TokenUsage>,
    /// The `done: true` line arrived, so the stream ended normally.
    done: bool,
    /// An error event went out already; a cut stream needs no second one.
    errored: bool,
    finished: bool,
}

impl SseFromNdjson {
    /// A translator for one stream. `model`, `created` (Unix seconds) and `id` go on every chunk;
    /// `include_usage` adds the usage-only chunk before `[DONE]`, as the client asked.
    pub fn new(model: &str, include_usage: bool, created: u64, id: String) -> Self {
        Self {
            model: model.to_owned(),
            include_usage,
            created,
            id,
            role_sent: false,
            calls: 0,
            usage: None,
            done: false,
            errored: false,
            finished: false,
        }
    }

    /// Takes one NDJSON line (with or without its `\n`) and returns the SSE events it becomes,
    /// each encoded with [`data_event`]. Blank lines yield nothing; an Ollama `{"error": ...}`
    /// line or a malformed one yields an OpenAI error event, after which nothing more is written
    /// (usage is still read, for the ledger).
    pub fn push_line(&mut self, line: &[u8]) -> Vec<Bytes> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Vec::new();
        }
        // After the `done: true` line nothing more belongs to the reply: a provider that sends a
        // second one would give the client a second finish reason (found by fuzzing).
        let silent = self.errored || self.finished || self.done;
        let response = match parse_line(line, "Ollama stream line") {
            Ok(response) => response,
            Err(_) if silent => return Vec::new(),
            Err(TranslateError::Upstream(message)) => {
                return vec![self.error_event(&message, None)];
            }
            // The code tells smartproxy's relay (and the ledger) what went wrong.
            Err(e) => return vec![self.error_event(&e.to_string(), Some("upstream_malformed"))],
        };
        if silent {
            if response.done {
                self.usage = usage_from_metrics(&response.metrics);
            }
            return Vec::new();
        }
        let mut events = Vec::new();
        let mut delta = assistant_message(&response, false);
        if !response.message.tool_calls.is_empty() {
            let calls: Vec<Value> = response
                .message
                .tool_calls
                .iter()
                .map(|call| {
                    self.calls += 1;
                    openai_call(call, self.calls - 1, Some(self.calls - 1))
                })
                .collect();
            if let Value::Object(map) = &mut delta {
                map.insert("tool_calls".to_owned(), Value::Array(calls));
            }
        }
        let has_delta = delta.as_object().is_some_and(|m| !m.is_empty());
        if has_delta {
            events.push(self.chunk(delta, None));
        }
        if response.done {
            self.done = true;
            self.usage = usage_from_metrics(&response.metrics);
            let finish = finish_from_done_reason(response.done_reason.as_deref(), self.calls > 0);
            events.push(self.chunk(json!({}), Some(finish)));
        }
        events
    }

    /// The usage-only chunk (when asked for and known), then `data: [DONE]`. A stream cut before
    /// Ollama's `done: true` line gets an error event first, so the client does not take half a
    /// reply for a whole one. Returns nothing when called again.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let mut events = Vec::new();
        if !self.done && !self.errored {
            events.push(self.error_event(
                "Ollama's stream ended before the reply was complete",
                Some("upstream_truncated"),
            ));
        }
        self.finished = true;
        if let (true, Some(usage)) = (self.include_usage, self.usage) {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": openai_usage(usage),
            });
            events.push(data_event(chunk.to_string().as_bytes()));
        }
        events.push(Bytes::from_static(DONE_EVENT));
        events
    }

    /// The usage from Ollama's final line, once it has arrived.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    /// Whether Ollama's `done: true` line arrived; false means the stream was cut short.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    fn chunk(&mut self, mut delta: Value, finish_reason: Option<&str>) -> Bytes {
        if !self.role_sent {
            self.role_sent = true;
            if let Value::Object(map) = &mut delta {
                map.insert("role".to_owned(), json!("assistant"));
            }
        }
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        data_event(chunk.to_string().as_bytes())
    }

    fn error_event(&mut self, message: &str, code: Option<&str>) -> Bytes {
        self.errored = true;
        data_event(&ErrorBody::new(message, "server_error", code, None).to_json())
    }
}
