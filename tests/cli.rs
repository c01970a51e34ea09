//! The command-line contract: config validation messages, stats and sessions output, generated
//! completions, and the example config.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestEnv, run_to_end, text};

fn smartproxy(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    cmd.args(args);
    run_to_end(cmd)
}

#[test]
fn config_validate_names_file_line_and_key() {
    let env = TestEnv::new();
    let good = env.write("good.yaml", "providers:\n  - name: a\n    kind: mock\n");
    let out = smartproxy(
        &env,
        &["config", "validate", "--config", good.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );

    let bad = env.write(
        "bad.yaml",
        "providers:\n  - name: a\n    kind: openai\n    base_url: https://example.com/v1\n    modles: [x]\n",
    );
    let out = smartproxy(
        &env,
        &["config", "validate", "--config", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:5: `providers[0]`: unknown field `modles`"),
        "{stderr}"
    );

    let bad = env.write("bad2.yaml", "budget:\n  session_usd: -3\nlisten: here\n");
    let out = smartproxy(
        &env,
        &["config", "validate", "--config", bad.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad2.yaml:3: `listen`: "), "{stderr}");
    assert!(
        stderr.contains("bad2.yaml:2: `budget.session_usd`: "),
        "{stderr}"
    );

    let out = smartproxy(
        &env,
        &[
            "config",
            "validate",
            "--json",
            "--config",
            bad.to_str().unwrap(),
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);

    let missing = smartproxy(&env, &["config", "validate", "--config", "nope.yaml"]);
    assert!(
        text(&missing.stderr).contains("nope.yaml: cannot read config file"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn a_discovered_config_is_used_and_a_bad_one_stops_run() {
    let env = TestEnv::new();
    env.write(
        "smartproxy.yaml",
        "providers:\n  - name: x\n    kind: bogus\n",
    );
    let out = smartproxy(&env, &["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("smartproxy.yaml:3: `providers[0].kind`: unknown kind `bogus`"),
        "{stderr}"
    );
}

#[test]
fn the_example_config_is_valid() {
    let env = TestEnv::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/smartproxy.yaml.example");
    let out = smartproxy(&env, &["config", "validate", "--config", example]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn stats_and_sessions_read_the_ledger() {
    let env = TestEnv::new();
    let out = smartproxy(&env, &["stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing has been recorded"),
        "{}",
        text(&out.stderr)
    );

    let script = "for i in 1 2; do python3 -c \"import os,urllib.request as u; u.urlopen(u.Request(os.environ['OPENAI_BASE_URL']+'/chat/completions', data=b'{\\\"model\\\":\\\"gpt-4o\\\",\\\"messages\\\":[{\\\"role\\\":\\\"user\\\",\\\"content\\\":\\\"hi\\\"}]}', headers={'Authorization':'Bearer '+os.environ['OPENAI_API_KEY']}))\"; done";
    for tag in ["alpha", "beta"] {
        let out = smartproxy(
            &env,
            &["run", "--mock", "--tag", tag, "--", "sh", "-c", script],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    let out = smartproxy(&env, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["total"]["requests"], 4);
    assert_eq!(stats["rows"][0]["key"], "gpt-4o");
    // Mock-provider costs are simulated: shown apart, never counted as spent.
    assert_eq!(stats["total"]["cost_usd"].as_f64(), Some(0.0));
    assert!(stats["total"]["simulated_usd"].as_f64().unwrap() > 0.0);

    let out = smartproxy(&env, &["stats", "--by", "tag", "--since", "1d", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tags: Vec<&str> = stats["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), 2);
    assert!(tags.contains(&"alpha") && tags.contains(&"beta"));

    let out = smartproxy(&env, &["sessions", "--json"]);
    let sessions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let newest = &sessions[0];
    assert_eq!(newest["tag"], "beta");
    assert_eq!(newest["requests"], 2);
    assert_eq!(newest["program"], "sh");
    let id = newest["id"].as_str().unwrap();

    let out = smartproxy(&env, &["stats", "--last", "--json"]);
    let last: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(last["session_id"], id);
    assert_eq!(last["total"]["requests"], 2);

    let out = smartproxy(&env, &["stats", "--session", &id[..6]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("gpt-4o"),
        "{}",
        text(&out.stdout)
    );

    let out = smartproxy(&env, &["stats", "--session", "zzzz"]);
    assert!(text(&out.stderr).contains("no session matches `zzzz`"));
    let out = smartproxy(&env, &["stats", "--since", "yesterday-ish"]);
    assert!(
        text(&out.stderr).contains("expected a date"),
        "{}",
        text(&out.stderr)
    );

    let out = smartproxy(&env, &["sessions"]);
    let table = text(&out.stdout);
    assert!(table.contains("alpha") && table.contains("beta"), "{table}");
}

#[test]
fn completions_in_the_repo_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let update = std::env::var("SMARTPROXY_UPDATE_GENERATED").is_ok_and(|v| v == "1");
    for (shell, file) in [
        (clap_complete::Shell::Bash, "smartproxy.bash"),
        (clap_complete::Shell::Zsh, "_smartproxy"),
        (clap_complete::Shell::Fish, "smartproxy.fish"),
    ] {
        let generated = smartproxy::cli::render_completions(shell);
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "completions/{file} is stale; regenerate with `SMARTPROXY_UPDATE_GENERATED=1 cargo test --test cli completions`"
        );
    }
}

#[test]
fn routes_config_names_a_smolrouter_routes_file() {
    let env = TestEnv::new();
    env.write(
        "routes.yaml",
        "servers:\n  box: \"http://10.0.0.9:8000\"\naliases:\n  m:\n    instances: [\"box/llama3\"]\n",
    );
    let mut cmd = env.command();
    cmd.env("ROUTES_CONFIG", "routes.yaml")
        .args(["config", "show", "--json"]);
    let out = run_to_end(cmd);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["source"].as_str().map(|s| s.ends_with("routes.yaml")),
        Some(true),
        "{shown}"
    );
    assert_eq!(shown["providers"][0]["base_url"], "http://10.0.0.9:8000/v1");
}

#[test]
fn env_prints_variables_that_point_tools_at_the_daemon() {
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "listen: 127.0.0.1:4999\n");
    let out = smartproxy(&env, &["env", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("export OPENAI_BASE_URL='http://127.0.0.1:4999/v1'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export ANTHROPIC_BASE_URL='http://127.0.0.1:4999'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("export OLLAMA_HOST='http://127.0.0.1:4999'"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("no daemon is running"),
        "notes go to stderr, never into what eval runs"
    );
    // Every stdout line is a plain export a shell can eval.
    assert!(stdout.lines().all(|l| l.starts_with("export ")), "{stdout}");

    let mut cmd = env.command();
    cmd.env("SMARTPROXY_API_KEY", "sk-team's").args([
        "env",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let out = run_to_end(cmd);
    let vars: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(vars["OPENAI_API_KEY"], "sk-team's");
    assert_eq!(vars["ANTHROPIC_API_KEY"], "sk-team's");

    // The sh output survives a real shell, quotes included.
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_API_KEY", "sk-team's")
        .args(["env", "--config", config.to_str().unwrap()]);
    let exports = text(&run_to_end(cmd).stdout);
    let echoed = std::process::Command::new("sh")
        .args(["-c", &format!("{exports}\nprintf %s \"$OPENAI_API_KEY\"")])
        .output()
        .unwrap();
    assert_eq!(text(&echoed.stdout), "sk-team's");
}
