//! The web dashboard end to end: `smartproxy ui` over a ledger filled by real `run` sessions
//! (a nested run, a failed request, markup in a tag and a program name), each page fetched
//! raw (status, headers, escaping) and rendered in headless Chromium (DOM after the chart
//! script ran, a screenshot checked to be a 1280x900 PNG with content); the empty ledger; 404s.
//! Access rules are in tests/web_auth.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use support::chromium::{chromium, dump_dom, screenshot};
use support::ui::Ui;
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

const TAG: &str = "<script>alert('tag')</script>";
const PROGRAM: &str = "<img src=x onerror=alert(1)>";

/// What the ledger holds after `populate`.
struct Recorded {
    outer: String,
    inner: String,
    ok_request: String,
    failed_request: String,
    requests: usize,
}

/// Two sessions (one nested in the other, the outer tagged with markup), two good requests,
/// one refused (a wrong key: a failed row), and a session whose program name is markup.
async fn populate(env: &TestEnv) -> Recorded {
    let outer = env.start_run(&["run", "--mock", "--tag", TAG], &[]);
    let parent = outer.env["SMARTPROXY_SESSION_ID"].clone();
    let ok = post_chat(
        &outer.base_url,
        Some(&outer.key),
        chat_body("gpt-4o-mini", false, "hello"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let refused = post_chat(
        &outer.base_url,
        Some("sk-wrong"),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(refused.status, 401);
    let inner = env.start_run(
        &["run", "--mock", "--tag", "inner"],
        &[("SMARTPROXY_SESSION_ID", &parent)],
    );
    let child_id = inner.env["SMARTPROXY_SESSION_ID"].clone();
    let reply = post_chat(
        &inner.base_url,
        Some(&inner.key),
        chat_body("gpt-4o", true, "tell me more"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(inner.finish(0).status.success());
    assert!(outer.finish(3).status.code() == Some(3));

    let program = env.path().join(PROGRAM);
    std::os::unix::fs::symlink("/bin/true", &program).unwrap();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--"]).arg(&program);
    assert!(run_to_end(cmd).status.success());

    let rows = env.requests();
    let find = |status: &str| {
        rows.iter()
            .find(|r| r["status"] == status && r["session_id"] == parent)
            .unwrap()["id"]
            .clone()
    };
    Recorded {
        ok_request: find("200"),
        failed_request: find("401"),
        outer: parent,
        inner: child_id,
        requests: rows.len(),
    }
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = support::http_client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// Markup from users shows as text: escaped in the HTML, never an element in the DOM.
fn assert_escaped(html: &str, what: &str) {
    assert!(
        !html.contains("<script>alert"),
        "{what}: a tag became a script element"
    );
    assert!(
        !html.contains("<img src=x"),
        "{what}: a program name became an element"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_and_links_up() {
    let env = TestEnv::new();
    let rec = populate(&env).await;
    let ui = Ui::start(&env, &[]);
    let chromium = chromium();

    // Overview: today, month, chart data, sessions with the nested one under its parent.
    let (status, headers, html) = get(&format!("{}/", ui.url)).await;
    assert_eq!(status, 200, "{html}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert_escaped(&html, "overview");
    assert!(html.contains(&format!(r#"href="/sessions/{}""#, rec.outer)));
    assert!(html.contains(&format!(r#"href="/request/{}""#, rec.failed_request)));
    assert!(
        !html.contains("<svg"),
        "the chart is drawn by the script, not the server"
    );
    let outer_at = html.find(&format!("/sessions/{}", rec.outer)).unwrap();
    let inner_at = html.find(&format!("/sessions/{}", rec.inner)).unwrap();
    assert!(
        inner_at > outer_at,
        "the nested run is listed under its parent"
    );
    assert!(
        html.contains(r#"class="failed""#),
        "the refused request is highlighted"
    );

    // Assets: embedded, typed, cacheable, revalidated by ETag.
    let (status, headers, js) = get(&format!("{}/assets/chart.js", ui.url)).await;
    assert_eq!(status, 200);
    assert!(js.contains("createElementNS"));
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let again = support::http_client()
        .get(format!("{}/assets/chart.js", ui.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(get(&format!("{}/assets/style.css", ui.url)).await.0, 200);

    // Session page: the tree, totals over it, its own requests linking to theirs.
    let (status, _, html) = get(&format!("{}/sessions/{}", ui.url, rec.outer)).await;
    assert_eq!(status, 200);
    assert_escaped(&html, "session");
    assert!(
        html.contains("Session tree") && html.contains(&format!("/sessions/{}", rec.inner)),
        "{html}"
    );
    assert!(html.contains(&format!("/request/{}", rec.ok_request)));
    assert!(
        html.contains(r#"<span class="badge bad">exit 3</span>"#),
        "{html}"
    );
    let (status, _, by_prefix) = get(&format!("{}/sessions/{}", ui.url, &rec.outer[..10])).await;
    assert_eq!(status, 200, "a unique prefix leads to the session");
    assert!(by_prefix.contains(&format!("<h1>Session <code>{}</code></h1>", rec.outer)));
    let (_, _, inner_html) = get(&format!("{}/sessions/{}", ui.url, rec.inner)).await;
    assert!(
        inner_html.contains(&format!(r#"<a href="/sessions/{0}">{0}</a> › "#, rec.outer)),
        "breadcrumb to the parent"
    );

    // Request pages: every field, attempts, the session link, payloads not captured.
    let (status, _, html) = get(&format!("{}/request/{}", ui.url, rec.ok_request)).await;
    assert_eq!(status, 200);
    for field in [
        "served model",
        "prompt tokens",
        "latency",
        "first byte",
        "request fingerprint",
        "Attempts (routing trail)",
        "Not captured",
    ] {
        assert!(html.contains(field), "{field}: {html}");
    }
    assert!(html.contains(&format!(r#"href="/sessions/{}""#, rec.outer)));
    let (_, _, failed) = get(&format!("{}/request/{}", ui.url, rec.failed_request)).await;
    assert!(
        failed.contains("invalid_api_key") && failed.contains(r#"class="badge bad""#),
        "{failed}"
    );

    // Performance: a point per request.
    let (status, _, html) = get(&format!("{}/performance", ui.url)).await;
    assert_eq!(status, 200);
    assert!(html.contains("gpt-4o-mini") && html.contains(r#"id="perf-data""#));

    // JSON of the same pages, and 404s for unknown ids (HTML and JSON).
    let (status, _, json) = get(&format!("{}/api/request/{}", ui.url, rec.ok_request)).await;
    assert_eq!(status, 200);
    let detail: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(detail["attempts"][0]["provider"], "mock");
    for path in ["/request/req_nope", "/sessions/nope", "/nowhere/at/all"] {
        let (status, headers, html) = get(&format!("{}{path}", ui.url)).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            html.contains("Not found") && html.contains(r#"href="/""#),
            "{html}"
        );
    }
    let (status, _, json) = get(&format!("{}/api/sessions/nope", ui.url)).await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["error"]["code"],
        "not_found"
    );

    let Some(chromium) = chromium else { return };
    // In the browser: the script drew the charts (30 bars, a point per request), markup stays
    // text, and each page's screenshot has content.
    let dom = dump_dom(&chromium, &format!("{}/", ui.url));
    assert!(
        dom.contains(r#"data-drawn="30""#),
        "spend chart not drawn: {dom}"
    );
    assert_eq!(dom.matches(r#"class="bar""#).count(), 30);
    assert_escaped(&dom, "overview DOM");
    screenshot(&chromium, &format!("{}/", ui.url), "overview");

    let dom = dump_dom(&chromium, &format!("{}/performance", ui.url));
    assert!(
        dom.contains(&format!(r#"data-drawn="{}""#, rec.requests)),
        "scatter not drawn: {dom}"
    );
    assert_eq!(dom.matches("<circle").count(), rec.requests);
    assert!(
        dom.contains(&format!(r#"href="/request/{}""#, rec.ok_request)),
        "points link to their requests"
    );
    screenshot(&chromium, &format!("{}/performance", ui.url), "performance");

    let dom = dump_dom(&chromium, &format!("{}/sessions/{}", ui.url, rec.outer));
    assert!(
        dom.contains("└"),
        "the nested run is indented under its parent"
    );
    assert_escaped(&dom, "session DOM");
    screenshot(
        &chromium,
        &format!("{}/sessions/{}", ui.url, rec.outer),
        "session",
    );

    let dom = dump_dom(
        &chromium,
        &format!("{}/request/{}", ui.url, rec.failed_request),
    );
    assert!(dom.contains("invalid_api_key"));
    screenshot(
        &chromium,
        &format!("{}/request/{}", ui.url, rec.ok_request),
        "request",
    );
    screenshot(
        &chromium,
        &format!("{}/request/req_nope", ui.url),
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_ledger_says_what_to_do() {
    let env = TestEnv::new();
    let ui = Ui::start(&env, &[]);
    for path in ["/", "/performance"] {
        let (status, _, html) = get(&format!("{}{path}", ui.url)).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.contains("smartproxy run --"), "{path}: {html}");
    }
    assert_eq!(get(&format!("{}/request/req_x", ui.url)).await.0, 404);
    if let Some(chromium) = chromium() {
        let dom = dump_dom(&chromium, &format!("{}/", ui.url));
        assert!(dom.contains("Nothing recorded yet"), "{dom}");
        screenshot(&chromium, &format!("{}/", ui.url), "empty");
    }
}

/// The pages read through read-only connections, which never migrate: `ui` brings a ledger an
/// older build left (here, one without the newest column) up to date before serving it.
#[tokio::test(flavor = "multi_thread")]
async fn ui_upgrades_a_ledger_an_older_build_left() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--summary", "none", "--", "true"]);
    assert!(run_to_end(cmd).status.success());
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    let latest = version(&env.ledger());
    env.ledger()
        .execute_batch(&format!(
            // Undoes the attribution step and migration 19 (narrow request rows): the ledger
            // as version 18 left it. Later migrations (`IF NOT EXISTS` indexes) run again.
            "{}{}PRAGMA user_version = 18;",
            include_str!("../testdata/ledger/undo_attrib.sql"),
            include_str!("../testdata/ledger/undo_v19.sql"),
        ))
        .unwrap();
    let ui = Ui::start(&env, &[]);
    let (status, _, html) = get(&format!("{}/", ui.url)).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(version(&env.ledger()), latest);
}

#[test]
fn weak_secrets_stop_the_dashboard_at_start() {
    let env = TestEnv::new();
    for (name, value, expect) in [
        ("JWT_SECRET", "changeme", "too short"),
        (
            "JWT_SECRET",
            "secretsecretsecretsecretsecretsecret",
            "well-known or guessable",
        ),
        (
            "JWT_SECRET",
            "replace-me-with-32-or-more-random-characters",
            "well-known or guessable",
        ),
        ("WEBUI_SECURITY", "sometimes", "is not one of"),
    ] {
        let mut cmd = env.command();
        cmd.args(["ui"]).env(name, value);
        let out = run_to_end(cmd);
        assert_eq!(out.status.code(), Some(1), "{value}");
        assert!(
            text(&out.stderr).contains(expect),
            "{value}: {}",
            text(&out.stderr)
        );
    }
    let mut cmd = env.command();
    cmd.args(["ui", "token"]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("JWT_SECRET is not set"),
        "{}",
        text(&out.stderr)
    );
}

/// The daemon serves the dashboard on its admin listener; its sessions (one per client key and
/// day, never ended) show their spend from the usage rollup.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_the_dashboard_with_its_sessions_spend() {
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "providers:\n  - name: m\n    kind: mock\n");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[]);
    for _ in 0..2 {
        let reply = post_chat(
            &format!("{}/v1", daemon.listen),
            None,
            chat_body("gpt-4o", false, "hi"),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.requests().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the requests were never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = env.requests();
    let spent: f64 = rows
        .iter()
        .map(|r| r["cost_usd"].parse::<f64>().unwrap())
        .sum();
    let session = rows[0]["session_id"].clone();
    assert!(session.starts_with("daemon-"), "{session}");
    let (status, _, html) = get(&format!("{}/", daemon.admin)).await;
    assert_eq!(status, 200);
    let row = html
        .split("<tr")
        .find(|r| r.contains(&format!("/sessions/{session}")))
        .unwrap();
    let money = smartproxy::format::money(Some(spent));
    assert!(
        row.contains(&money) && row.contains(">2<"),
        "{money} in {row}"
    );
    let (status, _, page) = get(&format!("{}/sessions/{session}", daemon.admin)).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("/request/req_").count(), 2);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_page_shows_captured_bodies_only_when_captured() {
    let env = TestEnv::new();
    let captured = env.start_run(&["run", "--mock", "--capture"], &[]);
    let prompt = "CAPTURED <b>prompt</b> text";
    let reply = post_chat(
        &captured.base_url,
        Some(&captured.key),
        chat_body("gpt-4o-mini", false, prompt),
    )
    .await;
    assert_eq!(reply.status, 200);
    let with_capture = reply.headers["x-smartproxy-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(captured.finish(0).status.success());
    let plain = env.start_run(&["run", "--mock"], &[]);
    let reply = post_chat(
        &plain.base_url,
        Some(&plain.key),
        chat_body("gpt-4o-mini", false, prompt),
    )
    .await;
    let without = reply.headers["x-smartproxy-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(plain.finish(0).status.success());

    let ui = Ui::start(&env, &[]);
    let (status, _, html) = get(&format!("{}/request/{with_capture}", ui.url)).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("CAPTURED &lt;b&gt;prompt&lt;/b&gt; text"),
        "the request body, escaped: {html}"
    );
    assert!(!html.contains("<b>prompt</b>"), "{html}");
    assert!(
        html.contains("chat.completion"),
        "the response body: {html}"
    );
    let (status, _, html) = get(&format!("{}/request/{without}", ui.url)).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Not captured") && !html.contains("CAPTURED"),
        "{html}"
    );
}

/// `/budgets` shows every limit where it stands, the same lines as `smartproxy budget`: the
/// process-wide daily and monthly limits of the config and a key's daily budget made with
/// `keys create --budget-daily`, with what that key's request cost.
#[tokio::test(flavor = "multi_thread")]
async fn the_budgets_page_shows_every_limit_as_budget_does() {
    let env = TestEnv::new();
    // A scripted upstream: the mock provider's simulated costs count toward no budget.
    let upstream = support::upstream::MockUpstream::start();
    env.upstream_config(
        &upstream.base_url(),
        "budget:\n  daily_usd: 2\n  monthly_usd: 30\n  timezone: utc\n",
    );
    let mut create = env.command();
    create.args([
        "keys",
        "create",
        "--name",
        "tight",
        "--budget-daily",
        "0.5",
        "--json",
    ]);
    let created: serde_json::Value = serde_json::from_slice(&run_to_end(create).stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let config = env.path().join("smartproxy.yaml");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", "k")]);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]});
    let reply = post_chat(
        &format!("{}/v1", daemon.listen),
        Some(&key),
        body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    daemon.stop();
    let spent: f64 = env
        .requests()
        .iter()
        .map(|r| r["cost_usd"].parse::<f64>().unwrap())
        .sum();
    assert!(spent > 0.0);

    let mut cmd = env.command();
    cmd.args(["budget", "--json"]);
    let cli: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    let ui = Ui::start(&env, &[]);
    let (status, _, api) = get(&format!("{}/api/budgets", ui.url)).await;
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    // (scope, period, cap, spent, reserved, left): the same from both.
    let lines = |v: &serde_json::Value| -> Vec<String> {
        v["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let usd = |k: &str| s[k].as_f64().unwrap();
                format!(
                    "{} {} {} {:.9} {} {:.9}",
                    s["scope"],
                    s["period"],
                    s["cap_usd"],
                    usd("spent_usd"),
                    s["reserved_usd"],
                    usd("left_usd")
                )
            })
            .collect()
    };
    assert_eq!(lines(&api), lines(&cli));
    let expected = [
        format!("\"all\" \"day\" 2.0 {spent:.9} 0.0 {:.9}", 2.0 - spent),
        format!(
            "\"key:tight\" \"day\" 0.5 {spent:.9} 0.0 {:.9}",
            0.5 - spent
        ),
        format!("\"all\" \"month\" 30.0 {spent:.9} 0.0 {:.9}", 30.0 - spent),
    ];
    assert_eq!(lines(&api), expected, "{api}");

    let (status, _, html) = get(&format!("{}/budgets", ui.url)).await;
    assert_eq!(status, 200);
    for needle in [
        "key:tight",
        "<meter",
        "runs out",
        smartproxy::format::money(Some(0.5 - spent)).as_str(),
    ] {
        assert!(html.contains(needle), "{needle} not in {html}");
    }
    assert!(html.contains(r#"<a href="/budgets" aria-current="page">"#));
    let (status, headers, csv) = get(&format!("{}/budgets?format=csv", ui.url)).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv_lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        csv_lines[0],
        "scope,period,period_start_ms,cap_usd,spent_usd,reserved_usd,left_usd,runs_out_ms"
    );
    assert!(csv_lines[2].starts_with("key:tight,day,"), "{csv}");
    assert_eq!(csv_lines.len(), 4, "{csv}");
    if let Some(chromium) = chromium() {
        screenshot(&chromium, &format!("{}/budgets", ui.url), "budgets");
    }
}
