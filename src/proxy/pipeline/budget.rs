//! Phase 4, budget: the request's estimated cost is reserved against the session budget and the
//! shared daily/monthly ones. A request that does not fit gets what `budget.on_exceed` says:
//! `fit` (the default) lowers its output cap to what the budget has left, `downgrade` sends it
//! to `budget.downgrade_to`, `refuse` answers 429. The reservation settles to the real cost when
//! the ledger row is written; every decision goes on the row (`budget_action`).

use std::sync::Arc;
use std::time::Instant;

use super::{Admitted, RequestCtx};
use crate::budget::Refusal;
use crate::budget::shared::Denied;
use crate::config::{OnExceed, Unpriced};
use crate::ledger::Billing;
use crate::pricing::{ServiceTier, TokenCounts, UsageDetail};
use crate::proxy::error::ApiError;
use crate::routing::plan::Plan;

/// Output tokens assumed for a budget reservation when the request sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

/// The shortest answer `fit` lowers a request to; below it the request is refused.
const MIN_FIT_TOKENS: u64 = 32;

/// Share of a budget after which responses carry a warning (and stderr says so once).
const WARN_AT: f64 = 0.8;

/// What the budget phase decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Reserved (its output cap perhaps lowered: `Trip::output_cap`).
    Reserved,
    /// Route the request to this model instead (`on_exceed: downgrade`), then reserve again.
    Downgrade(String),
}

/// The request's cost as a function of its output cap, at the first target's prices.
struct Estimate {
    /// The prompt alone.
    prompt_usd: f64,
    /// Each output token.
    per_output_usd: f64,
}

impl Estimate {
    fn usd(&self, output_cap: u64) -> f64 {
        self.prompt_usd + self.per_output_usd * output_cap as f64
    }

    /// The largest output cap the budget `refusal` reported room for.
    fn cap_within(&self, refusal: &Refusal) -> Option<u64> {
        let room = refusal.limit_usd - refusal.spent_usd - refusal.reserved_usd - self.prompt_usd;
        if self.per_output_usd <= 0.0 || room <= 0.0 {
            return None;
        }
        Some((room / self.per_output_usd).floor() as u64)
    }
}

