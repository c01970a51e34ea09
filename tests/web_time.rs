//! The dashboard over time and live, end to end. `/trends` over a ledger of 30 requests on 10
//! days (written through the real `Ledger`): per day, hour and month, its JSON, downloads and
//! 400s, rendered in headless Chromium (four charts drawn, screenshots at 1280x800). Then the
//! overview and a running `run --mock` session's page in Chromium while a new request is
//! made: the page shows it without a reload. A gate between Chromium and `smartproxy ui`
//! holds the page's first poll until the request is in the ledger, so nothing races.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use smartproxy::config::LedgerLocation;
use smartproxy::ledger::{Ledger, Outcome, RequestRecord};
use support::TestEnv;
use support::chromium::{chromium, dump_dom, dump_dom_after, screenshot_at};
use support::ui::{Ui, get, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
const DAYS: i64 = 10;

/// Request `k` (0..3) of day `d` back: its latency, and whether it failed.
fn latency(d: i64, k: i64) -> f64 {
    (10 + d * 10 + k * 5) as f64
}
fn failed(d: i64, k: i64) -> bool {
    k == 2 && d % 2 == 0
}

/// Three requests a day, a minute apart, on each of the last `DAYS` days.
fn fill(location: &LedgerLocation, now: i64) {
    let ledger = Ledger::open_at(location).unwrap();
    for d in 0..DAYS {
        for k in 0..3 {
            let mut r = RequestRecord::new(
                format!("req_{d:02}_{k}"),
                None,
                now - d * DAY_MS - k * MINUTE_MS,
                "chat",
            );
            r.provider = Some("openai".to_owned());
            r.requested_model = Some("gpt-4o".to_owned());
            r.served_model = Some("gpt-4o".to_owned());
            r.outcome = if failed(d, k) {
                Outcome::UpstreamError
            } else {
                Outcome::Ok
            };
            r.status = if failed(d, k) { 502 } else { 200 };
            r.prompt_tokens = Some(100);
            r.completion_tokens = Some(10);
            r.cost_usd = (!failed(d, k)).then_some(1.0 / 64.0);
            r.latency_ms = latency(d, k);
            r.attempts = 1;
            ledger.record(r);
        }
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
}

fn sum(trends: &serde_json::Value, field: &str) -> u64 {
    trends["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn trends_per_hour_day_and_month_with_percentiles() {
    let env = TestEnv::new();
    let now = smartproxy::ledger::now_ms() - MINUTE_MS;
    fill(&LedgerLocation::Sqlite(env.db.clone()), now);
    let ui = Ui::start(&env, &[("TZ", "UTC")]);
    let base = ui.url.clone();
    let day = |d: i64| {
        chrono::Utc
            .timestamp_millis_opt(now - d * DAY_MS)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };

    let days = json(&format!("{base}/api/trends?every=day&range=30d")).await;
    let periods = days["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 30, "{days}");
    assert_eq!(days["total"]["requests"], 3 * DAYS, "{days}");
    assert_eq!(days["latency_sample"], 3 * DAYS, "{days}");
    assert_eq!(days["latency_capped"], false);
    let today = periods.last().unwrap();
    assert_eq!(today["period"], day(0), "{days}");
    assert_eq!(
        (today["requests"].as_u64(), today["failed"].as_u64()),
        (Some(3), Some(1))
    );
    // Latencies 10, 15, 20 ms: nearest-rank p50 and p95.
    assert_eq!(
        (today["p50_ms"].as_f64(), today["p95_ms"].as_f64()),
        (Some(15.0), Some(20.0))
    );
    let three_back = periods.iter().find(|p| p["period"] == day(3)).unwrap();
    assert_eq!(three_back["p95_ms"].as_f64(), Some(latency(3, 2)), "{days}");
    assert_eq!(three_back["cost_usd"].as_f64(), Some(3.0 / 64.0), "{days}");
    let empty = periods.iter().find(|p| p["period"] == day(20)).unwrap();
    assert_eq!(
        (empty["requests"].as_u64(), &empty["p50_ms"]),
        (Some(0), &serde_json::Value::Null)
    );

    let hours = json(&format!("{base}/api/trends?every=hour&range=today")).await;
    assert_eq!(hours["periods"].as_array().unwrap().len(), 24, "{hours}");
    assert_eq!(sum(&hours, "requests"), 3, "{hours}");
    let months = json(&format!("{base}/api/trends?every=month&range=30d")).await;
    assert!(months["periods"].as_array().unwrap().len() <= 2, "{months}");
    assert_eq!(sum(&months, "requests"), 3 * DAYS as u64, "{months}");
    assert_eq!(sum(&months, "failed"), 5, "{months}");

    let (status, disposition, csv) = get(
        &format!("{base}/trends?every=day&range=30d&format=csv"),
        "content-disposition",
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert!(
        disposition.starts_with("attachment; filename=\"trends-day-"),
        "{disposition}"
    );
    assert_eq!(csv.lines().count(), 31, "{csv}");
    assert!(csv.starts_with("period,requests,failed,cost_usd"), "{csv}");
    let (_, _, jsonl) = get(
        &format!("{base}/trends?every=hour&range=today&format=jsonl"),
        "",
    )
    .await;
    assert_eq!(jsonl.lines().count(), 24, "{jsonl}");

    let (status, _, body) = get(&format!("{base}/api/trends?every=week"), "").await;
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hour, day or month"),
        "{body}"
    );
    let (status, _, body) = get(
        &format!("{base}/trends?every=hour&from=2026-01-01&to=2026-03-01"),
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 31 days"), "{body}");

    let Some(chromium) = chromium() else { return };
    let url = format!("{base}/trends?every=day&range=30d");
    let dom = dump_dom(&chromium, &url);
    assert_eq!(dom.matches(r#"data-drawn="30""#).count(), 4, "{dom}");
    for table in ["requests", "cost", "tokens", "latency"] {
        assert!(dom.contains(&format!(r#"id="{table}-table""#)), "{dom}");
    }
    assert!(
        dom.contains(r#"href="/trends" aria-current="page""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"class="bar over""#),
        "failures and p50 drawn inside: {dom}"
    );
    assert!(dom.contains("From 30 requests"), "{dom}");
    screenshot_at(&chromium, &url, "trends-day", (1280, 800));
    let url = format!("{base}/trends?every=hour&range=7d");
    let dom = dump_dom(&chromium, &url);
    assert_eq!(dom.matches(r#"data-drawn="168""#).count(), 4, "{dom}");
    screenshot_at(&chromium, &url, "trends-hour", (1280, 800));
    screenshot_at(
        &chromium,
        &format!("{base}/trends?every=month&range=month"),
        "trends-month",
        (1280, 800),
    );
}

/// A TCP relay in front of `smartproxy ui` that holds the second `GET {path}` (a live page's
/// first poll) until released, and says when it holds it.
struct Gate {
    url: String,
    held: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

type Signals = Arc<
    Mutex<(
        usize,
        Option<oneshot::Sender<()>>,
        Option<oneshot::Receiver<()>>,
    )>,
>;

impl Gate {
    async fn start(upstream: &str, path: &str) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (held_tx, held) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        let signals: Signals = Arc::new(Mutex::new((0, Some(held_tx), Some(release_rx))));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let needle = format!("GET {path} HTTP/1.1\r\n").into_bytes();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, up, needle.clone(), signals.clone()));
            }
        });
        Gate {
            url,
            held,
            release,
            task,
        }
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    up: tokio::net::TcpStream,
    needle: Vec<u8>,
    signals: Signals,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = up.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
    });
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if buf[..n]
            .windows(needle.len())
            .any(|w| w == needle.as_slice())
        {
            let wait = {
                let mut s = signals.lock().unwrap();
                s.0 += 1;
                if s.0 == 2 {
                    let _ = s.1.take().unwrap().send(());
                    s.2.take()
                } else {
                    None
                }
            };
            if let Some(wait) = wait {
                let _ = wait.await;
            }
        }
        if up_write.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Loads `path` through a gate in Chromium, makes a request in `session` while the page's
/// first poll is held, and returns the DOM after the poll, with the new request's id.
async fn live_dom(
    env: &Arc<TestEnv>,
    ui: &str,
    session: &support::RunSession,
    path: &str,
    chromium: &std::path::Path,
) -> (String, String) {
    let gate = Gate::start(ui, path).await;
    let url = format!("{}{path}", gate.url);
    let browser = chromium.to_owned();
    // One poll (5 s) fits in the budget, not two.
    let dom = tokio::task::spawn_blocking(move || dump_dom_after(&browser, &url, 8000));
    tokio::time::timeout(Duration::from_secs(60), gate.held)
        .await
        .unwrap()
        .unwrap();
    let before = env.requests().len();
    let body = support::chat_body("gpt-4o", false, "live?");
    let reply = support::post_chat(&session.base_url, Some(&session.key), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.requests().len() == before {
        assert!(Instant::now() < deadline, "the request was never recorded");
        support::pause(Duration::from_millis(20));
    }
    let id = env.requests().last().unwrap()["id"].clone();
    let _ = gate.release.send(());
    let dom = dom.await.unwrap();
    gate.task.abort();
    (dom, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_and_a_running_session_update_without_a_reload() {
    let env = Arc::new(TestEnv::new());
    let session = env.start_run(&["run", "--mock"], &[]);
    let body = support::chat_body("gpt-4o", false, "first");
    let reply = support::post_chat(&session.base_url, Some(&session.key), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.requests().is_empty() {
        assert!(Instant::now() < deadline, "the request was never recorded");
        support::pause(Duration::from_millis(20));
    }
    let session_id = env.requests()[0]["session_id"].clone();
    let ui = Ui::start(&env, &[("TZ", "UTC")]);
    let (_, _, js) = get(&format!("{}/assets/live.js", ui.url), "").await;
    assert!(js.contains("visibilitychange"), "{js}");
    let Some(chromium) = chromium() else { return };

    let (dom, id) = live_dom(&env, &ui.url, &session, "/", &chromium).await;
    assert!(
        dom.contains(&format!(">{id}</a>")),
        "the new request shows: {dom}"
    );
    assert!(dom.contains("live · updated "), "{dom}");
    screenshot_at(
        &chromium,
        &format!("{}/", ui.url),
        "overview-live",
        (1280, 800),
    );

    let page = format!("/sessions/{session_id}");
    let (dom, id) = live_dom(&env, &ui.url, &session, &page, &chromium).await;
    assert!(
        dom.contains(&format!(">{id}</a>")),
        "the new request shows: {dom}"
    );
    assert!(dom.contains("3 requests"), "the totals follow: {dom}");
    assert!(dom.contains("live · updated "), "{dom}");
    screenshot_at(
        &chromium,
        &format!("{}{page}", ui.url),
        "session-live",
        (1280, 800),
    );

    let out = session.finish(0);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let (_, _, ended) = get(&format!("{}{page}", ui.url), "").await;
    assert!(
        !ended.contains(r#"id="live""#),
        "an ended session is not live: {ended}"
    );
    let (_, _, overview) = get(&format!("{}/", ui.url), "").await;
    assert!(overview.contains(r#"id="live""#), "{overview}");
}
