//! The routing decision, pure: request facts + config + circuit state -> the ordered targets to
//! try, every skipped target with its reason, and the trail of steps that led there.
//!
//! Order, as in the seed: `model_map`, then aliases, then `provider/model`, then providers that
//! list the exact model, then `routes:` top to bottom, then providers whose model patterns
//! (`gpt-*`) match, then the default provider.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Config, ProviderConfig, Target};
use crate::pricing;

/// What routing looks at in a request.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub tools: bool,
    pub images: bool,
    pub json: bool,
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    pub source: Option<IpAddr>,
    pub tag: Option<&'a str>,
}

/// One target to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub provider: usize,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub provider: String,
    pub model: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    Disabled,
    CircuitOpen,
    MissingCredential {
        env: String,
    },
    TooSmall {
        window: u32,
        needed: u64,
    },
    MissingCapability(&'static str),
    /// Left out after planning because the request's format needs what the target lacks
    /// (embeddings on an OpenAI-compatible API, a pass-through credential on Anthropic).
    Unsuited(&'static str),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disabled => f.write_str("disabled"),
            Self::CircuitOpen => f.write_str("circuit open"),
            Self::MissingCredential { env } => write!(f, "missing credential (${env} is not set)"),
            Self::TooSmall { window, needed } => {
                write!(
                    f,
                    "too small (context window {window} tokens, request needs about {needed})"
                )
            }
            Self::MissingCapability(cap) => write!(f, "missing capability `{cap}`"),
            Self::Unsuited(why) => f.write_str(why),
        }
    }
}

/// The skipped targets as one line for the ledger: `a/gpt-4o: circuit open; b/x: disabled`;
/// None when nothing was skipped.
pub fn describe_skips(skipped: &[Skip]) -> Option<String> {
    (!skipped.is_empty()).then(|| {
        skipped
            .iter()
            .map(|s| format!("{}/{}: {}", s.provider, s.model, s.reason))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The model after `model_map`.
    pub model: String,
    /// Which step chose the targets: `alias:NAME`, `prefix`, `model`, `rule:LABEL`, `pattern`,
    /// `default`.
    pub route: String,
    pub targets: Vec<Candidate>,
    pub skipped: Vec<Skip>,
    /// Human-readable steps, for `route explain`.
    pub trail: Vec<String>,
}

/// Why no target can take a request.
#[derive(Debug, Clone, PartialEq)]
pub enum NoRoute {
    NoProviders,
    NoneServes {
        model: String,
        route: Option<String>,
        skipped: Vec<Skip>,
        /// The steps taken, for `route explain`.
        trail: Vec<String>,
    },
}

impl fmt::Display for NoRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProviders => f.write_str(
                "no provider is configured: set OPENAI_API_KEY (or ANTHROPIC_API_KEY, DEEPSEEK_API_KEY), \
                 add providers to smartproxy.yaml, or use `smartproxy run --mock` to work offline",
            ),
            Self::NoneServes { model, skipped, .. } if skipped.is_empty() => {
                write!(f, "no configured provider serves model `{model}`")
            }
            Self::NoneServes { model, skipped, .. } => {
                write!(f, "no usable target for model `{model}`: ")?;
                for (i, skip) in skipped.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{}/{} skipped, {}", skip.provider, skip.model, skip.reason)?;
                }
                Ok(())
            }
        }
    }
}

/// Decides where a request goes. `is_open(provider, model)` tells whether a target's circuit is
/// open right now.
pub fn plan(
    config: &Config,
    facts: &Facts<'_>,
    is_open: &dyn Fn(&str, &str) -> bool,
) -> Result<Plan, NoRoute> {
    decide(config, facts, is_open, false)
}

/// Like `plan`, with the human-readable trail of steps filled in (`route explain`); the request
/// path skips writing it.
pub fn explain(
    config: &Config,
    facts: &Facts<'_>,
    is_open: &dyn Fn(&str, &str) -> bool,
) -> Result<Plan, NoRoute> {
    decide(config, facts, is_open, true)
}

/// The steps taken, written only when asked for.
struct Trail {
    on: bool,
    steps: Vec<String>,
}

impl Trail {
    fn note(&mut self, step: impl FnOnce() -> String) {
        if self.on {
            self.steps.push(step());
        }
    }
}

