//! The smartproxy process under test: started pinned to CPU 0 as `smartproxy run ... -- sh -c ...`,
//! its address, key and pid read back from the child, stopped by a guard even on panic; plus what
//! /proc and the ledger say about it afterwards.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::UPSTREAM_KEY;
use crate::die_with_bench::die_with_bench;

pub struct ProxyInfo {
    pub addr: SocketAddr,
    pub key: String,
    pub pid: i32,
}

/// The key an editor sends to the bench's daemon.
pub const DAEMON_CLIENT_KEY: &str = "sk-bench-client-0123456789abcdef";

/// `taskset -c 0 smartproxy run ... -- sh -c '...; exec sleep 600'` (or `smartproxy daemon`),
/// stopped on drop (SIGTERM, then SIGKILL of smartproxy and the sleep if it does not exit), so
/// nothing outlives the bench.
pub struct ProxyProcess {
    child: Child,
    info_path: PathBuf,
    /// `smartproxy daemon`: its pid file is the info file, there is no child command.
    daemon: bool,
    /// The sleep's pid ($$ of the sh that exec'd it), for the SIGKILL path only.
    sleep_pid: Option<i32>,
    pub pinned: bool,
    exited: bool,
}

impl ProxyProcess {
    /// Starts `bin` with its ledger, info file and working directory in `dir`.
    pub fn start(bin: &Path, config: &Path, dir: &Path) -> anyhow::Result<Self> {
        Self::start_as(bin, config, dir, false)
    }

    /// Starts `bin daemon` on loopback (port 0, no budgets, one client key, as an editor
    /// would use it), with its ledger and runtime directory in `dir`.
    pub fn start_daemon(bin: &Path, config: &Path, dir: &Path) -> anyhow::Result<Self> {
        Self::start_as(bin, config, dir, true)
    }

    fn start_as(bin: &Path, config: &Path, dir: &Path, daemon: bool) -> anyhow::Result<Self> {
        let info_path = if daemon {
            dir.join("run").join("smartproxy.pid")
        } else {
            dir.join("info")
        };
        let script = r#"echo "$SMARTPROXY_URL $OPENAI_API_KEY $PPID $$" > "$1"; exec sleep 600"#;
        let build = |pinned: bool| {
            let mut cmd = if pinned {
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(bin);
                c
            } else {
                Command::new(bin)
            };
            if daemon {
                cmd.args(["daemon", "--config"])
                    .arg(config)
                    .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
                    .env("SMARTPROXY_RUNTIME_DIR", dir.join("run"))
                    .env("SMARTPROXY_API_KEY", DAEMON_CLIENT_KEY);
            } else {
                cmd.args(["run", "--summary", "none", "--config"])
                    .arg(config)
                    .args(["--", "sh", "-c", script, "sh"])
                    .arg(&info_path);
            }
            cmd.env("SMARTPROXY_DB", dir.join("ledger.db"))
                .env("SMARTPROXY_LOG_LEVEL", "error")
                .env("BENCH_UPSTREAM_KEY", UPSTREAM_KEY)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            die_with_bench(&mut cmd);
            cmd
        };
        let (child, pinned) = match build(true).spawn() {
            Ok(child) => (child, true),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                eprintln!("warning: taskset not found; the proxy runs unpinned");
                (
                    build(false).spawn().context("cannot start smartproxy")?,
                    false,
                )
            }
            Err(err) => return Err(err).context("cannot start taskset"),
        };
        Ok(Self {
            child,
            info_path,
            daemon,
            sleep_pid: None,
            pinned,
            exited: false,
        })
    }

    pub fn wait_for_info(&mut self, timeout: Duration) -> anyhow::Result<ProxyInfo> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                bail!("smartproxy exited during start-up: {status}");
            }
            if self.daemon {
                if let Some(info) = self.daemon_info()? {
                    return Ok(info);
                }
            } else if let Ok(text) = std::fs::read_to_string(&self.info_path)
                && text.ends_with('\n')
            {
                let fields: Vec<&str> = text.split_whitespace().collect();
                ensure!(fields.len() == 4, "unexpected info file: {text:?}");
                let addr: SocketAddr = fields[0]
                    .strip_prefix("http://")
                    .context("SMARTPROXY_URL is not http://")?
                    .trim_end_matches('/')
                    .parse()?;
                ensure!(
                    addr.ip().is_loopback(),
                    "the proxy is not on loopback: {addr}"
                );
                let pid: i32 = fields[2].parse()?;
                self.sleep_pid = fields[3].parse().ok();
                ensure!(
                    u32::try_from(pid).ok() == Some(self.child.id()),
                    "the sh's parent ({pid}) is not the smartproxy we started ({})",
                    self.child.id()
                );
                return Ok(ProxyInfo {
                    addr,
                    key: fields[1].to_owned(),
                    pid,
                });
            }
            ensure!(
                Instant::now() < deadline,
                "smartproxy did not start within {timeout:?}"
            );
            #[allow(
                clippy::disallowed_methods,
                reason = "the bench's own thread polls the process it measures"
            )]
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon's address and pid from its pid file, once it names this child.
    fn daemon_info(&self) -> anyhow::Result<Option<ProxyInfo>> {
        let Ok(text) = std::fs::read_to_string(&self.info_path) else {
            return Ok(None);
        };
        let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Ok(None);
        };
        if info["pid"].as_u64() != Some(u64::from(self.child.id())) {
            return Ok(None);
        }
        let addr: SocketAddr = info["listen"]
            .as_str()
            .context("no listen address in the pid file")?
            .parse()?;
        ensure!(
            addr.ip().is_loopback(),
            "the daemon is not on loopback: {addr}"
        );
        Ok(Some(ProxyInfo {
            addr,
            key: DAEMON_CLIENT_KEY.to_owned(),
            pid: i32::try_from(self.child.id())?,
        }))
    }

    /// SIGTERM (smartproxy forwards it to the sleep and exits); SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        if let Some(status) = self.child.try_wait()? {
            self.exited = true;
            return Ok(status);
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok(status);
            }
            #[allow(
                clippy::disallowed_methods,
                reason = "the bench's own thread polls the process it measures"
            )]
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill_all();
        bail!("smartproxy did not exit within {grace:?} of SIGTERM; killed it")
    }

    fn kill_all(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
        // smartproxy was killed, so the sleep (if it still runs) is an orphan now: kill it too,
        // after checking that its pid still names a `sleep`.
        let sleep = self.sleep_pid.take().or_else(|| {
            let info = std::fs::read_to_string(&self.info_path).ok()?;
            info.split_whitespace().nth(3)?.parse().ok()
        });
        if let Some(sleep) = sleep
            && std::fs::read_to_string(format!("/proc/{sleep}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        {
            let _ = kill(Pid::from_raw(sleep), Signal::SIGKILL);
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // `stop` already kills on a timeout; killing again is harmless (a reaped child is not
        // signalled, the sleep's pid is taken).
        if !self.exited && self.stop(Duration::from_secs(10)).is_err() {
            self.kill_all();
        }
    }
}

/// A field of /proc/PID/status, in kB.
pub fn proc_status_kb(pid: i32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

pub fn count_ledger_rows(path: &Path) -> anyhow::Result<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?)
}
