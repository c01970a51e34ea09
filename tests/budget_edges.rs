//! Budgets that must not silently open: a model with no price under a budget, and a ledger
//! another process holds while a shared budget has to be checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::upstream::MockUpstream;
use support::{TestEnv, post_chat};

fn chat(model: &str) -> String {
    serde_json::json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

/// Under any budget a model with no known price is refused (400, not worth a retry), with a
/// message that names the model and both ways out; the refusal is recorded.
#[tokio::test(flavor = "multi_thread")]
async fn an_unpriced_model_is_refused_while_a_budget_applies() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock", "--budget", "0.001"], &[]);
    for _ in 0..3 {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat("no-such-model-x"),
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let json = reply.json();
        assert_eq!(json["error"]["code"], "model_unpriced");
        assert_eq!(json["error"]["param"], "model");
        let message = json["error"]["message"].as_str().unwrap();
        for needle in ["no-such-model-x", "pricing:", "price_as"] {
            assert!(message.contains(needle), "{message}");
        }
        assert_eq!(reply.headers["x-should-retry"], "false");
    }
    // A priced model still works in the same session.
    let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o-mini")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    session.finish(0);
    let rows = env.requests();
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r["error_code"] == "model_unpriced")
        .collect();
    assert_eq!(refused.len(), 3, "{rows:?}");
    for row in refused {
        assert_eq!(row["outcome"], "budget_exceeded");
        assert_eq!(row["status"], "400");
        assert!(row["budget_action"].contains("no price"), "{row:?}");
    }
}

/// `budget.unpriced: {price_as: M}` charges the model at M's prices, so the budget caps it;
/// `allow` lets it through uncounted; with no budget at all nothing changes (`n/a`).
#[tokio::test(flavor = "multi_thread")]
async fn unpriced_models_can_be_priced_as_another_or_allowed() {
    let env = TestEnv::new();
    let price_as = env.write(
        "price_as.yaml",
        "providers:\n  - name: m\n    kind: mock\nbudget:\n  unpriced: {price_as: gpt-4o}\n",
    );
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0006",
            "--config",
            price_as.to_str().unwrap(),
        ],
        &[],
    );
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat("no-such-model-x"),
        )
        .await;
        statuses.push(reply.status);
    }
    let out = session.finish(0);
    // gpt-4o's prices: about $0.0002 a request, so the budget stops the session early.
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    let rows = env.requests();
    let spent: f64 = rows
        .iter()
        .filter(|r| r["outcome"] == "ok")
        .map(|r| r["cost_usd"].parse::<f64>().unwrap())
        .sum();
    assert!(spent > 0.0 && spent <= 0.0006, "spent {spent}: {rows:?}");
    let stderr = support::text(&out.stderr);
    assert!(!stderr.contains("cost n/a"), "{stderr}");

    let allow = env.write(
        "allow.yaml",
        "providers:\n  - name: m\n    kind: mock\nbudget:\n  unpriced: allow\n",
    );
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0006",
            "--config",
            allow.to_str().unwrap(),
        ],
        &[],
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat("no-such-model-y"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    session.finish(0);

    // No budget: recorded with no cost, as before.
    let session = env.start_run(&["run", "--mock"], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat("no-such-model-z"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    session.finish(0);
    let rows = env.requests();
    for model in ["no-such-model-y", "no-such-model-z"] {
        let row = rows.iter().find(|r| r["requested_model"] == model).unwrap();
        assert_eq!(row["outcome"], "ok");
        assert_eq!(row["cost_usd"], "NULL", "{row:?}");
    }
}

/// A `price_as` model that has no price either is a config error naming the key.
#[test]
fn price_as_an_unpriced_model_is_a_config_error() {
    let env = TestEnv::new();
    let config = env.write(
        "bad.yaml",
        "providers:\n  - name: m\n    kind: mock\nbudget:\n  unpriced: {price_as: also-unknown}\n",
    );
    let out = env
        .command()
        .args(["config", "validate", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = support::text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:5") && stderr.contains("budget.unpriced.price_as"),
        "{stderr}"
    );
}

/// While another process holds the ledger, a request under a daily limit is answered 503
/// `budget_unavailable` (retry later) within the configured wait, never served unchecked; the
/// refusal is recorded once the ledger is free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_ledger_refuses_budgeted_requests_quickly() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "budget:\n  daily_usd: 10\n  check_timeout_ms: 500\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    // A first request creates the ledger's rows and proves the path works.
    let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o-mini")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let holder = env.ledger();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o-mini")).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "budget_unavailable");
    assert_eq!(reply.headers["x-should-retry"], "true");
    assert_eq!(reply.headers["retry-after"], "1");
    assert!(
        waited < Duration::from_secs(5),
        "answered after {waited:?}, the wait is 500 ms"
    );
    assert_eq!(upstream.calls(), 1, "nothing was sent unchecked");
    holder.execute_batch("COMMIT").unwrap();

    let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o-mini")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    session.finish(0);
    let rows = env.requests();
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r["error_code"] == "budget_unavailable")
        .collect();
    assert_eq!(refused.len(), 1, "{rows:?}");
    assert_eq!(refused[0]["status"], "503");
}

