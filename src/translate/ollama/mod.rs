//! Pure translation between OpenAI Chat Completions and Ollama's native API, both directions,
//! streams included. No I/O and no clock: timestamps and ids come in as parameters.
//!
//! Ollama clients (`/api/chat`, `/api/generate`, `/api/tags`, `/api/show`) served by an
//! OpenAI-compatible provider: [`chat_request_to_openai`], [`generate_request_to_openai`],
//! [`chat_response_from_openai`], [`generate_response_from_openai`], [`NdjsonFromOpenAi`],
//! [`error_to_ollama`], [`tags_from_models`], [`show_for_model`].
//!
//! OpenAI clients served by an Ollama provider through its native `/api/chat`:
//! [`request_to_ollama`], [`response_from_ollama`], [`SseFromNdjson`] (fed by [`LineDecoder`]),
//! [`error_from_ollama`].
//!
//! What does not carry over, on purpose:
//! - Ollama-only knobs (`keep_alive`, `options.num_ctx`, `options.top_k`, `template`, `raw`,
//!   `context`, ...) have no OpenAI parameter, and OpenAI rejects unknown ones; they are dropped
//!   and listed in [`OpenAiRequest::ignored`] so the caller can log them.
//! - `suffix` (fill-in-the-middle) and `http(s)` image links (Ollama takes base64 only) are
//!   refused with an error naming the field rather than answered wrongly.
//! - Ollama tool calls carry no ids: OpenAI output numbers them `call_<index>`, and Ollama tool
//!   results are paired with the waiting call by `tool_name`, else by order.
//! - Reasoning text goes out to OpenAI clients as `reasoning_content` (the DeepSeek/vLLM field)
//!   and is read back from `reasoning_content` or `reasoning`. The `thinking` of earlier Ollama
//!   messages is not sent to OpenAI providers, which take no reasoning as input.
//! - A stream that ends without its finish marker ends in an error line or event rather than a
//!   normal finish, so a client does not take half a reply for a whole one.

mod error_body;
mod from_ollama;
mod from_openai;
mod lines;
mod models;
mod ndjson;
mod openai_shapes;
mod sse_stream;
mod to_ollama;
mod to_openai;

#[cfg(test)]
mod tests;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use error_body::{error_from_ollama, error_to_ollama};
pub use from_ollama::response_from_ollama;
pub use from_openai::{chat_response_from_openai, generate_response_from_openai};
pub use lines::LineDecoder;
pub use models::{show_for_model, tags_from_models};
pub use ndjson::{Endpoint, NdjsonFromOpenAi};
pub use sse_stream::SseFromNdjson;
pub use to_ollama::request_to_ollama;
pub use to_openai::{OpenAiRequest, chat_request_to_openai, generate_request_to_openai};

/// A translated complete response and the token usage it reported, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub body: Vec<u8>,
    pub usage: Option<TokenUsage>,
}

/// Token counts as both APIs report them: OpenAI's `prompt_tokens`/`completion_tokens`, Ollama's
/// `prompt_eval_count`/`eval_count`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

/// Why a body could not be translated. Messages name the field so a client can fix its request
/// (or, for responses, so the log says what the provider got wrong).
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// The body is not JSON at all.
    #[error("{what} is not valid JSON: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The body is JSON but not the expected shape, and no single field could be blamed.
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// A field is missing, has the wrong type, or holds a value that cannot be translated.
    #[error("`{field}` {message}")]
    Field { field: String, message: String },
    /// A feature the other API has no way to express.
    #[error("`{field}` cannot be translated: {reason}")]
    Unsupported { field: String, reason: String },
    /// The provider answered with an error body where a response was expected.
    #[error("provider returned an error: {0}")]
    Upstream(String),
}

impl TranslateError {
    /// The field at fault, for the `param` of an OpenAI error body.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Field { field, .. } | Self::Unsupported { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Serializes a value built from strings, numbers and string-keyed maps, which cannot fail.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The error for a body serde rejected as a whole.
pub(crate) fn parse_error(err: serde_json::Error, what: &'static str) -> TranslateError {
    if err.is_syntax() || err.is_eof() {
        TranslateError::Json { what, source: err }
    } else {
        TranslateError::Invalid {
            what,
            message: err.to_string(),
        }
    }
}

/// Checks the `model` of an inbound request.
pub(crate) fn check_model(model: &str) -> Result<(), TranslateError> {
    if model.trim().is_empty() {
        return Err(TranslateError::at("model", "must be a non-empty string"));
    }
    Ok(())
}

/// Converts OpenAI tool call arguments (a JSON string) into Ollama's object. An empty string
/// means no arguments; an object (some providers send one) is taken as it is.
pub(crate) fn arguments_to_object(
    arguments: Option<&Value>,
    field: &str,
    name: &str,
) -> Result<Map<String, Value>, TranslateError> {
    let text = match arguments {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(map)) => return Ok(map.clone()),
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(TranslateError::at(
                field,
                format!("of tool call `{name}` must be a JSON string, got {other}"),
            ));
        }
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(TranslateError::at(
            field,
            format!("of tool call `{name}` must encode a JSON object, got {other}"),
        )),
        Err(e) => Err(TranslateError::at(
            field,
            format!("of tool call `{name}` is not valid JSON: {e}"),
        )),
    }
}

