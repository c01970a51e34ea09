//! SmolRouter's transforms through the proxy: `<think>` blocks stripped and fenced JSON unwrapped
//! in whole and streamed replies, `/no_think` appended to the prompt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::MockUpstream;
use support::{TestEnv, chat_body, post_chat};

#[tokio::test(flavor = "multi_thread")]
async fn think_blocks_are_stripped_from_whole_and_streamed_replies() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"<think>private plan, step by step</think>\\n\\nThe answer is 42.\"\ntransforms:\n  strip_thinking: true\n",
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let whole = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "q"),
    )
    .await;
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        "The answer is 42."
    );
    let streamed = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "q"),
    )
    .await;
    assert_eq!(streamed.streamed_content(), "The answer is 42.");
    assert!(!streamed.body.contains("private"), "{}", streamed.body);
    assert!(streamed.body.ends_with("data: [DONE]\n\n"));
    session.finish(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn smolrouter_variables_turn_transforms_on() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"```json\\n{\\\"ok\\\": true}\\n```\"\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("STRIP_JSON_MARKDOWN", "true")],
    );
    let whole = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "q"),
    )
    .await;
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        "{\"ok\": true}"
    );
    let streamed = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "q"),
    )
    .await;
    assert_eq!(streamed.streamed_content(), "{\"ok\": true}");
    session.finish(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_thinking_appends_no_think_to_the_prompt() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "transforms:\n  disable_thinking: true\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "Hello"),
    )
    .await;
    assert_eq!(reply.status, 200);
    session.finish(0);
    let sent = &upstream.received()[0].body;
    assert_eq!(sent["messages"][1]["content"], "Hello /no_think");
    assert_eq!(
        sent["messages"][0]["content"], "You are terse.",
        "only the last user message"
    );
}
