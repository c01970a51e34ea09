//! Team mode offline (issue 20, items 6 and 7): rows PostgreSQL cannot take go to the local
//! spool and reach PostgreSQL exactly once when it is back (the daemon under load while its
//! cluster stops and starts; a stop, and a start, while PostgreSQL is down); `status` counts
//! the spool; `ledger migrate --to` copies a SQLite ledger, again and after being stopped
//! halfway, without a duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smartproxy::ledger::{Anomaly, AttemptRow, Ledger, RequestRecord, SessionEnd, SessionStart};
use support::TestEnv;
use support::postgres::{PrivateCluster, TestDb};

const MOCK_CONFIG: &str = "providers:\n  - name: m\n    kind: mock\n";

/// `status --json` against `url`: the rows waiting in the spool.
fn spooled(env: &TestEnv, url: &str) -> i64 {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", url).args(["status", "--json"]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["backend"], "postgres");
    assert!(!value["ledger"].as_str().unwrap().is_empty());
    value["spooled"].as_i64().unwrap()
}

/// Waits (with a deadline) until the spool is empty.
fn wait_for_empty_spool(env: &TestEnv, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = spooled(env, url);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{n} rows still in the spool");
        support::pause(Duration::from_millis(100));
    }
}

/// `n` chats in a row; the ids of those answered 200.
fn send_chats(runtime: &tokio::runtime::Runtime, base: &str, n: usize) -> Vec<String> {
    runtime.block_on(async {
        let client = support::http_client();
        let mut ids = Vec::new();
        for _ in 0..n {
            let resp = client
                .post(format!("{base}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(support::chat_body("gpt-4o-mini", false, "hi"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let id = resp.headers()["x-smartproxy-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            resp.text().await.unwrap();
            ids.push(id);
        }
        ids
    })
}

/// (a) A daemon under load while its PostgreSQL stops for a few seconds and starts again:
/// every request answered 200 has exactly one row afterwards, the roll-up counts each once,
/// and the spool is empty.
#[test]
fn an_outage_under_load_loses_nothing_and_duplicates_nothing() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let env = TestEnv::new();
    let config = env.write("sp.yaml", MOCK_CONFIG);
    let url = cluster.url("ledger");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &url)]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (base, stop) = (daemon.listen.clone(), Arc::clone(&stop));
            let (answered, count) = (Arc::clone(&answered), Arc::clone(&count));
            runtime.spawn(async move {
                let client = support::http_client();
                while !stop.load(Ordering::Relaxed) {
                    let resp = client
                        .post(format!("{base}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .body(support::chat_body("gpt-4o-mini", false, "hi"))
                        .send()
                        .await
                        .unwrap();
                    let id = resp.headers()["x-smartproxy-request-id"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let ok = resp.status().as_u16() == 200;
                    resp.text().await.unwrap();
                    if ok {
                        answered.lock().unwrap().push(id);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while count.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "too little load");
            support::pause(Duration::from_millis(10));
        }
    };
    wait_for(200);
    cluster.down();
    let down_at = Instant::now();
    daemon.wait_for_log("spooling rows locally", 1);
    let at_down = count.load(Ordering::Relaxed);
    wait_for(at_down + 300);
    // Down for a few seconds of load, not just one batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while down_at.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < deadline);
        support::pause(Duration::from_millis(50));
    }
    assert!(
        count.load(Ordering::Relaxed) > at_down + 300,
        "no load while down"
    );
    assert!(spooled(&env, &url) > 0, "nothing was spooled");
    cluster.up();
    daemon.wait_for_log("PostgreSQL ledger reachable again", 1);
    let at_up = count.load(Ordering::Relaxed);
    wait_for(at_up + 200);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        runtime.block_on(client).unwrap();
    }
    wait_for_empty_spool(&env, &url);
    let out = daemon.stop();
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    let answered = answered.lock().unwrap().clone();
    assert_eq!(
        cluster.requests_with_ids(&answered),
        answered.len() as i64,
        "rows lost or doubled"
    );
    assert_eq!(
        cluster.count("SELECT count(*) - count(DISTINCT id) FROM requests"),
        0
    );
    assert_eq!(
        cluster.count("SELECT count(*) FROM requests"),
        cluster.count("SELECT sum(requests) FROM usage_daily")
    );
    assert_eq!(spooled(&env, &url), 0);
}

/// (b) A daemon stopped while PostgreSQL is down exits promptly with its rows in the spool; a
/// `run` started while it is still down starts and spools too (saying so); the next process
/// that reaches PostgreSQL sends them all, once. (d) `status` counts the spool meanwhile.
#[test]
fn rows_spooled_at_a_stop_or_an_offline_start_reach_postgres_later() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    if !support::require_tools(&["curl"]) {
        return;
    }
    let env = TestEnv::new();
    let config = env.write("sp.yaml", MOCK_CONFIG);
    let url = cluster.url("ledger");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &url)]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ids = send_chats(&runtime, &daemon.listen, 10);
    cluster.down();
    ids.extend(send_chats(&runtime, &daemon.listen, 25));
    let stopping = Instant::now();
    let out = daemon.stop();
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "slow stop: {stderr}"
    );
    assert!(!stderr.contains("lost"), "{stderr}");
    assert!(stderr.contains("rows wait in the ledger spool"), "{stderr}");
    let waiting = spooled(&env, &url);
    assert!(waiting >= 25, "{waiting} rows spooled; {stderr}");

    // A `run` that starts while PostgreSQL is down starts, says so once, and spools.
    let n = 5;
    let script = format!(
        "for i in $(seq {n}); do curl -sf -o /dev/null -H \"authorization: Bearer $OPENAI_API_KEY\" \
         -H 'content-type: application/json' -d '{}' \"$OPENAI_BASE_URL/chat/completions\" || exit 9; done",
        support::chat_body("gpt-4o-mini", false, "hi")
    );
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &url).args([
        "run",
        "--mock",
        "--summary",
        "none",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("recording into the local spool"),
        "{stderr}"
    );
    assert!(spooled(&env, &url) >= waiting + n, "{stderr}");
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &url).arg("status");
    let line = support::text(&support::run_to_end(cmd).stdout);
    assert!(line.contains("wait in the spool"), "{line}");
    assert!(line.contains(&url), "{line}");

    // PostgreSQL back: the next process drains the spool, each row once.
    cluster.up();
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &url)
        .args(["run", "--mock", "--summary", "none", "--", "true"]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    wait_for_empty_spool(&env, &url);
    assert_eq!(cluster.requests_with_ids(&ids), ids.len() as i64);
    assert_eq!(
        cluster.count("SELECT count(*) FROM requests"),
        ids.len() as i64 + n
    );
    assert_eq!(
        cluster.count("SELECT sum(requests) FROM usage_daily"),
        ids.len() as i64 + n
    );
    // The offline run's session reached PostgreSQL, closed.
    assert_eq!(
        cluster.count("SELECT count(*) FROM sessions WHERE kind = 'run' AND ended_ms IS NULL"),
        0
    );
    assert!(cluster.count("SELECT count(*) FROM sessions WHERE kind = 'run'") >= 2);
}

