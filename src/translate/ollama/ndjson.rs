//! OpenAI stream chunks rewritten as Ollama NDJSON lines, for Ollama clients streaming from an
//! OpenAI-compatible provider. Text flows line by line; tool calls, which OpenAI streams in
//! pieces but Ollama sends whole, are held until their choice finishes.

use bytes::Bytes;

use super::from_openai::{metrics, tool_calls};
use super::openai_shapes::{Completion, Function, ToolCall as OpenAiToolCall};
use super::{TokenUsage, done_reason_from_finish, to_json};
use crate::wire::ollama::{ChatResponse, ErrorBody, GenerateResponse, Message};

/// Which Ollama endpoint the client called, which decides the shape of each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/chat`: text in `message.content`.
    Chat,
    /// `/api/generate`: text in `response`.
    Generate,
}

/// Turns the `data:` payloads of an OpenAI chat stream into Ollama NDJSON lines.
#[derive(Debug)]
pub struct NdjsonFromOpenAi {
    kind: Endpoint,
    model: String,
    created_at: String,
    /// Tool calls being assembled, in the order their indexes first appeared.
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<TokenUsage>,
    /// A finish reason or `[DONE]` arrived: the provider finished its reply.
    complete: bool,
    /// After the final line or an error line nothing more is written.
    ended: bool,
}

#[derive(Debug)]
struct PartialCall {
    index: u32,
    name: String,
    arguments: String,
}

impl NdjsonFromOpenAi {
    /// A translator for one stream. `model` and `created_at` (RFC 3339) go on every line.
    pub fn new(kind: Endpoint, model: &str, created_at: String) -> Self {
        Self {
            kind,
            model: model.to_owned(),
            created_at,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            complete: false,
            ended: false,
        }
    }

    /// Takes one OpenAI SSE `data:` payload and returns the NDJSON lines it becomes (each ending
    /// in `\n`). `[DONE]` and empty payloads yield nothing; a provider error, a malformed chunk or
    /// unusable tool call arguments yield an `{"error": ...}` line, after which nothing more is
    /// written (usage is still read, for the ledger).
    pub fn push(&mut self, openai_chunk: &[u8]) -> Vec<Bytes> {
        let payload = openai_chunk.trim_ascii();
        if payload == b"[DONE]" {
            self.complete = true;
            return Vec::new();
        }
        if payload.is_empty() {
            return Vec::new();
        }
        let chunk: Completion = match serde_json::from_slice(payload) {
            Ok(chunk) => chunk,
            Err(_) if self.ended => return Vec::new(),
            Err(e) => return self.error(format!("provider sent a malformed stream chunk: {e}")),
        };
        if let Some(usage) = chunk.usage {
            self.usage = Some(TokenUsage {
                prompt: usage.prompt_tokens,
                completion: usage.completion_tokens,
            });
        }
        if self.ended {
            return Vec::new();
        }
        if let Some(message) = chunk.error_message() {
            return self.error(message);
        }
        let mut lines = Vec::new();
        let Some(choice) = chunk.first_choice() else {
            return lines;
        };
        if let Some(delta) = &choice.delta {
            let text = delta.text();
            let thinking = delta.thinking();
            if !text.is_empty() || thinking.is_some() {
                lines.push(self.text_line(text, thinking.map(str::to_owned)));
            }
            for (position, call) in delta.tool_calls.iter().enumerate() {
                self.add_call_piece(position, call);
            }
        }
        if let Some(reason) = &choice.finish_reason {
            self.complete = true;
            self.finish_reason = Some(reason.clone());
            lines.extend(self.flush_calls());
        }
        lines
    }

