//! Daily and monthly budgets shared through the ledger: two processes racing one daily limit
//! together spend no more than their reservations allow, and refusals name the budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, run_to_end};

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_racing_one_daily_limit_stay_within_it() {
    let upstream = MockUpstream::start();
    upstream.push((0..10).map(|_| Behavior::SlowFirstByte(Duration::from_millis(500))));
    let env = TestEnv::new();
    // Each request reserves ~$0.00103 (gpt-4o, max_tokens 100): three fit under $0.0035.
    let config = env.upstream_config(
        &upstream.base_url(),
        // Refusing, not fitting: this is about reservations racing.
        "budget:\n  daily_usd: 0.0035\n  timezone: utc\n  on_exceed: refuse\n",
    );
    let a = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let b = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let (base, key) = if i % 2 == 0 {
                (&a.base_url, &a.key)
            } else {
                (&b.base_url, &b.key)
            };
            let (base, key, body) = (base.clone(), key.clone(), body.to_string());
            tokio::spawn(async move { post_chat(&base, Some(&key), body).await })
        })
        .collect();
    let mut granted = 0;
    for request in requests {
        let reply = request.await.unwrap();
        match reply.status {
            200 => {
                granted += 1;
                let remaining: f64 = reply.headers["x-smartproxy-budget-remaining"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(remaining < 0.0035);
            }
            429 => {
                let json = reply.json();
                assert_eq!(json["error"]["code"], "budget_exceeded");
                assert!(
                    json["error"]["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("daily budget"),
                    "{}",
                    reply.body
                );
                assert_eq!(reply.headers["x-should-retry"], "false");
            }
            other => panic!("unexpected status {other}: {}", reply.body),
        }
    }
    assert_eq!(
        granted, 3,
        "only what the limit can reserve goes out at once"
    );
    assert_eq!(upstream.calls(), 3);
    a.finish(0);
    b.finish(0);

    let conn = env.ledger();
    let spent: f64 = conn
        .query_row("SELECT TOTAL(cost_usd) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(spent <= 0.0035, "spent {spent}");
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        left, 0,
        "every reservation was settled by its request's row"
    );

    let mut cmd = env.command();
    cmd.args(["budget", "--json", "--config", config.to_str().unwrap()]);
    let shown: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    assert_eq!(shown["daily"]["limit_usd"], 0.0035);
    assert!((shown["daily"]["spent_usd"].as_f64().unwrap() - spent).abs() < 1e-12);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_keys_daily_budget_stops_that_key_only() {
    let env = TestEnv::new();
    // A real (scripted) upstream: the mock provider's simulated costs count toward no shared
    // budget.
    let upstream = support::upstream::MockUpstream::start();
    let config = env.upstream_config(&upstream.base_url(), "");
    let create = |name: &str, budget: Option<&str>| {
        let mut cmd = env.command();
        cmd.args(["keys", "create", "--name", name, "--json"]);
        if let Some(budget) = budget {
            cmd.args(["--budget-daily", budget]);
        }
        let out = run_to_end(cmd);
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        created["key"].as_str().unwrap().to_owned()
    };
    // gpt-4o at $2.50 / $10 per million tokens: a reply (21 prompt + 7 completion tokens)
    // costs about $0.00012, so a second one does not fit in $0.0002.
    let tight = create("tight", Some("0.0002"));
    let free = create("free", None);
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", "k")]);
    let listen = format!("{}/v1", daemon.listen);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post_chat(&listen, Some(&tight), body.to_string())
            .await
            .status,
        200
    );
    // Until its row is committed (within the writer's few-millisecond window) a finished request
    // still counts with its reservation, the estimate; after that with its real cost.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !env.db.exists() || env.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the request's row was never written"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = post_chat(&listen, Some(&tight), body.to_string()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("key daily budget"),
        "{}",
        refused.body
    );
    assert_eq!(
        post_chat(&listen, Some(&free), body.to_string())
            .await
            .status,
        200,
        "other keys are not held back"
    );
}
