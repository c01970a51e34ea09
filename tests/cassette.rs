//! Cassettes: `run --record` a scripted agent's session against the mock upstream, then
//! `run --replay` it with the upstream gone and no key: the same bytes, cost 0, exit 0. A
//! changed prompt is a `cassette_miss` naming the field (or goes upstream with
//! `--replay-miss passthrough`); a killed recording stays readable; a bad cassette is an error
//! naming its file and line; keys never reach the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, run_group_to_end, text};

const AGENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cassette_agent.py");
const UPSTREAM_KEY: &str = "sk-upstream-0123456789abcdef0123";
/// A key and a home folder in the system prompt: redacted in the cassette, so another machine's
/// (the replay's) match.
const NOTE_RECORDED: &str = " Key sk-live-abcdefghijklmnopqrstu at /home/alice.";
const NOTE_REPLAYED: &str = " Key sk-live-zyxwvutsrqponmlkjihgf at /home/bob.";

fn die_reply(face: u32) -> Behavior {
    Behavior::Raw {
        content_type: "application/json",
        body: format!(
            r#"{{"id":"chatcmpl-die{face}","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"You rolled {face}."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}}}"#
        ),
    }
}

/// `smartproxy run ARGS -- python3 cassette_agent.py`, with `envs`.
fn agent(env: &TestEnv, config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd: Command = env.command();
    cmd.args([
        "run",
        "--summary",
        "none",
        "--config",
        config.to_str().unwrap(),
    ])
    .args(args)
    .args(["--", "python3", AGENT]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_group_to_end(cmd, Duration::from_secs(60))
}

/// A recorded session: the upstream scripted so the repeated request gets two answers.
fn record(env: &TestEnv, upstream: &MockUpstream, cassette: &Path) -> (std::path::PathBuf, Output) {
    let config = env.upstream_config(
        &upstream.base_url(),
        "cassette:\n  redact: ['/home/[a-z]+']\n",
    );
    upstream.push([Behavior::Ok, Behavior::Ok, die_reply(3), die_reply(5)]);
    let out = agent(
        env,
        &config,
        &["--record", cassette.to_str().unwrap()],
        &[
            ("UPSTREAM_KEY", UPSTREAM_KEY),
            ("AGENT_NOTE", NOTE_RECORDED),
        ],
    );
    assert!(
        out.status.success(),
        "recording failed: {}",
        text(&out.stderr)
    );
    (config, out)
}

#[test]
fn a_recorded_session_replays_offline_byte_for_byte_at_no_cost() {
    let env = TestEnv::new();
    let cassette = env.path().join("session.cassette.jsonl");
    let upstream = MockUpstream::start();
    let (config, recorded) = record(&env, &upstream, &cassette);
    assert_eq!(upstream.calls(), 7);
    let stdout = text(&recorded.stdout);
    assert!(
        stdout.contains("You rolled 3.") && stdout.contains("You rolled 5."),
        "{stdout}"
    );
    assert!(
        stdout.contains("data: [DONE]"),
        "the stream was recorded: {stdout}"
    );

    // The file: private, versioned, one line per pair, no key anywhere.
    let file = std::fs::read_to_string(&cassette).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cassette).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(file.lines().next(), Some(r#"{"smartproxy_cassette":1}"#));
    assert_eq!(file.lines().count(), 8, "{file}");
    for secret in [UPSTREAM_KEY, "sk-smartproxy-", "sk-live-", "/home/alice"] {
        assert!(!file.contains(secret), "`{secret}` reached the cassette");
    }
    assert!(file.contains("[REDACTED]"));
    assert!(!file.to_lowercase().contains("authorization"));

    // The upstream is gone (its port closed) and no key is set.
    drop(upstream);
    let replayed = agent(
        &env,
        &config,
        &["--replay", cassette.to_str().unwrap()],
        &[("AGENT_NOTE", NOTE_REPLAYED)],
    );
    assert!(replayed.status.success(), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), stdout, "the agent saw other bytes");
    let rows = env.requests();
    let replays: Vec<_> = rows
        .iter()
        .filter(|r| r["provider"] == "cassette")
        .collect();
    assert_eq!(replays.len(), 7, "{rows:?}");
    for row in &replays {
        assert_eq!(row["cost_usd"], "0", "{row:?}");
        assert_eq!(row["cache_status"], "replay");
        assert_eq!(row["status"], "200");
    }
    assert_eq!(replays.iter().filter(|r| r["stream"] == "1").count(), 2);
    for endpoint in ["chat.completions", "messages", "responses", "ollama.chat"] {
        assert!(
            replays.iter().any(|r| r["endpoint"] == endpoint),
            "{endpoint}"
        );
    }
}

#[test]
fn claude_code_replays_what_it_recorded() {
    let claude = match support::npm::client("claude") {
        Ok(path) => path,
        Err(reason) => return support::skip_or_fail(&reason),
    };
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: upstream\n    kind: openai\n    base_url: {}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n",
            upstream.base_url()
        ),
    );
    let cassette = env.path().join("claude.jsonl");
    let session = |mode: &str, key: Option<&str>| {
        let mut cmd = env.command();
        // Claude Code's own update checks and telemetry would go to the internet.
        cmd.env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .args([
                "run",
                "--summary",
                "none",
                "--config",
                config.to_str().unwrap(),
                mode,
            ])
            .arg(&cassette)
            .arg("--")
            .arg(&claude)
            .args(["-p", "Say hi to the proxy"]);
        if let Some(key) = key {
            cmd.env("UPSTREAM_KEY", key);
        }
        let out = run_group_to_end(cmd, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "{mode}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    };
    let recorded = session("--record", Some(UPSTREAM_KEY));
    let calls = upstream.calls();
    assert!(calls > 0);
    drop(upstream);
    let replayed = session("--replay", None);
    assert_eq!(text(&replayed.stdout), text(&recorded.stdout));
    let replays = env
        .requests()
        .into_iter()
        .filter(|r| r["provider"] == "cassette")
        .count();
    assert_eq!(replays, calls);
}

#[test]
fn a_changed_prompt_misses_loudly_or_goes_upstream_when_asked() {
    let env = TestEnv::new();
    let cassette = env.path().join("c.jsonl");
    let upstream = MockUpstream::start();
    let (config, _) = record(&env, &upstream, &cassette);
    let changed = [
        ("AGENT_PROMPT", "What is the question?"),
        ("AGENT_NOTE", NOTE_REPLAYED),
    ];
    let missed = agent(
        &env,
        &config,
        &["--replay", cassette.to_str().unwrap()],
        &changed,
    );
    assert_eq!(missed.status.code(), Some(3), "{}", text(&missed.stderr));
    let stdout = text(&missed.stdout);
    let first = stdout.lines().next().unwrap();
    assert!(first.starts_with("404 "), "{first}");
    let body: serde_json::Value = serde_json::from_str(&first[4..]).unwrap();
    assert_eq!(body["error"]["code"], "cassette_miss");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`messages[1].content`"), "{message}");
    assert!(
        !message.contains("question"),
        "no prompt text in errors: {message}"
    );
    // The rest of the session still replays.
    assert!(stdout.contains("You rolled 3."), "{stdout}");
    let rows = env.requests();
    assert!(
        rows.iter().any(|r| r["error_code"] == "cassette_miss"),
        "{rows:?}"
    );

    // Passthrough: the two changed requests go upstream, and are added to the cassette.
    let before = upstream.calls();
    let lines = std::fs::read_to_string(&cassette).unwrap().lines().count();
    let path = cassette.to_str().unwrap();
    let through = agent(
        &env,
        &config,
        &[
            "--replay",
            path,
            "--replay-miss",
            "passthrough",
            "--record",
            path,
        ],
        &[changed[0], changed[1], ("UPSTREAM_KEY", UPSTREAM_KEY)],
    );
    assert!(through.status.success(), "{}", text(&through.stderr));
    assert_eq!(upstream.calls(), before + 2);
    let grown = std::fs::read_to_string(&cassette).unwrap().lines().count();
    assert_eq!(grown, lines + 2);
    // And now the changed prompt replays offline too.
    drop(upstream);
    let again = agent(&env, &config, &["--replay", path], &changed);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), text(&through.stdout));
}

