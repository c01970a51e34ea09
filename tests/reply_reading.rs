//! Issue 17 items 8, 20, 21: what smartproxy reads from a reply whatever its encoding or
//! shape. A gzip reply (whole or streamed) reaches the client decoded and its usage is read; a
//! streamed Responses reply served at the `flex` tier is billed at the flex price, like a whole
//! one; a native Anthropic stream that reports no usage has its prompt estimated, never 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::formats::{messages_body, post, raw, responses_body, start_every_kind as start};
use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, chat_body, post_chat, text};

/// OpenAI chunks with text and no finish reason yet.
fn openai_chunks() -> String {
    REPLY_WORDS
        .iter()
        .take(2)
        .map(|word| {
            let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]});
            format!("data: {chunk}\n\n")
        })
        .collect()
}

/// A native Anthropic stream whose `message_start` carries no usage at all.
fn anthropic_without_usage(final_usage: &str) -> String {
    let mut out = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_3\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null}}\n\n",
    );
    out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    out += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"An answer from a provider that counts nothing at all.\"}}\n\n";
    out += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
    out += &format!(
        "event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}}{final_usage}}}\n\n"
    );
    out += "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_anthropic_stream_without_usage_is_estimated() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-4o-mini");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    upstream.push([
        raw("text/event-stream", anthropic_without_usage("")),
        raw(
            "text/event-stream",
            anthropic_without_usage(",\"usage\":{\"output_tokens\":9}"),
        ),
    ]);
    for _ in 0..2 {
        let (status, body) = post(
            format!("{url}/messages"),
            &key,
            &messages_body("claude-sonnet-4-5", true),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("message_stop"), "{body}");
    }
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["outcome"], "ok", "{row:?}");
        assert_eq!(row["tokens_estimated"], "1", "{row:?}");
        let prompt: u64 = row["prompt_tokens"].parse().unwrap();
        assert!(prompt > 5, "the prompt is estimated, never 0: {row:?}");
    }
    // The output count the provider did report is kept.
    assert_eq!(rows[1]["completion_tokens"], "9", "{:?}", rows[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_flex_reply_is_billed_at_the_flex_price() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-5.4");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    let response = |tier: &str| {
        json!({"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.4",
            "service_tier": tier, "output": [],
            "usage": {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}})
    };
    let streamed = |tier: &str| {
        let done =
            json!({"type": "response.completed", "sequence_number": 0, "response": response(tier)});
        format!("event: response.completed\ndata: {done}\n\n")
    };
    upstream.push([
        raw("application/json", response("flex").to_string()),
        raw("text/event-stream", streamed("flex")),
        raw("text/event-stream", streamed("default")),
    ]);
    for stream in [false, true, true] {
        let (status, body) = post(
            format!("{url}/responses"),
            &key,
            &responses_body("gpt-5.4", stream),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    let cost = |i: usize| -> f64 { rows[i]["cost_usd"].parse().unwrap() };
    assert!(
        (cost(0) - cost(1)).abs() < 1e-12,
        "whole {} vs streamed {}",
        cost(0),
        cost(1)
    );
    assert!(
        cost(1) < cost(2) * 0.75,
        "flex {} vs standard {}",
        cost(1),
        cost(2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_reply_is_decoded_and_its_usage_read() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "gpt-4o-mini");
    let (url, key) = (session.base_url.clone(), session.key.clone());
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    let whole = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY_WORDS.concat()}, "finish_reason": "stop"}],
        "usage": usage});
    let mut stream = openai_chunks();
    stream += &format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        support::upstream::chunk("gpt-4o-mini", json!({}), Some("stop")),
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": [], "usage": usage}),
    );
    upstream.push([
        Behavior::RawGzip {
            content_type: "application/json",
            body: whole.to_string(),
        },
        Behavior::RawGzip {
            content_type: "text/event-stream",
            body: stream,
        },
    ]);
    let reply = post_chat(&url, Some(&key), chat_body("gpt-4o-mini", false, "hi")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.headers.get("content-encoding").is_none());
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    let reply = post_chat(&url, Some(&key), chat_body("gpt-4o-mini", true, "hi")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["outcome"], "ok", "{row:?}");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string(), "{row:?}");
        assert_eq!(
            row["completion_tokens"],
            COMPLETION_TOKENS.to_string(),
            "{row:?}"
        );
        assert_eq!(row["tokens_estimated"], "0", "{row:?}");
    }
}
