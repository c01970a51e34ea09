//! Phase 4, budget: the request's estimated cost is reserved against the session budget and the
//! shared daily/monthly ones. A request that does not fit gets what `budget.on_exceed` says:
//! `fit` (the default) lowers its output cap to what the budget has left, `downgrade` sends it
//! to `budget.downgrade_to`, `refuse` answers 429. The reservation settles to the real cost when
//! the ledger row is written; every decision goes on the row (`budget_action`). The arithmetic
//! of those decisions is `budget::policy`'s; this phase prices, reserves and records. Shared
//! books that cannot be checked refuse with 503 (`budget_unavailable`, or
//! `budget_store_unavailable` for an unreachable PostgreSQL unless its offline grace covers the
//! request): a budget is never skipped.

use std::sync::Arc;

use super::{Admitted, RequestCtx};
use crate::budget::Reservation;
use crate::budget::policy::{Estimate, ExceedPolicy, Step, mostly_spent};
use crate::budget::shared::Denied;
use crate::budget::store::Standing;
use crate::budget::{Refusal, SharedBudget};
use crate::config::Unpriced;
use crate::ledger::Billing;
use crate::pricing::{ServiceTier, TokenCounts, UsageDetail};
use crate::proxy::error::ApiError;
use crate::routing::plan::{Candidate, Plan};

/// Output tokens assumed for a budget reservation when the request sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

/// What the budget phase decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Reserved (its output cap perhaps lowered: `Trip::output_cap`).
    Reserved,
    /// Route the request to this model instead (`on_exceed: downgrade`), then reserve again.
    Downgrade(String),
}

/// A claim on the budgets being sized: the estimate, the output cap it is reserved at, and
/// what the config says to do when it does not fit.
struct Claim<'a> {
    estimate: Estimate,
    cap: u64,
    policy: ExceedPolicy<'a>,
}

impl<'a> Claim<'a> {
    fn usd(&self) -> f64 {
        self.estimate.usd(self.cap)
    }

    /// The next step after `refusal`; a fit lowers the cap.
    fn after(&mut self, refusal: &Refusal) -> Step<'a> {
        let step = self.policy.next(refusal, &self.estimate, self.cap);
        if let Step::Fit(lower) = step {
            self.cap = lower;
        }
        step
    }
}

/// Where a reservation loop ended when it did not reserve.
enum Stop {
    Downgrade(String),
    Refused(ApiError),
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
    let now_ms = crate::ledger::now_ms();
    let shared = shared_budget(ctx, request, simulated, now_ms);
    // No limit applies: nothing to reserve against (and no estimate to make).
    if ctx.state.budget.limit_usd().is_none() && shared.is_none() {
        return Ok(Admission::Reserved);
    }
    let first = &plan.targets[0];
    let rt = Arc::clone(&ctx.rt);
    let asked = request.inbound.output_cap;
    let mut claim = Claim {
        estimate: estimate(ctx, request, first)?,
        cap: asked.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        policy: ExceedPolicy {
            on_exceed: rt.config.budget.on_exceed,
            downgrade_to: rt.config.budget.downgrade_to.as_deref(),
            downgraded,
        },
    };
    let reserved = match (reserve_session(ctx, &mut claim), shared) {
        (Ok(reservation), Some(shared)) => {
            reserve_shared(ctx, request, &shared, &mut claim, reservation, now_ms).await
        }
        (Ok(reservation), None) => Ok((reservation, Vec::new())),
        (Err(stop), _) => Err(stop),
    };
    let (reservation, standings) = match reserved {
        Ok(reserved) => reserved,
        Err(Stop::Downgrade(model)) => return Ok(downgrade(ctx, &first.model, &model)),
        Err(Stop::Refused(err)) => return Err(err),
    };
    ctx.fin.hold(reservation);
    if !standings.is_empty() {
        ctx.fin.record().reservation_id = Some(ctx.fin.id().to_owned());
    }
    let cap = claim.cap;
    if cap < asked.unwrap_or(DEFAULT_OUTPUT_ESTIMATE) {
        let was = asked.map_or_else(|| "unset".to_owned(), |n| n.to_string());
        note_action(ctx, format!("fit: max_tokens {was} -> {cap}"));
        ctx.trip.output_cap = Some(cap);
    }
    report_standing(ctx, &standings);
    Ok(Admission::Reserved)
}

/// The shared budgets this request counts against, when they apply: not to simulated requests,
/// nor to forwarded ones (the nested session that sent them charged them already).
fn shared_budget(
    ctx: &RequestCtx,
    request: &Admitted,
    simulated: bool,
    now_ms: i64,
) -> Option<Arc<SharedBudget>> {
    ctx.state
        .shared_budget
        .as_ref()
        .filter(|shared| {
            !simulated
                && !ctx.fin.forwarded()
                && shared.applies(now_ms, request.key_name.as_deref(), payers(request))
        })
        .map(Arc::clone)
}

/// Whom a request is charged to besides the process-wide limits: its team key, the key's user
/// and team (none for other keys).
fn payers(request: &Admitted) -> &[crate::budget::scopes::Payer] {
    request
        .client_key
        .as_deref()
        .map_or(&[], |key| key.payers.as_slice())
}

