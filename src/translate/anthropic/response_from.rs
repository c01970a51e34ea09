//! Anthropic Messages response -> OpenAI chat completion, for an OpenAI client routed to
//! Anthropic.

use serde_json::{Map, Value, json};

use super::{TokenUsage, TranslateError, Translated, finish_reason, to_json};
use crate::wire::anthropic::{ContentBlock, MessagesResponse};
use crate::wire::estimate::TextTokens;

/// Estimated tokens of the output (text, thinking, tool input) of a complete Anthropic
/// response, for when it reports no usage; 0 when it cannot be read.
pub fn content_tokens(anthropic_body: &[u8]) -> u64 {
    let Ok(response) = serde_json::from_slice::<MessagesResponse>(anthropic_body) else {
        return 0;
    };
    let mut output = TextTokens::default();
    for block in &response.content {
        match block {
            ContentBlock::Text(block) => output.push(&block.text),
            ContentBlock::Thinking(block) => output.push(&block.thinking),
            ContentBlock::ToolUse(block) => output.push_json(&block.input.to_string()),
            _ => {}
        }
    }
    output.tokens()
}

/// Translates a complete Anthropic response into an OpenAI `chat.completion` created at
/// `created` (Unix seconds). The id stays Anthropic's (`msg_...`); text blocks are joined,
/// `tool_use` blocks become `tool_calls`, thinking text goes to `reasoning_content` (signatures
/// and redacted thinking are dropped), and blocks OpenAI has no place for (server tool results)
/// are left out.
pub fn response_from_anthropic(
    anthropic_body: &[u8],
    created: u64,
) -> Result<Translated, TranslateError> {
    let response: MessagesResponse = serde_json::from_slice(anthropic_body)
        .map_err(|e| TranslateError::BadResponse(format!("not an Anthropic message: {e}")))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &response.content {
        match block {
            ContentBlock::Text(block) => text.push_str(&block.text),
            ContentBlock::Thinking(block) => reasoning.push_str(&block.thinking),
            ContentBlock::ToolUse(block) => tool_calls.push(json!({
                "id": block.id,
                "type": "function",
                "function": {"name": block.name, "arguments": block.input.to_string()},
            })),
            _ => {}
        }
    }

    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    // OpenAI's convention: content is null when the reply is only tool calls.
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let mut body = json!({
        "id": response.id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(response.stop_reason.as_deref()),
        }],
    });
    // A reply without counts gets no usage rather than zeros: zeros would be billed as exact,
    // where the reader of the reply estimates (and says so).
    let reported = response.usage.input_tokens.is_some() || response.usage.output_tokens.is_some();
    let usage = reported.then(|| TokenUsage::from_anthropic(&response.usage));
    if let Some(usage) = &usage {
        body["usage"] = usage.to_openai_json();
    }
    Ok(Translated {
        body: to_json(&body),
        usage,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    #[test]
    fn matches_snapshots() {
        snapshot::each_case("response_from_anthropic", ".anthropic.json", |input| {
            let out = response_from_anthropic(input, 1_700_000_000).unwrap();
            let usage = out.usage.unwrap();
            let body = snapshot::parse(&out.body);
            assert_eq!(body["usage"]["prompt_tokens"], usage.prompt);
            assert_eq!(body["usage"]["completion_tokens"], usage.completion);
            (".openai.json", body)
        });
    }

    #[test]
    fn refuses_a_body_that_is_not_a_message() {
        let err = response_from_anthropic(br#"{"type":"error"}"#, 0).unwrap_err();
        assert!(!err.is_client_error());
        assert!(err.to_string().contains("missing field `id`"), "{err}");
    }
}
