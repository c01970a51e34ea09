//! Table tests for `plan`: one config, many requests, every route and skip reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::from_yaml;

const YAML: &str = r#"
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini, gpt-4o, "gpt-*"]
  - name: backup
    kind: openai
    base_url: https://backup.example/v1
    models: [gpt-4o-mini]
    capabilities: [json]
  - name: deepseek
    kind: openai
    base_url: https://api.deepseek.com/v1
    api_key_env: DEEPSEEK_API_KEY
    models: ["deepseek-*"]
  - name: tiny
    kind: openai
    base_url: http://127.0.0.1:9/v1
    models: [tiny-model]
    context_window: 100
  - name: off
    kind: mock
    models: [off-model]
    enabled: false
servers:
  fast-box: "http://10.0.0.5:8000"
aliases:
  smart: [openai/gpt-4o, backup/gpt-4o-mini]
  coder:
    instances:
      - fast-box/llama3-8b
      - {server: openai, model: gpt-4o-mini}
model_map:
  gpt-3.5-turbo: gpt-4o-mini
routes:
  - name: small-models
    match: {model: "/.*-1\\.5b$/"}
    route: {upstream: "http://gpu-server:8000"}
  - match: {source_host: 10.0.1.0/24}
    route: {targets: [fast-box/dev-model]}
  - name: vision
    match: {images: true}
    route: {targets: [openai/gpt-4o]}
  - name: nightly
    match: {tag: nightly, stream: false}
    route: {targets: [backup]}
  - name: huge
    match: {min_tokens: 50000}
    route: {model: gpt-4o}
  - match: {model: gpt-4}
    route: {upstream: "http://claude-server:8000", model: claude-3-opus}
default_provider: openai
"#;

fn config() -> Config {
    let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk".to_owned());
    from_yaml(YAML, None, &env).unwrap()
}

fn facts(model: &str) -> Facts<'_> {
    Facts {
        model,
        prompt_tokens: 10,
        ..Facts::default()
    }
}

fn targets(config: &Config, plan: &Plan) -> Vec<String> {
    plan.targets
        .iter()
        .map(|c| format!("{}/{}", config.providers[c.provider].name, c.model))
        .collect()
}

fn skips(plan_skipped: &[Skip]) -> Vec<String> {
    plan_skipped
        .iter()
        .map(|s| format!("{}/{}: {}", s.provider, s.model, s.reason))
        .collect()
}

#[test]
fn routes_and_targets() {
    let config = config();
    let closed = |_: &str, _: &str| false;
    let ip = |s: &str| Some(s.parse().unwrap());
    // (facts, route, targets)
    let cases: Vec<(Facts<'_>, &str, Vec<&str>)> = vec![
        (
            facts("gpt-4o-mini"),
            "model",
            vec!["openai/gpt-4o-mini", "backup/gpt-4o-mini"],
        ),
        (
            facts("gpt-3.5-turbo"),
            "model",
            vec!["openai/gpt-4o-mini", "backup/gpt-4o-mini"],
        ),
        (
            facts("smart"),
            "alias:smart",
            vec!["openai/gpt-4o", "backup/gpt-4o-mini"],
        ),
        (
            facts("coder"),
            "alias:coder",
            vec!["fast-box/llama3-8b", "openai/gpt-4o-mini"],
        ),
        (facts("openai/gpt-4.1"), "prefix", vec!["openai/gpt-4.1"]),
        (
            facts("qwen-1.5b"),
            "rule:small-models",
            vec!["gpu-server:8000/qwen-1.5b"],
        ),
        (
            Facts {
                source: ip("10.0.1.7"),
                ..facts("llama3")
            },
            "rule:rule 2",
            vec!["fast-box/dev-model"],
        ),
        (
            Facts {
                source: ip("10.0.2.7"),
                ..facts("llama3")
            },
            "default",
            vec!["openai/llama3"],
        ),
        (
            Facts {
                images: true,
                ..facts("llama3")
            },
            "rule:vision",
            vec!["openai/gpt-4o"],
        ),
        (
            Facts {
                tag: Some("nightly"),
                ..facts("llama3")
            },
            "rule:nightly",
            vec!["backup/llama3"],
        ),
        (
            Facts {
                tag: Some("nightly"),
                stream: true,
                ..facts("llama3")
            },
            "default",
            vec!["openai/llama3"],
        ),
        (
            Facts {
                prompt_tokens: 60_000,
                ..facts("llama3")
            },
            "rule:huge",
            vec!["openai/gpt-4o"],
        ),
        (
            facts("gpt-4"),
            "rule:rule 6",
            vec!["claude-server:8000/claude-3-opus"],
        ),
        (facts("gpt-5-nano"), "pattern", vec!["openai/gpt-5-nano"]),
        (
            facts("something-else"),
            "default",
            vec!["openai/something-else"],
        ),
    ];
    for (facts, route, expected) in cases {
        let model = facts.model;
        let plan = super::plan(&config, &facts, &closed).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(plan.route, route, "{model}: {:?}", plan.trail);
        assert_eq!(targets(&config, &plan), expected, "{model}");
    }
}

