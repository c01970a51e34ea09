//! Retries, `Retry-After`, failover and circuit breakers against misbehaving mock upstreams, with
//! the headers and ledger rows that tell the story.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::upstream::{Behavior, MockUpstream};
use support::{RunSession, TestEnv, chat_body, post_chat};

/// Two providers, `a` then `b`, both serving gpt-4o-mini.
fn start_pair(env: &TestEnv, a: &MockUpstream, b: &MockUpstream, resilience: &str) -> RunSession {
    start_pair_with(env, a, b, resilience, &[])
}

/// `start_pair`, with `envs` for the run.
fn start_pair_with(
    env: &TestEnv,
    a: &MockUpstream,
    b: &MockUpstream,
    resilience: &str,
    envs: &[(&str, &str)],
) -> RunSession {
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: a\n    kind: openai\n    base_url: {}\n    models: [gpt-4o-mini]\n    timeouts: {{first_byte_ms: 400}}\n  - name: b\n    kind: openai\n    base_url: {}\n    models: [gpt-4o-mini]\nresilience:\n{resilience}",
            a.base_url(),
            b.base_url()
        ),
    );
    env.start_run(&["run", "--config", config.to_str().unwrap()], envs)
}

fn attempts(env: &TestEnv) -> Vec<(String, String, String, f64)> {
    let conn = env.ledger();
    let mut stmt = conn
        .prepare("SELECT provider, COALESCE(status, 0), COALESCE(error_class, ''), waited_ms FROM attempts ORDER BY request_id, n")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get::<_, i64>(1)?.to_string(),
            r.get(2)?,
            r.get(3)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_errors_are_retried_on_the_same_target() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push([Behavior::Status {
        status: 503,
        retry_after: None,
    }]);
    let env = TestEnv::new();
    let session = start_pair(&env, &a, &b, "  backoff_ms: 20\n");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-smartproxy-attempts"], "2");
    assert_eq!(reply.headers["x-smartproxy-target"], "a/gpt-4o-mini");
    assert_eq!(reply.headers["x-smartproxy-failover"], "false");
    assert!(reply.headers.contains_key("x-smartproxy-overhead-ms"));
    assert_eq!((a.calls(), b.calls()), (2, 0));
    session.finish(0);
    let rows = attempts(&env);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        ("503", "upstream_503")
    );
    assert_eq!((rows[1].1.as_str(), rows[1].2.as_str()), ("200", ""));
    assert!(rows[1].3 >= 10.0, "the backoff is recorded: {rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_and_a_long_one_fails_over() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push([
        Behavior::Status {
            status: 429,
            retry_after: Some(1),
        },
        Behavior::Ok,
        Behavior::Status {
            status: 429,
            retry_after: Some(120),
        },
    ]);
    let env = TestEnv::new();
    let session = start_pair(
        &env,
        &a,
        &b,
        "  backoff_ms: 10\n  retry_after_cap_ms: 5000\n",
    );
    let started = Instant::now();
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        took >= Duration::from_millis(950),
        "waited for Retry-After: {took:?}"
    );
    assert_eq!((a.calls(), b.calls()), (2, 0));

    let started = Instant::now();
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait two minutes"
    );
    assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    assert_eq!(reply.headers["x-smartproxy-failover"], "true");
    assert_eq!((a.calls(), b.calls()), (3, 1));
    session.finish(0);
    let waited: Vec<f64> = attempts(&env).iter().map(|r| r.3).collect();
    assert!(waited[1] >= 950.0, "{waited:?}");
}

/// OpenAI sends its wait as `retry-after-ms`: a short one is waited for (not the 10 ms backoff), a
/// long one fails over at once, as a `Retry-After` would.
#[tokio::test(flavor = "multi_thread")]
async fn retry_after_ms_is_honoured_like_retry_after() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push([
        Behavior::StatusRetryAfterMs {
            status: 429,
            ms: 800,
        },
        Behavior::Ok,
        Behavior::StatusRetryAfterMs {
            status: 429,
            ms: 120_000,
        },
    ]);
    let env = TestEnv::new();
    let session = start_pair(
        &env,
        &a,
        &b,
        "  backoff_ms: 10\n  retry_after_cap_ms: 5000\n",
    );
    let started = Instant::now();
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "waited for retry-after-ms: {:?}",
        started.elapsed()
    );
    assert_eq!((a.calls(), b.calls()), (2, 0));

    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    assert_eq!(
        (a.calls(), b.calls()),
        (3, 1),
        "two minutes is past the cap"
    );
    session.finish(0);
    let waited: Vec<f64> = attempts(&env).iter().map(|r| r.3).collect();
    assert!(waited[1] >= 790.0, "the wait is recorded: {waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_connections_and_slow_first_bytes_fail_over() {
    let b = MockUpstream::start();
    let a = MockUpstream::start();
    a.push([
        Behavior::SlowFirstByte(Duration::from_millis(1500)),
        Behavior::SlowFirstByte(Duration::from_millis(1500)),
    ]);
    let env = TestEnv::new();
    let session = start_pair(&env, &a, &b, "  backoff_ms: 10\n");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    assert!(reply.body.ends_with("data: [DONE]\n\n"));
    drop(a); // now nothing listens where `a` was: connections are refused
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    session.finish(0);
    let rows = attempts(&env);
    let classes: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    // A provider silent past its first-byte timeout is not asked again: the next target is.
    assert_eq!(
        classes,
        vec![
            "upstream_timeout",
            "",
            "upstream_connect_error",
            "upstream_connect_error",
            ""
        ]
    );
}

