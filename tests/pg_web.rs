//! The web dashboard on a PostgreSQL ledger (issue 20): the same sessions and requests are
//! written through the `Ledger` handle into a SQLite file and into a PostgreSQL database of the
//! test's own, then `smartproxy ui` on each must serve the same HTML and JSON for every page
//! (overview, performance, sessions with their paging and a prefix's redirect, requests, 404s).
//! The team page shows cost per user and team from PostgreSQL's roll-up and says there are no
//! team keys on SQLite; an unreachable or silent PostgreSQL is a 503 page, never a hang.
//!
//! Costs are multiples of 1/512 dollar, exact both as SQLite's sums of `f64`s and as
//! PostgreSQL's sums of nano-dollars, so the pages agree to the last digit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::{AttemptRow, Billing, Ledger, Outcome, RequestRecord, SessionStart};
use support::TestEnv;
use support::postgres::TestDb;
use support::ui::Ui;

const MINUTE_MS: i64 = 60_000;
/// Requests written: run-alpha holds more than one session page (100) of them.
const REQUESTS: i64 = 300;

/// id, parent, kind, tag.
const SESSIONS: [(&str, Option<&str>, &str, Option<&str>); 4] = [
    ("run-alpha", None, "run", Some("alpha")),
    ("run-nested", Some("run-alpha"), "run", None),
    ("daemon-ana", None, "daemon", Some("ana-laptop")),
    ("daemon-bo", None, "daemon", Some("bo-ci")),
];

/// Which session request `i` belongs to (or none).
fn session_of(i: i64) -> Option<&'static str> {
    match i % 10 {
        0..=4 => Some("run-alpha"),
        5 => Some("run-nested"),
        6 | 7 => Some("daemon-ana"),
        8 => Some("daemon-bo"),
        _ => None,
    }
}

/// Request `i`: one every ten minutes up to `now`, in order (a session's requests are listed
/// in write order from SQLite and by start time from PostgreSQL: the same order here).
fn request(i: i64, now: i64) -> RequestRecord {
    let started_ms = now - (REQUESTS - i) * 10 * MINUTE_MS;
    let mut r = RequestRecord::new(
        format!("req_{i:028x}"),
        session_of(i).map(Arc::from),
        started_ms,
        "chat",
    );
    let model = ["gpt-4o", "claude-sonnet", "llama3"][(i % 3) as usize];
    r.provider = Some(["openai", "anthropic"][(i % 2) as usize].to_owned());
    r.requested_model = Some(model.to_owned());
    r.served_model = (i % 4 != 3).then(|| model.to_owned());
    r.route = Some("default".to_owned());
    r.outcome = if i % 7 == 6 {
        Outcome::UpstreamError
    } else {
        Outcome::Ok
    };
    r.status = if r.outcome == Outcome::Ok { 200 } else { 502 };
    r.error_code = (r.outcome != Outcome::Ok).then(|| "upstream_5xx".to_owned());
    r.stream = i % 2 == 0;
    r.prompt_tokens = Some(100 + i as u64);
    r.completion_tokens = (i % 5 != 4).then_some(10 + i as u64);
    r.cached_tokens = Some(i as u64 % 9);
    r.tokens_estimated = i % 8 == 5;
    r.cost_usd = (r.outcome == Outcome::Ok && i % 10 != 9).then(|| (i % 13) as f64 / 512.0);
    r.saved_usd = (i % 9 == 2).then_some(1.0 / 256.0);
    r.billing = match i % 12 {
        5 => Billing::Subscription,
        8 => Billing::Simulated,
        _ => Billing::Api,
    };
    // As the proxy records them: subscription and simulated costs count toward no budget.
    r.budgeted = r.billing == Billing::Api;
    r.budget_action = (i % 15 == 7).then(|| "fit: max_tokens 512".to_owned());
    r.latency_ms = 10.0 + (i % 20) as f64 * 0.5;
    r.ttfb_ms = r.stream.then_some(4.25);
    r.attempts = 1 + (i % 2) as u32;
    r.fingerprint = (i % 3 == 0).then(|| format!("{:016x}", i * 977));
    r.user_agent = Some("curl/8".to_owned());
    r.attempt_log = vec![AttemptRow {
        provider: r.provider.clone().unwrap_or_default(),
        model: model.to_owned(),
        status: Some(r.status),
        error_class: (r.status != 200).then(|| "upstream_5xx".to_owned()),
        latency_ms: 9.5,
        waited_ms: 0.25,
    }];
    r
}

