//! Privacy by default: a distinctive prompt, the reply, tool arguments and keys never reach the
//! ledger or the logs, even at the most verbose log level. With capture off the prompt is in no
//! file at all; with capture on it is in the capture store only; the provider key is never on
//! disk either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, text};

const CANARY: &str = "CANARY-7f3a9e-purple-elephant-prompt";
const TOOL_CANARY: &str = "CANARY-tool-argument-b81c";
const KEY: &str = "sk-real-CANARY-key-0042";

#[tokio::test(flavor = "multi_thread")]
async fn no_prompt_reply_or_key_in_the_ledger_or_logs() {
    canary(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_capture_on_the_prompt_is_in_the_capture_store_only() {
    canary(true).await;
}

/// Every file under `dir`, recursively: (path, bytes).
fn all_files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn canary(capture: bool) {
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
    let mut args = vec![
        "run",
        "--log-level",
        "trace",
        "--config",
        config.to_str().unwrap(),
    ];
    if capture {
        args.push("--capture");
    }
    let session = env.start_run(&args, &[("UPSTREAM_KEY", KEY)]);
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

    // Every file the session left under the test's HOME and data dir.
    let captures = env.path().join("captures");
    let mut captured_canary = false;
    for (path, bytes) in all_files(env.path()) {
        assert!(
            !holds(&bytes, KEY),
            "the provider key is on disk in {path:?}"
        );
        for secret in [CANARY, TOOL_CANARY] {
            if holds(&bytes, secret) {
                assert!(
                    capture && path.starts_with(&captures),
                    "{secret} on disk in {path:?} (capture {capture})"
                );
                captured_canary = true;
            }
        }
    }
    assert_eq!(
        captured_canary, capture,
        "the prompt is captured exactly when capture is on"
    );
    assert_eq!(captures.exists(), capture);
}
