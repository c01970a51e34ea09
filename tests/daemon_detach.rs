//! `smartproxy daemon --detach`: returns at once with the daemon running in the background,
//! `daemon status` (text and `--json`) finds it through its pid file, it serves, a second
//! `--detach` is refused, and `daemon stop` stops it and leaves no process and no pid file. HOME,
//! the data dir and the runtime dir are private to the test; a guard kills the daemon whatever
//! happens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{TestEnv, run_to_end, text};

/// Kills the detached daemon (not our child: it is found through its pid) on drop.
struct Guard {
    pid_file: PathBuf,
    pid: Option<i32>,
}

impl Guard {
    fn pid(&self) -> Option<i32> {
        self.pid.or_else(|| {
            let text = std::fs::read_to_string(&self.pid_file).ok()?;
            let info: serde_json::Value = serde_json::from_str(&text).ok()?;
            i32::try_from(info["pid"].as_i64()?).ok()
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            wait_gone(pid);
        }
    }
}

/// Whether `pid` is a live process (a zombie waiting for init to reap it counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        support::pause(Duration::from_millis(20));
    }
    true
}

fn daemon_cmd(env: &TestEnv) -> Command {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"));
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn detach_status_and_stop() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  reply: \"from the background\"\n",
    );
    let mut guard = Guard {
        pid_file: env.path().join("run/smartproxy.pid"),
        pid: None,
    };
    let detach_args = [
        "daemon",
        "--detach",
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    let mut detach = daemon_cmd(&env);
    detach.args(detach_args);
    // run_to_end's deadline also proves --detach returns instead of serving in the foreground.
    let out = run_to_end(detach);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("smartproxy daemon started (pid "), "{said}");

    let mut status = daemon_cmd(&env);
    status.args(["daemon", "status", "--json"]);
    let out = run_to_end(status);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["running"], true, "{info}");
    let pid = i32::try_from(info["pid"].as_i64().unwrap()).unwrap();
    guard.pid = Some(pid);
    assert!(said.contains(&format!("(pid {pid})")), "{said}");
    assert!(alive(pid));
    let listen = info["listen"].as_str().unwrap().to_owned();
    let log = PathBuf::from(info["log"].as_str().unwrap());
    assert!(
        log.starts_with(env.path()),
        "the log is in the test's own data dir: {}",
        log.display()
    );

    let mut status = daemon_cmd(&env);
    status.args(["daemon", "status"]);
    let out = run_to_end(status);
    assert_eq!(out.status.code(), Some(0));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("smartproxy daemon is running (pid {pid})"))
            && said.contains(&format!("http://{listen}/v1")),
        "{said}"
    );

    // It serves, detached from the command that started it.
    let reply = support::post_chat(
        &format!("http://{listen}/v1"),
        None,
        support::chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "from the background"
    );

    // A model with no known price makes the daemon log a warning through `tracing`.
    let reply = support::post_chat(
        &format!("http://{listen}/v1"),
        None,
        support::chat_body("house-model-without-a-price", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // A second one is refused while the first runs.
    let mut again = daemon_cmd(&env);
    again.args(detach_args);
    let out = run_to_end(again);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("already running (pid {pid})")),
        "{}",
        text(&out.stderr)
    );

    let mut stop = daemon_cmd(&env);
    stop.args(["daemon", "stop"]);
    let out = run_to_end(stop);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("smartproxy daemon (pid {pid}) stopped")),
        "{}",
        text(&out.stdout)
    );
    assert!(wait_gone(pid), "the daemon is still running after stop");
    assert!(
        !env.path().join("run/smartproxy.pid").exists(),
        "the pid file is removed"
    );

    let mut status = daemon_cmd(&env);
    status.args(["daemon", "status", "--json"]);
    let out = run_to_end(status);
    assert_eq!(out.status.code(), Some(3), "not running");
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["running"], false);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("smartproxy daemon listening"), "{logged}");
    assert!(
        logged.contains("finishing requests in flight"),
        "stopped gracefully: {logged}"
    );
    assert!(logged.contains("no price known"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "no colour codes in the log file: {logged:?}"
    );
    let rows = env.requests();
    assert_eq!(rows.len(), 2, "the ledger has the requests");
}
