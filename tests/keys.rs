//! Keys. `smartproxy keys`: a key is shown once and stored as a digest only; the daemon accepts
//! the keys not revoked, at start-up and after a SIGHUP. `smartproxy daemon install` never
//! writes a key into the service it makes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::{TestEnv, run_to_end, text};

fn keys(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    cmd.arg("keys").args(args);
    run_to_end(cmd)
}

fn create(env: &TestEnv, name: &str) -> String {
    let out = keys(env, &["create", "--name", name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

#[test]
fn a_key_is_shown_once_and_never_listed() {
    let env = TestEnv::new();
    let out = keys(
        &env,
        &["create", "--name", "cursor", "--budget-daily", "2.5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    let hex = key.strip_prefix("sk-sp-").expect("sk-sp- prefix");
    assert_eq!(hex.len(), 64, "{key}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(text(&out.stderr).contains("not shown again"));

    let digest_hex = hex::encode(smartproxy::proxy::keys::digest(&key));
    for args in [&["list"][..], &["list", "--json"][..]] {
        let out = keys(&env, args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("cursor"), "{all}");
        assert!(!all.contains(hex), "the key is never listed: {all}");
        assert!(!all.contains(&digest_hex), "nor its digest: {all}");
    }
    let out = keys(&env, &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "cursor");
    assert_eq!(rows[0]["budget_daily_usd"], 2.5);
    assert!(rows[0]["revoked_ms"].is_null());
    assert!(rows[0].get("digest").is_none());

    // The ledger holds the digest, not the key.
    let stored: Vec<u8> = env
        .ledger()
        .query_row("SELECT digest FROM client_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, smartproxy::proxy::keys::digest(&key).to_vec());

    let out = keys(&env, &["create", "--name", "cursor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no key printed for a refused name");

    let out = keys(&env, &["create", "--name", "has space"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a valid key name"));

    let out = keys(&env, &["create", "--name", "ci", "--json"]);
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(made["key"].as_str().unwrap().starts_with("sk-sp-"));
    assert_eq!(made["name"], "ci");
}

#[test]
fn revoking_marks_the_key_and_an_unknown_name_is_an_error() {
    let env = TestEnv::new();
    create(&env, "cursor");
    let out = keys(&env, &["revoke", "cursor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("revoked"));
    let out = keys(&env, &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows[0]["revoked_ms"].is_i64(), "{rows}");

    let out = keys(&env, &["revoke", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no key named `nobody`"),
        "{}",
        text(&out.stderr)
    );
}

/// A daemon serving the mock, with the keys of `envs`.
fn start_daemon(env: &TestEnv, envs: &[(&str, &str)]) -> Daemon {
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: hello\n",
    );
    Daemon::start(env, &config, &[], envs)
}

async fn status(base: &str, key: Option<&str>) -> u16 {
    let mut req = support::http_client()
        .post(format!("{base}/v1/chat/completions"))
        .body(support::chat_body("gpt-4o-mini", false, "hi"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Waits until a request with `key` gets `want` (a SIGHUP reload is asynchronous).
async fn eventually(base: &str, key: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(base, Some(key)).await != want {
        assert!(Instant::now() < deadline, "never got {want} for the key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_accepts_created_keys_and_refuses_revoked_ones() {
    let env = TestEnv::new();
    let cursor = create(&env, "cursor");
    let old = create(&env, "old");
    assert_eq!(keys(&env, &["revoke", "old"]).status.code(), Some(0));

    let daemon = start_daemon(&env, &[("SMARTPROXY_API_KEY", "sk-env-key")]);
    assert_eq!(status(&daemon.listen, Some(&cursor)).await, 200);
    assert_eq!(
        status(&daemon.listen, Some("sk-env-key")).await,
        200,
        "the env key still works"
    );
    assert_eq!(status(&daemon.listen, Some(&old)).await, 401, "revoked");
    assert_eq!(
        status(&daemon.listen, None).await,
        401,
        "keys exist, so one is required"
    );

    // Changes while it runs take effect on SIGHUP.
    let late = create(&env, "late");
    assert_eq!(keys(&env, &["revoke", "cursor"]).status.code(), Some(0));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    eventually(&daemon.listen, &late, 200).await;
    eventually(&daemon.listen, &cursor, 401).await;

    let out = daemon.stop();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains(&late) && !stderr.contains(&cursor),
        "no key in the logs"
    );
    let conn = env.ledger();
    let mut tags: Vec<String> = conn
        .prepare("SELECT tag FROM sessions WHERE kind = 'daemon' ORDER BY tag")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tags.sort();
    assert_eq!(
        tags,
        ["cursor", "default", "late"],
        "sessions are named after the keys"
    );
}

/// One keep-alive HTTP/1.1 connection, to send several requests on the same socket (the daemon
/// remembers the key a connection presented last; `proxy::keys::KeyMemo`).
struct KeepAlive(std::io::BufReader<std::net::TcpStream>);

impl KeepAlive {
    fn open(base: &str) -> Self {
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self(std::io::BufReader::new(stream))
    }

    /// Posts a chat with `key` and returns the status, reading the whole response off the socket.
    fn status(&mut self, key: &str) -> u16 {
        use std::io::{BufRead, Read, Write};
        let body = support::chat_body("gpt-4o-mini", false, "hi");
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.0.get_mut().write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = None;
        loop {
            line.clear();
            self.0.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
            assert!(
                !line.to_ascii_lowercase().starts_with("connection: close"),
                "the daemon closed the connection"
            );
        }
        let mut body = vec![0; length.expect("a content-length")];
        self.0.read_exact(&mut body).unwrap();
        status
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_while_its_connection_stays_open_is_refused_on_it() {
    let env = TestEnv::new();
    let cursor = create(&env, "cursor");
    let daemon = start_daemon(&env, &[("SMARTPROXY_API_KEY", "sk-env-key")]);
    let mut conn = KeepAlive::open(&daemon.listen);
    assert_eq!(conn.status(&cursor), 200);
    assert_eq!(conn.status(&cursor), 200, "the remembered key");
    assert_eq!(
        conn.status("sk-sp-wrong"),
        401,
        "another key on the same connection is checked"
    );
    let same_length = format!("{}x", &cursor[..cursor.len() - 1]);
    assert_eq!(conn.status(&same_length), 401, "one byte off");
    assert_eq!(conn.status(&cursor), 200);

    // Revoked and reloaded: the connection that presented it a moment ago is refused too.
    assert_eq!(keys(&env, &["revoke", "cursor"]).status.code(), Some(0));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    eventually(&daemon.listen, &cursor, 401).await;
    assert_eq!(conn.status(&cursor), 401, "revoked on the open connection");
    assert_eq!(conn.status("sk-env-key"), 200);
    let out = daemon.stop();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_daemon_without_keys_stays_open() {
    let env = TestEnv::new();
    let daemon = start_daemon(&env, &[]);
    assert_eq!(status(&daemon.listen, None).await, 200);
    daemon.stop();
}

const SECRETS: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-openai-secret-value"),
    ("SMARTPROXY_API_KEY", "sk-smartproxy-secret-value"),
    ("SMARTPROXY_CACHE_KEY", "cache-secret-value"),
];

fn install(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .env("SMARTPROXY_LISTEN", "127.0.0.1:4555")
        .args(["daemon", "install"])
        .args(args);
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for (_, value) in SECRETS {
        assert!(!all.contains(value), "a key value was printed: {all}");
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn daemon_install_writes_a_unit_without_keys() {
    let env = TestEnv::new();
    let config = env.write(
        "smartproxy.yaml",
        "providers:\n  - name: m\n    kind: mock\n",
    );
    let out = install(&env, &["--print"]);
    let unit = text(&out.stdout);
    assert!(
        unit.contains(&format!("ExecStart=\"{}\" \"daemon\"", support::BIN)),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("\"--config\" \"{}\"", config.display())),
        "the config found now is pinned: {unit}"
    );
    assert!(unit.contains("Restart=on-failure"), "{unit}");
    assert!(
        unit.contains("Environment=\"SMARTPROXY_LISTEN=127.0.0.1:4555\""),
        "{unit}"
    );
    assert!(
        unit.contains("EnvironmentFile=-%h/.config/smartproxy/daemon.env"),
        "{unit}"
    );
    for (name, _) in SECRETS {
        assert!(
            !unit.contains(&format!("{name}=")),
            "{name} in the unit: {unit}"
        );
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("systemctl --user enable --now smartproxy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("SMARTPROXY_API_KEY, SMARTPROXY_CACHE_KEY"),
        "{stderr}"
    );
    let path = env
        .path()
        .join("home/.config/systemd/user/smartproxy.service");
    assert!(!path.exists(), "--print writes nothing");

    let out = install(&env, &[]);
    assert!(text(&out.stdout).contains("smartproxy.service"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), unit);
}
