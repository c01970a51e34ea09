//! Shared budgets in a PostgreSQL ledger (issue 20, item 4): three daemons on one database keep
//! one daily limit, a killed daemon's reservation comes back after its expiry, an unreachable
//! PostgreSQL refuses budgeted requests with 503 (or serves them on the offline grace), and a
//! settle tried again counts once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::postgres::budget::{self, Admit, Scope};
use smartproxy::ledger::{Ledger, RequestRecord};
use support::daemon::Daemon;
use support::postgres::TestDb;
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat};

/// gpt-4o with `max_tokens: 100` reserves about $0.00103; the mock's reply (21 prompt and 7
/// completion tokens) costs $0.0001225.
fn body() -> String {
    serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

fn budget_yaml(daily: &str, extra: &str) -> String {
    format!("budget:\n  daily_usd: {daily}\n  timezone: utc\n  on_exceed: refuse\n{extra}")
}

/// Waits (with a deadline) until `sql`'s count is `want`.
fn wait_count(db_count: impl Fn() -> i64, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = db_count();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {got}, wanted {want}");
        support::pause(Duration::from_millis(20));
    }
}

/// (a) Three daemons, 16 clients each, one daily limit: every reply is a 200 or a 429
/// `budget_exceeded`, what was spent never passes the cap (reservations are never below the
/// real cost, so in-flight overspend is nil), and once the rows are written the counter holds
/// exactly their cost and nothing reserved.
#[test]
fn three_daemons_share_one_daily_limit() {
    let rt = runtime();
    let Some(db) = TestDb::create("threed") else {
        return;
    };
    let cap = 0.01;
    let upstream = MockUpstream::start();
    upstream.push((0..400).map(|_| Behavior::SlowFirstByte(Duration::from_millis(30))));
    let envs: Vec<TestEnv> = (0..3).map(|_| TestEnv::new()).collect();
    let daemons: Vec<Daemon> = envs
        .iter()
        .map(|env| {
            let config = env.upstream_config(&upstream.base_url(), &budget_yaml("0.01", ""));
            Daemon::start(
                env,
                &config,
                &[],
                &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &db.url)],
            )
        })
        .collect();
    let mut clients = Vec::new();
    for daemon in &daemons {
        for _ in 0..16 {
            let base = format!("{}/v1", daemon.listen);
            clients.push(rt.spawn(async move {
                let mut replies = Vec::new();
                for _ in 0..6 {
                    replies.push(post_chat(&base, None, body()).await);
                }
                replies
            }));
        }
    }
    let (mut ok, mut refused) = (0, 0);
    for client in clients {
        for reply in rt.block_on(client).unwrap() {
            match reply.status {
                200 => ok += 1,
                429 => {
                    refused += 1;
                    let json = reply.json();
                    assert_eq!(json["error"]["code"], "budget_exceeded", "{}", reply.body);
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
                other => panic!("unexpected {other}: {}", reply.body),
            }
        }
    }
    assert_eq!(ok + refused, 3 * 16 * 6);
    assert!(ok > 0 && refused > 0, "{ok} served, {refused} refused");
    assert_eq!(
        upstream.calls(),
        ok,
        "a refused request never reaches the upstream"
    );
    for daemon in daemons {
        let out = daemon.stop();
        assert!(out.status.success(), "{}", support::text(&out.stderr));
    }
    // Every request has its row; refusals are filed as such.
    assert_eq!(
        db.count("SELECT count(*) FROM requests"),
        (ok + refused) as i64
    );
    let spent_rows = db.count("SELECT COALESCE(sum(cost_nusd), 0) FROM requests");
    let spent_counter = db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'");
    assert_eq!(
        spent_counter, spent_rows,
        "the counter holds what the rows cost"
    );
    assert!(
        spent_counter as f64 / 1e9 <= cap + 1e-9,
        "spent {spent_counter} nano-dollars over a cap of {cap}"
    );
    assert_eq!(
        db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'"),
        0
    );
    assert_eq!(db.count("SELECT count(*) FROM budget_reservations"), 0);
}

