//! Who may use which endpoint, checked on every endpoint of every listener: a daemon with a
//! client key and an admin key, one with client keys and no admin key, one that lets Ollama
//! clients in without a key, a keyless one, and a `run` session's own proxy. A column for
//! browsers: every route refuses a page on another site (`Origin`, `Sec-Fetch-Site`) and a
//! foreign `Host` (DNS rebinding), whatever key comes with it. Refusals are in the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::Method;
use support::TestEnv;
use support::daemon::Daemon;

const CLIENT: &str = "sk-client-key";
const ADMIN: &str = "sk-admin-key";

fn mock_config(env: &TestEnv, extra: &str) -> std::path::PathBuf {
    env.write(
        "sp.yaml",
        &format!("providers:\n  - name: m\n    kind: mock\n{extra}"),
    )
}

/// A request to `base` + `path`, with a body when it is a POST.
async fn status(method: Method, base: &str, path: &str, key: Option<&str>) -> u16 {
    status_with(method, base, path, key, None).await
}

/// `status`, with one more header: what a browser adds (`Origin`) or names (`Host`).
async fn status_with(
    method: Method,
    base: &str,
    path: &str,
    key: Option<&str>,
    header: Option<(&str, &str)>,
) -> u16 {
    let body = match path {
        "/v1/chat/completions" | "/chat/completions" => {
            support::chat_body("gpt-4o-mini", false, "hi")
        }
        "/v1/completions" | "/completions" => r#"{"model":"gpt-4o-mini","prompt":"hi"}"#.to_owned(),
        "/v1/embeddings" | "/embeddings" => {
            r#"{"model":"text-embedding-3-small","input":"hi"}"#.to_owned()
        }
        "/v1/responses" | "/responses" => r#"{"model":"gpt-4o-mini","input":"hi"}"#.to_owned(),
        "/v1/messages" => {
            r#"{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#
                .to_owned()
        }
        "/v1/messages/count_tokens" => {
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.to_owned()
        }
        "/api/chat" => {
            r#"{"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"hi"}]}"#
                .to_owned()
        }
        "/api/generate" => r#"{"model":"gpt-4o-mini","stream":false,"prompt":"hi"}"#.to_owned(),
        "/api/show" => r#"{"model":"gpt-4o-mini"}"#.to_owned(),
        _ => String::new(),
    };
    let mut req = support::http_client().request(method, format!("{base}{path}"));
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body);
    }
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.unwrap().status().as_u16()
}

/// What a client endpoint answers a client with the right key: the mock serves all but legacy
/// completions, which need an OpenAI-compatible target, and stored responses, which need a
/// provider with the Responses API (both 400 after the key check).
fn served(path: &str) -> u16 {
    match path {
        "/v1/completions" | "/completions" => 400,
        _ if path.contains("/responses/") => 400,
        _ => 200,
    }
}

/// Client endpoints of the public listener: a client key opens them, nothing else does.
const CLIENT_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/embeddings"),
    ("POST", "/v1/responses"),
    ("POST", "/responses"),
    ("GET", "/v1/responses/resp_unknown"),
    ("GET", "/responses/resp_unknown"),
    ("GET", "/models"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("GET", "/v1/models"),
    ("POST", "/api/chat"),
    ("POST", "/api/generate"),
    ("GET", "/api/tags"),
    ("POST", "/api/show"),
];

/// Admin views on the public listener.
const PUBLIC_ADMIN_ENDPOINTS: &[(&str, &str)] = &[("GET", "/debug/status"), ("GET", "/stats")];

/// The admin listener.
const ADMIN_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/admin/stats"),
    ("GET", "/stats"),
    ("GET", "/admin/budget"),
    ("GET", "/metrics"),
    ("GET", "/debug/routes"),
    ("GET", "/debug/status"),
    ("POST", "/admin/reload"),
];

/// Endpoints anyone may ask: they say "up" and nothing more.
const OPEN_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("HEAD", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/version"),
];

/// The dashboard's pages on the admin listener.
const WEB_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/performance"),
    ("GET", "/api/"),
    ("GET", "/api/performance"),
    ("GET", "/requests"),
    ("GET", "/api/requests"),
    ("GET", "/login"),
    ("POST", "/login"),
];

/// What a page on another site sends, and the `Host` a DNS-rebinding page names.
const BROWSER: [(&str, &str); 3] = [
    ("origin", "https://evil.example"),
    ("sec-fetch-site", "cross-site"),
    ("host", "evil.example"),
];

