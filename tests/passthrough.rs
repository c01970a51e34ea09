//! Pass-through mode (`run --passthrough`, `passthrough: anthropic`): an Anthropic client's own
//! credential (a Claude subscription's OAuth token, or its own API key) goes to the `anthropic`
//! provider unchanged in place of the configured key; subscription rows are recorded with
//! their notional cost and left out of budgets unless `budget.count_subscription` says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::upstream::{MockUpstream, REPLY_WORDS};
use support::{TestEnv, run_to_end, text};

const OAUTH: &str = "sk-ant-oat01-fake";

/// A provider of kind `anthropic` on the mock upstream, keyed by `UPSTREAM_KEY` (which a
/// pass-through request must never carry), and an OpenAI one for `gpt-*`.
fn config(env: &TestEnv, upstream: &MockUpstream, extra: &str) -> std::path::PathBuf {
    env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: claude\n    kind: anthropic\n    base_url: {url}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n  - name: gpt\n    kind: openai\n    base_url: {url}\n    api_key_env: UPSTREAM_KEY\n    models: [\"gpt-*\"]\n{extra}",
            url = upstream.base_url()
        ),
    )
}

/// A Python client that sends each request of `CASES` (name, path, headers, model) to the
/// session's proxy with the stdlib alone, and prints `{name: [status, body]}`.
const CLIENT: &str = r#"
import json, os, sys, urllib.request, urllib.error
base = os.environ["ANTHROPIC_BASE_URL"]
out = {"env_anthropic_key": os.environ.get("ANTHROPIC_API_KEY")}
for name, path, headers, model in json.loads(sys.argv[1]):
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    if path.endswith("completions"):
        headers = {**headers, "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req) as r:
            out[name] = [r.status, json.loads(r.read())]
    except urllib.error.HTTPError as e:
        out[name] = [e.code, json.loads(e.read())]
print(json.dumps(out))
"#;

fn run_client(env: &TestEnv, args: &[&str], cases: &Value) -> Value {
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream-real")
        // Debug logs, so that a credential logged anywhere would show.
        .env("SMARTPROXY_LOG_LEVEL", "debug")
        .arg("run")
        .args(args)
        .args(["--", "python3", "-c", CLIENT, &cases.to_string()]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sk-ant-") && !stderr.contains("sk-upstream-real"),
        "a credential in the logs: {stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

#[test]
fn a_subscription_token_is_forwarded_as_it_came_recorded_and_not_budgeted() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = config(&env, &upstream, "");
    let oauth = serde_json::json!({"authorization": format!("Bearer {OAUTH}"),
        "anthropic-version": "2023-06-01", "anthropic-beta": "oauth-2025-04-20", "x-app": "cli"});
    let cases = serde_json::json!([
        ["oauth", "/v1/messages", oauth, "claude-haiku-4-5"],
        ["count", "/v1/messages/count_tokens", oauth, "claude-haiku-4-5"],
        ["none", "/v1/messages", {"anthropic-version": "2023-06-01"}, "claude-haiku-4-5"],
        ["elsewhere", "/v1/messages", oauth, "gpt-4o"],
        ["openai", "/v1/chat/completions", {}, "gpt-4o"],
    ]);
    // A budget far below one request's estimate: only requests it does not count get through.
    let found = run_client(
        &env,
        &[
            "--config",
            config.to_str().unwrap(),
            "--passthrough",
            "--budget",
            "0.0001",
        ],
        &cases,
    );
    assert_eq!(found["env_anthropic_key"], Value::Null, "{found}");

    // Forwarded to the anthropic provider with the client's bearer and its headers; the
    // configured key stays home.
    assert_eq!(found["oauth"][0], 200, "{found}");
    assert_eq!(
        found["oauth"][1]["content"][0]["text"],
        REPLY_WORDS.concat()
    );
    let sent = upstream.received();
    assert_eq!(
        sent.len(),
        1,
        "only the pass-through request went upstream: {sent:?}"
    );
    let first = &sent[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(
        first.authorization.as_deref(),
        Some("Bearer sk-ant-oat01-fake")
    );
    assert!(
        !first.headers.contains_key("x-api-key"),
        "{:?}",
        first.headers
    );
    assert!(
        !first
            .headers
            .values()
            .any(|v| v.contains("sk-upstream-real")),
        "{:?}",
        first.headers
    );
    assert_eq!(first.headers["anthropic-beta"], "oauth-2025-04-20");
    assert_eq!(first.headers["x-app"], "cli");

    // Token counting takes the client's credential too (answered here, as an estimate).
    assert_eq!(found["count"][0], 200, "{found}");
    assert!(found["count"][1]["input_tokens"].as_u64().unwrap() > 0);

    // No credential at all: 401 in Anthropic's error shape, saying what to do.
    assert_eq!(found["none"][0], 401, "{found}");
    assert_eq!(found["none"][1]["type"], "error");
    assert_eq!(found["none"][1]["error"]["type"], "authentication_error");
    assert!(
        found["none"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude /login"),
        "{found}"
    );

    // A model routed to a non-Anthropic provider: refused, never sent there with the token.
    assert_eq!(found["elsewhere"][0], 400, "{found}");
    assert_eq!(found["elsewhere"][1]["type"], "error");
    let why = found["elsewhere"][1]["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("`gpt` (openai)") && why.contains("kind `anthropic`"),
        "{why}"
    );

    // The session key still works, and the budget still applies to what it sends.
    assert_eq!(found["openai"][0], 429, "{found}");
    assert_eq!(found["openai"][1]["error"]["code"], "budget_exceeded");

    let rows = env.requests();
    let served: Vec<_> = rows.iter().filter(|r| r["status"] == "200").collect();
    assert_eq!(served.len(), 1, "{rows:?}");
    let row = served[0];
    assert_eq!(row["billing"], "subscription", "{row:?}");
    assert_eq!(row["provider"], "claude");
    let cost: f64 = row["cost_usd"].parse().unwrap();
    assert!(cost > 0.0, "the notional list-price cost: {row:?}");
    // Rows are filed by the credential they came with, refused or not.
    for r in &rows {
        let billing = match r["status"].as_str() {
            "200" | "400" => "subscription",
            _ => "api",
        };
        assert_eq!(r["billing"], billing, "{r:?}");
    }
    // The credential is in no row.
    let dump = format!("{rows:?}");
    assert!(!dump.contains(OAUTH) && !dump.contains("sk-upstream-real"));
}

#[test]
fn an_own_api_key_is_forwarded_as_api_billing_and_count_subscription_charges_budgets() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = config(&env, &upstream, "budget:\n  count_subscription: true\n");
    let cases = serde_json::json!([
        ["own_key", "/v1/messages", {"x-api-key": "sk-ant-api03-users-own"}, "claude-haiku-4-5"],
        ["oauth", "/v1/messages", {"authorization": format!("Bearer {OAUTH}")}, "claude-haiku-4-5"],
    ]);
    let found = run_client(
        &env,
        &["--config", config.to_str().unwrap(), "--passthrough"],
        &cases,
    );
    assert_eq!(found["own_key"][0], 200, "{found}");
    let sent = upstream.received();
    assert_eq!(sent[0].headers["x-api-key"], "sk-ant-api03-users-own");
    assert_eq!(sent[0].authorization, None);
    let rows = env.requests();
    assert_eq!(
        rows[0]["billing"], "api",
        "the user's own key is real spend"
    );

    // With count_subscription, a subscription request is held to the budget like any other.
    let found = run_client(
        &env,
        &[
            "--config",
            config.to_str().unwrap(),
            "--passthrough",
            "--budget",
            "0.0001",
        ],
        &serde_json::json!([cases[1]]),
    );
    assert_eq!(found["oauth"][0], 429, "{found}");
    assert_eq!(
        found["oauth"][1]["error"]["type"], "rate_limit_error",
        "{found}"
    );
    assert_eq!(upstream.calls(), 2, "nothing sent for the refused one");
}

#[test]
fn without_passthrough_a_foreign_credential_is_refused() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = config(&env, &upstream, "");
    let cases = serde_json::json!([
        ["oauth", "/v1/messages", {"authorization": format!("Bearer {OAUTH}")}, "claude-haiku-4-5"],
    ]);
    let found = run_client(&env, &["--config", config.to_str().unwrap()], &cases);
    assert_eq!(found["oauth"][0], 401, "{found}");
    assert_eq!(found["oauth"][1]["error"]["type"], "authentication_error");
    assert!(
        found["env_anthropic_key"]
            .as_str()
            .unwrap()
            .starts_with("sk-smartproxy-")
    );
    assert_eq!(upstream.calls(), 0);
}

#[test]
fn passthrough_and_mock_do_not_mix() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--passthrough", "--", "true"]);
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--passthrough"),
        "{}",
        text(&out.stderr)
    );
}

