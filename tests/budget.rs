//! The session budget: reservations before sending, settlement after, refusal once spent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat};

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_refused_once_the_budget_is_spent() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    // gpt-4o at $2.50 / $10 per million: 21 prompt + 7 completion tokens cost $0.0001225.
    // With max_tokens 10 a request reserves about (est. prompt + 10 output tokens) first.
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0003",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
        if reply.status == 429 {
            let json = reply.json();
            assert_eq!(json["error"]["type"], "insufficient_quota");
            assert_eq!(json["error"]["code"], "budget_exceeded");
            assert_eq!(reply.headers["x-should-retry"], "false");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("$0.0003"),
                "{}",
                reply.body
            );
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    assert_eq!(
        upstream.calls(),
        2,
        "refused requests never reach the provider"
    );
    let out = session.finish(0);
    let rows = env.requests();
    assert_eq!(
        rows.iter()
            .filter(|r| r["outcome"] == "budget_exceeded")
            .count(),
        2
    );
    let stderr = support::text(&out.stderr);
    assert!(stderr.contains("4 requests (2 ok, 2 failed)"), "{stderr}");
    assert!(stderr.contains("budget (81.7% used)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_cannot_overspend_beyond_their_reservations() {
    let upstream = MockUpstream::start();
    // Every request is slow, so all of them are in flight at once.
    upstream.push((0..10).map(|_| Behavior::SlowFirstByte(Duration::from_millis(400))));
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    // Each request reserves at most its prompt estimate plus 100 output tokens of gpt-4o
    // (~$0.00103); the budget holds three such reservations.
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.0032",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let base = session.base_url.clone();
            let key = session.key.clone();
            let body = body.to_string();
            tokio::spawn(async move { post_chat(&base, Some(&key), body).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 7);
    assert_eq!(upstream.calls(), 3);
    session.finish(0);
}

fn header(reply: &support::Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `budget.on_exceed: fit`, the default: a request whose full `max_tokens` would not fit gets
/// its cap lowered to what is left, so a session spends its budget instead of being refused
/// with most of it unused; only when not even a short answer fits is it refused.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_do_not_fit_are_fitted_to_what_is_left() {
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "providers:\n  - name: m\n    kind: mock\n");
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.01",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    // gpt-4o at $2.50 / $10 per million tokens: max_tokens 4096 alone would reserve $0.041,
    // four times the budget; the mock's reply (~25 tokens) costs about $0.0003.
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}]});
    let mut statuses = Vec::new();
    let mut warned = 0;
    for _ in 0..60 {
        let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.json()["error"]["code"], "budget_exceeded");
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        let action = header(&reply, "x-smartproxy-budget-action").unwrap();
        let cap: u64 = action
            .strip_prefix("fit: max_tokens 4096 -> ")
            .unwrap_or_else(|| panic!("{action}"))
            .parse()
            .unwrap();
        assert!((32..4096).contains(&cap), "{action}");
        if let Some(warning) = header(&reply, "x-smartproxy-budget-warning") {
            assert!(warning.starts_with("session budget"), "{warning}");
            warned += 1;
        }
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        served >= 30,
        "the budget is spent, not refused early: {statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&429),
        "refused once not even a short answer fits"
    );
    assert!(warned >= 1, "responses warn past 80% of the budget");
    let out = session.finish(0);
    let stderr = support::text(&out.stderr);
    assert_eq!(
        stderr.matches("session budget").count(),
        1,
        "stderr warns once: {stderr}"
    );

    let rows = env.requests();
    let spent: f64 = rows
        .iter()
        .filter_map(|r| r["cost_usd"].parse::<f64>().ok())
        .sum();
    assert!(spent <= 0.01 && spent > 0.008, "spent {spent}");
    for row in &rows[..served] {
        assert!(
            row["budget_action"].starts_with("fit: max_tokens 4096 -> "),
            "{row:?}"
        );
    }
    assert_eq!(rows[served]["budget_action"], "refused: session budget");
}

/// `budget.on_exceed: downgrade`: what does not fit goes to `budget.downgrade_to`, recorded.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_do_not_fit_can_be_downgraded() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nbudget:\n  on_exceed: downgrade\n  downgrade_to: gpt-4o-mini\n",
    );
    let session = env.start_run(
        &[
            "run",
            "--budget",
            "0.01",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}]});
    let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        header(&reply, "x-smartproxy-budget-action").as_deref(),
        Some("downgrade: gpt-4o -> gpt-4o-mini")
    );
    assert_eq!(reply.json()["model"], "gpt-4o-mini");
    // A request that fits as it is stays on its model.
    let small = serde_json::json!({"model": "gpt-4o", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let reply = post_chat(&session.base_url, Some(&session.key), small.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(header(&reply, "x-smartproxy-budget-action"), None);
    session.finish(0);

    let rows = env.requests();
    assert_eq!(rows[0]["requested_model"], "gpt-4o");
    assert_eq!(rows[0]["served_model"], "gpt-4o-mini");
    assert_eq!(rows[0]["budget_action"], "downgrade: gpt-4o -> gpt-4o-mini");
    assert_eq!(rows[1]["served_model"], "gpt-4o");
    assert_eq!(rows[1]["budget_action"], "NULL");
}
