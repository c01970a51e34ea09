//! Pure translation between OpenAI Chat Completions and Anthropic's Messages API, both
//! directions, streaming included. No I/O and no clock: timestamps and ids come in as arguments.
//!
//! Two paths use it:
//! - an OpenAI client routed to an Anthropic provider: [`request_to_anthropic`], then
//!   [`response_from_anthropic`], [`StreamFromAnthropic`] or [`error_from_anthropic`];
//! - an Anthropic client routed to an OpenAI-compatible provider: [`request_from_anthropic`],
//!   then [`response_to_anthropic`], [`StreamToAnthropic`] or [`error_to_anthropic`].
//!
//! Native traffic (Anthropic client to Anthropic provider, OpenAI to OpenAI) is not translated
//! at all, so thinking blocks, signatures and every other field pass through untouched there.
//! Across protocols, Anthropic thinking text becomes OpenAI's `reasoning_content` and signatures
//! are dropped; OpenAI reasoning is not turned into Anthropic thinking, because a block without a
//! valid signature would be refused if the conversation later reaches Anthropic itself.

mod errors;
mod openai;
mod request_from;
mod request_to;
mod response_from;
mod response_to;
mod stream_from;
mod stream_to;

#[cfg(test)]
mod snapshot;

pub use errors::{error_from_anthropic, error_to_anthropic};
pub use request_from::request_from_anthropic;
pub use request_to::request_to_anthropic;
pub use response_from::{content_tokens, response_from_anthropic};
pub use response_to::response_to_anthropic;
pub use stream_from::StreamFromAnthropic;
pub use stream_to::StreamToAnthropic;

use serde_json::{Value, json};

use crate::wire::anthropic::Usage as AnthropicUsage;
use crate::wire::openai::Usage as OpenAiUsage;
use crate::wire::openai::{CacheCreationDetails, ServerToolUse};

/// A translated complete response: the body to send to the client and the usage it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub body: Vec<u8>,
    pub usage: Option<TokenUsage>,
}

/// Token counts in one shape for both protocols.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenUsage {
    /// All input tokens, cache reads and cache writes included (OpenAI's convention; Anthropic's
    /// `input_tokens` leaves the cached ones out).
    pub prompt: u64,
    pub completion: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    /// Of `cache_creation`, the tokens written with a 1-hour lifetime (billed higher).
    pub cache_creation_1h: u64,
    /// Web searches the provider ran (billed per call).
    pub web_searches: u64,
}

impl TokenUsage {
    /// From Anthropic usage, where missing fields count as zero. Sums saturate: the counts come
    /// from the provider, and a wrapped sum would undercount (and panic in debug builds).
    pub fn from_anthropic(usage: &AnthropicUsage) -> Self {
        let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
        let cache_creation = usage.cache_creation_input_tokens.unwrap_or(0);
        Self {
            prompt: usage
                .input_tokens
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(cache_creation),
            completion: usage.output_tokens.unwrap_or(0),
            cache_read,
            cache_creation,
            cache_creation_1h: usage
                .cache_creation
                .and_then(|c| c.ephemeral_1h_input_tokens)
                .unwrap_or(0),
            web_searches: usage
                .server_tool_use
                .and_then(|s| s.web_search_requests)
                .unwrap_or(0),
        }
    }

    /// From OpenAI usage; only gateways such as LiteLLM report cache writes there.
    pub fn from_openai(usage: &OpenAiUsage) -> Self {
        Self {
            prompt: usage.prompt(),
            completion: usage.completion_tokens,
            cache_read: usage.cached_tokens(),
            cache_creation: usage.cache_creation_input_tokens.unwrap_or(0),
            cache_creation_1h: usage.cache_write_1h(),
            web_searches: usage.web_searches(),
        }
    }

    /// The `usage` object of an OpenAI response or final stream chunk.
    /// Cache writes, which OpenAI's usage has no field for, go in LiteLLM's
    /// `cache_creation_input_tokens` when there are any.
    pub fn to_openai_json(&self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt.saturating_add(self.completion),
            "prompt_tokens_details": {"cached_tokens": self.cache_read},
        });
        if self.cache_creation > 0 {
            usage["cache_creation_input_tokens"] = json!(self.cache_creation);
        }
        // LiteLLM's shapes for what else Anthropic bills, so the cost can be told downstream.
        if self.cache_creation_1h > 0 {
            usage["prompt_tokens_details"]["cache_creation_token_details"] =
                json!(self.cache_creation_details());
        }
        if self.web_searches > 0 {
            usage["server_tool_use"] = json!({"web_search_requests": self.web_searches});
        }
        usage
    }

    /// Anthropic usage with every field set; `input_tokens` without the cached tokens.
    pub fn to_anthropic(&self) -> AnthropicUsage {
        AnthropicUsage {
            input_tokens: Some(
                self.prompt
                    .saturating_sub(self.cache_read)
                    .saturating_sub(self.cache_creation),
            ),
            output_tokens: Some(self.completion),
            cache_read_input_tokens: Some(self.cache_read),
            cache_creation_input_tokens: Some(self.cache_creation),
            cache_creation: (self.cache_creation_1h > 0).then(|| self.cache_creation_details()),
            server_tool_use: (self.web_searches > 0).then_some(ServerToolUse {
                web_search_requests: Some(self.web_searches),
            }),
        }
    }

    fn cache_creation_details(&self) -> CacheCreationDetails {
        CacheCreationDetails {
            ephemeral_5m_input_tokens: Some(
                self.cache_creation.saturating_sub(self.cache_creation_1h),
            ),
            ephemeral_1h_input_tokens: Some(self.cache_creation_1h),
        }
    }
}

