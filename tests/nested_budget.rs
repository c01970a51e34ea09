//! Budgets for process trees: a `run` inside a `run` draws from the outer session's budget,
//! so nested runs can never spend beyond what the outer has left, whatever their own caps;
//! the outer's summary lists them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use support::{RunSession, TestEnv, run_to_end, text};

/// Sends `N` chat requests for gpt-4o and prints `i status [error code]` for each.
const CLIENT: &str = r#"import json, os, sys, urllib.request as u, urllib.error
for i in range(int(sys.argv[1])):
    body = json.dumps({'model': 'gpt-4o', 'max_tokens': 50,
        'messages': [{'role': 'user', 'content': 'hi %d' % i}]}).encode()
    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})
    try:
        resp = u.urlopen(r); resp.read(); print(i, resp.status)
    except urllib.error.HTTPError as e:
        print(i, e.code, json.load(e)['error']['code'])
"#;

/// `smartproxy run --budget BUDGET --tag TAG -- python3 client.py N` started inside `outer`
/// (with only what the outer gave its child).
fn inner_run(env: &TestEnv, outer: &RunSession, budget: &str, tag: &str, n: &str) -> Output {
    let client = env.write("client.py", CLIENT);
    let mut cmd = env.command();
    for (k, v) in &outer.env {
        if k.starts_with("OPENAI_") || k.starts_with("SMARTPROXY_") {
            cmd.env(k, v);
        }
    }
    cmd.args(["run", "--budget", budget, "--tag", tag, "--"])
        .args(["python3", client.to_str().unwrap(), n]);
    run_to_end(cmd)
}

/// The client's lines: `0 200`, `5 429 budget_exceeded`.
fn statuses(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect()
}

// One request here costs $0.000275 (simulated at gpt-4o's list price) and reserves about
// $0.0005 before it is sent (its prompt estimate and 50 output tokens).

#[test]
fn nested_runs_never_spend_past_the_outer_budget_whatever_their_own_caps() {
    let env = TestEnv::new();
    let outer = env.start_run(
        &["run", "--mock", "--budget", "0.002", "--tag", "outer"],
        &[],
    );
    let outer_id = outer.env["SMARTPROXY_SESSION_ID"].clone();

    // The first nested run is stopped by its own, smaller cap.
    let first = inner_run(&env, &outer, "0.0015", "inner1", "6");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first_statuses = statuses(&first);
    assert_eq!(
        first_statuses,
        ["200", "200", "200", "200", "200", "429 budget_exceeded"],
        "{}",
        text(&first.stderr)
    );

    // The second's own cap ($0.0015) would let five through again; the outer has about
    // $0.0006 left, so it is refused past that, as a budget refusal (not a provider failing:
    // no retries, no open circuit, no 503).
    let second = inner_run(&env, &outer, "0.0015", "inner2", "6");
    assert!(second.status.success(), "{}", text(&second.stderr));
    let second_statuses = statuses(&second);
    let ok = second_statuses.iter().filter(|s| *s == "200").count();
    assert!((1..=2).contains(&ok), "{second_statuses:?}");
    assert!(
        second_statuses[ok..]
            .iter()
            .all(|s| s == "429 budget_exceeded"),
        "{second_statuses:?}"
    );
    let stderr = text(&second.stderr);
    assert!(!stderr.contains("circuit opened"), "{stderr}");

    let out = outer.finish(0);
    let summary = text(&out.stderr);
    assert!(out.status.success(), "{summary}");

    // Together they spent no more than the outer budget.
    let conn = env.ledger();
    let spent: f64 = conn
        .query_row("SELECT TOTAL(cost_usd) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(spent <= 0.002 + 1e-12, "spent {spent}");
    assert!(spent > 0.0015, "spent {spent}");
    // Each refused request was refused once: the outer's refusals were not retried.
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 12);

    // The outer's summary lists its children: short id, program, tag, requests, cost, status.
    let children: Vec<(String, String)> = conn
        .prepare("SELECT id, tag FROM sessions WHERE parent_id = ?1 ORDER BY started_ms")
        .unwrap()
        .query_map([&outer_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(children.len(), 2);
    assert!(
        summary.contains("nested runs (2, in the figures above):"),
        "{summary}"
    );
    let first_line = format!(
        "  {} python3 [inner1] — 6 requests, $0.001373, exit 0",
        &children[0].0[..8]
    );
    assert!(summary.contains(&first_line), "{first_line}\n{summary}");
    assert!(
        summary.contains(&format!(
            "  {} python3 [inner2] — 6 requests",
            &children[1].0[..8]
        )),
        "{summary}"
    );
}

#[test]
fn the_outer_json_summary_has_a_children_array() {
    let env = TestEnv::new();
    let outer = env.start_run(
        &["run", "--mock", "--summary", "json", "--tag", "outer"],
        &[],
    );
    let inner = inner_run(&env, &outer, "1", "inner", "2");
    assert!(inner.status.success(), "{}", text(&inner.stderr));
    let out = outer.finish(0);
    let stderr = text(&out.stderr);
    let json: serde_json::Value = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("{stderr}"));
    let children = json["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{json}");
    assert_eq!(children[0]["tag"], "inner");
    assert_eq!(children[0]["program"], "python3");
    assert_eq!(children[0]["requests"], 2);
    assert_eq!(children[0]["exit_code"], 0);
    assert_eq!(
        json["requests"], 2,
        "the outer's figures include its child's"
    );
}

/// On a PostgreSQL ledger too, the outer proxy knows its child from the ledger and leaves the
/// child's requests to the child: each request is one row, and the outer's figures count it once.
#[test]
fn a_nested_run_on_postgres_is_recorded_once() {
    let Some(db) = support::postgres::TestDb::create("nested") else {
        return;
    };
    let env = TestEnv::new();
    let outer = env.start_run(
        &["run", "--mock", "--summary", "json", "--tag", "outer"],
        &[("SMARTPROXY_DB", &db.url)],
    );
    let inner = inner_run(&env, &outer, "1", "inner", "3");
    assert!(inner.status.success(), "{}", text(&inner.stderr));
    assert_eq!(statuses(&inner), ["200", "200", "200"]);
    let out = outer.finish(0);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not this session's child"), "{stderr}");
    let json: serde_json::Value = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(json["requests"], 3, "{json}");
    assert_eq!(json["children"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(db.count("SELECT count(*) FROM requests"), 3);
}
