//! `run` forwards SIGQUIT and SIGWINCH (besides SIGINT, SIGTERM and SIGHUP, in `run_wrapper.rs`)
//! to the command, exits 128+N when the command dies of signal N, and does not deliver a signal
//! twice when the terminal already sent it to the whole foreground process group: smartproxy
//! runs in a session of its own whose controlling terminal is a pseudo-terminal, so Ctrl-C typed
//! into it (and `kill(-pgid)`) reach smartproxy and the command together, as in a real shell.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{TestEnv, run_to_end, text, wait_output};

/// smartproxy's decision for each signal, logged at debug level by `session::signals`.
const SKIPPED: &str = "child already got the signal from the terminal";
const FORWARDED: &str = "forwarding signal to child";

/// `smartproxy run --mock -- sh -c <script>` whose script counts the signals it gets (one line
/// per signal in `signals.log`) and exits when `stop` appears. Its process group is killed and
/// reaped on drop, whatever happens.
struct Traced {
    child: Option<Child>,
    dir: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Traced {
    /// `terminal`: the slave side of a pty, made smartproxy's controlling terminal in a new
    /// session (`setsid --ctty`), so smartproxy's group is the terminal's foreground group.
    /// Without it smartproxy gets a process group of its own and `/dev/null` as stdin.
    fn start(env: &TestEnv, name: &str, traps: &[&str], terminal: Option<OwnedFd>) -> Traced {
        let dir = env.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let mut script = String::new();
        for sig in traps {
            script.push_str(&format!("trap 'echo {sig} >> \"{d}/signals.log\"' {sig}\n"));
        }
        script.push_str(&format!(
            ": > '{d}/ready'\nwhile [ ! -f '{d}/stop' ]; do sleep 0.05 & wait $!; done\nexit 0\n"
        ));
        let mut cmd = env.command();
        let args = [
            "run",
            "--mock",
            "--summary",
            "none",
            "--",
            "sh",
            "-c",
            &script,
        ];
        if let Some(tty) = terminal {
            let mut setsid = std::process::Command::new("setsid");
            setsid.arg("--ctty").arg(support::BIN);
            // Same scrubbed environment as env.command().
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => setsid.env(k, v),
                    None => setsid.env_remove(k),
                };
            }
            setsid.current_dir(env.path()).stdin(Stdio::from(tty));
            cmd = setsid;
        } else {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        cmd.args(args)
            .env("SMARTPROXY_LOG_LEVEL", "smartproxy::session::signals=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = support::capture_stderr(&mut child);
        let traced = Traced {
            child: Some(child),
            dir,
            stderr,
        };
        traced.wait_until("the command to install its traps", |t| {
            t.dir.join("ready").exists()
        });
        traced
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// How many times the command's trap ran for `sig`.
    fn count(&self, sig: &str) -> usize {
        std::fs::read_to_string(self.dir.join("signals.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == sig)
            .count()
    }

    /// smartproxy's logged decisions (forwarded or skipped) about `sig`.
    fn decisions(&self, sig: &str) -> usize {
        let needle = format!("sig={sig}");
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|l| (l.contains(SKIPPED) || l.contains(FORWARDED)) && l.contains(&needle))
            .count()
    }

    fn forwarded(&self, sig: &str) -> usize {
        let needle = format!("sig={sig}");
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(FORWARDED) && l.contains(&needle))
            .count()
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Traced) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; smartproxy's stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            support::pause(Duration::from_millis(10));
        }
    }

    /// Tells the command to exit 0 and waits for smartproxy. A signal smartproxy forwarded
    /// before this is handled by the command's trap before it sees `stop` (a trapped signal
    /// interrupts sh's `wait` at once, and sh runs pending traps before its next command), so
    /// the counts read afterwards are final.
    fn finish(mut self) -> std::process::Output {
        std::fs::write(self.dir.join("stop"), "").unwrap();
        wait_output(self.child.take().unwrap(), Duration::from_secs(30))
    }

