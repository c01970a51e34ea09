//! The runaway-loop breaker against the real binary: a scripted agent that repeats the same
//! failing tool call is warned, then stopped with 429 `loop_detected` before anything goes
//! upstream (streamed or not), `smartproxy resume` lets it go on; alternating A,B is caught;
//! chat, Anthropic messages, Responses and Ollama chat inputs alike; 200 varied requests never trip it;
//! the refusals are on the ledger rows (hashes, no names) and in the run summary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::upstream::MockUpstream;
use support::{Reply, TestEnv, post_chat, text};

/// An OpenAI chat request whose newest turn is `tool(args)` answered by `result`; `history`
/// changes what comes before it (a stuck agent's prompt grows and rewords).
fn chat_turn(history: &str, tool: &str, args: &str, result: &str, stream: bool) -> String {
    json!({
        "model": "gpt-4o-mini",
        "stream": stream,
        "tools": [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "system", "content": format!("You are an agent. {history}")},
            {"role": "user", "content": "fix the build"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": tool, "arguments": args}}]},
            {"role": "tool", "tool_call_id": "c1", "content": result},
        ]
    })
    .to_string()
}

async fn post(base_url: &str, key: &str, path: &str, body: &Value) -> Reply {
    let resp = support::http_client()
        .post(format!("{base_url}{path}"))
        .bearer_auth(key)
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Reply {
        status,
        headers,
        body: resp.text().await.unwrap(),
    }
}

