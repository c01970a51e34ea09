//! Error bodies across the two APIs: OpenAI's `{"error":{"message","type","param","code"}}` and
//! Ollama's `{"error": "message"}`. Whatever a provider sent (JSON of either shape, plain text,
//! nothing), the client gets a body of its own API's shape with the provider's message in it.

use serde_json::Value;

use super::openai_shapes::error_message;
use super::to_json;
use crate::wire::ollama::ErrorBody as OllamaError;
use crate::wire::openai::ErrorBody as OpenAiError;

/// The longest piece of a non-JSON error body quoted in a message.
const QUOTE_LIMIT: usize = 500;

/// Translates an OpenAI-compatible provider's error (HTTP `status`) for an Ollama client.
pub fn error_to_ollama(status: u16, openai_error_body: &[u8]) -> Vec<u8> {
    to_json(&OllamaError {
        error: message_of(status, openai_error_body),
    })
}

/// Translates an Ollama provider's error (HTTP `status`) for an OpenAI client, with the `type`
/// and `code` OpenAI uses for that status.
pub fn error_from_ollama(status: u16, ollama_error_body: &[u8]) -> Vec<u8> {
    let message = message_of(status, ollama_error_body);
    let (kind, code) = match status {
        401 => ("authentication_error", None),
        403 => ("permission_error", None),
        // Ollama answers 404 for a model it has not pulled.
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_error", None),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    OpenAiError::new(message, kind, code, None).to_json()
}

/// The provider's message: `error.message`, `error` as a string, a top-level `message`, or the
/// body's text; the status alone when the body is empty.
fn message_of(status: u16, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let found = value.get("error").and_then(error_message).or_else(|| {
            value
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if let Some(message) = found.filter(|m| !m.is_empty()) {
            return message;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("provider returned HTTP {status} with an empty body");
    }
    let quoted: String = text.chars().take(QUOTE_LIMIT).collect();
    let more = if quoted.len() < text.len() { "..." } else { "" };
    format!("provider returned HTTP {status}: {quoted}{more}")
}