    fn wait(mut self) -> std::process::Output {
        wait_output(self.child.take().unwrap(), Duration::from_secs(30))
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::fs::write(self.dir.join("stop"), "");
            // smartproxy leads its own process group; the command is in it too.
            let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sigquit_and_sigwinch_reach_the_command() {
    let env = TestEnv::new();
    let traced = Traced::start(&env, "fwd", &["QUIT", "WINCH"], None);
    kill(traced.pid(), Signal::SIGQUIT).unwrap();
    traced.wait_until("the command to get SIGQUIT", |t| t.count("QUIT") == 1);
    kill(traced.pid(), Signal::SIGWINCH).unwrap();
    traced.wait_until("the command to get SIGWINCH", |t| t.count("WINCH") == 1);
    let out = traced.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn death_by_a_forwarded_signal_exits_128_plus_n() {
    let env = TestEnv::new();
    // No traps: the default actions end the command (SIGQUIT = 3).
    for (signal, code) in [(Signal::SIGQUIT, 131), (Signal::SIGTERM, 143)] {
        let traced = Traced::start(&env, &format!("die-{signal:?}"), &[], None);
        kill(traced.pid(), signal).unwrap();
        let out = traced.wait();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{signal:?}: {}",
            text(&out.stderr)
        );
    }
}

fn terminal() -> (OwnedFd, OwnedFd) {
    let pty = nix::pty::openpty(None, None).unwrap();
    (pty.master, pty.slave)
}

#[test]
fn a_signal_the_terminal_sent_to_the_whole_group_arrives_once() {
    let env = TestEnv::new();
    let (master, slave) = terminal();
    let traced = Traced::start(&env, "tty", &["INT", "QUIT", "WINCH"], Some(slave));
    let group = Pid::from_raw(-traced.pid().as_raw());

    // Ctrl-C typed into the terminal: the line discipline signals the foreground group.
    nix::unistd::write(&master, b"\x03").unwrap();
    traced.wait_until("the command to get SIGINT", |t| t.count("INT") >= 1);
    traced.wait_until("smartproxy to handle SIGINT", |t| {
        t.decisions("SIGINT") >= 1
    });
    // Ctrl-\ likewise.
    nix::unistd::write(&master, b"\x1c").unwrap();
    traced.wait_until("the command to get SIGQUIT", |t| t.count("QUIT") >= 1);
    traced.wait_until("smartproxy to handle SIGQUIT", |t| {
        t.decisions("SIGQUIT") >= 1
    });
    // The same signals sent to the group by `kill -INT -PGID`, and a resize's SIGWINCH.
    kill(group, Signal::SIGINT).unwrap();
    traced.wait_until("the command to get SIGINT again", |t| t.count("INT") >= 2);
    traced.wait_until("smartproxy to handle SIGINT again", |t| {
        t.decisions("SIGINT") >= 2
    });
    kill(group, Signal::SIGWINCH).unwrap();
    traced.wait_until("the command to get SIGWINCH", |t| t.count("WINCH") >= 1);
    traced.wait_until("smartproxy to handle SIGWINCH", |t| {
        t.decisions("SIGWINCH") >= 1
    });

    let stderr = Arc::clone(&traced.stderr);
    let counts = |t: &Traced| (t.count("INT"), t.count("QUIT"), t.count("WINCH"));
    let forwarded = (
        traced.forwarded("SIGINT"),
        traced.forwarded("SIGQUIT"),
        traced.forwarded("SIGWINCH"),
    );
    let dir = traced.dir.clone();
    let out = traced.finish();
    assert_eq!(out.status.code(), Some(0), "{}", stderr.lock().unwrap());
    let probe = Traced {
        child: None,
        dir,
        stderr,
    };
    assert_eq!(
        counts(&probe),
        (2, 1, 1),
        "each group-wide signal reached the command exactly once (forwarded again: {forwarded:?}); smartproxy's stderr:\n{}",
        probe.stderr.lock().unwrap()
    );
    assert_eq!(
        forwarded,
        (0, 0, 0),
        "smartproxy sent the command a signal the terminal had already delivered"
    );
    drop(master);
}

#[test]
fn ctrl_c_in_the_terminal_ends_the_command_once_and_exits_130() {
    let env = TestEnv::new();
    let (master, slave) = terminal();
    // No trap: the command dies of the terminal's SIGINT, and smartproxy reports 128 + 2.
    let traced = Traced::start(&env, "tty-die", &[], Some(slave));
    nix::unistd::write(&master, b"\x03").unwrap();
    let out = traced.wait();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    drop(master);
}

/// Whether `pid` is a live process (an exited one not yet reaped, a zombie, is not).
fn alive(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    kill(Pid::from_raw(pid), None).is_ok() && !zombie
}

/// Ends the command of a `start_run` session if the test did not see it die.
struct StopFile(PathBuf);

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "1");
    }
}

/// A `run` killed with SIGKILL cannot pass a signal on: the kernel ends its command
/// (`PR_SET_PDEATHSIG`), and its session, which it could not close, reads `ended (lost)` in
/// `sessions` (table and JSON) instead of running forever.
#[test]
fn a_run_killed_with_sigkill_takes_its_command_along_and_its_session_reads_lost() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock", "--summary", "none"], &[]);
    let _stop = StopFile(env.path().join("session-0/stop"));
    let id = session.env["SMARTPROXY_SESSION_ID"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The command's pid, as the ledger records it once the session row is committed.
    let child = loop {
        let pid = rusqlite::Connection::open(&env.db).ok().and_then(|c| {
            c.query_row("SELECT pid FROM sessions WHERE id = ?1", [&id], |r| {
                r.get::<_, i32>(0)
            })
            .ok()
        });
        if let Some(pid) = pid {
            break pid;
        }
        assert!(Instant::now() < deadline, "the session row never appeared");
        support::pause(Duration::from_millis(20));
    };
    assert!(alive(child));
    let sessions = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.arg("sessions").args(args);
        run_to_end(cmd).stdout
    };
    let rows: serde_json::Value = serde_json::from_slice(&sessions(&["--json"])).unwrap();
    assert_eq!(rows[0]["lost"], false, "a live run is running: {rows}");

    kill(Pid::from_raw(session.pid() as i32), Signal::SIGKILL).unwrap();
    let out = session.wait();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(child) {
        assert!(
            Instant::now() < deadline,
            "the command (pid {child}) lives on after its run was killed"
        );
        support::pause(Duration::from_millis(20));
    }

    let rows: serde_json::Value = serde_json::from_slice(&sessions(&["--json"])).unwrap();
    assert_eq!(rows[0]["id"], id.as_str(), "{rows}");
    assert_eq!(rows[0]["ended_ms"], serde_json::Value::Null, "{rows}");
    assert_eq!(rows[0]["lost"], true, "{rows}");
    let table = text(&sessions(&[]));
    assert!(table.contains("ended (lost)"), "{table}");
    assert!(!table.contains("running"), "{table}");
}
