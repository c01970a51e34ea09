//! Phase 2, route: the targets to try, in order, from the config, the request's shape and the
//! circuit breakers (404/503 with the reasons when none fits).

use std::time::Instant;

use super::{Admitted, RequestCtx};
use crate::config::ProviderKind;
use crate::providers::ProviderError;
use crate::proxy::dialect::Dialect;
use crate::proxy::error::ApiError;
use crate::routing::plan::{self, Facts, Plan};

pub fn route(ctx: &mut RequestCtx, request: &mut Admitted) -> Result<Plan, ApiError> {
    plan_for(ctx, request, None)
}

/// The targets of `model` in place of the one the client named (a budget's downgrade).
pub fn route_model(
    ctx: &mut RequestCtx,
    request: &mut Admitted,
    model: &str,
) -> Result<Plan, ApiError> {
    plan_for(ctx, request, Some(model))
}

fn plan_for(
    ctx: &mut RequestCtx,
    request: &mut Admitted,
    model: Option<&str>,
) -> Result<Plan, ApiError> {
    let inbound = &request.inbound;
    let config = &ctx.rt.config;
    // Rules match the run's tag, or under the daemon the client key's name.
    let tag = inbound
        .client_session
        .as_deref()
        .or(ctx.state.session_tag.as_deref())
        .or(request.key_name.as_deref());
    let facts = Facts {
        model: model.unwrap_or(&inbound.model),
        stream: inbound.stream,
        tools: inbound.tools,
        images: inbound.images,
        json: inbound.json,
        prompt_tokens: request.prompt_bound,
        source: Some(ctx.peer.ip()),
        tag,
    };
    let now = Instant::now();
    let health = &ctx.state.health;
    let mut plan = match plan::plan(config, &facts, &|p, m| health.is_open(p, m, now)) {
        Ok(plan) => plan,
        Err(no_route) => {
            if let plan::NoRoute::NoneServes { skipped, .. } = &no_route {
                ctx.fin.record().skipped = plan::describe_skips(skipped);
            }
            return Err(ApiError::no_route(&no_route));
        }
    };
    ctx.fin.record().skipped = plan::describe_skips(&plan.skipped);
    if ctx.dialect == Dialect::Responses
        && plan
            .targets
            .iter()
            .any(|t| !config.providers[t.provider].responses_api)
        && let Err(refusal) = request.inbound.translate_responses()
    {
        // What chat cannot carry goes only where it needs no translation.
        plan.targets
            .retain(|t| config.providers[t.provider].responses_api);
        if plan.targets.is_empty() {
            return Err(refusal);
        }
    }
    if !ctx.dialect.is_chat() {
        // Legacy completions and embeddings exist only on OpenAI-compatible APIs (and the mock
        // makes up embeddings, for offline runs); Responses API requests go anywhere, translated
        // to chat for providers without that API.
        let serves = |kind: ProviderKind| match ctx.dialect {
            Dialect::Embeddings => matches!(kind, ProviderKind::OpenAi | ProviderKind::Mock),
            Dialect::Responses => true,
            _ => kind == ProviderKind::OpenAi,
        };
        plan.targets
            .retain(|t| serves(config.providers[t.provider].kind));
        if plan.targets.is_empty() {
            return Err(ApiError::upstream(&ProviderError::Rejected(format!(
                "{} needs an OpenAI-compatible target for `{}`; none of its targets is one",
                ctx.dialect.path(),
                request.inbound.model
            ))));
        }
    }
    if request.credential.is_some() {
        let names: Vec<String> = plan
            .targets
            .iter()
            .map(|t| {
                let p = &config.providers[t.provider];
                format!("`{}` ({})", p.name, p.kind.as_str())
            })
            .collect();
        plan.targets
            .retain(|t| config.providers[t.provider].kind == ProviderKind::Anthropic);
        if plan.targets.is_empty() {
            return Err(ApiError::passthrough_unroutable(
                &request.inbound.model,
                &names.join(", "),
            ));
        }
    }
    let first = &plan.targets[0];
    let record = ctx.fin.record();
    record.route = Some(plan.route.clone());
    record.provider = Some(config.providers[first.provider].name.clone());
    record.served_model = Some(first.model.clone());
    Ok(plan)
}
