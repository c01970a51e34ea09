//! Issue 17 items 6, 7, 10: replies that are not whole are failures, in the ledger and to the
//! client. A stream that ends cleanly but without its end (no finish reason or `[DONE]`, no
//! `message_stop`, no `response.completed`) ends with an error event in the client's format and
//! a failed row; a malformed event or a 200 body that is no reply (cut JSON, an HTML page,
//! empty, an error object) is a failure too. And the other way round: once the reply's end
//! reached the client, neither the client leaving nor the provider being slow to close takes
//! anything from it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::formats::{messages_body, post, raw, responses_body, start_every_kind as start};
use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, chat_body, http_client, post_chat, text};

/// OpenAI chunks with text and no finish reason, and no `[DONE]`: a stream cut at a clean EOF.
fn openai_cut() -> String {
    let mut out = String::new();
    for (i, word) in REPLY_WORDS.iter().take(2).enumerate() {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": word})
        } else {
            json!({"content": word})
        };
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
        out += &format!("data: {chunk}\n\n");
    }
    out
}

/// `message_start` and some text, then a clean end without `message_delta` or `message_stop`.
const ANTHROPIC_CUT: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"A partial answer that the provider cut off\"}}\n\n",
);

/// A Responses stream that stops before `response.completed`.
const RESPONSES_CUT: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4o-mini\",\"output\":[]}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"A partial answer\"}\n\n",
);

fn assert_failed(case: &str, row: &std::collections::HashMap<String, String>, code: &str) {
    assert_ne!(row["outcome"], "ok", "{case}: {row:?}");
    assert_eq!(row["error_code"], code, "{case}: {row:?}");
    assert_eq!(row["tokens_estimated"], "1", "{case}: {row:?}");
    let prompt: u64 = row["prompt_tokens"].parse().unwrap();
    assert!(prompt > 0, "{case}: {row:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_at_a_clean_end_fails_and_says_so_in_every_format() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-4o-mini");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    let host = session.env["OLLAMA_HOST"].clone();
    let mut cases = Vec::new();

    // OpenAI client, OpenAI provider: the error chunk, as for a reset.
    upstream.push([raw("text/event-stream", openai_cut())]);
    let reply = post_chat(&url, Some(&key), chat_body("gpt-4o-mini", true, "hi")).await;
    let last: Value = serde_json::from_str(reply.events().last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_truncated",
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("[DONE]"), "{}", reply.body);
    cases.push("openai");

    // Anthropic client, OpenAI provider: an error event, never an invented `end_turn`.
    upstream.push([raw("text/event-stream", openai_cut())]);
    let (_, body) = post(
        format!("{url}/messages"),
        &key,
        &messages_body("gpt-4o-mini", true),
    )
    .await;
    assert!(body.contains("event: error\n"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");
    assert!(!body.contains("end_turn"), "{body}");
    cases.push("anthropic from openai");

    // Ollama client, OpenAI provider: an error line.
    upstream.push([raw("text/event-stream", openai_cut())]);
    let ollama = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let (_, body) = post(format!("{host}/api/chat"), &key, &ollama).await;
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert!(last["error"].is_string(), "{body}");
    assert_ne!(last["done"], true, "{body}");
    cases.push("ollama from openai");

    // Responses client, Responses provider.
    upstream.push([raw("text/event-stream", RESPONSES_CUT)]);
    let (_, body) = post(
        format!("{url}/responses"),
        &key,
        &responses_body("gpt-4o-mini", true),
    )
    .await;
    assert!(
        body.ends_with("\n\n") && body.contains("event: error\n"),
        "{body}"
    );
    assert!(!body.contains("response.completed"), "{body}");
    cases.push("responses");

    // Responses client, chat provider.
    upstream.push([raw("text/event-stream", openai_cut())]);
    let (_, body) = post(
        format!("{url}/responses"),
        &key,
        &responses_body("gpt-4.1-mini", true),
    )
    .await;
    assert!(body.contains("event: error\n"), "{body}");
    assert!(!body.contains("response.completed"), "{body}");
    cases.push("responses from chat");

    // Anthropic client, Anthropic provider (passed through).
    upstream.push([raw("text/event-stream", ANTHROPIC_CUT)]);
    let (_, body) = post(
        format!("{url}/messages"),
        &key,
        &messages_body("claude-sonnet-4-5", true),
    )
    .await;
    assert!(body.contains("event: error\n"), "{body}");
    assert!(
        body.contains("upstream_truncated") || body.contains("cut short"),
        "{body}"
    );
    cases.push("anthropic native");

    // OpenAI client, Anthropic provider (translated): no `[DONE]` for half a reply.
    upstream.push([raw("text/event-stream", ANTHROPIC_CUT)]);
    let reply = post_chat(&url, Some(&key), chat_body("claude-sonnet-4-5", true, "hi")).await;
    let last: Value = serde_json::from_str(reply.events().last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_truncated",
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("[DONE]"), "{}", reply.body);
    cases.push("openai from anthropic");

    // OpenAI client, Ollama provider (translated): its lines stop before `done: true`.
    let line = json!({"model": "llama3", "created_at": "2026-12-01T00:00:00Z",
        "message": {"role": "assistant", "content": "Half an"}, "done": false});
    upstream.push([raw("application/x-ndjson", format!("{line}\n"))]);
    let reply = post_chat(&url, Some(&key), chat_body("llama3", true, "hi")).await;
    let errors: Vec<Value> = reply
        .events()
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|e| e.get("error").is_some())
        .collect();
    assert_eq!(errors.len(), 1, "{}", reply.body);
    assert_eq!(
        errors[0]["error"]["code"], "upstream_truncated",
        "{}",
        reply.body
    );
    cases.push("openai from ollama");

    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), cases.len(), "{rows:?}");
    for (case, row) in cases.iter().zip(&rows) {
        assert_failed(case, row, "upstream_truncated");
    }
    // What the provider did report of the input is kept.
    assert_eq!(rows[5]["prompt_tokens"], "25", "{:?}", rows[5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_and_bodies_that_are_no_reply_are_failures() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-4o-mini");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    let mut cases = Vec::new();

    // A malformed chunk on a translated stream that otherwise ends well.
    let mut stream = String::from("data: {not json\n\n");
    stream += &openai_cut();
    stream += &format!(
        "data: {}\n\ndata: [DONE]\n\n",
        support::upstream::chunk("gpt-4o-mini", json!({}), Some("stop"))
    );
    upstream.push([raw("text/event-stream", stream)]);
    let (status, body) = post(
        format!("{url}/messages"),
        &key,
        &messages_body("gpt-4o-mini", true),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    cases.push(("malformed chunk, anthropic client", "upstream_malformed"));
    // ... and passed through to an OpenAI client.
    upstream.push([Behavior::MalformedSse]);
    post_chat(&url, Some(&key), chat_body("gpt-4o-mini", true, "hi")).await;
    cases.push(("malformed chunk, openai client", "upstream_malformed"));

    // Whole replies with status 200 that are no reply: the client gets a 502 saying why.
    let whole = [
        (
            r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"mess"#,
            "upstream_truncated",
        ),
        (
            "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
            "upstream_malformed",
        ),
        ("", "upstream_truncated"),
        (
            r#"{"error":{"message":"quota exhausted","type":"insufficient_quota"}}"#,
            "upstream_malformed",
        ),
    ];
    for (body, code) in whole {
        upstream.push([raw("application/json", body)]);
        let reply = post_chat(&url, Some(&key), chat_body("gpt-4o-mini", false, "hi")).await;
        assert_eq!(reply.status, 502, "{}", reply.body);
        assert_eq!(reply.json()["error"]["code"], code, "{}", reply.body);
        cases.push(("whole", code));
    }
    // An Anthropic client gets the error in Anthropic's shape.
    upstream.push([raw("application/json", "<html>gateway timeout</html>")]);
    let (status, body) = post(
        format!("{url}/messages"),
        &key,
        &messages_body("claude-sonnet-4-5", false),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["type"],
        "error",
        "{body}"
    );
    cases.push(("whole anthropic native", "upstream_malformed"));

    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), cases.len(), "{rows:?}");
    for ((case, code), row) in cases.iter().zip(&rows) {
        assert_ne!(row["outcome"], "ok", "{case}: {row:?}");
        assert_eq!(row["error_code"], *code, "{case}: {row:?}");
        if case.starts_with("whole") {
            assert_failed(case, row, code);
            assert_eq!(row["status"], "502", "{case}: {row:?}");
        }
    }
}

