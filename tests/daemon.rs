//! `smartproxy daemon`: start, status, stop, graceful drain, keys, refusing to listen off
//! loopback without a key, reloads that keep the old config when the new one is bad, and
//! `/metrics` that a Prometheus parser accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::upstream::{Behavior, MockUpstream, REPLY_WORDS};
use support::{TestEnv, run_to_end, text};

fn mock_config(env: &TestEnv, reply: &str) -> std::path::PathBuf {
    env.write(
        "sp.yaml",
        &format!("providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"{reply}\"\n  latency_ms: 300\n"),
    )
}

async fn ask(base: &str, key: Option<&str>) -> (u16, String) {
    let mut req = support::http_client()
        .post(format!("{base}/v1/chat/completions"))
        .body(support::chat_body("gpt-4o-mini", false, "hi"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (status, content)
}

#[tokio::test(flavor = "multi_thread")]
async fn start_status_serve_and_stop() {
    let env = TestEnv::new();
    let config = mock_config(&env, "one");
    let daemon = Daemon::start(&env, &config, &[], &[]);
    assert_eq!(
        ask(&daemon.listen, None).await,
        (200, "one".to_owned()),
        "no key needed on loopback"
    );

    let mut status = env.command();
    status
        .env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .args(["daemon", "status", "--json"]);
    let out = run_to_end(status);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["running"], true);
    assert_eq!(info["pid"], daemon.pid());

    let metrics = support::http_client()
        .get(format!("{}/metrics", daemon.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "smartproxy_requests_total{route=\"pattern\",target=\"m/gpt-4o-mini\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    let parsed = support::isolated_command(support::python::venv_python())
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(len(list(p(sys.stdin.read()))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(metrics.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        parsed.status.success(),
        "the Prometheus parser refused /metrics"
    );
    assert!(text(&parsed.stdout).trim().parse::<u32>().unwrap() >= 5);
    let stats: serde_json::Value = serde_json::from_str(
        &support::http_client()
            .get(format!("{}/admin/stats", daemon.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(stats["total"].is_object(), "{stats}");

    let mut stop = env.command();
    stop.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .args(["daemon", "stop"]);
    let out = run_to_end(stop);
    assert!(
        text(&out.stdout).contains("stopped"),
        "{}",
        text(&out.stderr)
    );
    let out = daemon.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!env.path().join("run/smartproxy.pid").exists());
    let conn = env.ledger();
    let (kind, id): (String, String) = conn
        .query_row("SELECT kind, id FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kind, "daemon");
    assert!(
        id.starts_with("daemon-") && id.ends_with("-anonymous"),
        "{id}"
    );
    // The day as chrono's `%Y%m%d` writes it.
    let day = &id["daemon-".len()..id.len() - "-anonymous".len()];
    assert!(
        day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    let today = chrono::Local::now().format("%Y%m%d").to_string();
    assert_eq!(&day[..4], &today[..4], "{id}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::SlowFirstByte(Duration::from_millis(500))]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let daemon = Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", "k")]);
    let base = daemon.listen.clone();
    let request = tokio::spawn(async move { ask(&base, None).await });
    // In flight: the upstream has it, and answers 500 ms later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(request.await.unwrap(), (200, REPLY_WORDS.concat()));
    let out = daemon.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        env.requests().len(),
        1,
        "the drained request is in the ledger"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_required_when_set_and_name_the_session() {
    let env = TestEnv::new();
    let config = mock_config(&env, "ok");
    let daemon = Daemon::start(&env, &config, &[], &[("SMARTPROXY_API_KEY", "sk-team-key")]);
    assert_eq!(ask(&daemon.listen, None).await.0, 401);
    assert_eq!(ask(&daemon.listen, Some("sk-wrong")).await.0, 401);
    assert_eq!(ask(&daemon.listen, Some("sk-team-key")).await.0, 200);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait();
    let conn = env.ledger();
    let tag: String = conn
        .query_row("SELECT tag FROM sessions WHERE kind = 'daemon'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tag, "default");
}

#[test]
fn refuses_to_listen_off_loopback_without_a_key() {
    let env = TestEnv::new();
    let config = mock_config(&env, "x");
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .args([
            "daemon",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a client key"),
        "{stderr}"
    );
    assert!(stderr.contains("SMARTPROXY_API_KEY"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_reload_keeps_the_old_config_and_a_good_one_takes_over() {
    let env = TestEnv::new();
    let config = mock_config(&env, "one");
    let daemon = Daemon::start(&env, &config, &[], &[]);
    std::fs::write(
        &config,
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: two\n  latency: 5\n",
    )
    .unwrap();
    let resp = support::http_client()
        .post(format!("{}/admin/reload", daemon.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("sp.yaml:6") && body.contains("unknown field `latency`"),
        "{body}"
    );
    assert_eq!(
        ask(&daemon.listen, None).await.1,
        "one",
        "the old config keeps serving"
    );

    std::fs::write(
        &config,
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: two\n",
    )
    .unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(&daemon.listen, None).await.1 != "two" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait();
}

/// Settings a daemon sets up only at start (its stores, listeners, retention) are not silently
/// ignored by a reload: the answer and the log name them.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_names_the_changes_that_need_a_restart() {
    let env = TestEnv::new();
    let config = mock_config(&env, "one");
    let daemon = Daemon::start(&env, &config, &[], &[]);
    let reload = || async {
        let resp = support::http_client()
            .post(format!("{}/admin/reload", daemon.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        serde_json::from_str::<serde_json::Value>(&resp.text().await.unwrap()).unwrap()
    };
    std::fs::write(
        &config,
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: two\n",
    )
    .unwrap();
    assert_eq!(reload().await["restart_needed"], serde_json::json!([]));
    assert_eq!(ask(&daemon.listen, None).await.1, "two", "taken up at once");

    std::fs::write(
        &config,
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: three\n\
         capture:\n  enabled: true\nretention:\n  max_age_days: 30\n",
    )
    .unwrap();
    assert_eq!(
        reload().await["restart_needed"],
        serde_json::json!(["capture", "retention"])
    );
    assert_eq!(ask(&daemon.listen, None).await.1, "three");
    daemon.wait_for_log(
        "take effect only when the daemon restarts: capture, retention",
        1,
    );
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn named_keys_from_the_config_are_accepted_and_tag_their_sessions() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nclient_keys:\n  - {name: editor, key_env: EDITOR_KEY}\n",
    );
    let daemon = Daemon::start(&env, &config, &[], &[("EDITOR_KEY", "sk-editor-123")]);
    assert_eq!(
        ask(&daemon.listen, None).await.0,
        401,
        "a configured key makes keys required"
    );
    assert_eq!(ask(&daemon.listen, Some("sk-editor-123")).await.0, 200);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait();
    let tag: String = env
        .ledger()
        .query_row("SELECT tag FROM sessions WHERE kind = 'daemon'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tag, "editor");
}

/// The daemon's day session as `sessions --json` shows it.
fn daemon_session(env: &TestEnv) -> serde_json::Value {
    let mut cmd = env.command();
    cmd.args(["sessions", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "daemon")
        .cloned()
        .unwrap_or_else(|| panic!("no daemon session: {rows}"))
}

/// A stopping daemon closes its sessions; a daemon started again the same day opens its day
/// session again; one killed (SIGKILL, a crash) leaves it open, and readers show it
/// `ended (lost)` since its process is gone.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_closes_its_sessions_on_stop_and_a_killed_ones_read_lost() {
    let env = TestEnv::new();
    let config = mock_config(&env, "one");
    let daemon = Daemon::start(&env, &config, &[], &[]);
    assert_eq!(ask(&daemon.listen, None).await.0, 200);
    let out = daemon.stop();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let closed = daemon_session(&env);
    assert!(closed["ended_ms"].is_i64(), "closed on stop: {closed}");
    assert_eq!(closed["lost"], false, "{closed}");

    let daemon = Daemon::start(&env, &config, &[], &[]);
    assert_eq!(ask(&daemon.listen, None).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = daemon_session(&env);
        // Open again, with the second request (committed a moment after the session).
        if row["ended_ms"].is_null() && row["requests"] == 2 {
            assert_eq!(row["lost"], false, "the serving daemon is alive: {row}");
            break;
        }
        assert!(Instant::now() < deadline, "not opened again: {row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = daemon.wait();
    let lost = daemon_session(&env);
    assert!(lost["ended_ms"].is_null(), "{lost}");
    assert_eq!(lost["lost"], true, "{lost}");
    let mut cmd = env.command();
    cmd.arg("sessions");
    let table = text(&run_to_end(cmd).stdout);
    assert!(table.contains("ended (lost)"), "{table}");
}

/// `kill -9` under load: every stream the client saw end is in the ledger (a stream's end waits
/// for its row's commit), every other reply older than the group-commit window is too (the
/// bound checked here leaves room for a loaded machine), and the file passes `integrity_check`.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_stream_the_client_saw_end_and_the_ledger_stays_whole() {
    let env = TestEnv::new();
    let config = env.write("fast.yaml", "providers:\n  - name: m\n    kind: mock\n");
    kill_9_under_load(&env, &config, &[]).await;
}

/// The same through an HTTP provider, whose stream's last event and end come apart over the
/// wire.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_stream_from_an_http_provider_the_client_saw_end() {
    let upstream = support::upstream::MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    kill_9_under_load(&env, &config, &[("UPSTREAM_KEY", "sk-upstream")]).await;
}

async fn kill_9_under_load(env: &TestEnv, config: &std::path::Path, envs: &[(&str, &str)]) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let daemon = Daemon::start(env, config, &[], envs);
    let stop = Arc::new(AtomicBool::new(false));
    let streams = Arc::new(Mutex::new(Vec::<String>::new()));
    let replies = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let mut clients = Vec::new();
    for n in 0..8 {
        let (base, stop) = (daemon.listen.clone(), Arc::clone(&stop));
        let (streams, replies) = (Arc::clone(&streams), Arc::clone(&replies));
        clients.push(tokio::spawn(async move {
            let client = support::http_client();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let stream = (i + n).is_multiple_of(2);
                let sent = client
                    .post(format!("{base}/v1/chat/completions"))
                    .header("content-type", "application/json")
                    .body(support::chat_body("gpt-4o-mini", stream, "hi"))
                    .send()
                    .await;
                let Ok(resp) = sent else { break };
                let id = resp
                    .headers()
                    .get("x-smartproxy-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let ok = resp.status().as_u16() == 200;
                let Ok(body) = resp.text().await else { break };
                let Some(id) = id.filter(|_| ok) else {
                    continue;
                };
                if !stream {
                    replies.lock().unwrap().push((id, Instant::now()));
                } else if body.contains("data: [DONE]") {
                    streams.lock().unwrap().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let _ = daemon.wait();

    let conn = env.ledger();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let recorded: std::collections::HashSet<String> = conn
        .prepare("SELECT id FROM requests")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let streams = streams.lock().unwrap();
    assert!(streams.len() >= 20, "too little load: {}", streams.len());
    let lost: Vec<&String> = streams
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} completed streams lost",
        lost.len(),
        streams.len()
    );
    let replies = replies.lock().unwrap();
    let old_lost = replies
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_millis(500))
        .filter(|(id, _)| !recorded.contains(id))
        .count();
    assert_eq!(old_lost, 0, "replies older than the window were lost");
}

/// Off loopback a key is all that guards the provider credit: a daemon refuses to listen there
/// with a client or admin key a person could have picked (under 32 characters).
#[test]
fn refuses_a_short_key_off_loopback() {
    let env = TestEnv::new();
    let config = mock_config(&env, "x");
    for (listen, admin, var) in [
        ("0.0.0.0:0", "127.0.0.1:0", "SMARTPROXY_API_KEY"),
        ("127.0.0.1:0", "0.0.0.0:0", "SMARTPROXY_ADMIN_KEY"),
    ] {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
            .env("SMARTPROXY_API_KEY", "x")
            .env("SMARTPROXY_ADMIN_KEY", "hunter2")
            .args(["daemon", "--config", config.to_str().unwrap()])
            .args(["--listen", listen, "--admin-listen", admin]);
        let out = run_to_end(cmd);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("shorter than 32 characters") && stderr.contains(var),
            "{stderr}"
        );
    }
}

/// A client off loopback that sends ten wrong keys within a minute is refused (429 with
/// `Retry-After`) whatever it sends next, the right key included, so it learns nothing; the
/// refusals are recorded, and other clients are not held back.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_keys_from_one_address_are_throttled() {
    let Some(other) = support::another_local_address() else {
        return support::skip_or_fail("this machine has no address besides loopback");
    };
    const KEY: &str = "a-client-key-long-enough-for-any-listener-0123";
    let env = TestEnv::new();
    let config = mock_config(&env, "hello");
    let daemon = Daemon::start(&env, &config, &[], &[("SMARTPROXY_API_KEY", KEY)]);
    let url = format!("{}/v1/chat/completions", daemon.listen);
    let from_other = reqwest::Client::builder()
        .no_proxy()
        .local_address(Some(other))
        .build()
        .unwrap();
    let send = |client: reqwest::Client, key: &'static str| {
        let url = url.clone();
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(support::chat_body("gpt-4o-mini", false, "hi"))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..10 {
        assert_eq!(send(from_other.clone(), "guess").await.status(), 401);
    }
    let locked = send(from_other.clone(), KEY).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    let body: serde_json::Value = serde_json::from_str(&locked.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_many_wrong_keys");
    // Loopback clients are another client (and never counted).
    assert_eq!(send(support::http_client(), KEY).await.status(), 200);
    daemon.stop();
    let rows = env.requests();
    assert_eq!(
        rows.iter()
            .filter(|r| r["error_code"] == "too_many_wrong_keys")
            .count(),
        1,
        "{rows:?}"
    );
}
