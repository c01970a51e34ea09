//! A real client: the official `openai` Python SDK, streaming and not, through
//! `smartproxy run -- python3 ...` against the mock upstream. The SDK comes from the test
//! virtualenv (`support::python`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, run_to_end, text};

#[test]
fn the_openai_python_sdk_works_through_run() {
    let python = support::python::venv_python();
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "  - name: local\n    kind: mock\n    models: [mock]\n",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/openai_sdk_client.py");
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream").args([
        "run",
        "--tag",
        "sdk",
        "--config",
        config.to_str().unwrap(),
        "--",
    ]);
    cmd.arg(python).arg(script);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let answer = REPLY_WORDS.concat();
    assert_eq!(found["whole_content"], answer.as_str());
    assert_eq!(
        found["whole_usage"],
        serde_json::json!([PROMPT_TOKENS, COMPLETION_TOKENS])
    );
    assert_eq!(found["stream_content"], answer.as_str());
    assert_eq!(
        found["stream_usage_seen"], false,
        "no usage chunk the client did not ask for"
    );
    assert_eq!(
        found["stream_usage"],
        serde_json::json!([PROMPT_TOKENS, COMPLETION_TOKENS])
    );
    assert_eq!(
        found["bad_request"],
        serde_json::json!([400, "invalid_request"])
    );
    assert_eq!(
        found["wrong_key"],
        serde_json::json!([401, "invalid_api_key"])
    );
    assert_eq!(found["responses_text"], answer.as_str());
    assert_eq!(found["responses_stream_text"], answer.as_str());
    for usage in ["responses_usage", "responses_stream_usage"] {
        assert_eq!(
            found[usage],
            serde_json::json!([PROMPT_TOKENS, COMPLETION_TOKENS]),
            "{usage}"
        );
    }
    // Translated for the mock, which speaks chat completions only.
    for text in ["translated_text", "translated_stream_text"] {
        assert!(
            found[text].as_str().unwrap().contains("mock provider"),
            "{text}: {found}"
        );
    }
    assert_eq!(
        found["translated_stream_usage"],
        serde_json::json!([true, true])
    );
    assert_eq!(
        found["embeddings"],
        serde_json::json!([2, support::dialects::EMBEDDING_TOKENS])
    );
    assert_eq!(found["real_key_visible"], false);
    assert!(
        found["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(
        upstream.calls(),
        6,
        "six good requests reached the provider"
    );
    assert!(stderr.contains("10 requests (8 ok, 2 failed)"), "{stderr}");
    let rows = env.requests();
    assert!(
        rows.iter()
            .all(|r| r["user_agent"].starts_with("OpenAI/Python")),
        "{rows:?}"
    );
}
