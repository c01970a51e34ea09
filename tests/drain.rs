//! Drain grace: a daemon, or a `run` session, that gets SIGTERM while a slow streamed request is
//! in flight lets that stream finish whole, then exits, and the ledger has the request's row
//! with the upstream's real usage. A stream longer than the grace ends with an error event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::daemon::Daemon;
use support::upstream::{Behavior, COMPLETION_TOKENS, MockUpstream, REPLY_WORDS};
use support::{Reply, TestEnv, chat_body, text};

/// Events 150 ms apart: the stream takes about a second, well inside both grace periods.
const GAP: Duration = Duration::from_millis(150);

/// Starts a streamed request and returns once its first event has arrived, with a task that
/// reads the rest.
async fn start_stream(
    base_url: &str,
    key: Option<&str>,
) -> tokio::task::JoinHandle<Result<Reply, String>> {
    let mut req = support::http_client()
        .post(format!("{base_url}/chat/completions"))
        .header("content-type", "application/json")
        .body(chat_body("gpt-4o-mini", true, "tell me slowly"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let mut resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let first = tokio::time::timeout(Duration::from_secs(20), resp.chunk())
        .await
        .expect("no first event")
        .unwrap()
        .expect("the stream ended before its first event");
    let mut body = String::from_utf8_lossy(&first).into_owned();
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await {
                Ok(Ok(Some(chunk))) => body.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Ok(None)) => break,
                Ok(Err(err)) => return Err(format!("the stream broke: {err}; so far: {body}")),
                Err(_) => return Err(format!("the stream stalled; so far: {body}")),
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    })
}

fn assert_whole(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.streamed_content(),
        REPLY_WORDS.concat(),
        "{}",
        reply.body
    );
    assert!(reply.body.ends_with("data: [DONE]\n\n"), "{}", reply.body);
}

fn assert_recorded(env: &TestEnv) {
    let rows = env.requests();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["status"], "200", "{row:?}");
    assert_eq!(row["stream"], "1", "{row:?}");
    assert_eq!(
        row["completion_tokens"],
        COMPLETION_TOKENS.to_string(),
        "{row:?}"
    );
    assert_eq!(
        row["tokens_estimated"], "0",
        "real usage, not an estimate: {row:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_stopped_mid_stream_finishes_it() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Trickle(GAP)]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let daemon = Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", "k")]);
    let stream = start_stream(&format!("{}/v1", daemon.listen), None).await;
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for_log("finishing requests in flight", 1);
    let reply = stream.await.unwrap().unwrap();
    assert_whole(&reply);
    assert_eq!(upstream.streams_completed(), 1);
    let out = daemon.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_recorded(&env);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_session_stopped_mid_stream_finishes_it() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Trickle(GAP)]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let stream = start_stream(&session.base_url, Some(&session.key)).await;
    // SIGTERM to smartproxy: forwarded to the command, which dies of it; the session's proxy
    // then drains before it exits.
    kill(Pid::from_raw(session.pid() as i32), Signal::SIGTERM).unwrap();
    let reply = stream.await.unwrap().unwrap();
    assert_whole(&reply);
    let out = session.wait();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 request (1 ok, 0 failed)"),
        "{}",
        text(&out.stderr)
    );
    assert_recorded(&env);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_longer_than_the_grace_is_cut_and_still_recorded() {
    let upstream = MockUpstream::start();
    // About 14 s of stream against the run session's 5 s of grace: cut well before its finish.
    upstream.push([Behavior::Trickle(Duration::from_secs(2))]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let stream = start_stream(&session.base_url, Some(&session.key)).await;
    let signalled = std::time::Instant::now();
    kill(Pid::from_raw(session.pid() as i32), Signal::SIGTERM).unwrap();
    let out = session.wait();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "the grace bounds the wait: {:?}",
        signalled.elapsed()
    );
    // The client's stream ends well-formed, with the error event the README promises, not
    // cut mid-way (Python's `IncompleteRead`).
    let cut = stream
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the stream was cut, not ended: {e}"));
    assert!(!cut.body.contains("[DONE]"), "{}", cut.body);
    let last: serde_json::Value = serde_json::from_str(cut.events().last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "proxy_stopped", "{}", cut.body);
    let rows = env.requests();
    assert_eq!(rows.len(), 1, "the cut request is in the ledger: {rows:?}");
    assert_eq!(rows[0]["stream"], "1");
    // Cut by smartproxy's own shutdown, not by the client: the row says so.
    assert_eq!(rows[0]["status"], "503", "{:?}", rows[0]);
    assert_eq!(rows[0]["outcome"], "proxy_stopped", "{:?}", rows[0]);
    assert_eq!(rows[0]["error_code"], "proxy_stopped", "{:?}", rows[0]);
}
