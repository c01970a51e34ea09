//! Request search end to end: `smartproxy ui` over a ledger with one busy session (230
//! requests) and 13 one-request sessions on 13 models, written through the real `Ledger`.
//! `/requests` and its JSON paged to the end and back again without a row lost or repeated,
//! its filters (model, provider, tag, outcome, status, session, range) against the rows
//! written, its downloads and 400s; `/sessions?project=`; and in headless Chromium at 1280 and
//! 1400 px: every table fits its wrapper, /performance keeps 13 models apart, screenshots
//! at 1280x800 for the CI log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use smartproxy::config::LedgerLocation;
use smartproxy::ledger::{AttemptRow, Attribution, Ledger, Outcome, RequestRecord, SessionStart};
use support::TestEnv;
use support::chromium::{chromium, dump_dom, dump_dom_at, screenshot_at};
use support::ui::Ui;

const BUSY: i64 = 230;
/// 13 models: one more than the palette's colours. The long one tests cell wrapping.
const MODELS: [&str; 13] = [
    "gpt-4o",
    "claude-sonnet",
    "llama3",
    "mistral-large",
    "gemini-pro",
    "qwen2",
    "phi3",
    "command-r",
    "deepseek-chat",
    "yi-large",
    "grok-2",
    "nova-pro",
    "anthropic.claude-3-5-sonnet-20241022-v2:0-provisioned-throughput-deployment",
];

fn session(id: &str, tag: Option<&str>, project: &str, started_ms: i64) -> SessionStart {
    SessionStart {
        id: id.to_owned(),
        parent_id: None,
        kind: "run",
        tag: tag.map(str::to_owned),
        program: Some("claude".to_owned()),
        cwd: Some("/tmp".to_owned()),
        pid: Some(4242),
        started_ms,
        budget_usd: None,
        attribution: Attribution {
            project: Some(project.to_owned()),
            ..Attribution::default()
        },
    }
}

/// Request `n` of a session: its model, provider and outcome follow from `n`.
fn request(id: String, session: &str, n: i64, started_ms: i64, model: &str) -> RequestRecord {
    let mut r = RequestRecord::new(id, Some(Arc::from(session)), started_ms, "chat");
    r.provider = Some(["openai", "anthropic"][(n % 2) as usize].to_owned());
    r.requested_model = Some(model.to_owned());
    r.served_model = Some(model.to_owned());
    (r.outcome, r.status) = match n % 9 {
        4 => (Outcome::UpstreamError, 502),
        7 => (Outcome::Rejected, 400),
        _ => (Outcome::Ok, 200),
    };
    r.prompt_tokens = Some(100 + n as u64);
    r.completion_tokens = Some(10 + n as u64 % 50);
    r.cost_usd = (r.outcome == Outcome::Ok).then(|| (n % 13) as f64 / 512.0);
    r.latency_ms = 12.0 + (n % 40) as f64 * 9.0;
    r.attempts = 1 + (n % 3) as u32;
    r.attempt_log = (0..r.attempts)
        .map(|a| AttemptRow {
            provider: r.provider.clone().unwrap_or_default(),
            model: model.to_owned(),
            status: Some(if a + 1 < r.attempts { 503 } else { r.status }),
            error_class: (a + 1 < r.attempts).then(|| "upstream_5xx".to_owned()),
            latency_ms: 5.0,
            waited_ms: 0.5,
        })
        .collect();
    r
}