    /// The final `done: true` line with `done_reason` and the token counts, after any tool calls
    /// still held. A stream that ended without a finish reason or `[DONE]` was cut short and gets
    /// an error line instead, so the client does not take half a reply for a whole one. Returns
    /// nothing when called again or after an error line.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        let mut lines = self.flush_calls();
        if self.ended {
            return lines;
        }
        if !self.complete {
            lines.extend(
                self.error("the provider's stream ended before the reply was complete".to_owned()),
            );
            return lines;
        }
        self.ended = true;
        let done_reason = Some(done_reason_from_finish(self.finish_reason.as_deref()));
        let metrics = metrics(self.usage);
        let line = match self.kind {
            Endpoint::Chat => to_json(&ChatResponse {
                model: self.model.clone(),
                created_at: self.created_at.clone(),
                message: assistant(String::new(), None),
                done: true,
                done_reason,
                metrics,
            }),
            Endpoint::Generate => to_json(&GenerateResponse {
                model: self.model.clone(),
                created_at: self.created_at.clone(),
                done: true,
                done_reason,
                metrics,
                ..GenerateResponse::default()
            }),
        };
        lines.push(ndjson_line(line));
        lines
    }

    /// The usage the provider reported, once its usage chunk has arrived.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    /// Whether the provider finished its reply (a finish reason or `[DONE]` arrived).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    fn text_line(&self, text: String, thinking: Option<String>) -> Bytes {
        let line = match self.kind {
            Endpoint::Chat => to_json(&ChatResponse {
                model: self.model.clone(),
                created_at: self.created_at.clone(),
                message: assistant(text, thinking),
                ..ChatResponse::default()
            }),
            Endpoint::Generate => to_json(&GenerateResponse {
                model: self.model.clone(),
                created_at: self.created_at.clone(),
                response: text,
                thinking,
                ..GenerateResponse::default()
            }),
        };
        ndjson_line(line)
    }

    /// Adds one streamed piece of a tool call: the first piece names the function, the rest
    /// append to its arguments.
    fn add_call_piece(&mut self, position: usize, piece: &OpenAiToolCall) {
        let index = piece
            .index
            .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX));
        let call = match self.calls.iter().position(|c| c.index == index) {
            Some(at) => &mut self.calls[at],
            None => {
                self.calls.push(PartialCall {
                    index,
                    name: String::new(),
                    arguments: String::new(),
                });
                let last = self.calls.len() - 1;
                &mut self.calls[last]
            }
        };
        if let Some(name) = piece.function.name.as_deref() {
            // Some servers repeat the name on every piece; it is set once.
            if call.name.is_empty() {
                call.name = name.to_owned();
            }
        }
        match &piece.function.arguments {
            Some(serde_json::Value::String(more)) => call.arguments.push_str(more),
            Some(serde_json::Value::Null) | None => {}
            Some(whole) => call.arguments = whole.to_string(),
        }
    }

    /// One line holding every assembled tool call (Ollama's shape), or an error line when the
    /// arguments are not a JSON object. Generate requests have no tools, so nothing is sent.
    fn flush_calls(&mut self) -> Vec<Bytes> {
        if self.calls.is_empty() {
            return Vec::new();
        }
        let calls: Vec<OpenAiToolCall> = self
            .calls
            .drain(..)
            .map(|c| OpenAiToolCall {
                index: Some(c.index),
                function: Function {
                    name: Some(c.name),
                    arguments: Some(serde_json::Value::String(c.arguments)),
                },
            })
            .collect();
        if self.kind == Endpoint::Generate {
            return Vec::new();
        }
        match tool_calls(&calls, "tool_calls") {
            Ok(calls) => {
                let mut message = assistant(String::new(), None);
                message.tool_calls = calls;
                vec![ndjson_line(to_json(&ChatResponse {
                    model: self.model.clone(),
                    created_at: self.created_at.clone(),
                    message,
                    ..ChatResponse::default()
                }))]
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    fn error(&mut self, message: String) -> Vec<Bytes> {
        self.ended = true;
        vec![ndjson_line(to_json(&ErrorBody { error: message }))]
    }
}

fn assistant(content: String, thinking: Option<String>) -> Message {
    Message {
        role: "assistant".to_owned(),
        content,
        thinking,
        ..Message::default()
    }
}

fn ndjson_line(mut json: Vec<u8>) -> Bytes {
    json.push(b'\n');
    Bytes::from(json)
}
