//! Shared test support: a scripted mock upstream (`upstream`), the test virtualenv (`python`),
//! an isolated environment for the real binary (temp HOME, temp ledger, nothing of the
//! developer's environment), and `run` sessions whose child hands its environment to the test
//! and exits when told.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

pub mod chromium;
pub mod daemon;
pub mod dialects;
pub mod formats;
pub mod npm;
pub mod postgres;
pub mod python;
pub mod tmux;
pub mod ui;
pub mod upstream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_smartproxy");

/// The only variables a test passes on to the binary or a child: what finding programs (pyenv
/// shims included), the locale, temp files and the terminal need. Everything else is dropped,
/// so nothing the binary reads (`SMARTPROXY_*`, `MODEL_MAP`, `DEFAULT_UPSTREAM`, provider keys,
/// proxies, CA bundles...) leaks in from the developer's shell, variables added later included.
const KEPT: &[&str] = &[
    "PATH",
    "TMPDIR",
    "TERM",
    "LANG",
    "LANGUAGE",
    "RUST_BACKTRACE",
    "PYENV_ROOT",
    "PYENV_VERSION",
];

fn kept(name: &str) -> bool {
    KEPT.contains(&name) || name.starts_with("LC_")
}

/// `program` with an environment reduced to `KEPT`.
pub fn isolated_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| name.to_str().is_some_and(kept)));
    cmd
}

/// Where a test cannot run (a tool or data missing): under CI (`CI` set, as `.ci/run` is run),
/// fails, because a skipped test proves nothing. Elsewhere the test returns and the harness will
/// print `ok` for it, so the skip is made visible in the default output (which captures
/// `eprintln!` of passing tests): a `SKIPPED` line with the test's name at once, and a closing
/// list after the binary's `test result:` line.
/// Use as `if missing { return support::skip_or_fail("why"); }`.
pub fn skip_or_fail(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("cannot run under CI: {reason}");
    }
    skips::record(reason);
}