/// (b) A daemon killed (SIGKILL) while its request waits on a slow upstream leaves its
/// reservation; another daemon is refused while it holds and served once it expired.
#[test]
fn a_killed_daemons_reservation_is_released_after_its_expiry() {
    let rt = runtime();
    let Some(db) = TestDb::create("killed") else {
        return;
    };
    let upstream = MockUpstream::start();
    upstream.push([Behavior::SlowFirstByte(Duration::from_secs(60))]);
    // Room for one reservation at a time.
    let yaml = budget_yaml("0.0015", "  reservation_expiry_s: 4\n");
    let env_a = TestEnv::new();
    let config_a = env_a.upstream_config(&upstream.base_url(), &yaml);
    let envs = [("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", db.url.as_str())];
    let a = Daemon::start(&env_a, &config_a, &[], &envs);
    let base_a = format!("{}/v1", a.listen);
    let hung = rt.spawn(async move {
        let _ = support::http_client()
            .post(format!("{base_a}/chat/completions"))
            .header("content-type", "application/json")
            .body(body())
            .send()
            .await;
    });
    wait_count(
        || db.count("SELECT count(*) FROM budget_reservations"),
        1,
        "the slow request's reservation",
    );
    a.signal(nix::sys::signal::Signal::SIGKILL);
    drop(a.wait());
    rt.block_on(hung).unwrap();
    assert!(db.count("SELECT reserved_nusd FROM budget_counters") > 0);
    let expires_ms = db.count("SELECT expires_ms FROM budget_reservations");

    let env_b = TestEnv::new();
    let config_b = env_b.upstream_config(&upstream.base_url(), &yaml);
    let b = Daemon::start(&env_b, &config_b, &[], &envs);
    let base_b = format!("{}/v1", b.listen);
    let now_ms = || smartproxy::ledger::now_ms();
    if now_ms() + 1000 < expires_ms {
        let reply = rt.block_on(post_chat(&base_b, None, body()));
        assert_eq!(reply.status, 429, "{}", reply.body);
        assert_eq!(reply.json()["error"]["code"], "budget_exceeded");
    }
    // Once it expired, the next request releases it and fits.
    let deadline = Instant::now() + Duration::from_secs(20);
    while now_ms() <= expires_ms {
        assert!(Instant::now() < deadline);
        support::pause(Duration::from_millis(50));
    }
    let reply = rt.block_on(post_chat(&base_b, None, body()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        db.scalar("SELECT released FROM budget_reservations WHERE expires_ms = (SELECT min(expires_ms) FROM budget_reservations)"),
        "t"
    );
    drop(b.stop());
    assert_eq!(db.count("SELECT reserved_nusd FROM budget_counters"), 0);
    assert_eq!(
        db.count("SELECT spent_nusd FROM budget_counters"),
        db.count("SELECT COALESCE(sum(cost_nusd), 0) FROM requests")
    );
}

/// (c) PostgreSQL stopped: a budgeted request is refused 503 `budget_store_unavailable` with
/// `x-should-retry: true`; with `offline_grace_usd` it is served until the grace is spent; a
/// daemon with no budget keeps serving.
#[test]
fn an_unreachable_postgres_fails_closed_unless_graced() {
    let rt = runtime();
    let Some(cluster) = support::postgres::PrivateCluster::start() else {
        return;
    };
    let upstream = MockUpstream::start();
    let url = cluster.url("ledger");
    let envs = [("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", url.as_str())];
    let start = |extra: &str| {
        let env = TestEnv::new();
        let config = env.upstream_config(&upstream.base_url(), extra);
        let daemon = Daemon::start(&env, &config, &[], &envs);
        (env, daemon)
    };
    let (_e1, strict) = start(&budget_yaml("1", ""));
    let (_e2, graced) = start(&budget_yaml("1", "  offline_grace_usd: 0.002\n"));
    let (_e3, open) = start("");
    let strict_base = format!("{}/v1", strict.listen);
    let graced_base = format!("{}/v1", graced.listen);
    let open_base = format!("{}/v1", open.listen);
    assert_eq!(
        rt.block_on(post_chat(&strict_base, None, body())).status,
        200
    );
    cluster.down();

    let reply = rt.block_on(post_chat(&strict_base, None, body()));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.headers["x-should-retry"], "true");
    let json = reply.json();
    assert_eq!(json["error"]["code"], "budget_store_unavailable");
    assert_eq!(json["error"]["type"], "server_error");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(
        !message.contains("127.0.0.1"),
        "no server address for clients: {message}"
    );

    // The grace ($0.002) takes a reservation of ~$0.00103 and settles it to ~$0.00012: a
    // dozen requests or so, then the same 503 saying the grace is used up.
    let mut served = 0;
    let refused = loop {
        let reply = rt.block_on(post_chat(&graced_base, None, body()));
        match reply.status {
            200 => served += 1,
            503 => break reply,
            other => panic!("unexpected {other}: {}", reply.body),
        }
        assert!(served < 40, "the grace never ran out");
    };
    assert!(served >= 2, "served {served} on the grace");
    assert_eq!(refused.headers["x-should-retry"], "true");
    let json = refused.json();
    assert_eq!(json["error"]["code"], "budget_store_unavailable");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offline grace"),
        "{}",
        refused.body
    );
    // No budget, no PostgreSQL needed to serve.
    assert_eq!(rt.block_on(post_chat(&open_base, None, body())).status, 200);

    // Back up: the refusals and the graced requests are in the ledger like any other row.
    cluster.up();
    drop(strict.stop());
    drop(graced.stop());
    drop(open.stop());
    assert_eq!(
        cluster.count("SELECT count(*) FROM requests r JOIN request_shapes s ON s.id = r.shape WHERE s.error_code = 'budget_store_unavailable'"),
        2
    );
    assert!(
        cluster.count("SELECT count(*) FROM requests WHERE budget_action LIKE 'offline grace%'")
            >= served
    );
}

