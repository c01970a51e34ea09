//! The exact-match response cache: hits served without the provider (whole and replayed as a
//! stream), bypass headers, saved cost in the ledger, encryption at rest with no plaintext in the
//! file, and the `cache` commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::upstream::{MockUpstream, REPLY_WORDS};
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

const CANARY: &str = "CANARY-cache-9d2f-never-in-the-file";

fn cache_entries(env: &TestEnv, config: &std::path::Path, key: Option<&str>) -> u64 {
    let mut cmd = env.command();
    if let Some(key) = key {
        cmd.env("SMARTPROXY_CACHE_KEY", key);
    }
    cmd.args([
        "cache",
        "stats",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let out = run_to_end(cmd);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["entries"].as_u64())
        .unwrap_or(0)
}

fn wait_for_entries(env: &TestEnv, config: &std::path::Path, key: Option<&str>, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache_entries(env, config, key) < n {
        assert!(
            Instant::now() < deadline,
            "the reply never reached the cache"
        );
        support::pause(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hits_skip_the_provider_and_record_what_they_saved() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "cache:\n  enabled: true\n");
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k")],
    );
    let body = chat_body("gpt-4o", false, "What is the answer?");
    let first = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
    assert_eq!(first.headers["x-smartproxy-cache"], "miss");
    wait_for_entries(&env, &config, None, 1);

    let second = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.headers["x-smartproxy-cache"], "hit");
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(upstream.calls(), 1, "the hit never reached the provider");

    // The same request streamed: a well-formed replay of the cached reply.
    let streamed = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o", true, "What is the answer?"),
    )
    .await;
    let content: String = streamed.streamed_content();
    assert_eq!(content, REPLY_WORDS.concat());
    assert!(streamed.body.ends_with("data: [DONE]\n\n"));
    assert!(
        !streamed.body.contains("\"usage\":{"),
        "no usage chunk the client did not ask for"
    );
    assert_eq!(upstream.calls(), 1);

    // Bypass goes to the provider.
    let resp = support::http_client()
        .post(format!("{}/chat/completions", session.base_url))
        .bearer_auth(&session.key)
        .header("x-smartproxy-cache", "bypass")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-smartproxy-cache"], "bypass");
    assert_eq!(upstream.calls(), 2);
    session.finish(0);

    let rows = env.requests();
    assert_eq!(rows[1]["cache_status"], "hit");
    assert_eq!(rows[1]["cost_usd"], "0");
    assert!(
        rows[1]["saved_usd"].parse::<f64>().unwrap() > 0.0,
        "{:?}",
        rows[1]
    );
    assert_eq!(rows[2]["cache_status"], "hit");
    let mut clear = env.command();
    clear.args(["cache", "clear", "--config", config.to_str().unwrap()]);
    assert!(text(&run_to_end(clear).stdout).contains("removed 1 cache entry"));
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_entries_hold_no_plaintext_and_need_the_key() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "cache:\n  enabled: true\n  encrypt: true\n",
    );
    let key = "5f0c3b2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180716253443526170aa";

    let mut without_key = env.command();
    without_key.env("UPSTREAM_KEY", "k").args([
        "run",
        "--config",
        config.to_str().unwrap(),
        "--",
        "true",
    ]);
    let out = run_to_end(without_key);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("SMARTPROXY_CACHE_KEY"),
        "{}",
        text(&out.stderr)
    );

    let mut weak = env.command();
    weak.env("UPSTREAM_KEY", "k")
        .env("SMARTPROXY_CACHE_KEY", "0".repeat(64))
        .args(["run", "--config", config.to_str().unwrap(), "--", "true"]);
    assert_eq!(
        run_to_end(weak).status.code(),
        Some(1),
        "a weak key is refused"
    );

    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_CACHE_KEY", key)],
    );
    let body = chat_body("gpt-4o", true, CANARY);
    let reply = post_chat(&session.base_url, Some(&session.key), body).await;
    assert!(reply.body.contains("forty-two"));
    wait_for_entries(&env, &config, Some(key), 1);
    session.finish(0);

    // The stored blob is real AES-256-GCM ciphertext, not just gzip: it is neither gzip nor JSON,
    // another key fails the tag check, and the right key (with the entry's key as associated
    // data, as the store seals it) opens it to the gzipped reply.
    let (entry_key, encrypted, payload) = stored_entry(&env);
    assert_eq!(encrypted, 1, "the row says it is sealed");
    assert!(
        !payload.starts_with(&[0x1f, 0x8b]),
        "the stored blob is a bare gzip stream: encryption is off"
    );
    assert!(gunzip(&payload).is_none(), "the stored blob gunzips");
    assert!(serde_json::from_slice::<serde_json::Value>(&payload).is_err());
    let wrong = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9b";
    assert!(
        open_sealed(wrong, &entry_key, &payload).is_none(),
        "another key opens the entry: it is not sealed"
    );
    assert!(
        open_sealed(key, "some-other-entry", &payload).is_none(),
        "the entry's key is not bound to it"
    );
    let plain = open_sealed(key, &entry_key, &payload).expect("the right key opens the entry");
    let body = gunzip(&plain).expect("a sealed gzip stream");
    assert!(
        String::from_utf8_lossy(&body).contains("forty-two"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    for entry in std::fs::read_dir(env.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("cache.db") {
            let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(
                !bytes.contains(CANARY) && !bytes.contains("forty-two"),
                "plaintext in {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_cache_serves_hits_and_another_key_misses() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "cache:\n  enabled: true\n  encrypt: true\n",
    );
    let key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_CACHE_KEY", key)],
    );
    let body = chat_body("gpt-4o", false, "What is the sealed answer?");
    let first = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.headers["x-smartproxy-cache"], "miss");
    wait_for_entries(&env, &config, Some(key), 1);

    let second = post_chat(&session.base_url, Some(&session.key), body.clone()).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.headers["x-smartproxy-cache"], "hit");
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        first.json()["choices"][0]["message"]["content"]
    );
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(upstream.calls(), 1, "the hit never reached the provider");
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cache_status"], "miss");
    assert_eq!(rows[1]["cache_status"], "hit");
    assert_eq!(rows[1]["status"], "200");

    // Under another key the sealed entry cannot be read: a miss that goes to the provider.
    let other = "f0e1d2c3b4a5968778695a4b3c2d1e0fffeeddccbbaa99887766554433221100";
    let session = env.start_run(
        &["run", "--config", config.to_str().unwrap()],
        &[("UPSTREAM_KEY", "k"), ("SMARTPROXY_CACHE_KEY", other)],
    );
    let third = post_chat(&session.base_url, Some(&session.key), body).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_ne!(third.headers["x-smartproxy-cache"], "hit");
    assert_eq!(upstream.calls(), 2, "another key cannot serve the entry");
    session.finish(0);
}

/// The one entry of the cache: (key, encrypted flag, payload).
fn stored_entry(env: &TestEnv) -> (String, i64, Vec<u8>) {
    let conn = rusqlite::Connection::open(env.path().join("cache.db")).unwrap();
    let mut rows: Vec<(String, i64, Vec<u8>)> = conn
        .prepare("SELECT key, encrypted, payload FROM entries")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "one cache entry");
    rows.pop().unwrap()
}

/// AES-256-GCM open of `nonce(12) || ciphertext || tag` with `aad`; None when the tag fails.
fn open_sealed(hex_key: &str, aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&hex::decode(hex_key).unwrap()).unwrap();
    if sealed.len() < 12 + 16 {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    cipher
        .decrypt(
            aes_gcm::Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: aad.as_bytes(),
            },
        )
        .ok()
}

fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}
