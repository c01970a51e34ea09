//! The real Claude Code meeting a smartproxy that cannot serve it (no key at all, a key
//! variable that is not set, a provider nothing answers at): configuration errors are not
//! transient, so smartproxy says `x-should-retry: false` in Anthropic's error shape and Claude
//! Code stops at once with smartproxy's message instead of retrying for minutes. Skipped with
//! its reason where npm is missing, except under CI, where that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use std::time::Duration;

use support::{TestEnv, run_group_to_end, skip_or_fail, text};

/// Claude Code retries a retryable error for 30 s to minutes; a final one ends it in about a
/// second (its own start-up included).
const BOUND: Duration = Duration::from_secs(5);

/// `smartproxy run <run_args> -- claude -p "say hi"`, waited for at most `BOUND` (then the
/// whole process group is killed and the test fails).
fn claude_under_run(
    env: &TestEnv,
    claude: &std::path::Path,
    run_args: &[&str],
    envs: &[(&str, &str)],
) -> Output {
    let mut cmd = env.command();
    cmd.env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .envs(envs.iter().copied())
        .arg("run")
        .args(run_args)
        .args(["--summary", "none", "--"])
        .arg(claude)
        .args(["-p", "say hi"]);
    run_group_to_end(cmd, BOUND)
}

/// Claude Code failed, and what it shows the user (`claude -p` prints its API errors on
/// stdout; smartproxy's own lines are on stderr) is smartproxy's explanation.
fn assert_stopped_with(out: &Output, message: &str) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(message),
        "Claude Code should show smartproxy's `{message}`:\nstdout: {stdout}\nstderr: {stderr}"
    );
}

#[test]
fn claude_code_stops_at_once_when_no_provider_is_configured() {
    let claude = match support::npm::client("claude") {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    // The first run: no config file, no key of any provider.
    let env = TestEnv::new();
    let out = claude_under_run(&env, &claude, &[], &[]);
    assert_stopped_with(&out, "no provider is configured");
    // One clear line on stderr, before the command starts, says so and how to fix it.
    let stderr = text(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("warning: no provider is configured")
            && first.contains("OPENAI_API_KEY")
            && first.contains("--mock")
            && first.contains("--passthrough"),
        "{stderr}"
    );
    // Claude Code asked once: no retries.
    let rows = env.requests();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "503", "{rows:?}");
    assert_eq!(rows[0]["error_code"], "no_provider", "{rows:?}");

    // A subscription user who forgot `--passthrough` (logged in, no API key): told the way out.
    let env = TestEnv::new();
    let out = claude_under_run(
        &env,
        &claude,
        &[],
        &[("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-fake-test-token")],
    );
    assert_stopped_with(&out, "smartproxy run --passthrough -- claude");
}

#[test]
fn claude_code_stops_at_once_on_a_missing_key_or_an_unreachable_provider() {
    let claude = match support::npm::client("claude") {
        Ok(path) => path,
        Err(reason) => return skip_or_fail(&reason),
    };
    let env = TestEnv::new();
    // The key variable the config names is not set.
    let config = env.write(
        "unset.yaml",
        "providers:\n  - name: claude\n    kind: anthropic\n    api_key_env: NOT_SET_KEY\n    models: [\"claude-*\"]\n",
    );
    let out = claude_under_run(&env, &claude, &["--config", config.to_str().unwrap()], &[]);
    assert_stopped_with(&out, "missing credential ($NOT_SET_KEY is not set)");

    // Nothing listens where the provider should be (a port just closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.write(
        "closed.yaml",
        &format!(
            "providers:\n  - name: local\n    kind: openai\n    base_url: http://127.0.0.1:{port}/v1\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n"
        ),
    );
    let out = claude_under_run(
        &env,
        &claude,
        &["--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "sk-upstream")],
    );
    assert_stopped_with(&out, "cannot connect to local");
}
