//! Phase 5, attempt: the request is written for each target in the plan's order (model
//! rewritten, stream usage asked for, an Anthropic or Responses API body kept for targets that
//! speak it natively, its chat translation for the others) and sent,
//! with retries, waits and failover (`routing::execute`). Every attempt goes on the row.

use std::time::Duration;

use bytes::Bytes;

use super::{Admitted, RequestCtx};
use crate::providers::{Endpoint, ProviderError, UpstreamRequest, WireFormat};
use crate::proxy::error::ApiError;
use crate::proxy::state::FORWARDED_SESSION;
use crate::routing::execute::{Executor, Reply as Served};
use crate::routing::health::Transition;
use crate::routing::plan::{Candidate, Plan};
use crate::wire::openai::{Rewrite, rewrite_request};

/// The upstream's reply, and whether the target that served got the client's own body (an
/// Anthropic or Responses API request untranslated), so its reply is in the client's format.
pub struct Upstream {
    pub reply: Served,
    pub served_native: bool,
}

/// Where a body of this endpoint keeps its output cap.
fn output_cap_field(endpoint: Endpoint, body: &[u8]) -> &'static str {
    if endpoint == Endpoint::Responses {
        "max_output_tokens"
    } else if memchr::memmem::find(body, b"\"max_completion_tokens\"").is_some() {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

pub async fn attempt(
    ctx: &mut RequestCtx,
    request: &Admitted,
    plan: &Plan,
) -> Result<Upstream, ApiError> {
    let state = &ctx.state;
    let rt = &ctx.rt;
    let inbound = &request.inbound;
    let dialect = ctx.dialect;
    // Usage must come back on every stream: the proxy counts it, and converters need it.
    let add_stream_usage = inbound.stream && dialect.asks_stream_usage(inbound.client_wants_usage);
    let hub = if dialect.takes_transforms() {
        state
            .transforms()
            .apply_to_request(&inbound.hub)
            .map_or_else(|| inbound.hub.clone(), Bytes::from)
    } else {
        inbound.hub.clone()
    };
    // Whether the target at `provider` takes the client's own body, untranslated.
    let native_at = |provider: usize| {
        dialect.native_passthrough(
            rt.providers[provider].native_format(),
            &rt.config.providers[provider],
        )
    };
    let request_id = ctx.fin.id().to_owned();
    let fitted_cap = ctx.trip.output_cap;
    let client_headers = request
        .credential
        .as_ref()
        .map(|_| passthrough_headers(&request.headers))
        .unwrap_or_default();
    let request_for = |candidate: &Candidate| -> Result<UpstreamRequest, ProviderError> {
        // The route phase kept only Anthropic targets; a client's credential goes nowhere else.
        if request.credential.is_some()
            && rt.providers[candidate.provider].native_format() != WireFormat::Anthropic
        {
            return Err(ProviderError::Rejected(
                "a pass-through credential is only forwarded to an `anthropic` provider".to_owned(),
            ));
        }
        let (source, format, endpoint, add_usage) =
            match (&inbound.native, native_at(candidate.provider)) {
                (Some(native_body), true) => {
                    let (format, endpoint) = dialect.native_wire();
                    (native_body, format, endpoint, false)
                }
                (Some(_), false) if hub.is_empty() => {
                    // Routing translated the request for every target that needs it; a safety net.
                    return Err(ProviderError::Rejected(
                        "the request has no chat completions translation".to_owned(),
                    ));
                }
                (Some(_), false) => (&hub, WireFormat::OpenAi, Endpoint::Chat, add_stream_usage),
                (None, _) => (
                    &hub,
                    WireFormat::OpenAi,
                    dialect.endpoint(),
                    add_stream_usage,
                ),
            };
        let new_model = (candidate.model != inbound.model).then_some(candidate.model.as_str());
        // Translated bodies are smartproxy's own writing: their output cap goes under the name
        // the target takes. A client's own OpenAI body keeps the field it chose.
        let translated = format == WireFormat::OpenAi
            && endpoint == Endpoint::Chat
            && (inbound.native.is_some() || dialect.hub_is_translation());
        let rewrite = Rewrite {
            model: new_model,
            add_stream_usage: add_usage,
            max_completion_tokens: translated
                && rt.config.providers[candidate.provider].wants_max_completion_tokens(),
            output_cap: fitted_cap.map(|cap| (output_cap_field(endpoint, source), cap)),
        };
        let body = match rewrite_request(source, rewrite) {
            Ok(Some(rewritten)) => Bytes::from(rewritten),
            Ok(None) => source.clone(),
            Err(e) => {
                return Err(ProviderError::Internal(format!(
                    "cannot rewrite the request: {e}"
                )));
            }
        };
        // Anthropic's version and beta headers matter only to Anthropic's own API.
        let mut headers = if format == WireFormat::Anthropic {
            inbound.passthrough_headers.clone()
        } else {
            Vec::new()
        };
        headers.extend(client_headers.iter().cloned());
        // To the parent session's proxy: this request is recorded here, not there too.
        if let Some(parent) = &state.forward_to_parent
            && parent.serves(&rt.config.providers[candidate.provider].base_url)
        {
            headers.push((FORWARDED_SESSION.to_owned(), parent.session_id.clone()));
        }
        Ok(UpstreamRequest {
            body,
            format,
            endpoint,
            model: candidate.model.clone(),
            stream: inbound.stream,
            request_id: request_id.clone(),
            headers,
            credential: request.credential.clone(),
            max_reply_bytes: rt.config.max_reply_bytes,
        })
    };
    let on_transition =
        |provider: &str, model: &str, t: Transition| state.record_transition(provider, model, t);
    let executor = Executor {
        config: &rt.config,
        providers: &rt.providers,
        health: &state.health,
        on_transition: &on_transition,
    };
    let executed = executor.run(plan, inbound.stream, &request_for).await;

    ctx.trip.failover = executed.failed_over(plan);
    ctx.trip.upstream = Duration::from_secs_f64(
        executed
            .attempts
            .iter()
            .map(|a| a.latency_ms + a.waited_ms)
            .sum::<f64>()
            / 1000.0,
    );
    let served_native = executed
        .served
        .as_ref()
        .is_some_and(|c| native_at(c.provider));
    let record = ctx.fin.record();
    record.attempts = u32::try_from(executed.attempts.len()).unwrap_or(u32::MAX);
    if let Some(served) = &executed.served {
        record.provider = Some(rt.config.providers[served.provider].name.clone());
        record.served_model = Some(served.model.clone());
        super::route::bill_as(record, rt.config.providers[served.provider].kind);
    }
    record.attempt_log = executed.attempts;
    let reply = executed.result.map_err(|e| ApiError::upstream(&e))?;
    Ok(Upstream {
        reply,
        served_native,
    })
}

/// What a pass-through request carries to Anthropic besides its credential and the
/// `anthropic-version`/`anthropic-beta` every Anthropic request gets: the client's other
/// `anthropic-*` headers and its identity (`user-agent`, `x-app`), as Anthropic saw them from
/// the client directly.
fn passthrough_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            (name.starts_with("anthropic-")
                && name != "anthropic-version"
                && name != "anthropic-beta")
                || name == "user-agent"
                || name == "x-app"
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
