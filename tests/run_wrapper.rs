//! `smartproxy run` end to end: the child's environment, exit status and signals, stdout
//! untouched, the summary, sub-sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::upstream::MockUpstream;
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

const REAL_KEY: &str = "sk-real-provider-key-never-for-children";

#[tokio::test(flavor = "multi_thread")]
async fn child_gets_the_proxy_and_a_session_key_never_the_real_key() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[
            ("UPSTREAM_KEY", REAL_KEY),
            ("ANTHROPIC_API_KEY", "sk-ant-real"),
            ("DEEPSEEK_API_KEY", "sk-ds-real"),
            ("ANTHROPIC_AUTH_TOKEN", "sk-ant-oat-real"),
            ("GEMINI_API_KEY", "gm-real"),
        ],
    );
    for (name, value) in &session.env {
        assert!(!value.contains(REAL_KEY), "{name} leaks the real key");
        assert!(
            !["sk-ant-real", "sk-ds-real", "sk-ant-oat-real", "gm-real"]
                .iter()
                .any(|k| value.contains(k)),
            "{name} leaks a key"
        );
    }
    assert!(!session.env.contains_key("UPSTREAM_KEY"));
    assert!(!session.env.contains_key("DEEPSEEK_API_KEY"));
    assert_eq!(
        session.env["ANTHROPIC_API_KEY"], session.key,
        "Anthropic clients get the session key"
    );
    assert!(
        !session.env.contains_key("ANTHROPIC_AUTH_TOKEN"),
        "one Anthropic credential only: the SDKs warn when both are set, and Claude Code \
         prefers a bearer token over its own login"
    );
    let port_url = session.env["SMARTPROXY_URL"].clone();
    assert!(port_url.starts_with("http://127.0.0.1:"), "{port_url}");
    assert_eq!(session.base_url, format!("{port_url}/v1"));
    assert_eq!(session.env["ANTHROPIC_BASE_URL"], port_url);
    assert_eq!(session.env["OLLAMA_HOST"], port_url);
    assert_eq!(session.env["OPENAI_API_BASE"], session.base_url);
    assert!(
        session.key.starts_with("sk-smartproxy-") && session.key.len() >= 14 + 32,
        "{}",
        session.key
    );
    assert!(session.env["NO_PROXY"].contains("127.0.0.1"));
    assert_eq!(session.env["SMARTPROXY_SESSION_ID"].len(), 16);

    // The session key works in each of the three places clients put it; nothing else does.
    let client = support::http_client();
    let url = format!("{}/chat/completions", session.base_url);
    let body = chat_body("gpt-4o-mini", false, "hello");
    for (header, value) in [
        ("authorization", format!("Bearer {}", session.key)),
        ("x-api-key", session.key.clone()),
        ("api-key", session.key.clone()),
    ] {
        let resp = client
            .post(&url)
            .header(header, value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{header}");
    }
    for wrong in [None, Some(REAL_KEY), Some("sk-smartproxy-guess")] {
        let reply = post_chat(&session.base_url, wrong, body.clone()).await;
        assert_eq!(reply.status, 401, "{wrong:?}");
        assert_eq!(reply.json()["error"]["code"], "invalid_api_key");
    }
    // Upstream saw the real key, and only on the requests that passed.
    let received = upstream.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {REAL_KEY}").as_str())
        );
    }
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(
        rows.len(),
        6,
        "every request, refused ones too, is in the ledger"
    );
    assert_eq!(rows.iter().filter(|r| r["status"] == "401").count(), 3);
}

#[test]
fn pass_env_keeps_a_named_key() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: other\n    kind: openai\n    base_url: https://other.example/v1\n    api_key_env: OTHER_PROVIDER_KEY\n",
    );
    let session = env.start_run(
        &[
            "run",
            "--mock",
            "--config",
            config.to_str().unwrap(),
            "--pass-env",
            "DEEPSEEK_API_KEY",
        ],
        &[
            ("DEEPSEEK_API_KEY", "sk-ds-kept"),
            ("OTHER_PROVIDER_KEY", "sk-other-gone"),
        ],
    );
    assert_eq!(
        session.env.get("DEEPSEEK_API_KEY").map(String::as_str),
        Some("sk-ds-kept")
    );
    assert!(!session.env.contains_key("OTHER_PROVIDER_KEY"));
    session.finish(0);

    let mut cmd = env.command();
    cmd.args([
        "run",
        "--mock",
        "--pass-env",
        "OPENAI_API_KEY",
        "--",
        "true",
    ]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("always sets OPENAI_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exit_status_passes_through_and_stdout_is_the_childs() {
    let env = TestEnv::new();
    for code in [0, 1, 3, 42, 255] {
        let mut cmd = env.command();
        cmd.args([
            "run",
            "--mock",
            "--",
            "sh",
            "-c",
            &format!("printf 'child output\\n'; exit {code}"),
        ]);
        let out = run_to_end(cmd);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "child output\n",
            "stdout belongs to the child alone"
        );
        assert!(
            text(&out.stderr).contains("smartproxy session"),
            "summary goes to stderr"
        );
    }
}

