//! The dashboard's "where did the money go" pages end to end: `smartproxy ui` over a ledger of
//! 60 sessions and their requests (written through the real `Ledger`), `/breakdown` per model,
//! provider and tag with its range picker, `/sessions` with its filters, sorts and keyset pages,
//! the CSV / JSON Lines downloads of both, their JSON twins, 400s for bad parameters, and each
//! page rendered in headless Chromium with a 1280x800 screenshot for the CI log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use smartproxy::config::LedgerLocation;
use smartproxy::ledger::{Ledger, Outcome, RequestRecord, SessionEnd, SessionStart};
use support::TestEnv;
use support::chromium::{chromium, dump_dom, screenshot_at};
use support::ui::{Ui, get, json};

const SESSIONS: i64 = 60;
const MINUTE_MS: i64 = 60_000;
const MODELS: [&str; 3] = ["gpt-4o", "claude-sonnet", "llama3"];

/// Session `i`'s tag, program and exit code (`None`: still running).
fn tag(i: i64) -> Option<&'static str> {
    [Some("alpha"), Some("beta"), None][(i % 3) as usize]
}
fn program(i: i64) -> &'static str {
    ["claude", "aider"][(i % 2) as usize]
}
fn exit(i: i64) -> Option<i32> {
    [Some(0), Some(2), Some(0), None][(i % 4) as usize]
}
/// Session `i` holds `i % 4 + 1` requests; request `n` of it costs this (exact in binary).
fn cost(i: i64, n: i64) -> f64 {
    ((i * 7 + n) % 13) as f64 / 512.0
}

