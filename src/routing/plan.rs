//! The routing decision, pure: model name + config -> the provider and upstream model to use, or
//! why there is none, with every skipped provider and its reason.

use std::fmt;

use crate::config::{Config, ProviderConfig};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Index into `Config::providers`.
    pub provider: usize,
    /// The model name to send upstream.
    pub upstream_model: String,
    /// Which rule chose it: `prefix` (`provider/model`), `model` (a provider lists it), `default`.
    pub route: &'static str,
    pub skipped: Vec<Skip>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub provider: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    Disabled,
    MissingCredential { env: String },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("disabled"),
            Self::MissingCredential { env } => write!(f, "missing credential (${env} is not set)"),
        }
    }
}

/// Why no provider can take a request.
#[derive(Debug, Clone, PartialEq)]
pub enum NoRoute {
    NoProviders,
    NoneServes { model: String, skipped: Vec<Skip> },
}

impl fmt::Display for NoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProviders => f.write_str(
                "no provider is configured: set OPENAI_API_KEY (or ANTHROPIC_API_KEY, DEEPSEEK_API_KEY), \
                 add providers to smartproxy.yaml, or use `smartproxy run --mock` to work offline",
            ),
            Self::NoneServes { model, skipped } if skipped.is_empty() => {
                write!(f, "no configured provider serves model `{model}`")
            }
            Self::NoneServes { model, skipped } => {
                write!(f, "no usable provider for model `{model}`: ")?;
                for (i, skip) in skipped.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{} skipped, {}", skip.provider, skip.reason)?;
                }
                Ok(())
            }
        }
    }
}

fn usable(provider: &ProviderConfig) -> Result<(), SkipReason> {
    if !provider.enabled {
        return Err(SkipReason::Disabled);
    }
    if provider.missing_credential() {
        return Err(SkipReason::MissingCredential {
            env: provider.api_key_env.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

/// Decides where a request for `model` goes.
pub fn plan(config: &Config, model: &str) -> Result<Decision, NoRoute> {
    if config.providers.is_empty() {
        return Err(NoRoute::NoProviders);
    }
    let mut skipped = Vec::new();
    let consider =
        |index: usize, upstream_model: &str, route: &'static str, skipped: &mut Vec<Skip>| {
            let provider = &config.providers[index];
            match usable(provider) {
                Ok(()) => Some(Decision {
                    provider: index,
                    upstream_model: upstream_model.to_owned(),
                    route,
                    skipped: Vec::new(),
                }),
                Err(reason) => {
                    if !skipped.iter().any(|s: &Skip| s.provider == provider.name) {
                        skipped.push(Skip {
                            provider: provider.name.clone(),
                            reason,
                        });
                    }
                    None
                }
            }
        };
    // `provider/model` names a provider explicitly.
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(index) = config.providers.iter().position(|p| p.name == prefix) {
            if let Some(decision) = consider(index, rest, "prefix", &mut skipped) {
                return Ok(with_skips(decision, skipped));
            }
        }
    }
    for (index, provider) in config.providers.iter().enumerate() {
        if provider.serves(model) {
            if let Some(decision) = consider(index, model, "model", &mut skipped) {
                return Ok(with_skips(decision, skipped));
            }
        }
    }
    if let Some(index) = config.default_provider {
        if let Some(decision) = consider(index, model, "default", &mut skipped) {
            return Ok(with_skips(decision, skipped));
        }
    }
    Err(NoRoute::NoneServes {
        model: model.to_owned(),
        skipped,
    })
}

fn with_skips(mut decision: Decision, skipped: Vec<Skip>) -> Decision {
    decision.skipped = skipped;
    decision
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::from_yaml;

    const YAML: &str = "
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini, gpt-4o]
  - name: deepseek
    kind: openai
    base_url: https://api.deepseek.com/v1
    api_key_env: DEEPSEEK_API_KEY
    models: [deepseek-*]
  - name: local
    kind: openai
    base_url: http://127.0.0.1:11434/v1
    models: [llama3]
  - name: off
    kind: mock
    enabled: false
default_provider: local
";

    fn config() -> Config {
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk".to_owned());
        from_yaml(YAML, None, &env).unwrap()
    }

    #[test]
    fn decisions() {
        let config = config();
        // (model, provider, upstream model, route, skipped)
        let cases = [
            ("gpt-4o", "openai", "gpt-4o", "model", vec![]),
            ("openai/gpt-4o", "openai", "gpt-4o", "prefix", vec![]),
            ("llama3", "local", "llama3", "model", vec![]),
            // The disabled mock provider serves every model; it is skipped with its reason.
            ("mystery", "local", "mystery", "default", vec!["off"]),
            (
                "deepseek-chat",
                "local",
                "deepseek-chat",
                "default",
                vec!["deepseek", "off"],
            ),
            ("off/x", "local", "off/x", "default", vec!["off"]),
        ];
        for (model, provider, upstream, route, skipped) in cases {
            let d = plan(&config, model).unwrap();
            assert_eq!(config.providers[d.provider].name, provider, "{model}");
            assert_eq!(d.upstream_model, upstream, "{model}");
            assert_eq!(d.route, route, "{model}");
            let names: Vec<&str> = d.skipped.iter().map(|s| s.provider.as_str()).collect();
            assert_eq!(names, skipped, "{model}");
        }
    }

    #[test]
    fn no_route_explains_itself() {
        let mut config = config();
        config.default_provider = None;
        let err = plan(&config, "deepseek-chat").unwrap_err();
        assert!(err.to_string().contains("DEEPSEEK_API_KEY"), "{err}");
        config.providers.clear();
        assert_eq!(plan(&config, "x").unwrap_err(), NoRoute::NoProviders);
    }
}
