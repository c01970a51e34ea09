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
