//! Diagnostics. `smartproxy doctor`: a fresh HOME is healthy (exit 0) and reports its config and
//! ledger; a bad config fails with its file and line (exit 1); a running daemon is found and its
//! /healthz asked. `smartproxy providers check`: each kind's models endpoint is asked with its
//! key, which is never printed; a closed port or an error status fails (exit 1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, run_to_end, text, wait_output};

fn doctor(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .arg("doctor")
        .args(args);
    run_to_end(cmd)
}

fn find<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[test]
fn a_fresh_home_is_healthy() {
    let env = TestEnv::new();
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("config"), "{stdout}");
    assert!(stdout.contains("built-in defaults"), "{stdout}");
    assert!(stdout.contains(&env.db.display().to_string()), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");

    let out = doctor(&env, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(find(&report, "config")["status"], "ok");
    let ledger = find(&report, "ledger");
    assert_eq!(ledger["status"], "ok");
    assert!(
        ledger["detail"]
            .as_str()
            .unwrap()
            .contains("not created yet"),
        "{ledger}"
    );
    assert_eq!(find(&report, "daemon")["status"], "ok");
    assert!(!env.db.exists(), "doctor creates nothing");

    // Once the ledger exists: its schema, journal and size.
    let mut keys = env.command();
    keys.args(["keys", "list"]);
    assert_eq!(run_to_end(keys).status.code(), Some(0));
    let report: Value = serde_json::from_slice(&doctor(&env, &["--json"]).stdout).unwrap();
    let detail = find(&report, "ledger")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("journal wal") && detail.contains("schema "),
        "{detail}"
    );
}

#[test]
fn a_provider_without_its_key_is_a_warning() {
    let env = TestEnv::new();
    env.upstream_config("http://127.0.0.1:9/v1", "");
    let out = doctor(&env, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "a warning is not a failure");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let providers = find(&report, "providers");
    assert_eq!(providers["status"], "warn");
    assert!(
        providers["detail"]
            .as_str()
            .unwrap()
            .contains("upstream (UPSTREAM_KEY is unset)"),
        "{providers}"
    );
}

