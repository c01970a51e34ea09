//! The request pipeline every model endpoint shares, whatever format the client speaks. One
//! `RequestCtx` flows through named phases, each a small function in its own module:
//!
//! | phase | reads | writes on the ledger row / returns |
//! |---|---|---|
//! | `admit` | headers, body | key name, session, fingerprint, requested model, stream; the request read (`Admitted`) |
//! | `loops` | the newest turn, the session's recent ones | a warning, or 429 `loop_detected` (`budget_action`) |
//! | `cassette` | `Admitted`, the replayed cassette | `run --replay`: the recorded reply ends the pipeline (or a `cassette_miss`); `run --record`: the pair to record |
//! | `route` | `Admitted`, config, breakers | route, provider, served model; the `Plan` |
//! | `cache` | `Admitted`, plan | cache status; a hit ends the pipeline here |
//! | `budget` | estimate, session and shared budgets | the reservation (settled when the row is written) |
//! | `attempt` | plan, providers | attempts, provider and model that served; the upstream reply |
//! | `reply` | upstream reply | tokens, cost, status; the response in the client's format |
//!
//! An error from any phase becomes the client's error response and the row's outcome; the row is
//! written exactly once whatever the ending (`context::Finalizer`).
//!
//! Opt-in body capture (`capture.enabled`; `crate::capture`) hooks in twice, one branch each
//! when it is off: `admit` queues the request body as the client sent it, `reply::respond` the
//! whole reply as the client gets it or hands the stream relay a copier (`SseRelay::capture`)
//! that stores the forwarded bytes when the stream ends. Errors smartproxy writes itself are
//! not captured; requests a nested `run` forwarded are captured there, not here.

mod admit;
mod attempt;
mod budget;
mod cache;
mod cassette;
mod loops;
mod reply;
mod route;

use std::sync::Arc;

use http::header::USER_AGENT;
use http::{Request, Response};
use hyper::body::Incoming;
use tracing::Instrument;

use super::body::ProxyBody;
use super::context::{Finalizer, Peer, Trip, new_request_id};
use super::dialect::Dialect;
use super::error::ApiError;
use super::state::{AppState, Runtime};

pub use admit::Admitted;
use reply::Reply;

/// One request on its way through the phases.
pub struct RequestCtx {
    pub state: Arc<AppState>,
    /// The config and providers the request started with (a reload does not change them).
    pub rt: Arc<Runtime>,
    pub dialect: Dialect,
    pub peer: Peer,
    /// The ledger row being filled in, and the guarantee that it is written.
    pub fin: Finalizer,
    /// What the response headers report.
    pub trip: Trip,
    /// `run --record`: this request's pair, its reply filled in when it is sent.
    pub tape: Option<crate::cassette::Entry>,
}

impl RequestCtx {
    fn new(state: Arc<AppState>, peer: &Peer, dialect: Dialect, req: &Request<Incoming>) -> Self {
        let mut fin = Finalizer::new(Arc::clone(&state), new_request_id(), dialect.label());
        let record = fin.record();
        record.user_agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                ua.char_indices()
                    .nth(200)
                    .map_or(ua, |(end, _)| &ua[..end])
                    .to_owned()
            });
        record.client_hash = Some(Arc::clone(&peer.hash));
        Self {
            rt: state.runtime(),
            state,
            dialect,
            peer: peer.clone(),
            fin,
            trip: Trip::default(),
            tape: None,
        }
    }
}

/// Serves one model request in `dialect`.
pub async fn serve(
    state: Arc<AppState>,
    peer: Peer,
    req: Request<Incoming>,
    dialect: Dialect,
) -> Response<ProxyBody> {
    let mut ctx = RequestCtx::new(state, &peer, dialect, &req);
    let span = tracing::info_span!(
        "request",
        id = %ctx.fin.id(),
        endpoint = %dialect.label(),
        model = tracing::field::Empty
    );
    let reply = phases(&mut ctx, req).instrument(span.clone()).await;
    let _entered = span.enter();
    reply::respond(ctx, reply)
}

/// Answers a model request refused before its phases (a web page's, `http_guard`) with the
/// ledger row a refusal in `admit` gets.
pub fn refuse(
    state: Arc<AppState>,
    peer: &Peer,
    req: &Request<Incoming>,
    dialect: Dialect,
    err: ApiError,
) -> Response<ProxyBody> {
    reply::respond(RequestCtx::new(state, peer, dialect, req), Err(err))
}

/// The phases in order; the first error ends the request.
async fn phases(ctx: &mut RequestCtx, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let mut request = admit::admit(ctx, req).await?;
    tracing::Span::current().record("model", tracing::field::display(&request.inbound.model));
    loops::check(ctx, &mut request)?;
    if let Some(replayed) = cassette::replay(ctx, &request)? {
        return Ok(replayed);
    }
    let mut plan = route::route(ctx, &mut request)?;
    let cache_key = cache::key(ctx, &request, &plan);
    if let Some(hit) = cache::lookup(ctx, cache_key.as_deref()).await {
        return reply::from_cache(ctx, &request, hit);
    }
    if let budget::Admission::Downgrade(model) =
        budget::reserve(ctx, &request, &plan, false).await?
    {
        // `budget.on_exceed: downgrade`: the cheaper model's targets, reserved again (fitted or
        // refused if even that does not fit).
        plan = route::route_model(ctx, &mut request, &model)?;
        budget::reserve(ctx, &request, &plan, true).await?;
    }
    let upstream = attempt::attempt(ctx, &request, &plan).await?;
    reply::from_upstream(ctx, &request, upstream, cache_key)
}
