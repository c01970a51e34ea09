//! `smartproxy doctor`: a fresh HOME is healthy (exit 0) and reports its config and ledger; a bad
//! config fails with its file and line (exit 1); a running daemon is found and its /healthz asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
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
    let child = cmd.spawn().unwrap();
    let pid_file = env.path().join("run/smartproxy.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.contains(&child.id().to_string())) {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = doctor(&env, &["--json", "--config", config.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let daemon = find(&report, "daemon");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = wait_output(child, Duration::from_secs(30));
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
