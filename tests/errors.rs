//! Bad input and failing upstreams: OpenAI-shaped errors with the right status, and a ledger row
//! for every one of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, chat_body, post_chat};

fn assert_openai_error(reply: &support::Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    let error = &body["error"];
    assert_eq!(error["code"], code, "{}", reply.body);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"].is_string());
    assert!(error.get("param").is_some());
    assert!(reply.headers.contains_key("x-smartproxy-request-id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_openai_errors_and_are_recorded() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "limits:\n  max_body_bytes: 2048\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let key = Some(session.key.as_str());
    let base = session.base_url.as_str();

    assert_openai_error(
        &post_chat(base, key, "{not json").await,
        400,
        "invalid_json",
    );
    let reply = post_chat(base, key, r#"{"messages":[{"role":"user","content":"x"}]}"#).await;
    assert_openai_error(&reply, 400, "invalid_request");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    let reply = post_chat(base, key, r#"{"model":"gpt-4o","messages":[]}"#).await;
    assert_openai_error(&reply, 400, "invalid_request");
    assert_eq!(reply.json()["error"]["param"], "messages");
    let big = chat_body("gpt-4o", false, &"x".repeat(4096));
    assert_openai_error(&post_chat(base, key, big).await, 413, "request_too_large");

    let client = support::http_client();
    let resp = client
        .get(format!("{base}/chat/completions"))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    // A Responses API body without a model: refused before anything is sent.
    let resp = client
        .post(format!("{base}/responses"))
        .bearer_auth(&session.key)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Stored responses can be read, not deleted, through smartproxy: said plainly.
    let resp = client
        .delete(format!("{base}/responses/resp_123"))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 501);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "unsupported_endpoint");
    let resp = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    assert_eq!(upstream.calls(), 0, "nothing bad was sent upstream");
    session.finish(0);
    let rows = env.requests();
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(
        statuses,
        vec!["400", "400", "400", "413", "405", "400", "501", "404"]
    );
    assert!(rows.iter().all(|r| r["outcome"] == "rejected"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_pass_through_once_and_unreachable_upstreams_give_502() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Status {
        status: 422,
        retry_after: None,
    }]);
    let env = TestEnv::new();
    // A second provider on a port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let extra = format!(
        "  - name: dead\n    kind: openai\n    base_url: {dead_url}\n    models: [dead-model]\nresilience:\n  backoff_ms: 10\n"
    );
    let config = env.upstream_config(&upstream.base_url(), &extra);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json()["error"]["message"],
        "mock upstream says 422",
        "the upstream's body, untouched"
    );
    assert_eq!(upstream.calls(), 1, "client errors are not retried");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("dead-model", false, "hi"),
    )
    .await;
    assert_openai_error(&reply, 502, "upstream_connect_error");
    assert_eq!(
        reply.headers["x-smartproxy-attempts"], "2",
        "a refused connection is retried"
    );
    assert_eq!(
        reply.headers["x-should-retry"], "false",
        "smartproxy already retried: the client's retries would only wait for the same error"
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows[0]["outcome"], "upstream_error");
    assert_eq!(rows[0]["error_code"], "upstream_422");
    assert_eq!(rows[1]["outcome"], "transport_error");
    assert_eq!(rows[1]["provider"], "dead");
}

#[tokio::test(flavor = "multi_thread")]
async fn models_health_and_readiness() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock"], &[]);
    let client = support::http_client();
    let root = session.env["SMARTPROXY_URL"].clone();
    assert_eq!(
        client
            .get(format!("{root}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{root}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let resp = client
        .get(format!("{}/models", session.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(format!("{}/models", session.base_url))
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    let models: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-4o-mini")
    );
    session.finish(0);
}

/// A request no target can take is refused with what was passed over and why, and its row
/// keeps that trail.
#[tokio::test(flavor = "multi_thread")]
async fn no_usable_target_is_a_503_that_names_the_skips_in_reply_and_ledger() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    // UPSTREAM_KEY is not set: the only provider has no credential.
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("upstream/gpt-4o skipped, missing credential ($UPSTREAM_KEY is not set)"),
        "{message}"
    );
    // A missing key is not transient: SDKs (Claude Code, Codex) are told not to retry.
    assert_eq!(reply.headers["x-should-retry"], "false");

    // The same on /v1/messages, in Anthropic's shape, and not "overloaded" (which Claude Code
    // retries, then shows instead of the message).
    let resp = support::http_client()
        .post(format!("{}/messages", session.base_url))
        .header("x-api-key", &session.key)
        .header("anthropic-version", "2023-06-01")
        .body(r#"{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing credential ($UPSTREAM_KEY is not set)"),
        "{body}"
    );
    session.finish(0);
    assert_eq!(upstream.calls(), 0);
    let rows = env.requests();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "503");
    assert_eq!(
        rows[0]["skipped"],
        "upstream/gpt-4o: missing credential ($UPSTREAM_KEY is not set)"
    );
}

