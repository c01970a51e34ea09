//! Error bodies between the protocols: Anthropic's `{"type":"error","error":{...}}` and
//! OpenAI's `{"error":{"message","type","param","code"}}`.

use serde_json::Value;

use crate::wire::anthropic::{self, error_type_for_status};
use crate::wire::openai::ErrorBody;

/// Longest slice of a non-JSON error body quoted in a message.
const MAX_QUOTED: usize = 500;

/// Translates an Anthropic error response (`status`, `body`) into an OpenAI error body. The
/// message is kept; the Anthropic error type becomes the nearest OpenAI `type`, with the
/// Anthropic type itself in `code` (e.g. `overloaded_error` -> `server_error` / `overloaded`).
/// A body that is not Anthropic's error JSON is quoted, and its type follows the status.
pub fn error_from_anthropic(status: u16, body: &[u8]) -> Vec<u8> {
    let (kind, message) = match serde_json::from_slice::<anthropic::ErrorBody>(body) {
        Ok(parsed) => (parsed.error.kind, parsed.error.message),
        Err(_) => (
            error_type_for_status(status).to_owned(),
            quoted_body(status, body),
        ),
    };
    let (openai_kind, code) = openai_error_for(&kind);
    ErrorBody::new(message, openai_kind, Some(code), None).to_json()
}

/// The OpenAI `(type, code)` for an Anthropic error type.
pub(super) fn openai_error_for(anthropic_kind: &str) -> (&'static str, &str) {
    match anthropic_kind {
        "authentication_error" => ("invalid_request_error", "invalid_api_key"),
        "permission_error" => ("invalid_request_error", "permission_denied"),
        "not_found_error" => ("invalid_request_error", "not_found"),
        "request_too_large" => ("invalid_request_error", "request_too_large"),
        "billing_error" => ("insufficient_quota", "billing_error"),
        "rate_limit_error" => ("rate_limit_error", "rate_limit_exceeded"),
        "overloaded_error" => ("server_error", "overloaded"),
        "timeout_error" => ("server_error", "timeout"),
        "api_error" => ("server_error", "api_error"),
        "invalid_request_error" => ("invalid_request_error", "invalid_request"),
        "" => ("server_error", "api_error"),
        other => ("server_error", other),
    }
}

/// Translates an OpenAI-style error response into Anthropic's error body. The type follows the
/// HTTP status, as Anthropic's would (529 or 503 -> `overloaded_error`, 429 ->
/// `rate_limit_error`...). Providers that only claim OpenAI compatibility answer in several
/// shapes (`{"error":"text"}`, `{"detail":...}`, plain text); the message is found in any of them.
pub fn error_to_anthropic(status: u16, openai_error_body: &[u8]) -> Vec<u8> {
    let message = match serde_json::from_slice::<Value>(openai_error_body) {
        Ok(value) => message_of(&value).unwrap_or_else(|| quoted_body(status, openai_error_body)),
        Err(_) => quoted_body(status, openai_error_body),
    };
    anthropic::ErrorBody::new(error_type_for_status(status), message).to_json()
}

/// The Anthropic error type for an OpenAI error seen without a status (inside a stream).
pub(super) fn anthropic_error_for(openai_error: &Value) -> &'static str {
    let field = |name: &str| {
        openai_error
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let hint = format!("{} {}", field("type"), field("code"));
    let has = |needle: &str| hint.contains(needle);
    if has("rate_limit") {
        "rate_limit_error"
    } else if has("insufficient_quota") {
        "billing_error"
    } else if has("overloaded") {
        "overloaded_error"
    } else if has("timeout") {
        "timeout_error"
    } else if has("invalid_api_key") || has("authentication") {
        "authentication_error"
    } else if has("permission") {
        "permission_error"
    } else if has("not_found") {
        "not_found_error"
    } else if has("invalid_request") {
        "invalid_request_error"
    } else {
        "api_error"
    }
}

/// The human-readable message of an error body in any of the usual shapes.
pub(super) fn message_of(value: &Value) -> Option<String> {
    let candidates = [
        value.pointer("/error/message"),
        value.get("error"),
        value.get("message"),
        value.get("detail"),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Object(_) | Value::Array(_) if v != value => Some(v.to_string()),
        _ => None,
    })
}