fn decide(
    config: &Config,
    facts: &Facts<'_>,
    is_open: &dyn Fn(&str, &str) -> bool,
    explain: bool,
) -> Result<Plan, NoRoute> {
    if config.providers.is_empty() {
        return Err(NoRoute::NoProviders);
    }
    let mut trail = Trail {
        on: explain,
        steps: Vec::new(),
    };
    let model = match config.model_map.get(facts.model) {
        Some(mapped) => {
            trail.note(|| format!("model_map: `{}` -> `{mapped}`", facts.model));
            mapped.clone()
        }
        None => facts.model.to_owned(),
    };
    let mut d = Decision {
        config,
        facts,
        is_open,
        model,
        skipped: Vec::new(),
        trail,
    };
    let model = d.model.clone();

    if let Some(targets) = config.aliases.get(&model) {
        d.trail
            .note(|| format!("`{model}` is an alias with {} instance(s)", targets.len()));
        let kept = d.filter(resolve(config, targets, &model));
        return d.done(format!("alias:{model}"), kept);
    }
    if let Some((prefix, rest)) = model.split_once('/')
        && let Some(index) = config.providers.iter().position(|p| p.name == prefix)
    {
        d.trail
            .note(|| format!("`{prefix}/` names provider {prefix}"));
        let kept = d.filter(vec![Candidate {
            provider: index,
            model: rest.to_owned(),
        }]);
        return d.done("prefix".to_owned(), kept);
    }
    let exact = serving(config, &model, true);
    if !exact.is_empty() {
        d.trail
            .note(|| format!("{} provider(s) list `{model}` exactly", exact.len()));
        let kept = d.filter(exact);
        if !kept.is_empty() {
            return d.done("model".to_owned(), kept);
        }
        d.trail
            .note(|| "none of them is usable; going on".to_owned());
    }
    for route in &config.routes {
        if let Some(why_not) = mismatch(&route.matcher, &model, facts) {
            d.trail
                .note(|| format!("{}: no match ({why_not})", route.label));
            continue;
        }
        d.trail.note(|| format!("{}: matches", route.label));
        let kept = d.filter(rule_candidates(config, &route.targets, &model));
        return d.done(format!("rule:{}", route.label), kept);
    }
    let patterns = serving(config, &model, false);
    if !patterns.is_empty() {
        d.trail
            .note(|| format!("{} provider(s) match `{model}` by pattern", patterns.len()));
        let kept = d.filter(patterns);
        if !kept.is_empty() {
            return d.done("pattern".to_owned(), kept);
        }
        d.trail
            .note(|| "none of them is usable; going on".to_owned());
    }
    match config.default_provider {
        Some(index) => {
            d.trail
                .note(|| format!("default provider {}", config.providers[index].name));
            let kept = d.filter(vec![Candidate {
                provider: index,
                model,
            }]);
            d.done("default".to_owned(), kept)
        }
        None => Err(NoRoute::NoneServes {
            model,
            route: None,
            skipped: d.skipped,
            trail: d.trail.steps,
        }),
    }
}

/// A decision under way: what it looks at, and what it has passed over and noted so far.
struct Decision<'a> {
    config: &'a Config,
    facts: &'a Facts<'a>,
    is_open: &'a dyn Fn(&str, &str) -> bool,
    /// The model after `model_map`.
    model: String,
    skipped: Vec<Skip>,
    trail: Trail,
}

