//! Weekly limits and rolling windows (`budget.weekly_usd`, `budget.windows`) against the real
//! binary on SQLite and PostgreSQL, with the test clock (`SMARTPROXY_TEST_NOW`, honoured by
//! debug builds only) standing in for the hours between requests: spend before midnight
//! still counts in a 5-hour window after midnight while the daily limit starts afresh, until
//! it ages out; a week's limit starts afresh on Monday; a refusal names the window, says when
//! it frees up and sets `Retry-After`; `budget --json`, `status --json` and `/budgets` show it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::postgres::TestDb;
use support::ui::{Ui, get};
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, run_to_end};

/// One request (gpt-4o, max_tokens 100, every reply billing all it may) costs $0.001025.
const COST: f64 = 0.001_025;

/// Daily $0.0025 (two requests), a 5-hour window of $0.004 (three).
const WINDOWED: &str = "budget:\n  timezone: utc\n  on_exceed: refuse\n  daily_usd: 0.0025\n  windows:\n    - {every: 5h, usd: 0.004}\n";

struct Answer {
    status: u16,
    message: String,
    retry_after: Option<u64>,
}

/// `n` requests from one `run` process whose clock reads `now` (RFC 3339).
async fn requests(
    env: &TestEnv,
    config: &str,
    now: &str,
    db: Option<&str>,
    args: &[&str],
    n: usize,
) -> Vec<Answer> {
    let mut envs = vec![("UPSTREAM_KEY", "k"), ("SMARTPROXY_TEST_NOW", now)];
    if let Some(url) = db {
        envs.push(("SMARTPROXY_DB", url));
    }
    let mut all = vec!["run", "--config", config];
    all.extend_from_slice(args);
    let run = env.start_run(&all, &envs);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let mut out = Vec::new();
    for _ in 0..n {
        let reply = post_chat(&run.base_url, Some(&run.key), body.to_string()).await;
        out.push(Answer {
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
    assert!(run.finish(0).status.success());
    out
}

fn codes(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

fn json_of(env: &TestEnv, args: &[&str], now: &str, db: Option<&str>) -> serde_json::Value {
    let mut cmd = env.command();
    cmd.args(args).env("SMARTPROXY_TEST_NOW", now);
    if let Some(url) = db {
        cmd.env("SMARTPROXY_DB", url);
    }
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scope(shown: &serde_json::Value, name: &str, period: &str) -> serde_json::Value {
    shown["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scope"] == name && s["period"] == period)
        .unwrap_or_else(|| panic!("no {name} {period} in {shown}"))
        .clone()
}

fn upstream(n: usize) -> MockUpstream {
    let upstream = MockUpstream::start();
    upstream.push((0..n).map(|_| Behavior::SpendsAll {
        prompt_tokens: 10,
        usage_extra: serde_json::json!({}),
    }));
    upstream
}

/// `frees` is when the spend of 21:30 has left the 5-hour window: its bucket's end plus 5 h
/// (SQLite's buckets are the `spend` roll-up's quarter hours, PostgreSQL's a sixtieth of the
/// window, 5 minutes).
async fn across_midnight(db: Option<&str>, frees: &str) {
    let upstream = upstream(20);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), WINDOWED);
    let config = config.to_str().unwrap();

    // Monday 21:30: the day's $0.0025 allows two.
    let evening = requests(&env, config, "2026-12-07T21:30:00Z", db, &[], 3).await;
    assert_eq!(codes(&evening), [200, 200, 429]);
    assert!(
        evening[2].message.starts_with("daily budget"),
        "{}",
        evening[2].message
    );

    // 00:30 the next day: a new day, but the window still holds the evening's $0.00205.
    let night = requests(&env, config, "2026-12-08T00:30:00Z", db, &[], 2).await;
    assert_eq!(
        codes(&night),
        [200, 429],
        "the day starts afresh, the window does not"
    );
    let refused = &night[1];
    assert!(
        refused
            .message
            .starts_with("rolling 5h budget $0.004 exceeded"),
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains(&format!("frees up at {frees}")),
        "{}",
        refused.message
    );
    // Retry-After: the seconds from 00:30 until then (less the moments the test took).
    let (h, m): (u64, u64) = (
        frees[11..13].parse().unwrap(),
        frees[14..16].parse().unwrap(),
    );
    let want = (h * 3600 + m * 60) - 30 * 60;
    let got = refused.retry_after.expect("a Retry-After");
    assert!(
        (want - 60..=want).contains(&got),
        "Retry-After {got}, want about {want}"
    );
    if db.is_none() {
        // The ledger records each refusal (SQLite's rows read back directly).
        let refused = env
            .requests()
            .iter()
            .filter(|r| r["outcome"] == "budget_exceeded")
            .count();
        assert_eq!(refused, 2);
    }

    // `budget --json` at 00:31 shows the window beside the day.
    let shown = json_of(
        &env,
        &["budget", "--json", "--config", config],
        "2026-12-08T00:31:00Z",
        db,
    );
    let window = scope(&shown, "all", "rolling 5h");
    assert_eq!(window["cap_usd"], 0.004);
    assert_eq!(window["every_ms"], 5 * 3_600_000);
    assert!(
        (window["spent_usd"].as_f64().unwrap() - 3.0 * COST).abs() < 1e-9,
        "{shown}"
    );
    let frees_ms =
        chrono::DateTime::parse_from_rfc3339(&format!("{}:00Z", frees.replace(' ', "T")))
            .unwrap()
            .timestamp_millis();
    assert_eq!(window["frees_at_ms"], frees_ms, "{shown}");
    let day = scope(&shown, "all", "day");
    assert!(
        (day["spent_usd"].as_f64().unwrap() - COST).abs() < 1e-9,
        "{shown}"
    );

    // `status --json`: the window is the tightest budget.
    let status = json_of(
        &env,
        &["status", "--json", "--config", config],
        "2026-12-08T00:31:00Z",
        db,
    );
    assert_eq!(status["tightest"]["budget"], "rolling 5h", "{status}");
    assert_eq!(status["tightest"]["frees_at_ms"], frees_ms, "{status}");

    // 02:50: the evening has aged out; the window holds the night's one request.
    let later = requests(&env, config, "2026-12-08T02:50:00Z", db, &[], 1).await;
    assert_eq!(codes(&later), [200]);
    assert_eq!(upstream.calls(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_window_spans_midnight_on_sqlite() {
    across_midnight(None, "2026-12-08 02:45").await;
}

#[test]
fn a_rolling_window_spans_midnight_on_postgres() {
    let Some(db) = TestDb::create("windows") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(across_midnight(Some(&db.url), "2026-12-08 02:35"));
}

/// A weekly limit holds through Sunday and starts afresh on Monday; a project's rolling
/// window holds that project's sessions only.
async fn weeks_and_projects(db: Option<&str>) {
    let upstream = upstream(20);
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "budget:\n  timezone: utc\n  on_exceed: refuse\n  weekly_usd: 0.0025\n  projects:\n    alpha:\n      windows: [{every: 2h, usd: 0.0015}]\n",
    );
    let config = config.to_str().unwrap();
    let sunday = requests(&env, config, "2026-12-13T23:00:00Z", db, &[], 3).await;
    assert_eq!(codes(&sunday), [200, 200, 429]);
    assert!(
        sunday[2].message.starts_with("weekly budget"),
        "{}",
        sunday[2].message
    );
    let monday = requests(
        &env,
        config,
        "2026-12-14T00:30:00Z",
        db,
        &["--project", "alpha"],
        2,
    )
    .await;
    assert_eq!(
        codes(&monday),
        [200, 429],
        "a new week; alpha's window holds one"
    );
    assert!(
        monday[1]
            .message
            .starts_with("project rolling 2h budget $0.0015 exceeded"),
        "{}",
        monday[1].message
    );
    assert!(monday[1].retry_after.is_some());
    let shown = json_of(
        &env,
        &["budget", "--json", "--config", config],
        "2026-12-14T00:31:00Z",
        db,
    );
    let week = scope(&shown, "all", "week");
    assert!(
        (week["spent_usd"].as_f64().unwrap() - COST).abs() < 1e-9,
        "{shown}"
    );
    let alpha = scope(&shown, "project:alpha", "rolling 2h");
    assert!(
        (alpha["spent_usd"].as_f64().unwrap() - COST).abs() < 1e-9,
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn weeks_start_on_monday_and_project_windows_hold_on_sqlite() {
    weeks_and_projects(None).await;
}

#[test]
fn weeks_start_on_monday_and_project_windows_hold_on_postgres() {
    let Some(db) = TestDb::create("weeks") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(weeks_and_projects(Some(&db.url)));
}

/// `/budgets` and `/api/budgets` show the window, and when it frees up.
#[tokio::test(flavor = "multi_thread")]
async fn the_budgets_page_shows_rolling_windows() {
    let upstream = upstream(5);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), WINDOWED);
    let config = config.to_str().unwrap();
    let now = "2026-12-07T21:30:00Z";
    assert_eq!(
        codes(&requests(&env, config, now, None, &[], 1).await),
        [200]
    );
    let ui = Ui::start(&env, &[("SMARTPROXY_TEST_NOW", now), ("TZ", "UTC")]);
    let (status, _, api) = get(&format!("{}/api/budgets", ui.url), "content-type").await;
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let window = scope(&api, "all", "rolling 5h");
    assert!(
        (window["spent_usd"].as_f64().unwrap() - COST).abs() < 1e-9,
        "{api}"
    );
    let (status, _, html) = get(&format!("{}/budgets", ui.url), "content-type").await;
    assert_eq!(status, 200);
    assert!(html.contains("<td>rolling 5h</td>"), "{html}");
    assert!(html.contains("frees up 2026-12-08 02:45"), "{html}");
}

/// Bad windows are named by file, line and key.
#[test]
fn bad_windows_name_their_line_and_key() {
    let env = TestEnv::new();
    let text = env.invalid_config(
        "smartproxy.yaml",
        "budget:\n  windows:\n    - every: 30s\n      usd: 1\n    - every: 5h\n      usd: 0\n    - every: soon\n      usd: 1\n  projects:\n    alpha:\n      windows:\n        - every: 32d\n          usd: 1\n",
    );
    for needle in [
        "smartproxy.yaml:3: `budget.windows[0].every`: `30s` is outside 1m to 31d",
        "smartproxy.yaml:6: `budget.windows[1].usd`: must be an amount in USD above zero",
        "smartproxy.yaml:7: `budget.windows[2].every`: `soon` is not a duration",
        "smartproxy.yaml:12: `budget.projects.alpha.windows[0].every`: `32d` is outside 1m to 31d",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

/// Two daemon client keys: `windowed` with a daily $0.0025 and a 5-hour window of $0.004,
/// `plain` with the daily $0.0025 alone.
const KEYED: &str = "budget:\n  timezone: utc\n  on_exceed: refuse\nclient_keys:\n  - name: windowed\n    key_env: WINDOWED_KEY\n    budget_daily_usd: 0.0025\n    windows: [{every: 5h, usd: 0.004}]\n  - {name: plain, key_env: PLAIN_KEY, budget_daily_usd: 0.0025}\n";

/// `(key, n)` batches of requests to a daemon whose clock reads `now`, stopped after.
async fn daemon_requests(
    env: &TestEnv,
    config: &std::path::Path,
    now: &str,
    db: Option<&str>,
    batches: &[(&str, usize)],
) -> Vec<Vec<Answer>> {
    let mut envs = vec![
        ("UPSTREAM_KEY", "k"),
        ("SMARTPROXY_TEST_NOW", now),
        ("WINDOWED_KEY", "sk-windowed-1"),
        ("PLAIN_KEY", "sk-plain-1"),
    ];
    if let Some(url) = db {
        envs.push(("SMARTPROXY_DB", url));
    }
    let daemon = support::daemon::Daemon::start(env, config, &[], &envs);
    let listen = format!("{}/v1", daemon.listen);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let mut out = Vec::new();
    for (key, n) in batches {
        let secret = format!("sk-{key}-1");
        let mut answers = Vec::new();
        for _ in 0..*n {
            let reply = post_chat(&listen, Some(&secret), body.to_string()).await;
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

/// A client key's rolling window holds across midnight while its daily limit starts afresh;
/// the other key, with a daily limit only, is not held by it.
async fn key_window_across_midnight(db: Option<&str>, frees: &str) {
    let upstream = upstream(20);
    let env = &TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), KEYED);

    // Monday 21:30: each key's day allows two.
    let evening = daemon_requests(
        env,
        &config,
        "2026-12-07T21:30:00Z",
        db,
        &[("windowed", 3), ("plain", 1)],
    )
    .await;
    assert_eq!(codes(&evening[0]), [200, 200, 429]);
    assert!(
        evening[0][2].message.starts_with("key daily budget"),
        "{}",
        evening[0][2].message
    );
    assert_eq!(codes(&evening[1]), [200]);

    // 00:30: a new day for both; `windowed`'s window still holds its evening's $0.00205.
    let night = daemon_requests(
        env,
        &config,
        "2026-12-08T00:30:00Z",
        db,
        &[("windowed", 2), ("plain", 2)],
    )
    .await;
    assert_eq!(codes(&night[0]), [200, 429], "the key's window holds");
    let refused = &night[0][1];
    assert!(
        refused
            .message
            .starts_with("key rolling 5h budget $0.004 exceeded"),
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains(&format!("frees up at {frees}")),
        "{}",
        refused.message
    );
    assert!(refused.retry_after.is_some());
    assert_eq!(codes(&night[1]), [200, 200], "the other key is not held");
    assert_eq!(upstream.calls(), 6);

    // `budget --json` shows the key's window beside its day; the other key has no window.
    let config = config.to_str().unwrap();
    let shown = json_of(
        env,
        &["budget", "--json", "--config", config],
        "2026-12-08T00:31:00Z",
        db,
    );
    let window = scope(&shown, "key:windowed", "rolling 5h");
    assert_eq!(window["cap_usd"], 0.004);
    assert!(
        (window["spent_usd"].as_f64().unwrap() - 3.0 * COST).abs() < 1e-9,
        "{shown}"
    );
    let frees_ms =
        chrono::DateTime::parse_from_rfc3339(&format!("{}:00Z", frees.replace(' ', "T")))
            .unwrap()
            .timestamp_millis();
    assert_eq!(window["frees_at_ms"], frees_ms, "{shown}");
    let plain = scope(&shown, "key:plain", "day");
    assert!(
        (plain["spent_usd"].as_f64().unwrap() - 2.0 * COST).abs() < 1e-9,
        "{shown}"
    );
    let windows = shown["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["period"] == "rolling 5h")
        .count();
    assert_eq!(windows, 1, "{shown}");

    if db.is_none() {
        // `/budgets` and its API show the key's window too.
        let ui = Ui::start(
            env,
            &[
                ("SMARTPROXY_TEST_NOW", "2026-12-08T00:31:00Z"),
                ("TZ", "UTC"),
            ],
        );
        let (status, _, api) = get(&format!("{}/api/budgets", ui.url), "content-type").await;
        assert_eq!(status, 200, "{api}");
        let api: serde_json::Value = serde_json::from_str(&api).unwrap();
        let window = scope(&api, "key:windowed", "rolling 5h");
        assert_eq!(window["frees_at_ms"], frees_ms, "{api}");
        let (status, _, html) = get(&format!("{}/budgets", ui.url), "content-type").await;
        assert_eq!(status, 200);
        assert!(html.contains("key:windowed"), "{html}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_keys_window_spans_midnight_on_sqlite() {
    key_window_across_midnight(None, "2026-12-08 02:45").await;
}

#[test]
fn a_client_keys_window_spans_midnight_on_postgres() {
    let Some(db) = TestDb::create("keywin") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(key_window_across_midnight(
        Some(&db.url),
        "2026-12-08 02:35",
    ));
}

/// A client key's bad weekly limit and windows are named by file, line and key.
#[test]
fn bad_key_windows_name_their_line_and_key() {
    let env = TestEnv::new();
    let text = env.invalid_config(
        "smartproxy.yaml",
        "client_keys:\n  - name: ci\n    key_env: CI_KEY\n    budget_weekly_usd: -1\n    windows:\n      - every: 30s\n        usd: 1\n      - every: 5h\n        usd: 0\n",
    );
    for needle in [
        "smartproxy.yaml:4: `client_keys[0].budget_weekly_usd`: must be an amount in USD of zero or more",
        "smartproxy.yaml:6: `client_keys[0].windows[0].every`: `30s` is outside 1m to 31d",
        "smartproxy.yaml:9: `client_keys[0].windows[1].usd`: must be an amount in USD above zero",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}
