//! Complete OpenAI chat responses rewritten as the final (`done: true`) JSON of Ollama's
//! `/api/chat` and `/api/generate`, for Ollama clients that asked for `"stream": false`.

use super::openai_shapes::{AssistantMessage, Completion, ToolCall as OpenAiToolCall};
use super::{
    TokenUsage, TranslateError, Translated, arguments_to_object, done_reason_from_finish,
    parse_error, to_json,
};
use crate::wire::ollama::{
    ChatResponse, GenerateResponse, Message, Metrics, ToolCall, ToolCallFunction,
};

/// Translates an OpenAI `chat.completion` into Ollama's `/api/chat` reply. `created_at` is the
/// RFC 3339 time to report.
pub fn chat_response_from_openai(
    openai_body: &[u8],
    created_at: &str,
) -> Result<Translated, TranslateError> {
    let parsed = Parsed::from_body(openai_body)?;
    let tool_calls = tool_calls(&parsed.message.tool_calls, "choices[0].message.tool_calls")?;
    let response = ChatResponse {
        model: parsed.model,
        created_at: created_at.to_owned(),
        message: Message {
            role: "assistant".to_owned(),
            content: parsed.message.text(),
            tool_calls,
            thinking: parsed.message.thinking().map(str::to_owned),
            ..Message::default()
        },
        done: true,
        done_reason: Some(parsed.done_reason),
        metrics: metrics(parsed.usage),
    };
    Ok(Translated {
        body: to_json(&response),
        usage: parsed.usage,
    })
}

/// Translates an OpenAI `chat.completion` into Ollama's `/api/generate` reply. Tool calls cannot
/// occur (a generate request offers no tools) and are not carried.
pub fn generate_response_from_openai(
    openai_body: &[u8],
    created_at: &str,
) -> Result<Translated, TranslateError> {
    let parsed = Parsed::from_body(openai_body)?;
    let response = GenerateResponse {
        model: parsed.model,
        created_at: created_at.to_owned(),
        response: parsed.message.text(),
        thinking: parsed.message.thinking().map(str::to_owned),
        done: true,
        done_reason: Some(parsed.done_reason),
        context: Vec::new(),
        metrics: metrics(parsed.usage),
    };
    Ok(Translated {
        body: to_json(&response),
        usage: parsed.usage,
    })
}

/// What both replies take from the first choice of a completion.
struct Parsed {
    model: String,
    message: AssistantMessage,
    done_reason: String,
    usage: Option<TokenUsage>,
}

impl Parsed {
    fn from_body(body: &[u8]) -> Result<Self, TranslateError> {
        let mut completion: Completion =
            serde_json::from_slice(body).map_err(|e| parse_error(e, "OpenAI chat response"))?;
        if completion.choices.is_empty() {
            return Err(match completion.error_message() {
                Some(message) => TranslateError::Upstream(message),
                None => TranslateError::at("choices", "is empty in the provider's response"),
            });
        }
        let usage = completion.usage.map(|u| TokenUsage {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
        });
        let index = completion
            .choices
            .iter()
            .position(|c| c.index.unwrap_or(0) == 0)
            .unwrap_or(0);
        let choice = completion.choices.swap_remove(index);
        Ok(Self {
            model: completion.model.unwrap_or_default(),
            message: choice.message.unwrap_or_default(),
            done_reason: done_reason_from_finish(choice.finish_reason.as_deref()),
            usage,
        })
    }
}

/// OpenAI tool calls as Ollama's: arguments parsed from their JSON string into an object.
pub(crate) fn tool_calls(
    calls: &[OpenAiToolCall],
    path: &str,
) -> Result<Vec<ToolCall>, TranslateError> {
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let name = call.function.name.clone().unwrap_or_default();
            let arguments = arguments_to_object(
                call.function.arguments.as_ref(),
                &format!("{path}[{i}].function.arguments"),
                &name,
            )?;
            Ok(ToolCall {
                id: None,
                function: ToolCallFunction {
                    index: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                    name,
                    arguments,
                },
            })
        })
        .collect()
}

/// Ollama's counts for OpenAI's usage. Durations are unknown and left out, as Ollama leaves out
/// zero values.
pub(crate) fn metrics(usage: Option<TokenUsage>) -> Metrics {
    Metrics {
        prompt_eval_count: usage.map(|u| u.prompt),
        eval_count: usage.map(|u| u.completion),
        ..Metrics::default()
    }
}
