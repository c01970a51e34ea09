//! Rebuilds a complete `chat.completion` from the chunks of an OpenAI stream, so that a streamed
//! reply can be cached and later served to streaming and non-streaming clients alike. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Top-level chunk fields carried over to the completion. Others (`obfuscation`, which differs
/// in every chunk, or `object`) are left out.
const TOP_FIELDS: &[&str] = &[
    "id",
    "created",
    "model",
    "system_fingerprint",
    "service_tier",
];

/// Rebuilds a complete `chat.completion` JSON from the OpenAI SSE chunk payloads of a stream:
/// content (and other text deltas such as `refusal` or `reasoning_content`) concatenated per
/// choice, tool calls assembled by index with their id, name and arguments, role, finish reason,
/// logprobs, usage from the usage chunk, and id/model/created/system_fingerprint from the chunks.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    top: Map<String, Value>,
    choices: BTreeMap<u64, ChoiceState>,
    usage: Option<Value>,
    /// Set by an error event or a payload that is not a chunk: such a stream is never complete.
    broken: bool,
}

#[derive(Debug, Default)]
struct ChoiceState {
    role: Option<String>,
    content: Option<Value>,
    /// Other message fields in first-seen order: strings and arrays accumulate.
    extra: Map<String, Value>,
    tool_calls: BTreeMap<u64, ToolCallState>,
    function_call: Option<(String, String)>,
    logprobs: Option<Value>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default)]
struct ToolCallState {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    /// An assembler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event's `data:` payload. `[DONE]`, empty and keep-alive payloads are ignored.
    pub fn push(&mut self, chunk_payload: &[u8]) {
        let trimmed = chunk_payload.trim_ascii();
        if trimmed.is_empty() || trimmed == b"[DONE]" {
            return;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_slice::<Value>(trimmed) else {
            self.broken = true;
            return;
        };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            self.broken = true;
            return;
        }
        for field in TOP_FIELDS {
            if let Some(value) = chunk.get(*field).filter(|v| !v.is_null()) {
                self.top
                    .entry((*field).to_owned())
                    .or_insert_with(|| value.clone());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let state = self.choices.entry(index).or_default();
            if let Some(delta) = choice.get("delta").and_then(Value::as_object) {
                state.apply_delta(delta);
            }
            if let Some(logprobs) = choice.get("logprobs").filter(|l| !l.is_null()) {
                merge_into(&mut state.logprobs, logprobs);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                state.finish_reason = Some(reason.to_owned());
            }
        }
    }

    /// The complete `chat.completion` JSON, or None unless the stream was whole: at least one
    /// choice, every choice with a finish reason, and no error event (only complete replies are
    /// cached).
    pub fn finish(self) -> Option<Vec<u8>> {
        if self.broken
            || self.choices.is_empty()
            || self.choices.values().any(|c| c.finish_reason.is_none())
        {
            return None;
        }
        let mut out = Map::new();
        let id = self.top.get("id").cloned();
        out.insert(
            "id".to_owned(),
            id.unwrap_or_else(|| Value::from("chatcmpl-cache")),
        );
        out.insert("object".to_owned(), Value::from("chat.completion"));
        out.insert(
            "created".to_owned(),
            self.top.get("created").cloned().unwrap_or(Value::from(0)),
        );
        out.insert(
            "model".to_owned(),
            self.top.get("model").cloned().unwrap_or(Value::from("")),
        );
        let choices = self
            .choices
            .into_iter()
            .map(|(index, state)| state.into_choice(index))
            .collect();
        out.insert("choices".to_owned(), Value::Array(choices));
        if let Some(usage) = self.usage {
            out.insert("usage".to_owned(), usage);
        }
        for field in ["system_fingerprint", "service_tier"] {
            if let Some(value) = self.top.get(field) {
                out.insert(field.to_owned(), value.clone());
            }
        }
        serde_json::to_vec(&Value::Object(out)).ok()
    }
}

impl ChoiceState {
    fn apply_delta(&mut self, delta: &Map<String, Value>) {
        for (field, value) in delta {
            match field.as_str() {
                "role" => {
                    if let Some(role) = value.as_str() {
                        self.role = Some(role.to_owned());
                    }
                }
                "content" => {
                    if !value.is_null() {
                        merge_into(&mut self.content, value);
                    }
                }
                "tool_calls" => {
                    for call in value.as_array().into_iter().flatten() {
                        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                        self.tool_calls.entry(index).or_default().apply(call);
                    }
                }
                "function_call" => {
                    let (name, arguments) = self.function_call.get_or_insert_default();
                    push_str(name, value.get("name"));
                    push_str(arguments, value.get("arguments"));
                }
                _ => match self.extra.get_mut(field) {
                    Some(existing) => {
                        let mut slot = Some(existing.take());
                        merge_into(&mut slot, value);
                        *existing = slot.unwrap_or(Value::Null);
                    }
                    None => {
                        self.extra.insert(field.clone(), value.clone());
                    }
                },
            }
        }
    }

    fn into_choice(self, index: u64) -> Value {
        let mut message = Map::new();
        message.insert(
            "role".to_owned(),
            Value::from(self.role.unwrap_or_else(|| "assistant".to_owned())),
        );
        message.insert("content".to_owned(), self.content.unwrap_or(Value::Null));
        for (field, value) in self.extra {
            message.insert(field, value);
        }
        if !self.tool_calls.is_empty() {
            let calls = self
                .tool_calls
                .into_values()
                .map(ToolCallState::into_value)
                .collect();
            message.insert("tool_calls".to_owned(), Value::Array(calls));
        }
        if let Some((name, arguments)) = self.function_call {
            message.insert(
                "function_call".to_owned(),
                serde_json::json!({ "name": name, "arguments": arguments }),
            );
        }
        serde_json::json!({
            "index": index,
            "message": message,
            "logprobs": self.logprobs.unwrap_or(Value::Null),
            "finish_reason": self.finish_reason,
        })
    }
}

impl ToolCallState {
    fn apply(&mut self, call: &Value) {
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(kind) = call.get("type").and_then(Value::as_str) {
            self.kind = Some(kind.to_owned());
        }
        if let Some(function) = call.get("function") {
            push_str(&mut self.name, function.get("name"));
            push_str(&mut self.arguments, function.get("arguments"));
        }
    }

