//! Streaming through the proxy: events forwarded as they arrive, usage read from the stream and
//! the injected usage chunk removed again, broken and malformed streams, clients that leave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS, REPLY_WORDS};
use support::{TestEnv, chat_body, post_chat};

fn start(env: &TestEnv, upstream: &MockUpstream, extra: &str) -> support::RunSession {
    let config = env.upstream_config(&upstream.base_url(), extra);
    env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_is_read_and_the_injected_chunk_removed() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    let events = reply.events();
    assert_eq!(reply.streamed_content(), REPLY_WORDS.concat());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !reply.body.contains("\"usage\""),
        "the client did not ask for usage, so it sees none: {}",
        reply.body
    );
    // The proxy asked upstream for usage on the client's behalf.
    assert_eq!(
        upstream.received()[0].body["stream_options"]["include_usage"],
        true
    );

    // A client that asks for usage gets the chunk, unchanged.
    let body = serde_json::json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]
    });
    let reply = post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
    let usage_chunks = reply
        .events()
        .iter()
        .filter(|e| e.contains("\"usage\""))
        .count();
    assert_eq!(usage_chunks, 1, "{}", reply.body);
    assert_eq!(upstream.streams_completed(), 2);
    assert_eq!(
        upstream.streams_cut_short(),
        0,
        "read to the end, none cut short"
    );
    session.finish(0);

    let rows = env.requests();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["stream"], "1");
        assert_eq!(row["outcome"], "ok");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS.to_string());
        assert_eq!(row["completion_tokens"], COMPLETION_TOKENS.to_string());
        assert_eq!(row["tokens_estimated"], "0");
        assert_ne!(row["cost_usd"], "NULL");
        assert_ne!(row["ttfb_ms"], "NULL");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_forwarded_as_they_arrive() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Trickle(Duration::from_millis(250))]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let started = Instant::now();
    let resp = support::http_client()
        .post(format!("{}/chat/completions", session.base_url))
        .bearer_auth(&session.key)
        .body(chat_body("gpt-4o-mini", true, "hi"))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let total = started.elapsed();
    // Seven events 250 ms apart: a buffering proxy would deliver the first one at the end.
    assert!(total >= Duration::from_millis(1500), "{total:?}");
    assert!(
        first_at < total / 2,
        "first event at {first_at:?} of {total:?}"
    );
    session.finish(0);
    // The attempt is timed to the stream's last byte, as the request is, not to its headers.
    let (request_ms, attempt_ms): (f64, f64) = env
        .ledger()
        .query_row(
            "SELECT r.latency_ms, a.latency_ms FROM requests r JOIN attempts a ON a.request_id = r.id",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(attempt_ms >= 1500.0, "attempt {attempt_ms} ms");
    assert!(
        attempt_ms <= request_ms,
        "attempt {attempt_ms} of {request_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_without_usage_is_estimated_and_marked() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::OkWithoutUsage, Behavior::OkWithoutUsage]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.streamed_content(), REPLY_WORDS.concat());
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    let out = session.finish(0);
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        assert_eq!(row["tokens_estimated"], "1", "{row:?}");
        assert_ne!(row["completion_tokens"], "0", "{row:?}");
        assert_ne!(row["cost_usd"], "NULL", "{row:?}");
    }
    let stderr = support::text(&out.stderr);
    assert!(
        stderr.contains("* includes estimates: 2 requests"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_stream_ends_with_an_error_event_and_is_recorded() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::CutStream { chunks: 2 }]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "headers were already sent");
    let events = reply.events();
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_stream_broken",
        "{}",
        reply.body
    );
    assert!(!events.iter().any(|e| e == "[DONE]"));
    assert_eq!(
        upstream.calls(),
        1,
        "never retried or failed over after the first byte"
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows[0]["outcome"], "transport_error");
    assert_eq!(rows[0]["error_code"], "upstream_stream_broken");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_pass_through_untouched() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::MalformedSse]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(reply.body, "data: {not json\n\ndata: [DONE]\n\n");
    session.finish(0);
    assert_eq!(env.requests()[0]["tokens_estimated"], "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_cancels_upstream_and_is_recorded() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Trickle(Duration::from_millis(150))]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let resp = support::http_client()
        .post(format!("{}/chat/completions", session.base_url))
        .bearer_auth(&session.key)
        .body(chat_body("gpt-4o-mini", true, "hi"))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    // The row is written when the proxy notices, without waiting for the command to end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = if env.db.exists() {
            env.requests()
        } else {
            vec![]
        };
        if let Some(row) = rows.first() {
            assert_eq!(row["outcome"], "client_closed");
            assert_eq!(row["status"], "499");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ledger row for the abandoned stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The upstream sees its stream dropped mid-way (the proxy closed the connection), well
    // before its seven events 150 ms apart could all have gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.streams_cut_short() == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream request was not cancelled ({} streams completed)",
            upstream.streams_completed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.streams_completed(), 0);
    session.finish(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_end_requests_with_504() {
    let upstream = MockUpstream::start();
    upstream.push([
        Behavior::SlowFirstByte(Duration::from_millis(1500)),
        Behavior::Trickle(Duration::from_millis(1200)),
    ]);
    let env = TestEnv::new();
    let session = start(
        &env,
        &upstream,
        "    timeouts: {first_byte_ms: 300, idle_ms: 400}\nresilience:\n  max_attempts: 1\n",
    );
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "upstream_timeout");
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    let last: serde_json::Value = serde_json::from_str(reply.events().last().unwrap()).unwrap();
    assert_eq!(
        last["error"]["code"], "upstream_idle_timeout",
        "{}",
        reply.body
    );
    session.finish(0);
    let codes: Vec<String> = env
        .requests()
        .iter()
        .map(|r| r["error_code"].clone())
        .collect();
    assert_eq!(codes, vec!["upstream_timeout", "upstream_idle_timeout"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_gives_up_on_a_whole_reply_is_recorded() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::SlowFirstByte(Duration::from_millis(1500))]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    let result = support::http_client()
        .post(format!("{}/chat/completions", session.base_url))
        .bearer_auth(&session.key)
        .timeout(Duration::from_millis(300))
        .body(chat_body("gpt-4o-mini", false, "hi"))
        .send()
        .await;
    assert!(result.is_err(), "the client timed out");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = if env.db.exists() {
            env.requests()
        } else {
            vec![]
        };
        if let Some(row) = rows.first() {
            assert_eq!(row["outcome"], "client_closed", "{row:?}");
            let latency: f64 = row["latency_ms"].parse().unwrap();
            assert!(
                latency < 1400.0,
                "recorded when the client left, not when upstream answered: {latency}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ledger row for the abandoned request"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    session.finish(0);
}

/// A stream that arrives whole in one write: every event before the end goes out at once, and
/// only the end waits for the row's commit. The ledger is held by another connection, so the
/// row cannot be committed while the client reads: the content must reach it anyway, without
/// `[DONE]`, which comes once the ledger is free and the row is there.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_goes_out_before_the_commit_and_only_its_end_waits() {
    let upstream = MockUpstream::start();
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    let body = [
        chunk("{\"role\":\"assistant\",\"content\":\"Hello\"}", "null"),
        chunk("{\"content\":\" there\"}", "null"),
        chunk("{}", "\"stop\""),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    upstream.push([
        Behavior::Ok,
        Behavior::Raw {
            content_type: "text/event-stream",
            body,
        },
    ]);
    let env = TestEnv::new();
    let session = start(&env, &upstream, "");
    // A first request creates the ledger's tables.
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let holder = env.ledger();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let resp = support::http_client()
        .post(format!("{}/chat/completions", session.base_url))
        .bearer_auth(&session.key)
        .body(chat_body("gpt-4o-mini", true, "hi"))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("\"stop\"") {
        seen.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    let before_commit = String::from_utf8_lossy(&seen).into_owned();
    assert!(before_commit.contains("Hello"), "{before_commit}");
    assert!(
        !before_commit.contains("[DONE]"),
        "the end went out while the row could not be committed: {before_commit}"
    );
    let streamed_rows = || env.requests().iter().filter(|r| r["stream"] == "1").count();
    assert_eq!(
        streamed_rows(),
        0,
        "the ledger is held: nothing is committed"
    );
    holder.execute_batch("COMMIT").unwrap();

    while let Some(chunk) = stream.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    let all = String::from_utf8_lossy(&seen).into_owned();
    assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
    assert_eq!(
        streamed_rows(),
        1,
        "the end came after the stream's row was committed"
    );
    session.finish(0);
}
