//! Slow and many clients against the real daemon: a request head trickled a byte at a time, a
//! body that never completes, connections that say nothing, thousands of idle connections at
//! once, and the cap on open connections with its fast 503. Counts are bounded, all traffic is
//! on loopback, and every connection is closed when its test ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::TestEnv;
use support::daemon::Daemon;

/// A daemon config with the mock provider and `limits` (indented lines under `limits:`).
fn config(env: &TestEnv, limits: &str) -> PathBuf {
    env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"ok\"\nlimits:\n{limits}"
        ),
    )
}

fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the daemon closes the connection or `within` passes: what it sent, and whether
/// it closed. A reset counts as closed.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn slow_and_silent_request_heads_and_idle_connections_are_cut_at_the_header_timeout() {
    let env = TestEnv::new();
    let daemon = Daemon::start(&env, &config(&env, "  header_timeout_s: 1\n"), &[], &[]);
    let public = addr(&daemon.listen);

    // Slowloris: a head that never ends, a byte every 200 ms.
    let mut slow = TcpStream::connect(public).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"a").is_err() {
            cut = true;
            break;
        }
        if read_until_closed(&mut slow, Duration::from_millis(200)).1 {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a head trickled a byte at a time was still open after 5 s"
    );

    // A connection that says nothing, and one kept alive after its reply, are closed too.
    let mut silent = TcpStream::connect(public).unwrap();
    let mut kept = TcpStream::connect(public).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (reply, closed) = read_until_closed(&mut kept, Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        closed,
        "an idle kept-alive connection was still open after 5 s"
    );
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5));
    assert!(
        closed,
        "a connection that sent nothing was still open after 5 s"
    );

    // The daemon serves on.
    let mut fresh = TcpStream::connect(public).unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (reply, _) = read_until_closed(&mut fresh, Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_slower_than_the_header_timeout_is_not_cut() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"slow\"\n  latency_ms: 2500\nlimits:\n  header_timeout_s: 1\n",
    );
    let daemon = Daemon::start(&env, &config, &[], &[]);
    let client = support::http_client();
    let url = format!("{}/v1/chat/completions", daemon.listen);
    // Whole, then streamed, on one kept-alive connection: the timeout is for the head, not
    // the reply.
    for stream in [false, true] {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(support::chat_body("gpt-4o-mini", stream, "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("slow"), "{text}");
        assert_eq!(text.contains("data: [DONE]"), stream, "{text}");
    }
}

#[test]
fn a_body_that_never_completes_is_answered_408_and_recorded() {
    let env = TestEnv::new();
    let daemon = Daemon::start(&env, &config(&env, "  body_timeout_s: 1\n"), &[], &[]);
    let mut stream = TcpStream::connect(addr(&daemon.listen)).unwrap();
    stream
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":",
        )
        .unwrap();
    let (reply, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "declared 1000 bytes, sent 9: {reply:?}"
    );
    assert!(reply.contains("request_timeout"), "{reply}");
    assert!(reply.contains("limits.body_timeout_s"), "{reply}");
    assert!(closed, "the connection stayed open after the 408");

    // It reached the model pipeline, so the ledger has it, as a rejection.
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows = env.requests();
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        support::pause(Duration::from_millis(50));
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "408");
    assert_eq!(rows[0]["error_code"], "request_timeout");
    assert_eq!(rows[0]["outcome"], "rejected");
}

/// Runs `f` with this process's soft limit on open files at `soft`, restoring it after: the
/// daemon started inside inherits the common default of 1024, which it must raise itself.
fn with_soft_nofile<T>(soft: u64, f: impl FnOnce() -> T) -> T {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (old, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).unwrap();
    let out = f();
    setrlimit(Resource::RLIMIT_NOFILE, old, hard).unwrap();
    out
}