/// The browser column: every endpoint of `base`, with the key that opens it, refused (403)
/// when a page on another site sends it or a rebinding name reaches it. Returns the refusals.
async fn expect_browser_refused(
    base: &str,
    endpoints: &[(&str, &str)],
    key: Option<&str>,
) -> usize {
    let mut refused = 0;
    for (verb, path) in endpoints {
        for header in BROWSER {
            let got = status_with(method(verb), base, path, key, Some(header)).await;
            assert_eq!(got, 403, "{verb} {base}{path} with {header:?}");
            refused += 1;
        }
    }
    refused
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

/// The paths a router file names, as string literals (`"/v1/responses/"` is a prefix).
fn routes_in(source: &str) -> Vec<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/') && !s.contains(' '))
        .map(str::to_owned)
        .collect()
}

/// A route added to a listener without a line in this matrix fails here, so no endpoint
/// escapes the key checks above.
#[test]
fn every_route_of_both_listeners_is_in_the_matrix() {
    let covered = |path: &str, lists: &[&[(&str, &str)]]| {
        lists
            .iter()
            .flat_map(|list| list.iter())
            .any(|(_, p)| *p == path || (path.ends_with('/') && p.starts_with(path)))
    };
    let public = [CLIENT_ENDPOINTS, PUBLIC_ADMIN_ENDPOINTS, OPEN_ENDPOINTS];
    for path in routes_in(include_str!("../src/proxy/router.rs")) {
        assert!(
            covered(&path, &public),
            "public listener route {path} is not checked"
        );
    }
    let admin = [ADMIN_ENDPOINTS, &[("GET", "/healthz")][..]];
    for path in routes_in(include_str!("../src/proxy/admin.rs")) {
        assert!(
            covered(&path, &admin),
            "admin listener route {path} is not checked"
        );
    }
}

/// Asserts each endpoint answers `want` for each key, and returns how many refusals it made.
async fn expect(
    base: &str,
    endpoints: &[(&str, &str)],
    keys: &[Option<&str>],
    want: impl Fn(&str) -> u16,
) -> usize {
    let mut refused = 0;
    for (verb, path) in endpoints {
        for key in keys {
            let got = status(method(verb), base, path, *key).await;
            let expected = want(path);
            assert_eq!(got, expected, "{verb} {base}{path} with key {key:?}");
            if expected >= 400 {
                refused += 1;
            }
        }
    }
    refused
}

