//! Per-key, per-user and per-team budgets on a team ledger (issue 20, items 4 and 8): a team
//! key's own daily limit refuses it once spent while a teammate's key still works, a team
//! limit stops both, a user limit set while the daemon runs is enforced within 5 s, `budget
//! --json` lists every scope with what it spent, and `stats --by user` over part of a day
//! names the user. Each test in a database of its own (`TestDb`), with the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::postgres::TestDb;
use support::upstream::MockUpstream;
use support::{TestEnv, post_chat, run_to_end, text};

/// How soon every daemon must enforce a limit change.
const WITHIN: Duration = Duration::from_secs(5);

/// gpt-4o with `max_tokens: 100` reserves about $0.00103; the mock's reply (21 prompt and 7
/// completion tokens) costs $0.0001225.
fn body() -> String {
    serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

const BUDGET: &str = "budget:\n  timezone: utc\n  on_exceed: refuse\n";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `smartproxy ARGS` on the test's database with `config`.
fn cli(env: &TestEnv, db: &TestDb, config: &Path, args: &[&str]) -> Output {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url)
        .arg("--config")
        .arg(config)
        .args(args);
    let out = run_to_end(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    out
}

/// `keys create --json ARGS`: the new key.
fn create(env: &TestEnv, db: &TestDb, config: &Path, args: &[&str]) -> String {
    let out = cli(
        env,
        db,
        config,
        &[&["keys", "create", "--json"][..], args].concat(),
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    made["key"].as_str().unwrap().to_owned()
}

/// One request with `key`: its status and error body.
fn send(rt: &tokio::runtime::Runtime, daemon: &Daemon, key: &str) -> (u16, serde_json::Value) {
    let base = format!("{}/v1", daemon.listen);
    let reply = rt.block_on(post_chat(&base, Some(key), body()));
    let json = if reply.status == 200 {
        serde_json::Value::Null
    } else {
        reply.json()
    };
    (reply.status, json)
}

/// Asserts a 429 `budget_exceeded` from the limit `which` (e.g. `key daily`).
fn assert_refused_by(status: u16, json: &serde_json::Value, which: &str) {
    assert_eq!(status, 429, "{json}");
    assert_eq!(json["error"]["code"], "budget_exceeded", "{json}");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(which), "wanted {which}: {message}");
}

/// Sends requests with `key` until `until` holds for a reply or `deadline` passes.
fn until(
    rt: &tokio::runtime::Runtime,
    daemon: &Daemon,
    key: &str,
    deadline: Instant,
    until: impl Fn(u16) -> bool,
) -> (u16, serde_json::Value) {
    loop {
        let (status, json) = send(rt, daemon, key);
        if until(status) {
            return (status, json);
        }
        assert!(
            Instant::now() < deadline,
            "still {status} ({json}); daemon stderr:\n{}",
            daemon.stderr()
        );
        support::pause(Duration::from_millis(25));
    }
}

/// The scope `scope` of `period` in `budget --json`.
fn scope<'a>(budget: &'a serde_json::Value, scope: &str, period: &str) -> &'a serde_json::Value {
    budget["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == scope && s["period"] == period)
        .unwrap_or_else(|| panic!("no {scope} {period} in {budget}"))
}

/// What the requests of the key named `key` cost, in nano-dollars.
fn cost_of_key(db: &TestDb, key: &str) -> i64 {
    db.count(&format!(
        "SELECT COALESCE(sum(r.cost_nusd), 0)::bigint FROM requests r
         JOIN strings st ON st.id = r.session JOIN sessions s ON s.id = st.text
         WHERE s.kind = 'daemon' AND s.tag = '{key}'"
    ))
}

