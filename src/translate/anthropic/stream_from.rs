//! Anthropic stream events -> OpenAI `chat.completion.chunk` events, for an OpenAI client routed
//! to Anthropic.

use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::openai_error_for;
use super::{TokenUsage, finish_reason, to_json};
use crate::wire::anthropic::{BlockDelta, ContentBlock, StreamEvent, Usage};
use crate::wire::estimate::TextTokens;
use crate::wire::openai::ErrorBody;
use crate::wire::sse::{DONE_EVENT, data_event};

/// A tool_use block: its Anthropic block index, and whether any arguments were sent for it.
#[derive(Debug)]
struct ToolBlock {
    block: usize,
    sent_arguments: bool,
}

/// Turns Anthropic stream events into OpenAI chunks, one event at a time.
///
/// - `message_start` gives the first chunk (role `assistant`); its id (`msg_...`) and model
///   become every chunk's `id` and `model`.
/// - `text_delta` becomes `content`, `thinking_delta` becomes `reasoning_content`; signatures
///   are dropped.
/// - A `tool_use` block start becomes a `tool_calls` delta with the call's OpenAI `index`, `id`
///   and name; its `input_json_delta` events become `arguments` deltas under the same index.
/// - `message_delta` gives the chunk carrying `finish_reason`; usage accumulates (Anthropic's
///   counts are cumulative) and is sent by [`finish`](Self::finish) when asked for.
/// - An `error` event becomes an OpenAI error chunk, `data: {"error":{...}}`.
#[derive(Debug)]
pub struct StreamFromAnthropic {
    include_usage: bool,
    created: u64,
    id: String,
    model: String,
    usage: Usage,
    saw_usage: bool,
    /// A `message_delta` brought the final output count (`message_start`'s is a placeholder).
    saw_final_usage: bool,
    /// The provider reported the input side (`input_tokens`); without it the prompt is unknown.
    saw_input: bool,
    /// `message_delta` (the stop reason) or `message_stop` arrived: the reply is whole.
    stopped: bool,
    /// An `error` event arrived (passed on as an error chunk).
    errored: bool,
    /// An event was not valid JSON.
    malformed: bool,
    /// The text, thinking and tool input the model wrote, for an estimate when the stream ends
    /// before its final count.
    output: TextTokens,
    /// The tool_use blocks seen so far, in OpenAI tool call index order.
    tool_blocks: Vec<ToolBlock>,
    finished: bool,
}

impl StreamFromAnthropic {
    /// `include_usage`: whether [`finish`](Self::finish) sends OpenAI's final usage chunk
    /// (the client's `stream_options.include_usage`). `created`: the chunks' Unix timestamp.
    pub fn new(include_usage: bool, created: u64) -> Self {
        Self {
            include_usage,
            created,
            id: String::new(),
            model: String::new(),
            usage: Usage::default(),
            saw_usage: false,
            saw_final_usage: false,
            saw_input: false,
            stopped: false,
            errored: false,
            malformed: false,
            output: TextTokens::default(),
            tool_blocks: Vec::new(),
            finished: false,
        }
    }

