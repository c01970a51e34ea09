//! Validation of the routing part of the config: `servers`, `aliases`, `routes`, `model_map`,
//! SmolRouter's `DEFAULT_UPSTREAM` and `MODEL_MAP`, `resilience` and `transforms`. Servers and
//! upstream URLs become providers of their own, so routing deals in one kind of target.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Validator;
use crate::config::raw::{RawConfig, RawInstance, RawServer};
use crate::config::{
    Matcher, ModelMatch, ProviderConfig, ProviderKind, Resilience, Route, Target, Timeouts,
    TransformConfig,
};

pub(super) struct Routing {
    pub model_map: HashMap<String, String>,
    pub aliases: BTreeMap<String, Vec<Target>>,
    pub routes: Vec<Route>,
    /// The provider made from `DEFAULT_UPSTREAM`, which takes unmatched models.
    pub default_upstream: Option<usize>,
}

/// SmolRouter's upstreams are server roots (`http://host:8000`); the OpenAI API lives under `/v1`.
fn openai_base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.path() == "/" || parsed.path().is_empty() => format!("{url}/v1"),
        _ => url.to_owned(),
    }
}

fn url_provider(
    name: String,
    url: &str,
    api_key_env: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> ProviderConfig {
    let api_key = api_key_env
        .as_deref()
        .and_then(env)
        .filter(|k| !k.trim().is_empty())
        .map(|k| crate::config::Secret::new(k.trim().to_owned()));
    ProviderConfig {
        name,
        kind: ProviderKind::OpenAi,
        base_url: openai_base(url),
        api_key_env,
        api_key,
        models: Vec::new(),
        context_window: None,
        capabilities: Vec::new(),
        timeouts: Timeouts::default(),
        enabled: true,
        default_max_tokens: crate::config::DEFAULT_MAX_TOKENS,
        ca_bundle: None,
        responses_api: true,
    }
}

fn valid_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && reqwest::Url::parse(url.trim()).is_ok()
}