/// The daemon forwards pass-through requests from loopback clients when its config says
/// `passthrough: anthropic`; its own client keys keep working as before.
#[tokio::test]
async fn the_daemon_forwards_a_loopback_clients_credential_when_configured() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = config(&env, &upstream, "passthrough: anthropic\n");
    let daemon = support::daemon::Daemon::start(
        &env,
        &config,
        &[],
        &[
            ("SMARTPROXY_API_KEY", "sk-team-key"),
            ("UPSTREAM_KEY", "sk-upstream-real"),
        ],
    );
    let body = serde_json::json!({"model": "claude-haiku-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]});
    let post = |auth: Option<String>| {
        let mut req = support::http_client()
            .post(format!("{}/v1/messages", daemon.listen))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    let oauth = post(Some(format!("Bearer {OAUTH}"))).await.unwrap();
    assert_eq!(oauth.status(), 200);
    let team = post(Some("Bearer sk-team-key".to_owned())).await.unwrap();
    assert_eq!(team.status(), 200);
    let none = post(None).await.unwrap();
    assert_eq!(none.status(), 401);
    let sent = upstream.received();
    let auths: Vec<Option<&str>> = sent.iter().map(|r| r.authorization.as_deref()).collect();
    assert_eq!(auths, [Some("Bearer sk-ant-oat01-fake"), None]);
    assert_eq!(sent[1].headers["x-api-key"], "sk-upstream-real");
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let billing: Vec<String> = env
        .requests()
        .iter()
        .filter(|r| r["status"] == "200")
        .map(|r| r["billing"].clone())
        .collect();
    assert_eq!(billing, ["subscription", "api"]);
}

/// `run --passthrough` with no config and no key is a working set-up for a subscription user
/// (Anthropic clients bring their own credential): no false "no provider" warning.
#[test]
fn passthrough_without_a_config_or_a_key_does_not_warn_that_nothing_is_configured() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--passthrough", "--summary", "none", "--", "true"]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("no provider is configured"), "{stderr}");
    // Without --passthrough the same set-up serves nothing, and says so.
    let mut cmd = env.command();
    cmd.args(["run", "--summary", "none", "--", "true"]);
    let stderr = text(&run_to_end(cmd).stderr);
    assert!(stderr.contains("no provider is configured"), "{stderr}");
}
