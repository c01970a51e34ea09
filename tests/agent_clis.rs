//! Real clients from the npm registry, unmodified, through `smartproxy run` against a scripted
//! upstream: the official Claude Code (`claude -p`), Codex CLI (`codex exec`, which speaks only
//! the Responses API) and the official `openai` Node SDK, at the
//! versions pinned in `testdata/npm-clients/package.json`. Skipped with its reason where npm is missing, except
//! under CI, where that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::{Behavior, MockUpstream, REPLY_WORDS};
use support::{TestEnv, run_group_to_end, run_to_end, skip_or_fail, text};

#[test]
fn claude_code_runs_through_run_on_an_openai_compatible_provider() {
    let claude = match support::npm::client("claude") {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n",
            upstream.base_url()
        ),
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream-real")
        // Claude Code's own update checks and telemetry would go to the internet.
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--summary",
            "json",
            "--",
        ])
        .arg(&claude)
        .args(["-p", "Say hi to the proxy"]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "claude failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&REPLY_WORDS.concat()), "{stdout}\n{stderr}");

    // The conversation reached the provider translated to Chat Completions, with the real key.
    let sent = upstream.received();
    assert!(!sent.is_empty());
    let first = &sent[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer sk-upstream-real")
    );
    assert!(
        first.body["messages"]
            .to_string()
            .contains("Say hi to the proxy"),
        "{}",
        first.body
    );

    // Every request Claude Code made is a successful ledger row; nothing refused or lost.
    let rows = env.requests();
    assert_eq!(rows.len(), sent.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["endpoint"], "messages", "{row:?}");
        assert!(row["user_agent"].starts_with("claude-cli/"), "{row:?}");
        assert_ne!(row["prompt_tokens"], "0", "{row:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(stderr.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["requests"], rows.len(), "{summary}");
}

#[test]
fn the_openai_node_sdk_works_through_run() {
    let node_modules = match support::npm::node_modules() {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/openai_node_client.cjs"
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream")
        .env("NODE_PATH", &node_modules)
        .args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--",
            "node",
            script,
        ]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let answer = REPLY_WORDS.concat();
    assert_eq!(found["whole"], answer.as_str());
    assert_eq!(found["stream"], answer.as_str());
    assert_eq!(found["responses"], answer.as_str());
    let usage = serde_json::json!([
        support::upstream::PROMPT_TOKENS,
        support::upstream::COMPLETION_TOKENS
    ]);
    assert_eq!(found["whole_usage"], usage);
    assert_eq!(found["stream_usage"], usage);
    assert_eq!(found["embeddings"], 2);
    assert_eq!(
        found["wrong_key"],
        serde_json::json!([401, "invalid_api_key"])
    );
    assert!(
        found["base_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let rows = env.requests();
    assert_eq!(rows.len(), 5, "{rows:?}");
    let endpoints: Vec<&str> = rows.iter().map(|r| r["endpoint"].as_str()).collect();
    assert_eq!(
        endpoints,
        [
            "chat.completions",
            "chat.completions",
            "responses",
            "embeddings",
            "chat.completions"
        ]
    );
}

/// What a `codex exec` run left: its stdout, the upstream's requests, the ledger rows.
type CodexRun = (
    String,
    Vec<support::upstream::Received>,
    Vec<std::collections::HashMap<String, String>>,
);

/// `codex exec "..."` under `smartproxy run --preset codex` (the preset points Codex at the
/// session); `responses_api`: whether the provider gets the Responses API untouched or
/// translated to chat completions. Returns Codex's stdout, what the upstream received, and the
/// ledger rows.
fn codex_exec(responses_api: bool) -> Option<CodexRun> {
    codex_exec_with(
        responses_api,
        &["--preset", "codex"],
        &["--model", "gpt-4o-mini"],
        [],
    )
}

/// `codex exec` as `codex_exec`, with `run_args` for `run`, `codex_args` for Codex, and the
/// upstream's first replies scripted.
fn codex_exec_with(
    responses_api: bool,
    run_args: &[&str],
    codex_args: &[&str],
    script: impl IntoIterator<Item = Behavior>,
) -> Option<CodexRun> {
    let codex = match support::npm::client("codex") {
        Ok(path) => path,
        Err(reason) => {
            skip_or_fail(&reason);
            return None;
        }
    };
    let upstream = MockUpstream::start();
    upstream.push(script);
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [\"gpt-*\"]\n    responses_api: {responses_api}\n",
            upstream.base_url()
        ),
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream-real")
        // A key of the user's own must not reach Codex: it gets the session key.
        .env("OPENAI_API_KEY", "sk-user-real-key")
        .args(["run", "--config", config.to_str().unwrap()])
        .args(run_args)
        .arg("--")
        .arg(&codex)
        .args(["exec", "--skip-git-repo-check"])
        .args(codex_args)
        .arg("Say hi to the proxy");
    // Killed with smartproxy if it hangs (Codex reconnects for minutes when it cannot reach
    // the session).
    let out = run_group_to_end(cmd, std::time::Duration::from_secs(60));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "codex failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&REPLY_WORDS.concat()), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("[codex]"),
        "the preset tags the session: {stderr}"
    );
    Some((stdout, upstream.received(), env.requests()))
}

#[test]
fn codex_runs_through_run_on_the_responses_api() {
    let Some((_, sent, rows)) = codex_exec(true) else {
        return;
    };
    assert!(!sent.is_empty());
    for request in &sent {
        assert_eq!(request.path, "/v1/responses", "passed through untouched");
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sk-upstream-real")
        );
        assert_eq!(request.body["stream"], true);
    }
    assert!(
        sent[0].body["input"]
            .to_string()
            .contains("Say hi to the proxy")
    );
    assert_eq!(rows.len(), sent.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["endpoint"], "responses", "{row:?}");
        assert_eq!(
            row["prompt_tokens"],
            support::upstream::PROMPT_TOKENS.to_string(),
            "{row:?}"
        );
        // A missing cost reads "NULL": the model's price must have been found and applied.
        let cost: f64 = row["cost_usd"]
            .parse()
            .unwrap_or_else(|_| panic!("no cost: {row:?}"));
        assert!(cost > 0.0, "{row:?}");
    }
}