/// Mock-provider requests are billed `simulated`: they spend nothing, so a daily limit does
/// not count them and `status` shows them apart from what was spent, while the mock session's
/// own budget still counts them (budgets can be tried offline).
#[tokio::test(flavor = "multi_thread")]
async fn simulated_spend_counts_toward_no_shared_budget() {
    let env = TestEnv::new();
    // Each gpt-4o mock reply is simulated at about $0.0002: ten of them are 20x the daily limit.
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nbudget:\n  daily_usd: 0.0001\n",
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    for _ in 0..10 {
        let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let out = session.finish(0);
    let stderr = support::text(&out.stderr);
    assert!(stderr.contains("simulated"), "{stderr}");
    let rows = env.requests();
    assert!(rows.iter().all(|r| r["billing"] == "simulated"), "{rows:?}");

    let out = env
        .command()
        .args(["status", "--json", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["spent_usd"].as_f64(), Some(0.0), "{status}");
    assert!(
        status["simulated_usd"].as_f64().unwrap() > 0.001,
        "{status}"
    );
    assert_eq!(status["left_usd"].as_f64(), Some(0.0001), "{status}");

    // The session budget of a mock run still holds.
    let session = env.start_run(&["run", "--mock", "--budget", "0.0005"], &[]);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            post_chat(&session.base_url, Some(&session.key), chat("gpt-4o"))
                .await
                .status,
        );
    }
    session.finish(0);
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// The exit summary says what the budgets did: how many requests were refused or fitted, and
/// where the daily limit stands, in the table and in `--summary json`.
#[tokio::test(flavor = "multi_thread")]
async fn the_summary_tells_what_the_budget_refused_and_fitted() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "budget:\n  daily_usd: 5\n");
    let summary_file = env.path().join("summary.json");
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0008",
            "--summary",
            "json",
            "--summary-file",
            summary_file.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    let big = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    // Each reply costs about $0.00012; 100 output tokens would reserve about $0.001: the first
    // requests are fitted, the last refused once not even 32 tokens fit.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let reply = post_chat(&session.base_url, Some(&session.key), big.to_string()).await;
        statuses.push(reply.status);
    }
    session.finish(0);
    assert!(statuses.contains(&429), "{statuses:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    let refused = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(summary["budget_actions"]["refused"], refused, "{summary}");
    assert!(
        summary["budget_actions"]["fitted"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    let daily = &summary["shared_budgets"][0];
    assert_eq!(daily["name"], "daily", "{summary}");
    assert_eq!(daily["limit_usd"].as_f64(), Some(5.0));
    assert!(daily["spent_usd"].as_f64().unwrap() > 0.0, "{summary}");

    // The table says it too.
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0001",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    for _ in 0..2 {
        post_chat(&session.base_url, Some(&session.key), big.to_string()).await;
    }
    let out = session.finish(0);
    let stderr = support::text(&out.stderr);
    assert!(stderr.contains("budget: 2 requests refused"), "{stderr}");
    assert!(stderr.contains("daily budget: $"), "{stderr}");
}

/// Runs requests made by `body` through a session with a $0.20 budget until the budget
/// refuses one, each answered by an upstream that bills every token it may (`prompt_tokens`
/// and the whole fitted `max_tokens`, `usage_extra` on top); returns what the session spent
/// and how many requests were fitted.
async fn spend_to_the_limit(
    model: &str,
    body: &serde_json::Value,
    prompt_tokens: u64,
    usage_extra: serde_json::Value,
) -> (f64, usize) {
    use support::upstream::Behavior;
    let upstream = MockUpstream::start();
    upstream.push((0..12).map(|_| Behavior::SpendsAll {
        prompt_tokens,
        usage_extra: usage_extra.clone(),
    }));
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [{model}]\n",
            upstream.base_url()
        ),
    );
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.20",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    for _ in 0..12 {
        let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
        if reply.status == 429 {
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    session.finish(0);
    let rows = env.requests();
    let spent = rows
        .iter()
        .filter_map(|r| r["cost_usd"].parse::<f64>().ok())
        .sum();
    let fitted = rows
        .iter()
        .filter(|r| r["budget_action"].starts_with("fit:"))
        .count();
    (spent, fitted)
}

