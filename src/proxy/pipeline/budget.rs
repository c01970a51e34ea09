//! Phase 4, budget: the request's estimated cost is reserved against the session budget and the
//! shared daily/monthly ones (429 when it does not fit). The reservation settles to the real
//! cost when the ledger row is written.

use std::sync::Arc;

use super::{Admitted, RequestCtx};
use crate::pricing::TokenCounts;
use crate::proxy::error::ApiError;
use crate::routing::plan::Plan;

/// Output tokens assumed for a budget reservation when the request sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

pub async fn reserve(
    ctx: &mut RequestCtx,
    request: &Admitted,
    plan: &Plan,
) -> Result<(), ApiError> {
    // Subscription requests cost nothing per token: budgets count their notional cost only
    // with `budget.count_subscription` (the admit phase marked the row).
    if !ctx.fin.record().budgeted {
        return Ok(());
    }
    let first = &plan.targets[0];
    let provider = &ctx.rt.config.providers[first.provider].name;
    let estimate = TokenCounts {
        prompt: request.prompt_estimate,
        completion: request
            .inbound
            .output_cap
            .unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        cached_prompt: 0,
        cache_write: 0,
    };
    let state = &ctx.state;
    let estimate_usd = state
        .cost_usd(Some(provider), &first.model, estimate)
        .unwrap_or(0.0);
    let reservation = state
        .budget
        .reserve(estimate_usd)
        .map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
    ctx.fin.hold(reservation);
    ctx.trip.budget_remaining = state.budget.remaining_usd();

    // A forwarded request is charged to the shared budgets by the nested session that sent it.
    let Some(shared) = state
        .shared_budget
        .as_ref()
        .filter(|_| !ctx.fin.forwarded())
    else {
        return Ok(());
    };
    let shared = Arc::clone(shared);
    let id = ctx.fin.id().to_owned();
    let key = request.key_name.clone();
    // The shared budgets live in the ledger file: a short SQLite transaction, off the runtime.
    let reserved = tokio::task::spawn_blocking(move || {
        shared.reserve(&id, key.as_deref(), estimate_usd, crate::ledger::now_ms())
    })
    .await
    .map_err(|e| ApiError::internal(format!("budget check failed: {e}")))?;
    let standings = reserved.map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
    if !standings.is_empty() {
        ctx.fin.record().reservation_id = Some(ctx.fin.id().to_owned());
    }
    for s in standings {
        let remaining = s.remaining_usd();
        ctx.trip.budget_remaining = Some(
            ctx.trip
                .budget_remaining
                .map_or(remaining, |r| r.min(remaining)),
        );
    }
    Ok(())
}
