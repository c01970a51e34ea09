//! Many processes on one ledger: eight `run` sessions at once lose no row and no session, and
//! nobody sees "database is locked".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;

use support::{TestEnv, text, wait_output};

const SESSIONS: usize = 8;
const REQUESTS_EACH: usize = 40;

#[test]
fn eight_sessions_at_once_lose_nothing() {
    let env = TestEnv::new();
    // Each child sends its requests with python3's standard library, which every machine has.
    let client = env.write(
        "client.py",
        r#"
import json, os, sys, urllib.request
base, key = os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"]
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
for i in range(int(sys.argv[1])):
    req = urllib.request.Request(base + "/chat/completions", data=body,
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
"#,
    );
    let children: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let mut cmd = env.command();
            cmd.args([
                "run",
                "--mock",
                "--summary",
                "json",
                "--tag",
                &format!("s{i}"),
                "--",
            ])
            .args([
                "python3",
                client.to_str().unwrap(),
                &REQUESTS_EACH.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = wait_output(child, std::time::Duration::from_secs(120));
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("locked"), "{stderr}");
        let summary: serde_json::Value =
            serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(
            summary["requests"], REQUESTS_EACH,
            "each summary counts its own session: {stderr}"
        );
    }
    let conn = env.ledger();
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE outcome = 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows as usize, SESSIONS * REQUESTS_EACH);
    let closed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sessions WHERE ended_ms IS NOT NULL AND exit_code = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(closed as usize, SESSIONS);
    let per_session: Vec<i64> = conn
        .prepare("SELECT COUNT(*) FROM requests GROUP BY session_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(per_session, vec![REQUESTS_EACH as i64; SESSIONS]);
}