fn resume(env: &TestEnv, args: &[&str]) -> std::process::Output {
    support::run_to_end({
        let mut cmd = env.command();
        cmd.arg("resume").args(args);
        cmd
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_agent_is_warned_then_stopped_and_resume_lets_it_continue() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    // The default config: the breaker is on with repeat 6.
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let short = session.env["SMARTPROXY_SESSION_ID"][..8].to_owned();
    let mut replies = Vec::new();
    for i in 0..10 {
        let body = chat_turn(
            &format!("Attempt {i}."),
            "read_file",
            r#"{"path":"src/missing.rs"}"#,
            "Error: no such file or directory",
            i % 2 == 1,
        );
        replies.push(post_chat(&session.base_url, Some(&session.key), body).await);
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    assert!(
        replies[..4]
            .iter()
            .all(|r| !r.headers.contains_key("x-smartproxy-loop-warning"))
    );
    let warning = replies[4].headers["x-smartproxy-loop-warning"]
        .to_str()
        .unwrap();
    assert!(
        warning.contains("repeated 5 of the last 5 requests") && warning.contains("at 6"),
        "{warning}"
    );
    let refusal = replies[5].json();
    assert_eq!(
        refusal["error"]["code"], "loop_detected",
        "{}",
        replies[5].body
    );
    assert_eq!(replies[5].headers["x-should-retry"], "false");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tool call `read_file` #")
            && message.contains("repeated 6 of the last 6 requests"),
        "{message}"
    );
    assert!(
        message.contains(&format!("smartproxy resume {short}")),
        "{message}"
    );
    // A streamed request of the stopped session is refused too, as an error, not a stream.
    assert_eq!(replies[7].json()["error"]["code"], "loop_detected");
    assert_eq!(
        upstream.calls(),
        5,
        "refused requests never reach the provider"
    );

    // An unknown session is a clear error; the stopped one is listed and resumed.
    let unknown = resume(&env, &["zzzzzzzz"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr)
            .contains("no running session zzzzzzzz is stopped by the loop breaker"),
        "{}",
        text(&unknown.stderr)
    );
    let list = resume(&env, &["--list"]);
    assert!(
        text(&list.stdout).contains(&short),
        "{}",
        text(&list.stdout)
    );
    let resumed = resume(&env, &[&short]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains("resumed"),
        "{}",
        text(&resumed.stderr)
    );
    let again = resume(&env, &[&short]);
    assert!(
        !again.status.success(),
        "a second resume finds nothing to resume"
    );

    // Afresh: the same step goes through again, until it repeats six times more.
    let mut after = Vec::new();
    for i in 0..6 {
        let body = chat_turn(
            &format!("Retry {i}."),
            "read_file",
            r#"{"path":"src/missing.rs"}"#,
            "Error: no such file or directory",
            false,
        );
        after.push(
            post_chat(&session.base_url, Some(&session.key), body)
                .await
                .status,
        );
    }
    assert_eq!(after, [200, 200, 200, 200, 200, 429]);

    let out = session.finish(0);
    let left = resume(&env, &["--list", "--json"]);
    assert_eq!(
        text(&left.stdout).trim(),
        "[]",
        "the ended run took its marker along"
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.matches("loop breaker: session").count(),
        2,
        "one warning line an episode, not one a request: {stderr}"
    );
    assert!(
        stderr.contains("loop breaker: 6 requests refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("budget: "),
        "not a budget's refusal: {stderr}"
    );
    let rows = env.requests();
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r["outcome"] == "loop_detected")
        .collect();
    assert_eq!(refused.len(), 6);
    for row in &refused {
        assert_eq!(row["status"], "429");
        assert_eq!(row["error_code"], "loop_detected");
        let action = &row["budget_action"];
        assert!(action.starts_with("loop refused: tool call #"), "{action}");
        assert!(
            !action.contains("read_file"),
            "no names on the row: {action}"
        );
    }

    // The web dashboard lists them by outcome and shows the reason on the request's page.
    let ui = support::ui::Ui::start(&env, &[]);
    let (status, _, list) = support::ui::get(
        &format!("{}/requests?outcome=loop_detected", ui.url),
        "content-type",
    )
    .await;
    assert_eq!(status, 200);
    let id = &refused[0]["id"];
    assert!(list.contains(id.as_str()), "{list}");
    assert!(
        !list.contains(rows[0]["id"].as_str()),
        "only the refused ones"
    );
    let (status, _, page) =
        support::ui::get(&format!("{}/request/{id}", ui.url), "content-type").await;
    assert_eq!(status, 200);
    assert!(page.contains("loop_detected"), "{page}");
    assert!(page.contains("loop refused: tool call #"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alternating_tool_calls_are_stopped_in_anthropic_messages() {
    // Translated for an OpenAI-compatible target, and passed as they came to Anthropic's own
    // API (never translated): the loop breaker reads the Messages request itself either way.
    for native in [false, true] {
        let upstream = MockUpstream::start();
        let env = TestEnv::new();
        let (config, model) = if native {
            let yaml = format!(
                "providers:\n  - name: claude\n    kind: anthropic\n    base_url: http://{}\n    api_key_env: UPSTREAM_KEY\n    models: [\"claude-*\"]\n",
                upstream.addr
            );
            (env.write("sp.yaml", &yaml), "claude-sonnet-4-5")
        } else {
            (env.upstream_config(&upstream.base_url(), ""), "gpt-4o-mini")
        };
        let session = env.start_run(
            &["run", "--config", config.to_str().unwrap()],
            &[("UPSTREAM_KEY", "k")],
        );
        let base = session.base_url.clone();
        let turn = |i: usize| {
            let (tool, result) = if i.is_multiple_of(2) {
                ("run_tests", "1 failed")
            } else {
                ("edit_file", "ok")
            };
            json!({
                "model": model,
                "max_tokens": 100,
                "system": format!("step {i}"),
                "tools": [
                    {"name": "run_tests", "input_schema": {"type": "object"}},
                    {"name": "edit_file", "input_schema": {"type": "object"}},
                ],
                "messages": [
                    {"role": "user", "content": "make the tests pass"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": tool, "input": {"n": 1}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": result, "is_error": i.is_multiple_of(2)}]},
                ]
            })
        };
        let mut statuses = Vec::new();
        let mut last = None;
        for i in 0..7 {
            let reply = post(&base, &session.key, "/messages", &turn(i)).await;
            statuses.push(reply.status);
            last = Some(reply);
        }
        assert_eq!(
            statuses,
            [200, 200, 200, 200, 200, 429, 429],
            "native: {native}"
        );
        let body = last.unwrap().json();
        assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("alternating over the last 6 requests")
                && message.contains("`run_tests`")
                && message.contains("`edit_file`"),
            "{message}"
        );
        let sent = upstream.received();
        assert_eq!(sent.len(), 5, "refused requests are never sent");
        let path = if native {
            "/v1/messages"
        } else {
            "/v1/chat/completions"
        };
        assert!(sent.iter().all(|r| r.path == path), "native: {native}");
        drop(session);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_responses_api_function_call_is_stopped() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "loop_breaker:\n  repeat: 3\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = |i: usize| {
        json!({
            "model": "gpt-4o-mini",
            "instructions": format!("turn {i}"),
            "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
            "input": [
                {"role": "user", "content": "list the files"},
                {"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{\"cmd\":\"ls /nope\"}"},
                {"type": "function_call_output", "call_id": "c", "output": "ls: cannot access '/nope'"},
            ]
        })
    };
    let mut replies = Vec::new();
    for i in 0..3 {
        replies.push(post(&session.base_url, &session.key, "/responses", &body(i)).await);
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429], "{}", replies[2].body);
    assert!(replies[1].headers.contains_key("x-smartproxy-loop-warning"));
    let message = replies[2].json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("tool call `shell`"), "{message}");
    drop(session);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_varied_requests_never_trip_it() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let tools = ["read_file", "grep", "run_tests", "edit_file", "check_build"];
    for i in 0..200usize {
        // A realistic mix: the same build polled while its output changes, files read one
        // after another, and the same tool called with other arguments.
        // Requests 100..110 poll the build ten times in a row, its output changing.
        let tool = if (100..110).contains(&i) {
            "check_build"
        } else {
            tools[i % tools.len()]
        };
        let (args, result) = match tool {
            "check_build" => ("{}".to_owned(), format!("building... {i}% done")),
            "read_file" => (
                format!("{{\"path\":\"src/f{i}.rs\"}}"),
                "fn main() {}".to_owned(),
            ),
            _ => (format!("{{\"n\":{i}}}"), format!("result {i}")),
        };
        let body = chat_turn("", tool, &args, &result, i % 7 == 0);
        let reply = post_chat(&session.base_url, Some(&session.key), body).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert!(
            !reply.headers.contains_key("x-smartproxy-loop-warning"),
            "request {i} warned"
        );
    }
    let out = session.finish(0);
    assert!(
        !text(&out.stderr).contains("loop breaker"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_ceiling_stops_a_session_spending_too_fast() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    // Each mock reply uses 28 tokens: the third request finds 56 used in the last minute.
    let config = env.upstream_config(
        &upstream.base_url(),
        "loop_breaker:\n  tokens_per_minute: 50\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let mut statuses = Vec::new();
    for i in 0..3 {
        let body = support::chat_body("gpt-4o-mini", false, &format!("question {i}"));
        let reply = post_chat(&session.base_url, Some(&session.key), body).await;
        if reply.status == 429 {
            let message = reply.json()["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                message.contains("56 tokens in the last minute")
                    && message.contains("tokens_per_minute (50)"),
                "{message}"
            );
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    drop(session);
}

#[test]
fn bad_loop_breaker_settings_name_file_line_and_key() {
    let env = TestEnv::new();
    let bad = env.write(
        "bad.yaml",
        "providers:\n  - name: local\n    kind: mock\n    models: [mock]\nloop_breaker:\n  repeat: 1\n  tokens_per_minute: 0\n",
    );
    let out = support::run_to_end({
        let mut cmd = env.command();
        cmd.args(["config", "validate", "--config", bad.to_str().unwrap()]);
        cmd
    });
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "bad.yaml:6: `loop_breaker.repeat`: 1 is not a number of repeats from 2 to 100"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:7: `loop_breaker.tokens_per_minute`: must be more than 0"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_stops_one_sessions_loop_and_resume_reaches_it() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "client_keys:\n  - {name: alice, key_env: KEY_A}\n  - {name: bob, key_env: KEY_B}\n",
    );
    let envs = [
        ("UPSTREAM_KEY", "k"),
        ("KEY_A", "key-a"),
        ("KEY_B", "key-b"),
    ];
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &envs);
    let base = format!("{}/v1", daemon.listen);
    let looping = |i: usize| {
        chat_turn(
            &format!("try {i}"),
            "fetch",
            r#"{"url":"x"}"#,
            "Error: 404",
            false,
        )
    };
    let mut alice = Vec::new();
    for i in 0..6 {
        alice.push(post_chat(&base, Some("key-a"), looping(i)).await);
    }
    assert_eq!(alice[5].status, 429, "{}", alice[5].body);
    // Bob's session is another: the same steps are his first.
    for i in 0..3 {
        assert_eq!(
            post_chat(&base, Some("key-b"), looping(i)).await.status,
            200
        );
    }
    let message = alice[5].json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = message
        .split("smartproxy resume ")
        .nth(1)
        .and_then(|rest| rest.get(..8))
        .unwrap()
        .to_owned();
    let run_dir = env.path().join("run");
    let resume_daemon = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", &run_dir)
            .arg("resume")
            .args(args);
        support::run_to_end(cmd)
    };
    let out = resume_daemon(&[&short]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        post_chat(&base, Some("key-a"), looping(9)).await.status,
        200
    );
    // Stopped again, then the daemon ends: the session ended with it.
    for i in 10..16 {
        post_chat(&base, Some("key-a"), looping(i)).await;
    }
    assert_eq!(
        post_chat(&base, Some("key-a"), looping(16)).await.status,
        429
    );
    daemon.stop();
    let out = resume_daemon(&[&short]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has ended"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_loop_refusal_is_recorded_on_a_postgresql_ledger_too() {
    // The test database's helpers block on a runtime of their own: none around them here.
    let Some(db) = support::postgres::TestDb::create("loops") else {
        return;
    };
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "loop_breaker:\n  repeat: 3\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_DB", &db.url)],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses: Vec<u16> = runtime.block_on(async {
        let mut statuses = Vec::new();
        for i in 0..4 {
            let body = chat_turn(&format!("{i}"), "grep", r#"{"q":"x"}"#, "no matches", false);
            statuses.push(
                post_chat(&session.base_url, Some(&session.key), body)
                    .await
                    .status,
            );
        }
        statuses
    });
    assert_eq!(statuses, [200, 200, 429, 429]);
    let out = session.finish(0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("loop breaker: 2 requests refused"),
        "{stderr}"
    );
    assert_eq!(
        db.count(
            "SELECT count(*) FROM requests r JOIN request_shapes k ON k.id = r.shape \
             WHERE k.outcome = 'loop_detected' AND k.error_code = 'loop_detected' \
             AND r.budget_action LIKE 'loop refused: tool call #%' AND r.status = 429"
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_question_asked_many_times_counts_only_when_asked_to() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    // The default: a script or an eval asking one prompt ten times is no agent loop.
    let config = env.upstream_config(&upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = support::chat_body("gpt-4o-mini", false, "What is 2 + 2?");
    for i in 0..10 {
        let reply = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
        assert_eq!(reply.status, 200, "request {i}: {}", reply.body);
        assert!(!reply.headers.contains_key("x-smartproxy-loop-warning"));
    }
    drop(session);
    // `user_messages: true` counts them.
    let config = env.upstream_config(
        &upstream.base_url(),
        "loop_breaker:\n  user_messages: true\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..6 {
        let reply = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
        statuses.push(reply.status);
        last = Some(reply);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let message = last.unwrap().json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("user message #"), "{message}");
    assert!(!message.contains("2 + 2"), "no prompt text: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ollama_chat_loop_is_stopped_too() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "loop_breaker:\n  repeat: 3\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let root = session.base_url.trim_end_matches("/v1").to_owned();
    let body = |i: usize| {
        json!({
            "model": "gpt-4o-mini",
            "stream": false,
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "user", "content": format!("weather please ({i})")},
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Nowhere"}}}]},
                {"role": "tool", "content": "error: unknown city"},
            ]
        })
    };
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..3 {
        let reply = post(&root, &session.key, "/api/chat", &body(i)).await;
        statuses.push(reply.status);
        last = Some(reply);
    }
    assert_eq!(statuses, [200, 200, 429], "{}", last.as_ref().unwrap().body);
    let error = last.unwrap().json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("tool call `weather`"),
        "Ollama's error shape: {error}"
    );
    drop(session);
}
