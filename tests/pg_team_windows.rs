//! Weekly limits and rolling windows for a team ledger's users, teams and keys (`keys limit
//! --weekly --window`, `keys create --weekly --window`), against the real binary on
//! PostgreSQL with the test clock (`SMARTPROXY_TEST_NOW`, debug builds only): a user's 5-hour
//! window holds across midnight while their day starts afresh, refusing with a message naming
//! the user's window and a `Retry-After`, and a teammate is not held by it; `keys limit`,
//! `keys list` and `budget --json` show the windows; bad `--window` values are clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Output;

use support::daemon::Daemon;
use support::postgres::TestDb;
use support::ui::{Ui, get};
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, run_to_end, text};

/// One request (gpt-4o, max_tokens 100, every reply billing all it may) costs $0.001025.
const COST: f64 = 0.001_025;

const BUDGET: &str = "budget:\n  timezone: utc\n  on_exceed: refuse\n";

struct Answer {
    status: u16,
    message: String,
    retry_after: Option<u64>,
}

/// `smartproxy ARGS` on the test's database, its clock reading `now`.
fn cli(env: &TestEnv, db: &TestDb, config: &Path, now: &str, args: &[&str]) -> Output {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url)
        .env("SMARTPROXY_TEST_NOW", now)
        .arg("--config")
        .arg(config)
        .args(args);
    run_to_end(cmd)
}

