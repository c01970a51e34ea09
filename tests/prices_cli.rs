//! `smartproxy prices show | update | reset`, driving the real binary: the table and one
//! model's price as the proxy resolves it, an overlay installed from a file (or a local URL)
//! that the proxy then bills at, a bad file refused with nothing stored, and the overlay in
//! `config show` and `doctor`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::Value;
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

fn smartproxy(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    cmd.args(args);
    run_to_end(cmd)
}

/// stdout of a command that must succeed.
fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = smartproxy(env, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json(env: &TestEnv, args: &[&str]) -> Value {
    serde_json::from_str(&ok(env, args)).unwrap()
}

fn overlay_path(env: &TestEnv) -> PathBuf {
    env.path()
        .join("home/.local/share/smartproxy/prices-overlay.json")
}

/// One model the built-in table lacks, and gpt-4o at a changed price, in LiteLLM's format
/// (with its documentation entry and a model the proxy does not price).
const OVERLAY: &str = r#"{
  "sample_spec": {"max_input_tokens": "max input tokens, if the provider specifies it"},
  "acme-fast-1": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 32000,
    "input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6,
    "cache_read_input_token_cost": 5e-7, "supports_function_calling": true},
  "gpt-4o": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000,
    "max_output_tokens": 16384, "input_cost_per_token": 3e-6, "output_cost_per_token": 1.2e-5},
  "acme-image": {"litellm_provider": "openai", "mode": "image_generation"}
}"#;

#[test]
fn show_prints_the_table_version_and_models() {
    let env = TestEnv::new();
    let out = ok(&env, &["prices", "show", "--provider", "anthropic"]);
    let header = out.lines().next().unwrap();
    assert!(header.contains("LiteLLM 1.109.1"), "{header}");
    assert!(out.contains("claude-sonnet-4-5"), "{out}");
    assert!(out.contains("$3.0000") && out.contains("$15.0000"), "{out}");
    assert!(out.contains("built-in"), "{out}");
    assert!(!out.contains("gpt-4o"), "filtered by provider: {out}");

    let table = json(
        &env,
        &["prices", "show", "--search", "gpt-4o-mini", "--json"],
    );
    assert_eq!(table["table"]["source"], "LiteLLM");
    assert_eq!(table["table"]["version"], "1.109.1");
    assert!(table["overlay"].is_null());
    let models = table["models"].as_array().unwrap();
    assert!(!models.is_empty());
    assert!(
        models
            .iter()
            .all(|m| m["name"].as_str().unwrap().contains("gpt-4o-mini"))
    );
    let mini = models.iter().find(|m| m["name"] == "gpt-4o-mini").unwrap();
    assert_eq!(mini["price"]["input_per_mtok"], 0.15);
    assert_eq!(mini["price"]["output_per_mtok"], 0.6);
    assert_eq!(mini["source"], "built-in");
}

#[test]
fn show_one_model_resolves_as_the_proxy_does() {
    let env = TestEnv::new();
    // a dated name with a provider prefix, priced by its undated entry
    let one = json(
        &env,
        &["prices", "show", "openai/gpt-5.4-2099-01-01", "--json"],
    );
    assert_eq!(one["matched"], "gpt-5.4");
    assert_eq!(one["source"], "built-in");
    assert_eq!(one["price"]["input_per_mtok"], 2.5);
    assert_eq!(one["price"]["tier"]["above_tokens"], 272_000);
    assert_eq!(one["price"]["flex"]["input_per_mtok"], 1.25);
    assert_eq!(one["price"]["priority"]["output_per_mtok"], 30.0);

    let out = ok(&env, &["prices", "show", "claude-sonnet-4-5-20250929"]);
    assert!(
        out.lines().next().unwrap().contains("LiteLLM 1.109.1"),
        "{out}"
    );
    for want in [
        "$3.0000",
        "$0.3000",
        "$3.7500",
        "$6.0000",
        "web search: $0.0100",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }

    let out = smartproxy(&env, &["prices", "show", "claude-sonet-4-5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no price for `claude-sonet-4-5`"), "{err}");
    assert!(err.contains("close matches: claude-sonnet-4-5"), "{err}");
}

