//! Phase 1, admit: the client's key, its daemon session, the body under the size cap, and the
//! request read in its format (400/401/413 when any of it fails).

use bytes::Bytes;
use http::{HeaderMap, Request};
use hyper::body::Incoming;

use super::RequestCtx;
use crate::capture::Kind;
use crate::ledger::Billing;
use crate::providers::ClientCredential;
use crate::proxy::auth::Access;
use crate::proxy::body::{BodyLimits, read_parts_body};
use crate::proxy::context::{PromptEstimate, request_fingerprint};
use crate::proxy::dialect::{self, Inbound};
use crate::proxy::error::ApiError;
use crate::proxy::state::FORWARDED_SESSION;

/// A request let in and read.
pub struct Admitted {
    pub inbound: Inbound,
    /// The body as the client sent it.
    pub body: Bytes,
    /// The client key's name (the daemon's keys; `run`'s is `session`); `None` when keyless.
    pub key_name: Option<String>,
    /// The client key itself: for a team (PostgreSQL) ledger's key also its user, team and
    /// the limits of each (`ClientKey::payers`), which the budget phase admits the request
    /// against. `None` when keyless.
    pub client_key: Option<std::sync::Arc<crate::proxy::keys::ClientKey>>,
    pub headers: HeaderMap,
    /// Pass-through: the client's own credential, forwarded in place of the provider's key.
    pub credential: Option<ClientCredential>,
    /// The prompt's tokens, estimated from its text when first needed.
    pub prompt: PromptEstimate,
    /// A quick bound on the prompt's tokens from its size (four bytes a token), for routing by
    /// size and context window, which must not wait for the text estimate.
    pub prompt_bound: u64,
}

/// A nested `run` records its requests itself: when one says it was forwarded for a session
/// the ledger shows to be this session's child, this proxy only counts it against its session
/// budget (which covers its children) and forwards it, without a second row.
async fn mark_forwarded(ctx: &mut RequestCtx, headers: &HeaderMap) {
    let Some(child) = headers
        .get(FORWARDED_SESSION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
    else {
        return;
    };
    let state = std::sync::Arc::clone(&ctx.state);
    let child = child.to_owned();
    let verified = tokio::task::spawn_blocking(move || state.is_child_session(&child))
        .await
        .unwrap_or(false);
    if verified {
        ctx.fin.set_forwarded();
    } else {
        tracing::warn!(
            "a request names a nested session that is not this session's child; recording it here"
        );
    }
}

pub async fn admit(ctx: &mut RequestCtx, req: Request<Incoming>) -> Result<Admitted, ApiError> {
    let (parts, body) = req.into_parts();
    let state = &ctx.state;
    let Access {
        key: client_key,
        credential,
    } = ctx
        .dialect
        .access(state, ctx.rt.config.passthrough, &ctx.peer, &parts.headers)?;
    // A subscription's OAuth token is not billed per token: the row's cost is notional, and
    // budgets count it only when asked to.
    if let Some(ClientCredential::Bearer(_)) = credential {
        let count = ctx.rt.config.budget.count_subscription;
        let record = ctx.fin.record();
        record.billing = Billing::Subscription;
        record.budgeted = count;
    }
    let key_name = client_key.as_ref().map(|k| k.name.clone());
    mark_forwarded(ctx, &parts.headers).await;
    let state = &ctx.state;
    if let Some(sessions) = &state.daemon_sessions {
        let name = key_name.as_deref().unwrap_or("anonymous");
        let project = ctx.rt.config.project.as_deref();
        ctx.fin.record().session_id = Some(sessions.session_for(&state.ledger, name, project));
    }
    let limits = BodyLimits::of(&ctx.rt.config);
    let body: Bytes = read_parts_body(&parts.headers, body, limits).await?;
    ctx.fin.record().fingerprint = Some(request_fingerprint(state.ledger.salt(), &body));
    // Opt-in: the body as the client sent it (its headers, keys included, never).
    if let Some(capture) = &state.capture
        && !ctx.fin.forwarded()
    {
        capture.put(ctx.fin.id(), Kind::Request, body.clone());
    }
    let loops = ctx.rt.config.loop_breaker;
    let turns = loops.repeat.is_some().then_some(dialect::TurnReading {
        hasher: &state.loops.hasher,
        all: loops.user_messages,
    });
    let inbound = dialect::read(ctx.dialect, body.clone(), &parts.headers, turns)?;
    let record = ctx.fin.record();
    record.requested_model = Some(inbound.model.clone());
    record.stream = inbound.stream;
    if let Some(session) = &inbound.client_session {
        record.client_session = Some(session.clone());
    }
    // The body the model reads: the hub body, or the client's own where its translation
    // waits for routing (Anthropic, the Responses API).
    let model_body = if inbound.hub.is_empty() {
        inbound.native.clone().unwrap_or_default()
    } else {
        inbound.hub.clone()
    };
    Ok(Admitted {
        prompt: PromptEstimate::new(model_body),
        body,
        prompt_bound: (inbound.prompt_bytes as u64).div_ceil(4),
        inbound,
        key_name,
        client_key,
        headers: parts.headers,
        credential,
    })
}
