//! Secrets one step away: the agent under `run` cannot read the real keys out of `run` itself,
//! and the ledger is private to the user who made it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::TestEnv;

const CANARY: &str = "sk-canary-0123456789abcdef0123456789abcdef";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The child of `run` runs as the same user as `run`, which holds the real keys in its own
/// environment. It reads `/proc/$PPID/environ` (and would, on an unprotected process, find the
/// key there): the file is not readable to it. Run as `nobody`, since root reads any process.
#[test]
fn the_child_of_run_cannot_read_the_real_keys_from_run() {
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if !root {
        support::skip_or_fail("needs root to run `run` as another user (setpriv)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy the other user can execute, wherever the build tree is.
    let bin = dir.path().join("smartproxy");
    std::fs::copy(env!("CARGO_BIN_EXE_smartproxy"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(["run", "--mock", "--summary", "none", "--", "sh", "-c"])
        .arg(
            "cat /proc/$PPID/environ >/dev/null 2>&1 && echo environ-readable; \
             cat /proc/$PPID/mem >/dev/null 2>&1 && echo mem-readable; \
             tr '\\0' '\\n' < /proc/$PPID/environ 2>/dev/null; echo done",
        )
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", &home)
        .env("SMARTPROXY_DB", home.join("ledger.db"))
        .env("OPENAI_API_KEY", CANARY)
        .current_dir(&home)
        .output()
        .unwrap();
    let stdout = support::text(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        support::text(&out.stderr)
    );
    assert!(stdout.contains("done"), "{stdout}");
    assert!(!stdout.contains("environ-readable"), "{stdout}");
    assert!(!stdout.contains("mem-readable"), "{stdout}");
    assert!(!stdout.contains(CANARY), "the key leaked: {stdout}");
}

/// A fresh ledger in the default place: its folder 0700, the file and its WAL 0600. One an
/// older build left readable by others is tightened at the next open, with a warning.
#[test]
fn the_ledger_and_its_folder_are_private() {
    let env = TestEnv::new();
    let data = env.path().join("home/.local/share/smartproxy");
    let out = env
        .command()
        .env_remove("SMARTPROXY_DB")
        .args(["run", "--mock", "--summary", "none", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let ledger = data.join("ledger.db");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&ledger), 0o600);
    let wal = data.join("ledger.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env
        .command()
        .env_remove("SMARTPROXY_DB")
        .args(["run", "--mock", "--summary", "none", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = support::text(&out.stderr);
    assert!(
        stderr.contains("others could read this smartproxy file"),
        "{stderr}"
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&ledger), 0o600);
}