/// `resilience.deadline_ms` bounds a request's attempts, waits and failovers together: two
/// silent providers hold the client until the deadline, not for each one's first-byte timeout
/// (and retries) in turn, and the client gets a 504 saying which setting ended it.
#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_bounds_every_attempt_together() {
    let a = MockUpstream::start();
    let b = MockUpstream::start();
    for upstream in [&a, &b] {
        upstream.push((0..3).map(|_| Behavior::SlowFirstByte(Duration::from_millis(6000))));
    }
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: a\n    kind: openai\n    base_url: {}\n    models: [gpt-4o-mini]\n    timeouts: {{first_byte_ms: 2000}}\n  - name: b\n    kind: openai\n    base_url: {}\n    models: [gpt-4o-mini]\n    timeouts: {{first_byte_ms: 2000}}\nresilience:\n  backoff_ms: 10\n  deadline_ms: 2500\n",
            a.base_url(),
            b.base_url()
        ),
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let started = std::time::Instant::now();
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    let took = started.elapsed();
    session.finish(0);
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert!(
        reply.body.contains("resilience.deadline_ms"),
        "{}",
        reply.body
    );
    // Without the deadline: a's timeout, then b's (2 s each, 4 s in all); with retries of
    // each, 8 s. The deadline ends it at 2.5 s.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    let classes: Vec<String> = attempts(&env).into_iter().map(|r| r.2).collect();
    assert_eq!(classes, vec!["upstream_timeout", "upstream_timeout"]);
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_not_retried_or_failed_over() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    for status in [400, 401, 403, 404, 422] {
        a.push([Behavior::Status {
            status,
            retry_after: None,
        }]);
    }
    let env = TestEnv::new();
    let session = start_pair(&env, &a, &b, "  backoff_ms: 10\n");
    for status in [400, 401, 403, 404, 422] {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat_body("gpt-4o-mini", false, "hi"),
        )
        .await;
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.json()["error"]["message"],
            format!("mock upstream says {status}")
        );
    }
    assert_eq!((a.calls(), b.calls()), (5, 0));
    session.finish(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_never_failed_over_after_its_first_byte() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push([Behavior::CutStream { chunks: 2 }]);
    let env = TestEnv::new();
    let session = start_pair(&env, &a, &b, "  backoff_ms: 10\n");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let last: serde_json::Value = serde_json::from_str(reply.events().last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_broken");
    assert_eq!((a.calls(), b.calls()), (1, 0));
    session.finish(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_breaker_opens_skips_the_target_and_recovers_after_a_probe() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push((0..2).map(|_| Behavior::Status {
        status: 500,
        retry_after: None,
    }));
    let env = TestEnv::new();
    let session = start_pair(
        &env,
        &a,
        &b,
        "  max_attempts: 1\n  breaker_failures: 2\n  breaker_cooldown_ms: 700\n",
    );
    // Two failures on `a` (each request then fails over to `b`) open its circuit.
    for _ in 0..2 {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat_body("gpt-4o-mini", false, "hi"),
        )
        .await;
        assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    }
    assert_eq!(a.calls(), 2);
    // Open: `a` is skipped without a call.
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.headers["x-smartproxy-target"], "b/gpt-4o-mini");
    assert_eq!(reply.headers["x-smartproxy-attempts"], "1");
    assert_eq!(a.calls(), 2);
    let status_url = format!("{}/debug/status", session.env["SMARTPROXY_URL"]);
    let status = support::http_client()
        .get(status_url)
        .bearer_auth(&session.key)
        .send()
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&status.text().await.unwrap()).unwrap();
    let breaker = status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["provider"] == "a")
        .unwrap();
    assert_eq!(breaker["state"], "open", "{status}");
    // After the cooldown one probe goes to `a`; it succeeds and the circuit closes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.headers["x-smartproxy-target"], "a/gpt-4o-mini");
    assert_eq!(a.calls(), 3);
    session.finish(0);
    let conn = env.ledger();
    // The request that found the circuit open says so in its routing trail.
    let skipped: Vec<Option<String>> = conn
        .prepare("SELECT skipped FROM requests ORDER BY started_ms")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        skipped,
        [
            None,
            None,
            Some("a/gpt-4o-mini: circuit open".to_owned()),
            None
        ]
    );
    let anomalies: Vec<(String, String)> = conn
        .prepare("SELECT kind, provider FROM anomalies ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        anomalies,
        vec![
            ("circuit_open".to_owned(), "a".to_owned()),
            ("circuit_closed".to_owned(), "a".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_tie_each_attempt_to_its_request_id() {
    let (a, b) = (MockUpstream::start(), MockUpstream::start());
    a.push([Behavior::Status {
        status: 503,
        retry_after: None,
    }]);
    let env = TestEnv::new();
    let session = start_pair_with(
        &env,
        &a,
        &b,
        "  backoff_ms: 5\n",
        &[("SMARTPROXY_LOG_LEVEL", "debug")],
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let id = reply.headers["x-smartproxy-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let stderr = support::text(&session.finish(0).stderr);
    let failed = stderr
        .lines()
        .find(|l| l.contains("attempt failed"))
        .unwrap_or_else(|| panic!("no attempt log line:\n{stderr}"));
    assert!(failed.contains(&format!("request{{id={id}")), "{failed}");
    assert!(failed.contains("model=gpt-4o-mini"), "{failed}");
    assert!(
        failed.contains("attempt{provider=a model=gpt-4o-mini n=1}"),
        "{failed}"
    );
    assert!(failed.contains("class=\"upstream_503\""), "{failed}");
    assert!(!stderr.contains("\"hi\""), "no prompt text in the logs");
}