#[test]
fn a_bad_config_fails_with_its_file_and_line() {
    let env = TestEnv::new();
    env.write(
        "smartproxy.yaml",
        "providers:\n  - name: m\n    kind: mock\nbogus_key: 1\n",
    );
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL  config"), "{stdout}");
    assert!(
        stdout.contains("smartproxy.yaml:4: unknown field `bogus_key`"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: "), "{stdout}");
    let report: Value = serde_json::from_slice(&doctor(&env, &["--json"]).stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(find(&report, "config")["status"], "fail");
    assert_eq!(
        find(&report, "ledger")["status"],
        "ok",
        "the other checks still run"
    );
}

#[test]
fn a_running_daemon_is_asked_for_its_health() {
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "providers:\n  - name: m\n    kind: mock\n");
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
        .args(["daemon", "--config", config.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Killed and reaped if the test fails half-way: no test leaves a process behind.
    struct Guard(Option<std::process::Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let mut guard = Guard(Some(cmd.spawn().unwrap()));
    let pid = guard.0.as_ref().unwrap().id();
    let pid_file = env.path().join("run/smartproxy.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.contains(&pid.to_string())) {
        assert!(Instant::now() < deadline, "the daemon did not start");
        support::pause(Duration::from_millis(20));
    }
    let out = doctor(&env, &["--json", "--config", config.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let daemon = find(&report, "daemon");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = wait_output(guard.0.take().unwrap(), Duration::from_secs(30));
    assert_eq!(stopped.status.code(), Some(0), "{}", text(&stopped.stderr));
    assert_eq!(daemon["status"], "ok", "{daemon}");
    assert!(
        daemon["detail"]
            .as_str()
            .unwrap()
            .contains("/healthz answers"),
        "{daemon}"
    );
    assert_eq!(out.status.code(), Some(0), "{report}");

    // A pid file left by a daemon that is gone is worth a warning.
    std::fs::write(&pid_file, r#"{"pid":999999999,"listen":"127.0.0.1:1","admin_listen":"127.0.0.1:2","started_ms":0,"log":null}"#).unwrap();
    let report: Value = serde_json::from_slice(&doctor(&env, &["--json"]).stdout).unwrap();
    assert_eq!(find(&report, "daemon")["status"], "warn", "{report}");
}

fn providers_check(env: &TestEnv, config: &str, json: bool) -> (std::process::Output, String) {
    let path = env.write("providers.yaml", config);
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream-secret-123").args([
        "--config",
        path.to_str().unwrap(),
        "providers",
        "check",
    ]);
    if json {
        cmd.arg("--json");
    }
    let out = run_to_end(cmd);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains("sk-upstream-secret-123"),
        "a key was printed: {all}"
    );
    (out, all)
}

fn provider(name: &str, kind: &str, base_url: &str) -> String {
    format!(
        "  - name: {name}\n    kind: {kind}\n    base_url: {base_url}\n    api_key_env: UPSTREAM_KEY\n    models: [m-{name}]\n"
    )
}

#[test]
fn providers_check_asks_each_kind_for_its_models() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let base = format!("http://{}", upstream.addr);
    let config = format!(
        "providers:\n{}{}{}  - name: offline\n    kind: mock\n",
        provider("oai", "openai", &upstream.base_url()),
        provider("claude", "anthropic", &base),
        provider("llama", "ollama", &base),
    );
    let (out, all) = providers_check(&env, &config, false);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let stdout = text(&out.stdout);
    for name in ["oai", "claude", "llama", "offline"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert!(
        stdout.contains("latency") && stdout.contains(" ms"),
        "{stdout}"
    );

    let mut got: Vec<(String, Option<String>, Option<String>)> = upstream
        .received()
        .into_iter()
        .map(|r| (r.path, r.authorization, r.headers.get("x-api-key").cloned()))
        .collect();
    got.sort();
    let key = Some("sk-upstream-secret-123".to_owned());
    assert_eq!(
        got,
        [
            ("/api/tags".to_owned(), None, None),
            ("/v1/models".to_owned(), None, key.clone()),
            (
                "/v1/models".to_owned(),
                Some("Bearer sk-upstream-secret-123".to_owned()),
                None
            ),
        ],
        "the mock provider makes no call"
    );
    let anthropic = upstream
        .received()
        .into_iter()
        .find(|r| r.headers.contains_key("x-api-key"))
        .unwrap();
    assert!(anthropic.headers.contains_key("anthropic-version"));

    let (out, _) = providers_check(&env, &config, true);
    let probes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(probes.as_array().unwrap().len(), 4);
    assert!(
        probes.as_array().unwrap().iter().all(|p| p["ok"] == true),
        "{probes}"
    );
    assert!(probes[0]["latency_ms"].is_u64(), "{probes}");
}

#[test]
fn providers_check_fails_on_a_closed_port_or_an_error_status() {
    let env = TestEnv::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = format!(
        "providers:\n{}",
        provider("gone", "openai", &format!("http://127.0.0.1:{port}/v1"))
    );
    let (out, all) = providers_check(&env, &config, false);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("error") && all.contains("cannot connect"),
        "{all}"
    );

    let upstream = MockUpstream::start();
    upstream.push([Behavior::Status {
        status: 401,
        retry_after: None,
    }]);
    let config = format!(
        "providers:\n{}{}",
        provider("refused", "openai", &upstream.base_url()),
        provider("fine", "openai", &upstream.base_url()).replace("UPSTREAM_KEY", "OTHER_KEY"),
    );
    let (out, all) = providers_check(&env, &config, true);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let probes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(probes[0]["status"], "http 401", "{probes}");
    assert!(
        probes[0]["note"].as_str().unwrap().contains("UPSTREAM_KEY"),
        "{probes}"
    );
    assert_eq!(probes[1]["status"], "no key", "{probes}");
    assert_eq!(
        upstream.calls(),
        1,
        "a provider without its key is not called"
    );
}
