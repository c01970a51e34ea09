//! A `smartproxy daemon` started on free loopback ports for one test, killed and reaped when
//! dropped, whatever the test's ending.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use super::{TestEnv, wait_output};

pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` of the public listener.
    pub listen: String,
    /// `http://127.0.0.1:PORT` of the admin listener.
    pub admin: String,
}

impl Daemon {
    /// Starts the daemon on `config` with `envs` added, and waits until its pid file names it.
    #[expect(
        clippy::zombie_processes,
        reason = "the child is kept in Daemon and waited on by wait() or Drop"
    )]
    pub fn start(env: &TestEnv, config: &Path, envs: &[(&str, &str)]) -> Daemon {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
            .args(["daemon", "--config", config.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let pid_file = env.path().join("run/smartproxy.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .filter(|info| info["pid"] == child.id());
            if let Some(info) = info {
                return Daemon {
                    child: Some(child),
                    listen: format!("http://{}", info["listen"].as_str().unwrap()),
                    admin: format!("http://{}", info["admin_listen"].as_str().unwrap()),
                };
            }
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the daemon to exit (after a signal) and returns what it printed.
    pub fn wait(mut self) -> Output {
        wait_output(self.child.take().unwrap(), Duration::from_secs(30))
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