fn json_ok(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(key, n)` batches of requests to a daemon whose clock reads `now`, stopped after.
async fn requests(
    env: &TestEnv,
    db: &TestDb,
    config: &Path,
    now: &str,
    batches: &[(&str, usize)],
) -> Vec<Vec<Answer>> {
    let envs = [
        ("UPSTREAM_KEY", "k"),
        ("SMARTPROXY_TEST_NOW", now),
        ("SMARTPROXY_DB", db.url.as_str()),
    ];
    let daemon = Daemon::start(env, config, &[], &envs);
    let listen = format!("{}/v1", daemon.listen);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]});
    let mut out = Vec::new();
    for (key, n) in batches {
        let mut answers = Vec::new();
        for _ in 0..*n {
            let reply = post_chat(&listen, Some(key), body.to_string()).await;
            answers.push(Answer {
                status: reply.status,
                message: reply.json()["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                retry_after: reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse().ok()),
            });
        }
        out.push(answers);
    }
    assert!(daemon.stop().status.success());
    out
}

fn codes(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

fn scope(shown: &serde_json::Value, name: &str, period: &str) -> Option<serde_json::Value> {
    shown["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == name && s["period"] == period)
        .cloned()
}

async fn a_users_window(db: &TestDb) {
    let upstream = MockUpstream::start();
    upstream.push((0..20).map(|_| Behavior::SpendsAll {
        prompt_tokens: 10,
        usage_extra: serde_json::json!({}),
    }));
    let env = &TestEnv::new();
    let config = &env.upstream_config(&upstream.base_url(), BUDGET);
    let evening = "2026-12-07T21:30:00Z";
    let key = |user: &str, extra: &[&str]| {
        let args = [
            &[
                "keys", "create", "--json", "--user", user, "--team", "search",
            ][..],
            extra,
        ]
        .concat();
        json_ok(&cli(env, db, config, evening, &args))["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ana = key("ana", &[]);
    let bob = key("bob", &[]);
    // A key of its own week and windows, for `keys list`.
    let made = json_ok(&cli(
        env,
        db,
        config,
        evening,
        &[
            "keys", "create", "--json", "--user", "cy", "--team", "ops", "--weekly", "7",
            "--window", "1h=0.5", "--window", "2d=3", "cy-ci",
        ],
    ));
    assert_eq!(made["weekly_usd"], 7.0, "{made}");
    // A team's week, for `budget`.
    json_ok(&cli(
        env,
        db,
        config,
        evening,
        &["keys", "limit", "--json", "--team", "ops", "--weekly", "40"],
    ));

    // Ana: two requests a day, three in any 5 hours.
    let set = json_ok(&cli(
        env,
        db,
        config,
        evening,
        &[
            "keys", "limit", "--json", "--user", "ana", "--daily", "0.0025", "--window", "5h=0.004",
        ],
    ));
    assert_eq!(
        set["windows"],
        serde_json::json!([{"every_ms": 18_000_000, "usd": 0.004}]),
        "{set}"
    );

    // Monday 21:30: ana's day allows two.
    let night = requests(env, db, config, evening, &[(&ana, 3), (&bob, 1)]).await;
    assert_eq!(codes(&night[0]), [200, 200, 429]);
    assert!(
        night[0][2].message.starts_with("user daily budget"),
        "{}",
        night[0][2].message
    );
    assert_eq!(codes(&night[1]), [200]);

    // 00:30: a new day, but ana's window still holds her evening's two requests.
    let after = requests(
        env,
        db,
        config,
        "2026-12-08T00:30:00Z",
        &[(&ana, 2), (&bob, 3)],
    )
    .await;
    assert_eq!(codes(&after[0]), [200, 429], "ana's window holds");
    let refused = &after[0][1];
    assert!(
        refused
            .message
            .starts_with("user rolling 5h budget $0.004 exceeded"),
        "{}",
        refused.message
    );
    // 21:30's five-minute bucket leaves the window at 02:35.
    assert!(
        refused.message.contains("frees up at 2026-12-08 02:35"),
        "{}",
        refused.message
    );
    let retry = refused.retry_after.expect("a Retry-After");
    assert!((7000..=7500).contains(&retry), "Retry-After {retry}");
    assert_eq!(codes(&after[1]), [200, 200, 200], "bob is not held");

    // `budget --json` shows ana's window with what it holds; nobody else has one.
    let shown = json_ok(&cli(
        env,
        db,
        config,
        "2026-12-08T00:31:00Z",
        &["budget", "--json"],
    ));
    let window = scope(&shown, "user:ana", "rolling 5h").expect("ana's window");
    assert_eq!(window["cap_usd"], 0.004);
    assert!(
        (window["spent_usd"].as_f64().unwrap() - 3.0 * COST).abs() < 1e-9,
        "{shown}"
    );
    assert!(scope(&shown, "user:bob", "rolling 5h").is_none(), "{shown}");
    assert!(scope(&shown, "key:cy-ci", "week").is_some(), "{shown}");
    assert!(
        scope(&shown, "key:cy-ci", "rolling 2d").is_some(),
        "{shown}"
    );
    assert!(scope(&shown, "team:ops", "week").is_some(), "{shown}");

    // `/budgets` and its API show ana's window too.
    let ui = Ui::start(
        env,
        &[
            ("SMARTPROXY_TEST_NOW", "2026-12-08T00:31:00Z"),
            ("SMARTPROXY_DB", db.url.as_str()),
            ("TZ", "UTC"),
        ],
    );
    let (status, _, api) = get(&format!("{}/api/budgets", ui.url), "content-type").await;
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let window = scope(&api, "user:ana", "rolling 5h").expect("ana's window in /api/budgets");
    assert_eq!(window["cap_usd"], 0.004, "{api}");
    let (status, _, html) = get(&format!("{}/budgets", ui.url), "content-type").await;
    assert_eq!(status, 200);
    assert!(html.contains("user:ana"), "{html}");
    drop(ui);

    // `keys list` shows the key's week and windows, as JSON and as a table.
    let listed = json_ok(&cli(env, db, config, evening, &["keys", "list", "--json"]));
    let cy = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "cy-ci")
        .unwrap();
    assert_eq!(cy["weekly_usd"], 7.0, "{listed}");
    assert_eq!(cy["windows"].as_array().unwrap().len(), 2, "{listed}");
    let table = text(&cli(env, db, config, evening, &["keys", "list"]).stdout);
    assert!(table.contains("1h $0.5000, 2d $3.0000"), "{table}");

    // `keys limit` shows ana's window; `--clear` removes it with her day.
    let table = text(&cli(env, db, config, evening, &["keys", "limit"]).stdout);
    assert!(table.contains("5h $0.0040"), "{table}");
    json_ok(&cli(
        env,
        db,
        config,
        evening,
        &["keys", "limit", "--json", "--user", "ana", "--clear"],
    ));
    let all = json_ok(&cli(env, db, config, evening, &["keys", "limit", "--json"]));
    assert_eq!(all["users"], serde_json::json!([]), "{all}");
}

#[test]
fn a_users_rolling_window_spans_midnight_and_holds_only_them() {
    let Some(db) = TestDb::create("teamwin") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(a_users_window(&db));
}

#[test]
fn bad_windows_are_clear_cli_errors() {
    let env = TestEnv::new();
    let config = env.upstream_config("http://127.0.0.1:9", BUDGET);
    for (window, says) in [
        ("5h", "write EVERY=USD"),
        ("5x=1", "not a length"),
        ("30s=1", "1 minute to 31 days"),
        ("5h=-2", "a number from 0"),
    ] {
        let mut cmd = env.command();
        cmd.arg("--config")
            .arg(&config)
            .args(["keys", "limit", "--user", "ana", "--window", window]);
        let out = run_to_end(cmd);
        assert_eq!(out.status.code(), Some(2), "{window}");
        let err = text(&out.stderr);
        assert!(
            err.contains("--window") && err.contains(says),
            "{window}: {err}"
        );
    }
    // Two windows of one length would share a counter.
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", "postgres://127.0.0.1:9/none")
        .arg("--config")
        .arg(&config)
        .args([
            "keys", "limit", "--user", "ana", "--window", "5h=1", "--window", "5h=2",
        ]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("--window 5h given twice"), "{err}");
}

/// A team's window set while a daemon runs is enforced within seconds (the watcher re-reads
/// the keys with their windows), refusing with the team's window named.
async fn a_window_set_on_a_running_daemon(db: &TestDb) {
    let upstream = MockUpstream::start();
    upstream.push((0..40).map(|_| Behavior::SpendsAll {
        prompt_tokens: 10,
        usage_extra: serde_json::json!({}),
    }));
    let env = &TestEnv::new();
    let config = &env.upstream_config(&upstream.base_url(), BUDGET);
    let now = "2026-12-08T10:00:00Z";
    let made = json_ok(&cli(
        env,
        db,
        config,
        now,
        &["keys", "create", "--json", "--user", "bo", "--team", "ops"],
    ));
    let key = made["key"].as_str().unwrap().to_owned();
    let envs = [
        ("UPSTREAM_KEY", "k"),
        ("SMARTPROXY_TEST_NOW", now),
        ("SMARTPROXY_DB", db.url.as_str()),
    ];
    let daemon = Daemon::start(env, config, &[], &envs);
    let listen = format!("{}/v1", daemon.listen);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    assert_eq!(
        post_chat(&listen, Some(&key), body.clone()).await.status,
        200
    );

    // One request's worth in any hour, for the whole team.
    json_ok(&cli(
        env,
        db,
        config,
        now,
        &[
            "keys",
            "limit",
            "--json",
            "--team",
            "ops",
            "--window",
            "1h=0.0015",
        ],
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let refused = loop {
        let reply = post_chat(&listen, Some(&key), body.clone()).await;
        if reply.status != 200 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the team's window is not enforced after 5 s:\n{}",
            daemon.stderr()
        );
        support::pause(std::time::Duration::from_millis(25));
    };
    assert_eq!(refused.status, 429);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("team rolling 1h budget $0.0015 exceeded"),
        "{message}"
    );
    assert!(refused.headers.get("retry-after").is_some());
    assert!(daemon.stop().status.success());
}

#[test]
fn a_teams_window_set_on_a_running_daemon_is_enforced_within_seconds() {
    let Some(db) = TestDb::create("teamwinlive") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(a_window_set_on_a_running_daemon(&db));
}
