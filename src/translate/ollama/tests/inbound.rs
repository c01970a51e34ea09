//! Ollama clients served by an OpenAI-compatible provider: requests out, replies and streams back.

use serde_json::{Value, json};

use super::{CREATED_AT, error_json, parse, run_group, translated_json, usage_json};
use crate::translate::ollama::{
    Endpoint, NdjsonFromOpenAi, OpenAiRequest, TranslateError, chat_request_to_openai,
    chat_response_from_openai, generate_request_to_openai, generate_response_from_openai,
};
use crate::wire::sse::Decoder;

fn request_json(result: Result<OpenAiRequest, TranslateError>) -> Value {
    match result {
        Ok(req) => json!({
            "model": req.model,
            "stream": req.stream,
            "ignored": req.ignored,
            "body": parse(&req.body),
        }),
        Err(e) => error_json(&e),
    }
}

#[test]
fn chat_requests_become_openai_requests() {
    run_group("chat_request_to_openai", "json", |body| {
        request_json(chat_request_to_openai(body))
    });
}

#[test]
fn generate_requests_become_openai_requests() {
    run_group("generate_request_to_openai", "json", |body| {
        request_json(generate_request_to_openai(body))
    });
}

#[test]
fn openai_replies_become_chat_replies() {
    run_group("chat_response_from_openai", "json", |body| {
        translated_json(chat_response_from_openai(body, CREATED_AT))
    });
}

#[test]
fn openai_replies_become_generate_replies() {
    run_group("generate_response_from_openai", "json", |body| {
        translated_json(generate_response_from_openai(body, CREATED_AT))
    });
}

/// Feeds an SSE stream to the translator in awkward 7-byte pieces, as a network would.
fn ndjson_of(kind: Endpoint, sse: &[u8]) -> Value {
    let mut decoder = Decoder::new();
    let mut translator = NdjsonFromOpenAi::new(kind, "llama3.2", CREATED_AT.to_owned());
    let mut out = Vec::new();
    for piece in sse.chunks(7) {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            out.extend(translator.push(&event.data));
        }
    }
    if let Some(event) = decoder.take_rest() {
        out.extend(translator.push(&event.data));
    }
    out.extend(translator.finish());
    assert!(translator.finish().is_empty(), "finish is idempotent");
    assert!(translator.push(b"{}").is_empty(), "nothing after the end");
    let lines: Vec<Value> = out
        .iter()
        .map(|line| {
            assert!(line.ends_with(b"\n"), "line ends in a newline: {line:?}");
            assert_eq!(
                memchr::memchr_iter(b'\n', line).count(),
                1,
                "one line: {line:?}"
            );
            parse(line)
        })
        .collect();
    json!({"lines": lines, "usage": usage_json(translator.usage())})
}

#[test]
fn openai_streams_become_chat_ndjson() {
    run_group("ndjson_chat_from_openai", "sse", |sse| {
        ndjson_of(Endpoint::Chat, sse)
    });
}

#[test]
fn openai_streams_become_generate_ndjson() {
    run_group("ndjson_generate_from_openai", "sse", |sse| {
        ndjson_of(Endpoint::Generate, sse)
    });
}

#[test]
fn streamed_tool_calls_with_broken_arguments_end_in_an_error_line() {
    let mut translator = NdjsonFromOpenAi::new(Endpoint::Chat, "m", CREATED_AT.to_owned());
    let chunk = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}"#;
    let lines = translator.push(chunk);
    assert_eq!(lines.len(), 1);
    let line = parse(&lines[0]);
    let message = line["error"].as_str().unwrap();
    assert!(message.contains("tool call `f`"), "{message}");
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(translator.finish().is_empty());
}

#[test]
fn tool_calls_without_a_finish_reason_are_sent_before_the_done_line() {
    let mut translator = NdjsonFromOpenAi::new(Endpoint::Chat, "m", CREATED_AT.to_owned());
    let chunk = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]}}]}"#;
    assert!(translator.push(chunk).is_empty());
    assert!(
        translator.push(b"not json").len() == 1,
        "malformed chunk is reported"
    );
    let mut translator = NdjsonFromOpenAi::new(Endpoint::Chat, "m", CREATED_AT.to_owned());
    translator.push(chunk);
    assert!(!translator.is_complete());
    // A server that never sends a finish reason still ends with `[DONE]`.
    assert!(translator.push(b"[DONE]").is_empty());
    assert!(translator.is_complete());
    let lines: Vec<Value> = translator.finish().iter().map(|l| parse(l)).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["message"]["tool_calls"][0]["function"]["name"],
        "f"
    );
    assert_eq!(lines[1]["done"], true);
    assert_eq!(lines[1]["done_reason"], "stop");
    assert!(lines[1].get("eval_count").is_none());
}

#[test]
fn request_errors_name_the_field() {
    let cases: &[(&[u8], Option<&str>, &str)] = &[
        (b"[1]", None, "expected a JSON object"),
        (
            br#"{"model":"","messages":[{"role":"user"}]}"#,
            Some("model"),
            "non-empty",
        ),
        (
            br#"{"model":"m","messages":[]}"#,
            Some("messages"),
            "must not be empty",
        ),
        (
            br#"{"model":"m","messages":{}}"#,
            Some("messages"),
            "invalid",
        ),
        (
            br#"{"model":"m","messages":[{"content":"x"}]}"#,
            Some("messages[0].role"),
            "required",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","images":[1]}]}"#,
            Some("messages[0].images"),
            "invalid type",
        ),
        (
            br#"{"model":"m","messages":[{"role":"bot","content":"x"}]}"#,
            Some("messages[0].role"),
            "`bot`",
        ),
        (
            br#"{"model":"m","messages":[{"role":"system","content":"x","images":["aGk="]}]}"#,
            Some("messages[0].images"),
            "user messages only",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"format":"yaml"}"#,
            Some("format"),
            "\"yaml\"",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"format":3}"#,
            Some("format"),
            "JSON schema",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"think":1}"#,
            Some("think"),
            "level",
        ),
        (
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"options":{"stop":"x"}}"#,
            Some("options.stop"),
            "expected a sequence",
        ),
    ];
    for (body, field, needle) in cases {
        let err = chat_request_to_openai(body).unwrap_err();
        assert_eq!(err.field(), *field, "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
}

#[test]
fn stream_defaults_to_true_and_asks_for_usage() {
    let req =
        chat_request_to_openai(br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#)
            .unwrap();
    assert!(req.stream);
    let body = parse(&req.body);
    assert_eq!(body["stream_options"]["include_usage"], true);
    let req = generate_request_to_openai(br#"{"model":"m","prompt":"x","stream":false}"#).unwrap();
    assert!(!req.stream);
    assert!(parse(&req.body).get("stream_options").is_none());
}