    /// Translates one Anthropic event (its `event:` name and `data:` payload) into zero or more
    /// OpenAI events, each encoded as `data: {...}\n\n`. The payload's own `type` decides, as
    /// Anthropic repeats the event name there; the name is taken only to match the SSE decoder.
    pub fn push(&mut self, _event_name: Option<&str>, data: &[u8]) -> Vec<Bytes> {
        if self.finished || data.iter().all(u8::is_ascii_whitespace) {
            return Vec::new();
        }
        let event: StreamEvent = match serde_json::from_slice(data) {
            Ok(event) => event,
            Err(e) => {
                self.malformed = true;
                let body = ErrorBody::new(
                    format!("the provider sent a stream event that is not valid JSON: {e}"),
                    "upstream_error",
                    Some("upstream_malformed"),
                    None,
                );
                return vec![data_event(&body.to_json())];
            }
        };
        count_output(&event, &mut self.output);
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.add_usage(&message.usage);
                vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ContentBlock::Text(block) if !block.text.is_empty() => {
                    vec![self.chunk(json!({"content": block.text}), None)]
                }
                ContentBlock::Thinking(block) if !block.thinking.is_empty() => {
                    vec![self.chunk(json!({"reasoning_content": block.thinking}), None)]
                }
                ContentBlock::ToolUse(block) => {
                    let tool_index = self.tool_blocks.len();
                    self.tool_blocks.push(ToolBlock {
                        block: index,
                        sent_arguments: false,
                    });
                    let mut out = vec![self.chunk(
                        json!({"tool_calls": [{
                            "index": tool_index,
                            "id": block.id,
                            "type": "function",
                            "function": {"name": block.name, "arguments": ""},
                        }]}),
                        None,
                    )];
                    // The start normally carries `{}` and the input follows as deltas; a
                    // non-empty input here would otherwise be lost.
                    if block.input.as_object().is_some_and(|o| !o.is_empty()) {
                        out.push(self.arguments(tool_index, &block.input.to_string()));
                    }
                    out
                }
                _ => Vec::new(),
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => {
                    vec![self.chunk(json!({"content": text}), None)]
                }
                BlockDelta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                    vec![self.chunk(json!({"reasoning_content": thinking}), None)]
                }
                BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    // Deltas of server tool blocks have no OpenAI tool call to belong to.
                    match self.tool_index(index) {
                        Some(tool_index) => vec![self.arguments(tool_index, &partial_json)],
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            },
            StreamEvent::MessageDelta { delta, usage } => {
                self.stopped = true;
                if let Some(usage) = usage {
                    self.saw_final_usage |= usage.output_tokens.is_some();
                    self.add_usage(&usage);
                }
                let finish = finish_reason(delta.stop_reason.as_deref());
                vec![self.chunk(json!({}), Some(finish))]
            }
            StreamEvent::Error { error } => {
                self.errored = true;
                let (kind, code) = openai_error_for(&error.kind);
                let body = ErrorBody::new(error.message, kind, Some(code), None);
                vec![data_event(&body.to_json())]
            }
            // A tool called without arguments may stream no input at all; OpenAI clients parse
            // the arguments as JSON, and an empty string is not JSON.
            StreamEvent::ContentBlockStop { index } => match self.tool_index(index) {
                Some(tool_index) if !self.tool_blocks[tool_index].sent_arguments => {
                    vec![self.arguments(tool_index, "{}")]
                }
                _ => Vec::new(),
            },
            StreamEvent::MessageStop => {
                self.stopped = true;
                Vec::new()
            }
            StreamEvent::Ping | StreamEvent::Unknown(_) => Vec::new(),
        }
    }

    /// Ends the stream: the usage chunk (when `include_usage` was asked for and the provider
    /// reported its final usage), then `data: [DONE]`. Returns nothing when called again. A
    /// stream that ended before its final count sends no usage: `message_start`'s output count
    /// is a placeholder, and the client (and smartproxy's ledger) would take it for the truth.
    /// A stream cut before its stop (no `message_delta`, `message_stop`, nor an error chunk
    /// already sent) gets no `[DONE]` either: the relay sees the cut and tells the client, who must not take half a
    /// reply for a whole one.
    pub fn finish(&mut self) -> Vec<Bytes> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        if !self.stopped && !self.errored && !self.malformed {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(usage) = self.final_usage().filter(|_| self.include_usage) {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage.to_openai_json(),
            });
            out.push(data_event(&to_json(&chunk)));
        }
        out.push(Bytes::from_static(DONE_EVENT));
        out
    }

    /// The usage reported so far, None before the provider reported any (after
    /// `message_start` alone, the input side is known and the output count is a placeholder).
    pub fn usage(&self) -> Option<TokenUsage> {
        self.saw_usage
            .then(|| TokenUsage::from_anthropic(&self.usage))
    }

    /// The usage once the provider reported its final output count (`message_delta`) and the
    /// input side: a count with no input would bill the prompt as 0.
    pub fn final_usage(&self) -> Option<TokenUsage> {
        self.usage()
            .filter(|_| self.saw_final_usage && self.saw_input)
    }

    /// The input side the provider reported (`message_start`), None when it reported none.
    pub fn reported_input(&self) -> Option<TokenUsage> {
        self.usage().filter(|_| self.saw_input)
    }

    /// The final output count the provider reported (`message_delta`), if it did.
    pub fn reported_output(&self) -> Option<u64> {
        self.usage()
            .filter(|_| self.saw_final_usage)
            .map(|u| u.completion)
    }

    /// Whether the reply was whole: its stop (`message_delta` or `message_stop`) arrived.
    pub fn is_complete(&self) -> bool {
        self.stopped
    }

    /// Whether an `error` event arrived.
    pub fn is_errored(&self) -> bool {
        self.errored
    }

    /// Whether an event was not valid JSON.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// Estimated tokens of the output (text, thinking, tool input) seen so far.
    pub fn output_tokens(&self) -> u64 {
        self.output.tokens()
    }

    /// Anthropic's counts are running totals: a field that is present replaces the last value.
    fn add_usage(&mut self, usage: &Usage) {
        fn take(into: &mut Option<u64>, from: Option<u64>) {
            if from.is_some() {
                *into = from;
            }
        }
        take(&mut self.usage.input_tokens, usage.input_tokens);
        take(&mut self.usage.output_tokens, usage.output_tokens);
        take(
            &mut self.usage.cache_read_input_tokens,
            usage.cache_read_input_tokens,
        );
        take(
            &mut self.usage.cache_creation_input_tokens,
            usage.cache_creation_input_tokens,
        );
        if usage.cache_creation.is_some() {
            self.usage.cache_creation = usage.cache_creation;
        }
        if usage.server_tool_use.is_some() {
            self.usage.server_tool_use = usage.server_tool_use;
        }
        // An empty `usage: {}` (or none, which reads as one) reports nothing: counting it would
        // record a prompt of 0.
        self.saw_input |= usage.input_tokens.is_some();
        self.saw_usage |= usage.input_tokens.is_some()
            || usage.output_tokens.is_some()
            || usage.cache_read_input_tokens.is_some()
            || usage.cache_creation_input_tokens.is_some();
    }

    fn tool_index(&self, block: usize) -> Option<usize> {
        self.tool_blocks.iter().position(|t| t.block == block)
    }

    fn arguments(&mut self, tool_index: usize, arguments: &str) -> Bytes {
        if let Some(tool) = self.tool_blocks.get_mut(tool_index) {
            tool.sent_arguments = true;
        }
        self.chunk(
            json!({"tool_calls": [{"index": tool_index, "function": {"arguments": arguments}}]}),
            None,
        )
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        });
        data_event(&to_json(&chunk))
    }
}