/// Writes the sessions (one a minute over the last hour) and their requests.
fn fill(location: &LedgerLocation, now: i64) -> Vec<RequestRecord> {
    let ledger = Ledger::open_at(location).unwrap();
    let mut written = Vec::new();
    for i in 0..SESSIONS {
        let id = format!("s-{i:02}");
        let started_ms = now - (SESSIONS - i) * MINUTE_MS;
        ledger.session_started(SessionStart {
            id: id.clone(),
            parent_id: None,
            kind: "run",
            tag: tag(i).map(str::to_owned),
            program: Some(program(i).to_owned()),
            cwd: Some("/tmp".to_owned()),
            pid: Some(4242),
            started_ms,
            budget_usd: None,
            attribution: Default::default(),
        });
        for n in 0..=(i % 4) {
            let model = MODELS[((i + n) % 3) as usize];
            let mut r = RequestRecord::new(
                format!("req_{i:02}_{n}"),
                Some(Arc::from(id.as_str())),
                started_ms + n * 1000,
                "chat",
            );
            r.provider = Some(["openai", "anthropic"][(n % 2) as usize].to_owned());
            r.requested_model = Some(model.to_owned());
            r.served_model = Some(model.to_owned());
            r.outcome = if (i + n) % 9 == 4 {
                Outcome::UpstreamError
            } else {
                Outcome::Ok
            };
            r.status = if r.outcome == Outcome::Ok { 200 } else { 502 };
            r.prompt_tokens = Some(100);
            r.completion_tokens = Some(10);
            r.cost_usd = (r.outcome == Outcome::Ok).then(|| cost(i, n));
            r.latency_ms = 12.0;
            r.attempts = 1;
            written.push(r.clone());
            ledger.record(r);
        }
        if let Some(code) = exit(i) {
            ledger.session_ended(SessionEnd {
                id,
                ended_ms: started_ms + 30_000,
                exit_code: Some(code),
                end_branch: None,
                end_head: None,
            });
        }
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    written
}

/// Every session `/api/sessions?{query}` pages through, following `next_after`.
async fn every_session(base: &str, query: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let page = json(&format!("{base}/api/sessions?{query}{after}")).await;
        let sessions = page["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 50, "{page}");
        rows.extend(sessions.iter().cloned());
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={}", next.replace('~', "%7E")),
            None => return rows,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn breakdown_and_sessions_answer_where_the_money_went() {
    let env = TestEnv::new();
    let now = smartproxy::ledger::now_ms() - MINUTE_MS;
    let written = fill(&LedgerLocation::Sqlite(env.db.clone()), now);
    let ui = Ui::start(&env, &[("TZ", "UTC")]);
    let base = ui.url.clone();

    // Breakdown per model: every request of the 7 days, each model's cost as the rows add up.
    let b = json(&format!("{base}/api/breakdown?by=model&range=7d")).await;
    assert_eq!(b["by"], "model");
    assert_eq!(b["total"]["requests"], written.len(), "{b}");
    for model in MODELS {
        let row = b["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == model)
            .unwrap_or_else(|| panic!("{model} in {b}"));
        let mine: Vec<&RequestRecord> = written
            .iter()
            .filter(|r| r.served_model.as_deref() == Some(model))
            .collect();
        let spent: f64 = mine.iter().filter_map(|r| r.cost_usd).sum();
        assert_eq!(row["requests"], mine.len(), "{model}");
        assert_eq!(row["cost_usd"].as_f64(), Some(spent), "{model}");
        let failed = mine.iter().filter(|r| r.outcome != Outcome::Ok).count();
        assert_eq!(row["failed"], failed, "{model}");
    }
    let costs: Vec<f64> = b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .collect();
    assert!(
        costs.windows(2).all(|w| w[0] >= w[1]),
        "most expensive first: {costs:?}"
    );
    let tags = json(&format!("{base}/api/breakdown?by=tag&range=30d")).await;
    let keys: HashSet<&str> = tags["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, HashSet::from(["alpha", "beta", "(untagged)"]));
    // A range before anything was recorded: no rows.
    let old = json(&format!(
        "{base}/api/breakdown?by=provider&from=2020-01-01&to=2020-01-31"
    ))
    .await;
    assert_eq!(old["rows"].as_array().unwrap().len(), 0, "{old}");
    // Bad parameters: a 400 that says what to give, JSON in the OpenAI shape under /api.
    let (status, _, body) = get(&format!("{base}/api/breakdown?by=colour"), "").await;
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "invalid_request");
    assert!(body.contains("model, provider, tag"), "{body}");
    let (status, _, page) = get(&format!("{base}/breakdown?range=fortnight"), "").await;
    assert_eq!(status, 400);
    assert!(page.contains("today, 7d, 30d or month"), "{page}");

    // The breakdown's download: the page's rows, as an attachment.
    let url = format!("{base}/breakdown?by=model&range=7d&format=csv");
    let (status, disposition, csv) = get(&url, "content-disposition").await;
    assert_eq!(status, 200);
    assert!(
        disposition.starts_with("attachment; filename=\"breakdown-model-"),
        "{disposition}"
    );
    assert!(
        csv.starts_with("model,from,to,cost_usd,share,requests,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + MODELS.len(), "{csv}");
    let (_, kind, jsonl) = get(
        &format!("{base}/breakdown?by=tag&range=7d&format=jsonl"),
        "content-type",
    )
    .await;
    assert!(kind.starts_with("application/jsonl"), "{kind}");
    for line in jsonl.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(row["tag"].is_string(), "{line}");
    }

    // Sessions: all 60, 50 a page, newest first, none twice.
    let all = every_session(&base, "").await;
    assert_eq!(all.len(), SESSIONS as usize);
    assert_eq!(all[0]["id"], "s-59");
    let ids: HashSet<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), SESSIONS as usize);
    let first = json(&format!("{base}/api/sessions")).await;
    assert_eq!(first["sessions"].as_array().unwrap().len(), 50);
    // Filters: tag, program, status, min cost, and a range.
    let count = |f: &dyn Fn(i64) -> bool| (0..SESSIONS).filter(|&i| f(i)).count();
    let alpha_failed = every_session(&base, "tag=alpha&status=failed").await;
    assert_eq!(
        alpha_failed.len(),
        count(&|i| tag(i) == Some("alpha") && exit(i) == Some(2))
    );
    let running_aider = every_session(&base, "status=running&program=aider").await;
    assert_eq!(
        running_aider.len(),
        count(&|i| exit(i).is_none() && program(i) == "aider")
    );
    let spent = |i: i64| -> f64 {
        written
            .iter()
            .filter(|r| r.session_id.as_deref() == Some(format!("s-{i:02}").as_str()))
            .filter_map(|r| r.cost_usd)
            .sum()
    };
    let dear = every_session(&base, "min_cost=0.03").await;
    assert_eq!(dear.len(), count(&|i| spent(i) >= 0.03), "{dear:?}");
    assert_eq!(
        every_session(&base, "from=2020-01-01&to=2020-01-02")
            .await
            .len(),
        0
    );
    assert_eq!(
        every_session(&base, "range=7d").await.len(),
        SESSIONS as usize
    );
    // Sorted by cost and by requests, still every session once, largest first.
    for (sort, field) in [("cost", "cost_usd"), ("requests", "requests")] {
        let rows = every_session(&base, &format!("sort={sort}")).await;
        assert_eq!(rows.len(), SESSIONS as usize, "{sort}");
        let values: Vec<f64> = rows
            .iter()
            .map(|r| r[field].as_f64().unwrap_or(0.0))
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] >= w[1]),
            "{sort}: {values:?}"
        );
    }
    for bad in [
        "status=lost",
        "sort=name",
        "min_cost=lots",
        "after=nonsense",
    ] {
        let (status, _, body) = get(&format!("{base}/api/sessions?{bad}"), "").await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Downloads hold every matching session, not a page.
    let (status, disposition, jsonl) = get(
        &format!("{base}/sessions?format=jsonl"),
        "content-disposition",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(disposition, "attachment; filename=\"sessions.jsonl\"");
    assert_eq!(jsonl.lines().count(), SESSIONS as usize);
    let (_, _, csv) = get(&format!("{base}/sessions?tag=beta&format=csv"), "").await;
    assert!(csv.starts_with("id,parent_id,kind,tag,program,"), "{csv}");
    assert_eq!(
        csv.lines().count(),
        1 + count(&|i| tag(i) == Some("beta")),
        "{csv}"
    );

    // The overview's figures lead to the breakdown.
    let (_, _, overview) = get(&format!("{base}/"), "").await;
    assert!(
        overview.contains(r#"href="/breakdown?range=today""#),
        "{overview}"
    );
    assert!(
        overview.contains(r#"href="/breakdown?range=month""#),
        "{overview}"
    );

    let Some(chromium) = chromium() else { return };
    let dom = dump_dom(&chromium, &format!("{base}/breakdown?by=model&range=7d"));
    assert!(
        dom.contains(r#"<table class="breakdown" id="breakdown">"#),
        "{dom}"
    );
    assert!(
        dom.contains("<td>gpt-4o</td>") && dom.contains("<meter"),
        "{dom}"
    );
    assert!(dom.contains(r#"aria-current="page">7 days</a>"#), "{dom}");
    assert!(
        dom.contains("format=csv") && dom.contains("format=jsonl"),
        "{dom}"
    );
    screenshot_at(
        &chromium,
        &format!("{base}/breakdown?by=model&range=7d"),
        "breakdown",
        (1280, 800),
    );
    screenshot_at(
        &chromium,
        &format!("{base}/breakdown?by=tag&range=today"),
        "breakdown-tag-today",
        (1280, 800),
    );
    let dom = dump_dom(&chromium, &format!("{base}/sessions"));
    assert_eq!(dom.matches(r#"<a href="/sessions/s-"#).count(), 50, "{dom}");
    assert!(dom.contains(r#"id="next-page""#), "{dom}");
    screenshot_at(
        &chromium,
        &format!("{base}/sessions"),
        "sessions",
        (1280, 800),
    );
    let filtered = format!("{base}/sessions?tag=alpha&status=ok&sort=cost&range=7d");
    let dom = dump_dom(&chromium, &filtered);
    assert!(
        dom.contains(r#"<option value="cost" selected="">"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<input name="tag" value="alpha">"#), "{dom}");
    let shown = dom.matches(r#"<a href="/sessions/s-"#).count();
    assert_eq!(
        shown,
        count(&|i| tag(i) == Some("alpha") && exit(i) == Some(0)),
        "{dom}"
    );
    assert!(!dom.contains(r#"id="next-page""#), "{dom}");
    assert!(
        dom.contains("sort=cost&amp;range=7d&amp;format=csv"),
        "{dom}"
    );
    screenshot_at(&chromium, &filtered, "sessions-filtered", (1280, 800));
}
