//! `smartproxy ui` on a free port, as the web tests start it: its URL read from what it prints,
//! killed on drop.

use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TestEnv;

pub struct Ui {
    child: Child,
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Ui {
    /// Starts `smartproxy ui` in `env` with the variables `envs` (`TZ`, `SMARTPROXY_DB`, ...).
    #[allow(clippy::zombie_processes)]
    pub fn start(env: &TestEnv, envs: &[(&str, &str)]) -> Ui {
        let mut cmd = env.command();
        cmd.arg("ui").stdout(Stdio::null()).stderr(Stdio::piped());
        for (name, value) in envs {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = super::capture_stderr(&mut child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = stderr.lock().unwrap().clone();
            if let Some(at) = seen.find("http://") {
                let url = seen[at..].split_whitespace().next().unwrap();
                let url = url.trim_end_matches('/').to_owned();
                return Ui { child, url, stderr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("smartproxy ui exited ({status}): {seen}");
            }
            assert!(Instant::now() < deadline, "ui did not start: {seen}");
            super::pause(Duration::from_millis(20));
        }
    }

    /// What it printed so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status, the named response header and the body of `GET {url}`.
pub async fn get(url: &str, header: &str) -> (u16, String, String) {
    let resp = super::http_client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let value = resp
        .headers()
        .get(header)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, value, resp.text().await.unwrap())
}

/// The JSON of `GET {url}`, which must answer 200.
pub async fn json(url: &str) -> serde_json::Value {
    let (status, _, body) = get(url, "content-type").await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}
