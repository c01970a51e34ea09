//! `route explain` and `request`: the routing decision shown without sending, and one request
//! sent through the configured routing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::upstream::MockUpstream;
use support::{TestEnv, run_to_end, text};

const CONFIG: &str = "providers:
  - name: fast
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: FAST_KEY
    models: [gpt-4o-mini]
  - name: backup
    kind: mock
    models: [gpt-4o-mini]
aliases:
  smart: [fast/gpt-4o-mini, backup/gpt-4o-mini]
routes:
  - name: nightly
    match: {tag: nightly}
    route: {targets: [backup/gpt-4o]}
";

#[test]
fn explain_shows_targets_in_order_and_skip_reasons() {
    let env = TestEnv::new();
    let config = env.write("sp.yaml", CONFIG);
    let request = env.write(
        "req.json",
        r#"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let mut cmd = env.command();
    cmd.args([
        "route",
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--file",
        request.to_str().unwrap(),
    ]);
    let out = run_to_end(cmd);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("`smart` is an alias with 2 instance(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("route: alias:smart"), "{stdout}");
    assert!(
        stdout.contains("  1. backup/gpt-4o-mini  (mock"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - fast/gpt-4o-mini: missing credential ($FAST_KEY is not set)"),
        "{stdout}"
    );

    let mut cmd = env.command();
    cmd.env("FAST_KEY", "k").args([
        "route",
        "explain",
        "--json",
        "--tag",
        "nightly",
        "--config",
        config.to_str().unwrap(),
        "--file",
        request.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    assert_eq!(json["route"], "alias:smart", "aliases come before rules");
    assert_eq!(json["targets"][0]["provider"], "fast");
    assert_eq!(json["targets"][1]["provider"], "backup");

    let other = env.write(
        "other.json",
        r#"{"model":"llama","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let mut cmd = env.command();
    cmd.args([
        "route",
        "explain",
        "--json",
        "--tag",
        "nightly",
        "--config",
        config.to_str().unwrap(),
        "--file",
        other.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    assert_eq!(json["route"], "rule:nightly");
    assert_eq!(json["targets"][0]["model"], "gpt-4o");
}

#[test]
fn request_sends_one_request_and_records_it() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let request = env.write("req.json", &support::chat_body("gpt-4o-mini", false, "hi"));
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "k").args([
        "request",
        "--config",
        config.to_str().unwrap(),
        "--file",
        request.to_str().unwrap(),
    ]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "The answer is forty-two."
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("x-smartproxy-target: upstream/gpt-4o-mini"),
        "{stderr}"
    );
    assert_eq!(upstream.calls(), 1);
    assert_eq!(env.requests().len(), 1);

    let stream = env.write(
        "stream.json",
        &support::chat_body("gpt-4o-mini", true, "hi"),
    );
    let mut cmd = env.command();
    cmd.args(["request", "--mock", "--file", stream.to_str().unwrap()]);
    let out = run_to_end(cmd);
    assert!(
        text(&out.stdout).ends_with("data: [DONE]\n\n"),
        "{}",
        text(&out.stdout)
    );
}
