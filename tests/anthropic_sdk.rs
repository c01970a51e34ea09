//! A real Anthropic client: the official `anthropic` Python SDK, whole and streamed, through
//! `smartproxy run -- python3 ...`, once translated to an OpenAI-compatible target and once
//! passed through to an Anthropic one. The SDK comes from the test virtualenv (`support::python`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, run_to_end, text};

fn run_client(env: &TestEnv, config: &std::path::Path, key: (&str, &str)) -> serde_json::Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/anthropic_sdk_client.py"
    );
    let python = support::python::venv_python();
    let mut cmd = env.command();
    cmd.env(key.0, key.1)
        .args(["run", "--config", config.to_str().unwrap(), "--"])
        .arg(python)
        .arg(script);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("4 requests (2 ok, 2 failed)"),
        "{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn check(found: &serde_json::Value) {
    let answer = REPLY_WORDS.concat();
    assert_eq!(found["whole_text"], answer.as_str(), "{found}");
    assert_eq!(
        found["whole_usage"],
        serde_json::json!([PROMPT_TOKENS, COMPLETION_TOKENS])
    );
    assert_eq!(found["stop_reason"], "end_turn");
    assert_eq!(found["stream_text"], answer.as_str());
    assert_eq!(found["stream_usage"][1], COMPLETION_TOKENS);
    assert_eq!(found["bad_request"], 400);
    assert_eq!(found["wrong_key"], 401);
    assert!(
        found["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}

#[test]
fn the_anthropic_sdk_works_through_run_with_an_openai_target() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "aliases:\n  claude-sonnet-4-5: [upstream/gpt-4o]\n",
    );
    check(&run_client(&env, &config, ("UPSTREAM_KEY", "k")));
    assert!(
        upstream
            .received()
            .iter()
            .all(|r| r.path == "/v1/chat/completions")
    );
}

#[test]
fn the_anthropic_sdk_works_through_run_with_an_anthropic_target() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: claude\n    kind: anthropic\n    base_url: http://{}\n    api_key_env: CLAUDE_KEY\n    models: [\"claude-*\"]\n",
            upstream.addr
        ),
    );
    check(&run_client(&env, &config, ("CLAUDE_KEY", "sk-ant-real")));
    let received = upstream.received();
    assert_eq!(
        received.len(),
        2,
        "the bad request and the wrong key never reach the provider"
    );
    for r in &received {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.headers["x-api-key"], "sk-ant-real");
    }
}

/// Issue 17 item 7: a stream the provider cuts short (a clean end without its stop) makes the
/// SDK raise, whether smartproxy translated it from an OpenAI provider or passed an Anthropic
/// provider's through; it never ends in an invented `end_turn`.
#[test]
fn the_anthropic_sdk_raises_on_a_stream_cut_short() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let base = upstream.base_url();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: oa\n    kind: openai\n    base_url: {base}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o]\n  - name: claude\n    kind: anthropic\n    base_url: http://{}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-opus-*\"]\naliases:\n  claude-sonnet-4-5: [oa/gpt-4o]\n",
            upstream.addr
        ),
    );
    let chunk = |delta: &str| {
        format!(
            "data: {}\n\n",
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}]})
        )
    };
    let anthropic_cut = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-1\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Half an\"}}\n\n",
    );
    upstream.push([
        Behavior::Raw {
            content_type: "text/event-stream",
            body: chunk("Half ") + &chunk("an"),
        },
        Behavior::Raw {
            content_type: "text/event-stream",
            body: anthropic_cut.to_owned(),
        },
    ]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/anthropic_sdk_truncated.py"
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "k")
        .args(["run", "--config", config.to_str().unwrap(), "--"])
        .arg(support::python::venv_python())
        .args([script, "claude-sonnet-4-5", "claude-opus-4-1"]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    for (case, found) in ["translated", "passed through"]
        .iter()
        .zip(found.as_array().unwrap())
    {
        assert!(found["raised"].is_string(), "{case}: {found}");
        assert!(found.get("stop_reason").is_none(), "{case}: {found}");
    }
    let paths: Vec<String> = upstream.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/v1/chat/completions", "/v1/messages"],
        "one stream from each kind of target"
    );
}