/// The busy session (`busy-session-with-a-long-id`, tag alpha, project web: requests a second
/// apart over the last minutes) and sessions `m-00`..`m-12` (tag beta, project api), one
/// request each on model `i`. Returns every request written, in write order.
fn fill(location: &LedgerLocation, now: i64) -> Vec<RequestRecord> {
    let ledger = Ledger::open_at(location).unwrap();
    let busy = "busy-session-with-a-long-id";
    let start = now - (BUSY + 60) * 1000;
    ledger.session_started(session(busy, Some("alpha"), "web", start));
    let mut written = Vec::new();
    for n in 0..BUSY {
        let model = MODELS[(n % 4) as usize];
        let r = request(format!("req_{n:08x}"), busy, n, start + n * 1000, model);
        written.push(r.clone());
        ledger.record(r);
    }
    for (i, model) in MODELS.iter().enumerate() {
        let id = format!("m-{i:02}");
        let at = now - 50_000 + i as i64 * 1000;
        ledger.session_started(session(&id, Some("beta"), "api", at));
        let r = request(format!("req_1{i:07x}"), &id, i as i64, at + 10, model);
        written.push(r.clone());
        ledger.record(r);
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
    written
}

/// Status and body of `GET {url}`.
async fn get(url: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let resp = client.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn json(url: &str) -> serde_json::Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every request `query` selects, following `next_after` to the last page.
async fn every_request(base: &str, query: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page = json(&format!("{base}/api/requests?{query}{cursor}")).await;
        assert!(ids(&page).len() <= 50, "{page}");
        all.extend(ids(&page));
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// Which written requests a query should select.
type Keep = Box<dyn Fn(&RequestRecord) -> bool>;

/// The ids of `written` that `keep` selects, newest first.
fn expected(written: &[RequestRecord], keep: impl Fn(&RequestRecord) -> bool) -> Vec<String> {
    let mut rows: Vec<&RequestRecord> = written.iter().filter(|r| keep(r)).collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.started_ms, r.id.clone())));
    rows.into_iter().map(|r| r.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_searched_and_paged_and_no_table_is_cut() {
    let env = TestEnv::new();
    let now = smartproxy::ledger::now_ms();
    let written = fill(&LedgerLocation::Sqlite(env.db.clone()), now);
    let ui = Ui::start(&env, &[("TZ", "UTC")]);
    let base = ui.url.clone();
    let busy = "busy-session-with-a-long-id";
    let in_busy = |r: &RequestRecord| r.session_id.as_deref() == Some(busy);

    // The busy session, 50 a page to the end, then back from the last page to the first.
    let q = format!("session={busy}");
    let forward = every_request(&base, &q).await;
    assert_eq!(forward, expected(&written, in_busy));
    let mut pages = Vec::new();
    let mut url = format!("{base}/api/requests?{q}");
    loop {
        let page = json(&url).await;
        pages.push(ids(&page));
        match page["next_after"].as_str() {
            Some(next) => url = format!("{base}/api/requests?{q}&after={next}"),
            None => break,
        }
        assert!(page["next_after"].is_string());
    }
    assert_eq!(pages.len(), 5);
    let mut back = pages.len() - 1;
    let mut page = json(&url).await;
    while let Some(before) = page["prev_before"].as_str() {
        back -= 1;
        page = json(&format!("{base}/api/requests?{q}&before={before}")).await;
        assert_eq!(ids(&page), pages[back], "page {back} going back");
    }
    assert_eq!(back, 0, "back to the first page");

    // Filters, each against the rows written; a 7-day range holds them all.
    let all = |_: &RequestRecord| true;
    let cases: Vec<(String, Keep)> = vec![
        ("range=7d".into(), Box::new(all)),
        (
            format!("session={busy}&model=claude-sonnet&outcome=failed"),
            Box::new(move |r| {
                in_busy(r) && r.served_model.as_deref() == Some("claude-sonnet") && r.status >= 400
            }),
        ),
        (
            "range=7d&provider=anthropic".into(),
            Box::new(|r| r.provider.as_deref() == Some("anthropic")),
        ),
        ("range=7d&tag=beta".into(), Box::new(move |r| !in_busy(r))),
        ("range=7d&status=502".into(), Box::new(|r| r.status == 502)),
        (
            "range=7d&outcome=rejected&tag=alpha".into(),
            Box::new(move |r| in_busy(r) && r.outcome == Outcome::Rejected),
        ),
        (
            format!("range=7d&model={}", MODELS[12].replace(':', "%3A")),
            Box::new(|r| r.served_model.as_deref() == Some(MODELS[12])),
        ),
        ("range=7d&model=nobody".into(), Box::new(|_| false)),
    ];
    for (query, keep) in &cases {
        let want = expected(&written, keep);
        assert_eq!(every_request(&base, query).await, want, "{query}");
    }
    // No range and no session: today's (UTC) requests.
    let midnight = now - now.rem_euclid(86_400_000);
    let today = expected(&written, |r| r.started_ms >= midnight);
    assert_eq!(every_request(&base, "").await, today);

    // Downloads hold every match; bad parameters are 400s in the OpenAI error shape.
    let (status, csv) = get(&format!("{base}/requests?session={busy}&format=csv")).await;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), BUSY as usize + 1, "{csv}");
    assert!(
        csv.starts_with("id,session_id,tag,started_ms,model,"),
        "{csv}"
    );
    let (_, jsonl) = get(&format!("{base}/requests?range=7d&status=400&format=jsonl")).await;
    let rejected = written.iter().filter(|r| r.status == 400).count();
    assert_eq!(jsonl.lines().count(), rejected, "{jsonl}");
    for bad in [
        "outcome=meh",
        "status=abc",
        "after=1~a&before=2~b",
        "after=zz",
    ] {
        let (status, body) = get(&format!("{base}/api/requests?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"]["code"], "invalid_request", "{body}");
        assert!(error["error"]["message"].is_string(), "{body}");
    }

    // Sessions by project.
    let web = json(&format!("{base}/api/sessions?project=web")).await;
    let shown: Vec<&str> = web["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(shown, [busy]);
    let api = json(&format!("{base}/api/sessions?project=api")).await;
    assert_eq!(api["sessions"].as_array().unwrap().len(), MODELS.len());

    let Some(chromium) = chromium() else { return };
    browser_checks(&chromium, &base, busy, &written);
}

fn browser_checks(chromium: &std::path::Path, base: &str, busy: &str, written: &[RequestRecord]) {
    // The session page leads to its requests, with the same filter form.
    let dom = dump_dom(chromium, &format!("{base}/sessions/{busy}"));
    assert!(dom.contains(r#"id="request-filters""#), "{dom}");
    assert!(
        dom.contains(&format!(
            r#"<input type="hidden" name="session" value="{busy}">"#
        )),
        "{dom}"
    );
    assert!(dom.contains(r#"id="all-requests""#), "{dom}");
    let first = format!("{base}/requests?session={busy}");
    let dom = dump_dom(chromium, &first);
    assert_eq!(
        dom.matches(r#"<a href="/request/req_"#).count(),
        50,
        "{dom}"
    );
    assert!(dom.contains(r#"id="next-page""#), "{dom}");
    assert!(!dom.contains(r#"id="prev-page""#), "{dom}");
    assert!(dom.contains(r#"aria-current="page">Requests</a>"#), "{dom}");
    let filtered = format!("{base}/requests?range=7d&outcome=failed&provider=openai");
    let dom = dump_dom(chromium, &filtered);
    let failed = written
        .iter()
        .filter(|r| r.status >= 400 && r.provider.as_deref() == Some("openai"))
        .count();
    assert_eq!(
        dom.matches(r#"<tr class="failed">"#).count(),
        failed,
        "{dom}"
    );
    assert!(
        dom.contains(r#"<option value="failed" selected="">failed</option>"#),
        "{dom}"
    );
    screenshot_at(chromium, &first, "requests-session", (1280, 800));
    screenshot_at(chromium, &filtered, "requests-failed", (1280, 800));
    screenshot_at(
        chromium,
        &format!("{base}/sessions/{busy}"),
        "session-busy",
        (1280, 800),
    );

    // No table wider than its wrapper at 1280 or 1400 px (chart.js marks each wrapper).
    let pages = [
        "/".to_owned(),
        "/sessions".to_owned(),
        format!("/sessions/{busy}"),
        "/sessions/m-12".to_owned(),
        format!("/requests?session={busy}"),
        "/requests?range=7d&tag=beta".to_owned(),
        format!("/request/{}", written[5].id),
        "/breakdown?by=model&range=7d".to_owned(),
        "/performance".to_owned(),
    ];
    for width in [1280, 1400] {
        for path in &pages {
            let dom = dump_dom_at(chromium, &format!("{base}{path}"), (width, 800));
            let fits = dom.matches(r#"data-overflow="false""#).count();
            assert!(fits >= 1, "{path} at {width}: no table measured\n{dom}");
            assert!(
                !dom.contains(r#"data-overflow="true""#),
                "{path} at {width} px cuts a table"
            );
        }
    }
    screenshot_at(chromium, &format!("{base}/"), "overview-1280", (1280, 800));

    // 13 models on /performance: the 13th has the first colour and another marker shape.
    let dom = dump_dom(chromium, &format!("{base}/performance"));
    assert!(dom.contains(r#"class="swatch s0 m1""#), "{dom}");
    assert!(dom.contains(r#"class="swatch s11 m0""#), "{dom}");
    let kinds: HashSet<&str> = ["<circle", "<rect"]
        .into_iter()
        .filter(|k| dom.contains(&format!("{k} ")))
        .collect();
    assert_eq!(kinds.len(), 2, "circles and squares drawn");
    screenshot_at(
        chromium,
        &format!("{base}/performance"),
        "performance-13-models",
        (1280, 800),
    );
}
