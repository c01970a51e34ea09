//! What a web page can do with the daemon on loopback: a page on another site posting a
//! "simple" request (no preflight) to a model endpoint, a DNS-rebinding page naming its own
//! domain as `Host`, a web form's body. Each is refused (403/415) and recorded, and the
//! provider never sees the request; SDK-shaped requests (no Origin, JSON) and loopback pages
//! go through, as do the names and origins the config lists. A real headless Chromium page on
//! another origin tries both attacks. The access matrix over every route is in tests/access.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use support::daemon::Daemon;
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, chat_body, skip_or_fail, text};

/// A daemon whose one provider is `upstream`, keyless on loopback (the default set-up).
fn daemon(env: &TestEnv, upstream: &MockUpstream, extra: &str) -> Daemon {
    let config = env.upstream_config(&upstream.base_url(), extra);
    Daemon::start(env, &config, &[], &[("UPSTREAM_KEY", "k")])
}

async fn post(
    url: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, serde_json::Value) {
    let mut req = support::http_client().post(url).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = support::http_client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

const EVIL: (&str, &str) = ("origin", "https://evil.example");
const CROSS_SITE: (&str, &str) = ("sec-fetch-site", "cross-site");

#[tokio::test(flavor = "multi_thread")]
async fn a_page_on_another_site_cannot_spend_through_the_daemon() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let d = daemon(
        &env,
        &upstream,
        "allowed_origins: [\"https://app.example.com\"]\n",
    );
    let chat = format!("{}/v1/chat/completions", d.listen);
    let body = || chat_body("gpt-4o-mini", false, "spend my credit");

    // The simple request a page can send without a preflight.
    let (status, error) = post(
        &chat,
        Some("text/plain;charset=UTF-8"),
        &[EVIL, CROSS_SITE, ("sec-fetch-mode", "no-cors")],
        body(),
    )
    .await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["error"]["code"], "cross_site_request");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("https://evil.example") && message.contains("allowed_origins"),
        "{message}"
    );
    // The same with a JSON body, or with only the fetch metadata, or an opaque origin.
    for headers in [
        &[EVIL][..],
        &[CROSS_SITE, ("sec-fetch-mode", "cors")],
        &[("origin", "null")],
    ] {
        let (status, error) = post(&chat, Some("application/json"), headers, body()).await;
        assert_eq!(status, 403, "{headers:?}: {error}");
    }
    // A web form's body, or plain text, is no model request even without an Origin.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, error) = post(&chat, Some(ct), &[], body()).await;
        assert_eq!(status, 415, "{ct}: {error}");
        assert_eq!(error["error"]["code"], "unsupported_content_type");
        let (status, _) = post(
            &format!("{}/api/generate", d.listen),
            Some(ct),
            &[],
            r#"{"model":"gpt-4o-mini","prompt":"hi","stream":false}"#.to_owned(),
        )
        .await;
        assert_eq!(status, 415, "{ct} to /api/generate");
    }
    assert_eq!(upstream.calls(), 0, "nothing reached the provider");
    // A key header is no page's (it needs a preflight): a script's form-typed JSON with its key
    // is served (python's urllib declares every body a form).
    let keyed = post(
        &chat,
        Some("application/x-www-form-urlencoded"),
        &[("authorization", "Bearer sk-anything")],
        body(),
    )
    .await;
    assert_eq!(keyed.0, 200, "{}", keyed.1);

    // What SDKs send, a loopback page (a local web UI) and a listed origin go through.
    let sdk = post(&chat, Some("application/json"), &[], body()).await;
    assert_eq!(sdk.0, 200, "{}", sdk.1);
    let scripted = post(&chat, None, &[], body()).await;
    assert_eq!(scripted.0, 200, "no content type at all: {}", scripted.1);
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:3000",
        "https://app.example.com",
    ] {
        let (status, error) = post(
            &chat,
            Some("application/json"),
            &[("origin", origin), CROSS_SITE],
            body(),
        )
        .await;
        assert_eq!(status, 200, "{origin}: {error}");
    }
    assert_eq!(upstream.calls(), 6);
    d.stop();

    // Every refusal is a row of its own, rejected, with nothing spent.
    let rows = env.requests();
    let refused: Vec<_> = rows.iter().filter(|r| r["status"] != "200").collect();
    assert_eq!(refused.len(), 8, "{rows:?}");
    for row in &refused {
        assert_eq!(row["outcome"], "rejected", "{row:?}");
        assert!(
            ["cross_site_request", "unsupported_content_type"]
                .contains(&row["error_code"].as_str()),
            "{row:?}"
        );
        assert!(
            row["cost_usd"] == "NULL" || row["cost_usd"].parse::<f64>().unwrap() == 0.0,
            "{row:?}"
        );
    }
    assert_eq!(
        refused
            .iter()
            .filter(|r| r["endpoint"] == "chat.completions")
            .count(),
        6,
        "a refused chat request is filed under its endpoint: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_host_is_refused_on_both_listeners() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let d = daemon(&env, &upstream, "server_names: [proxy.example.com]\n");
    let port = |base: &str| base.rsplit(':').next().unwrap().to_owned();
    let (public_port, admin_port) = (port(&d.listen), port(&d.admin));
    let foreign = [
        format!("evil.example:{public_port}"),
        format!("localhost.evil.example:{public_port}"),
        format!("127.0.0.1.nip.io:{public_port}"),
    ];
    for host in &foreign {
        let (status, error) = post(
            &format!("{}/v1/chat/completions", d.listen),
            Some("application/json"),
            &[("host", host)],
            chat_body("gpt-4o-mini", false, "hi"),
        )
        .await;
        assert_eq!(status, 403, "{host}: {error}");
        assert_eq!(error["error"]["code"], "host_not_allowed");
        for (base, path) in [
            (&d.listen, "/v1/models"),
            (&d.admin, "/api/"),
            (&d.admin, "/"),
            (&d.admin, "/admin/stats"),
        ] {
            let (status, body) = get(&format!("{base}{path}"), &[("host", host)]).await;
            assert_eq!(status, 403, "{host} {path}: {body}");
            assert!(body.contains("host_not_allowed"), "{body}");
        }
        let resp = support::http_client()
            .post(format!("{}/admin/reload", d.admin))
            .header("host", host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "reload with Host {host}");
    }
    assert_eq!(upstream.calls(), 0);

    // Loopback names with or without a port (an SSH tunnel changes it) and listed names pass.
    let hosts = [
        format!("127.0.0.1:{public_port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{public_port}"),
        "localhost".to_owned(),
        "localhost:8080".to_owned(),
        format!("[::1]:{public_port}"),
        "proxy.example.com".to_owned(),
        "PROXY.example.com:443".to_owned(),
    ];
    for host in &hosts {
        let (status, body) = get(&format!("{}/v1/models", d.listen), &[("host", host)]).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _) = get(
        &format!("{}/api/", d.admin),
        &[("host", &format!("localhost:{admin_port}"))],
    )
    .await;
    assert_eq!(status, 200);
    d.stop();
    let rows = env.requests();
    assert_eq!(
        rows.iter()
            .filter(|r| r["error_code"] == "host_not_allowed")
            .count(),
        foreign.len() * 6,
        "each refusal is recorded: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_origin_or_name_in_the_config_is_an_error_with_its_line() {
    let env = TestEnv::new();
    let bad = env.write(
        "bad.yaml",
        "server_names:\n  - https://proxy.example.com\nallowed_origins:\n  - \"*\"\n",
    );
    let mut cmd = env.command();
    cmd.args(["config", "validate", "--config", bad.to_str().unwrap()]);
    let out = support::run_to_end(cmd);
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("bad.yaml:2:") && all.contains("server_names[0]"),
        "{all}"
    );
    assert!(
        all.contains("bad.yaml:4:") && all.contains("allowed_origins[0]"),
        "{all}"
    );
}