/// Writes the sessions and requests into the ledger at `location`; `before_requests` runs
/// once the sessions are in (the PostgreSQL side creates its team keys there).
fn fill(location: &LedgerLocation, now: i64, before_requests: impl FnOnce()) {
    let ledger = Ledger::open_at(location).unwrap();
    for (n, (id, parent, kind, tag)) in SESSIONS.into_iter().enumerate() {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: parent.map(str::to_owned),
            kind,
            tag: tag.map(str::to_owned),
            program: Some("sh".to_owned()),
            cwd: Some("/tmp".to_owned()),
            pid: Some(4242),
            started_ms: now - (REQUESTS + 10 - n as i64) * 10 * MINUTE_MS,
            budget_usd: (id == "run-alpha").then_some(2.5),
            attribution: smartproxy::ledger::Attribution {
                project: (n % 2 == 0).then(|| "web".to_owned()),
                ..Default::default()
            },
        });
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    before_requests();
    for i in 0..REQUESTS {
        ledger.record(request(i, now));
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
}

/// `smartproxy ui` over the ledger `db` (a path or a URL) in time zone `tz` (the overview's
/// days are its local days); it never prints the URL's password.
fn ui_in(env: &TestEnv, db: &str, tz: &str) -> Ui {
    let ui = Ui::start(env, &[("SMARTPROXY_DB", db), ("TZ", tz)]);
    assert!(!ui.stderr().contains("hunter2"), "{}", ui.stderr());
    ui
}

/// Status, `Location` and body of `GET {base}{path}` (redirects not followed).
async fn get(base: &str, path: &str) -> (u16, String, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let resp = client.get(format!("{base}{path}")).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, resp.text().await.unwrap())
}

