//! Issue 10 item 6: a reply that reports no usage, from any provider kind and in any client
//! format, and a stream that ends before its final count are recorded with estimated tokens,
//! marked `tokens_estimated`, never an exact 0, NULL, or Anthropic's placeholder output count 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, chat_body, http_client, post_chat, text};

const ANTHROPIC_WHOLE_NO_USAGE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"A whole answer from a provider that reported no usage at all."}],"stop_reason":"end_turn"}"#;

/// `message_start` (with its placeholder output count of 1) and text, then the stream ends
/// without `message_delta`, which would have carried the real output count.
const ANTHROPIC_STREAM_CUT: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"A partial answer that the provider cut off before its final count\"}}\n\n",
);

const OLLAMA_WHOLE_NO_COUNTS: &str = r#"{"model":"gpt-4o","created_at":"2026-12-02T10:00:00Z","message":{"role":"assistant","content":"An answer from an Ollama server that sent no counts."},"done":true,"done_reason":"stop"}"#;

fn raw(content_type: &'static str, body: &str) -> Behavior {
    Behavior::Raw {
        content_type,
        body: body.to_owned(),
    }
}

async fn post_messages(base_url: &str, key: &str, stream: bool) -> (u16, String) {
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5", "max_tokens": 200, "stream": stream,
        "messages": [{"role": "user", "content": "Tell me something about budgets, please."}],
    });
    let resp = http_client()
        .post(format!("{base_url}/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_without_usage_are_estimated_and_marked_for_every_provider_kind() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let base = upstream.base_url();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: oa\n    kind: openai\n    base_url: {base}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini]\n  - name: an\n    kind: anthropic\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n  - name: ol\n    kind: ollama\n    base_url: {}\n    models: [gpt-4o]\n",
            base.trim_end_matches("/v1"),
            base.trim_end_matches("/v1"),
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let (url, key) = (&session.base_url, &session.key);
    let prompt = "Tell me something about budgets, please.";
    let mut cases = Vec::new();

    // OpenAI provider: whole and streamed without usage, and a stream cut mid-way.
    upstream.push([Behavior::OkWithoutUsage, Behavior::OkWithoutUsage]);
    for stream in [false, true] {
        let reply = post_chat(url, Some(key), chat_body("gpt-4o-mini", stream, prompt)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    upstream.push([Behavior::CutStream { chunks: 2 }]);
    post_chat(url, Some(key), chat_body("gpt-4o-mini", true, prompt)).await;
    cases.extend(["openai whole", "openai stream", "openai cut stream"]);

    // Anthropic provider, Anthropic client (passed through untouched).
    upstream.push([
        raw("application/json", ANTHROPIC_WHOLE_NO_USAGE),
        raw("text/event-stream", ANTHROPIC_STREAM_CUT),
    ]);
    for stream in [false, true] {
        let (status, body) = post_messages(url, key, stream).await;
        assert_eq!(status, 200, "{body}");
    }
    cases.extend(["anthropic native whole", "anthropic native cut stream"]);

    // Anthropic provider, OpenAI client (translated).
    upstream.push([
        raw("application/json", ANTHROPIC_WHOLE_NO_USAGE),
        raw("text/event-stream", ANTHROPIC_STREAM_CUT),
    ]);
    for stream in [false, true] {
        let reply = post_chat(
            url,
            Some(key),
            chat_body("claude-sonnet-4-5", stream, prompt),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if stream {
            assert!(
                !reply.body.contains("\"completion_tokens\":1,"),
                "no placeholder count reaches the client: {}",
                reply.body
            );
        }
    }
    cases.extend([
        "anthropic translated whole",
        "anthropic translated cut stream",
    ]);

    // Ollama provider without prompt_eval_count / eval_count.
    upstream.push([raw("application/json", OLLAMA_WHOLE_NO_COUNTS)]);
    let reply = post_chat(url, Some(key), chat_body("gpt-4o", false, prompt)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    cases.push("ollama whole");

    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), cases.len(), "{rows:?}");
    for (case, row) in cases.iter().zip(&rows) {
        assert_eq!(row["tokens_estimated"], "1", "{case}: {row:?}");
        for field in ["prompt_tokens", "completion_tokens"] {
            let n: u64 = row[field]
                .parse()
                .unwrap_or_else(|_| panic!("{case}: {field} is {}", row[field]));
            assert!(n > 1, "{case}: {field} is {n}, a placeholder: {row:?}");
        }
        let cost: f64 = row["cost_usd"]
            .parse()
            .unwrap_or_else(|_| panic!("{case}: no cost: {row:?}"));
        assert!(cost > 0.0, "{case}: {row:?}");
    }
    // What message_start said of the input is kept: only the output is estimated.
    assert_eq!(rows[4]["prompt_tokens"], "25", "{:?}", rows[4]);
}
