//! A foreground `smartproxy daemon` on 127.0.0.1:0 for tests: found through its pid file in a
//! private runtime dir, its stderr collected as it comes, killed and reaped on drop.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{TestEnv, wait_output};

pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub listen: String,
    pub admin: String,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    // The child is kept in Daemon and waited on by wait() or Drop. (`allow`, not `expect`:
    // in test binaries that never call this the lint does not run.)
    #[allow(clippy::zombie_processes)]
    pub fn start(env: &TestEnv, config: &Path, flags: &[&str], envs: &[(&str, &str)]) -> Daemon {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
            .args(["daemon", "--config", config.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = super::capture_stderr(&mut child);
        let pid_file = env.path().join("run/smartproxy.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(info) = serde_json::from_str::<serde_json::Value>(&text)
                && info["pid"] == child.id()
            {
                return Daemon {
                    child: Some(child),
                    listen: format!("http://{}", info["listen"].as_str().unwrap()),
                    admin: format!("http://{}", info["admin_listen"].as_str().unwrap()),
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the daemon exited ({status}): {}", stderr.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "the daemon did not start");
            super::pause(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// What the daemon wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls until the daemon's stderr contains `needle` `times` times.
    pub fn wait_for_log(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.stderr().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "the daemon never logged {needle:?} {times} times; stderr:\n{}",
                self.stderr()
            );
            super::pause(Duration::from_millis(20));
        }
    }

    /// Waits for the daemon to exit; its stderr is in the returned output.
    pub fn wait(mut self) -> Output {
        let mut out = wait_output(self.child.take().unwrap(), Duration::from_secs(30));
        // The reader thread sees EOF once the process is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            super::pause(Duration::from_millis(10));
        }
        out.stderr = self.stderr().into_bytes();
        out
    }

    /// SIGTERM, then `wait`.
    pub fn stop(self) -> Output {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
