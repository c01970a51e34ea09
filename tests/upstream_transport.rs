//! The two ways a request reaches an OpenAI-compatible upstream: plain HTTP goes straight to it
//! (hyper-util), and with `HTTP_PROXY` set it goes through that proxy (reqwest), except to
//! loopback. Both send the same headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream, Received};
use support::{Reply, RunSession, TestEnv, chat_body, post_chat};

/// One small chat request through the session's proxy.
async fn ask(session: &RunSession) -> Reply {
    post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hello"),
    )
    .await
}

/// The headers every upstream request carries, whichever way it went.
fn assert_provider_headers(received: &Received, reply: &Reply) {
    assert_eq!(received.path, "/v1/chat/completions");
    assert_eq!(received.authorization.as_deref(), Some("Bearer k"));
    let header = |name: &str| received.headers.get(name).map(String::as_str);
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("accept"), Some("application/json"));
    assert!(
        header("user-agent").is_some_and(|ua| ua.starts_with("smartproxy/")),
        "{:?}",
        received.headers
    );
    let id = reply.headers["x-smartproxy-request-id"].to_str().unwrap();
    assert_eq!(header("x-request-id"), Some(id));
    assert_eq!(received.body["model"], "gpt-4o-mini");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_upstreams_are_reached_directly() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let reply = ask(&session).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_provider_headers(&received[0], &reply);
    assert_eq!(
        received[0].headers.get("host").map(String::as_str),
        Some(upstream.addr.to_string().as_str())
    );
    assert!(session.finish(0).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_from_the_environment_is_honoured() {
    // The mock plays the forward proxy: the provider's own host does not even resolve, so a 200
    // proves the request went through HTTP_PROXY.
    let proxy = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config("http://llm.invalid/v1", "");
    let proxy_url = format!("http://{}", proxy.addr);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("HTTP_PROXY", proxy_url.as_str())],
    );
    let reply = ask(&session).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let received = proxy.received();
    assert_eq!(received.len(), 1);
    assert_provider_headers(&received[0], &reply);
    assert_eq!(
        received[0].headers.get("host").map(String::as_str),
        Some("llm.invalid")
    );
    // reqwest carries this path; it reports redirects too instead of following them.
    proxy.push([Behavior::Redirect {
        status: 307,
        location: "http://elsewhere.invalid/v1/chat/completions",
    }]);
    let reply = ask(&session).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "upstream_redirect");
    assert_eq!(proxy.calls(), 2);
    assert!(session.finish(0).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_upstreams_never_go_through_a_proxy() {
    // A corporate proxy cannot reach this machine's Ollama; this one is not even listening.
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[
            ("UPSTREAM_KEY", "k"),
            ("HTTP_PROXY", "http://127.0.0.1:9"),
            ("ALL_PROXY", "http://127.0.0.1:9"),
        ],
    );
    let reply = ask(&session).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_provider_headers(&upstream.received()[0], &reply);
    assert!(session.finish(0).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_reported_not_followed_with_the_key() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Redirect {
        status: 308,
        location: "https://llm.example.com/v1/chat/completions",
    }]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let reply = ask(&session).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "upstream_redirect");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("https://llm.example.com/v1/chat/completions")
            && message.contains("base_url"),
        "{message}"
    );
    assert_eq!(upstream.calls(), 1, "neither followed nor retried");
    assert!(session.finish(0).status.success());
    let rows = env.requests();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["error_code"], "upstream_redirect", "{:?}", rows[0]);
}