/// A prompt larger than the context window of every target is the client's error: a 400 with
/// OpenAI's `context_length_exceeded`, not a 503 that SDKs would retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_too_large_for_every_model_is_a_400() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "    context_window: 50\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let long = "many words here ".repeat(200);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o", false, &long),
    )
    .await;
    assert_openai_error(&reply, 400, "context_length_exceeded");
    assert_eq!(reply.headers["x-should-retry"], "false");
    let body = reply.json();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "messages");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("context window") && message.contains("upstream/gpt-4o: 50"),
        "{message}"
    );
    // A prompt that fits still goes through.
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    session.finish(0);
    assert_eq!(upstream.calls(), 1);
    let rows = env.requests();
    assert_eq!(rows[0]["status"], "400");
    assert_eq!(rows[0]["error_code"], "context_length_exceeded");
}

/// JSON nested deeper than the parser takes is refused up front as the client's error, on
/// every API, instead of failing later as a 500.
#[tokio::test(flavor = "multi_thread")]
async fn json_nested_too_deep_is_a_400() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let deep = format!("{}1{}", "[".repeat(1500), "]".repeat(1500));
    // Naming the provider makes smartproxy rewrite the model, which parses the body: that
    // parse failed as a 500 `internal_error`.
    let chat = format!(
        r#"{{"model":"upstream/gpt-4o","messages":[{{"role":"user","content":"hi"}}],"metadata":{{"x":{deep}}}}}"#
    );
    let reply = post_chat(&session.base_url, Some(&session.key), chat).await;
    assert_openai_error(&reply, 400, "invalid_request");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("nested"), "{message}");

    let client = support::http_client();
    for (path, body) in [
        (
            "messages",
            format!(
                r#"{{"model":"gpt-4o","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}],"metadata":{{"x":{deep}}}}}"#
            ),
        ),
        (
            "responses",
            format!(r#"{{"model":"gpt-4o","input":"hi","metadata":{{"x":{deep}}}}}"#),
        ),
        // Forwarded untouched before: refused up front like the others now.
        (
            "chat/completions",
            format!(
                r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"hi"}}],"metadata":{{"x":{deep}}}}}"#
            ),
        ),
    ] {
        let resp = client
            .post(format!("{}/{path}", session.base_url))
            .bearer_auth(&session.key)
            .header("x-api-key", &session.key)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("nested"), "{path}: {text}");
    }
    session.finish(0);
    assert_eq!(upstream.calls(), 0);
    let rows = env.requests();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "400"), "{rows:?}");
}

/// A whole reply larger than `limits.max_reply_bytes` is not held in memory: the client gets a
/// 502 saying so (not worth a retry, and not retried), the row records it; a stream of the same
/// size passes, since it is forwarded as it comes.
#[tokio::test(flavor = "multi_thread")]
async fn a_whole_reply_over_the_limit_is_a_502() {
    use support::upstream::{Behavior, MockUpstream};
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "limits:\n  max_reply_bytes: 100000\n");
    let big = serde_json::json!({"id": "x", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "a".repeat(300_000)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}});
    upstream.push([Behavior::Raw {
        content_type: "application/json",
        body: big.to_string(),
    }]);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body =
        serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let reply = support::post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
    session.finish(0);
    assert_eq!(
        reply.status,
        502,
        "{}",
        &reply.body[..reply.body.len().min(300)]
    );
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "upstream_reply_too_large");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_reply_bytes"),
        "{error}"
    );
    assert_eq!(reply.headers["x-should-retry"], "false");
    assert_eq!(upstream.calls(), 1, "not retried");
    let rows = env.requests();
    assert_eq!(rows[0]["error_code"], "upstream_reply_too_large");
    assert_eq!(rows[0]["status"], "502");
}