/// Reads an SSE reply until `marker` arrives, then drops the connection.
async fn read_until_then_leave(url: String, key: &str, body: &Value, marker: &str) -> String {
    let mut resp = http_client()
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains(marker) {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
            .await
            .expect("the stream stalled")
            .unwrap()
            .expect("the stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(resp);
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_after_the_final_event_got_the_whole_reply() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-4o-mini");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    let hold = Duration::from_secs(60);

    // Codex: `response.completed`, then it closes while the provider has not ended the body.
    let mut events = String::from(RESPONSES_CUT);
    let usage = json!({"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    let done = json!({"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_1",
        "object": "response", "status": "completed", "model": "gpt-4o-mini", "output": [], "usage": usage}});
    events += &format!("event: response.completed\ndata: {done}\n\n");
    upstream.push([Behavior::RawThenHold {
        content_type: "text/event-stream",
        body: events,
        hold,
    }]);
    read_until_then_leave(
        format!("{url}/responses"),
        &key,
        &responses_body("gpt-4o-mini", true),
        "response.completed",
    )
    .await;

    // An OpenAI client that leaves on `[DONE]`.
    let mut chat = openai_cut();
    chat += &format!(
        "data: {}\n\ndata: [DONE]\n\n",
        support::upstream::chunk("gpt-4o-mini", json!({}), Some("stop"))
    );
    upstream.push([Behavior::RawThenHold {
        content_type: "text/event-stream",
        body: chat,
        hold,
    }]);
    let body: Value = serde_json::from_str(&chat_body("gpt-4o-mini", true, "hi")).unwrap();
    read_until_then_leave(format!("{url}/chat/completions"), &key, &body, "[DONE]").await;

    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["outcome"], "ok", "{row:?}");
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["error_code"], "NULL", "{row:?}");
    }
    assert_eq!(
        rows[0]["prompt_tokens"],
        PROMPT_TOKENS.to_string(),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[0]["tokens_estimated"], "0", "{:?}", rows[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_slow_to_close_after_its_end_takes_nothing_from_the_reply() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "    timeouts: {idle_ms: 400}\nresilience:\n  max_attempts: 1\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let mut chat = openai_cut();
    chat += &format!(
        "data: {}\n\ndata: [DONE]\n\n",
        support::upstream::chunk("gpt-4o-mini", json!({}), Some("stop"))
    );
    // The idle timeout fires after `[DONE]`, while the provider holds the connection open.
    upstream.push([Behavior::RawThenHold {
        content_type: "text/event-stream",
        body: chat,
        hold: Duration::from_secs(30),
    }]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
    assert!(!reply.body.contains("\"error\""), "{}", reply.body);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows[0]["outcome"], "ok", "{:?}", rows[0]);
    assert_eq!(rows[0]["error_code"], "NULL", "{:?}", rows[0]);
}