/// The request's cost at `first`'s prices as a function of its output cap; an error for a model
/// with no price when `budget.unpriced: refuse` (it would reserve and settle nothing: the
/// budget could not cap it).
fn estimate(
    ctx: &mut RequestCtx,
    request: &Admitted,
    first: &Candidate,
) -> Result<Estimate, ApiError> {
    let rt = Arc::clone(&ctx.rt);
    let provider = &rt.config.providers[first.provider].name;
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
        ctx.state
            .cost_usd_with(Some(provider), &first.model, tokens, detail)
    };
    // (`price_as` gave an unlisted model a price already; `allow` lets it through uncounted.)
    if price(0).is_none() && rt.config.budget.unpriced == Unpriced::Refuse {
        return Err(refuse_unpriced(ctx, &first.model));
    }
    let cost = |completion: u64| price(completion).unwrap_or(0.0);
    Ok(Estimate::from_costs(cost(0), cost(1_000_000)))
}

/// Reserves against the session budget, lowering the claim while the policy fits it.
fn reserve_session(ctx: &mut RequestCtx, claim: &mut Claim<'_>) -> Result<Reservation, Stop> {
    loop {
        let refusal = match ctx.state.budget.reserve(claim.usd()) {
            Ok(reservation) => return Ok(reservation),
            Err(refusal) => refusal,
        };
        match claim.after(&refusal) {
            Step::Fit(_) => {}
            Step::Downgrade(model) => return Err(Stop::Downgrade(model.to_owned())),
            Step::Refuse => return Err(Stop::Refused(refuse(ctx, &refusal))),
        }
    }
}

/// Reserves against the shared budgets, lowering the claim (and the session's `reservation`
/// with it) while the policy fits it; their standings once granted.
async fn reserve_shared(
    ctx: &mut RequestCtx,
    request: &Admitted,
    shared: &Arc<SharedBudget>,
    claim: &mut Claim<'_>,
    mut reservation: Reservation,
    now_ms: i64,
) -> Result<(Reservation, Vec<Standing>), Stop> {
    let wait = ctx.rt.config.budget.check_timeout;
    loop {
        // A short transaction in the ledger (SQLite off the runtime, or PostgreSQL), given up
        // at `wait`: never let through unchecked.
        let reserved = shared
            .reserve(
                ctx.fin.id(),
                request.key_name.as_deref(),
                payers(request),
                claim.usd(),
                now_ms,
                wait,
            )
            .await;
        let refusal = match reserved {
            Ok(granted) => {
                if let Some(grace) = granted.grace {
                    ctx.fin.hold(grace);
                    note_action(ctx, "offline grace: budget store unreachable".to_owned());
                }
                return Ok((reservation, granted.standings));
            }
            // In doubt: the admission may have committed without its answer arriving (the
            // connection cut after COMMIT, or an answer later than `wait`). The refused row
            // names the reservation anyway, so its settle (at cost 0) releases one that exists
            // at once instead of at its expiry, and finds nothing otherwise.
            Err(Denied::Unavailable(detail)) => {
                ctx.fin.record().reservation_id = Some(ctx.fin.id().to_owned());
                note_action(ctx, "refused: budget unavailable".to_owned());
                return Err(Stop::Refused(ApiError::budget_unavailable(wait, &detail)));
            }
            Err(Denied::StoreDown(detail)) => {
                ctx.fin.record().reservation_id = Some(ctx.fin.id().to_owned());
                note_action(ctx, "refused: budget store unreachable".to_owned());
                return Err(Stop::Refused(ApiError::budget_store_unavailable(&detail)));
            }
            Err(Denied::Refused(refusal)) => refusal,
        };
        match claim.after(&refusal) {
            Step::Fit(_) => {
                // The session's claim shrinks with the request (a smaller claim fits wherever
                // the larger one did).
                drop(reservation);
                reservation = ctx
                    .state
                    .budget
                    .reserve(claim.usd())
                    .map_err(|refusal| Stop::Refused(refuse(ctx, &refusal)))?;
            }
            Step::Downgrade(model) => return Err(Stop::Downgrade(model.to_owned())),
            Step::Refuse => return Err(Stop::Refused(refuse(ctx, &refusal))),
        }
    }
}

/// What is left of the tightest budget after the reservations in flight, and a warning once one
/// is mostly spent, for the response headers.
fn report_standing(ctx: &mut RequestCtx, standings: &[Standing]) {
    let state = Arc::clone(&ctx.state);
    let mut books = Vec::new();
    if let Some(limit) = state.budget.limit_usd().filter(|l| *l > 0.0) {
        let (spent, reserved) = state.budget.spent_and_reserved();
        books.push(("session", spent, reserved, limit));
    }
    for s in standings {
        books.push((s.name, s.spent_usd, s.reserved_usd, s.limit_usd));
    }
    for (name, spent, reserved, limit) in books {
        let remaining = (limit - spent - reserved).max(0.0);
        ctx.trip.budget_remaining = Some(
            ctx.trip
                .budget_remaining
                .map_or(remaining, |r| r.min(remaining)),
        );
        if let Some(warning) = mostly_spent(name, spent, limit) {
            state.warn_budget_once(name, &warning, spent, limit);
            ctx.trip.budget_warning = Some(warning);
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