/// `budget.on_exceed: fit` lowers the last request's `max_tokens` to what is left: that must
/// hold whatever the request is billed at — a priority service tier, 1-hour prompt-cache
/// writes, a script whose prompt estimate runs low — so the session never ends over its
/// budget. Each upstream here bills the most it may.
#[tokio::test(flavor = "multi_thread")]
async fn fitting_never_overspends_through_the_priority_tier() {
    // The priority tier: about 1.7x gpt-4o's standard prices.
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 4000, "service_tier": "priority",
        "messages": [{"role": "user", "content": "Write a long story."}]});
    let prompt = smartproxy::wire::estimate::json_text_tokens(&body.to_string());
    let (spent, fitted) = spend_to_the_limit("gpt-4o", &body, prompt, serde_json::json!({})).await;
    assert!(
        spent <= 0.20 + 1e-9 && spent > 0.15,
        "priority: spent ${spent}"
    );
    assert!(fitted >= 1, "priority: nothing was fitted");
}

#[tokio::test(flavor = "multi_thread")]
async fn fitting_never_overspends_through_one_hour_cache_writes() {
    // 1-hour cache writes: the whole prompt written at twice the input price.
    let system = "Reference text for the assistant to keep in mind. ".repeat(1000);
    let body = serde_json::json!({"model": "claude-haiku-4-5", "max_tokens": 12000, "messages": [
        {"role": "system", "content": [{"type": "text", "text": system,
            "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        {"role": "user", "content": "Summarise."}]});
    let prompt = smartproxy::wire::estimate::json_text_tokens(&body.to_string());
    let written = serde_json::json!({"cache_creation_input_tokens": prompt,
        "prompt_tokens_details": {"cached_tokens": 0,
            "cache_creation_token_details": {"ephemeral_1h_input_tokens": prompt}}});
    let (spent, fitted) = spend_to_the_limit("claude-haiku-4-5", &body, prompt, written).await;
    assert!(
        spent <= 0.20 + 1e-9 && spent > 0.15,
        "1h cache: spent ${spent}"
    );
    assert!(fitted >= 1, "1h cache: nothing was fitted");
}

#[tokio::test(flavor = "multi_thread")]
async fn fitting_never_overspends_through_a_low_prompt_estimate() {
    // Chinese prose, billed 18% above the fitted estimate.
    let chinese = "\u{4eca}\u{5929}\u{7684}\u{5929}\u{6c14}\u{5f88}\u{597d}\u{3002}".repeat(1000);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 4000,
        "messages": [{"role": "user", "content": chinese}]});
    let estimate = smartproxy::wire::estimate::json_text_tokens(&body.to_string());
    let billed = (estimate as f64 * 1.18).ceil() as u64;
    let (spent, fitted) = spend_to_the_limit("gpt-4o", &body, billed, serde_json::json!({})).await;
    assert!(
        spent <= 0.20 + 1e-9 && spent > 0.15,
        "chinese: spent ${spent}"
    );
    assert!(fitted >= 1, "chinese: nothing was fitted");
}

/// A total that includes requests with no known price says so wherever it is shown (`+` and
/// the count), and simulated mock costs stand apart: `status`, `sessions`, `stats` and the
/// web dashboard, never a silent zero.
#[tokio::test(flavor = "multi_thread")]
async fn unpriced_requests_are_marked_wherever_a_total_is_shown() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o, house-model]\n",
            upstream.base_url()
        ),
    );
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", "k")]);
    let listen = format!("{}/v1", daemon.listen);
    for model in ["gpt-4o", "house-model"] {
        let reply = post_chat(&listen, None, chat(model)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // A mock run beside it: simulated, shown apart.
    let session = env.start_run(&["run", "--mock"], &[]);
    let reply = post_chat(&session.base_url, Some(&session.key), chat("gpt-4o")).await;
    assert_eq!(reply.status, 200);
    session.finish(0);
    // The daemon's rows reach the ledger within its batching window.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.requests().len() < 3 {
        assert!(Instant::now() < deadline, "rows not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let run = |args: &[&str]| {
        let out = env.command().args(args).output().unwrap();
        assert!(out.status.success(), "{}", support::text(&out.stderr));
        support::text(&out.stdout)
    };
    let status = run(&["status"]);
    assert!(status.contains("+ (1 unpriced)"), "{status}");
    assert!(status.contains("simulated"), "{status}");
    let sessions = run(&["sessions"]);
    assert!(sessions.contains('+'), "{sessions}");
    assert!(sessions.contains("simulated"), "{sessions}");
    let stats = run(&["stats", "--today"]);
    assert!(stats.contains("no known price"), "{stats}");

    let page = support::http_client()
        .get(format!("{}/", daemon.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("1 request with no known price not in the cost"),
        "{page}"
    );
    assert!(
        page.contains("simulated (mock provider, not spent)"),
        "{page}"
    );
}
