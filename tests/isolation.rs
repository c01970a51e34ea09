//! The harness keeps the developer's environment away from the binary: variables set in the
//! test process, which every child would inherit, change nothing it does.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

mod support;

use support::upstream::MockUpstream;
use support::{TestEnv, run_to_end, text};

/// Each would change the run below if it reached the binary: remap the model, add a provider,
/// refuse the request on budget, send it to a dead proxy, log at trace level.
const LEAKED: &[(&str, &str)] = &[
    ("MODEL_MAP", r#"{"gpt-4o-mini":"leaked-model"}"#),
    ("DEFAULT_UPSTREAM", "http://127.0.0.1:9/v1"),
    ("SMARTPROXY_BUDGET_SESSION_LIMIT_USD", "0.000001"),
    ("SMARTPROXY_LOG_LEVEL", "trace"),
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("ALL_PROXY", "http://127.0.0.1:9"),
    ("UPSTREAM_KEY", "sk-leaked"),
];

#[test]
fn variables_of_the_test_process_do_not_reach_the_binary() {
    for (name, value) in LEAKED {
        // SAFETY: this is the only test of this binary and nothing else runs yet: no other
        // thread reads the environment while it changes.
        #[allow(
            clippy::disallowed_methods,
            reason = "the test's point: variables of the test process must not reach the binary"
        )]
        unsafe {
            std::env::set_var(name, value)
        };
    }
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let names: Vec<&str> = LEAKED.iter().map(|(name, _)| *name).collect();
    let client = env.write(
        "client.py",
        &format!(
            "import json, os, urllib.request as u\n\
             body = json.dumps({{'model': 'gpt-4o-mini', 'messages': [{{'role': 'user', 'content': 'hi'}}]}}).encode()\n\
             r = u.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body,\n\
                 headers={{'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY']}})\n\
             print(json.load(u.urlopen(r))['model'])\n\
             print(sorted(k for k in os.environ if k in {names:?}))\n"
        ),
    );
    let mut cmd = env.command();
    cmd.env("UPSTREAM_KEY", "sk-upstream")
        .args(["run", "--config", config.to_str().unwrap(), "--"])
        .args(["python3", client.to_str().unwrap()]);
    let out = run_to_end(cmd);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "gpt-4o-mini\n[]\n", "{stderr}");
    assert!(stderr.contains("(no budget set)"), "{stderr}");
    assert!(!stderr.contains("TRACE"), "{stderr}");
    assert_eq!(upstream.calls(), 1);
    let received = upstream.received();
    assert_eq!(
        received[0].authorization.as_deref(),
        Some("Bearer sk-upstream")
    );
    let rows = env.requests();
    assert_eq!(rows[0]["provider"], "upstream", "{rows:?}");
    assert_eq!(rows[0]["served_model"], "gpt-4o-mini", "{rows:?}");
}
