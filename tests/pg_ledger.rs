//! Team mode's first step (issue 20): `database`/`SMARTPROXY_DB` as a PostgreSQL URL. `run` and
//! the daemon write their rows into a real PostgreSQL (each test in a database of its own,
//! `support::postgres`), batches are idempotent by request id, a newer schema is refused, a bad
//! URL is a config error, and the commands that only read SQLite say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::{
    AttemptRow, Ledger, LedgerError, RequestRecord, SessionEnd, SessionStart,
};
use support::TestEnv;
use support::postgres::TestDb;

const MOCK_CONFIG: &str = "providers:\n  - name: m\n    kind: mock\n";

fn location(db: &TestDb) -> LedgerLocation {
    LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap())
}

/// (a) `run --mock` around a client making N requests: N rows, and the summary's cost is the
/// sum of the rows'.
#[test]
fn run_records_every_request_and_its_summary_adds_up_the_rows() {
    let Some(db) = TestDb::create("run") else {
        return;
    };
    if !support::require_tools(&["curl"]) {
        return;
    }
    let env = TestEnv::new();
    let n = 12;
    let script = format!(
        "for i in $(seq {n}); do curl -sf -o /dev/null -H \"authorization: Bearer $OPENAI_API_KEY\" \
         -H 'content-type: application/json' -d '{}' \"$OPENAI_BASE_URL/chat/completions\" || exit 9; done",
        support::chat_body("gpt-4o-mini", false, "hi")
    );
    let summary = env.path().join("summary.json");
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url)
        .args(["run", "--mock", "--summary", "json", "--summary-file"])
        .arg(&summary)
        .args(["--", "sh", "-c", &script]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    assert!(
        !env.db.exists(),
        "nothing may be written to the SQLite ledger"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(summary["requests"], n);
    // The request kinds the cost gates compare, read from PostgreSQL as from SQLite.
    assert_eq!(
        summary["by_kind"][0]["kind"], "chat.completions",
        "{summary}"
    );
    assert_eq!(summary["by_kind"][0]["requests"], n);
    assert_eq!(summary["children"], serde_json::json!([]));
    assert_eq!(db.count("SELECT count(*) FROM requests"), n);
    assert_eq!(db.count("SELECT count(*) FROM attempts"), n);
    let rows_usd = db.count("SELECT sum(cost_nusd) FROM requests") as f64 / 1e9;
    let summary_usd = summary["cost_usd"].as_f64().unwrap_or(0.0)
        + summary["simulated_usd"].as_f64().unwrap_or(0.0);
    assert!(rows_usd > 0.0);
    assert!(
        (rows_usd - summary_usd).abs() < 1e-9,
        "rows {rows_usd} vs summary {summary_usd}"
    );
    // The roll-up holds the same, and the session is closed with the command's exit code.
    assert_eq!(db.count("SELECT sum(requests) FROM usage_daily"), n);
    assert_eq!(
        db.count("SELECT sum(cost_nusd) FROM usage_daily"),
        db.count("SELECT sum(cost_nusd) FROM requests")
    );
    let id = summary["session_id"].as_str().unwrap();
    assert_eq!(
        db.scalar(&format!(
            "SELECT exit_code FROM sessions WHERE id = '{id}' AND ended_ms IS NOT NULL"
        )),
        "0"
    );
}

fn record(id: &str, session: &Arc<str>, started_ms: i64) -> RequestRecord {
    let mut r = RequestRecord::new(id.to_owned(), Some(Arc::clone(session)), started_ms, "chat");
    r.provider = Some("p".to_owned());
    r.requested_model = Some("gpt-4o-mini".to_owned());
    r.served_model = Some("gpt-4o-mini".to_owned());
    r.status = 200;
    r.prompt_tokens = Some(10);
    r.completion_tokens = Some(5);
    r.cost_usd = Some(0.000_123_456_789);
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

/// (b) The same batch written twice (as a retry after a lost answer to COMMIT would): one row
/// per request id, the roll-up counted once, months in partitions of their own.
#[test]
fn a_batch_written_twice_leaves_one_row_each_and_counts_once() {
    let Some(db) = TestDb::create("idem") else {
        return;
    };
    let session: Arc<str> = Arc::from("sess-idem");
    // Two months apart: each gets its partition.
    let (dec, jan) = (1_796_619_600_000, 1_735_732_800_000);
    let batch: Vec<RequestRecord> = (0..300)
        .map(|i| {
            let at = if i % 2 == 0 { dec } else { jan };
            record(&format!("req_{i:028x}"), &session, at + i)
        })
        .chain([{
            // A NUL (PostgreSQL's text refuses it) from a client's model name fails nothing.
            let mut r = record("client-chosen-id", &session, dec);
            r.requested_model = Some("gpt\0odd".to_owned());
            r.served_model = r.requested_model.clone();
            r
        }])
        .collect();
    for _ in 0..2 {
        // A fresh process each time: nothing cached from the first write.
        let ledger = Ledger::open_at(&location(&db)).unwrap();
        ledger.session_started(SessionStart {
            id: session.to_string(),
            parent_id: None,
            kind: "run",
            tag: Some("t".to_owned()),
            program: None,
            cwd: None,
            pid: None,
            started_ms: jan,
            budget_usd: None,
            attribution: Default::default(),
        });
        for r in &batch {
            ledger.record(r.clone());
        }
        ledger.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(ledger.queued(), 0);
        assert_eq!(ledger.dropped(), 0);
    }
    assert_eq!(db.count("SELECT count(*) FROM requests"), 301);
    assert_eq!(db.count("SELECT count(*) FROM attempts"), 301);
    assert_eq!(db.count("SELECT sum(requests) FROM usage_daily"), 301);
    assert_eq!(
        db.count("SELECT sum(cost_nusd) FROM usage_daily"),
        301 * 123_457
    );
    // Two days of one model, and the odd model's day.
    assert_eq!(
        db.count("SELECT count(*) FROM usage_daily WHERE tag = 't'"),
        3
    );
    assert_eq!(db.count("SELECT count(*) FROM request_shapes"), 2);
    assert_eq!(
        db.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'requests'::regclass"),
        2
    );
    let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
    assert_eq!(db.requests_with_ids(&ids), 301);
}

/// Many sessions started and ended in one batch (one statement each way), a daemon's session
/// started twice in the batch (one by one), and a past month's partition dropped under a
/// running writer (found missing and made again): every session ends with what it spent.
#[test]
fn sessions_in_bulk_end_with_their_spend_and_a_dropped_partition_is_made_again() {
    let Some(db) = TestDb::create("bulk") else {
        return;
    };
    let jan = 1_735_732_800_000;
    let start = |id: &str, kind: &'static str| SessionStart {
        id: id.to_owned(),
        parent_id: None,
        kind,
        tag: Some("bulk".to_owned()),
        program: None,
        cwd: None,
        pid: None,
        started_ms: jan,
        budget_usd: None,
        attribution: Default::default(),
    };
    let ledger = Ledger::open_at(&location(&db)).unwrap();
    for round in 0..2 {
        if round == 1 {
            db.execute("DROP TABLE requests_y2025m01");
        }
        let mut ids = Vec::new();
        for s in 0..50 {
            let id = format!("bulk-{round}-{s}");
            ledger.session_started(start(&id, "run"));
            let session: Arc<str> = Arc::from(id.as_str());
            for i in 0..3 {
                ledger.record(record(
                    &format!("req_{round:04x}{s:04x}{i:04x}"),
                    &session,
                    jan + i,
                ));
            }
            ids.push(id);
        }
        ledger.session_started(start("daemon-day", "daemon"));
        ledger.session_started(start("daemon-day", "daemon"));
        for id in ids {
            ledger.session_ended(SessionEnd {
                id,
                ended_ms: jan + 10,
                exit_code: Some(0),
                end_branch: None,
                end_head: None,
            });
        }
        ledger.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(ledger.dropped(), 0);
    }
    assert_eq!(db.count("SELECT count(*) FROM requests"), 150);
    assert_eq!(
        db.count("SELECT count(*) FROM sessions WHERE ended_ms = 1735732800010 AND exit_code = 0"),
        100
    );
    // Each ended with its three rows' cost (round 0's, before their partition was dropped).
    assert_eq!(
        db.count("SELECT count(*) FROM sessions WHERE id LIKE 'bulk-%' AND round(spent_usd * 1e9) = 3 * 123457"),
        100
    );
    assert_eq!(
        db.count("SELECT count(*) FROM sessions WHERE id = 'daemon-day' AND ended_ms IS NULL"),
        1
    );
}

/// Two processes starting together on an empty database: both start, the schema is made once.
#[test]
fn concurrent_first_starts_migrate_once() {
    let Some(db) = TestDb::create("race") else {
        return;
    };
    let location = location(&db);
    let salts: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Ledger::open_at(&location).unwrap().salt().to_owned()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(salts.iter().all(|s| s == &salts[0] && s.len() == 32));
    // One row per migration, each applied once.
    assert_eq!(
        db.count("SELECT count(*) FROM schema_version"),
        smartproxy::ledger::postgres::migrations::CURRENT
    );
}

/// (c) A database a newer smartproxy migrated is refused, by the library and by `run`.
#[test]
fn a_newer_schema_is_refused_with_the_reason() {
    let Some(db) = TestDb::create("newer") else {
        return;
    };
    drop(Ledger::open_at(&location(&db)).unwrap());
    db.execute("INSERT INTO schema_version (version) VALUES (99)");
    match Ledger::open_at(&location(&db)) {
        Err(LedgerError::PostgresTooNew { found: 99, .. }) => {}
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url)
        .args(["run", "--mock", "--", "true"]);
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("schema version 99, newer than this smartproxy knows"),
        "{stderr}"
    );
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url).arg("doctor");
    let out = support::run_to_end(cmd);
    let stdout = support::text(&out.stdout);
    assert!(stdout.contains("schema version 99"), "{stdout}");
}

