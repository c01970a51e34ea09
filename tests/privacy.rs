//! Privacy by default: a distinctive prompt, the reply, tool arguments and keys never reach the
//! ledger or the logs, even at the most verbose log level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, text};

const CANARY: &str = "CANARY-7f3a9e-purple-elephant-prompt";
const TOOL_CANARY: &str = "CANARY-tool-argument-b81c";
const KEY: &str = "sk-real-CANARY-key-0042";

#[tokio::test(flavor = "multi_thread")]
async fn no_prompt_reply_or_key_in_the_ledger_or_logs() {
    let upstream = MockUpstream::start();
    upstream.push([
        Behavior::Ok,
        Behavior::Ok,
        Behavior::Status {
            status: 400,
            retry_after: None,
        },
    ]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &[
            "run",
            "--log-level",
            "trace",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", KEY)],
    );
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "user": CANARY,
        "messages": [
            {"role": "user", "content": CANARY},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": format!("{{\"q\":\"{TOOL_CANARY}\"}}")}}]},
            {"role": "tool", "tool_call_id": "c1", "content": CANARY}
        ]
    });
    for stream in [false, true] {
        let mut body = body.clone();
        body["stream"] = stream.into();
        assert_eq!(
            post_chat(&session.base_url, Some(&session.key), body.to_string())
                .await
                .status,
            200
        );
    }
    let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
    assert_eq!(reply.status, 400);
    // Malformed input that contains the canary is refused without echoing it into the ledger.
    post_chat(
        &session.base_url,
        Some(&session.key),
        format!("{{\"{CANARY}\": oops"),
    )
    .await;
    let out = session.finish(0);
    assert_eq!(env.requests().len(), 4);

    let mut haystacks = vec![
        ("stderr".to_owned(), out.stderr.clone()),
        ("stdout".to_owned(), out.stdout.clone()),
    ];
    for entry in std::fs::read_dir(env.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ledger.db") {
            haystacks.push((name, std::fs::read(&path).unwrap()));
        }
    }
    assert!(haystacks.len() >= 3, "the ledger files were checked");
    assert!(text(&out.stderr).contains("request"), "trace logs were on");
    for (name, bytes) in haystacks {
        let content = String::from_utf8_lossy(&bytes);
        for secret in [CANARY, TOOL_CANARY, KEY, "forty-two"] {
            assert!(!content.contains(secret), "{secret} found in {name}");
        }
    }
}
