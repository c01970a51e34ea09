//! OpenAI `chat.completion.chunk` events -> Anthropic stream events, for an Anthropic client
//! routed to an OpenAI-compatible provider.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::{anthropic_error_for, message_of};
use super::{TokenUsage, stop_reason, to_json};
use crate::wire::anthropic::{
    BlockDelta, ContentBlock, ErrorDetail, MessageDelta, MessagesResponse, Role, StreamEvent,
    TextBlock, ToolUseBlock, Usage,
};
use crate::wire::openai::Usage as OpenAiUsage;
use crate::wire::sse::named_event;

#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<ChunkDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A tool call seen in the stream, and the Anthropic block that carries it.
#[derive(Debug)]
struct ToolBlock {
    openai_index: Option<u64>,
    id: String,
    block: usize,
}

/// Turns OpenAI chunks into Anthropic's named events, one chunk at a time.
///
/// The first chunk opens the message (`message_start`, whose usage carries the prompt estimate
/// given to [`with_input_estimate`](Self::with_input_estimate): OpenAI reports usage only at the
/// end, and clients such as Claude Code size their context from this first figure). Text opens a `text` block and each tool call a `tool_use`
/// block, closing the block before it; argument fragments become `input_json_delta` events.
/// [`finish`](Self::finish) closes the open block and sends `message_delta` with the stop reason
/// and the full usage (cumulative, as Anthropic's are), then `message_stop`. An error chunk
/// becomes an `error` event and ends the stream. Reasoning deltas are dropped.
///
/// Providers that interleave the argument fragments of parallel tool calls get their late
/// fragments sent to the already closed block's index, which the Anthropic SDKs still apply
/// to the right block.
#[derive(Debug)]
pub struct StreamToAnthropic {
    model: String,
    message_id: String,
    started: bool,
    finished: bool,
    next_block: usize,
    /// The block that is open: its index and whether it is text.
    open: Option<(usize, bool)>,
    tools: Vec<ToolBlock>,
    finish_reason: Option<String>,
    usage: Option<TokenUsage>,
    /// Input tokens to announce in `message_start`, before the provider's count arrives.
    input_estimate: u64,
}

impl StreamToAnthropic {
    /// `requested_model`: the model name the client asked for, reported back to it.
    /// `message_id`: the `msg_...` id to give the message.
    pub fn new(requested_model: &str, message_id: &str) -> Self {
        Self {
            model: requested_model.to_owned(),
            message_id: message_id.to_owned(),
            started: false,
            finished: false,
            next_block: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
            input_estimate: 0,
        }
    }

    /// Announces `tokens` input tokens in `message_start`; the provider's real count follows in
    /// `message_delta`.
    #[must_use]
    pub fn with_input_estimate(mut self, tokens: u64) -> Self {
        self.input_estimate = tokens;
        self
    }

