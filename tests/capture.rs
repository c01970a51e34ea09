//! Opt-in body capture with the real binary: off, nothing is written; on, request and response
//! bodies (whole and streamed) are stored and `capture show` prints them; a body over a cap (a
//! request, a stream) is refused whole and counted while its request still succeeds; with SMARTPROXY_CAPTURE_KEY the
//! files on disk do not hold the prompt, yet `capture show` with the key does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use support::daemon::Daemon;
use support::upstream::{Behavior, MockUpstream};
use support::{Reply, TestEnv, chat_body, http_client, post_chat, run_to_end, text};

const KEY: &str = "sk-upstream-capture-key-0042";
const CAPTURE_KEY: &str = "8f3a1c0e5b7d294688a1f0c3e2d4b6a79c8e1f2a3b4c5d6e7f8091a2b3c4d5e6";

fn request_id(reply: &Reply) -> String {
    reply.headers["x-smartproxy-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// `smartproxy capture show ID [flag]` -> (exit code, stdout, stderr).
fn show(
    env: &TestEnv,
    config: &Path,
    id: &str,
    flag: Option<&str>,
    key: Option<&str>,
) -> (i32, Vec<u8>, String) {
    let mut cmd = env.command();
    cmd.args(["capture", "show", id, "--config", config.to_str().unwrap()]);
    if let Some(flag) = flag {
        cmd.arg(flag);
    }
    if let Some(key) = key {
        cmd.env("SMARTPROXY_CAPTURE_KEY", key);
    }
    let out = run_to_end(cmd);
    (out.status.code().unwrap(), out.stdout, text(&out.stderr))
}

/// The daemon's `/metrics` once they contain `needle` (the capture writer works in the
/// background); fails after 10 s.
async fn metrics_once(daemon: &Daemon, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = http_client()
            .get(format!("{}/metrics", daemon.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(needle) {
            return metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// One whole and one streamed request through a `run` session; returns their replies.
async fn two_requests(
    env: &TestEnv,
    config: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    prompt: &str,
) -> (String, Reply, String, Reply) {
    let mut all = vec!["run", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut envs = envs.to_vec();
    envs.push(("UPSTREAM_KEY", KEY));
    let session = env.start_run(&all, &envs);
    let whole_body = chat_body("gpt-4o-mini", false, prompt);
    let whole = post_chat(&session.base_url, Some(&session.key), whole_body.clone()).await;
    assert_eq!(whole.status, 200, "{}", whole.body);
    let stream_body = chat_body("gpt-4o-mini", true, prompt);
    let streamed = post_chat(&session.base_url, Some(&session.key), stream_body.clone()).await;
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    let out = session.finish(0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    (whole_body, whole, stream_body, streamed)
}

#[tokio::test(flavor = "multi_thread")]
async fn off_by_default_nothing_is_stored() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Ok, Behavior::Ok]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let (_, whole, _, _) = two_requests(&env, &config, &[], &[], "capture-off prompt").await;
    assert!(!env.path().join("captures").exists());
    let (code, _, stderr) = show(&env, &config, &request_id(&whole), None, None);
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing captured"), "{stderr}");
    assert!(stderr.contains("capture is off"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_request_and_response_bodies_whole_and_streamed_are_readable() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Ok, Behavior::Ok]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "");
    let (whole_body, whole, stream_body, streamed) =
        two_requests(&env, &config, &["--capture"], &[], "capture-on prompt").await;
    let dir = env.path().join("captures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");

    for (id, sent, reply) in [
        (request_id(&whole), &whole_body, &whole),
        (request_id(&streamed), &stream_body, &streamed),
    ] {
        let (code, request, stderr) = show(&env, &config, &id, Some("--request"), None);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(text(&request), *sent);
        let (code, response, _) = show(&env, &config, &id, Some("--response"), None);
        assert_eq!(code, 0);
        // The bytes the client got, stream framing included.
        assert_eq!(text(&response), reply.body);
        let (code, both, _) = show(&env, &config, &id, None, None);
        assert_eq!(code, 0);
        let both = text(&both);
        assert!(both.contains("== request ("), "{both}");
        assert!(both.contains("== response ("), "{both}");
        assert!(both.contains("capture-on prompt"), "{both}");
    }
    assert!(streamed.body.contains("data: [DONE]"));
    // Bodies only: the keys of either side never enter a blob.
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        assert!(!contains(&bytes, KEY), "{name}");
        assert!(!contains(&bytes, "sk-smartproxy-"), "{name}");
    }

    let mut cmd = env.command();
    cmd.args([
        "capture",
        "stats",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let out = run_to_end(cmd);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["requests"], 2, "{stats}");
    assert_eq!(stats["blobs"], 4, "{stats}");
    assert_eq!(stats["encrypted_blobs"], 0, "{stats}");

    let mut cmd = env.command();
    cmd.args(["capture", "clear", "--config", config.to_str().unwrap()]);
    let out = run_to_end(cmd);
    assert_eq!(text(&out.stdout).trim(), "removed 4 captured bodies");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_cap_a_body_is_refused_and_counted_and_the_request_succeeds() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Ok, Behavior::Ok]);
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "capture:\n  enabled: true\n  max_blob_bytes: 700\n",
    );
    let daemon = Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", KEY)]);
    let big = "x".repeat(5000);
    let reply = post_chat(
        &format!("{}/v1", daemon.listen),
        None,
        chat_body("gpt-4o-mini", false, &big),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let big_id = request_id(&reply);
    assert!(
        reply.body.len() < 700,
        "the whole reply fits: {}",
        reply.body.len()
    );
    // A small request whose stream is over the cap: it is forwarded whole all the same.
    let small = post_chat(
        &format!("{}/v1", daemon.listen),
        None,
        chat_body("gpt-4o-mini", true, "small"),
    )
    .await;
    assert_eq!(small.status, 200);
    assert!(
        small.body.len() > 700,
        "the stream is over: {}",
        small.body.len()
    );
    assert!(small.body.contains("data: [DONE]"));
    let small_id = request_id(&small);
    // The writer works in the background: wait until it has kept the two bodies that fit.
    let dir = env.path().join("captures");
    let metrics = metrics_once(&daemon, "smartproxy_capture_stored_total 2").await;
    for counter in [
        "smartproxy_capture_refused_total 2",
        "smartproxy_capture_dropped_total 0",
        "smartproxy_capture_failed_total 0",
    ] {
        assert!(metrics.contains(counter), "{counter}: {metrics}");
    }
    let out = daemon.stop();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("a body was not captured"), "{stderr}");
    assert!(stderr.contains("max_blob_bytes"), "{stderr}");
    assert!(!stderr.contains(&big), "no body in the log");
    // Refused whole: no file, no temporary file, for the big request; its response is kept.
    assert!(!dir.join(format!("{big_id}.request")).exists());
    assert!(dir.join(format!("{big_id}.response")).exists());
    assert!(dir.join(format!("{small_id}.request")).exists());
    assert!(!dir.join(format!("{small_id}.response")).exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (code, body, _) = show(&env, &config, &big_id, Some("--request"), None);
    assert_eq!(code, 1, "{}", text(&body));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_key_the_disk_holds_no_prompt_but_capture_show_does() {
    let upstream = MockUpstream::start();
    upstream.push([Behavior::Ok, Behavior::Ok]);
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), "capture:\n  enabled: true\n");
    let prompt = "CAPTURE-CANARY-sealed-9c1e";
    let (_, whole, _, streamed) = two_requests(
        &env,
        &config,
        &[],
        &[("SMARTPROXY_CAPTURE_KEY", CAPTURE_KEY)],
        prompt,
    )
    .await;
    let dir = env.path().join("captures");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(bytes.starts_with(b"SPCAP1s"));
        assert!(!contains(&bytes, prompt));
        assert!(!contains(&bytes, "forty-two"));
        files += 1;
    }
    assert_eq!(files, 4);
    for id in [request_id(&whole), request_id(&streamed)] {
        let (code, body, stderr) = show(&env, &config, &id, Some("--request"), Some(CAPTURE_KEY));
        assert_eq!(code, 0, "{stderr}");
        assert!(contains(&body, prompt));
        let (code, body, _) = show(&env, &config, &id, Some("--response"), Some(CAPTURE_KEY));
        assert_eq!(code, 0);
        assert!(contains(&body, "forty"), "{}", text(&body));
        let (code, _, stderr) = show(&env, &config, &id, None, None);
        assert_eq!(code, 1);
        assert!(stderr.contains("SMARTPROXY_CAPTURE_KEY"), "{stderr}");
        assert!(!stderr.contains(CAPTURE_KEY));
    }
    // A malformed key stops the proxy from starting rather than capture in the clear.
    let mut cmd = env.command();
    cmd.args(["run", "--config", config.to_str().unwrap(), "--", "true"])
        .env("SMARTPROXY_CAPTURE_KEY", "not-a-key");
    let out = run_to_end(cmd);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("openssl rand -hex 32"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn doctor_says_whether_captures_are_encrypted() {
    let env = TestEnv::new();
    let check = |config: &Path, key: Option<&str>| {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_RUNTIME_DIR", env.path().join("run"))
            .args(["doctor", "--json", "--config", config.to_str().unwrap()]);
        if let Some(key) = key {
            cmd.env("SMARTPROXY_CAPTURE_KEY", key);
        }
        let out = run_to_end(cmd);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "capture")
            .cloned()
            .unwrap_or_else(|| panic!("no capture check: {report}"));
        (
            check["status"].as_str().unwrap().to_owned(),
            check["detail"].as_str().unwrap().to_owned(),
        )
    };
    let off = env.write("off.yaml", "log_level: warn\n");
    let (status, detail) = check(&off, None);
    assert_eq!(status, "ok");
    assert!(detail.starts_with("off"), "{detail}");
    let on = env.write("on.yaml", "capture:\n  enabled: true\n");
    let (status, detail) = check(&on, None);
    assert_eq!(status, "warn");
    assert!(detail.contains("UNENCRYPTED"), "{detail}");
    let (status, detail) = check(&on, Some(CAPTURE_KEY));
    assert_eq!(status, "ok");
    assert!(
        detail.contains("encrypted with SMARTPROXY_CAPTURE_KEY"),
        "{detail}"
    );
    let (status, detail) = check(&on, Some("too-short"));
    assert_eq!(status, "fail");
    assert!(!detail.contains("too-short"), "{detail}");
    assert!(
        !env.path().join("captures").exists(),
        "doctor creates nothing"
    );
}

/// `when_full: drop_oldest` through the daemon: the store stays under its cap by deleting the
/// oldest requests' bodies, the newest request's are kept, and `/metrics` counts the evictions.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_store_can_keep_the_newest_bodies_instead() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.upstream_config(
        &upstream.base_url(),
        "capture:\n  enabled: true\n  max_blob_bytes: 1000\n  max_total_bytes: 2500\n  when_full: drop_oldest\n",
    );
    let daemon = Daemon::start(&env, &config, &[], &[("UPSTREAM_KEY", KEY)]);
    let mut ids = Vec::new();
    for i in 0..6 {
        let reply = post_chat(
            &format!("{}/v1", daemon.listen),
            None,
            chat_body("gpt-4o-mini", false, &format!("request number {i}")),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        ids.push(request_id(&reply));
    }
    let metrics = metrics_once(&daemon, "smartproxy_capture_stored_total 12").await;
    assert!(
        metrics.contains("smartproxy_capture_refused_total 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("smartproxy_capture_evicted_total 0"),
        "{metrics}"
    );
    let dir = env.path().join("captures");
    let held: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(held <= 2500, "{held} bytes in {}", dir.display());
    let last = ids.last().unwrap();
    assert!(dir.join(format!("{last}.request")).exists());
    assert!(dir.join(format!("{last}.response")).exists());
    assert!(!dir.join(format!("{}.request", ids[0])).exists());
    daemon.stop();
}