/// Chromium, or `None` (skipped outside CI) when it is not installed.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        skip_or_fail("chromium is not installed (apt-get install chromium)");
    }
    found
}

/// Loads `url` in headless Chromium, where `evil.example` resolves to 127.0.0.1 (a page on
/// another site that can reach loopback, or a rebinding name after it was rebound), lets its
/// scripts run, and returns the DOM.
fn chromium_dom(chromium: &std::path::Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = support::isolated_command(chromium);
    cmd.env("HOME", profile.path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP evil.example 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = support::wait_output(cmd.spawn().unwrap(), Duration::from_secs(90));
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chromium_page_on_another_origin_is_refused_and_nothing_is_billed() {
    let Some(chromium) = chromium() else { return };
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let d = daemon(&env, &upstream, "");
    // The attacker's page, served from http://evil.example:PORT/: a simple POST (text/plain,
    // no-cors: no preflight) to the daemon's chat endpoint, as any site could send.
    let site = MockUpstream::start();
    let page = format!(
        r#"<!doctype html><html><body><p id="state">loading</p><script>
fetch("{}/v1/chat/completions", {{method: "POST", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{model: "gpt-4o-mini", messages: [{{role: "user", content: "spend"}}]}})}})
  .then(() => document.getElementById("state").textContent = "request sent")
  .catch(e => document.getElementById("state").textContent = "request failed " + e);
</script></body></html>"#,
        d.listen
    );
    site.push([Behavior::Raw {
        content_type: "text/html",
        body: page,
    }]);
    let site_port = site.addr.port();
    let dom = chromium_dom(&chromium, &format!("http://evil.example:{site_port}/"));
    assert!(dom.contains("request sent"), "the page ran: {dom}");

    // A rebinding page reads through its own name: the same request Chromium makes for
    // http://evil.example:ADMIN/api/ once evil.example points at 127.0.0.1.
    let admin_port = d.admin.rsplit(':').next().unwrap();
    let dom = chromium_dom(&chromium, &format!("http://evil.example:{admin_port}/api/"));
    assert!(
        dom.contains("host_not_allowed") && !dom.contains("overview"),
        "{dom}"
    );
    d.stop();

    assert_eq!(upstream.calls(), 0, "the provider never saw the request");
    let rows = env.requests();
    let chat: Vec<_> = rows
        .iter()
        .filter(|r| r["endpoint"] == "chat.completions")
        .collect();
    assert_eq!(
        chat.len(),
        1,
        "the browser's request arrived once: {rows:?}"
    );
    assert_eq!(chat[0]["status"], "403");
    assert_eq!(chat[0]["error_code"], "cross_site_request");
    assert!(
        rows.iter().all(|r| r["status"] != "200"),
        "nothing was served: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r["error_code"] == "host_not_allowed"),
        "{rows:?}"
    );
}