fn record(i: usize, session: &Arc<str>) -> RequestRecord {
    let mut r = RequestRecord::new(
        format!("req_{i:028x}"),
        Some(Arc::clone(session)),
        1_796_619_600_000 + i as i64,
        "chat",
    );
    r.provider = Some("p".to_owned());
    r.requested_model = Some("gpt-4o-mini".to_owned());
    r.served_model = Some("gpt-4o-mini".to_owned());
    r.status = 200;
    r.prompt_tokens = Some(10 + i as u64);
    r.completion_tokens = Some(5);
    r.cost_usd = Some(0.000_001 * (1 + i % 7) as f64);
    r.latency_ms = 12.5;
    r.attempts = 1;
    r.attempt_log = vec![AttemptRow {
        provider: "p".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        status: Some(200),
        error_class: None,
        latency_ms: 12.0,
        waited_ms: 0.0,
    }];
    r
}

/// A SQLite ledger of `n` requests over two sessions (one ended), and one anomaly.
fn sqlite_ledger(env: &TestEnv, n: usize) -> std::path::PathBuf {
    let path = env.path().join("solo.db");
    let ledger = Ledger::open(&path).unwrap();
    for (id, ended) in [("s-one", true), ("s-two", false)] {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: None,
            kind: "run",
            tag: Some("solo".to_owned()),
            program: Some("agent".to_owned()),
            cwd: None,
            pid: Some(1),
            started_ms: 1_796_619_600_000,
            budget_usd: None,
            attribution: Default::default(),
        });
        if ended {
            ledger.session_ended(SessionEnd {
                id: id.to_owned(),
                ended_ms: 1_796_619_700_000,
                exit_code: Some(0),
                end_branch: None,
                end_head: None,
            });
        }
    }
    let sessions: [Arc<str>; 2] = [Arc::from("s-one"), Arc::from("s-two")];
    for i in 0..n {
        ledger.record(record(i, &sessions[i % 2]));
    }
    ledger.anomaly(Anomaly {
        at_ms: 1_796_619_650_000,
        session_id: Some("s-one".to_owned()),
        kind: "circuit_open",
        provider: "p".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        detail: "5 failures".to_owned(),
    });
    ledger.flush(Duration::from_secs(60)).unwrap();
    path
}

