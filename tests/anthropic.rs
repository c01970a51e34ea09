//! Anthropic both ways: Anthropic clients through `/v1/messages` (translated to OpenAI targets,
//! passed through untouched to Anthropic targets), and OpenAI clients served by an Anthropic
//! provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{RunSession, TestEnv, chat_body, post_chat};

fn messages_body(stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "stream": stream,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Think first."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me see.", "signature": "sig-abc123"},
                {"type": "text", "text": "Done thinking."}
            ]},
            {"role": "user", "content": "What is the answer?"}
        ]
    })
}

async fn post_messages(
    session: &RunSession,
    body: &serde_json::Value,
    extra: &[(&str, &str)],
) -> support::Reply {
    let root = session.env["ANTHROPIC_BASE_URL"].clone();
    let mut req = support::http_client()
        .post(format!("{root}/v1/messages"))
        .header("x-api-key", &session.key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    support::Reply {
        status,
        headers,
        body,
    }
}

fn anthropic_config(env: &TestEnv, upstream: &MockUpstream) -> std::path::PathBuf {
    env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: claude\n    kind: anthropic\n    base_url: http://{}\n    api_key_env: CLAUDE_KEY\n    models: [\"claude-*\"]\nresilience:\n  max_attempts: 1\n",
            upstream.addr
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_clients_reach_openai_targets_through_translation() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "    \naliases:\n  claude-sonnet-4-5: [upstream/gpt-4o]\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );

    let reply = post_messages(
        &session,
        &messages_body(false),
        &[("x-claude-code-session-id", "cc-42")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["type"], "message");
    assert_eq!(json["content"][0]["text"], REPLY_WORDS.concat());
    assert_eq!(json["usage"]["input_tokens"], PROMPT_TOKENS);
    assert_eq!(json["usage"]["output_tokens"], COMPLETION_TOKENS);
    assert_eq!(json["stop_reason"], "end_turn");
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["messages"][0]["role"], "system");

    let reply = post_messages(&session, &messages_body(true), &[]).await;
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    let names: Vec<&str> = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(
        names.contains(&"content_block_delta") && names.contains(&"message_delta"),
        "{names:?}"
    );
    let text: String = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, REPLY_WORDS.concat());
    // Claude Code sizes its context from message_start: it carries the prompt estimate, and
    // message_delta the provider's real count.
    let events: Vec<serde_json::Value> = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let announced = events[0]["message"]["usage"]["input_tokens"]
        .as_u64()
        .unwrap();
    assert!(announced > 0, "message_start: {}", events[0]);
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["usage"]["input_tokens"], PROMPT_TOKENS, "{delta}");

    // A bad request gets Anthropic's error shape.
    let reply = post_messages(
        &session,
        &serde_json::json!({"model": "claude-sonnet-4-5"}),
        &[],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["type"], "error");
    session.finish(0);

    let rows = env.requests();
    assert_eq!(rows[0]["endpoint"], "messages");
    assert_eq!(rows[0]["client_session"], "cc-42");
    assert_eq!(rows[0]["prompt_tokens"], PROMPT_TOKENS.to_string());
    assert_eq!(
        rows[1]["completion_tokens"],
        COMPLETION_TOKENS.to_string(),
        "usage read from the stream"
    );
    assert_eq!(rows[2]["status"], "400");
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_clients_pass_through_untouched_to_anthropic_targets() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = anthropic_config(&env, &upstream);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("CLAUDE_KEY", "sk-ant-real")],
    );
    let body = messages_body(false);
    let reply = post_messages(
        &session,
        &body,
        &[("anthropic-beta", "interleaved-thinking-2025-05-14")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["id"],
        "msg_upstream",
        "the provider's own reply"
    );
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(
        sent.body, body,
        "the body arrives exactly as the client sent it, signature included"
    );
    assert_eq!(
        sent.headers["x-api-key"], "sk-ant-real",
        "the real key, never the session key"
    );
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        sent.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14"
    );

    let reply = post_messages(&session, &messages_body(true), &[]).await;
    assert!(
        reply.body.contains("event: ping"),
        "native events pass through, pings included"
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(
        rows.len(),
        2,
        "one row per request, whole and streamed: {rows:?}"
    );
    for row in &rows {
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string(), "{row:?}");
        assert_eq!(
            row["completion_tokens"],
            COMPLETION_TOKENS.to_string(),
            "{row:?}"
        );
        assert_ne!(row["cost_usd"], "NULL", "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_tools_reach_anthropic_and_are_refused_only_where_chat_cannot_carry_them() {
    let anthropic = MockUpstream::start();
    let openai = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: claude\n    kind: anthropic\n    base_url: http://{}\n    api_key_env: CLAUDE_KEY\n    models: [\"claude-*\"]\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini]\nresilience:\n  max_attempts: 1\n",
            anthropic.addr,
            openai.base_url()
        ),
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("CLAUDE_KEY", "sk-ant-real"), ("UPSTREAM_KEY", "k")],
    );
    let with_web_search = |model: &str| {
        let mut body = messages_body(false);
        body["model"] = model.into();
        body["tools"] = serde_json::json!([
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
            {"name": "ls", "input_schema": {"type": "object"}}
        ]);
        body
    };
    // Anthropic runs its own server tools: the request goes as the client sent it.
    let body = with_web_search("claude-sonnet-4-5");
    let reply = post_messages(&session, &body, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = anthropic.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, body, "untouched, the server tool included");

    // An OpenAI-compatible target cannot run it: refused, in Anthropic's error shape, with
    // the tool at fault named, and nothing sent.
    let reply = post_messages(&session, &with_web_search("gpt-4o-mini"), &[]).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let error = reply.json();
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tools[0]") && message.contains("web_search_20250305"),
        "{message}"
    );
    assert!(
        openai.received().is_empty(),
        "nothing reached the chat target"
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "the refusal is recorded too: {rows:?}");
    assert_eq!(rows[0]["status"], "200", "{rows:?}");
    assert_eq!(rows[1]["status"], "400", "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_clients_are_served_by_an_anthropic_provider() {
    let upstream = MockUpstream::start();
    upstream.push([
        Behavior::Ok,
        Behavior::Ok,
        Behavior::Status {
            status: 529,
            retry_after: None,
        },
    ]);
    let env = TestEnv::new();
    let config = anthropic_config(&env, &upstream);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("CLAUDE_KEY", "sk-ant-real")],
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("claude-sonnet-4-5", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(
        json["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(json["usage"]["prompt_tokens"], PROMPT_TOKENS);
    let sent = &upstream.received()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["system"], "You are terse.");
    assert_eq!(
        sent.body["max_tokens"], 4096,
        "Anthropic needs max_tokens; the default fills in"
    );

    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("claude-sonnet-4-5", true, "hi"),
    )
    .await;
    let content: String = reply.streamed_content();
    assert_eq!(content, REPLY_WORDS.concat());
    assert!(
        !reply.body.contains("\"usage\":{"),
        "no usage chunk the client did not ask for"
    );
    assert!(reply.body.ends_with("data: [DONE]\n\n"));

    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("claude-sonnet-4-5", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 529);
    assert_eq!(
        reply.json()["error"]["code"],
        "overloaded",
        "OpenAI's shape: {}",
        reply.body
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(
        rows[1]["completion_tokens"],
        COMPLETION_TOKENS.to_string(),
        "stream usage counted"
    );
    assert_eq!(rows[1]["tokens_estimated"], "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_cache_reads_and_writes_are_priced_at_their_own_rates() {
    const READ: u64 = 2_000;
    const WRITTEN: u64 = 1_000;
    let upstream = MockUpstream::start();
    let cached = Behavior::PromptCache {
        read: READ,
        written: WRITTEN,
    };
    upstream.push([cached.clone(), cached.clone(), cached.clone(), cached]);
    let env = TestEnv::new();
    let config = anthropic_config(&env, &upstream);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("CLAUDE_KEY", "sk-ant-real")],
    );
    // Native Anthropic clients, whole and streamed.
    for stream in [false, true] {
        let reply = post_messages(&session, &messages_body(stream), &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // OpenAI clients, translated: the cache writes travel in `cache_creation_input_tokens`.
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("claude-sonnet-4-5", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let usage = &reply.json()["usage"];
    assert_eq!(usage["prompt_tokens"], PROMPT_TOKENS + READ + WRITTEN);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], READ);
    assert_eq!(usage["cache_creation_input_tokens"], WRITTEN);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("claude-sonnet-4-5", true, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let summary = String::from_utf8_lossy(&session.finish(0).stderr).into_owned();
    assert!(
        summary.contains("prompt cache: 8,000 tokens read, 4,000 written"),
        "{summary}"
    );

    let price = smartproxy::pricing::builtin("claude-sonnet-4-5")
        .unwrap()
        .price();
    let write_price = price.cache_write_per_mtok.unwrap();
    assert!(
        write_price > price.input_per_mtok,
        "writes cost more than input"
    );
    let want = (PROMPT_TOKENS as f64 * price.input_per_mtok
        + READ as f64 * price.cached_input_per_mtok.unwrap()
        + WRITTEN as f64 * write_price
        + COMPLETION_TOKENS as f64 * price.output_per_mtok)
        / 1e6;
    let rows = env.requests();
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(
            row["prompt_tokens"],
            (PROMPT_TOKENS + READ + WRITTEN).to_string(),
            "{row:?}"
        );
        assert_eq!(row["cached_tokens"], READ.to_string(), "{row:?}");
        assert_eq!(row["cache_write_tokens"], WRITTEN.to_string(), "{row:?}");
        let cost: f64 = row["cost_usd"].parse().unwrap();
        assert!((cost - want).abs() < 1e-12, "{cost} != {want}: {row:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn translated_requests_to_openai_itself_cap_output_with_max_completion_tokens() {
    // OpenAI's own API refuses `max_tokens` for its reasoning models. The mock stands in for it
    // as a forward proxy (HTTP_PROXY), so nothing leaves the machine.
    let proxy = MockUpstream::start();
    let local = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: openai\n    kind: openai\n    base_url: http://api.openai.com/v1\n    api_key_env: OPENAI_KEY\n    models: [o3]\n  - name: local\n    kind: openai\n    base_url: {}\n    models: [qwen3]\n",
            local.base_url()
        ),
    );
    let proxy_url = format!("http://{}", proxy.addr);
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[
            ("OPENAI_KEY", "sk-real"),
            ("HTTP_PROXY", proxy_url.as_str()),
        ],
    );
    for (model, upstream) in [("o3", &proxy), ("qwen3", &local)] {
        let mut body = messages_body(false);
        body["model"] = model.into();
        let reply = post_messages(&session, &body, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let sent = &upstream.received()[0].body;
        if model == "o3" {
            assert_eq!(sent["max_completion_tokens"], 256, "{sent}");
            assert!(sent.get("max_tokens").is_none(), "{sent}");
        } else {
            assert_eq!(
                sent["max_tokens"], 256,
                "other servers keep max_tokens: {sent}"
            );
        }
    }
    // An OpenAI client's own body is passed on with the field it chose.
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        serde_json::json!({"model": "o3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(proxy.received()[1].body["max_tokens"], 5);
    assert!(session.finish(0).status.success());
}