#[test]
fn codex_runs_through_run_on_a_chat_completions_provider() {
    let Some((_, sent, rows)) = codex_exec(false) else {
        return;
    };
    assert!(!sent.is_empty());
    let first = &sent[0];
    assert_eq!(first.path, "/v1/chat/completions", "translated");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer sk-upstream-real")
    );
    // Codex's developer instructions and the prompt, as chat messages; its function tools.
    let messages = first.body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        first.body["messages"]
            .to_string()
            .contains("Say hi to the proxy")
    );
    let tools = first.body["tools"].as_array().unwrap();
    assert!(
        tools
            .iter()
            .any(|t| t["function"]["name"] == "exec_command"),
        "{tools:?}"
    );
    assert_eq!(rows.len(), sent.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["endpoint"], "responses", "{row:?}");
        assert_eq!(row["tokens_estimated"], "0", "{row:?}");
    }
}

/// Codex's default model (no `--model`) gets its tools as an `additional_tools` input item,
/// which reaches a chat completions provider as functions; a call of its freeform `exec` tool
/// goes back to Codex as the custom tool call it declared, which Codex runs and answers; and
/// `run -- codex` without `--preset codex` applies the preset by itself (without it Codex
/// ignores the session's URL).
#[test]
fn codex_with_its_default_model_and_no_preset_runs_on_a_chat_completions_provider() {
    let exec = Behavior::ToolCall {
        name: "exec",
        arguments: r#"{"input":"text('hello from exec')"}"#,
    };
    let Some((_, sent, rows)) = codex_exec_with(false, &[], &[], [exec]) else {
        return;
    };
    assert_eq!(sent.len(), 2, "the call, then its output and the answer");
    // Codex ran the call and sent its output back, under the call's id.
    let answer = &sent[1].body["messages"];
    let output = answer
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(output["tool_call_id"], "call_upstream_1", "{answer}");
    assert!(
        output["content"]
            .as_str()
            .is_some_and(|c| c.contains("hello from exec")),
        "{output}"
    );
    let first = &sent[0];
    assert_eq!(first.path, "/v1/chat/completions", "translated");
    assert_ne!(first.body["model"], "gpt-4o-mini");
    let tools = first.body["tools"].as_array().expect("tools");
    // `exec` is a freeform tool inside the `functions` namespace of `additional_tools`.
    let exec = tools
        .iter()
        .find(|t| t["function"]["name"] == "exec")
        .unwrap_or_else(|| panic!("{tools:?}"));
    assert_eq!(
        exec["function"]["parameters"]["required"],
        serde_json::json!(["input"])
    );
    assert!(
        first.body["messages"]
            .to_string()
            .contains("Say hi to the proxy")
    );
    assert_eq!(rows.len(), sent.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["endpoint"], "responses", "{row:?}");
    }
}

/// `run --mock -- codex exec` with Codex's default model: served offline by the mock provider.
#[test]
fn codex_with_its_default_model_runs_under_mock() {
    let codex = match support::npm::client("codex") {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--"]).arg(&codex).args([
        "exec",
        "--skip-git-repo-check",
        "Say hi to the proxy",
    ]);
    let out = run_group_to_end(cmd, std::time::Duration::from_secs(60));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "codex failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("smartproxy mock provider"),
        "{stdout}\n{stderr}"
    );
    let rows = env.requests();
    assert!(!rows.is_empty());
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["provider"], "mock", "{row:?}");
    }
}

/// Claude Code logged in with a subscription (its OAuth token, here a fake one the upstream
/// checks) keeps its login under `run --passthrough`: its requests reach the `anthropic`
/// provider with that bearer and Anthropic's OAuth beta header, never the configured key.
#[test]
fn claude_code_with_a_subscription_runs_through_run_passthrough() {
    let claude = match support::npm::client("claude") {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    const TOKEN: &str = "sk-ant-oat01-fake-test-token";
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: claude\n    kind: anthropic\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n",
            upstream.base_url()
        ),
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream-real")
        .env("CLAUDE_CODE_OAUTH_TOKEN", TOKEN)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .args([
            "run",
            "--passthrough",
            "--config",
            config.to_str().unwrap(),
            "--summary",
            "json",
            "--",
        ])
        .arg(&claude)
        .args(["-p", "say hi"]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "claude failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&REPLY_WORDS.concat()), "{stdout}\n{stderr}");

    let sent = upstream.received();
    assert!(!sent.is_empty());
    for request in &sent {
        assert_eq!(request.path, "/v1/messages", "{request:?}");
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert!(!request.headers.contains_key("x-api-key"), "{request:?}");
        assert!(
            request.headers["anthropic-beta"].contains("oauth-2025-04-20"),
            "{request:?}"
        );
    }
    let rows = env.requests();
    assert_eq!(rows.len(), sent.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["billing"], "subscription", "{row:?}");
        assert_ne!(row["cost_usd"], "NULL", "the notional cost: {row:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(stderr.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["requests"], rows.len(), "{summary}");
    assert_eq!(
        summary["subscription_usd"], summary["cost_usd"],
        "{summary}"
    );
}