/// Whether every program of `programs` is on `PATH`; when one is not, skips the test (or fails
/// it under CI, see `skip_or_fail`) naming it. Use as
/// `if !support::require_tools(&["tmux"]) { return; }`.
pub fn require_tools(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_on_path(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(&format!(
        "needs {} on PATH (Debian/Ubuntu: apt-get install {})",
        missing.join(", "),
        missing.join(" ")
    ));
    false
}

/// The executable `program` on `PATH`, as a shell would find it.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The skips of this test binary, shown where the default output shows them.
mod skips {
    use std::io::Write;
    use std::sync::{Mutex, Once, PoisonError};

    static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    pub fn record(reason: &str) {
        // libtest names each test's thread after the test.
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map_or_else(|| "a test".to_owned(), str::to_owned);
        let line = format!("{test}: {reason}");
        // Straight to stderr, not `eprintln!`, which the harness captures for passing tests; in
        // one write, so that other tests' lines do not split it.
        let notice = format!("SKIPPED {line} (it did not run; the `ok` it gets proves nothing)\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
        SKIPPED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
        static SUMMARY: Once = Once::new();
        // The harness has no hook after its summary; the C runtime's exit handlers run after it,
        // on success and failure alike.
        SUMMARY.call_once(|| {
            #[allow(unsafe_code)]
            // SAFETY: registers a plain `extern "C"` function that never unwinds.
            unsafe {
                nix::libc::atexit(print_summary);
            }
        });
    }

    extern "C" fn print_summary() {
        let skipped = SKIPPED.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = format!(
            "\nSKIPPED {} test(s) of this binary, counted as passed above but never run:\n",
            skipped.len()
        );
        for line in skipped.iter() {
            text.push_str(&format!("  {line}\n"));
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// A temp dir with its own HOME and ledger.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    sessions: AtomicUsize,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let db = dir.path().join("ledger.db");
        Self {
            dir,
            db,
            sessions: AtomicUsize::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, with an environment that holds nothing of the developer's.
    pub fn command(&self) -> Command {
        self.command_for(BIN)
    }

    /// `program` in the same isolated environment as the binary (temp HOME, temp ledger).
    pub fn command_for(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = isolated_command(program);
        let home = self.dir.path().join("home");
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("SMARTPROXY_DB", &self.db)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `text` as the config `name`, runs `config validate` on it, asserts that it
    /// fails and returns what it printed (stderr, then stdout).
    pub fn invalid_config(&self, name: &str, text: &str) -> String {
        let config = self.write(name, text);
        let mut cmd = self.command();
        cmd.args(["config", "validate", "--config"]).arg(&config);
        let out = run_to_end(cmd);
        assert!(!out.status.success(), "{name} passed validation");
        self::text(&out.stderr) + &self::text(&out.stdout)
    }

    /// A config whose one provider is the mock upstream, keyed by `UPSTREAM_KEY`.
    pub fn upstream_config(&self, base_url: &str, extra: &str) -> PathBuf {
        self.write(
            "smartproxy.yaml",
            &format!(
                "providers:\n  - name: upstream\n    kind: openai\n    base_url: {base_url}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini, gpt-4o]\n{extra}"
            ),
        )
    }

    pub fn ledger(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// Rows of the `requests` table, oldest first, as (column -> text) maps.
    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        let conn = self.ledger();
        let mut stmt = conn
            .prepare("SELECT * FROM requests ORDER BY started_ms, id")
            .unwrap();
        let names: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        stmt.query_map([], |row| {
            let mut map = HashMap::new();
            for (i, name) in names.iter().enumerate() {
                let value: rusqlite::types::Value = row.get(i)?;
                let text = match value {
                    rusqlite::types::Value::Null => "NULL".to_owned(),
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(_) => "<blob>".to_owned(),
                };
                map.insert(name.clone(), text);
            }
            Ok(map)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Starts `smartproxy <args> -- sh -c ...` whose child writes its environment to a file and
    /// waits until `RunSession::finish` tells it to exit.
    pub fn start_run(&self, args: &[&str], envs: &[(&str, &str)]) -> RunSession {
        let n = self.sessions.fetch_add(1, Ordering::SeqCst);
        let dir = self.dir.path().join(format!("session-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "env > '{d}/env.tmp' && mv '{d}/env.tmp' '{d}/env.txt'; while [ ! -f '{d}/stop' ]; do sleep 0.02; done; exit $(cat '{d}/stop')",
            d = dir.display()
        );
        let mut cmd = self.command();
        cmd.args(args).args(["--", "sh", "-c", &script]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let env_file = dir.join("env.txt");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !env_file.exists() {
            assert!(Instant::now() < deadline, "the run child never started");
            pause(Duration::from_millis(10));
        }
        let env: HashMap<String, String> = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        RunSession {
            child: Some(child),
            dir,
            base_url: env["OPENAI_BASE_URL"].clone(),
            key: env["OPENAI_API_KEY"].clone(),
            env,
        }
    }
}

/// A `run` session in progress.
pub struct RunSession {
    child: Option<Child>,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    pub key: String,
    /// The child's whole environment.
    pub env: HashMap<String, String>,
}

impl RunSession {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Tells the child to exit with `code` and waits for smartproxy to finish.
    pub fn finish(mut self, code: i32) -> Output {
        std::fs::write(self.dir.join("stop"), code.to_string()).unwrap();
        let child = self.child.take().unwrap();
        wait_output(child, Duration::from_secs(30))
    }

    /// Waits for smartproxy to exit on its own (after a signal, say).
    pub fn wait(mut self) -> Output {
        let child = self.child.take().unwrap();
        wait_output(child, Duration::from_secs(30))
    }
}

impl Drop for RunSession {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::fs::write(self.dir.join("stop"), "1");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                pause(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for a child with a deadline, killing it if it hangs, so no test leaves a process behind.
/// Sleeps the calling test thread: tests poll the real binary from plain threads, where the
/// house's ban on `std::thread::sleep` (it would block an async runtime) does not apply.
pub fn pause(duration: Duration) {
    #[allow(
        clippy::disallowed_methods,
        reason = "a test's own thread, never an async runtime"
    )]
    std::thread::sleep(duration);
}

/// Waits for `child` (at most `timeout`) and returns its output. Its pipes are drained while it
/// runs: a child that writes more than a pipe holds (64 KiB) would otherwise never exit.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "process did not exit within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        pause(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs the binary to completion and returns its output.
pub fn run_to_end(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

/// Runs `cmd` in a process group of its own, for at most `timeout`: on timeout the whole group
/// (smartproxy and the agent it runs) is killed, so nothing is left behind, and the test fails.
pub fn run_group_to_end(mut cmd: Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > timeout {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {timeout:?} (killed):\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        pause(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A small chat request body.
pub fn chat_body(model: &str, stream: bool, prompt: &str) -> String {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": prompt}
        ]
    })
    .to_string()
}

/// An HTTP reply as the test sees it.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The text of an OpenAI stream: every chunk's `choices[0].delta.content`, joined.
    pub fn streamed_content(&self) -> String {
        self.events()
            .iter()
            .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The `data:` payloads of an SSE body.
    pub fn events(&self) -> Vec<String> {
        self.body
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    }
}

/// The tests' HTTP client. It ignores the developer's proxy variables, which would otherwise
/// send the tests' 127.0.0.1 traffic to the proxy.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Posts `body` to `{base_url}/chat/completions` with the key as a bearer token.
pub async fn post_chat(base_url: &str, key: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
    let client = http_client();
    let mut req = client
        .post(format!("{base_url}/chat/completions"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// Collects a child's stderr as it comes, on a thread of its own, so a test can read what was
/// written so far while the child runs. The thread ends when the child closes the pipe.
pub fn capture_stderr(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let sink = std::sync::Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    stderr
}

/// One of this machine's own addresses that is not loopback (from the kernel's routing table),
/// to connect to 127.0.0.1 from: the traffic stays on loopback, the daemon sees another client.
pub fn another_local_address() -> Option<std::net::IpAddr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = trie.lines().collect();
    lines.windows(2).find_map(|pair| {
        let ip: std::net::IpAddr = pair[0].trim().strip_prefix("|-- ")?.parse().ok()?;
        (pair[1].trim() == "/32 host LOCAL" && !ip.is_loopback()).then_some(ip)
    })
}
