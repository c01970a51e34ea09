//! Tests for `validate`: every config error names its file, line and key and says how to fix it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn errors(text: &str) -> Vec<ConfigError> {
    from_yaml(text, Some(Path::new("sp.yaml")), &no_env)
        .unwrap_err()
        .0
}

#[test]
fn the_issue_example_loads() {
    let text = "providers:\n  - name: openai\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n    models: [gpt-4o-mini, gpt-4o]\nbudget:\n  session_usd: 5\npricing:\n  my-local-model: {input_per_mtok: 0.0, output_per_mtok: 0.0}\n";
    let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-test".to_owned());
    let config = from_yaml(text, None, &env).unwrap();
    assert_eq!(config.providers.len(), 1);
    assert_eq!(
        config.providers[0].api_key.as_ref().map(Secret::expose),
        Some("sk-test")
    );
    assert!(config.providers[0].serves("gpt-4o"));
    assert_eq!(config.budget.session_usd, Some(5.0));
    assert!(config.pricing.contains_key("my-local-model"));
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let errs = errors("providers:\n  - name: openai\n    kind: openai\n    base_ur: https://x\n");
    assert_eq!(errs.len(), 1);
    let e = &errs[0];
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("providers[0]"));
    assert!(e.message.contains("unknown field `base_ur`"), "{e}");
    assert!(e.to_string().starts_with("sp.yaml:4: "), "{e}");
}

#[test]
fn semantic_errors_are_located_and_all_reported() {
    let text = "listen: nowhere\nproviders:\n  - name: a\n    kind: openai\n    base_url: ftp://x\n  - name: a\n    kind: bogus\nbudget:\n  session_usd: -1\n";
    let errs = errors(text);
    let got: Vec<(Option<usize>, Option<&str>)> =
        errs.iter().map(|e| (e.line, e.key.as_deref())).collect();
    assert_eq!(
        got,
        vec![
            (Some(1), Some("listen")),
            (Some(5), Some("providers[0].base_url")),
            (Some(6), Some("providers[1].name")),
            (Some(7), Some("providers[1].kind")),
            (Some(9), Some("budget.session_usd")),
        ]
    );
}

#[test]
fn zero_config_comes_from_the_environment() {
    let env = |k: &str| match k {
        "OPENAI_API_KEY" => Some("sk-1".to_owned()),
        "DEEPSEEK_API_KEY" => Some("ds-1".to_owned()),
        _ => None,
    };
    let config = from_yaml("# nothing\n", None, &env).unwrap();
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["openai", "deepseek"]);
    assert!(config.providers[1].serves("deepseek-chat"));
    assert_eq!(config.default_provider, Some(0));
    assert!(
        config
            .key_variables()
            .contains(&"ANTHROPIC_API_KEY".to_owned())
    );
}