#[test]
fn config_overrides_show_in_prices_and_config_show() {
    let env = TestEnv::new();
    let config = env.write(
        "smartproxy.yaml",
        "pricing:\n  gpt-4o:\n    input_per_mtok: 1.5\n    output_per_mtok: 6\n    cached_input_per_mtok: 0.5\n  my-local:\n    input_per_mtok: 0\n    output_per_mtok: 0\n",
    );
    let config = config.to_str().unwrap();
    let one = json(
        &env,
        &[
            "prices",
            "show",
            "gpt-4o-2099-01-01",
            "--json",
            "--config",
            config,
        ],
    );
    assert_eq!(one["source"], "config");
    assert_eq!(one["matched"], "gpt-4o");
    assert_eq!(one["price"]["input_per_mtok"], 1.5);
    assert_eq!(one["context_window"], 128_000);

    let table = json(
        &env,
        &[
            "prices", "show", "--search", "my-local", "--json", "--config", config,
        ],
    );
    assert_eq!(table["models"][0]["source"], "config");

    let shown = json(&env, &["config", "show", "--json", "--config", config]);
    assert_eq!(shown["pricing"]["gpt-4o"]["input_per_mtok"], 1.5);
    assert_eq!(shown["pricing"]["gpt-4o"]["cached_input_per_mtok"], 0.5);
    assert_eq!(shown["pricing"]["my-local"]["output_per_mtok"], 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlay_is_shown_and_billed_then_reset() {
    let env = TestEnv::new();
    let file = env.write("model_prices.json", OVERLAY);
    let out = ok(
        &env,
        &["prices", "update", "--file", file.to_str().unwrap()],
    );
    assert!(
        out.contains("installed 2 model price(s)")
            && out.contains("1 added, 1 changed, 0 unchanged"),
        "{out}"
    );
    assert!(out.contains("1 entries skipped"), "{out}");
    assert!(overlay_path(&env).exists());

    let one = json(&env, &["prices", "show", "gpt-4o-2099-01-01", "--json"]);
    assert_eq!(one["source"], "overlay");
    assert_eq!(one["price"]["input_per_mtok"], 3.0);
    assert!(
        one["overlay"]["source"]
            .as_str()
            .unwrap()
            .ends_with("model_prices.json")
    );
    // the built-in dated entry is still the price of its own name
    let dated = json(&env, &["prices", "show", "gpt-4o-2024-08-06", "--json"]);
    assert_eq!(dated["source"], "built-in");

    let out = ok(&env, &["prices", "show", "--search", "acme"]);
    assert!(out.lines().next().unwrap().contains("overlay"), "{out}");
    assert!(
        out.contains("acme-fast-1") && out.contains("overlay"),
        "{out}"
    );
    assert!(out.contains("$2.0000") && out.contains("32,000"), "{out}");

    let doctor = ok(&env, &["doctor"]);
    assert!(
        doctor.contains("LiteLLM 1.109.1") && doctor.contains("prices-overlay.json"),
        "{doctor}"
    );

    // the proxy bills the new model at the overlay's price
    let session = env.start_run(&["run", "--mock"], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("acme-fast-1", false, "price me"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = env.requests();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let prompt: f64 = row["prompt_tokens"].parse().unwrap();
    let completion: f64 = row["completion_tokens"].parse().unwrap();
    let cached: f64 = row["cached_tokens"].parse().unwrap_or(0.0);
    assert!(prompt > 0.0 && completion > 0.0, "{row:?}");
    let want = ((prompt - cached) * 2.0 + cached * 0.5 + completion * 8.0) / 1e6;
    let cost: f64 = row["cost_usd"].parse().unwrap();
    assert!(
        (cost - want).abs() < 1e-12,
        "cost {cost} != {want}: {row:?}"
    );

    let out = ok(&env, &["prices", "reset"]);
    assert!(out.contains("removed the price overlay"), "{out}");
    assert!(!overlay_path(&env).exists());
    let one = json(&env, &["prices", "show", "gpt-4o", "--json"]);
    assert_eq!(one["source"], "built-in");
    assert!(one["overlay"].is_null());
    let out = smartproxy(&env, &["prices", "show", "acme-fast-1"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_bad_file_is_refused_and_nothing_is_stored() {
    let env = TestEnv::new();
    let cases = [
        (
            r#"{"acme-fast-1": {"mode": "chat", "input_cost_per_token": "2e-6", "output_cost_per_token": 8e-6}}"#,
            "model \"acme-fast-1\", key \"input_cost_per_token\": expected a number",
        ),
        (
            r#"{"acme-fast-1": {"mode": "chat", "input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6, "max_input_tokens": -5}}"#,
            "key \"max_input_tokens\": expected a token count",
        ),
        ("{\"acme\": ", "is not valid JSON"),
        ("[]", "expected a JSON object of models"),
    ];
    for (body, want) in cases {
        let file = env.write("bad.json", body);
        let out = smartproxy(
            &env,
            &["prices", "update", "--file", file.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{body}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&file.display().to_string()) && err.contains(want),
            "{body}: {err}"
        );
        assert!(!overlay_path(&env).exists(), "{body}: something was stored");
    }
    let out = smartproxy(&env, &["prices", "update", "--file", "no-such.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read no-such.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_installed_overlay_is_a_warning_for_the_proxy() {
    let env = TestEnv::new();
    let path = overlay_path(&env);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{ not json").unwrap();

    let session = env.start_run(&["run", "--mock"], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let out = session.finish(0);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("ignoring the price overlay") && err.contains("prices-overlay.json"),
        "{err}"
    );
    // priced from the built-in table
    assert_ne!(env.requests()[0]["cost_usd"], "NULL");

    let doctor = ok(&env, &["doctor"]);
    assert!(doctor.contains("the overlay is ignored"), "{doctor}");
    let out = smartproxy(&env, &["prices", "show"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("prices-overlay.json is not valid JSON"));
}

#[test]
fn update_downloads_from_a_url() {
    let env = TestEnv::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/model_prices.json",
        listener.local_addr().unwrap()
    );
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).unwrap();
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{OVERLAY}",
            OVERLAY.len()
        );
        stream.write_all(reply.as_bytes()).unwrap();
    });
    let out = ok(&env, &["prices", "update", "--url", &url]);
    server.join().unwrap();
    assert!(out.contains("1 added, 1 changed"), "{out}");
    let one = json(&env, &["prices", "show", "acme-fast-1", "--json"]);
    assert_eq!(one["overlay"]["source"], url.as_str());
}

/// A model priced by prompt size shows its ranges, and one with off-peak hours shows its
/// off-peak prices and when they apply.
#[test]
fn show_prints_prompt_ranges_and_off_peak_hours() {
    let env = TestEnv::new();
    let out = ok(&env, &["prices", "show", "dashscope/qwen3-max"]);
    assert!(out.contains("prompt 32,000-128,000 tokens"), "{out}");
    assert!(out.contains("$12.0000"), "{out}");
    let found = json(&env, &["prices", "show", "dashscope/qwen3-max", "--json"]);
    assert_eq!(found["ranges"].as_array().unwrap().len(), 3, "{found}");
    assert_eq!(found["ranges"][2]["up_to_tokens"], 252_000);

    let out = ok(&env, &["prices", "show", "deepseek/deepseek-v4-pro"]);
    assert!(out.contains("off-peak"), "{out}");
    assert!(
        out.contains("Mon-Fri 00:00-01:00, 04:00-06:00, 10:00-24:00; Sat-Sun all day (UTC)"),
        "{out}"
    );
    let found = json(
        &env,
        &["prices", "show", "deepseek/deepseek-v4-pro", "--json"],
    );
    assert_eq!(found["off_peak"]["input_per_mtok"], 0.66, "{found}");
}