/// One whole chat request to a running session; its reply's body.
fn ask(session: &support::RunSession, prompt: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = support::chat_body("gpt-4o-mini", false, prompt);
    let reply = runtime.block_on(support::post_chat(
        &session.base_url,
        Some(&session.key),
        body,
    ));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[test]
fn a_killed_recording_leaves_a_readable_cassette() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let config = env.upstream_config(&upstream.base_url(), "");
    let cassette = env.path().join("killed.jsonl");
    let path = cassette.to_str().unwrap();
    let session = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            path,
        ],
        &[("UPSTREAM_KEY", UPSTREAM_KEY)],
    );
    let answers = [ask(&session, "one"), ask(&session, "two")];
    // The pairs reach the file off the request path: wait for both, then kill -9.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&cassette).unwrap().lines().count() < 3 {
        assert!(std::time::Instant::now() < deadline, "pairs never written");
        support::pause(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(session.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(session.wait());
    // A write cut short by the kill: half a line at the end.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&cassette)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"endpoint":"/v1/chat/compl"#).unwrap();
    drop(file);

    let replay = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--replay",
            path,
        ],
        &[],
    );
    let replayed = [ask(&replay, "one"), ask(&replay, "two")];
    let out = replay.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(replayed, answers);
    assert!(
        text(&out.stderr).contains("cut short"),
        "{}",
        text(&out.stderr)
    );
    // Recording onto it again drops the cut line so the next pair starts on its own line.
    let again = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            path,
        ],
        &[("UPSTREAM_KEY", UPSTREAM_KEY)],
    );
    let out = again.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(&cassette).unwrap();
    assert!(file.ends_with('\n') && !file.contains("compl\""), "{file}");
}