fn quoted_body(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("the provider answered HTTP {status} with an empty body");
    }
    let mut end = text.len().min(MAX_QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let ellipsis = if end < text.len() { "..." } else { "" };
    format!(
        "the provider answered HTTP {status}: {}{ellipsis}",
        &text[..end]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn anthropic_errors_become_openai_errors() {
        let cases = [
            (529, "overloaded_error", "server_error", "overloaded"),
            (
                429,
                "rate_limit_error",
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                400,
                "invalid_request_error",
                "invalid_request_error",
                "invalid_request",
            ),
            (
                401,
                "authentication_error",
                "invalid_request_error",
                "invalid_api_key",
            ),
            (
                403,
                "permission_error",
                "invalid_request_error",
                "permission_denied",
            ),
            (404, "not_found_error", "invalid_request_error", "not_found"),
            (
                413,
                "request_too_large",
                "invalid_request_error",
                "request_too_large",
            ),
            (402, "billing_error", "insufficient_quota", "billing_error"),
            (500, "api_error", "server_error", "api_error"),
            (504, "timeout_error", "server_error", "timeout"),
            (500, "brand_new_error", "server_error", "brand_new_error"),
        ];
        for (status, anthropic_kind, kind, code) in cases {
            let body = json!({"type": "error", "error": {"type": anthropic_kind, "message": "m"},
                              "request_id": "req_1"});
            let out = parse(&error_from_anthropic(status, body.to_string().as_bytes()));
            assert_eq!(
                out,
                json!({"error": {"message": "m", "type": kind, "param": null, "code": code}}),
                "{anthropic_kind}"
            );
        }
    }

    #[test]
    fn unparsable_anthropic_errors_are_quoted_and_typed_by_status() {
        let out = parse(&error_from_anthropic(529, b"<html>busy</html>"));
        assert_eq!(out["error"]["type"], "server_error");
        assert_eq!(out["error"]["code"], "overloaded");
        assert_eq!(
            out["error"]["message"],
            "the provider answered HTTP 529: <html>busy</html>"
        );
        let out = parse(&error_from_anthropic(502, b""));
        assert_eq!(
            out["error"]["message"],
            "the provider answered HTTP 502 with an empty body"
        );
        let long = "é".repeat(400);
        let out = parse(&error_from_anthropic(500, long.as_bytes()));
        assert!(out["error"]["message"].as_str().unwrap().ends_with("é..."));
    }

    #[test]
    fn openai_errors_become_anthropic_errors() {
        let cases: &[(u16, &[u8], &str, &str)] = &[
            (
                429,
                br#"{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                "rate_limit_error",
                "slow down",
            ),
            (
                400,
                br#"{"error":{"message":"bad","type":"invalid_request_error"}}"#,
                "invalid_request_error",
                "bad",
            ),
            (401, br#"{"error":"no key"}"#, "authentication_error", "no key"),
            (404, br#"{"detail":"Not Found"}"#, "not_found_error", "Not Found"),
            (503, b"upstream down", "overloaded_error", "the provider answered HTTP 503: upstream down"),
            (
                422,
                br#"{"detail":[{"loc":["body"],"msg":"x"}]}"#,
                "invalid_request_error",
                r#"[{"loc":["body"],"msg":"x"}]"#,
            ),
            (500, br#"{"error":{"message":"boom"}}"#, "api_error", "boom"),
        ];
        for (status, body, kind, message) in cases {
            let out = parse(&error_to_anthropic(*status, body));
            assert_eq!(
                out,
                json!({"type": "error", "error": {"type": kind, "message": message}}),
                "{status}"
            );
        }
    }

    #[test]
    fn stream_errors_are_typed_by_their_type_and_code() {
        let cases = [
            (
                json!({"type": "server_error", "code": "overloaded"}),
                "overloaded_error",
            ),
            (
                json!({"type": "requests", "code": "rate_limit_exceeded"}),
                "rate_limit_error",
            ),
            (
                json!({"type": "invalid_request_error"}),
                "invalid_request_error",
            ),
            (json!({"type": "insufficient_quota"}), "billing_error"),
            (json!({"message": "?"}), "api_error"),
        ];
        for (error, kind) in cases {
            assert_eq!(anthropic_error_for(&error), kind, "{error}");
        }
    }
}
