//! Phase 2, route: the targets to try, in order, from the config, the request's shape and the
//! circuit breakers (404/503 with the reasons when none fits).

use std::time::Instant;

use super::{Admitted, RequestCtx};
use crate::config::ProviderKind;
use crate::ledger::{Billing, RequestRecord};
use crate::providers::ProviderError;
use crate::proxy::error::ApiError;
use crate::routing::plan::{self, Facts, Plan, Skip, SkipReason};

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
        source: Some(ctx.peer.addr.ip()),
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
    let filtered = leave_out_unsuited(ctx, request, &mut plan);
    // Passed over by the plan or by the request's format: the routing trail keeps both, also
    // when nothing is left.
    ctx.fin.record().skipped = plan::describe_skips(&plan.skipped);
    filtered?;
    let first = &plan.targets[0];
    let record = ctx.fin.record();
    record.route = Some(plan.route.clone());
    record.provider = Some(config.providers[first.provider].name.clone());
    record.served_model = Some(first.model.clone());
    bill_as(record, config.providers[first.provider].kind);
    Ok(plan)
}

/// The mock provider spends nothing: its rows are `simulated`, left out of the shared budgets
/// and real totals (a `run --mock` session's own budget still counts them, to try budgets
/// offline). Called again with the provider that served, after any failover.
pub(super) fn bill_as(record: &mut RequestRecord, kind: ProviderKind) {
    if kind == ProviderKind::Mock {
        if record.billing == Billing::Api {
            record.billing = Billing::Simulated;
            record.budgeted = false;
        }
    } else if record.billing == Billing::Simulated {
        record.billing = Billing::Api;
        record.budgeted = true;
    }
}

/// Moves the targets the request's format cannot use from `plan.targets` to `plan.skipped`;
/// an error when none is left.
fn leave_out_unsuited(
    ctx: &RequestCtx,
    request: &mut Admitted,
    plan: &mut Plan,
) -> Result<(), ApiError> {
    let config = &ctx.rt.config;
    let providers = &ctx.rt.providers;
    let dialect = ctx.dialect;
    let pass_over = |plan: &mut Plan, keep: &dyn Fn(usize) -> bool, why| {
        let (kept, left): (Vec<_>, Vec<_>) = plan.targets.drain(..).partition(|t| keep(t.provider));
        plan.targets = kept;
        plan.skipped.extend(left.into_iter().map(|t| Skip {
            provider: config.providers[t.provider].name.clone(),
            model: t.model,
            reason: SkipReason::Unsuited(why),
        }));
    };
    let native_at = |provider: usize| {
        dialect.native_passthrough(
            providers[provider].native_format(),
            &config.providers[provider],
        )
    };
    // A request in a format some targets take as it is (Anthropic's, the Responses API) is
    // translated when a target needs it; what chat cannot carry goes only where it needs no
    // translation.
    if plan.targets.iter().any(|t| !native_at(t.provider))
        && let Err(refusal) = request.inbound.translate_for_chat(dialect)
    {
        pass_over(plan, &native_at, dialect.untranslatable());
        if plan.targets.is_empty() {
            return Err(refusal);
        }
    }
    let unserved = plan
        .targets
        .iter()
        .any(|t| !dialect.serves_on(config.providers[t.provider].kind));
    if unserved {
        pass_over(
            plan,
            &|p| dialect.serves_on(config.providers[p].kind),
            "not an OpenAI-compatible API, which this endpoint needs",
        );
        if plan.targets.is_empty() {
            return Err(ApiError::upstream(&ProviderError::Rejected(format!(
                "{} needs an OpenAI-compatible target for `{}`; none of its targets is one",
                dialect.path(),
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
        pass_over(
            plan,
            &|p| config.providers[p].kind == ProviderKind::Anthropic,
            "not Anthropic, which a pass-through credential needs",
        );
        if plan.targets.is_empty() {
            return Err(ApiError::passthrough_unroutable(
                &request.inbound.model,
                &names.join(", "),
            ));
        }
    }
    Ok(())
}
