//! OpenAI clients served by an Ollama provider: requests out, replies and streams back.

use serde_json::{Value, json};

use super::{CREATED, ID, error_json, parse, run_group, translated_json, usage_json};
use crate::translate::ollama::{
    LineDecoder, SseFromNdjson, request_to_ollama, response_from_ollama,
};

/// The name the provider serves, which replaces the client's model name.
const SERVED_MODEL: &str = "llama3.2:3b";

#[test]
fn openai_requests_become_ollama_chat_requests() {
    run_group(
        "request_to_ollama",
        "json",
        |body| match request_to_ollama(body, SERVED_MODEL) {
            Ok(out) => parse(&out),
            Err(e) => error_json(&e),
        },
    );
}

#[test]
fn ollama_replies_become_openai_completions() {
    run_group("response_from_ollama", "json", |body| {
        translated_json(response_from_ollama(body, CREATED, ID))
    });
}

/// Feeds an NDJSON stream through the line decoder in 5-byte pieces, then the translator.
fn sse_of(ndjson: &[u8]) -> Value {
    let mut lines = LineDecoder::new();
    let mut translator = SseFromNdjson::new("gpt-4o-mini", true, CREATED, ID.to_owned());
    let mut out = Vec::new();
    for piece in ndjson.chunks(5) {
        lines.push(piece);
        while let Some(line) = lines.next_line() {
            out.extend(translator.push_line(&line));
        }
    }
    if let Some(line) = lines.finish() {
        out.extend(translator.push_line(&line));
    }
    out.extend(translator.finish());
    assert!(translator.finish().is_empty(), "finish is idempotent");
    let events: Vec<Value> = out
        .iter()
        .map(|event| {
            let text = std::str::from_utf8(event).unwrap();
            let payload = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("not one data event: {text:?}"));
            if payload == "[DONE]" {
                Value::String(payload.to_owned())
            } else {
                parse(payload.as_bytes())
            }
        })
        .collect();
    json!({
        "events": events,
        "usage": usage_json(translator.usage()),
        "complete": translator.is_complete(),
    })
}

#[test]
fn ollama_streams_become_openai_sse() {
    run_group("sse_from_ndjson", "ndjson", sse_of);
}

#[test]
fn usage_chunk_only_when_the_client_asked() {
    let mut translator = SseFromNdjson::new("m", false, CREATED, ID.to_owned());
    let done = br#"{"model":"x","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":3,"eval_count":1}"#;
    let events = translator.push_line(done);
    assert_eq!(events.len(), 2, "content chunk, then the finish chunk");
    let finish = translator.finish();
    assert_eq!(finish.len(), 1);
    assert_eq!(finish[0].as_ref(), b"data: [DONE]\n\n");
    assert_eq!(
        translator.usage().map(|u| (u.prompt, u.completion)),
        Some((3, 1))
    );
}

#[test]
fn request_errors_name_the_field() {
    let cases: &[(&[u8], Option<&str>, &str)] = &[
        (b"{", None, "not valid JSON"),
        (br#"{"model":"m"}"#, Some("messages"), "required"),
        (br#"{"messages":[1]}"#, Some("messages[0]"), "object"),
        (br#"{"messages":[{"content":"x"}]}"#, Some("messages[0].role"), "required"),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            Some("temperature"),
            "number",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"stop":[1]}"#,
            Some("stop"),
            "strings",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#,
            Some("messages[0].content[0].image_url.url"),
            "base64",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}"#,
            Some("tools[0].type"),
            "function tools only",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}"#,
            Some("response_format.json_schema.schema"),
            "schema",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}"#,
            Some("reasoning_effort"),
            "`max`",
        ),
        (
            br#"{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}]}"#,
            Some("messages[0].tool_calls[0].function.arguments"),
            "JSON object",
        ),
    ];
    for (body, field, needle) in cases {
        let err = request_to_ollama(body, SERVED_MODEL).unwrap_err();
        assert_eq!(err.field(), *field, "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
}

#[test]
fn legacy_function_messages_still_translate() {
    let body = br#"{"messages":[
        {"role":"user","content":"x"},
        {"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{\"a\":1}"}},
        {"role":"function","name":"f","content":"42"}]}"#;
    let out = parse(&request_to_ollama(body, SERVED_MODEL).unwrap());
    assert_eq!(
        out["messages"][1]["tool_calls"][0]["function"]["arguments"]["a"],
        1
    );
    assert_eq!(out["messages"][2]["role"], "tool");
    assert_eq!(out["messages"][2]["tool_name"], "f");
    assert_eq!(out["stream"], false);
}

/// Fuzzing found it: Ollama counts summing past u64::MAX overflowed the OpenAI `total_tokens`
/// (a panic in debug builds, a wrapped, tiny total in release ones), in replies and streams.
#[test]
fn huge_provider_counts_saturate_instead_of_overflowing() {
    let line = br#"{"model":"m","created_at":"x","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":18446744073709551615,"eval_count":1}"#;
    let reply = response_from_ollama(line, CREATED, ID).unwrap();
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["usage"]["total_tokens"], u64::MAX);

    let mut stream = SseFromNdjson::new("m", true, CREATED, ID.to_owned());
    let mut events = stream.push_line(line);
    events.extend(stream.finish());
    let usage_chunk = events
        .iter()
        .filter_map(|e| e.strip_prefix(b"data: "))
        .filter_map(|d| serde_json::from_slice::<Value>(d.trim_ascii()).ok())
        .find(|v| v["usage"].is_object())
        .unwrap();
    assert_eq!(usage_chunk["usage"]["total_tokens"], u64::MAX);
}

#[test]
fn a_second_done_line_gives_no_second_finish_reason() {
    // Found by the stream_ollama fuzz target: two `done: true` lines became two finish chunks.
    let mut stream = SseFromNdjson::new("m", true, CREATED, ID.to_owned());
    let mut events = Vec::new();
    for line in [
        br#"{"model":"m","created_at":"x","message":{"role":"assistant","content":"hi"},"done":false}"#.as_slice(),
        br#"{"model":"m","created_at":"x","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#,
        br#"{"model":"m","created_at":"x","message":{"role":"assistant","content":"late"},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":2}"#,
    ] {
        events.extend(stream.push_line(line));
    }
    events.extend(stream.finish());
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| e.strip_prefix(b"data: "))
        .filter_map(|d| serde_json::from_slice::<Value>(d.trim_ascii()).ok())
        .collect();
    let finishes = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null() && c["choices"][0].is_object())
        .count();
    assert_eq!(finishes, 1, "{chunks:?}");
    assert!(
        !format!("{chunks:?}").contains("late"),
        "nothing after the end"
    );
    let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
    assert_eq!(
        usage["usage"]["prompt_tokens"], 7,
        "the last usage seen is kept"
    );
}
