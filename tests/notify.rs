//! Notifications (`notify:`): a budget passing its warning mark is sent once per session to
//! webhooks (JSON, retried after an error) and the desktop (`notify-send`), and a hung
//! webhook never slows the requests down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{TestEnv, pause, run_to_end, text};

/// Sends `N` chat requests and prints each one's status and seconds taken.
const CLIENT: &str = r#"import json, os, sys, time, urllib.request as u, urllib.error
for i in range(int(sys.argv[1])):
    body = json.dumps({'model': 'gpt-4o', 'max_tokens': 50,
        'messages': [{'role': 'user', 'content': 'hi %d' % i}]}).encode()
    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})
    t = time.monotonic()
    try:
        resp = u.urlopen(r); resp.read(); status = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    print(status, round(time.monotonic() - t, 3))
"#;

/// What the test's webhook does with each request in turn; past the script, it answers 200.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Holds the connection open without answering.
    Hang,
}

/// A webhook receiver on a loopback port: the bodies it got, in order.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hook {
    fn start(script: Vec<Answer>) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bodies, stop) = (Arc::clone(&bodies), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = listener.accept() else {
                        pause(Duration::from_millis(10));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let body = read_request(&mut stream);
                    let n = {
                        let mut bodies = bodies.lock().unwrap();
                        bodies.push(body);
                        bodies.len()
                    };
                    match script.get(n - 1).copied().unwrap_or(Answer::Status(200)) {
                        Answer::Status(code) => {
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                        }
                        Answer::Hang => held.push(stream),
                    }
                }
            })
        };
        Hook {
            url,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One HTTP request's body (by its content-length).
fn read_request(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return body.to_owned();
            }
        }
    }
    String::new()
}

/// `smartproxy run --mock --budget 0.004 --config CONFIG -- python3 client.py N`: requests
/// cost $0.000275 each, so the 12th takes the session budget past 80% (82.5%).
fn run(env: &TestEnv, config: &str, n: &str, path: Option<&str>) -> Output {
    run_with_budget(env, config, "0.004", n, path)
}

fn run_with_budget(
    env: &TestEnv,
    config: &str,
    budget: &str,
    n: &str,
    path: Option<&str>,
) -> Output {
    let config = env.write("sp.yaml", config);
    let client = env.write("client.py", CLIENT);
    let mut cmd = env.command();
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    cmd.args(["run", "--mock", "--budget", budget, "--config"])
        .arg(&config)
        .args(["--", "python3", client.to_str().unwrap(), n]);
    run_to_end(cmd)
}