    /// Translates the `data:` payload of one OpenAI event into Anthropic events, each encoded
    /// as `event: NAME\ndata: {...}\n\n`. A `[DONE]` payload finishes the stream.
    pub fn push(&mut self, openai_chunk: &[u8]) -> Vec<Bytes> {
        let trimmed = openai_chunk.trim_ascii();
        if trimmed == b"[DONE]" {
            return self.finish();
        }
        if self.finished || trimmed.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let chunk: Chunk = match serde_json::from_slice(trimmed) {
            Ok(chunk) => chunk,
            Err(e) => {
                let message =
                    format!("the provider sent a stream chunk that is not valid JSON: {e}");
                self.fail(&mut out, "api_error", message);
                return out;
            }
        };
        if let Some(error) = chunk.error {
            let message = message_of(&json!({ "error": error }))
                .unwrap_or_else(|| "the provider reported an error".to_owned());
            self.fail(&mut out, anthropic_error_for(&error), message);
            return out;
        }
        self.start(&mut out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(TokenUsage::from_openai(usage));
        }
        // Anthropic has one reply per message; other choices (n > 1) have nowhere to go.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                for text in [delta.content, delta.refusal].into_iter().flatten() {
                    self.text(&mut out, text);
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.tool_call(&mut out, call);
                }
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        out
    }

    /// Ends the message: closes the open block, sends `message_delta` (stop reason and usage)
    /// and `message_stop`. Returns nothing when called again or after an error.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        self.finished = true;
        let stop = stop_reason(self.finish_reason.as_deref(), !self.tools.is_empty());
        let usage = self.usage.unwrap_or_default().to_anthropic();
        emit(
            &mut out,
            &StreamEvent::MessageDelta {
                delta: MessageDelta {
                    stop_reason: Some(stop.to_owned()),
                    stop_sequence: None,
                },
                usage: Some(usage),
            },
        );
        emit(&mut out, &StreamEvent::MessageStop);
        out
    }

    /// The usage the provider reported, None until it did.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = MessagesResponse {
            id: self.message_id.clone(),
            kind: "message".to_owned(),
            role: Role::Assistant,
            model: self.model.clone(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage {
                input_tokens: Some(self.input_estimate),
                output_tokens: Some(0),
                ..Usage::default()
            },
        };
        emit(out, &StreamEvent::MessageStart { message });
    }

    fn text(&mut self, out: &mut Vec<Bytes>, text: String) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some((index, true)) => index,
            _ => self.open_block(out, ContentBlock::Text(TextBlock::new(""))),
        };
        emit(
            out,
            &StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::TextDelta { text },
            },
        );
    }

    fn tool_call(&mut self, out: &mut Vec<Bytes>, call: ToolCallDelta) {
        let function = call.function.unwrap_or_default();
        let id = call.id.filter(|id| !id.is_empty());
        // A new id is a new call, even where a provider reuses the index; without an id the
        // fragment belongs to the call with its index, or else to the last one.
        let known = match &id {
            Some(id) => self.tools.iter().position(|t| &t.id == id),
            None => match call.index {
                Some(index) => self
                    .tools
                    .iter()
                    .rposition(|t| t.openai_index == Some(index)),
                None => self.tools.len().checked_sub(1),
            },
        };
        let block = match known {
            Some(position) => self.tools[position].block,
            None => {
                let id =
                    id.unwrap_or_else(|| format!("call_{}_{}", self.message_id, self.tools.len()));
                let block = self.open_block(
                    out,
                    ContentBlock::ToolUse(ToolUseBlock {
                        id: id.clone(),
                        name: function.name.unwrap_or_default(),
                        input: Value::Object(Map::new()),
                        extra: Map::new(),
                    }),
                );
                self.tools.push(ToolBlock {
                    openai_index: call.index,
                    id,
                    block,
                });
                block
            }
        };
        if let Some(partial_json) = function.arguments.filter(|a| !a.is_empty()) {
            emit(
                out,
                &StreamEvent::ContentBlockDelta {
                    index: block,
                    delta: BlockDelta::InputJsonDelta { partial_json },
                },
            );
        }
    }

    /// Closes the open block and starts `block`; returns its index.
    fn open_block(&mut self, out: &mut Vec<Bytes>, block: ContentBlock) -> usize {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, matches!(block, ContentBlock::Text(_))));
        emit(
            out,
            &StreamEvent::ContentBlockStart {
                index,
                content_block: block,
            },
        );
        index
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        if let Some((index, _)) = self.open.take() {
            emit(out, &StreamEvent::ContentBlockStop { index });
        }
    }

    /// Sends an `error` event; Anthropic clients stop reading there, so nothing follows it.
    fn fail(&mut self, out: &mut Vec<Bytes>, kind: &str, message: String) {
        self.finished = true;
        emit(
            out,
            &StreamEvent::Error {
                error: ErrorDetail {
                    kind: kind.to_owned(),
                    message,
                },
            },
        );
    }
}

fn emit(out: &mut Vec<Bytes>, event: &StreamEvent) {
    out.push(named_event(event.name(), &to_json(event)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    #[test]
    fn matches_snapshots() {
        snapshot::each_case("stream_to_anthropic", ".sse", |input| {
            let mut stream = StreamToAnthropic::new("claude-sonnet-4-5", "msg_test");
            let mut out = Vec::new();
            for (_, data) in snapshot::sse_events(input) {
                out.extend(stream.push(&data));
            }
            out.extend(stream.finish());
            assert!(stream.finish().is_empty(), "finish is idempotent");
            (".anthropic.json", snapshot::encoded_events(&out))
        });
    }

    #[test]
    fn reports_usage_with_cached_tokens() {
        let mut stream = StreamToAnthropic::new("c", "msg_1");
        stream.push(br#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#);
        assert_eq!(stream.usage(), None);
        stream.push(
            br#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":60}}}"#,
        );
        let usage = stream.usage().unwrap();
        assert_eq!(
            (usage.prompt, usage.completion, usage.cache_read),
            (100, 7, 60)
        );
        let out = stream.push(b"[DONE]");
        let events = snapshot::encoded_events(&out);
        assert_eq!(events[1]["event"], "message_delta");
        assert_eq!(
            events[1]["data"]["usage"],
            json!({"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60,
                   "cache_creation_input_tokens": 0})
        );
        assert!(stream.push(br#"{"choices":[]}"#).is_empty());
    }

    #[test]
    fn an_empty_stream_is_still_a_whole_message() {
        let mut stream = StreamToAnthropic::new("c", "msg_1");
        let events = snapshot::encoded_events(&stream.finish());
        let names: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
        assert_eq!(events[1]["data"]["delta"]["stop_reason"], "end_turn");
    }
}
