//! The outage proof of team mode (issue 20): a private PostgreSQL stopped for 20 s under load
//! from one daemon and one `run`, then started again. No reply is without its row and none has
//! two; while it is down the daemon's budgeted requests are refused 503 with
//! `x-should-retry: true` and the run's are served on its offline grace until that is used up;
//! afterwards both spools are empty.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::TestEnv;
use support::daemon::Daemon;
use support::postgres::PrivateCluster;
use support::upstream::MockUpstream;

const CLIENTS: usize = 4;
const OUTAGE: Duration = Duration::from_secs(20);

/// gpt-4o with `max_tokens: 100`: reserves about $0.00102, costs $0.0001225.
fn body() -> String {
    serde_json::json!({"model": "gpt-4o", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

fn budget_yaml(extra: &str) -> String {
    format!("budget:\n  daily_usd: 100\n  timezone: utc\n  on_exceed: refuse\n{extra}")
}

/// One reply a client got: when it was sent and answered, and what it said.
#[derive(Clone)]
struct Seen {
    sent: Instant,
    answered: Instant,
    status: u16,
    id: String,
    retry: Option<String>,
    code: Option<String>,
    message: String,
}

/// A `smartproxy run` whose child waits for a stop file; its stderr read as it comes (a run
/// that warns on every refused request would otherwise fill its pipe and stall).
struct Run {
    child: Option<Child>,
    stop: std::path::PathBuf,
    stderr: Arc<Mutex<String>>,
    base_url: String,
    key: String,
}

impl Run {
    fn start(env: &TestEnv, config: &std::path::Path, url: &str) -> Run {
        let dir = env.path().join("session");
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "env > '{d}/env.tmp' && mv '{d}/env.tmp' '{d}/env.txt'; while [ ! -f '{d}/stop' ]; do sleep 0.02; done",
            d = dir.display()
        );
        let mut cmd = env.command();
        cmd.env("UPSTREAM_KEY", "k")
            .env("SMARTPROXY_DB", url)
            .args([
                "run",
                "--summary",
                "none",
                "--config",
                config.to_str().unwrap(),
            ])
            .args(["--", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = support::capture_stderr(&mut child);
        let env_file = dir.join("env.txt");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !env_file.exists() {
            assert!(Instant::now() < deadline, "the run child never started");
            support::pause(Duration::from_millis(10));
        }
        let vars: std::collections::HashMap<String, String> = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Run {
            child: Some(child),
            stop: dir.join("stop"),
            stderr,
            base_url: vars["OPENAI_BASE_URL"].clone(),
            key: vars["OPENAI_API_KEY"].clone(),
        }
    }

    /// Lets the child exit; waits for smartproxy; its exit status and stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        std::fs::write(&self.stop, "").unwrap();
        let out = support::wait_output(self.child.take().unwrap(), Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            support::pause(Duration::from_millis(10));
        }
        let stderr = self.stderr.lock().unwrap().clone();
        (out.status, stderr)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Requests to `base` (`.../v1`) until `stop`, paced a little so 20 s of outage stays a few
/// thousand rows; every reply into `seen`.
async fn client(
    base: String,
    key: Option<String>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let http = support::http_client();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let mut req = http
            .post(format!("{base}/chat/completions"))
            .header("content-type", "application/json")
            .body(body());
        if let Some(key) = &key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let id = header("x-smartproxy-request-id").unwrap();
        let retry = header("x-should-retry");
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
        seen.lock().unwrap().push(Seen {
            sent,
            answered: Instant::now(),
            status,
            id,
            retry,
            code: json["error"]["code"].as_str().map(str::to_owned),
            message: json["error"]["message"].as_str().unwrap_or("").to_owned(),
        });
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// `status --json` in `env` against `url`: the rows waiting in its spool.
fn spooled(env: &TestEnv, url: &str) -> i64 {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", url).args(["status", "--json"]);
    let out = support::run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["spooled"].as_i64().unwrap()
}

/// Waits (with a deadline) until `f` holds.
fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        support::pause(Duration::from_millis(50));
    }
}

/// How many 200s `seen` holds answered after `since`.
fn served_since(seen: &Mutex<Vec<Seen>>, since: Instant) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|s| s.status == 200 && s.sent >= since)
        .count()
}

#[test]
fn twenty_seconds_without_postgres_lose_no_row_and_double_none() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let url = cluster.url("ledger");
    let upstream = MockUpstream::start();
    // The daemon has no grace: refused while PostgreSQL is down. The run may spend $0.005 on
    // its own meanwhile (about 40 requests at their real cost), then is refused too.
    let daemon_env = TestEnv::new();
    let daemon_config = daemon_env.upstream_config(&upstream.base_url(), &budget_yaml(""));
    let daemon = Daemon::start(
        &daemon_env,
        &daemon_config,
        &[],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &url)],
    );
    let run_env = TestEnv::new();
    let run_config = run_env.upstream_config(
        &upstream.base_url(),
        &budget_yaml("  offline_grace_usd: 0.005\n"),
    );
    let run = Run::start(&run_env, &run_config, &url);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let strict = Arc::new(Mutex::new(Vec::new()));
    let graced = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let base = format!("{}/v1", daemon.listen);
        tasks.push(rt.spawn(client(base, None, Arc::clone(&stop), Arc::clone(&strict))));
        let (base, key) = (run.base_url.clone(), Some(run.key.clone()));
        tasks.push(rt.spawn(client(base, key, Arc::clone(&stop), Arc::clone(&graced))));
    }
    let start = Instant::now();
    wait_until("load before the outage", Duration::from_secs(30), || {
        served_since(&strict, start) >= 50 && served_since(&graced, start) >= 50
    });

    cluster.down();
    let down_at = Instant::now();
    while down_at.elapsed() < OUTAGE {
        support::pause(Duration::from_millis(100));
    }
    let up_at = Instant::now();
    cluster.up();
    // Budgeted requests are admitted again by PostgreSQL on both.
    wait_until("service after the outage", Duration::from_secs(30), || {
        served_since(&strict, up_at) >= 30 && served_since(&graced, up_at) >= 30
    });
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        rt.block_on(task).unwrap();
    }
    let strict = strict.lock().unwrap().clone();
    let graced = graced.lock().unwrap().clone();

    // While it was down (sent after the stop, answered before the start): the daemon refused
    // every budgeted request 503, retry advised; the run served some on its grace, then the
    // same 503 saying the grace is used up.
    let during = |s: &&Seen| s.sent > down_at && s.answered < up_at;
    let strict_down: Vec<&Seen> = strict.iter().filter(during).collect();
    assert!(
        strict_down.len() >= 20,
        "little load on the daemon while down"
    );
    for s in &strict_down {
        assert_eq!(s.status, 503, "{} while PostgreSQL was down", s.id);
        assert_eq!(s.code.as_deref(), Some("budget_store_unavailable"));
        assert_eq!(s.retry.as_deref(), Some("true"));
    }
    let graced_down: Vec<&Seen> = graced.iter().filter(during).collect();
    let graced_ok = graced_down.iter().filter(|s| s.status == 200).count();
    let graced_refused: Vec<&&Seen> = graced_down.iter().filter(|s| s.status != 200).collect();
    assert!(graced_ok >= 2, "{graced_ok} served on the grace");
    assert!(!graced_refused.is_empty(), "the grace never ran out");
    for s in graced_refused {
        assert_eq!(s.status, 503, "{}", s.message);
        assert_eq!(s.code.as_deref(), Some("budget_store_unavailable"));
        assert_eq!(s.retry.as_deref(), Some("true"));
        assert!(s.message.contains("offline grace"), "{}", s.message);
    }

    // The spools drain while both still run, and are empty after they stop.
    wait_until("empty spools", Duration::from_secs(60), || {
        spooled(&daemon_env, &url) == 0 && spooled(&run_env, &url) == 0
    });
    let (status, stderr) = run.finish();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    let out = daemon.stop();
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("lost"), "{stderr}");
    assert_eq!(spooled(&daemon_env, &url), 0);
    assert_eq!(spooled(&run_env, &url), 0);

    // Every reply a client saw (200s and refusals) has exactly one row, and there is no other.
    let ids: Vec<String> = strict.iter().chain(&graced).map(|s| s.id.clone()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    assert_eq!(
        cluster.requests_with_ids(&ids),
        ids.len() as i64,
        "rows lost"
    );
    assert_eq!(
        cluster.count("SELECT count(*) FROM requests"),
        ids.len() as i64
    );
    assert_eq!(
        cluster.count("SELECT count(*) - count(DISTINCT id) FROM requests"),
        0
    );
    assert_eq!(
        cluster.count("SELECT sum(requests) FROM usage_daily"),
        ids.len() as i64,
        "the roll-up counts each request once"
    );
    assert!(
        cluster.count("SELECT count(*) FROM requests WHERE budget_action LIKE 'offline grace%'")
            >= graced_ok as i64
    );
    // Nothing is left reserved once every row settled.
    let left = cluster.count("SELECT count(*) FROM budget_reservations WHERE NOT released");
    assert_eq!(left, 0, "reservations left unsettled");
    assert_eq!(
        cluster.count("SELECT COALESCE(sum(reserved_nusd), 0) FROM budget_counters"),
        0
    );
}
