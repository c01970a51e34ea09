//! Who may see the dashboard on the daemon's admin listener: each `WEBUI_SECURITY` mode, from
//! loopback directly or through a reverse proxy (`X-Forwarded-For`, `Forwarded`), without a
//! token, with a valid one (from `smartproxy ui token`), an expired one or one signed with
//! another secret; the login form's cookie; the admin endpoints still taking the admin key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use smartproxy::web::{Mode, Security};
use support::daemon::Daemon;
use support::{TestEnv, run_to_end, text};

const SECRET: &str = "7d0f2b9c41e86a35f0c7d9e2b4a61f83";
const OTHER_SECRET: &str = "c3a9e7f1025b8d46e9f0a1b7c52d8e64";
const ADMIN_KEY: &str = "admin-key-for-the-web-tests-0123456789";

fn config(env: &TestEnv) -> std::path::PathBuf {
    env.write("sp.yaml", "providers:\n  - name: m\n    kind: mock\n")
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token from the CLI, as a user gets one.
fn cli_token(env: &TestEnv) -> String {
    let mut cmd = env.command();
    cmd.args(["ui", "token", "--ttl", "1h"])
        .env("JWT_SECRET", SECRET);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

async fn status(url: &str, proxy: Option<(&str, &str)>, token: Option<&str>) -> u16 {
    let mut req = support::http_client().get(url);
    if let Some((name, value)) = proxy {
        req = req.header(name, value);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Each mode on a keyless daemon (where the mode decides) and on one with an admin key (where
/// the key decides: every request needs the key or a token, as `/admin/stats` does).
#[tokio::test(flavor = "multi_thread")]
async fn auth_matrix() {
    let env = TestEnv::new();
    let config = config(&env);
    let valid = cli_token(&env);
    let expired = Security::with_secret(Mode::AlwaysAuth, SECRET, true)
        .issue(now_s() - 7200, Duration::from_secs(60));
    let foreign = Security::with_secret(Mode::AlwaysAuth, OTHER_SECRET, true)
        .issue(now_s(), Duration::from_secs(3600));
    let proxies: [Option<(&str, &str)>; 4] = [
        None,
        Some(("x-forwarded-for", "203.0.113.9")),
        Some(("forwarded", "for=203.0.113.9;proto=https")),
        Some(("x-real-ip", "203.0.113.9")),
    ];
    let tokens = [
        ("no token", None),
        ("valid", Some(valid.as_str())),
        ("expired", Some(expired.as_str())),
        ("other secret", Some(foreign.as_str())),
        ("admin key", Some(ADMIN_KEY)),
        ("wrong key", Some("admin-key-for-the-web-tests-guessed")),
    ];
    for keyed in [false, true] {
        for mode in ["NONE", "AUTH_WHEN_PROXIED", "ALWAYS_AUTH"] {
            let mut envs = vec![("WEBUI_SECURITY", mode), ("JWT_SECRET", SECRET)];
            if keyed {
                envs.push(("SMARTPROXY_ADMIN_KEY", ADMIN_KEY));
            }
            let daemon = Daemon::start(&env, &config, &[], &envs);
            for proxy in proxies {
                for (label, token) in tokens {
                    let needs_token = keyed
                        || match mode {
                            "NONE" => false,
                            "AUTH_WHEN_PROXIED" => proxy.is_some(),
                            _ => true,
                        };
                    let opens = label == "valid" || (keyed && label == "admin key");
                    let expect = if !needs_token || opens { 200 } else { 401 };
                    for page in ["/", "/performance", "/api/", "/api/performance"] {
                        let got = status(&format!("{}{page}", daemon.admin), proxy, token).await;
                        assert_eq!(
                            got, expect,
                            "keys {keyed} {mode} {page} via {proxy:?} with {label}"
                        );
                    }
                }
            }
            if keyed {
                // The admin endpoints keep the admin key, whatever the dashboard's mode: a
                // dashboard token does not open them.
                let admin = format!("{}/admin/stats", daemon.admin);
                assert_eq!(status(&admin, None, Some(&valid)).await, 401, "{mode}");
                assert_eq!(status(&admin, None, Some(ADMIN_KEY)).await, 200, "{mode}");
            }
            assert_eq!(
                status(&format!("{}/healthz", daemon.admin), None, None).await,
                200
            );
            // Assets and the login form are open: the login page needs its stylesheet.
            let proxied = Some(("x-forwarded-for", "203.0.113.9"));
            assert_eq!(
                status(&format!("{}/assets/style.css", daemon.admin), proxied, None).await,
                200
            );
            assert_eq!(
                status(&format!("{}/login", daemon.admin), proxied, None).await,
                200
            );
            daemon.stop();
        }
    }
}

/// The dashboard's JSON has the totals `/admin/stats` has: on a daemon with client and admin
/// keys, no local process reads it without the admin key (or a token); with client keys
/// alone (admin closed) it takes a token only.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_follows_the_daemons_keys() {
    let env = TestEnv::new();
    let config = config(&env);
    let client = "sk-client-key-for-the-web-tests";
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[
            ("SMARTPROXY_API_KEY", client),
            ("SMARTPROXY_ADMIN_KEY", ADMIN_KEY),
        ],
    );
    for page in ["/api/", "/api/performance", "/", "/performance"] {
        let url = format!("{}{page}", daemon.admin);
        assert_eq!(status(&url, None, None).await, 401, "{page} without a key");
        assert_eq!(
            status(&url, None, Some(client)).await,
            401,
            "{page}, client key"
        );
        assert_eq!(
            status(&url, None, Some(ADMIN_KEY)).await,
            200,
            "{page}, admin key"
        );
    }
    let stats = format!("{}/admin/stats", daemon.admin);
    assert_eq!(status(&stats, None, None).await, 401);
    daemon.stop();

    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[("SMARTPROXY_API_KEY", client), ("JWT_SECRET", SECRET)],
    );
    let api = format!("{}/api/", daemon.admin);
    assert_eq!(status(&api, None, None).await, 401);
    assert_eq!(status(&api, None, Some(client)).await, 401);
    assert_eq!(status(&api, None, Some(&cli_token(&env))).await, 200);
    daemon.stop();
}

/// `POST /login` with a form body.
async fn post_login(
    client: &reqwest::Client,
    admin: &str,
    form: impl Into<String>,
) -> reqwest::Response {
    client
        .post(format!("{admin}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.into())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_exchanges_the_admin_key_for_a_cookie() {
    let env = TestEnv::new();
    let config = config(&env);
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[
            ("WEBUI_SECURITY", "ALWAYS_AUTH"),
            ("SMARTPROXY_ADMIN_KEY", ADMIN_KEY),
        ],
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/performance", daemon.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401);
    let body = page.text().await.unwrap();
    assert!(
        body.contains(r#"<form method="post" action="/login">"#)
            && body.contains(r#"value="/performance""#),
        "{body}"
    );
    // No navigation on the sign-in page: every link would lead back to it.
    assert!(
        !body.contains("<nav") && !body.contains(r#"<a href="/"#),
        "{body}"
    );

    let wrong = post_login(&client, &daemon.admin, "key=nope&next=%2Fperformance").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let login = post_login(
        &client,
        &daemon.admin,
        format!("key={ADMIN_KEY}&next=%2Fperformance"),
    )
    .await;
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/performance");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    assert!(
        !pair.contains(ADMIN_KEY),
        "the cookie holds a token, not the key"
    );
    let page = client
        .get(format!("{}/performance", daemon.admin))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    // An open redirect is not possible through `next`.
    let login = post_login(
        &client,
        &daemon.admin,
        format!("key={ADMIN_KEY}&next=%2F%2Fevil.example%2F"),
    )
    .await;
    assert_eq!(login.headers()["location"], "/");

    // Guessing is slowed down: after ten wrong keys in a minute, every attempt waits, the
    // right key too, while a token still opens the pages.
    for _ in 0..9 {
        let wrong = post_login(&client, &daemon.admin, "key=guess&next=%2F").await;
        assert_eq!(wrong.status(), 401);
    }
    let paused = post_login(&client, &daemon.admin, format!("key={ADMIN_KEY}&next=%2F")).await;
    assert_eq!(paused.status(), 429);
    let wait: u64 = paused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(paused.headers().get("set-cookie").is_none());
    assert!(paused.text().await.unwrap().contains("Too many wrong keys"));
    let page = client
        .get(format!("{}/performance", daemon.admin))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "a token is not throttled");
    daemon.stop();
}

/// A guesser that locked itself out at `/login` does not lock anyone else out.
#[tokio::test(flavor = "multi_thread")]
async fn the_login_lockout_is_per_client_address() {
    let Some(other) = support::another_local_address() else {
        return support::skip_or_fail("this machine has no address besides loopback");
    };
    let env = TestEnv::new();
    let config = config(&env);
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[
            ("WEBUI_SECURITY", "ALWAYS_AUTH"),
            ("SMARTPROXY_ADMIN_KEY", ADMIN_KEY),
        ],
    );
    let client = |from: Option<std::net::IpAddr>| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(from)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let guesser = client(None);
    for _ in 0..10 {
        let wrong = post_login(&guesser, &daemon.admin, "key=guess&next=%2F").await;
        assert_eq!(wrong.status(), 401);
    }
    let locked = post_login(&guesser, &daemon.admin, format!("key={ADMIN_KEY}&next=%2F")).await;
    assert_eq!(locked.status(), 429, "the guesser waits");
    let user = client(Some(other));
    let login = post_login(&user, &daemon.admin, format!("key={ADMIN_KEY}&next=%2F")).await;
    assert_eq!(
        login.status(),
        303,
        "a client at {other} signs in meanwhile"
    );
    assert!(login.headers().get("set-cookie").is_some());
    daemon.stop();
}

#[test]
fn the_daemon_refuses_weak_secrets_and_no_auth_off_loopback() {
    let env = TestEnv::new();
    let config = config(&env);
    let cases: [(&[(&str, &str)], &str); 2] = [
        (&[("JWT_SECRET", "changeme")], "JWT_SECRET is too short"),
        (
            &[
                ("WEBUI_SECURITY", "NONE"),
                ("SMARTPROXY_ADMIN_KEY", ADMIN_KEY),
            ],
            "WEBUI_SECURITY=NONE is refused",
        ),
    ];
    for (envs, expect) in cases {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
            .args([
                "daemon",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "0.0.0.0:0",
            ]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        // The weak secret is refused on any listener; give it the admin key it needs off loopback.
        cmd.env("SMARTPROXY_ADMIN_KEY", ADMIN_KEY);
        let out = run_to_end(cmd);
        assert_eq!(out.status.code(), Some(1), "{expect}");
        assert!(text(&out.stderr).contains(expect), "{}", text(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_can_set_the_mode_and_the_variable_wins() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "webui_security: always_auth\nproviders:\n  - name: m\n    kind: mock\n",
    );
    let daemon = Daemon::start(&env, &config, &[], &[]);
    assert_eq!(status(&format!("{}/", daemon.admin), None, None).await, 401);
    daemon.stop();
    let daemon = Daemon::start(
        &env,
        &config,
        &[],
        &[("WEBUI_SECURITY", "AUTH_WHEN_PROXIED")],
    );
    assert_eq!(status(&format!("{}/", daemon.admin), None, None).await, 200);
    daemon.stop();

    let bad = env.write("bad.yaml", "webui_security: sometimes\n");
    let mut cmd = env.command();
    cmd.args(["config", "validate", "--config", bad.to_str().unwrap()]);
    let out = run_to_end(cmd);
    assert_ne!(out.status.code(), Some(0));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("bad.yaml:1:")
            && all.contains("`webui_security`")
            && all.contains("`sometimes`"),
        "{all}"
    );
}