impl Decision<'_> {
    /// The usable targets of `targets`; the others go on the skipped list with their reason.
    fn filter(&mut self, targets: Vec<Candidate>) -> Vec<Candidate> {
        let providers = &self.config.providers;
        targets
            .into_iter()
            .filter(
                |c| match usable(&providers[c.provider], &c.model, self.facts, self.is_open) {
                    Ok(()) => true,
                    Err(reason) => {
                        let skip = Skip {
                            provider: providers[c.provider].name.clone(),
                            model: c.model.clone(),
                            reason,
                        };
                        // A target met again in a later step is reported once.
                        if !self.skipped.contains(&skip) {
                            self.skipped.push(skip);
                        }
                        false
                    }
                },
            )
            .collect()
    }

    /// The plan of the step `route` that chose `targets`, or why none of them serves.
    fn done(mut self, route: String, mut targets: Vec<Candidate>) -> Result<Plan, NoRoute> {
        // The same target twice (listed again, or matched exactly and by pattern) is tried once.
        let mut seen = Vec::with_capacity(targets.len());
        targets.retain(|c| {
            let fresh = !seen.contains(c);
            if fresh {
                seen.push(c.clone());
            }
            fresh
        });
        if targets.is_empty() {
            return Err(NoRoute::NoneServes {
                model: self.model,
                route: Some(route),
                skipped: self.skipped,
                trail: self.trail.steps,
            });
        }
        let providers = &self.config.providers;
        self.trail.note(|| {
            format!(
                "targets in order: {}",
                targets
                    .iter()
                    .map(|c| format!("{}/{}", providers[c.provider].name, c.model))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        Ok(Plan {
            model: self.model,
            route,
            targets,
            skipped: self.skipped,
            trail: self.trail.steps,
        })
    }
}

/// The targets of a matching `routes:` rule for `model`.
fn rule_candidates(config: &Config, targets: &[Target], model: &str) -> Vec<Candidate> {
    targets
        .iter()
        .flat_map(|t| match t.provider {
            // A rule that only rewrites the model: whoever serves the new model takes it.
            usize::MAX => {
                let rewritten = t.model.clone().unwrap_or_else(|| model.to_owned());
                let mut found = serving(config, &rewritten, true);
                found.extend(serving(config, &rewritten, false));
                if found.is_empty() {
                    found.extend(config.default_provider.map(|p| Candidate {
                        provider: p,
                        model: rewritten.clone(),
                    }));
                }
                found
            }
            provider => vec![Candidate {
                provider,
                model: t.model.clone().unwrap_or_else(|| model.to_owned()),
            }],
        })
        .collect()
}

fn resolve(config: &Config, targets: &[Target], model: &str) -> Vec<Candidate> {
    targets
        .iter()
        .filter(|t| t.provider < config.providers.len())
        .map(|t| Candidate {
            provider: t.provider,
            model: t.model.clone().unwrap_or_else(|| model.to_owned()),
        })
        .collect()
}

/// Providers that list `model`: exactly, or by a `*` pattern.
fn serving(config: &Config, model: &str, exact: bool) -> Vec<Candidate> {
    config
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.models.iter().any(|m| match (exact, m.exact()) {
                (true, Some(name)) => name == model,
                (false, None) => m.matches(model),
                _ => false,
            })
        })
        .map(|(provider, _)| Candidate {
            provider,
            model: model.to_owned(),
        })
        .collect()
}

/// Why a rule does not match, or None when it does.
fn mismatch(m: &crate::config::Matcher, model: &str, facts: &Facts<'_>) -> Option<String> {
    if let Some(want) = &m.model
        && !want.matches(model)
    {
        return Some(format!("model is not {want}"));
    }
    if let Some(net) = &m.source {
        match facts.source {
            Some(ip) if net.contains(&ip) => {}
            _ => return Some(format!("client is not in {net}")),
        }
    }
    let flags = [
        ("stream", m.stream, facts.stream),
        ("tools", m.tools, facts.tools),
        ("images", m.images, facts.images),
    ];
    for (name, want, have) in flags {
        if want.is_some_and(|w| w != have) {
            return Some(format!("{name} is {have}"));
        }
    }
    if m.min_tokens.is_some_and(|min| facts.prompt_tokens < min) {
        return Some(format!(
            "about {} prompt tokens, fewer than min_tokens",
            facts.prompt_tokens
        ));
    }
    if m.max_tokens.is_some_and(|max| facts.prompt_tokens > max) {
        return Some(format!(
            "about {} prompt tokens, more than max_tokens",
            facts.prompt_tokens
        ));
    }
    if let Some(tag) = &m.tag
        && facts.tag != Some(tag.as_str())
    {
        return Some(format!("session tag is not `{tag}`"));
    }
    None
}

fn usable(
    provider: &ProviderConfig,
    model: &str,
    facts: &Facts<'_>,
    is_open: &dyn Fn(&str, &str) -> bool,
) -> Result<(), SkipReason> {
    if !provider.enabled {
        return Err(SkipReason::Disabled);
    }
    if provider.missing_credential() {
        return Err(SkipReason::MissingCredential {
            env: provider.api_key_env.clone().unwrap_or_default(),
        });
    }
    for (needed, cap) in [
        (facts.tools, "tools"),
        (facts.images, "vision"),
        (facts.json, "json"),
    ] {
        if needed && !provider.has_capability(cap) {
            return Err(SkipReason::MissingCapability(cap));
        }
    }
    let window = provider
        .context_window
        .or_else(|| pricing::builtin(model).and_then(|e| e.context_window));
    if let Some(window) = window
        && facts.prompt_tokens > u64::from(window)
    {
        return Err(SkipReason::TooSmall {
            window,
            needed: facts.prompt_tokens,
        });
    }
    if is_open(&provider.name, model) {
        return Err(SkipReason::CircuitOpen);
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
