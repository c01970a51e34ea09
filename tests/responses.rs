//! OpenAI's Responses API (`POST /v1/responses`, what Codex CLI speaks) passed through to
//! OpenAI-compatible providers untouched, whole and streamed event by event, with usage read
//! from the reply (`input_tokens_details.cached_tokens` priced as cache reads) and recorded.
//! Targets that do not speak it get a clear refusal, and every request is a ledger row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::dialects::RESPONSES_CACHED_TOKENS;
use support::upstream::{COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, text};

async fn post(base_url: &str, key: &str, body: &serde_json::Value) -> (u16, String, String) {
    let resp = support::http_client()
        .post(format!("{base_url}/responses"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_pass_through_to_openai_providers_whole_and_streamed() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini, gpt-4o]\n  - name: local\n    kind: mock\n    models: [mock]\n",
            upstream.base_url()
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "instructions": "Answer briefly.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is the answer?"}]}],
        "reasoning": {"effort": "low"},
        "store": false,
    });
    let (status, content_type, reply) = post(&session.base_url, &session.key, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(content_type, "application/json");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        reply["output"][0]["content"][0]["text"],
        REPLY_WORDS.concat()
    );
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body, body, "the client's body goes out untouched");

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let (status, content_type, events) = post(&session.base_url, &session.key, &streamed).await;
    assert_eq!(status, 200, "{events}");
    assert_eq!(content_type, "text/event-stream");
    let names: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        REPLY_WORDS.len()
    );
    assert!(
        !upstream.received()[1]
            .body
            .as_object()
            .unwrap()
            .contains_key("stream_options"),
        "Responses bodies get no chat-only fields"
    );

    // A model only the mock serves: the Responses API needs an OpenAI-compatible target.
    let (status, _, reply) = post(
        &session.base_url,
        &session.key,
        &serde_json::json!({"model": "mock", "input": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply.contains("/v1/responses needs an OpenAI-compatible target"),
        "{reply}"
    );
    // Malformed: a 400 naming the problem.
    let (status, _, reply) = post(
        &session.base_url,
        &session.key,
        &serde_json::json!({"input": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    // Retrieving a stored response is not supported yet: said plainly.
    let resp = support::http_client()
        .get(format!("{}/responses/resp_123", session.base_url))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 501);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rows = env.requests();
    assert_eq!(rows.len(), 5, "every request is a row: {rows:?}");
    for row in &rows[..2] {
        assert_eq!(row["endpoint"], "responses", "{row:?}");
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string(), "{row:?}");
        assert_eq!(
            row["completion_tokens"],
            COMPLETION_TOKENS.to_string(),
            "{row:?}"
        );
        assert_eq!(
            row["cached_tokens"],
            RESPONSES_CACHED_TOKENS.to_string(),
            "{row:?}"
        );
        assert_eq!(row["tokens_estimated"], "0", "{row:?}");
        // gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
        let uncached = (PROMPT_TOKENS - RESPONSES_CACHED_TOKENS) as f64;
        let want = (uncached * 0.15
            + RESPONSES_CACHED_TOKENS as f64 * 0.075
            + COMPLETION_TOKENS as f64 * 0.60)
            / 1e6;
        let cost: f64 = row["cost_usd"].parse().unwrap();
        assert!((cost - want).abs() < 1e-12, "{cost} vs {want}: {row:?}");
    }
    assert_eq!(rows[1]["stream"], "1");
    assert_eq!(rows[2]["status"], "400");
    assert_eq!(rows[3]["status"], "400");
    assert_eq!(rows[4]["status"], "501");
}