fn session_id(env: &TestEnv) -> String {
    env.ledger()
        .query_row("SELECT id FROM sessions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_budget_warning_reaches_the_webhook_once_retried_after_an_error() {
    let env = TestEnv::new();
    let hook = Hook::start(vec![Answer::Status(500)]);
    let out = run(
        &env,
        &format!(
            "providers:\n  - name: m\n    kind: mock\nnotify:\n  webhook: [{}]\n",
            hook.url
        ),
        "16",
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bodies = hook.bodies();
    // The first try got a 500; the retry delivered the same event; no other event followed
    // although every request after the crossing found the budget mostly spent.
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
    let event = &bodies[0];
    assert_eq!(event["event"], "budget_warning", "{event}");
    assert_eq!(event["scope"], "session");
    assert_eq!(event["session_id"], session_id(&env));
    assert_eq!(event["limit_usd"], 0.004);
    assert!(event["spent_usd"].as_f64().unwrap() >= 0.0032, "{event}");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with("session budget 8"),
        "{event}"
    );
}

/// With $0.001, the third request (fitted to what is left) takes the budget to 82% and every
/// later one is refused before it is admitted: the crossing is noticed as the request ends.
#[test]
fn the_request_that_crosses_the_mark_notifies_though_none_is_admitted_after() {
    let env = TestEnv::new();
    let hook = Hook::start(Vec::new());
    let out = run_with_budget(
        &env,
        &format!(
            "providers:\n  - name: m\n    kind: mock\nnotify:\n  webhook: {}\n",
            hook.url
        ),
        "0.001",
        "6",
        None,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("3 requests refused"), "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["scope"], "session");
}

#[test]
fn a_hung_webhook_never_slows_the_requests() {
    let env = TestEnv::new();
    let hook = Hook::start(vec![Answer::Hang; 10]);
    let started = Instant::now();
    let out = run(
        &env,
        &format!(
            "providers:\n  - name: m\n    kind: mock\nnotify:\n  webhook: {}\n",
            hook.url
        ),
        "16",
        None,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let slowest = text(&out.stdout)
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert!(
        slowest < 1.0,
        "a request took {slowest}s: {}",
        text(&out.stdout)
    );
    // At the end the run waits a bounded time for the hung webhook, then gives up.
    assert!(
        stderr.contains("notifications still undelivered"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!hook.bodies().is_empty());
}

#[test]
fn desktop_notifications_run_notify_send() {
    let env = TestEnv::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = env.path().join("notify-args");
    let script = bin.join("notify-send");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            args_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(
        &env,
        "providers:\n  - name: m\n    kind: mock\nnotify: desktop\n",
        "16",
        Some(&path),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let args = std::fs::read_to_string(&args_file).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    // Once, not per request: app name, title, message.
    assert_eq!(lines.len(), 3, "{args}");
    assert_eq!(lines[0], "--app-name=smartproxy");
    assert_eq!(lines[1], "smartproxy");
    let id = session_id(&env);
    assert!(
        lines[2].starts_with("session budget 8")
            && lines[2].ends_with(&format!("session {}", &id[..8])),
        "{args}"
    );
}

#[test]
fn a_bad_notify_setting_names_the_file_line_and_key() {
    let env = TestEnv::new();
    for (config, key, want) in [
        (
            "notify: loud\n",
            "sp.yaml:4: `notify`",
            "is not `desktop` or `off`",
        ),
        (
            "notify:\n  webhook: ftp://example.com\n",
            "sp.yaml:5: `notify.webhook`",
            "is not an http:// or https:// URL",
        ),
    ] {
        let file = env.write(
            "sp.yaml",
            &format!("providers:\n  - name: m\n    kind: mock\n{config}"),
        );
        let mut cmd = env.command();
        cmd.args(["config", "validate", "--config"]).arg(&file);
        let out = run_to_end(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(key) && stderr.contains(want), "{stderr}");
    }
}

/// Sends the same failing tool-call turn `N` times, as a stuck agent does.
const LOOPING_CLIENT: &str = r#"import json, os, sys, urllib.request as u, urllib.error
for i in range(int(sys.argv[1])):
    body = json.dumps({'model': 'gpt-4o', 'max_tokens': 50,
        'tools': [{'type': 'function', 'function': {'name': 'read_file', 'parameters': {'type': 'object'}}}],
        'messages': [{'role': 'user', 'content': 'fix the build, attempt %d' % i},
            {'role': 'assistant', 'content': None, 'tool_calls': [{'id': 'c1', 'type': 'function',
                'function': {'name': 'read_file', 'arguments': '{"path": "missing.rs"}'}}]},
            {'role': 'tool', 'tool_call_id': 'c1', 'content': 'Error: no such file'}]}).encode()
    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})
    try:
        resp = u.urlopen(r); resp.read(); print(resp.status)
    except urllib.error.HTTPError as e:
        print(e.code)
"#;

/// A loop the breaker stops reaches the webhook once (not once per refused request), with the
/// signature's hash and counts and never the tool's name.
#[test]
fn a_tripped_loop_breaker_notifies_once_without_the_tools_name() {
    let env = TestEnv::new();
    let hook = Hook::start(vec![]);
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: m\n    kind: mock\nnotify:\n  webhook: {}\n",
            hook.url
        ),
    );
    let client = env.write("loop.py", LOOPING_CLIENT);
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--config"]).arg(&config).args([
        "--",
        "python3",
        client.to_str().unwrap(),
        "9",
    ]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let statuses: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "429").count(),
        4,
        "{statuses:?}"
    );
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let event = &bodies[0];
    assert_eq!(event["event"], "loop_detected", "{event}");
    assert_eq!(event["session_id"], session_id(&env));
    let signature = event["signature"].as_str().unwrap();
    assert!(signature.starts_with("tool call #"), "{event}");
    assert!(!event.to_string().contains("read_file"), "{event}");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("smartproxy resume"),
        "{event}"
    );
}