#[test]
fn every_page_is_the_same_from_sqlite_and_postgres() {
    let Some(db) = TestDb::create("web") else {
        return;
    };
    let env = TestEnv::new();
    let now = smartproxy::ledger::now_ms() - MINUTE_MS;
    fill(&LedgerLocation::Sqlite(env.db.clone()), now, || {});
    fill(
        &LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()),
        now,
        || {
            // Two people on two teams, holding the daemon sessions' client keys.
            db.execute(
                "INSERT INTO people VALUES ('ana@example.com', 0), ('bo', 0);
                 INSERT INTO teams VALUES ('search', 0), ('infra', 0);
                 INSERT INTO client_keys (name, digest, user_name, team, created_ms) VALUES
                     ('ana-laptop', decode(repeat('aa', 32), 'hex'), 'ana@example.com',
                      'search', 0),
                     ('bo-ci', decode(repeat('bb', 32), 'hex'), 'bo', 'infra', 0);",
            );
        },
    );
    let sqlite = ui_in(&env, &env.db.to_string_lossy(), "UTC");
    let postgres = ui_in(&env, &db.url, "UTC");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The second page of run-alpha's requests starts where the first one's JSON says.
        let (_, _, first) = get(&postgres.url, "/api/sessions/run-alpha").await;
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["requests"].as_array().unwrap().len(), 100, "{first}");
        let before = first["next_before"].as_str().unwrap().to_owned();
        let mut paths: Vec<String> = [
            "/",
            "/api/",
            "/performance",
            "/api/performance",
            "/sessions/run-a",
            "/sessions/nope",
            "/api/sessions/nope",
            "/request/req_nope",
            "/api/request/req_nope",
        ]
        .map(str::to_owned)
        .to_vec();
        for (id, ..) in SESSIONS {
            paths.push(format!("/sessions/{id}"));
            paths.push(format!("/api/sessions/{id}"));
        }
        paths.push(format!("/sessions/run-alpha?before={before}"));
        // The breakdowns and the sessions list, their JSON and downloads; every sort paged.
        for by in ["model", "provider", "tag", "key"] {
            for range in ["range=today", "range=7d", "from=2020-01-01&to=2020-01-02"] {
                paths.push(format!("/breakdown?by={by}&{range}"));
                paths.push(format!("/api/breakdown?by={by}&{range}"));
            }
            paths.push(format!("/breakdown?by={by}&range=30d&format=csv"));
            paths.push(format!("/breakdown?by={by}&range=30d&format=jsonl"));
        }
        // Over time: every period, with the latency percentiles taken in Rust from both.
        for query in [
            "",
            "every=hour&range=7d",
            "every=day&range=30d",
            "every=month&range=month",
            "every=hour&range=7d&format=csv",
            "every=day&range=30d&format=jsonl",
            "every=week",
        ] {
            paths.push(format!("/trends?{query}"));
            paths.push(format!("/api/trends?{query}"));
        }
        for query in [
            "",
            "sort=cost",
            "sort=requests",
            "tag=alpha",
            "status=running",
            "min_cost=0.5",
            "program=sh&range=7d",
            "project=web",
            "project=web&sort=cost",
            "sort=cost&after=0.5~run-nested",
            "sort=requests&after=60~daemon-bo",
            "format=csv",
            "sort=cost&format=jsonl",
        ] {
            paths.push(format!("/sessions?{query}"));
            paths.push(format!("/api/sessions?{query}"));
        }
        paths.push(format!("/api/sessions/run-alpha?before={before}"));
        // Request search: a range's and a session's, filtered, paged on and back, downloads.
        let (_, _, page) = get(&postgres.url, "/api/requests?range=7d").await;
        let page: serde_json::Value = serde_json::from_str(&page).unwrap();
        assert_eq!(page["requests"].as_array().unwrap().len(), 50, "{page}");
        let after = page["next_after"].as_str().unwrap().to_owned();
        let (_, _, second) = get(
            &postgres.url,
            &format!("/api/requests?range=7d&after={after}"),
        )
        .await;
        let second: serde_json::Value = serde_json::from_str(&second).unwrap();
        let back = second["prev_before"].as_str().unwrap().to_owned();
        for query in [
            String::new(),
            "range=7d".to_owned(),
            format!("range=7d&after={after}"),
            format!("range=7d&before={back}"),
            "session=run-alpha".to_owned(),
            format!("session=run-alpha&after={after}"),
            "range=7d&model=gpt-4o&outcome=failed".to_owned(),
            "range=30d&provider=anthropic&tag=alpha".to_owned(),
            "range=7d&status=502".to_owned(),
            "range=7d&outcome=ok&model=llama3".to_owned(),
            "session=daemon-ana&format=csv".to_owned(),
            "range=7d&format=jsonl".to_owned(),
            "outcome=meh".to_owned(),
        ] {
            paths.push(format!("/requests?{query}"));
            paths.push(format!("/api/requests?{query}"));
        }
        for i in [0, 6, 7, 13, 16, 299] {
            paths.push(format!("/request/req_{i:028x}"));
            paths.push(format!("/api/request/req_{i:028x}"));
        }
        for path in &paths {
            let from_sqlite = get(&sqlite.url, path).await;
            let from_postgres = get(&postgres.url, path).await;
            assert_eq!(from_sqlite, from_postgres, "{path}");
            // A page, or a redirect to one.
            assert!(
                !from_sqlite.2.is_empty() || !from_sqlite.1.is_empty(),
                "{path}"
            );
        }
        // What was compared is the rows written, not two empty pages.
        let (_, _, models) = get(&postgres.url, "/api/breakdown?by=model&range=30d").await;
        let models: serde_json::Value = serde_json::from_str(&models).unwrap();
        assert_eq!(models["total"]["requests"], REQUESTS, "{models}");
        let (_, _, trends) = get(&postgres.url, "/api/trends?every=hour&range=7d").await;
        let trends: serde_json::Value = serde_json::from_str(&trends).unwrap();
        assert_eq!(trends["total"]["requests"], REQUESTS, "{trends}");
        assert_eq!(trends["latency_sample"], REQUESTS, "{trends}");
        assert!(trends["periods"].as_array().unwrap().len() >= 7 * 24);
        let (_, _, by_cost) = get(&postgres.url, "/api/sessions?sort=cost").await;
        let by_cost: serde_json::Value = serde_json::from_str(&by_cost).unwrap();
        assert_eq!(
            by_cost["sessions"].as_array().unwrap().len(),
            4,
            "{by_cost}"
        );
        let (status, _, overview) = get(&postgres.url, "/api/").await;
        assert_eq!(status, 200);
        let overview: serde_json::Value = serde_json::from_str(&overview).unwrap();
        assert_eq!(overview["latest"].as_array().unwrap().len(), 20);
        assert_eq!(overview["overview"]["empty"], false);
        assert_eq!(
            get(&postgres.url, "/sessions/run-a").await.1,
            "/sessions/run-alpha"
        );
        let (_, _, detail) = get(&postgres.url, &format!("/api/request/req_{:028x}", 16)).await;
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(detail["attempts"][0]["latency_ms"], 9.5, "{detail}");
        assert_eq!(detail["session"]["id"], "daemon-ana", "{detail}");

        // The team page: cost per user and team on PostgreSQL, none on SQLite.
        let (status, _, team) = get(&postgres.url, "/api/team?range=30d").await;
        assert_eq!(status, 200, "{team}");
        let team: serde_json::Value = serde_json::from_str(&team).unwrap();
        assert_eq!(team["team_keys"], true);
        let user = |name: &str| {
            team["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["totals"]["key"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} in {team}"))
        };
        assert_eq!(user("ana@example.com")["team"], "search");
        assert_eq!(user("bo")["team"], "infra");
        assert_eq!(user("-")["team"], "-");
        // Requests 6, 7, 16, 17, ...: ana's daemon session. Their cost as the rows add up.
        let ana: Vec<i64> = (0..REQUESTS).filter(|i| matches!(i % 10, 6 | 7)).collect();
        assert_eq!(
            user("ana@example.com")["totals"]["requests"],
            ana.len() as u64
        );
        let cost: f64 = ana
            .iter()
            .map(|&i| request(i, now))
            .filter(|r| r.billing != Billing::Simulated)
            .filter_map(|r| r.cost_usd)
            .sum();
        assert_eq!(
            user("ana@example.com")["totals"]["cost_usd"].as_f64(),
            Some(cost)
        );
        let teams: Vec<&str> = team["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert!(
            teams.contains(&"search") && teams.contains(&"infra"),
            "{teams:?}"
        );
        let total: u64 = team["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["totals"]["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(total, REQUESTS as u64, "the 30 days hold every request");
        let (status, _, page) = get(&postgres.url, "/team?range=30d").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("ana@example.com") && page.contains("search"),
            "{page}"
        );
        assert!(!page.contains("No team keys"), "{page}");
        assert!(
            page.contains("format=csv"),
            "the page offers its download: {page}"
        );
        // The download: a row per team, then per user, with the same totals.
        let (status, _, csv) = get(&postgres.url, "/team?range=30d&format=csv").await;
        assert_eq!(status, 200, "{csv}");
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("from,to,kind,name,team,requests,failed,tokens_in,cost_usd")
        );
        let user_requests: u64 = lines
            .filter(|l| l.split(',').nth(2) == Some("user"))
            .map(|l| l.split(',').nth(5).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(user_requests, REQUESTS as u64, "{csv}");
        // A range before any request: the people are known, their rows empty.
        let (_, _, old) = get(&postgres.url, "/api/team?from=2020-01-01&to=2020-01-31").await;
        let old: serde_json::Value = serde_json::from_str(&old).unwrap();
        assert_eq!(old["users"].as_array().unwrap().len(), 0, "{old}");
        assert_eq!(old["from"], "2020-01-01");
        let (status, _, page) = get(&sqlite.url, "/team").await;
        assert_eq!(status, 200);
        assert!(page.contains("No team keys"), "{page}");
        let (status, _, bad) = get(&postgres.url, "/api/team?from=yesterday").await;
        assert_eq!(status, 400, "{bad}");
        assert!(bad.contains("YYYY-MM-DD"), "{bad}");
    });
    drop(sqlite);
    drop(postgres);
    // Local days that are not UTC days: the overview adds up requests, not the daily roll-up,
    // and still agrees.
    for tz in ["America/New_York", "Asia/Kolkata"] {
        let sqlite = ui_in(&env, &env.db.to_string_lossy(), tz);
        let postgres = ui_in(&env, &db.url, tz);
        runtime.block_on(async {
            for path in ["/", "/api/"] {
                let from_sqlite = get(&sqlite.url, path).await;
                assert_eq!(from_sqlite, get(&postgres.url, path).await, "{tz} {path}");
                assert_eq!(from_sqlite.0, 200, "{tz} {path}");
            }
        });
    }
}

