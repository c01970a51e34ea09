//! `smartproxy quote` and `run --quote` against the real binary on a SQLite ledger (both
//! backends answer alike: `ledger_backends.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestEnv, run_to_end, text};

const CLIENT: &str = r#"import json, os, sys, urllib.request as u
for i in range(int(sys.argv[1])):
    body = json.dumps({'model': 'gpt-4o', 'max_tokens': 50,
        'messages': [{'role': 'user', 'content': 'hi %d' % i}]}).encode()
    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})
    u.urlopen(r).read()
"#;

fn run(env: &TestEnv, args: &[&str], n: &str) -> std::process::Output {
    let client = env.write("client.py", CLIENT);
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--summary", "none"])
        .args(args)
        .args(["--", "python3", client.to_str().unwrap(), n]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

fn quote(env: &TestEnv, args: &[&str]) -> String {
    let mut cmd = env.command();
    cmd.arg("quote").args(args);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn quotes_come_from_the_programs_finished_runs() {
    let env = TestEnv::new();
    // Nothing recorded yet (not even a ledger file): one line, exit 0.
    assert_eq!(
        quote(&env, &["--", "python3", "x.py"]).trim(),
        "quote for `python3`: no history (no finished run to quote from)"
    );
    let first = run(&env, &["--quote", "--tag", "eval"], "1");
    assert!(
        text(&first.stderr).contains(
            "smartproxy: quote for `python3`, tag eval: no history (no finished run to quote from)"
        ),
        "{}",
        text(&first.stderr)
    );
    run(&env, &["--tag", "eval"], "2");
    run(&env, &["--tag", "other"], "4");

    // p50 and p90 (nearest rank) of three runs costing $0.000275, $0.00055 and $0.0011.
    let all: serde_json::Value =
        serde_json::from_str(&quote(&env, &["--json", "--", "/usr/bin/python3"])).unwrap();
    assert_eq!(all["program"], "python3");
    assert_eq!(all["sessions"], 3, "{all}");
    assert_eq!(all["cost_usd"]["p50"], 0.00055, "{all}");
    assert_eq!(all["cost_usd"]["p90"], 0.0011, "{all}");
    assert!(all["duration_ms"]["p50"].as_i64().unwrap() > 0, "{all}");

    let tagged = quote(&env, &["--tag", "eval", "--", "python3"]);
    assert!(
        tagged.starts_with("quote for `python3`, tag eval: $0.000275 (p50) to $0.000550 (p90), ")
            && tagged.trim_end().ends_with("over 2 finished sessions"),
        "{tagged}"
    );
    let last: serde_json::Value =
        serde_json::from_str(&quote(&env, &["--json", "--last", "1", "--tag", "other"])).unwrap();
    assert_eq!(last["sessions"], 1);
    assert_eq!(last["cost_usd"]["p90"], 0.0011);

    // `run --quote` prints the line before the command starts.
    let quoted = run(&env, &["--quote", "--tag", "other"], "1");
    assert!(
        text(&quoted.stderr).starts_with(
            "smartproxy: quote for `python3`, tag other: $0.001100 (p50) to $0.001100 (p90), "
        ),
        "{}",
        text(&quoted.stderr)
    );
}

#[test]
fn quote_needs_something_to_quote() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.arg("quote");
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("a command after `--`, or --tag or --project"),
        "{}",
        text(&out.stderr)
    );
}