pub async fn reserve(
    ctx: &mut RequestCtx,
    request: &Admitted,
    plan: &Plan,
    downgraded: bool,
) -> Result<Admission, ApiError> {
    // Subscription requests cost nothing per token: budgets count their notional cost only
    // with `budget.count_subscription` (the admit phase marked the row). Simulated (mock)
    // requests spend nothing either, but a session's own budget counts them, so that budgets
    // can be tried offline.
    let record = ctx.fin.record();
    let simulated = record.billing == Billing::Simulated;
    if !record.budgeted && !simulated {
        return Ok(Admission::Reserved);
    }
    // A forwarded request is charged to the shared budgets by the nested session that sent it.
    let now_ms = crate::ledger::now_ms();
    let shared = ctx
        .state
        .shared_budget
        .as_ref()
        .filter(|shared| {
            !simulated
                && !ctx.fin.forwarded()
                && shared.applies(now_ms, request.key_name.as_deref())
        })
        .map(Arc::clone);
    // No limit applies: nothing to reserve against (and no estimate to make).
    if ctx.state.budget.limit_usd().is_none() && shared.is_none() {
        return Ok(Admission::Reserved);
    }
    let first = &plan.targets[0];
    let rt = Arc::clone(&ctx.rt);
    let provider = &rt.config.providers[first.provider].name;
    let state = Arc::clone(&ctx.state);
    // Reserved at what the request may be billed: a prompt counted generously for its script,
    // at the service tier it asks for, written to the prompt cache at the lifetime it asks for.
    let (prompt, premiums) = request.prompt.for_reservation();
    let detail = UsageDetail {
        cache_write_1h: if premiums.cache_1h { prompt } else { 0 },
        service_tier: premiums
            .service_tier
            .as_deref()
            .map_or(ServiceTier::Standard, ServiceTier::parse),
        // Billed at the prices of the moment the request started, so reserved at them too.
        started_ms: Some(ctx.fin.record().started_ms),
        ..UsageDetail::default()
    };
    let price = |completion: u64| {
        let tokens = TokenCounts {
            prompt,
            completion,
            cached_prompt: 0,
            cache_write: if premiums.cache_writes { prompt } else { 0 },
        };
        state.cost_usd_with(Some(provider), &first.model, tokens, detail)
    };
    // A model with no price would reserve and settle nothing: the budget could not cap it.
    // (`price_as` gave it a price already; `allow` lets it through uncounted.)
    if price(0).is_none() && rt.config.budget.unpriced == Unpriced::Refuse {
        return Err(refuse_unpriced(ctx, &first.model));
    }
    let cost = |completion: u64| price(completion).unwrap_or(0.0);
    // Prices are linear in output tokens (a long-context tier depends on the prompt alone).
    let prompt_usd = cost(0);
    let estimate = Estimate {
        prompt_usd,
        per_output_usd: (cost(1_000_000) - prompt_usd) / 1e6,
    };
    let asked = request.inbound.output_cap;
    let mut cap = asked.unwrap_or(DEFAULT_OUTPUT_ESTIMATE);
    let policy = Policy {
        on_exceed: rt.config.budget.on_exceed,
        downgrade_to: rt.config.budget.downgrade_to.as_deref(),
        downgraded,
    };

    let mut reservation = loop {
        match state.budget.reserve(estimate.usd(cap)) {
            Ok(reservation) => break reservation,
            Err(refusal) => match policy.next(&refusal, &estimate, cap) {
                Step::Fit(lower) => cap = lower,
                Step::Downgrade(model) => return Ok(downgrade(ctx, &first.model, model)),
                Step::Refuse => return Err(refuse(ctx, &refusal)),
            },
        }
    };

    let mut standings = Vec::new();
    if let Some(shared) = shared {
        loop {
            let shared = Arc::clone(&shared);
            let id = ctx.fin.id().to_owned();
            let key = request.key_name.clone();
            let amount = estimate.usd(cap);
            let wait = rt.config.budget.check_timeout;
            let deadline = Instant::now() + wait;
            // The shared budgets live in the ledger file: a short SQLite transaction, off the
            // runtime, that waits for a busy ledger until the deadline and no longer.
            let reserved = tokio::task::spawn_blocking(move || {
                shared.reserve(&id, key.as_deref(), amount, now_ms, deadline)
            })
            .await
            .map_err(|e| ApiError::internal(format!("budget check failed: {e}")))?;
            match reserved {
                Ok(granted) => {
                    standings = granted;
                    break;
                }
                Err(Denied::Unavailable(detail)) => {
                    note_action(ctx, "refused: budget unavailable".to_owned());
                    return Err(ApiError::budget_unavailable(wait, &detail));
                }
                Err(Denied::Refused(refusal)) => match policy.next(&refusal, &estimate, cap) {
                    Step::Fit(lower) => {
                        cap = lower;
                        // The session's claim shrinks with the request (a smaller claim fits
                        // wherever the larger one did).
                        drop(reservation);
                        reservation = state
                            .budget
                            .reserve(estimate.usd(cap))
                            .map_err(|refusal| refuse(ctx, &refusal))?;
                    }
                    Step::Downgrade(model) => return Ok(downgrade(ctx, &first.model, model)),
                    Step::Refuse => return Err(refuse(ctx, &refusal)),
                },
            }
        }
    }
    ctx.fin.hold(reservation);
    if !standings.is_empty() {
        ctx.fin.record().reservation_id = Some(ctx.fin.id().to_owned());
    }

    if cap < asked.unwrap_or(DEFAULT_OUTPUT_ESTIMATE) {
        let was = asked.map_or_else(|| "unset".to_owned(), |n| n.to_string());
        note_action(ctx, format!("fit: max_tokens {was} -> {cap}"));
        ctx.trip.output_cap = Some(cap);
    }

    // What is left of the tightest budget after the reservations in flight, and a warning once
    // one is mostly spent (reservations are not spending: a fitted request reserves all the
    // room there is).
    let mut books = Vec::new();
    if let Some(limit) = state.budget.limit_usd().filter(|l| *l > 0.0) {
        let (spent, reserved) = state.budget.spent_and_reserved();
        books.push(("session", spent, reserved, limit));
    }
    for s in &standings {
        books.push((s.name, s.spent_usd, s.reserved_usd, s.limit_usd));
    }
    for (name, spent, reserved, limit) in books {
        let remaining = (limit - spent - reserved).max(0.0);
        ctx.trip.budget_remaining = Some(
            ctx.trip
                .budget_remaining
                .map_or(remaining, |r| r.min(remaining)),
        );
        if spent >= WARN_AT * limit {
            let warning = format!(
                "{name} budget {:.0}% spent (${spent:.4} of ${limit:.4})",
                spent / limit * 100.0
            );
            state.warn_budget_once(name, &warning);
            ctx.trip.budget_warning = Some(warning);
        }
    }
    Ok(Admission::Reserved)
}