#[test]
fn a_missing_command_exits_127_with_a_clear_message() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--", "no-such-command-xyz"]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(127));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("command not found: `no-such-command-xyz`"),
        "{stderr}"
    );
    let conn = env.ledger();
    let exit: i64 = conn
        .query_row("SELECT exit_code FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(exit, 127, "the session is still recorded and closed");
}

#[test]
fn signals_are_forwarded_and_reported_as_128_plus_n() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let env = TestEnv::new();
    for (signal, name, code) in [
        (Signal::SIGTERM, "TERM", 143),
        (Signal::SIGINT, "INT", 130),
        (Signal::SIGHUP, "HUP", 129),
    ] {
        // The command notes the signal, then dies of it (default action restored): its log
        // proves the signal reached it, the exit code that smartproxy reported its death.
        let dir = env.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let script = format!(
            "trap 'echo {name} >> \"{d}/signals.log\"; trap - {name}; kill -{name} $$' {name}\n\
             : > '{d}/ready'\nwhile :; do sleep 0.02; done\n"
        );
        let mut cmd = env.command();
        cmd.args(["run", "--mock", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !dir.join("ready").exists() {
            assert!(Instant::now() < deadline, "the command never started");
            support::pause(Duration::from_millis(10));
        }
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let out = support::wait_output(child, Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{signal:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("signals.log")).unwrap_or_default(),
            format!("{name}\n"),
            "{signal:?} reached the command once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_reports_the_ledgers_figures() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &[
            "run",
            "--tag",
            "nightly",
            "--budget",
            "5",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("UPSTREAM_KEY", "k")],
    );
    for _ in 0..3 {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat_body("gpt-4o-mini", false, "hi"),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let reply = post_chat(&session.base_url, Some(&session.key), "{broken").await;
    assert_eq!(reply.status, 400);
    let out = session.finish(0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[nightly]"), "{stderr}");
    assert!(stderr.contains("4 requests (3 ok, 1 failed)"), "{stderr}");
    // 3 x 21 prompt tokens and 3 x 7 completion tokens from the mock upstream's usage.
    assert!(
        stderr.contains("│ gpt-4o-mini ┆        3 ┆  3 ┆      0 ┆        63 ┆         21"),
        "{stderr}"
    );
    // gpt-4o-mini: $0.15 / $0.60 per million tokens.
    let expected = (63.0 * 0.15 + 21.0 * 0.60) / 1e6;
    assert!(stderr.contains(&format!("${expected:.6}")), "{stderr}");
    assert!(stderr.contains("of a $5.0000 budget"), "{stderr}");

    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--summary", "json", "--", "true"]);
    let out = run_to_end(cmd);
    let summary: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(summary["requests"], 0);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["cost_usd"], 0.0, "nothing spent is $0, not unknown");
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--", "true"]);
    let stderr = text(&run_to_end(cmd).stderr);
    assert!(stderr.contains("cost $0 (no budget set)"), "{stderr}");

    // --summary-file: the summary as data in a file of its own, the child's stderr untouched.
    let file = env.dir.path().join("summary.json");
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--summary", "json", "--summary-file"])
        .arg(&file)
        .args(["--", "sh", "-c", "echo child-noise >&2"]);
    let out = run_to_end(cmd);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim(), "child-noise", "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(summary["requests"], 0);
}

#[test]
fn a_run_inside_a_run_records_its_parent() {
    let env = TestEnv::new();
    let outer = env.start_run(&["run", "--mock", "--tag", "outer"], &[]);
    let parent = outer.env["SMARTPROXY_SESSION_ID"].clone();
    let mut inner = env.command();
    inner
        .env("SMARTPROXY_SESSION_ID", &parent)
        .args(["run", "--mock", "--tag", "inner", "--", "true"]);
    assert!(run_to_end(inner).status.success());
    outer.finish(0);
    let conn = env.ledger();
    let inner_parent: String = conn
        .query_row(
            "SELECT parent_id FROM sessions WHERE tag = 'inner'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(inner_parent, parent);

    let mut cmd = env.command();
    cmd.args(["sessions"]);
    let listing = text(&run_to_end(cmd).stdout);
    // The table shows ids by their first 8 characters.
    let outer_line = listing
        .lines()
        .position(|l| l.contains(&parent[..8]))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        listing.lines().nth(outer_line + 1).unwrap().contains('└'),
        "{listing}"
    );
}

#[test]
fn a_run_inside_a_run_is_recorded_once_and_counted_in_both() {
    let env = TestEnv::new();
    // Three requests from the inner session's command, through the inner proxy, whose
    // zero-config provider is the outer session's proxy (OPENAI_BASE_URL, OPENAI_API_KEY).
    let script = "import os, urllib.request as u\n\
        for _ in range(3):\n    \
        u.urlopen(u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', \
        data=b'{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}', \
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], \
        'Content-Type': 'application/json'})).read()\n";
    let mut cmd = env.command();
    cmd.args([
        "run",
        "--mock",
        "--tag",
        "outer",
        "--budget",
        "1",
        "--summary",
        "json",
        "--",
    ])
    .args([
        support::BIN,
        "run",
        "--tag",
        "inner",
        "--summary",
        "none",
        "--",
    ])
    .args(["python3", "-c", script]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let conn = env.ledger();
    let (inner, parent): (String, String) = conn
        .query_row(
            "SELECT id, parent_id FROM sessions WHERE tag = 'inner'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let outer: String = conn
        .query_row("SELECT id FROM sessions WHERE tag = 'outer'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(parent, outer);
    let rows = env.requests();
    assert_eq!(
        rows.len(),
        3,
        "each request once, not once per proxy: {rows:?}"
    );
    assert!(rows.iter().all(|r| r["session_id"] == inner), "{rows:?}");
    let cost: f64 = rows
        .iter()
        .map(|r| r["cost_usd"].parse::<f64>().unwrap())
        .sum();
    assert!(cost > 0.0);
    // The shared daily/monthly books (the spend rollup) hold the cost once.
    let rolled: f64 = conn
        .query_row("SELECT TOTAL(cost_usd) FROM spend", [], |r| r.get(0))
        .unwrap();
    assert!((rolled - cost).abs() < 1e-12, "{rolled} vs {cost}");

    // The outer session's summary and stats include its child's requests.
    let summary: serde_json::Value =
        serde_json::from_str(stderr.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["requests"], 3, "{summary}");
    let mut stats = env.command();
    stats.args(["stats", "--session", &outer, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&run_to_end(stats).stdout).unwrap();
    assert_eq!(stats["total"]["requests"], 3, "{stats}");
}

/// A `run` inside a `run` with a config file whose provider key the outer `run` removed from
/// its command's environment: the inner one needs no key of its own, it goes through the outer
/// session's proxy (which holds the key). (A shim called under `run`: `shims.rs`.)
#[test]
fn a_run_inside_a_run_with_a_config_file_needs_no_provider_key() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    // Found by discovery in the working directory, by the outer and the inner run alike.
    env.upstream_config(&upstream.base_url(), "");
    let script = "import os, urllib.request as u\n\
        r = u.urlopen(u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', \
        data=b'{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}', \
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], \
        'Content-Type': 'application/json'}))\n\
        print('status', r.status)\n";
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", REAL_KEY)
        .args(["run", "--tag", "outer", "--summary", "none", "--"])
        .args([
            support::BIN,
            "run",
            "--tag",
            "inner",
            "--summary",
            "none",
            "--",
        ])
        .args(["python3", "-c", script]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("status 200"), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("no provider is configured"),
        "the inner run has the outer proxy: {stderr}"
    );
    assert_eq!(upstream.calls(), 1);
    let rows = env.requests();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "200", "{rows:?}");
    let inner: String = env
        .ledger()
        .query_row("SELECT id FROM sessions WHERE tag = 'inner'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows[0]["session_id"], inner, "{rows:?}");
}