fn migrate(
    env: &TestEnv,
    from: &std::path::Path,
    url: &str,
    extra: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = env.command();
    cmd.args([
        "ledger", "migrate", "--json", "--batch", "500", "--to", url, "--from",
    ])
    .arg(from);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    support::run_to_end(cmd)
}

/// (c) `ledger migrate --to`: N requests give N rows and the same total cost; run again, still
/// N (nothing counted twice); stopped halfway and run again, N.
#[test]
fn ledger_migrate_copies_once_and_resumes() {
    let Some(db) = TestDb::create("migrate") else {
        return;
    };
    let env = TestEnv::new();
    let n = 2_600;
    let from = sqlite_ledger(&env, n);
    let sqlite_cost: i64 = rusqlite::Connection::open(&from)
        .unwrap()
        .query_row("SELECT sum(cost_nusd) FROM request_rows", [], |r| r.get(0))
        .unwrap();
    let check = |db: &TestDb| {
        assert_eq!(db.count("SELECT count(*) FROM requests"), n as i64);
        assert_eq!(db.count("SELECT count(*) FROM attempts"), n as i64);
        assert_eq!(db.count("SELECT sum(cost_nusd) FROM requests"), sqlite_cost);
        assert_eq!(db.count("SELECT sum(requests) FROM usage_daily"), n as i64);
        assert_eq!(
            db.count("SELECT sum(cost_nusd) FROM usage_daily"),
            sqlite_cost
        );
        assert_eq!(db.count("SELECT count(*) FROM sessions"), 2);
        assert_eq!(db.count("SELECT count(*) FROM anomalies"), 1);
        assert_eq!(
            db.scalar("SELECT exit_code FROM sessions WHERE id = 's-one' AND ended_ms IS NOT NULL"),
            "0"
        );
    };
    for (run, inserted) in [(1, n), (2, 0)] {
        let out = migrate(&env, &from, &db.url, &[]);
        assert!(
            out.status.success(),
            "run {run}: {}",
            support::text(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["requests"], n, "run {run}");
        assert_eq!(summary["inserted"], inserted, "run {run}");
        check(&db);
    }

    // Stopped after two batches (as a kill would leave it), then run again.
    let Some(db) = TestDb::create("migrate_resume") else {
        return;
    };
    let out = migrate(
        &env,
        &from,
        &db.url,
        &[("SMARTPROXY_TEST_MIGRATE_STOP_AFTER", "2")],
    );
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("run it again"), "{stderr}");
    assert_eq!(db.count("SELECT count(*) FROM requests"), 1000);
    let out = migrate(&env, &from, &db.url, &[]);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["inserted"], n - 1000);
    check(&db);

    // Without --json: one line with the counts, on stderr.
    let mut cmd = env.command();
    cmd.args(["ledger", "migrate", "--to", &db.url, "--from"])
        .arg(&from);
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{n} requests (0 new, {n} already there)")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