/// What the config says to do when a reservation does not fit.
struct Policy<'a> {
    on_exceed: OnExceed,
    downgrade_to: Option<&'a str>,
    /// The request was already sent to `downgrade_to`: from here it can only be fitted.
    downgraded: bool,
}

enum Step<'a> {
    Fit(u64),
    Downgrade(&'a str),
    Refuse,
}

impl<'a> Policy<'a> {
    fn next(&self, refusal: &Refusal, estimate: &Estimate, cap: u64) -> Step<'a> {
        if self.on_exceed == OnExceed::Refuse {
            return Step::Refuse;
        }
        if self.on_exceed == OnExceed::Downgrade
            && !self.downgraded
            && let Some(model) = self.downgrade_to
        {
            return Step::Downgrade(model);
        }
        match estimate.cap_within(refusal) {
            // Each step lowers the cap, so a race with other requests cannot loop.
            Some(lower) if lower >= MIN_FIT_TOKENS && lower < cap => Step::Fit(lower),
            _ => Step::Refuse,
        }
    }
}

fn downgrade(ctx: &mut RequestCtx, from: &str, to: &str) -> Admission {
    ctx.fin.record().budget_action = Some(format!("downgrade: {from} -> {to}"));
    Admission::Downgrade(to.to_owned())
}

fn refuse_unpriced(ctx: &mut RequestCtx, model: &str) -> ApiError {
    note_action(ctx, format!("refused: {model} has no price"));
    ApiError::unpriced_model(model)
}

fn refuse(ctx: &mut RequestCtx, refusal: &Refusal) -> ApiError {
    note_action(ctx, format!("refused: {} budget", refusal.budget));
    ApiError::budget_exceeded(refusal)
}

/// Records a budget decision on the row; a downgraded request that is then fitted or refused
/// keeps both decisions.
fn note_action(ctx: &mut RequestCtx, action: String) {
    let record = ctx.fin.record();
    record.budget_action = Some(match record.budget_action.take() {
        Some(before) => format!("{before}; {action}"),
        None => action,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(limit: f64, spent: f64) -> Refusal {
        Refusal {
            budget: "session",
            limit_usd: limit,
            spent_usd: spent,
            reserved_usd: 0.0,
            estimate_usd: 1.0,
        }
    }

    const ESTIMATE: Estimate = Estimate {
        prompt_usd: 0.001,
        per_output_usd: 0.000_01,
    };

    fn policy(on_exceed: OnExceed) -> Policy<'static> {
        Policy {
            on_exceed,
            downgrade_to: Some("cheap"),
            downgraded: false,
        }
    }

    #[test]
    fn fit_lowers_the_cap_to_the_room_left() {
        // $0.01 left: $0.001 for the prompt, $0.009 buys 900 output tokens.
        match policy(OnExceed::Fit).next(&refusal(1.0, 0.99), &ESTIMATE, 4096) {
            Step::Fit(cap) => assert_eq!(cap, 900),
            _ => panic!("expected a fit"),
        }
    }

    #[test]
    fn fit_refuses_when_not_even_a_short_answer_fits() {
        // $0.0012 left: the prompt and 20 tokens.
        assert!(matches!(
            policy(OnExceed::Fit).next(&refusal(1.0, 0.9988), &ESTIMATE, 4096),
            Step::Refuse
        ));
    }

    #[test]
    fn refuse_and_downgrade_do_what_they_say() {
        assert!(matches!(
            policy(OnExceed::Refuse).next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Refuse
        ));
        assert!(matches!(
            policy(OnExceed::Downgrade).next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Downgrade("cheap")
        ));
        let after = Policy {
            downgraded: true,
            ..policy(OnExceed::Downgrade)
        };
        assert!(matches!(
            after.next(&refusal(1.0, 0.99), &ESTIMATE, 4096),
            Step::Fit(900)
        ));
    }
}
