//! Tests for `anthropic`: the Anthropic Messages wire types read and written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn request_round_trips_with_unknown_fields_and_blocks() {
    let body = serde_json::json!({
        "model": "claude-x",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
                {"type": "image", "source": {"type": "file", "file_id": "f1"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xx"},
                {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
                 "content": [{"type": "text", "text": "bad"}]}
            ]}
        ],
        "tools": [{"name": "t", "input_schema": {"type": "object"}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "metadata": {"user_id": "u", "other": 1},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 5
    });
    let request: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(request.extra["thinking"]["budget_tokens"], 1024);
    assert_eq!(
        request.tools.as_ref().unwrap()[1].server_type(),
        Some("web_search_20250305")
    );
    assert!(
        request
            .tool_choice
            .as_ref()
            .unwrap()
            .disables_parallel_tool_use()
    );
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
}

#[test]
fn a_malformed_known_block_is_an_error_that_names_it() {
    let err = serde_json::from_str::<Message>(
        r#"{"role":"user","content":[{"type":"text","text":"ok"},{"type":"image","source":{"type":"base64"}}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("content[1]: `image` block"), "{err}");
    let err = serde_json::from_str::<Message>(r#"{"role":"user","content":7}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("found a number"), "{err}");
}

#[test]
fn stream_events_parse_and_tolerate_unknown_types() {
    let cases = [
        (r#"{"type":"ping"}"#, "ping"),
        (r#"{"type":"message_stop"}"#, "message_stop"),
        (
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
            "content_block_delta",
        ),
        (
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            "message_delta",
        ),
        (r#"{"type":"brand_new","x":1}"#, "brand_new"),
    ];
    for (json, name) in cases {
        let event: StreamEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event.name(), name);
    }
}

#[test]
fn error_types_follow_the_status() {
    assert_eq!(error_type_for_status(529), "overloaded_error");
    assert_eq!(error_type_for_status(429), "rate_limit_error");
    assert_eq!(error_type_for_status(422), "invalid_request_error");
    assert_eq!(error_type_for_status(502), "api_error");
    let body: Value =
        serde_json::from_slice(&ErrorBody::new("overloaded_error", "Overloaded").to_json())
            .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
    );
}

#[test]
fn a_request_reads_the_same_after_it_is_written_out() {
    // A number serde_json's default reading got a unit in the last place off, so that it read
    // differently once written out (found by the `wire_anthropic` fuzz target).
    let body = r#"{"model":"m","max_tokens":1,"temperature":0.30000000000000004,
        "unknown":4444444444444444444444444444102222222222222222222222222222222204,
        "messages":[{"role":"user","content":"hi"}]}"#;
    let request: MessagesRequest = serde_json::from_str(body).unwrap();
    let again: MessagesRequest =
        serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(&request).unwrap()
    );
    assert_eq!(request.temperature, Some(0.30000000000000004));
}