#[test]
fn a_keys_limit_refuses_it_alone_and_a_team_limit_stops_the_whole_team() {
    let Some(db) = TestDb::create("scopeskey") else {
        return;
    };
    let rt = runtime();
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), BUDGET);
    // Room for a few requests (each reserves $0.00103 and costs $0.0001225).
    let ana = create(
        &env,
        &db,
        &config,
        &[
            "--user", "ana", "--team", "search", "--daily", "0.0015", "ana-a",
        ],
    );
    let bo = create(
        &env,
        &db,
        &config,
        &["--user", "bo", "--team", "search", "bo-b"],
    );
    let started_ms = smartproxy::ledger::now_ms();
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &db.url)],
    );

    // Ana's key is served until its own daily limit is spent, then refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, json) = until(&rt, &daemon, &ana, deadline, |s| s != 200);
    assert_refused_by(status, &json, "key daily");
    // Bo, on the same team, has no limit of his own: still served.
    assert_eq!(send(&rt, &daemon, &bo).0, 200);

    // A team limit below one request's reservation stops both keys, within 5 s.
    cli(
        &env,
        &db,
        &config,
        &["keys", "limit", "--team", "search", "--daily", "0.001"],
    );
    let set = Instant::now();
    let (status, json) = until(&rt, &daemon, &bo, set + WITHIN, |s| s != 200);
    assert_refused_by(status, &json, "team daily");
    let (status, _) = send(&rt, &daemon, &ana);
    assert_eq!(status, 429);

    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Every scope that counted is listed, with what its requests cost.
    let out = cli(&env, &db, &config, &["budget", "--json"]);
    let budget: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(budget["backend"], "postgres");
    let key_scope = scope(&budget, "key:ana-a", "day");
    let spent_nusd = (key_scope["spent_usd"].as_f64().unwrap() * 1e9).round() as i64;
    assert!(spent_nusd > 0, "{budget}");
    assert_eq!(spent_nusd, cost_of_key(&db, "ana-a"), "{budget}");
    assert_eq!(key_scope["cap_usd"], 0.0015);
    assert_eq!(key_scope["reserved_usd"], 0.0);
    let left = key_scope["left_usd"].as_f64().unwrap();
    assert!(
        (left - (0.0015 - spent_nusd as f64 / 1e9)).abs() < 1e-9,
        "{budget}"
    );
    // The team's counter came with its limit, after every request it would have let in.
    let team_scope = scope(&budget, "team:search", "day");
    assert_eq!(team_scope["cap_usd"], 0.001);
    assert_eq!(team_scope["spent_usd"], 0.0);
    let out = cli(&env, &db, &config, &["budget"]);
    let table = text(&out.stdout);
    for needle in ["key:ana-a", "team:search", "runs out", "left"] {
        assert!(table.contains(needle), "{needle}: {table}");
    }

    // Requests carry their key's user, so part of a day reads per user from the rows.
    let since = chrono::DateTime::from_timestamp_millis(started_ms - 1)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = cli(
        &env,
        &db,
        &config,
        &["stats", "--by", "user", "--since", &since, "--json"],
    );
    let stats = text(&out.stdout);
    assert!(
        stats.contains("\"ana\"") && stats.contains("\"bo\""),
        "{stats}"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM requests r JOIN strings u ON u.id = r.user_name
             JOIN strings t ON t.id = r.team WHERE u.text = 'ana' AND t.text = 'search'"
        ),
        db.count(
            "SELECT count(*) FROM requests r JOIN strings st ON st.id = r.session
             JOIN sessions s ON s.id = st.text WHERE s.tag = 'ana-a'"
        )
    );
}

#[test]
fn a_user_limit_set_while_the_daemon_runs_is_enforced_within_5s() {
    let Some(db) = TestDb::create("scopesuser") else {
        return;
    };
    let rt = runtime();
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), BUDGET);
    let cy = create(
        &env,
        &db,
        &config,
        &["--user", "cy", "--team", "infra", "cy-1"],
    );
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &db.url)],
    );
    assert_eq!(send(&rt, &daemon, &cy).0, 200);

    let out = cli(
        &env,
        &db,
        &config,
        &[
            "keys", "limit", "--user", "cy", "--daily", "0.0005", "--json",
        ],
    );
    let set = Instant::now();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["daily_usd"], 0.0005);
    let (status, json) = until(&rt, &daemon, &cy, set + WITHIN, |s| s != 200);
    assert_refused_by(status, &json, "user daily");

    // Listed, and cleared again: served again.
    let out = cli(&env, &db, &config, &["keys", "limit", "--json"]);
    let limits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(limits["users"][0]["name"], "cy", "{limits}");
    cli(
        &env,
        &db,
        &config,
        &["keys", "limit", "--user", "cy", "--clear"],
    );
    let cleared = Instant::now();
    until(&rt, &daemon, &cy, cleared + WITHIN, |s| s == 200);
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// An unreachable PostgreSQL is an error in one line (never a `$0`), its password not shown.
#[test]
fn budget_on_an_unreachable_postgres_says_so() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", "postgres://bob:hunter2@127.0.0.1:1/team")
        .args(["budget", "--json"]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
