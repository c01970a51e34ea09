//! Ollama `/api/chat` replies rewritten as OpenAI chat completions, whole or as stream chunks,
//! for OpenAI clients served by an Ollama provider.

use serde_json::{Value, json};

use super::openai_shapes::error_message;
use super::{
    TranslateError, Translated, call_id, finish_from_done_reason, openai_usage, parse_error,
    usage_from_metrics,
};
use crate::wire::ollama::{ChatResponse, ToolCall};

/// Translates Ollama's final `/api/chat` JSON into an OpenAI `chat.completion` with the given
/// `id` and `created` (Unix seconds). Usage comes from `prompt_eval_count` and `eval_count`.
pub fn response_from_ollama(
    ollama_body: &[u8],
    created: u64,
    id: &str,
) -> Result<Translated, TranslateError> {
    let response = parse_line(ollama_body, "Ollama chat response")?;
    let usage = usage_from_metrics(&response.metrics);
    let has_calls = !response.message.tool_calls.is_empty();
    let message = assistant_message(&response, true);
    let finish = finish_from_done_reason(response.done_reason.as_deref(), has_calls);
    let mut completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
    });
    if let (Some(usage), Value::Object(map)) = (usage, &mut completion) {
        map.insert("usage".to_owned(), openai_usage(usage));
    }
    Ok(Translated {
        body: completion.to_string().into_bytes(),
        usage,
    })
}

/// Parses one Ollama reply or stream line; an `{"error": ...}` body becomes `Upstream`.
pub(crate) fn parse_line(body: &[u8], what: &'static str) -> Result<ChatResponse, TranslateError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| parse_error(e, what))?;
    if let Some(message) = value.get("error").and_then(error_message) {
        return Err(TranslateError::Upstream(message));
    }
    serde_json::from_value(value).map_err(|e| parse_error(e, what))
}

/// The OpenAI message (or, with `whole` false, delta) for an Ollama message. A whole message
/// with tool calls and no text has `content: null`, as OpenAI sends it.
pub(crate) fn assistant_message(response: &ChatResponse, whole: bool) -> Value {
    let message = &response.message;
    let mut out = serde_json::Map::new();
    if whole {
        out.insert("role".to_owned(), json!("assistant"));
        let content = if message.content.is_empty() && !message.tool_calls.is_empty() {
            Value::Null
        } else {
            json!(message.content)
        };
        out.insert("content".to_owned(), content);
    } else if !message.content.is_empty() {
        out.insert("content".to_owned(), json!(message.content));
    }
    if let Some(thinking) = message.thinking.as_deref().filter(|t| !t.is_empty()) {
        out.insert("reasoning_content".to_owned(), json!(thinking));
    }
    if whole && !message.tool_calls.is_empty() {
        let calls: Vec<Value> = message
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, call)| openai_call(call, i, None))
            .collect();
        out.insert("tool_calls".to_owned(), Value::Array(calls));
    }
    Value::Object(out)
}

/// One OpenAI tool call; `stream_index` adds the `index` stream deltas carry. The id is Ollama's
/// own when it sent one, else `call_<n>`.
pub(crate) fn openai_call(call: &ToolCall, n: usize, stream_index: Option<usize>) -> Value {
    let mut out = json!({
        "id": call.id.clone().unwrap_or_else(|| call_id(n)),
        "type": "function",
        "function": {
            "name": call.function.name,
            "arguments": Value::Object(call.function.arguments.clone()).to_string(),
        },
    });
    if let (Some(index), Value::Object(map)) = (stream_index, &mut out) {
        map.insert("index".to_owned(), json!(index));
    }
    out
}