/// (d) A daemon under load gets SIGTERM: every request answered 200 has its row.
#[test]
fn a_daemon_stopped_under_load_keeps_every_answered_row() {
    let Some(db) = TestDb::create("sigterm") else {
        return;
    };
    let env = TestEnv::new();
    let config = env.write("sp.yaml", MOCK_CONFIG);
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &db.url)]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (base, stop) = (daemon.listen.clone(), Arc::clone(&stop));
            let (answered, count) = (Arc::clone(&answered), Arc::clone(&count));
            runtime.spawn(async move {
                let client = support::http_client();
                // Bounded: the daemon stops long before, and a dead one fails the send.
                for _ in 0..5000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(resp) = client
                        .post(format!("{base}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .body(support::chat_body("gpt-4o-mini", false, "hi"))
                        .send()
                        .await
                    else {
                        break;
                    };
                    let id = resp
                        .headers()
                        .get("x-smartproxy-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let ok = resp.status().as_u16() == 200;
                    if resp.text().await.is_err() {
                        break;
                    }
                    if let Some(id) = id.filter(|_| ok) {
                        answered.lock().unwrap().push(id);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < 300 {
        assert!(Instant::now() < deadline, "too little load");
        support::pause(Duration::from_millis(10));
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let out = daemon.wait();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = runtime.block_on(client);
    }
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 300);
    assert_eq!(
        db.requests_with_ids(&answered),
        answered.len() as i64,
        "rows lost"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM requests"),
        db.count("SELECT sum(requests) FROM usage_daily")
    );
}

/// (e) A URL that is not one is a config error naming the key (or the variable), its password
/// never shown.
#[test]
fn a_bad_url_is_a_config_error_naming_the_key() {
    let env = TestEnv::new();
    let bad = "postgres://bob:hunter2@db.example:notaport/team";
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", bad)
        .args(["run", "--mock", "--", "true"]);
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("SMARTPROXY_DB"), "{stderr}");
    assert!(stderr.contains("postgres://bob:***@db.example"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let config = env.write(
        "sp.yaml",
        &format!("{MOCK_CONFIG}database: \"postgres://bob:hunter2@db.example/\"\n"),
    );
    let mut cmd = env.command();
    cmd.env_remove("SMARTPROXY_DB")
        .args(["stats", "--config", config.to_str().unwrap()]);
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("sp.yaml:4: `database`"), "{stderr}");
    assert!(stderr.contains("names no database"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// (f) A read command whose PostgreSQL cannot be reached says so in one line, and opens no
/// file named after the URL.
#[test]
fn prune_and_budget_against_an_unreachable_postgres_say_so_in_one_line() {
    let env = TestEnv::new();
    let url = "postgres://bob:hunter2@127.0.0.1:1/team";
    // `stats`, `sessions`, `status` and `export` read PostgreSQL (tests/ledger_backends.rs),
    // `prune` (tests/pg_prune.rs) and `budget` (tests/pg_scopes.rs) too: unreachable, each is
    // a one-line error without the password.
    for args in [&["prune", "--older-than", "30d"][..], &["budget"]] {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_DB", url).args(args);
        let out = support::run_to_end(cmd);
        let stderr = support::text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("PostgreSQL ledger"), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// `n` requests one after another; the ids of those answered 200.
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
            let id = resp.headers()["x-smartproxy-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(resp.status().as_u16(), 200);
            resp.text().await.unwrap();
            ids.push(id);
        }
        ids
    })
}

/// PostgreSQL goes away under a daemon and comes back: requests keep being answered, the
/// writer keeps its rows and writes them once it is back, each once.
#[test]
fn rows_written_while_postgres_is_down_arrive_when_it_is_back() {
    let Some(cluster) = support::postgres::PrivateCluster::start() else {
        return;
    };
    let env = TestEnv::new();
    let config = env.write("sp.yaml", MOCK_CONFIG);
    let url = cluster.url("ledger");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &url)]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ids = send_chats(&runtime, &daemon.listen, 20);
    cluster.down();
    ids.extend(send_chats(&runtime, &daemon.listen, 30));
    daemon.wait_for_log("spooling rows locally", 1);
    cluster.up();
    ids.extend(send_chats(&runtime, &daemon.listen, 10));
    let out = daemon.stop();
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_eq!(cluster.requests_with_ids(&ids), 60, "{stderr}");
    assert_eq!(cluster.count("SELECT count(*) FROM requests"), 60);
    assert_eq!(cluster.count("SELECT sum(requests) FROM usage_daily"), 60);
}

/// (g) A daemon's `/admin/stats` reads today's totals from its PostgreSQL ledger (it said "not
/// read from a PostgreSQL ledger yet"): every request it answered, under the model asked for.
#[test]
fn admin_stats_totals_a_postgres_ledger() {
    let Some(db) = TestDb::create("adminstats") else {
        return;
    };
    let env = TestEnv::new();
    let config = env.write("sp.yaml", MOCK_CONFIG);
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &db.url)]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ids = send_chats(&runtime, &daemon.listen, 4);
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.requests_with_ids(&ids) < ids.len() as i64 {
        assert!(Instant::now() < deadline, "the rows never arrived");
        support::pause(Duration::from_millis(20));
    }
    let body = runtime.block_on(async {
        let resp = support::http_client()
            .get(format!("{}/admin/stats", daemon.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    });
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["total"]["requests"], 4, "{stats}");
    let models: Vec<&str> = stats["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["key"].as_str())
        .collect();
    assert_eq!(models, ["gpt-4o-mini"], "{stats}");
}

/// (h) A read stuck behind a lock (another session holding the tables, as a partition being
/// dropped does) fails with PostgreSQL's reason once the lock timeout passes; the command never
/// hangs.
#[test]
fn a_read_behind_a_held_lock_fails_instead_of_hanging() {
    let Some(db) = TestDb::create("locked") else {
        return;
    };
    let env = TestEnv::new();
    let stats = || {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_DB", &db.url).args(["stats", "--json"]);
        cmd
    };
    // The first read makes the schema.
    let out = support::run_to_end(stats());
    assert!(out.status.success(), "{}", support::text(&out.stderr));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let holder = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "BEGIN; LOCK TABLE requests, usage_daily, sessions IN ACCESS EXCLUSIVE MODE",
            )
            .await
            .unwrap();
        client
    });
    let started = Instant::now();
    let out = support::run_to_end(stats());
    let took = started.elapsed();
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success(), "a locked read succeeded?");
    assert!(stderr.contains("lock timeout"), "{stderr}");
    assert!(took < Duration::from_secs(15), "waited {took:?}");
    drop(holder);
}