    fn into_value(self) -> Value {
        serde_json::json!({
            "id": self.id.unwrap_or_default(),
            "type": self.kind.unwrap_or_else(|| "function".to_owned()),
            "function": { "name": self.name, "arguments": self.arguments },
        })
    }
}

fn push_str(target: &mut String, piece: Option<&Value>) {
    if let Some(piece) = piece.and_then(Value::as_str) {
        target.push_str(piece);
    }
}

/// Accumulates a delta value: strings concatenate, arrays extend, objects merge field by field
/// (so `logprobs.content` arrays grow), anything else replaces what was there.
fn merge_into(slot: &mut Option<Value>, piece: &Value) {
    match (slot.as_mut(), piece) {
        (Some(Value::String(s)), Value::String(more)) => s.push_str(more),
        (Some(Value::Array(items)), Value::Array(more)) => items.extend(more.iter().cloned()),
        (Some(Value::Object(map)), Value::Object(more)) => {
            for (k, v) in more {
                match map.get_mut(k) {
                    Some(existing) if !v.is_null() => {
                        let mut inner = Some(existing.take());
                        merge_into(&mut inner, v);
                        *existing = inner.unwrap_or(Value::Null);
                    }
                    Some(_) => {}
                    None => {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Some(_), Value::Null) => {}
        _ => *slot = Some(piece.clone()),
    }
}

/// Whether a non-streamed response body is a complete reply worth caching: a `chat.completion`
/// with at least one choice, each with a finish reason.
pub fn is_complete(completion_json: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(completion_json) else {
        return false;
    };
    if value.get("object").and_then(Value::as_str) != Some("chat.completion") {
        return false;
    }
    value
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            !choices.is_empty()
                && choices
                    .iter()
                    .all(|c| c.get("finish_reason").is_some_and(Value::is_string))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn assemble(chunks: &[&str]) -> Option<Value> {
        let mut assembler = StreamAssembler::new();
        for chunk in chunks {
            assembler.push(chunk.as_bytes());
        }
        assembler
            .finish()
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn assembles_a_text_stream() {
        let out = assemble(&[
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","obfuscation":"abc","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","obfuscation":"def","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":", world"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
            "[DONE]",
        ])
        .unwrap();
        let expected = serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world", "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            "system_fingerprint": "fp_1"
        });
        assert_eq!(out, expected);
        assert!(is_complete(&serde_json::to_vec(&out).unwrap()));
    }

    #[test]
    fn assembles_a_tool_call_stream() {
        let out = assemble(&[
            r#"{"id":"c2","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"c2","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c2","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c2","created":5,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c2","created":5,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ])
        .unwrap();
        let message = &out["choices"][0]["message"];
        assert!(message["content"].is_null());
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            message["tool_calls"],
            serde_json::json!([
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ])
        );
        assert!(out.get("usage").is_none());
    }

    #[test]
    fn incomplete_or_failed_streams_give_nothing() {
        let start = r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
        let end = r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert!(assemble(&[start]).is_none(), "cut before the finish reason");
        assert!(assemble(&[]).is_none(), "no choices at all");
        assert!(assemble(&["[DONE]"]).is_none());
        assert!(
            assemble(&[start, r#"{"error":{"message":"overloaded"}}"#, end]).is_none(),
            "error event"
        );
        assert!(assemble(&[start, "{not json", end]).is_none(), "garbage");
        // Two choices, only one finished.
        let other =
            r#"{"id":"c","choices":[{"index":1,"delta":{"content":"x"},"finish_reason":null}]}"#;
        assert!(assemble(&[start, other, end]).is_none());
        assert!(
            assemble(&[start, "", end]).is_some(),
            "blank payloads are fine"
        );
    }

    #[test]
    fn accumulates_logprobs_and_reasoning() {
        let out = assemble(&[
            r#"{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"Think"},"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"reasoning_content":"ing."},"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"A"},"logprobs":{"content":[{"token":"A","logprob":-0.1}],"refusal":null},"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"B"},"logprobs":{"content":[{"token":"B","logprob":-0.2}],"refusal":null},"finish_reason":"length"}]}"#,
        ])
        .unwrap();
        let choice = &out["choices"][0];
        assert_eq!(choice["message"]["reasoning_content"], "Thinking.");
        assert_eq!(choice["message"]["content"], "AB");
        assert_eq!(choice["logprobs"]["content"][1]["token"], "B");
        assert_eq!(choice["logprobs"]["content"].as_array().unwrap().len(), 2);
        assert_eq!(choice["finish_reason"], "length");
    }

    #[test]
    fn completeness_of_plain_responses() {
        assert!(is_complete(
            br#"{"object":"chat.completion","choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}]}"#
        ));
        for body in [
            &br#"{"object":"chat.completion","choices":[]}"#[..],
            br#"{"object":"chat.completion","choices":[{"message":{},"finish_reason":null}]}"#,
            br#"{"object":"text_completion","choices":[{"finish_reason":"stop"}]}"#,
            br#"{"error":{"message":"x"}}"#,
            b"nope",
        ] {
            assert!(!is_complete(body), "{}", String::from_utf8_lossy(body));
        }
    }
}