/// `run` with a session budget and a daily limit starts on a PostgreSQL ledger (the first step
/// of team mode refused to) and settles its requests there.
#[test]
fn run_keeps_its_budgets_on_postgres() {
    let Some(db) = TestDb::create("runbudget") else {
        return;
    };
    let rt = runtime();
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), &budget_yaml("1", ""));
    let session = env.start_run(
        &["run", "--budget", "5", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &db.url)],
    );
    for _ in 0..3 {
        let reply = rt.block_on(post_chat(&session.base_url, Some(&session.key), body()));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.headers.contains_key("x-smartproxy-budget-remaining"));
    }
    let out = session.finish(0);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    assert_eq!(db.count("SELECT count(*) FROM requests"), 3);
    assert_eq!(
        db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'"),
        db.count("SELECT sum(cost_nusd) FROM requests")
    );
    assert_eq!(db.count("SELECT reserved_nusd FROM budget_counters"), 0);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn location(db: &TestDb) -> LedgerLocation {
    LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap())
}

/// A pooled connection, as the proxy uses (statements prepared once per connection).
async fn connect(db: &TestDb) -> deadpool_postgres::Object {
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(1)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .unwrap();
    pool.get().await.unwrap()
}

fn daily(cap_usd: f64) -> Vec<Scope> {
    vec![
        Scope {
            scope: "daily".to_owned(),
            period_ms: 1_000,
            from_ms: 1_000,
            cap_usd,
            window_ms: None,
        },
        Scope {
            scope: "key:ci".to_owned(),
            period_ms: 1_000,
            from_ms: 1_000,
            cap_usd: cap_usd * 2.0,
            window_ms: None,
        },
    ]
}

/// (d) Settles tried again (a second transaction, a batch written twice by two processes)
/// count once; admission is all scopes or none; a reservation under an id already held is
/// not counted twice.
#[test]
fn settle_is_idempotent_and_admission_all_or_none() {
    let rt = runtime();
    let Some(db) = TestDb::create("settle") else {
        return;
    };
    // The schema, by opening the ledger once.
    drop(Ledger::open_at(&location(&db)).unwrap());
    let mut client = rt.block_on(connect(&db));
    let scopes = daily(1.0);
    let admit =
        |client: &mut deadpool_postgres::Object, id: &str, usd: f64, now: i64, expires: i64| {
            rt.block_on(budget::admit(client, &scopes, id, usd, now, expires))
                .unwrap()
        };
    let granted = admit(&mut client, "req_a", 0.4, 10, 1_000_000);
    let Admit::Granted(after) = granted else {
        panic!("{granted:?}")
    };
    assert!((after[0].reserved_usd - 0.4).abs() < 1e-9);
    // The same id again holds nothing more.
    admit(&mut client, "req_a", 0.4, 10, 1_000_000);
    assert_eq!(
        db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'"),
        400_000_000
    );
    admit(&mut client, "req_b", 0.5, 10, 1_000_000);
    // 0.4 + 0.5 + 0.2 > 1: refused by `daily`, and `key:ci` (room for it) took nothing either.
    let refused = admit(&mut client, "req_c", 0.2, 10, 1_000_000);
    let Admit::Refused(counter) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(counter.scope, "daily");
    assert_eq!(
        db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'key:ci'"),
        900_000_000
    );
    let settle = |client: &mut deadpool_postgres::Object, id: &str, nusd: i64| {
        rt.block_on(async {
            let tx = client.transaction().await.unwrap();
            budget::settle_costs(&tx, &BTreeMap::from([(id, nusd)]))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
    };

    // Settled twice by hand: counted once.
    for _ in 0..2 {
        settle(&mut client, "req_a", 100_000_000);
    }
    assert_eq!(
        db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'"),
        100_000_000
    );
    assert_eq!(
        db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'"),
        500_000_000
    );

    // Settled by the writer with its row, the same batch written by two processes.
    let mut record = RequestRecord::new(
        format!("req_{:028x}", 11),
        None,
        smartproxy::ledger::now_ms(),
        "chat",
    );
    record.status = 200;
    record.cost_usd = Some(0.25);
    record.reservation_id = Some("req_b".to_owned());
    for _ in 0..2 {
        // A fresh process each time, as a retried batch would be.
        let ledger = Ledger::open_at(&location(&db)).unwrap();
        ledger.record(record.clone());
        ledger.flush(Duration::from_secs(30)).unwrap();
    }
    assert_eq!(db.count("SELECT count(*) FROM requests"), 1);
    assert_eq!(
        db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'"),
        350_000_000
    );
    assert_eq!(
        db.count("SELECT sum(reserved_nusd) FROM budget_counters"),
        0
    );
    assert_eq!(db.count("SELECT count(*) FROM budget_reservations"), 0);

    // An expired reservation is released by the next admission, and a settle that comes after
    // its release still counts the cost (and does not take the amount back twice).
    admit(&mut client, "req_d", 0.6, 10, 20);
    let Admit::Granted(after) = admit(&mut client, "req_e", 0.6, 30, 1_000_000) else {
        panic!("the expired reservation was not released")
    };
    assert!((after[0].reserved_usd - 0.6).abs() < 1e-9, "{after:?}");
    settle(&mut client, "req_d", 10_000_000);
    assert_eq!(
        db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'"),
        600_000_000
    );
    assert_eq!(
        db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'"),
        360_000_000
    );
}