/// Adds the output an event carries to a running estimate.
fn count_output(event: &StreamEvent, output: &mut TextTokens) {
    match event {
        StreamEvent::ContentBlockStart { content_block, .. } => match content_block {
            ContentBlock::Text(block) => output.push(&block.text),
            ContentBlock::Thinking(block) => output.push(&block.thinking),
            _ => {}
        },
        StreamEvent::ContentBlockDelta { delta, .. } => match delta {
            BlockDelta::TextDelta { text } => output.push(text),
            BlockDelta::ThinkingDelta { thinking } => output.push(thinking),
            BlockDelta::InputJsonDelta { partial_json } => output.push_json(partial_json),
            _ => {}
        },
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    /// Cases whose name contains `no_usage` run without `include_usage`.
    #[test]
    fn matches_snapshots() {
        snapshot::each_named_case("stream_from_anthropic", ".sse", |case, input| {
            let mut stream = StreamFromAnthropic::new(!case.contains("no_usage"), 1_700_000_000);
            let mut out = Vec::new();
            for (name, data) in snapshot::sse_events(input) {
                out.extend(stream.push(name.as_deref(), &data));
            }
            out.extend(stream.finish());
            assert!(stream.finish().is_empty(), "finish is idempotent");
            (".openai.json", snapshot::encoded_events(&out))
        });
    }

    #[test]
    fn accumulates_usage_with_cache_tokens() {
        let mut stream = StreamFromAnthropic::new(true, 0);
        assert_eq!(stream.usage(), None);
        stream.push(
            Some("message_start"),
            br#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":1000,"cache_creation_input_tokens":50}}}"#,
        );
        stream.push(
            Some("message_delta"),
            br#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":30}}"#,
        );
        assert_eq!(
            stream.usage(),
            Some(TokenUsage {
                prompt: 1062,
                completion: 30,
                cache_read: 1000,
                cache_creation: 50,
                ..TokenUsage::default()
            })
        );
    }

    #[test]
    fn ignores_empty_events_and_reports_garbage() {
        let mut stream = StreamFromAnthropic::new(false, 0);
        assert!(stream.push(None, b"").is_empty());
        let out = stream.push(Some("message_delta"), b"{not json");
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with(b"data: {\"error\":"));
        assert_eq!(stream.finish(), vec![Bytes::from_static(DONE_EVENT)]);
        assert!(stream.push(None, br#"{"type":"ping"}"#).is_empty());
    }
}