fn refused_rows(env: &TestEnv, status: u16) -> usize {
    env.requests()
        .iter()
        .filter(|r| r["status"] == status.to_string())
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_with_client_and_admin_keys_checks_every_endpoint() {
    let env = TestEnv::new();
    let config = mock_config(&env, "");
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[
            ("SMARTPROXY_API_KEY", CLIENT),
            ("SMARTPROXY_ADMIN_KEY", ADMIN),
        ],
    );
    let public = daemon.listen.clone();
    let admin = daemon.admin.clone();
    let mut refused = 0;
    // Client endpoints: no key, a wrong key and the admin key are all refused.
    refused += 1; // the /v1/models refusal read below
    refused += expect(
        &public,
        CLIENT_ENDPOINTS,
        &[None, Some("sk-wrong"), Some(ADMIN)],
        |_| 401,
    )
    .await;
    expect(&public, CLIENT_ENDPOINTS, &[Some(CLIENT)], served).await;
    // Admin views: a client key never opens them.
    refused += expect(
        &public,
        PUBLIC_ADMIN_ENDPOINTS,
        &[None, Some(CLIENT)],
        |_| 401,
    )
    .await;
    expect(&public, PUBLIC_ADMIN_ENDPOINTS, &[Some(ADMIN)], |_| 200).await;
    refused += expect(&admin, ADMIN_ENDPOINTS, &[None, Some(CLIENT)], |_| 401).await;
    expect(&admin, ADMIN_ENDPOINTS, &[Some(ADMIN)], |_| 200).await;
    expect(&public, OPEN_ENDPOINTS, &[None], |_| 200).await;
    expect(&admin, &[("GET", "/healthz")], &[None], |_| 200).await;
    // The browser column: the right key does not open a route to another site's page.
    let mut browser = 0;
    browser += expect_browser_refused(&public, CLIENT_ENDPOINTS, Some(CLIENT)).await;
    browser += expect_browser_refused(&public, PUBLIC_ADMIN_ENDPOINTS, Some(ADMIN)).await;
    browser += expect_browser_refused(&public, OPEN_ENDPOINTS, None).await;
    browser += expect_browser_refused(&admin, ADMIN_ENDPOINTS, Some(ADMIN)).await;
    browser += expect_browser_refused(&admin, WEB_ENDPOINTS, Some(ADMIN)).await;
    browser += expect_browser_refused(&admin, &[("GET", "/healthz")], None).await;

    let refusal = support::http_client()
        .get(format!("{public}/v1/models"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        refusal.contains("smartproxy keys create") && !refusal.contains("smartproxy run"),
        "the daemon's 401 speaks to editor users: {refusal}"
    );
    daemon.stop();
    assert_eq!(
        refused_rows(&env, 401),
        refused,
        "every refusal is a ledger row"
    );
    assert_eq!(
        refused_rows(&env, 403),
        browser,
        "and every browser refusal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyless_daemon_is_open_to_loopback_clients_and_closed_to_web_pages() {
    let env = TestEnv::new();
    let config = mock_config(&env, "ollama:\n  keyless: true\n");
    let daemon = Daemon::start(&env, &config, &[], &[]);
    let (public, admin) = (daemon.listen.clone(), daemon.admin.clone());
    expect(&public, CLIENT_ENDPOINTS, &[None], served).await;
    expect(&public, PUBLIC_ADMIN_ENDPOINTS, &[None], |_| 200).await;
    expect(&admin, ADMIN_ENDPOINTS, &[None], |_| 200).await;
    let mut browser = 0;
    browser += expect_browser_refused(&public, CLIENT_ENDPOINTS, None).await;
    browser += expect_browser_refused(&public, PUBLIC_ADMIN_ENDPOINTS, None).await;
    browser += expect_browser_refused(&public, OPEN_ENDPOINTS, None).await;
    browser += expect_browser_refused(&admin, ADMIN_ENDPOINTS, None).await;
    browser += expect_browser_refused(&admin, WEB_ENDPOINTS, None).await;
    browser += expect_browser_refused(&admin, &[("GET", "/healthz")], None).await;
    daemon.stop();
    assert_eq!(
        refused_rows(&env, 403),
        browser,
        "every refusal is a ledger row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_admin_key_client_keys_close_the_admin_endpoints() {
    let env = TestEnv::new();
    let config = mock_config(&env, "");
    let daemon = Daemon::start(&env, &config, &[], &[("SMARTPROXY_API_KEY", CLIENT)]);
    expect(
        &daemon.admin,
        ADMIN_ENDPOINTS,
        &[None, Some(CLIENT)],
        |_| 403,
    )
    .await;
    expect(
        &daemon.listen,
        PUBLIC_ADMIN_ENDPOINTS,
        &[None, Some(CLIENT)],
        |_| 403,
    )
    .await;
    let body = support::http_client()
        .get(format!("{}/metrics", daemon.admin))
        .bearer_auth(CLIENT)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "admin_key_not_set", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SMARTPROXY_ADMIN_KEY"),
        "{body}"
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn ollama_clients_need_a_key_on_a_daemon_unless_keyless_is_configured() {
    let env = TestEnv::new();
    let ollama = [
        ("POST", "/api/chat"),
        ("POST", "/api/generate"),
        ("GET", "/api/tags"),
        ("POST", "/api/show"),
    ];
    let config = mock_config(&env, "");
    let daemon = Daemon::start(&env, &config, &[], &[("SMARTPROXY_API_KEY", CLIENT)]);
    expect(&daemon.listen, &ollama, &[None], |_| 401).await;
    daemon.stop();

    let config = mock_config(&env, "ollama:\n  keyless: true\n");
    let daemon = Daemon::start(&env, &config, &[], &[("SMARTPROXY_API_KEY", CLIENT)]);
    expect(&daemon.listen, &ollama, &[None, Some(CLIENT)], |_| 200).await;
    // A key that is sent must still be right, and keyless stops at Ollama's endpoints.
    expect(&daemon.listen, &ollama, &[Some("sk-wrong")], |_| 401).await;
    expect(
        &daemon.listen,
        &[("POST", "/v1/chat/completions")],
        &[None],
        |_| 401,
    )
    .await;
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_session_opens_to_its_own_key_and_keyless_ollama() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock"], &[]);
    let base = session.base_url.trim_end_matches("/v1").to_owned();
    let key = session.key.clone();
    expect(&base, CLIENT_ENDPOINTS, &[None], |path| {
        if path.starts_with("/api/") {
            served(path)
        } else {
            401
        }
    })
    .await;
    expect(&base, CLIENT_ENDPOINTS, &[Some("sk-wrong")], |_| 401).await;
    expect(&base, CLIENT_ENDPOINTS, &[Some(&key)], served).await;
    expect(&base, PUBLIC_ADMIN_ENDPOINTS, &[None], |_| 401).await;
    expect(&base, PUBLIC_ADMIN_ENDPOINTS, &[Some(&key)], |_| 200).await;
    // The browser column: a session's proxy is no more open to web pages than the daemon.
    expect_browser_refused(&base, CLIENT_ENDPOINTS, Some(&key)).await;
    expect_browser_refused(&base, PUBLIC_ADMIN_ENDPOINTS, Some(&key)).await;
    expect_browser_refused(&base, OPEN_ENDPOINTS, None).await;
    session.finish(0);
}
