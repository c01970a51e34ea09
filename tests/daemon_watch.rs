//! `smartproxy daemon --watch`: an edit of the config file is picked up without a restart (a new
//! alias starts routing), a broken edit is refused with its file, line and key while the old
//! config keeps serving, and a later good edit is picked up again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::upstream::MockUpstream;
use support::{TestEnv, chat_body, post_chat};

fn config_text(base_url: &str, extra: &str) -> String {
    format!(
        "providers:\n  - name: upstream\n    kind: openai\n    base_url: {base_url}\n    api_key_env: UPSTREAM_KEY\n    models: [gpt-4o-mini, gpt-4o]\n{extra}"
    )
}

/// Sends `team-model` and returns the model the upstream was asked for.
async fn served_as(daemon: &Daemon, upstream: &MockUpstream) -> String {
    let reply = post_chat(
        &format!("{}/v1", daemon.listen),
        None,
        chat_body("team-model", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    upstream.received().last().unwrap().body["model"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn wait_until_served_as(daemon: &Daemon, upstream: &MockUpstream, model: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = served_as(daemon, upstream).await;
        if served == model {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "--watch never picked up the edit (still served as {served}); stderr:\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_reload_and_a_broken_edit_keeps_the_old_config() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write("sp.yaml", &config_text(&upstream.base_url(), ""));
    let daemon = Daemon::start(&env, &config, &["--watch"], &[("UPSTREAM_KEY", "k")]);
    // No alias yet: the default provider gets the name as it is.
    assert_eq!(served_as(&daemon, &upstream).await, "team-model");

    std::fs::write(
        &config,
        config_text(
            &upstream.base_url(),
            "aliases:\n  team-model: [upstream/gpt-4o-mini]\n",
        ),
    )
    .unwrap();
    wait_until_served_as(&daemon, &upstream, "gpt-4o-mini").await;
    daemon.wait_for_log("config reloaded from", 1);

    // A typo: refused, named by file, line and key; the alias keeps routing.
    std::fs::write(
        &config,
        config_text(
            &upstream.base_url(),
            "aliases:\n  team-model: [upstream/gpt-4o]\nresilience:\n  max_atempts: 2\n",
        ),
    )
    .unwrap();
    daemon.wait_for_log("config not reloaded", 1);
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("sp.yaml:10:") && stderr.contains("max_atempts"),
        "{stderr}"
    );
    assert_eq!(
        served_as(&daemon, &upstream).await,
        "gpt-4o-mini",
        "the old config keeps serving"
    );

    // Fixed: the watcher is still watching.
    std::fs::write(
        &config,
        config_text(
            &upstream.base_url(),
            "aliases:\n  team-model: [upstream/gpt-4o]\nresilience:\n  max_attempts: 2\n",
        ),
    )
    .unwrap();
    wait_until_served_as(&daemon, &upstream, "gpt-4o").await;
    daemon.wait_for_log("config reloaded from", 2);

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let out = daemon.wait();
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_that_keeps_the_modification_time_is_still_seen() {
    let upstream = MockUpstream::start();
    let env = TestEnv::new();
    let config = env.write("sp.yaml", &config_text(&upstream.base_url(), ""));
    let daemon = Daemon::start(&env, &config, &["--watch"], &[("UPSTREAM_KEY", "k")]);
    assert_eq!(served_as(&daemon, &upstream).await, "team-model");
    // File times only move with the kernel's clock tick: an editor's truncate and write can
    // share one. Here the edit is made and the old time put back.
    let before = std::fs::metadata(&config).unwrap().modified().unwrap();
    std::fs::write(
        &config,
        config_text(
            &upstream.base_url(),
            "aliases:\n  team-model: [upstream/gpt-4o-mini]\n",
        ),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&config)
        .unwrap()
        .set_modified(before)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&config).unwrap().modified().unwrap(),
        before
    );
    wait_until_served_as(&daemon, &upstream, "gpt-4o-mini").await;
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait().status.code(), Some(0));
}
