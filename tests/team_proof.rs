//! The proof of team mode (issue 20): three daemons and eight `run` sessions, 16 clients each,
//! on one PostgreSQL ledger with one shared daily limit hit mid-way. Every reply a client got
//! has exactly one row, the limit is passed by no more than what was in flight when it was
//! reached, and every daemon reads the same totals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::postgres::TestDb;
use support::upstream::{Behavior, MockUpstream};
use support::{RunSession, TestEnv};

const DAEMONS: usize = 3;
const RUNS: usize = 8;
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 20;
/// Prompt tokens a dear reply bills.
const DEAR_PROMPT_TOKENS: u64 = 400;

/// gpt-4o with `max_tokens: 100`: the reservation is sized for 100 output tokens and the
/// prompt's estimate; the mock's usual reply bills 21 prompt and 7 completion tokens.
fn body() -> String {
    serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

fn budget_yaml(daily_usd: f64) -> String {
    format!("budget:\n  daily_usd: {daily_usd}\n  timezone: utc\n  on_exceed: refuse\n")
}

/// What one client saw of one request.
struct Seen {
    status: u16,
    id: String,
    code: Option<String>,
}

/// `n` requests in a row to `base` (`.../v1`) with `key`.
async fn client(base: String, key: Option<String>, n: usize) -> Vec<Seen> {
    let http = support::http_client();
    let mut seen = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req = http
            .post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .body(body());
        if let Some(key) = &key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let id = resp.headers()["x-smartproxy-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = resp.text().await.unwrap();
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        seen.push(Seen { status, id, code });
    }
    seen
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (with a deadline) until `f` returns `want`.
fn wait_until(f: impl Fn() -> i64, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = f();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {got}, wanted {want}");
        support::pause(Duration::from_millis(50));
    }
}

/// The reservation one request takes, in nano-dollars: read from PostgreSQL while a request
/// held at the upstream is in flight.
fn measure_reservation(rt: &tokio::runtime::Runtime, db: &TestDb, base: &str) -> i64 {
    let base = base.to_owned();
    let held = rt.spawn(async move { client(base, None, 1).await });
    wait_until(
        || db.count("SELECT count(*) FROM budget_reservations WHERE NOT released"),
        1,
        "the held request's reservation",
    );
    let reserved = db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'");
    let seen = rt.block_on(held).unwrap();
    assert_eq!(seen[0].status, 200);
    reserved
}

/// `smartproxy --config CONFIG stats --json` in `env`, on the team ledger: its `total`.
fn stats_total(env: &TestEnv, config: &std::path::Path, url: &str) -> serde_json::Value {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", url)
        .arg("--config")
        .arg(config)
        .args(["stats", "--json"]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["total"].clone()
}

/// A daemon's `/admin/budget`: the shared daily standing.
fn admin_daily(rt: &tokio::runtime::Runtime, daemon: &Daemon) -> serde_json::Value {
    let url = format!("{}/admin/budget", daemon.admin);
    let body = rt.block_on(async {
        let resp = support::http_client().get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    });
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(value["daily"].is_object(), "{body}");
    value["daily"].clone()
}

#[test]
fn many_processes_one_ledger_one_limit_one_set_of_totals() {
    let started = Instant::now();
    let Some(db) = TestDb::create("proof") else {
        return;
    };
    let rt = runtime();
    let total = (DAEMONS + RUNS) * CLIENTS * REQUESTS_PER_CLIENT;
    let upstream = MockUpstream::start();
    // The first request waits at the upstream so its reservation can be read. Then one reply
    // in four bills 400 prompt tokens and all 100 output tokens: dearer than its reservation
    // (the prompt is estimated at a few tokens), so in-flight requests can pass the limit and
    // (b) tests a real bound, not just `spent <= cap`.
    upstream.push([Behavior::SlowFirstByte(Duration::from_millis(1500))]);
    upstream.push((0..total).map(|i| {
        if i % 4 == 0 {
            Behavior::SpendsAll {
                prompt_tokens: DEAR_PROMPT_TOKENS,
                usage_extra: serde_json::json!({}),
            }
        } else {
            Behavior::Ok
        }
    }));
    // Priced at gpt-4o's list price: $2.50 / 1M in, $10 / 1M out.
    let cheap_nusd: i64 = 21 * 2_500 + 7 * 10_000;
    let dear_nusd = DEAR_PROMPT_TOKENS as i64 * 2_500 + 100 * 10_000;
    // Room for about half of what the clients ask for: the limit is hit mid-way.
    let cap_nusd = (3 * cheap_nusd + dear_nusd) * total as i64 / 8;
    let cap_usd = cap_nusd as f64 / 1e9;
    let url = db.url.clone();
    let envs: Vec<TestEnv> = (0..DAEMONS).map(|_| TestEnv::new()).collect();
    let configs: Vec<_> = envs
        .iter()
        .map(|env| env.upstream_config(&upstream.base_url(), &budget_yaml(cap_usd)))
        .collect();
    let daemons: Vec<Daemon> = envs
        .iter()
        .zip(&configs)
        .map(|(env, config)| {
            let vars = [("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", url.as_str())];
            Daemon::start(env, config, &[], &vars)
        })
        .collect();
    let reservation_nusd = measure_reservation(&rt, &db, &format!("{}/v1", daemons[0].listen));
    let runs_env = TestEnv::new();
    let runs_config = runs_env.upstream_config(&upstream.base_url(), &budget_yaml(cap_usd));
    let runs: Vec<RunSession> = (0..RUNS)
        .map(|_| {
            runs_env.start_run(
                &["run", "--config", runs_config.to_str().unwrap()],
                &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &url)],
            )
        })
        .collect();

    let mut tasks = Vec::new();
    let targets = daemons
        .iter()
        .map(|d| (format!("{}/v1", d.listen), None))
        .chain(
            runs.iter()
                .map(|r| (r.base_url.clone(), Some(r.key.clone()))),
        );
    for (base, key) in targets {
        for _ in 0..CLIENTS {
            tasks.push(rt.spawn(client(base.clone(), key.clone(), REQUESTS_PER_CLIENT)));
        }
    }
    let mut seen: Vec<Seen> = vec![];
    for task in tasks {
        seen.extend(rt.block_on(task).unwrap());
    }
    let (mut ok, mut refused) = (0usize, 0usize);
    for s in &seen {
        match (s.status, s.code.as_deref()) {
            (200, _) => ok += 1,
            (429, Some("budget_exceeded")) => refused += 1,
            (status, code) => {
                // The daemons' logs say why (the runs' come with their exit, too late here).
                let logs: Vec<String> = daemons.iter().map(Daemon::stderr).collect();
                panic!(
                    "unexpected {status} ({code:?}) for {}; daemons' stderr:\n{}",
                    s.id,
                    logs.join("\n---\n")
                )
            }
        }
    }
    assert_eq!(seen.len(), total);
    assert!(
        ok > 0 && refused > 0,
        "the limit was not hit mid-way: {ok} served, {refused} refused"
    );
    // The measuring request counts too.
    assert_eq!(
        upstream.calls(),
        ok + 1,
        "a refusal never reaches the upstream"
    );

    let ids: Vec<String> = seen.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "two replies carried one request id"
    );
    // (a) Every reply has its row, once, while the processes still run (written off the
    // request path, so waited for).
    wait_until(
        || db.requests_with_ids(&ids),
        ids.len() as i64,
        "rows for the replies the clients got",
    );
    wait_until(
        || db.count("SELECT reserved_nusd FROM budget_counters WHERE scope = 'daily'"),
        0,
        "reservations still held after every row was written",
    );

    // (c) Every daemon's `/admin/budget` and `stats --json` read the same totals.
    let standing = admin_daily(&rt, &daemons[0]);
    for daemon in &daemons[1..] {
        assert_eq!(admin_daily(&rt, daemon), standing);
    }
    let totals: Vec<serde_json::Value> = envs
        .iter()
        .zip(&configs)
        .map(|(env, config)| stats_total(env, config, &url))
        .chain([stats_total(&runs_env, &runs_config, &url)])
        .collect();
    for t in &totals[1..] {
        assert_eq!(t, &totals[0]);
    }
    assert_eq!(totals[0]["requests"], total + 1);
    assert_eq!(totals[0]["ok"], ok + 1);

    for run in runs {
        let out = run.finish(0);
        assert!(out.status.success(), "{}", support::text(&out.stderr));
    }
    for daemon in daemons {
        let out = daemon.stop();
        assert!(out.status.success(), "{}", support::text(&out.stderr));
    }

    // (a) again once everything stopped: rows = replies (+ the measuring one), no duplicate,
    // refusals filed as such.
    assert_eq!(db.count("SELECT count(*) FROM requests"), total as i64 + 1);
    assert_eq!(
        db.count("SELECT count(*) - count(DISTINCT id) FROM requests"),
        0
    );
    assert_eq!(db.requests_with_ids(&ids), total as i64);
    assert_eq!(
        db.count("SELECT sum(requests) FROM usage_daily"),
        total as i64 + 1
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM requests r JOIN request_shapes s ON s.id = r.shape \
             WHERE s.error_code = 'budget_exceeded'"
        ),
        refused as i64
    );

    // (b) The limit held within what was in flight when it was reached: at the last admission
    // spent + reserved <= cap, and each request then in flight (at most one per client) can
    // pass its reservation by no more than its real cost above it.
    let spent = db.count("SELECT spent_nusd FROM budget_counters WHERE scope = 'daily'");
    let spent_rows = db.count("SELECT COALESCE(sum(cost_nusd), 0) FROM requests");
    assert_eq!(spent, spent_rows, "the counter holds what the rows cost");
    let max_cost = db.count("SELECT max(cost_nusd) FROM requests");
    assert_eq!(
        max_cost, dear_nusd,
        "the dear replies were priced as expected"
    );
    let in_flight = ((DAEMONS + RUNS) * CLIENTS) as i64;
    let bound = cap_nusd + in_flight * (max_cost - reservation_nusd).max(0);
    assert!(
        spent <= bound,
        "spent {spent} n$ over a cap of {cap_nusd} n$ (bound {bound}: {in_flight} in flight, \
         reservation {reservation_nusd}, dearest reply {max_cost})"
    );
    assert_eq!(db.count("SELECT count(*) FROM budget_reservations"), 0);
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "the proof took {:?}",
        started.elapsed()
    );
}