/// Ollama's `done_reason` for an OpenAI `finish_reason`. Ollama reports tool calls as "stop".
pub(crate) fn done_reason_from_finish(finish_reason: Option<&str>) -> String {
    match finish_reason {
        Some("length") => "length",
        Some("content_filter") => "content_filter",
        _ => "stop",
    }
    .to_owned()
}

/// OpenAI's `finish_reason` for an Ollama `done_reason`.
pub(crate) fn finish_from_done_reason(done_reason: Option<&str>, tool_calls: bool) -> &'static str {
    match done_reason {
        _ if tool_calls => "tool_calls",
        Some("length") => "length",
        Some("content_filter") => "content_filter",
        _ => "stop",
    }
}

/// The OpenAI tool call id for the `index`-th call of a response, as Ollama gives none.
pub(crate) fn call_id(index: usize) -> String {
    format!("call_{index}")
}

/// OpenAI's usage object for Ollama's counts. The total saturates: the counts come from the
/// provider, and a wrapped sum would undercount (and panic in debug builds).
pub(crate) fn openai_usage(usage: TokenUsage) -> Value {
    serde_json::json!({
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt.saturating_add(usage.completion),
    })
}

/// Usage from Ollama's counts; None when the line carried neither.
pub(crate) fn usage_from_metrics(metrics: &crate::wire::ollama::Metrics) -> Option<TokenUsage> {
    if metrics.prompt_eval_count.is_none() && metrics.eval_count.is_none() {
        return None;
    }
    Some(TokenUsage {
        prompt: metrics.prompt_eval_count.unwrap_or(0),
        completion: metrics.eval_count.unwrap_or(0),
    })
}

/// A probe re-reads one field of a body serde rejected, returning the path below the field and
/// what is wrong with it, so the error can name the field (serde_json's message does not).
pub(crate) type Probe = fn(&Value) -> Option<(String, String)>;

/// Parses a request into its wire type; when serde rejects it, blames the first required field
/// that is missing or the first probed field that does not parse on its own.
pub(crate) fn parse_typed<T: DeserializeOwned>(
    body: &[u8],
    what: &'static str,
    required: &[&str],
    probes: &[(&str, Probe)],
) -> Result<T, TranslateError> {
    let err = match serde_json::from_slice::<T>(body) {
        Ok(parsed) => return Ok(parsed),
        Err(err) => err,
    };
    if err.is_syntax() || err.is_eof() {
        return Err(TranslateError::Json { what, source: err });
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(TranslateError::Invalid {
            what,
            message: "expected a JSON object".to_owned(),
        });
    };
    for name in required {
        if fields.get(*name).is_none_or(Value::is_null) {
            return Err(TranslateError::at(*name, "is required"));
        }
    }
    for (name, probe) in probes {
        if let Some((path, message)) = fields.get(*name).and_then(probe) {
            return Err(TranslateError::at(format!("{name}{path}"), message));
        }
    }
    Err(TranslateError::Invalid {
        what,
        message: err.to_string(),
    })
}

/// Probes a field as a whole.
pub(crate) fn probe<T: DeserializeOwned>(value: &Value) -> Option<(String, String)> {
    T::deserialize(value)
        .err()
        .map(|e| (String::new(), format!("is invalid: {e}")))
}

/// Probes each item of an array field, naming the index at fault.
pub(crate) fn probe_items<T: DeserializeOwned>(value: &Value) -> Option<(String, String)> {
    let Value::Array(items) = value else {
        return probe::<Vec<T>>(value);
    };
    items.iter().enumerate().find_map(|(i, item)| {
        T::deserialize(item)
            .err()
            .map(|e| (format!("[{i}]"), format!("is invalid: {e}")))
    })
}

/// Probes each key of an object whose fields are all optional, naming the key at fault.
pub(crate) fn probe_keys<T: DeserializeOwned>(value: &Value) -> Option<(String, String)> {
    let Value::Object(map) = value else {
        return probe::<T>(value);
    };
    map.iter().find_map(|(key, item)| {
        let single = Value::Object(Map::from_iter([(key.clone(), item.clone())]));
        T::deserialize(&single)
            .err()
            .map(|e| (format!(".{key}"), format!("is invalid: {e}")))
    })
}
