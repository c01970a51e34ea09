//! Shims and presets: `smartproxy shim install TOOL` writes a script that runs the real tool
//! under `smartproxy run --preset TOOL`; the preset tags the session, sets its budget and adds
//! variables; the shim finds the real tool past itself on PATH; `list` and `remove` know only
//! their own files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{TestEnv, run_to_end, text};

#[test]
fn a_shim_runs_the_real_tool_under_run_with_its_preset() {
    let env = TestEnv::new();
    // Found by discovery (./smartproxy.yaml), as the shim passes no --config.
    env.write(
        "smartproxy.yaml",
        "providers:\n  - name: m\n    kind: mock\npresets:\n  mytool:\n    tag: mine\n    budget_usd: 0.25\n    env: {MYTOOL_MODE: proxied}\n",
    );
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("mytool");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho \"url=$OPENAI_BASE_URL mode=$MYTOOL_MODE args=$*\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shims = env.path().join("shims");
    let shims_arg = shims.to_str().unwrap();

    let mut install = env.command();
    install.args(["shim", "install", "mytool", "--dir", shims_arg]);
    let out = run_to_end(install);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("first on PATH"),
        "{}",
        text(&out.stderr)
    );

    // Shims first on PATH, as the user is told to do.
    let path = format!(
        "{}:{}:{}",
        shims.display(),
        bin.display(),
        std::env::var("PATH").unwrap()
    );
    let mut call = env.command_for("sh");
    call.env("PATH", &path).args(["-c", "mytool a 'b c'"]);
    let out = run_to_end(call);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("url=http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("mode=proxied args=a b c"), "{stdout}");
    assert!(
        stderr.contains("smartproxy session"),
        "the run summary: {stderr}"
    );
    let (tag, budget): (String, f64) = env
        .ledger()
        .query_row("SELECT tag, budget_usd FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((tag.as_str(), budget), ("mine", 0.25));

    let mut list = env.command();
    list.args(["shim", "list", "--json", "--dir", shims_arg]);
    let listed: serde_json::Value = serde_json::from_slice(&run_to_end(list).stdout).unwrap();
    assert_eq!(listed["shims"], serde_json::json!(["mytool"]));

    // A file the user wrote is never overwritten or removed.
    std::fs::write(shims.join("other"), "#!/bin/sh\necho mine\n").unwrap();
    let mut remove = env.command();
    remove.args(["shim", "remove", "other", "--dir", shims_arg]);
    assert_eq!(run_to_end(remove).status.code(), Some(1));
    let mut remove = env.command();
    remove.args(["shim", "remove", "mytool", "--dir", shims_arg]);
    assert!(run_to_end(remove).status.success());
    assert!(!shims.join("mytool").exists());
    assert!(shims.join("other").exists());
}

#[test]
fn presets_are_checked() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--preset", "nope", "--", "true"]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no such preset") && stderr.contains("claude"),
        "{stderr}"
    );

    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: m\n    kind: mock\npresets:\n  bad:\n    env: {OPENAI_BASE_URL: x}\n",
    );
    let mut cmd = env.command();
    cmd.args([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--preset",
        "bad",
        "--",
        "true",
    ]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is set by run itself"),
        "{}",
        text(&out.stderr)
    );

    // A built-in preset tags the session with the tool's name; --tag still wins.
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--preset", "codex", "--", "true"]);
    assert!(run_to_end(cmd).status.success());
    let tag: String = env
        .ledger()
        .query_row("SELECT tag FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tag, "codex");
}

/// `run -- codex` without `--preset` gets the codex preset all the same (Codex reads no base URL
/// from the environment: without the preset's `-c` arguments it would not reach the session),
/// and says so; a program without a preset of its name gets none.
#[test]
fn a_program_with_a_preset_of_its_name_gets_it_without_the_flag() {
    let env = TestEnv::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["codex", "other"] {
        let tool = bin.join(name);
        std::fs::write(&tool, "#!/bin/sh\necho \"args=$*\"\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--"])
        .arg(bin.join("codex"))
        .args(["exec", "hi"]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("args=-c model_provider=\"smartproxy\" -c model_providers.smartproxy=")
            && stdout.contains("base_url = \"http://127.0.0.1:")
            && stdout.trim_end().ends_with("exec hi"),
        "{stdout}"
    );
    assert!(stderr.contains("runs with preset codex"), "{stderr}");

    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--"])
        .arg(bin.join("other"))
        .arg("hi");
    let out = run_to_end(cmd);
    assert_eq!(text(&out.stdout).trim(), "args=hi");
    let tags: Vec<Option<String>> = env
        .ledger()
        .prepare("SELECT tag FROM sessions ORDER BY started_ms")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tags, [Some("codex".to_owned()), None]);
}

/// A shim called from a script under `run` is a `run` inside a `run`: with a config file whose
/// provider key the outer `run` removed, it still works, through the outer session's proxy.
#[test]
fn a_shim_called_under_run_goes_through_the_outer_session() {
    let upstream = support::upstream::MockUpstream::start();
    let env = TestEnv::new();
    env.upstream_config(&upstream.base_url(), "presets:\n  mytool:\n    tag: mine\n");
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("mytool");
    std::fs::write(
        &tool,
        "#!/usr/bin/env python3\nimport os, urllib.request as u\n\
         r = u.urlopen(u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', \
         data=b'{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}', \
         headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], \
         'Content-Type': 'application/json'}))\nprint('status', r.status)\n",
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let shims = env.path().join("shims");
    let mut install = env.command();
    install.args([
        "shim",
        "install",
        "mytool",
        "--dir",
        shims.to_str().unwrap(),
    ]);
    assert!(run_to_end(install).status.success());

    let path = format!(
        "{}:{}:{}",
        shims.display(),
        bin.display(),
        std::env::var("PATH").unwrap()
    );
    let mut call = env.command();
    call.env("PATH", &path)
        .env("UPSTREAM_KEY", "sk-real-upstream-key")
        .args(["run", "--tag", "outer", "--summary", "none", "--"])
        .args(["sh", "-c", "mytool"]);
    let out = run_to_end(call);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("status 200"), "{stdout}\n{stderr}");
    assert_eq!(upstream.calls(), 1);
    let rows = env.requests();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "200", "{rows:?}");
}
