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

/// A password in a provider's `base_url` is never shown: not in the 502 a client gets when the
/// provider cannot be reached, not in `config show` or `route explain`. A key in its query
/// string is refused at load, naming the file, the line and the key.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_a_base_url_are_never_shown() {
    let env = TestEnv::new();
    // A port nothing listens on: the connection is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: private\n    kind: openai\n    base_url: http://me:hunter2-secret@127.0.0.1:{port}/v1\n    models: [gpt-4o]\n"
        ),
    );
    let session = env.start_run(&["run", "--config", config.to_str().unwrap()], &[]);
    let body =
        serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let reply = support::post_chat(&session.base_url, Some(&session.key), body.to_string()).await;
    session.finish(0);
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert!(!reply.body.contains("hunter2"), "{}", reply.body);
    for args in [
        vec!["config", "show", "--config", config.to_str().unwrap()],
        vec![
            "config",
            "show",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
    ] {
        let out = env.command().args(&args).output().unwrap();
        let text = support::text(&out.stdout) + &support::text(&out.stderr);
        assert!(!text.contains("hunter2"), "{args:?}: {text}");
    }

    let keyed = env.write(
        "keyed.yaml",
        "providers:\n  - name: keyed\n    kind: openai\n    base_url: https://example.test/v1?api-key=sk-in-the-url\n",
    );
    let out = env
        .command()
        .args(["config", "validate", "--config", keyed.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("keyed.yaml:4") && stderr.contains("providers[0].base_url"),
        "{stderr}"
    );
    assert!(
        stderr.contains("query string") && !stderr.contains("sk-in-the-url"),
        "{stderr}"
    );
}