/// PostgreSQL down (nothing listening) or silent (a socket that accepts and never answers):
/// every page is a 503 that says what failed and what to do, the password never shown, and
/// `ui` keeps serving.
#[test]
fn an_unreachable_postgres_is_a_503_page() {
    let env = TestEnv::new();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let down = "postgres://bob:hunter2@127.0.0.1:1/team?connect_timeout=2";
    let quiet = format!("postgres://bob:hunter2@127.0.0.1:{silent_port}/team?connect_timeout=2");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for db in [down, quiet.as_str()] {
        let ui = ui_in(&env, db, "UTC");
        runtime.block_on(async {
            for path in ["/", "/team", "/sessions/x", "/request/req_1"] {
                let started = Instant::now();
                let (status, _, body) = get(&ui.url, path).await;
                assert_eq!(status, 503, "{db} {path}: {body}");
                assert!(started.elapsed() < Duration::from_secs(20), "{db} {path}");
                assert!(body.contains("PostgreSQL ledger"), "{body}");
                assert!(body.contains("bob:***@127.0.0.1"), "{body}");
                assert!(body.contains("smartproxy doctor"), "{body}");
                assert!(!body.contains("hunter2"), "{body}");
            }
            let (status, _, body) = get(&ui.url, "/api/").await;
            assert_eq!(status, 503, "{body}");
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["code"], "ledger_unavailable", "{body}");
            assert_eq!(error["error"]["type"], "server_error", "{body}");
        });
    }
    drop(silent);
}

