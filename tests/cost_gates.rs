//! `run`'s cost gates against the real binary: `--max-cost` (exit 3) and `--baseline` with
//! `--max-ratio` (exit 4), what they print, a failed command's own status winning, and a
//! missing or corrupt baseline named before the command runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;

use support::{TestEnv, run_to_end, text};

/// A client that sends `N` chat requests for gpt-4o (`stream` streams them) to the session's
/// proxy, prints each status and error code, and exits with `EXIT` (default 0).
const CLIENT: &str = r#"import json, os, sys, urllib.request as u, urllib.error
n = int(sys.argv[1]); stream = 'stream' in sys.argv[2:]
for i in range(n):
    body = json.dumps({'model': 'gpt-4o', 'max_tokens': 50, 'stream': stream,
        'messages': [{'role': 'user', 'content': 'hi %d' % i}]}).encode()
    r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,
        headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})
    try:
        resp = u.urlopen(r); resp.read(); print(i, resp.status)
    except urllib.error.HTTPError as e:
        print(i, e.code, json.load(e)['error']['code'])
sys.exit(int(os.environ.get('EXIT', '0')))
"#;

/// `smartproxy run --mock ARGS -- python3 client.py CLIENT_ARGS`.
fn run(env: &TestEnv, args: &[&str], client_args: &[&str], envs: &[(&str, &str)]) -> Output {
    let client = env.write("client.py", CLIENT);
    let mut cmd = env.command();
    cmd.args(["run", "--mock"])
        .args(args)
        .args(["--", "python3", client.to_str().unwrap()])
        .args(client_args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run_to_end(cmd)
}

// One request of the mock's gpt-4o here (10 prompt + 25 completion tokens) is $0.000275 at
// list price, simulated: the gates count it, as the session budget does.

#[test]
fn max_cost_fails_a_session_that_spent_more_and_passes_one_within() {
    let env = TestEnv::new();
    let over = run(&env, &["--max-cost", "0.0005"], &["2"], &[]);
    let stderr = text(&over.stderr);
    assert_eq!(over.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("smartproxy: session cost $0.000550 over --max-cost $0.000500"),
        "{stderr}"
    );
    let within = run(&env, &["--max-cost", "0.0006"], &["2"], &[]);
    let stderr = text(&within.stderr);
    assert_eq!(within.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("--max-cost"), "{stderr}");
}

#[test]
fn a_failed_command_keeps_its_own_status_and_the_gate_still_says_why() {
    let env = TestEnv::new();
    let out = run(&env, &["--max-cost", "0"], &["1"], &[("EXIT", "7")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("session cost $0.000275 over --max-cost $0"),
        "{stderr}"
    );
}

#[test]
fn a_baseline_fails_growth_past_the_ratio_naming_models_and_kinds() {
    let env = TestEnv::new();
    let base = env.path().join("base.json");
    let saved = run(
        &env,
        &[
            "--summary",
            "none",
            "--save-baseline",
            base.to_str().unwrap(),
        ],
        &["2"],
        &[],
    );
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(json["requests"], 2);
    assert_eq!(json["by_kind"][0]["kind"], "chat.completions", "{json}");

    // The same work again: within any ratio.
    let same = run(&env, &["--baseline", base.to_str().unwrap()], &["2"], &[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));

    // Three requests: x1.5 exactly passes the default --max-ratio 1.5 ...
    let half_again = run(&env, &["--baseline", base.to_str().unwrap()], &["3"], &[]);
    assert_eq!(
        half_again.status.code(),
        Some(0),
        "{}",
        text(&half_again.stderr)
    );
    // ... and fails a tighter one, naming what grew.
    let tighter = run(
        &env,
        &["--baseline", base.to_str().unwrap(), "--max-ratio", "1.2"],
        &["3"],
        &[],
    );
    let stderr = text(&tighter.stderr);
    assert_eq!(tighter.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("smartproxy: session over --max-ratio 1.2 of baseline")
            && stderr.contains("cost $0.000825 vs $0.000550 (x1.50)")
            && stderr.contains("tokens 105 vs 70 (x1.50)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  model gpt-4o: cost $0.000825"),
        "{stderr}"
    );
    assert!(stderr.contains("  kind chat.completions: cost"), "{stderr}");

    // Streamed requests are a kind the baseline never had.
    let streamed = run(
        &env,
        &["--baseline", base.to_str().unwrap()],
        &["2", "stream"],
        &[],
    );
    let stderr = text(&streamed.stderr);
    assert_eq!(streamed.status.code(), Some(0), "{stderr}");
    let more_streamed = run(
        &env,
        &["--baseline", base.to_str().unwrap()],
        &["4", "stream"],
        &[],
    );
    let stderr = text(&more_streamed.stderr);
    assert_eq!(more_streamed.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("  kind chat.completions streamed: cost $0.001100 vs $0 (new)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("  kind chat.completions:"),
        "the unstreamed kind did not grow: {stderr}"
    );
}

#[test]
fn both_gates_over_exit_with_max_costs_status() {
    let env = TestEnv::new();
    let base = env.path().join("base.json");
    run(
        &env,
        &[
            "--summary",
            "none",
            "--save-baseline",
            base.to_str().unwrap(),
        ],
        &["1"],
        &[],
    );
    let out = run(
        &env,
        &["--baseline", base.to_str().unwrap(), "--max-cost", "0.0001"],
        &["3"],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("over --max-cost") && stderr.contains("over --max-ratio 1.5"));
}

#[test]
fn a_missing_or_corrupt_baseline_is_named_before_the_command_runs() {
    let env = TestEnv::new();
    let marker = env.path().join("ran");
    let touch = |baseline: &str| {
        let mut cmd = env.command();
        cmd.args(["run", "--mock", "--baseline", baseline, "--", "touch"])
            .arg(&marker);
        run_to_end(cmd)
    };
    let missing = touch("nope.json");
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--baseline nope.json: cannot read the file"),
        "{stderr}"
    );
    env.write("bad.json", "{\"requests\": ");
    let corrupt = touch("bad.json");
    let stderr = text(&corrupt.stderr);
    assert_eq!(corrupt.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--baseline bad.json: not a run summary"),
        "{stderr}"
    );
    env.write("other.json", "{\"hello\": 1}");
    let other = touch("other.json");
    assert!(
        text(&other.stderr).contains("--baseline other.json: not a run summary"),
        "{}",
        text(&other.stderr)
    );
    assert!(!marker.exists(), "the command must not run");
}

#[test]
fn gate_flags_are_checked() {
    let env = TestEnv::new();
    for (args, want) in [
        (vec!["--max-cost=-1"], "--max-cost must be an amount in USD"),
        (vec!["--max-ratio", "2"], "--baseline"),
    ] {
        let mut cmd = env.command();
        cmd.args(["run", "--mock"]).args(&args).args(["--", "true"]);
        let out = run_to_end(cmd);
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
