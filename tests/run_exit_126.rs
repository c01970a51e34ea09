//! `run` exits 126 with a clear message when the command exists but cannot be executed (as a
//! shell does), and still records and closes the session; 127 is in `run_wrapper.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{TestEnv, run_to_end, text};

fn session_exit_code(env: &TestEnv) -> i64 {
    env.ledger()
        .query_row(
            "SELECT exit_code FROM sessions ORDER BY started_ms DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_file_without_the_execute_bit_exits_126() {
    let env = TestEnv::new();
    let script = env.write("not-executable.sh", "#!/bin/sh\necho should not run\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    for program in [script.to_str().unwrap(), "./not-executable.sh"] {
        let mut cmd = env.command();
        cmd.args(["run", "--mock", "--", program]);
        let out = run_to_end(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(126), "{program}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot execute `{program}`: permission denied")),
            "{stderr}"
        );
        assert!(stderr.contains("chmod +x"), "says how to fix it: {stderr}");
        assert!(!text(&out.stdout).contains("should not run"));
        assert_eq!(
            session_exit_code(&env),
            126,
            "the session is recorded and closed"
        );
    }
}

#[test]
fn a_command_on_path_without_the_execute_bit_exits_126() {
    let env = TestEnv::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("sp-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho should not run\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = env.command();
    cmd.env("PATH", path)
        .args(["run", "--mock", "--", "sp-test-tool"]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{stderr}");
    assert!(
        stderr.contains("cannot execute `sp-test-tool`: permission denied"),
        "{stderr}"
    );
}

#[test]
fn a_directory_is_not_a_command() {
    let env = TestEnv::new();
    let dir = env.path().join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--", dir.to_str().unwrap()]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{stderr}");
    assert!(stderr.contains("cannot execute"), "{stderr}");
}

#[test]
fn an_executable_file_that_is_no_program_exits_126() {
    let env = TestEnv::new();
    for (name, bytes) in [
        ("no-shebang", &b"echo should not run\n"[..]),
        ("broken-elf", &b"\x7fELF\x02\x01\x01 not really"[..]),
    ] {
        let path = env.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = env.command();
        cmd.args(["run", "--mock", "--", path.to_str().unwrap()]);
        let out = run_to_end(cmd);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(126), "{name}: {stderr}");
        assert!(
            stderr.contains("not a program this system can run"),
            "{name}: {stderr}"
        );
        assert!(!text(&out.stdout).contains("should not run"));
    }
}