#[test]
fn a_bad_cassette_is_an_error_naming_its_file_and_line() {
    let env = TestEnv::new();
    let config = env.upstream_config("http://127.0.0.1:9/v1", "");
    let header = "{\"smartproxy_cassette\":1}\n";
    let good =
        r#"{"endpoint":"/v1/chat/completions","request":{"model":"m"},"status":200,"text":"hi"}"#;
    for (name, content, expected) in [
        (
            "future.jsonl",
            "{\"smartproxy_cassette\":2}\n".to_owned(),
            "line 1: cassette version 2",
        ),
        (
            "other.jsonl",
            "[1,2,3]\n".to_owned(),
            "line 1: not a smartproxy cassette",
        ),
        (
            "broken.jsonl",
            format!("{header}{good}\n{{\"endpoint\":\n{good}\n"),
            "line 3: not a cassette entry",
        ),
    ] {
        let path = env.write(name, &content);
        let mut cmd = env.command();
        cmd.args([
            "run",
            "--config",
            config.to_str().unwrap(),
            "--replay",
            path.to_str().unwrap(),
        ])
        .args(["--", "true"]);
        let out = run_group_to_end(cmd, Duration::from_secs(30));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("cassette {}, {expected}", path.display())),
            "{name}: {stderr}"
        );
    }
    // A cassette that cannot be written stops the session before its command runs.
    let not_a_folder = env.write("plain-file", "");
    let unwritable = not_a_folder.join("c.jsonl");
    let mut cmd = env.command();
    cmd.args(["run", "--config", config.to_str().unwrap(), "--record"])
        .arg(&unwritable)
        .args(["--", "sh", "-c", "echo ran"]);
    let out = run_group_to_end(cmd, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(text(&out.stdout).is_empty(), "the command ran");
    assert!(
        text(&out.stderr).contains(&format!("cassette {}", unwritable.display())),
        "{}",
        text(&out.stderr)
    );
    let missing = env.path().join("missing.jsonl");
    let mut cmd = env.command();
    cmd.args([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--replay",
        missing.to_str().unwrap(),
    ])
    .args(["--", "true"]);
    let out = run_group_to_end(cmd, Duration::from_secs(30));
    assert!(
        text(&out.stderr).contains(&format!("cassette {}", missing.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_openai_and_anthropic_sdks_replay_what_they_recorded() {
    let python = support::python::venv_python();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/cassette_sdk_client.py"
    );
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let config = env.upstream_config(&upstream.base_url(), "");
    let cassette = env.path().join("sdk.jsonl");
    let path = cassette.to_str().unwrap();
    let session = |mode: &str, key: Option<&str>| {
        let mut cmd = env.command();
        cmd.args([
            "run",
            "--summary",
            "none",
            "--config",
            config.to_str().unwrap(),
            mode,
            path,
        ])
        .arg("--")
        .arg(&python)
        .arg(script);
        if let Some(key) = key {
            cmd.env("UPSTREAM_KEY", key);
        }
        let out = run_group_to_end(cmd, Duration::from_secs(90));
        assert!(out.status.success(), "{mode}: {}", text(&out.stderr));
        out
    };
    let recorded = session("--record", Some(UPSTREAM_KEY));
    assert_eq!(upstream.calls(), 4);
    drop(upstream);
    let replayed = session("--replay", None);
    let found: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert!(
        found["anthropic_stream_final"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("forty-two"),
        "{found}"
    );
    assert_eq!(text(&replayed.stdout), text(&recorded.stdout));
    let replays = env
        .requests()
        .into_iter()
        .filter(|r| r["provider"] == "cassette" && r["cost_usd"] == "0")
        .count();
    assert_eq!(replays, 4);
}

#[test]
fn a_stream_recorded_with_its_timing_replays_at_its_pace() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let config = env.upstream_config(&upstream.base_url(), "");
    let cassette = env.path().join("timed.jsonl");
    let path = cassette.to_str().unwrap();
    upstream.push([Behavior::Trickle(Duration::from_millis(150))]);
    let recording = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            path,
            "--record-timing",
        ],
        &[("UPSTREAM_KEY", UPSTREAM_KEY)],
    );
    let streamed = |session: &support::RunSession| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let body = support::chat_body("gpt-4o-mini", true, "slowly");
        let started = std::time::Instant::now();
        let reply = runtime.block_on(support::post_chat(
            &session.base_url,
            Some(&session.key),
            body,
        ));
        assert_eq!(reply.status, 200, "{}", reply.body);
        (reply.body, started.elapsed())
    };
    let (recorded, _) = streamed(&recording);
    assert!(recording.finish(0).status.success());
    let file = std::fs::read_to_string(&cassette).unwrap();
    let entry: serde_json::Value = serde_json::from_str(file.lines().nth(1).unwrap()).unwrap();
    let times: Vec<u64> = serde_json::from_value(entry["chunk_ms"].clone()).unwrap();
    let spread = Duration::from_millis(times.last().unwrap() - times[0]);
    assert!(
        times.len() > 2 && spread >= Duration::from_millis(300),
        "{times:?}"
    );

    drop(upstream);
    let replay = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--replay",
            path,
        ],
        &[],
    );
    let (replayed, took) = streamed(&replay);
    assert!(replay.finish(0).status.success());
    assert_eq!(replayed, recorded);
    assert!(
        took >= spread * 8 / 10,
        "replayed in {took:?}, recorded over {spread:?}"
    );
}

