//! The built-in mock provider as users configure it: scripted replies and errors from a file,
//! simulated latency, and zero-config chaining of a `run` inside a `run`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{TestEnv, chat_body, post_chat, run_to_end, text};

#[tokio::test(flavor = "multi_thread")]
async fn scripted_replies_and_errors_are_served_in_turn() {
    let env = TestEnv::new();
    env.write(
        "replies.yaml",
        "- First scripted reply.\n- {status: 429, message: slow down}\n- {content: Third one here.}\n",
    );
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: offline\n    kind: mock\nmock:\n  script: replies.yaml\n  latency_ms: 200\nresilience:\n  max_attempts: 1\n",
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let started = Instant::now();
    let first = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "a"),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "simulated latency"
    );
    assert_eq!(
        first.json()["choices"][0]["message"]["content"],
        "First scripted reply."
    );
    assert!(first.json()["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let second = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "b"),
    )
    .await;
    assert_eq!(second.status, 429);
    assert_eq!(second.json()["error"]["message"], "slow down");
    let third = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "c"),
    )
    .await;
    let content: String = third.streamed_content();
    assert_eq!(content, "Third one here.");
    let fourth = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "d"),
    )
    .await;
    assert_eq!(
        fourth.json()["choices"][0]["message"]["content"],
        "First scripted reply.",
        "the script cycles"
    );
    let out = session.finish(0);
    assert!(
        text(&out.stderr).contains("4 requests (3 ok, 1 failed)"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_tokens_cuts_the_reply_with_finish_reason_length() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock"], &[]);
    let capped = |stream: bool| {
        let mut body: serde_json::Value =
            serde_json::from_str(&chat_body("gpt-4o-mini", stream, "hi")).unwrap();
        body["max_tokens"] = 5.into();
        body.to_string()
    };
    let whole = post_chat(&session.base_url, Some(&session.key), capped(false)).await;
    let reply = whole.json();
    assert_eq!(reply["choices"][0]["finish_reason"], "length", "{reply}");
    let completion = reply["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=5).contains(&completion), "{reply}");
    let cut = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(cut.len() <= 20 && cut.starts_with("Hello"), "{cut}");

    let streamed = post_chat(&session.base_url, Some(&session.key), capped(true)).await;
    assert_eq!(streamed.streamed_content(), cut);
    assert!(
        streamed
            .events()
            .iter()
            .any(|e| e.contains(r#""finish_reason":"length""#)),
        "{:?}",
        streamed.events()
    );

    let uncapped = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(uncapped.json()["choices"][0]["finish_reason"], "stop");
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .take(2)
            .all(|row| row["completion_tokens"].parse::<u64>().unwrap() <= 5),
        "{rows:?}"
    );
}

#[test]
fn a_bad_script_is_a_config_error_naming_the_script() {
    let env = TestEnv::new();
    env.write("replies.yaml", "just: a map\n");
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\nmock:\n  script: replies.yaml\n",
    );
    let mut cmd = env.command();
    cmd.args(["config", "validate", "--config", config.to_str().unwrap()]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("sp.yaml:5: `mock.script`:") && stderr.contains("replies.yaml"),
        "{stderr}"
    );
}

#[test]
fn a_run_inside_a_run_chains_through_the_outer_proxy() {
    let env = TestEnv::new();
    let client = env.write(
        "client.py",
        "import json, os, urllib.request as u\n\
         body = json.dumps({'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': 'hi'}]}).encode()\n\
         r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,\n\
             headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY']})\n\
         print(json.load(u.urlopen(r))['choices'][0]['message']['content'])\n",
    );
    let outer = env.start_run(&["run", "--mock", "--tag", "outer"], &[]);
    // The inner run sees only what the outer gave its child: the outer session's proxy
    // (SMARTPROXY_URL) and its session key, which it sends everything through.
    let mut inner = env.command();
    for (k, v) in &outer.env {
        if k.starts_with("OPENAI_") || k.starts_with("SMARTPROXY_") {
            inner.env(k, v);
        }
    }
    inner.args([
        "run",
        "--tag",
        "inner",
        "--",
        "python3",
        client.to_str().unwrap(),
    ]);
    let out = run_to_end(inner);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("smartproxy mock provider"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("1 request (1 ok, 0 failed)"),
        "{}",
        text(&out.stderr)
    );
    outer.finish(0);
    let conn = env.ledger();
    let providers: Vec<(String, String)> = conn
        .prepare("SELECT s.tag, r.provider FROM requests r JOIN sessions s ON s.id = r.session_id ORDER BY s.tag")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Recorded once, by the inner session (its provider: the outer session's proxy); the outer
    // forwarded it to its mock without a row.
    assert_eq!(providers, vec![("inner".to_owned(), "outer".to_owned())]);
}
