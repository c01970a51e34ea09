//! A real terminal for the dashboard's tests: tmux on a private socket (`-L`) at a fixed
//! size, driven by keys and read back with `capture-pane`; the server is killed however the
//! test ends.

use std::process::Output;
use std::time::{Duration, Instant};

use super::TestEnv;

/// A tmux server of its own (`-L`), killed when dropped, even after a failed assertion.
pub struct Tmux<'a> {
    env: &'a TestEnv,
    socket: String,
}

impl<'a> Tmux<'a> {
    /// A new server on a socket of its own running `shell` in an 80x24 window named `dash`.
    pub fn start(env: &'a TestEnv, shell: &str) -> Self {
        Self::start_sized(env, shell, 80, 24)
    }

    /// The same at `width`x`height`.
    pub fn start_sized(env: &'a TestEnv, shell: &str, width: u16, height: u16) -> Self {
        let (width, height) = (width.to_string(), height.to_string());
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let tmux = Tmux {
            env,
            socket: format!(
                "smartproxy-dash-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ),
        };
        let started = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "dash",
            "-x",
            &width,
            "-y",
            &height,
            "sh",
            "-c",
            shell,
        ]);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        tmux
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        self.env
            .command_for("tmux")
            .env("TERM", "xterm-256color")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "dash"]).stdout)
            .into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend(keys);
        assert!(self.cmd(&args).status.success());
    }

    /// Polls the pane until `done` holds; fails with the last screen after a deadline.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.capture();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            super::pause(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
        // tmux leaves the socket file of a killed server behind; without TMUX_TMPDIR (the
        // isolated environment drops it) sockets live in /tmp/tmux-UID.
        use std::os::unix::fs::MetadataExt;
        let Ok(uid) = std::fs::metadata(self.env.path()).map(|m| m.uid()) else {
            return;
        };
        let _ = std::fs::remove_file(format!("/tmp/tmux-{uid}/{}", self.socket));
    }
}