#[test]
fn a_redaction_pattern_that_does_not_compile_is_a_config_error_with_its_line() {
    let env = TestEnv::new();
    let config = env.upstream_config(
        "http://127.0.0.1:9/v1",
        "cassette:\n  redact:\n    - 'sk-[a-z]+'\n    - '(unclosed'\n",
    );
    let cassette = env.path().join("never.jsonl");
    let mut cmd = env.command();
    cmd.args(["run", "--config", config.to_str().unwrap(), "--record"])
        .arg(&cassette)
        .args(["--", "true"]);
    let out = run_group_to_end(cmd, Duration::from_secs(30));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("smartproxy.yaml:8: `cassette.redact`: pattern 2 (`(unclosed`)"),
        "{stderr}"
    );
    assert!(
        !cassette.exists(),
        "nothing recorded under a config that hides nothing"
    );
}

#[test]
fn a_stream_the_provider_cut_short_is_not_recorded() {
    let env = TestEnv::new();
    let upstream = MockUpstream::start();
    let config = env.upstream_config(&upstream.base_url(), "");
    let cassette = env.path().join("cut.jsonl");
    let path = cassette.to_str().unwrap();
    upstream.push([Behavior::CutStream { chunks: 2 }]);
    let session = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--record",
            path,
        ],
        &[("UPSTREAM_KEY", UPSTREAM_KEY)],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = support::chat_body("gpt-4o-mini", true, "cut");
    let reply = runtime.block_on(support::post_chat(
        &session.base_url,
        Some(&session.key),
        body,
    ));
    assert!(
        reply.body.contains("error"),
        "the client was told: {}",
        reply.body
    );
    let complete = ask(&session, "whole");
    assert!(session.finish(0).status.success());
    // Only the complete pair: replaying the cut one is a miss, never half a reply passed off
    // as whole.
    let file = std::fs::read_to_string(&cassette).unwrap();
    assert_eq!(file.lines().count(), 2, "{file}");
    drop(upstream);
    let replay = env.start_run(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--replay",
            path,
        ],
        &[],
    );
    assert_eq!(ask(&replay, "whole"), complete);
    let body = support::chat_body("gpt-4o-mini", true, "cut");
    let missed = runtime.block_on(support::post_chat(
        &replay.base_url,
        Some(&replay.key),
        body,
    ));
    assert_eq!(missed.status, 404, "{}", missed.body);
    assert_eq!(missed.json()["error"]["code"], "cassette_miss");
    assert!(replay.finish(0).status.success());
}