/// The soft limit on open files of process `pid`, from `/proc/PID/limits`.
fn soft_nofile_of(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn run_raises_its_own_open_files_limit_but_not_its_commands() {
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    if hard <= 1024 || !Path::new("/proc/self/limits").exists() {
        return support::skip_or_fail("needs /proc and a hard open files limit above 1024");
    }
    let env = TestEnv::new();
    let session = with_soft_nofile(1024, || env.start_run(&["run", "--mock"], &[]));
    let run = session.pid();
    let children = std::fs::read_to_string(format!("/proc/{run}/task/{run}/children")).unwrap();
    let command: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while soft_nofile_of(run) != hard {
        assert!(
            Instant::now() < deadline,
            "run kept its soft limit of {}",
            soft_nofile_of(run)
        );
        support::pause(Duration::from_millis(20));
    }
    // The command keeps what it would have had without smartproxy (select() needs <= 1024).
    assert_eq!(soft_nofile_of(command), 1024);
    assert!(session.finish(0).status.success());
}

/// Opens `n` connections to `to` that send nothing, a hundred at a time from each of several
/// threads: on a busy machine the odd SYN is dropped and retried a second later, and in
/// parallel those waits overlap instead of adding up.
fn idle_connections(to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[usize]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|i| {
                            TcpStream::connect_timeout(&to, Duration::from_secs(4))
                                .map_err(|e| format!("connection {i} of {n}: {e}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let opened: Result<Vec<Vec<TcpStream>>, String> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        opened
            .unwrap_or_else(|e| panic!("the daemon stopped accepting: {e}"))
            .into_iter()
            .flatten()
            .collect()
    })
}

async fn answers_within(req: reqwest::RequestBuilder, what: &str) -> String {
    let resp = tokio::time::timeout(Duration::from_secs(1), req.send())
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within 1 s"))
        .unwrap();
    assert_eq!(resp.status(), 200, "{what}");
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_idle_connections_leave_health_chat_and_admin_answering() {
    const IDLE: usize = 3000;
    // This machine's limit must hold both ends of every connection in this process and the
    // daemon (each has its own): this process takes its hard limit, as the daemon will.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < IDLE as u64 + 500 {
        return support::skip_or_fail("the open files limit is below 3500");
    }
    let env = TestEnv::new();
    let config = config(&env, "  max_connections: 4000\n");
    let daemon = with_soft_nofile(1024, || Daemon::start(&env, &config, &[], &[]));
    let held = idle_connections(addr(&daemon.listen), IDLE);

    let client = support::http_client();
    let health = answers_within(client.get(format!("{}/healthz", daemon.listen)), "/healthz").await;
    assert!(health.contains("ok"), "{health}");
    let chat = answers_within(
        client
            .post(format!("{}/v1/chat/completions", daemon.listen))
            .header("content-type", "application/json")
            .body(support::chat_body("gpt-4o-mini", false, "hi")),
        "a chat request",
    )
    .await;
    assert!(chat.contains("\"ok\""), "{chat}");
    answers_within(
        client.get(format!("{}/admin/stats", daemon.admin)),
        "the admin listener",
    )
    .await;
    assert!(
        !daemon.stderr().contains("Too many open files"),
        "{}",
        daemon.stderr()
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_the_cap_a_client_gets_a_fast_503_and_the_admin_listener_answers() {
    const CAP: usize = 20;
    let env = TestEnv::new();
    let config = config(&env, &format!("  max_connections: {CAP}\n"));
    let daemon = Daemon::start(&env, &config, &[], &[]);
    let public = addr(&daemon.listen);
    let held = idle_connections(public, CAP);

    let mut beyond = TcpStream::connect(public).unwrap();
    let (reply, closed) = read_until_closed(&mut beyond, Duration::from_secs(1));
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply:?}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    assert!(reply.contains("too_many_connections"), "{reply}");
    assert!(
        closed,
        "the connection beyond the cap was not closed within 1 s"
    );

    // The admin listener has its own cap.
    let client = support::http_client();
    answers_within(
        client.get(format!("{}/admin/stats", daemon.admin)),
        "the admin listener",
    )
    .await;

    // Closed connections free their places.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Until the places are free, a reply can be the 503 or, the request sent before it
        // was read, a reset.
        let status = client
            .get(format!("{}/healthz", daemon.listen))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(status, Ok(200)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status:?} after the idle connections closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