/// Why a body could not be translated. Messages name the offending field so a client can fix
/// its request, e.g. `messages[2].content[0]: image_url must be a data: URL or an http(s) URL`.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The client's body is not JSON, or not a request of the expected protocol.
    #[error("{0}")]
    Malformed(String),
    /// A field has a value the translation cannot use.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// A valid field that the other protocol has no equivalent for.
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
    /// The provider's answer is not what its protocol promises; the client is not at fault.
    #[error("the provider's response could not be translated: {0}")]
    BadResponse(String),
}

impl TranslateError {
    /// The top-level request field at fault, for the `param` of an error body.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } | Self::Unsupported { path, .. } => {
                let end = path.find(['.', '[']).unwrap_or(path.len());
                Some(&path[..end])
            }
            Self::Malformed(_) | Self::BadResponse(_) => None,
        }
    }

    /// True when the client sent something wrong (answer 400), false when the provider did
    /// (answer 502).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::BadResponse(_))
    }

    fn invalid(path: impl Into<String>, reason: impl ToString) -> Self {
        Self::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    fn unsupported(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.into(),
            reason: reason.into(),
        }
    }

    fn from_json(err: &serde_json::Error, what: &str) -> Self {
        if err.is_syntax() || err.is_eof() {
            Self::Malformed(format!("request body is not valid JSON: {err}"))
        } else {
            Self::Malformed(format!("invalid {what}: {err}"))
        }
    }
}

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason`. Some providers say `stop` even when
/// they called tools; Anthropic clients look for `tool_use` to run them.
fn stop_reason(finish_reason: Option<&str>, called_tools: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        Some("tool_calls" | "function_call") => "tool_use",
        _ if called_tools => "tool_use",
        _ => "end_turn",
    }
}

/// Tool arguments from an OpenAI `arguments` string. Anthropic wants an object; models sometimes
/// write broken JSON (e.g. cut by max_tokens), and refusing the whole conversation over it would
/// leave the client stuck, so anything that is not an object is kept under `"arguments"`.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "arguments": arguments }),
    }
}

/// Serializes a value built from plain data; cannot fail in practice.
fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn usage_converts_both_ways() {
        let anthropic = AnthropicUsage {
            input_tokens: Some(10),
            output_tokens: Some(5),
            cache_read_input_tokens: Some(100),
            cache_creation_input_tokens: Some(20),
            ..AnthropicUsage::default()
        };
        let usage = TokenUsage::from_anthropic(&anthropic);
        assert_eq!(
            usage,
            TokenUsage {
                prompt: 130,
                completion: 5,
                cache_read: 100,
                cache_creation: 20,
                ..TokenUsage::default()
            }
        );
        assert_eq!(usage.to_anthropic(), anthropic);
        assert_eq!(usage.to_openai_json()["total_tokens"], 135);
        assert_eq!(
            usage.to_openai_json()["prompt_tokens_details"]["cached_tokens"],
            100
        );
    }

    #[test]
    fn one_hour_writes_and_web_searches_survive_both_ways() {
        let anthropic: AnthropicUsage = serde_json::from_value(json!({
            "input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 30,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
            "server_tool_use": {"web_search_requests": 2}
        }))
        .unwrap();
        let usage = TokenUsage::from_anthropic(&anthropic);
        assert_eq!((usage.cache_creation_1h, usage.web_searches), (20, 2));
        assert_eq!(usage.to_anthropic(), anthropic);
        let openai: OpenAiUsage = serde_json::from_value(usage.to_openai_json()).unwrap();
        assert_eq!(TokenUsage::from_openai(&openai), usage);
        assert_eq!((openai.cache_write_1h(), openai.web_searches()), (20, 2));
    }

    /// Fuzzing found it: a provider's `input_tokens` of u64::MAX plus any cached tokens
    /// overflowed (a panic in debug builds, a wrapped, tiny prompt count in release ones).
    #[test]
    fn huge_provider_counts_saturate_instead_of_overflowing() {
        let body = br#"{"id":"m","type":"message","role":"assistant","model":"c","content":[],
            "stop_reason":"end_turn","usage":{"input_tokens":18446744073709551615,
            "output_tokens":1,"cache_read_input_tokens":1}}"#;
        let translated = response_from_anthropic(body, 0).unwrap();
        let usage = translated.usage.unwrap();
        assert_eq!(usage.prompt, u64::MAX);
        let json: Value = serde_json::from_slice(&translated.body).unwrap();
        assert_eq!(json["usage"]["total_tokens"], u64::MAX);
        let usage = TokenUsage {
            prompt: u64::MAX,
            completion: 5,
            ..TokenUsage::default()
        };
        assert_eq!(usage.to_openai_json()["total_tokens"], u64::MAX);
    }

    #[test]
    fn stop_and_finish_reasons_map_both_ways() {
        let cases = [
            (Some("end_turn"), "stop"),
            (Some("stop_sequence"), "stop"),
            (Some("pause_turn"), "stop"),
            (Some("max_tokens"), "length"),
            (Some("tool_use"), "tool_calls"),
            (Some("refusal"), "content_filter"),
            (None, "stop"),
        ];
        for (stop, finish) in cases {
            assert_eq!(finish_reason(stop), finish, "{stop:?}");
        }
        let cases = [
            (Some("stop"), false, "end_turn"),
            (Some("stop"), true, "tool_use"),
            (Some("length"), true, "max_tokens"),
            (Some("tool_calls"), false, "tool_use"),
            (Some("content_filter"), false, "refusal"),
            (None, false, "end_turn"),
        ];
        for (finish, tools, stop) in cases {
            assert_eq!(stop_reason(finish, tools), stop, "{finish:?} {tools}");
        }
    }

    #[test]
    fn tool_input_keeps_broken_arguments() {
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(tool_input(r#"{"a":"#), json!({"arguments": r#"{"a":"#}));
        assert_eq!(tool_input("[1]"), json!({"arguments": "[1]"}));
    }

    /// Each direction's output is valid input for the other: an OpenAI request sent to
    /// Anthropic and back, and an OpenAI stream relayed as Anthropic's and back, keep their text
    /// and tool arguments.
    #[test]
    fn translations_compose() {
        snapshot::each_case("request_to_anthropic", ".openai.json", |input| {
            // The same arguments as the snapshot test, so the snapshot is checked once more.
            let anthropic = request_to_anthropic(input, "claude-sonnet-4-5", 4096).unwrap();
            let openai = request_from_anthropic(&anthropic, "gpt").unwrap();
            let original = snapshot::parse(input);
            let back = snapshot::parse(&openai);
            // The same conversation text, however system prompts and tool results are laid out.
            let texts = |v: &Value| -> Vec<String> {
                let mut texts = Vec::new();
                for m in v["messages"].as_array().unwrap() {
                    if m["role"] != "user" && m["role"] != "assistant" {
                        continue;
                    }
                    match &m["content"] {
                        Value::String(text) if !text.is_empty() => texts.push(text.clone()),
                        Value::Array(parts) => texts.extend(
                            parts
                                .iter()
                                .filter_map(|p| p["text"].as_str().map(str::to_owned)),
                        ),
                        _ => {}
                    }
                }
                texts
            };
            assert_eq!(texts(&original), texts(&back));
            (".anthropic.json", snapshot::parse(&anthropic))
        });
        snapshot::each_case("stream_to_anthropic", ".sse", |input| {
            let mut to = StreamToAnthropic::new("claude-sonnet-4-5", "msg_test");
            let mut anthropic = Vec::new();
            for (_, data) in snapshot::sse_events(input) {
                anthropic.extend(to.push(&data));
            }
            anthropic.extend(to.finish());
            let mut from = StreamFromAnthropic::new(true, 0);
            let mut openai = Vec::new();
            for (name, data) in snapshot::sse_events(&anthropic.concat()) {
                openai.extend(from.push(name.as_deref(), &data));
            }
            openai.extend(from.finish());
            let text = |events: &[(Option<String>, Vec<u8>)]| -> String {
                events
                    .iter()
                    .filter_map(|(_, data)| serde_json::from_slice::<Value>(data).ok())
                    // Nothing after an error reaches the client.
                    .take_while(|v| v.get("error").is_none())
                    .map(|v| {
                        let delta = &v["choices"][0]["delta"];
                        let mut text = delta["content"].as_str().unwrap_or("").to_owned();
                        for call in delta["tool_calls"].as_array().into_iter().flatten() {
                            text.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
                        }
                        text
                    })
                    .collect()
            };
            assert_eq!(
                text(&snapshot::sse_events(input)),
                text(&snapshot::sse_events(&openai.concat()))
            );
            if let Some(usage) = to.usage() {
                assert_eq!(from.usage().unwrap().completion, usage.completion);
            }
            (".anthropic.json", snapshot::encoded_events(&anthropic))
        });
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = TranslateError::invalid("messages[2].content[0]", "bad");
        assert_eq!(err.param(), Some("messages"));
        assert_eq!(err.to_string(), "messages[2].content[0]: bad");
        assert!(err.is_client_error());
        assert_eq!(TranslateError::invalid("n", "x").param(), Some("n"));
        assert!(!TranslateError::BadResponse("x".into()).is_client_error());
    }
}
