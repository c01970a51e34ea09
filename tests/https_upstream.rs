//! HTTPS upstreams: a local TLS mock upstream whose certificate is signed by a test CA
//! (`testdata/tls/`, made by `make.sh`). With the provider's `tls.ca_file` naming that CA,
//! whole and streamed replies come through `run`; without it the request fails with a 502 that
//! names the certificate problem, and the ledger records the failure. A `ca_file` that cannot be
//! used is a config error naming the file, the line and the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::upstream::{MockUpstream, REPLY_WORDS};
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

fn tls_upstream() -> MockUpstream {
    let cert = std::fs::read(tls_file("server.pem")).unwrap();
    let key = std::fs::read(tls_file("server.key")).unwrap();
    MockUpstream::start_tls(&cert, &key)
}

/// A config whose one provider is `base_url`, with `tls` lines (already indented) if any.
fn config(env: &TestEnv, base_url: &str, tls: &str) -> PathBuf {
    env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: secure\n    kind: openai\n    base_url: {base_url}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini]\n{tls}resilience:\n  max_attempts: 1\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_providers_ca_whole_and_streamed_replies_come_through() {
    let upstream = tls_upstream();
    assert!(upstream.base_url().starts_with("https://127.0.0.1:"));
    let env = TestEnv::new();
    // Relative to the config file's folder.
    std::fs::copy(tls_file("ca.pem"), env.path().join("corp-ca.pem")).unwrap();
    let config = config(
        &env,
        &upstream.base_url(),
        "    tls:\n      ca_file: corp-ca.pem\n",
    );
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "sk-upstream")],
    );
    let whole = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    let streamed = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", true, "hi"),
    )
    .await;
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    assert_eq!(streamed.streamed_content(), REPLY_WORDS.concat());
    assert!(
        streamed.body.ends_with("data: [DONE]\n\n"),
        "{}",
        streamed.body
    );
    assert_eq!(upstream.calls(), 2);
    assert_eq!(upstream.streams_completed(), 1);
    assert_eq!(
        upstream.received()[0].authorization.as_deref(),
        Some("Bearer sk-upstream"),
        "the key went over TLS"
    );
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["status"], "200", "{row:?}");
        assert_eq!(row["provider"], "secure", "{row:?}");
        assert_eq!(row["completion_tokens"], "7", "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_ca_the_request_fails_naming_the_certificate_problem() {
    let upstream = tls_upstream();
    let env = TestEnv::new();
    let config = config(&env, &upstream.base_url(), "");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "sk-upstream")],
    );
    for stream in [false, true] {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat_body("gpt-4o-mini", stream, "hi"),
        )
        .await;
        assert_eq!(reply.status, 502, "{}", reply.body);
        let error = &reply.json()["error"];
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("certificate") && message.contains("UnknownIssuer"),
            "{message}"
        );
        assert!(
            message.contains("tls: {ca_file:"),
            "says what to do: {message}"
        );
        assert_eq!(error["code"], "upstream_connect_error", "{error}");
    }
    assert_eq!(
        upstream.calls(),
        0,
        "no request crossed the refused handshake"
    );
    session.finish(0);
    let rows = env.requests();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["status"], "502", "{row:?}");
        assert_eq!(row["error_code"], "upstream_connect_error", "{row:?}");
    }
}

#[test]
fn an_unusable_ca_file_is_a_config_error_naming_file_line_and_key() {
    let env = TestEnv::new();
    env.write("not-a-cert.pem", "hello\n");
    env.write(
        "garbage-cert.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    for (base_url, file, problem) in [
        ("https://127.0.0.1:9/v1", "missing.pem", "cannot read"),
        (
            "https://127.0.0.1:9/v1",
            "not-a-cert.pem",
            "holds no PEM certificate",
        ),
        (
            "https://127.0.0.1:9/v1",
            "garbage-cert.pem",
            "not a usable CA certificate",
        ),
        (
            "http://127.0.0.1:9/v1",
            "not-a-cert.pem",
            "only applies to https://",
        ),
    ] {
        let config = config(
            &env,
            base_url,
            &format!("    tls:\n      ca_file: {file}\n"),
        );
        let mut cmd = env.command();
        cmd.args(["config", "validate", "--config", config.to_str().unwrap()]);
        let out = run_to_end(cmd);
        let stderr = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{file}: {stderr}");
        assert!(
            stderr.contains("sp.yaml:8: `providers[0].tls.ca_file`") && stderr.contains(problem),
            "{file}: {stderr}"
        );
    }
}

#[test]
fn providers_check_trusts_the_providers_ca_too() {
    let upstream = tls_upstream();
    let env = TestEnv::new();
    let ca = tls_file("ca.pem");
    for (tls, ok) in [
        (format!("    tls:\n      ca_file: {}\n", ca.display()), true),
        (String::new(), false),
    ] {
        let config = config(&env, &upstream.base_url(), &tls);
        let mut cmd = env.command();
        cmd.env("UPSTREAM_KEY", "sk-upstream").args([
            "providers",
            "check",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ]);
        let out = run_to_end(cmd);
        let probes: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
        let probe = &probes[0];
        assert_eq!(probe["ok"], ok, "{probe}");
        if !ok {
            let note = probe["note"].as_str().unwrap();
            assert!(note.contains("UnknownIssuer"), "{note}");
        }
    }
    assert_eq!(
        upstream.calls(),
        1,
        "only the probe that trusted the CA got through"
    );
}