#[test]
fn every_skip_has_its_reason() {
    let config = config();
    let open_for_openai = |provider: &str, _: &str| provider == "openai";
    let plan = super::plan(&config, &facts("smart"), &open_for_openai).unwrap();
    assert_eq!(targets(&config, &plan), vec!["backup/gpt-4o-mini"]);
    assert_eq!(skips(&plan.skipped), vec!["openai/gpt-4o: circuit open"]);

    let tools = Facts {
        tools: true,
        ..facts("gpt-4o-mini")
    };
    let err = super::plan(
        &config,
        &Facts {
            json: true,
            ..tools.clone()
        },
        &open_for_openai,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("backup/gpt-4o-mini skipped, missing capability `tools`"),
        "{err}"
    );

    // deepseek has no key: skipped, and the default takes the request.
    let plan = super::plan(&config, &facts("deepseek-chat"), &|_, _| false).unwrap();
    assert_eq!(plan.route, "default");
    assert_eq!(
        skips(&plan.skipped),
        vec!["deepseek/deepseek-chat: missing credential ($DEEPSEEK_API_KEY is not set)"]
    );

    let big = Facts {
        prompt_tokens: 500,
        ..facts("tiny-model")
    };
    let plan = super::plan(&config, &big, &|_, _| false).unwrap();
    assert_eq!(
        skips(&plan.skipped),
        vec!["tiny/tiny-model: too small (context window 100 tokens, request needs about 500)"]
    );
    assert_eq!(plan.route, "default");

    let err = super::plan(&config, &facts("off/x"), &|_, _| false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no usable target for model `off/x`: off/x skipped, disabled"
    );
}

#[test]
fn smolrouter_routes_yaml_loads_unchanged() {
    let yaml = r#"
servers:
  fast-box: "http://192.168.1.100:8000"
  slow-box: "http://192.168.1.101:8000"
  gpu-server: "http://192.168.1.102:8000"
aliases:
  git-commit-model:
    instances:
      - "fast-box/llama3-8b"
      - "slow-box/llama3-3b"
  coding-assistant:
    instances:
      - server: "gpu-server"
        model: "codellama-34b"
      - server: "fast-box"
        model: "llama3-8b"
routes:
  - match:
      model: "/.*-1.5b/"
    route:
      upstream: "http://gpu-server:8000"
  - match:
      source_host: "10.0.1.100"
    route:
      upstream: "http://dev-server:8000"
  - match:
      model: "gpt-4"
    route:
      upstream: "http://claude-server:8000"
      model: "claude-3-opus"
"#;
    let env = |k: &str| (k == "DEFAULT_UPSTREAM").then(|| "http://localhost:8000".to_owned());
    let config = from_yaml(yaml, None, &env).unwrap();
    let closed = |_: &str, _: &str| false;
    let plan = super::plan(&config, &facts("git-commit-model"), &closed).unwrap();
    assert_eq!(
        targets(&config, &plan),
        vec!["fast-box/llama3-8b", "slow-box/llama3-3b"]
    );
    assert_eq!(
        config.providers[plan.targets[0].provider].base_url,
        "http://192.168.1.100:8000/v1"
    );
    let plan = super::plan(&config, &facts("coding-assistant"), &closed).unwrap();
    assert_eq!(
        targets(&config, &plan),
        vec!["gpu-server/codellama-34b", "fast-box/llama3-8b"]
    );
    let plan = super::plan(&config, &facts("gpt-4"), &closed).unwrap();
    assert_eq!(
        targets(&config, &plan),
        vec!["claude-server:8000/claude-3-opus"]
    );
    let plan = super::plan(
        &config,
        &Facts {
            source: Some("10.0.1.100".parse().unwrap()),
            ..facts("x")
        },
        &closed,
    )
    .unwrap();
    assert_eq!(targets(&config, &plan), vec!["dev-server:8000/x"]);
    let plan = super::plan(&config, &facts("llama3"), &closed).unwrap();
    assert_eq!(plan.route, "default");
    assert_eq!(targets(&config, &plan), vec!["default-upstream/llama3"]);
    assert_eq!(
        config.providers[plan.targets[0].provider].base_url,
        "http://localhost:8000/v1"
    );
}

#[test]
fn no_providers_at_all() {
    let mut config = config();
    config.providers.clear();
    assert_eq!(
        super::plan(&config, &facts("x"), &|_, _| false).unwrap_err(),
        NoRoute::NoProviders
    );
}

#[test]
fn skips_are_described_on_one_line() {
    assert_eq!(describe_skips(&[]), None);
    let skips = [
        Skip {
            provider: "a".to_owned(),
            model: "gpt-4o".to_owned(),
            reason: SkipReason::CircuitOpen,
        },
        Skip {
            provider: "b".to_owned(),
            model: "claude".to_owned(),
            reason: SkipReason::MissingCredential {
                env: "B_KEY".to_owned(),
            },
        },
    ];
    assert_eq!(
        describe_skips(&skips).as_deref(),
        Some("a/gpt-4o: circuit open; b/claude: missing credential ($B_KEY is not set)")
    );
}
