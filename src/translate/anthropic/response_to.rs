//! OpenAI chat completion -> Anthropic Messages response, for an Anthropic client routed to an
//! OpenAI-compatible provider.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{TokenUsage, TranslateError, Translated, stop_reason, to_json, tool_input};
use crate::wire::anthropic::{
    ContentBlock, MessagesResponse, Role, TextBlock, ToolUseBlock, Usage,
};
use crate::wire::openai::Usage as OpenAiUsage;

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CompletionToolCall>>,
}

#[derive(Debug, Deserialize)]
struct CompletionToolCall {
    #[serde(default)]
    id: String,
    function: CompletionFunction,
}

#[derive(Debug, Deserialize)]
struct CompletionFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

/// Translates a complete OpenAI chat completion into an Anthropic message that names the model
/// the client asked for (`requested_model`). The first choice is used. Text (or a refusal)
/// becomes a text block and tool calls become `tool_use` blocks with their ids unchanged.
/// Reasoning text is dropped (see the module doc). Usage: `input_tokens` excludes cached tokens,
/// which go to `cache_read_input_tokens`. A missing id becomes `msg_unknown`.
pub fn response_to_anthropic(
    openai_body: &[u8],
    requested_model: &str,
) -> Result<Translated, TranslateError> {
    let completion: Completion = serde_json::from_slice(openai_body)
        .map_err(|e| TranslateError::BadResponse(format!("not an OpenAI chat completion: {e}")))?;
    let choice = completion.choices.into_iter().next().ok_or_else(|| {
        TranslateError::BadResponse("the chat completion has no choices".to_owned())
    })?;

    let mut content = Vec::new();
    let mut refused = false;
    if let Some(message) = choice.message {
        let text = match (text_of(message.content), message.refusal) {
            (text, Some(refusal)) if text.is_empty() && !refusal.is_empty() => {
                refused = true;
                refusal
            }
            (text, _) => text,
        };
        if !text.is_empty() {
            content.push(ContentBlock::Text(TextBlock::new(text)));
        }
        for call in message.tool_calls.unwrap_or_default() {
            content.push(ContentBlock::ToolUse(ToolUseBlock {
                id: call.id,
                name: call.function.name,
                input: tool_input(&call.function.arguments),
                extra: Map::new(),
            }));
        }
    }
    let called_tools = content
        .iter()
        .any(|block| matches!(block, ContentBlock::ToolUse(_)));
    let finish = if refused {
        Some("content_filter")
    } else {
        choice.finish_reason.as_deref()
    };

    let usage = completion.usage.as_ref().map(TokenUsage::from_openai);
    let response = MessagesResponse {
        id: completion.id.unwrap_or_else(|| "msg_unknown".to_owned()),
        kind: "message".to_owned(),
        role: Role::Assistant,
        model: requested_model.to_owned(),
        content,
        stop_reason: Some(stop_reason(finish, called_tools).to_owned()),
        stop_sequence: None,
        usage: usage.map_or(
            Usage {
                input_tokens: Some(0),
                output_tokens: Some(0),
                ..Usage::default()
            },
            |u| u.to_anthropic(),
        ),
    };
    Ok(Translated {
        body: to_json(&response),
        usage,
    })
}

/// The text of a message `content`: a string, or text parts joined.
fn text_of(content: Option<Value>) -> String {
    match content {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    #[test]
    fn matches_snapshots() {
        snapshot::each_case("response_to_anthropic", ".openai.json", |input| {
            let out = response_to_anthropic(input, "claude-sonnet-4-5").unwrap();
            (".anthropic.json", snapshot::parse(&out.body))
        });
    }

    #[test]
    fn refuses_bodies_without_a_choice() {
        for body in [&br#"{"choices":[]}"#[..], b"<html>", br#"{"choices":7}"#] {
            let err = response_to_anthropic(body, "c").unwrap_err();
            assert!(!err.is_client_error(), "{err}");
        }
    }

    #[test]
    fn reports_usage_only_when_the_provider_did() {
        let out = response_to_anthropic(
            br#"{"id":"x","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}"#,
            "c",
        )
        .unwrap();
        assert_eq!(out.usage, None);
        let body = snapshot::parse(&out.body);
        assert_eq!(
            body["usage"],
            serde_json::json!({"input_tokens": 0, "output_tokens": 0})
        );
    }
}