impl Validator<'_> {
    pub(super) fn routing(
        &mut self,
        raw: &mut RawConfig,
        providers: &mut Vec<ProviderConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Routing {
        for (name, server) in std::mem::take(&mut raw.servers) {
            let (url, key_env) = match server {
                RawServer::Url(url) => (url, None),
                RawServer::Full { url, api_key_env } => (url, api_key_env),
            };
            let key = format!("servers.{name}");
            if providers.iter().any(|p| p.name == name) {
                self.error(&key, format!("`{name}` is already the name of a provider"));
            } else if !valid_url(&url) {
                self.error(&key, format!("`{url}` is not an http:// or https:// URL"));
            } else {
                providers.push(url_provider(name, &url, key_env, env));
            }
        }

        let default_upstream = env("DEFAULT_UPSTREAM")
            .filter(|u| !u.trim().is_empty())
            .and_then(|url| {
                if valid_url(&url) {
                    providers.push(url_provider("default-upstream".to_owned(), &url, None, env));
                    Some(providers.len() - 1)
                } else {
                    self.env_error(
                        "DEFAULT_UPSTREAM",
                        format!("`{url}` is not an http:// or https:// URL"),
                    );
                    None
                }
            });

        let mut model_map: HashMap<String, String> =
            std::mem::take(&mut raw.model_map).into_iter().collect();
        if let Some(text) = env("MODEL_MAP").filter(|t| !t.trim().is_empty()) {
            match serde_json::from_str::<HashMap<String, String>>(&text) {
                Ok(map) => model_map.extend(map),
                Err(e) => self.env_error(
                    "MODEL_MAP",
                    format!("not a JSON object of model names: {e}"),
                ),
            }
        }

        let mut aliases = BTreeMap::new();
        for (name, alias) in std::mem::take(&mut raw.aliases) {
            let instances = match alias {
                crate::config::raw::RawAlias::List(list)
                | crate::config::raw::RawAlias::Instances { instances: list } => list,
            };
            let key = format!("aliases.{name}");
            if instances.is_empty() {
                self.error(
                    &key,
                    "an alias needs at least one instance, e.g. `openai/gpt-4o-mini`",
                );
                continue;
            }
            let targets: Vec<Target> = instances
                .iter()
                .enumerate()
                .filter_map(|(i, inst)| self.target(&format!("{key}[{i}]"), inst, providers))
                .collect();
            aliases.insert(name, targets);
        }

        let mut routes = Vec::new();
        for (i, rule) in std::mem::take(&mut raw.routes).into_iter().enumerate() {
            let key = format!("routes[{i}]");
            let matcher = self.matcher(&key, &rule.matcher);
            let mut targets: Vec<Target> = rule
                .route
                .targets
                .iter()
                .enumerate()
                .filter_map(|(j, inst)| {
                    self.target(&format!("{key}.route.targets[{j}]"), inst, providers)
                })
                .collect();
            if let Some(url) = &rule.route.upstream {
                if valid_url(url) {
                    let base = openai_base(url);
                    let index = match providers.iter().position(|p| p.base_url == base) {
                        Some(index) => index,
                        None => {
                            let name = reqwest::Url::parse(url.trim())
                                .ok()
                                .and_then(|u| {
                                    u.host_str().map(|h| {
                                        format!("{h}:{}", u.port_or_known_default().unwrap_or(80))
                                    })
                                })
                                .unwrap_or_else(|| url.clone());
                            providers.push(url_provider(name, url, None, env));
                            providers.len() - 1
                        }
                    };
                    targets.push(Target {
                        provider: index,
                        model: None,
                    });
                } else {
                    self.error(
                        &format!("{key}.route.upstream"),
                        format!("`{url}` is not an http:// or https:// URL"),
                    );
                }
            }
            if let Some(model) = &rule.route.model {
                for target in &mut targets {
                    target.model.get_or_insert_with(|| model.clone());
                }
                if targets.is_empty() {
                    // A model rewrite alone: whoever serves the new model takes it, at plan time.
                    targets.push(Target {
                        provider: usize::MAX,
                        model: Some(model.clone()),
                    });
                }
            }
            if targets.is_empty() {
                self.error(
                    &format!("{key}.route"),
                    "a route needs `targets`, `upstream` or `model`",
                );
                continue;
            }
            routes.push(Route {
                label: rule.name.unwrap_or_else(|| format!("rule {}", i + 1)),
                matcher,
                targets,
            });
        }
        Routing {
            model_map,
            aliases,
            routes,
            default_upstream,
        }
    }

    /// Resolves `provider/model` or `{server, model}` to a target, naming what is wrong if it
    /// cannot.
    fn target(
        &mut self,
        key: &str,
        instance: &RawInstance,
        providers: &[ProviderConfig],
    ) -> Option<Target> {
        let (provider, model) = match instance {
            RawInstance::Short(text) => match text.split_once('/') {
                Some((provider, model)) => (provider.trim(), Some(model.trim())),
                None => (text.trim(), None),
            },
            RawInstance::Full { server, model } => (server.trim(), model.as_deref().map(str::trim)),
        };
        match providers.iter().position(|p| p.name == provider) {
            Some(index) => Some(Target {
                provider: index,
                model: model.filter(|m| !m.is_empty()).map(str::to_owned),
            }),
            None => {
                let known: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
                self.error(
                    key,
                    format!(
                        "`{provider}` is neither a provider nor a server; write targets as `provider/model` (known: {})",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                );
                None
            }
        }
    }

    fn matcher(&mut self, key: &str, raw: &crate::config::raw::RawMatch) -> Matcher {
        let model = raw.model.as_deref().map(str::trim).and_then(|m| {
            match m
                .strip_prefix('/')
                .and_then(|r| r.strip_suffix('/'))
                .filter(|r| !r.is_empty())
            {
                Some(pattern) => match regex::Regex::new(pattern) {
                    Ok(re) => Some(ModelMatch::Regex(re)),
                    Err(e) => {
                        self.error(&format!("{key}.match.model"), format!("invalid regex: {e}"));
                        None
                    }
                },
                None => Some(ModelMatch::Exact(m.to_owned())),
            }
        });
        let source = raw.source_host.as_deref().map(str::trim).and_then(|host| {
            let parsed = host
                .parse::<ipnet::IpNet>()
                .or_else(|_| host.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => Some(net),
                Err(_) => {
                    self.error(
                        &format!("{key}.match.source_host"),
                        format!("`{host}` is not an IP address or CIDR range"),
                    );
                    None
                }
            }
        });
        if let (Some(min), Some(max)) = (raw.min_tokens, raw.max_tokens)
            && min > max
        {
            self.error(
                &format!("{key}.match.min_tokens"),
                "min_tokens is larger than max_tokens",
            );
        }
        Matcher {
            model,
            source,
            stream: raw.stream,
            tools: raw.tools,
            images: raw.images,
            min_tokens: raw.min_tokens,
            max_tokens: raw.max_tokens,
            tag: raw.tag.clone(),
        }
    }

    pub(super) fn resilience(&mut self, raw: &RawConfig) -> Resilience {
        let d = Resilience::default();
        let r = &raw.resilience;
        let max_attempts = match r.max_attempts {
            Some(0) => {
                self.error(
                    "resilience.max_attempts",
                    "must be at least 1 (the first attempt counts)",
                );
                d.max_attempts
            }
            Some(n) => n.min(10),
            None => d.max_attempts,
        };
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        Resilience {
            max_attempts,
            backoff: ms(r.backoff_ms, d.backoff),
            max_backoff: ms(r.max_backoff_ms, d.max_backoff),
            retry_after_cap: ms(r.retry_after_cap_ms, d.retry_after_cap),
            breaker_failures: r.breaker_failures.unwrap_or(d.breaker_failures).max(1),
            breaker_cooldown: ms(r.breaker_cooldown_ms, d.breaker_cooldown),
            deadline: match r.deadline_ms {
                Some(0) => {
                    self.error(
                        "resilience.deadline_ms",
                        "must be more than 0 (milliseconds a request may wait for a provider in all)",
                    );
                    d.deadline
                }
                v => ms(v, d.deadline),
            },
        }
    }

    /// `transforms:` in the file, overridden by SmolRouter's variables when they are set.
    pub(super) fn transforms(
        &mut self,
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> TransformConfig {
        let mut flag =
            |var: &str, configured: Option<bool>| match env(var).as_deref().map(str::trim) {
                Some("1" | "true" | "TRUE" | "True" | "yes" | "on") => true,
                Some("0" | "false" | "FALSE" | "False" | "no" | "off" | "") => false,
                Some(other) => {
                    self.env_error(var, format!("`{other}` is not true or false"));
                    configured.unwrap_or(false)
                }
                None => configured.unwrap_or(false),
            };
        TransformConfig {
            strip_thinking: flag("STRIP_THINKING", raw.transforms.strip_thinking),
            unwrap_json_fence: flag("STRIP_JSON_MARKDOWN", raw.transforms.unwrap_json_fence),
            disable_thinking: flag("DISABLE_THINKING", raw.transforms.disable_thinking),
        }
    }
}
