//! `POST /v1/embeddings`: passed to OpenAI-compatible providers as the client wrote it, priced
//! by input tokens, recorded; refused with a clear 400 when malformed and with a clear error when
//! no target can serve it; made up by the mock for offline runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::dialects::EMBEDDING_TOKENS;
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, text};

async fn post(base_url: &str, key: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = support::http_client()
        .post(format!("{base_url}/embeddings"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_reach_openai_compatible_providers_priced_and_recorded() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [text-embedding-3-small, gpt-4o-mini]\n  - name: claude\n    kind: anthropic\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [claude-*]\n",
            upstream.base_url(),
            upstream.base_url().trim_end_matches("/v1"),
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = r#"{"model":"text-embedding-3-small","input":["one","two"],"encoding_format":"base64","dimensions":3}"#;
    let (status, reply) = post(&session.base_url, &session.key, body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(reply["data"][0]["embedding"], "AACAPgAAAD8AAEA/");
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        sent.body,
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        "the client's body goes out as it came"
    );
    assert_eq!(sent.authorization.as_deref(), Some("Bearer k"));

    // Malformed: a 400 naming the field, and nothing sent.
    let (status, reply) = post(
        &session.base_url,
        &session.key,
        r#"{"model":"text-embedding-3-small","input":42}"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["param"], "input");
    // A model only a non-OpenAI provider serves: a clear refusal, nothing sent.
    let (status, reply) = post(
        &session.base_url,
        &session.key,
        r#"{"model":"claude-sonnet-4-5","input":"x"}"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/embeddings needs an OpenAI-compatible target"),
        "{reply}"
    );
    assert_eq!(upstream.calls(), 1);
    let out = session.finish(0);
    assert!(
        text(&out.stderr).contains("text-embedding-3-small"),
        "{}",
        text(&out.stderr)
    );

    let rows = env.requests();
    assert_eq!(rows.len(), 3, "every request, refused or not, is a row");
    let ok = &rows[0];
    assert_eq!(ok["endpoint"], "embeddings");
    assert_eq!(ok["status"], "200");
    assert_eq!(ok["prompt_tokens"], EMBEDDING_TOKENS.to_string());
    assert_eq!(ok["completion_tokens"], "0");
    assert_eq!(ok["tokens_estimated"], "0");
    // $0.02 per million input tokens.
    let cost: f64 = ok["cost_usd"].parse().unwrap();
    let want = EMBEDDING_TOKENS as f64 * 0.02 / 1e6;
    assert!((cost - want).abs() < 1e-12, "{cost} vs {want}");
    assert_eq!(rows[1]["status"], "400");
    assert_eq!(rows[1]["error_code"], "invalid_request");
    assert_eq!(rows[2]["status"], "400");
    assert_eq!(
        rows[2]["skipped"],
        "claude/claude-sonnet-4-5: not an OpenAI-compatible API, which this endpoint needs",
        "the routing trail says why the only target was left out"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mock_makes_up_embeddings_offline() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock"], &[]);
    let body = r#"{"model":"text-embedding-3-small","input":["same","same","other"]}"#;
    let (status, reply) = post(&session.base_url, &session.key, body).await;
    assert_eq!(status, 200, "{reply}");
    let data = reply["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["embedding"], data[1]["embedding"], "deterministic");
    assert_ne!(data[0]["embedding"], data[2]["embedding"]);
    assert!(reply["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows[0]["endpoint"], "embeddings");
    assert!(
        rows[0]["cost_usd"].parse::<f64>().unwrap() > 0.0,
        "{:?}",
        rows[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_pass_through() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Status {
        status: 400,
        retry_after: None,
    }]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let (status, reply) = post(
        &session.base_url,
        &session.key,
        r#"{"model":"gpt-4o-mini","input":"x"}"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"].is_object(), "{reply}");
    session.finish(0);
    assert_eq!(env.requests()[0]["outcome"], "upstream_error");
}