/// A daemon on a PostgreSQL ledger serves the dashboard on its admin listener: the requests it
/// recorded show on the overview, their session's page and their own page, and the team page
/// answers.
#[test]
fn the_daemon_serves_the_dashboard_from_postgres() {
    let Some(db) = TestDb::create("webdaemon") else {
        return;
    };
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "providers:\n  - name: m\n    kind: mock\n");
    let daemon =
        support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", db.url.as_str())]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = runtime.block_on(async {
        let mut ids = Vec::new();
        for _ in 0..2 {
            let reply = support::post_chat(
                &format!("{}/v1", daemon.listen),
                None,
                support::chat_body("gpt-4o", false, "hi"),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let id = reply.headers["x-smartproxy-request-id"].to_str().unwrap();
            ids.push(id.to_owned());
        }
        ids
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.requests_with_ids(&ids) < 2 {
        assert!(
            Instant::now() < deadline,
            "the requests never reached PostgreSQL"
        );
        support::pause(Duration::from_millis(50));
    }
    let session = db.scalar("SELECT id FROM sessions WHERE kind = 'daemon' LIMIT 1");
    runtime.block_on(async {
        let (status, _, html) = get(&daemon.admin, "/").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&format!("/sessions/{session}")), "{html}");
        let (status, _, html) = get(&daemon.admin, &format!("/sessions/{session}")).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(html.matches("/request/req_").count(), 2, "{html}");
        let (status, _, html) = get(&daemon.admin, &format!("/request/{}", ids[0])).await;
        assert_eq!(status, 200, "{html}");
        let (status, _, team) = get(&daemon.admin, "/api/team?range=today").await;
        assert_eq!(status, 200, "{team}");
        let team: serde_json::Value = serde_json::from_str(&team).unwrap();
        assert_eq!(team["users"][0]["totals"]["requests"], 2, "{team}");
    });
    daemon.stop();
}