#[test]
fn environment_overrides_win_and_are_checked() {
    let env = |k: &str| match k {
        "SMARTPROXY_LISTEN" => Some("127.0.0.1:9999".to_owned()),
        "SMARTPROXY_BUDGET_SESSION_LIMIT_USD" => Some("2.5".to_owned()),
        _ => None,
    };
    let config = from_yaml(
        "listen: 127.0.0.1:1\nbudget: {session_usd: 9}\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(config.listen.port(), 9999);
    assert_eq!(config.budget.session_usd, Some(2.5));
    let bad = |k: &str| (k == "SMARTPROXY_BUDGET_SESSION_LIMIT_USD").then(|| "lots".to_owned());
    let errs = from_yaml("", None, &bad).unwrap_err().0;
    assert_eq!(
        errs[0].key.as_deref(),
        Some("SMARTPROXY_BUDGET_SESSION_LIMIT_USD")
    );
}

#[test]
fn budget_on_exceed_is_checked() {
    let errs = errors("budget:\n  on_exceed: sometimes\n");
    assert_eq!(errs[0].key.as_deref(), Some("budget.on_exceed"));
    assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
    let errs = errors("budget:\n  on_exceed: downgrade\n");
    assert!(errs[0].message.contains("downgrade_to"), "{}", errs[0]);
    let config = from_yaml("", None, &no_env).unwrap();
    assert_eq!(config.budget.on_exceed, super::super::OnExceed::Fit);
    let config = from_yaml(
        "budget: {on_exceed: downgrade, downgrade_to: gpt-4o-mini}\n",
        None,
        &no_env,
    )
    .unwrap();
    assert_eq!(config.budget.downgrade_to.as_deref(), Some("gpt-4o-mini"));
}

#[test]
fn passthrough_is_checked_and_brings_an_anthropic_provider() {
    let errs = errors("log_level: info\npassthrough: claude\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
    assert_eq!(errs[0].key.as_deref(), Some("passthrough"));
    assert!(errs[0].message.contains("`anthropic`"), "{}", errs[0]);
    let errs = errors("budget:\n  count_subscription: maybe\n");
    assert_eq!(errs[0].line, Some(2), "{}", errs[0]);

    // A subscription user has no key: a keyless `anthropic` provider is added.
    let config = from_yaml(
        "passthrough: anthropic\nbudget: {count_subscription: true}\n",
        None,
        &no_env,
    )
    .unwrap();
    assert!(config.passthrough && config.budget.count_subscription);
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["anthropic"]);
    assert!(!config.providers[0].missing_credential());
    assert!(config.providers[0].serves("claude-sonnet-4-5"));
    assert_eq!(config.default_provider, Some(0));

    // A configured `anthropic` provider is used as it is.
    let text = "passthrough: anthropic\nproviders:\n  - name: claude\n    kind: anthropic\n    api_key_env: K\n    models: [\"claude-*\"]\n";
    let config = from_yaml(text, None, &no_env).unwrap();
    assert_eq!(config.providers.len(), 1);
    assert!(!from_yaml("", None, &no_env).unwrap().passthrough);
}

#[test]
fn client_limits_default_read_and_refuse_zero() {
    let config = from_yaml("{}", None, &no_env).unwrap();
    assert_eq!(config.clients, super::super::ClientLimits::default());
    let text = "limits:\n  header_timeout_s: 2\n  body_timeout_s: 3\n  max_connections: 50\n";
    let config = from_yaml(text, None, &no_env).unwrap();
    assert_eq!(config.clients.header_timeout, Duration::from_secs(2));
    assert_eq!(config.clients.body_timeout, Duration::from_secs(3));
    assert_eq!(config.clients.max_connections, 50);

    let text = "limits:\n  header_timeout_s: 0\n  body_timeout_s: 0\n  max_connections: 0\n";
    let got: Vec<String> = errors(text).iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "sp.yaml:2: `limits.header_timeout_s`: must be more than 0 seconds",
            "sp.yaml:3: `limits.body_timeout_s`: must be more than 0 seconds",
            "sp.yaml:4: `limits.max_connections`: must be more than 0",
        ]
    );
}

#[test]
fn the_example_documents_the_client_limits_at_their_defaults() {
    let text = include_str!("../../../smartproxy.yaml.example");
    for key in ["header_timeout_s", "body_timeout_s", "max_connections"] {
        assert!(text.contains(&format!("  {key}: ")), "{key}");
    }
    let env = |name: &str| name.ends_with("_KEY").then(|| "x".to_owned());
    let config = from_yaml(text, None, &env).unwrap();
    assert_eq!(config.clients, super::super::ClientLimits::default());
}

#[test]
fn the_postgres_budget_keys_are_checked() {
    let errs = errors("budget:\n  daily_usd: 5\n  offline_grace_usd: -1\n");
    assert_eq!(errs[0].key.as_deref(), Some("budget.offline_grace_usd"));
    assert!(
        errs[0].to_string().starts_with("sp.yaml:3: "),
        "{}",
        errs[0]
    );
    let errs = errors("budget:\n  reservation_expiry_s: 0\n");
    assert_eq!(errs[0].key.as_deref(), Some("budget.reservation_expiry_s"));
    assert_eq!(errs[0].line, Some(2), "{}", errs[0]);
    let config = from_yaml(
        "budget: {offline_grace_usd: 0.5, reservation_expiry_s: 30}\n",
        None,
        &no_env,
    )
    .unwrap();
    assert_eq!(config.budget.offline_grace_usd, Some(0.5));
    assert_eq!(config.budget.reservation_expiry.as_secs(), 30);
    let config = from_yaml("", None, &no_env).unwrap();
    assert_eq!(config.budget.offline_grace_usd, None);
    assert_eq!(config.budget.reservation_expiry.as_secs(), 600);
}
