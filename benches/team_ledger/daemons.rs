//! Request latency through `smartproxy daemon`: daemons started side by side (a SQLite ledger,
//! a PostgreSQL ledger, a PostgreSQL ledger with a shared daily budget) in front of the same
//! mock upstream, measured in alternating blocks of sequential requests on one keep-alive
//! connection each, so they share the machine's noise. Every daemon is stopped on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::die_with_bench::die_with_bench;

pub const CLIENT_KEY: &str = "sk-bench-client-0123456789abcdef";

pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    /// `smartproxy daemon` on loopback port 0 with `config` and ledger `db`, its HOME and
    /// runtime directory under `dir`; returns once its pid file names it.
    pub fn start(
        name: &'static str,
        bin: &Path,
        dir: &Path,
        config: &str,
        db: &str,
        upstream_key: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("home"))?;
        let config_path = dir.join("smartproxy.yaml");
        std::fs::write(&config_path, config)?;
        let run_dir = dir.join("run");
        let child = die_with_bench(&mut Command::new(bin))
            .args(["daemon", "--config"])
            .arg(&config_path)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("HOME", dir.join("home"))
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env("SMARTPROXY_RUNTIME_DIR", &run_dir)
            .env("SMARTPROXY_API_KEY", CLIENT_KEY)
            .env("SMARTPROXY_DB", db)
            .env("SMARTPROXY_LOG_LEVEL", "error")
            .env("BENCH_UPSTREAM_KEY", upstream_key)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start smartproxy daemon")?;
        let mut daemon = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        daemon.addr = daemon.wait_for_pid_file(&run_dir.join("smartproxy.pid"))?;
        Ok(daemon)
    }

    fn wait_for_pid_file(&mut self, path: &PathBuf) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("daemon {} exited during start-up: {status}", self.name);
            }
            if let Ok(text) = std::fs::read_to_string(path)
                && let Ok(info) = serde_json::from_str::<serde_json::Value>(&text)
                && info["pid"].as_u64() == Some(u64::from(self.child.id()))
                && let Some(listen) = info["listen"].as_str()
            {
                return Ok(listen.parse()?);
            }
            ensure!(
                Instant::now() < deadline,
                "daemon {} did not start within 30 s",
                self.name
            );
            #[allow(
                clippy::disallowed_methods,
                reason = "the bench's own thread polls the process it measures"
            )]
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            #[allow(
                clippy::disallowed_methods,
                reason = "waiting for the daemon the bench started to exit"
            )]
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Latencies of each daemon, milliseconds, over `blocks` rounds of `per_block` sequential
/// requests each (after `warm_up` requests to each).
pub async fn measure(
    daemons: &[&Daemon],
    warm_up: usize,
    blocks: usize,
    per_block: usize,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Explain TCP vs UDP in two sentences."}],
        "max_tokens": 64,
    })
    .to_string();
    let clients: Vec<reqwest::Client> = daemons
        .iter()
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .context("an HTTP client")
        })
        .collect::<anyhow::Result<_>>()?;
    let one = async |i: usize| -> anyhow::Result<f64> {
        let url = format!("http://{}/v1/chat/completions", daemons[i].addr);
        let t = Instant::now();
        let reply = clients[i]
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = reply.status();
        let text = reply.bytes().await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            status.is_success(),
            "{}: {status} {}",
            daemons[i].name,
            String::from_utf8_lossy(&text)
        );
        Ok(ms)
    };
    for i in 0..daemons.len() {
        for _ in 0..warm_up {
            one(i).await?;
        }
    }
    let mut samples = vec![Vec::with_capacity(blocks * per_block); daemons.len()];
    for block in 0..blocks {
        // Alternate the order too, so no side always follows the same one.
        for k in 0..daemons.len() {
            let i = if block % 2 == 0 {
                k
            } else {
                daemons.len() - 1 - k
            };
            for _ in 0..per_block {
                samples[i].push(one(i).await?);
            }
        }
    }
    Ok(samples)
}

pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

pub fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}
