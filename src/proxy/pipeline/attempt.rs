//! Phase 5, attempt: the request is written for each target in the plan's order (model
//! rewritten, stream usage asked for, an Anthropic or Responses API body kept for targets that
//! speak it natively, its chat translation for the others) and sent,
//! with retries, waits and failover (`routing::execute`). Every attempt goes on the row.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Admitted, RequestCtx};
use crate::providers::{Endpoint, ProviderError, UpstreamRequest, WireFormat};
use crate::proxy::dialect::Dialect;
use crate::proxy::error::ApiError;
use crate::proxy::state::{AppState, FORWARDED_SESSION, Runtime};
use crate::routing::execute::{Executed, Executor, Reply as Served};
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
    let rt = Arc::clone(&ctx.rt);
    let state = Arc::clone(&ctx.state);
    let writer = Writer::new(ctx, &state, &rt, request);
    let request_for = |candidate: &Candidate| writer.request_for(candidate);
    let on_transition =
        |provider: &str, model: &str, t: Transition| state.record_transition(provider, model, t);
    let executor = Executor {
        config: &rt.config,
        providers: &rt.providers,
        health: &state.health,
        on_transition: &on_transition,
    };
    let executed = executor
        .run(plan, request.inbound.stream, &request_for)
        .await;
    let served_native = executed
        .served
        .as_ref()
        .is_some_and(|c| writer.native_at(c.provider));
    let reply = record_attempts(ctx, plan, executed)?;
    Ok(Upstream {
        reply,
        served_native,
    })
}

/// The attempts, the failover and the time upstream on the row and the response headers; the
/// reply, or the last failure as the client's error.
fn record_attempts(
    ctx: &mut RequestCtx,
    plan: &Plan,
    executed: Executed,
) -> Result<Served, ApiError> {
    ctx.trip.failover = executed.failed_over(plan);
    ctx.trip.upstream = Duration::from_secs_f64(
        executed
            .attempts
            .iter()
            .map(|a| a.latency_ms + a.waited_ms)
            .sum::<f64>()
            / 1000.0,
    );
    let providers = &ctx.rt.config.providers;
    let record = ctx.fin.record();
    record.attempts = u32::try_from(executed.attempts.len()).unwrap_or(u32::MAX);
    if let Some(served) = &executed.served {
        record.provider = Some(providers[served.provider].name.clone());
        record.served_model = Some(served.model.clone());
        super::route::bill_as(record, providers[served.provider].kind);
    }
    record.attempt_log = executed.attempts;
    executed.result.map_err(|e| ApiError::upstream(&e))
}

/// The request as each target is sent it: what is the same for every target, worked out once.
struct Writer<'a> {
    rt: &'a Runtime,
    state: &'a AppState,
    request: &'a Admitted,
    dialect: Dialect,
    /// The chat body, transformed (chat only).
    hub: Bytes,
    /// Usage must come back on every stream: the proxy counts it, and converters need it.
    add_stream_usage: bool,
    request_id: String,
    /// The output cap the budget phase fitted the request to.
    fitted_cap: Option<u64>,
    /// The client's own headers a pass-through request carries.
    client_headers: Vec<(String, String)>,
}

impl<'a> Writer<'a> {
    fn new(ctx: &RequestCtx, state: &'a AppState, rt: &'a Runtime, request: &'a Admitted) -> Self {
        let inbound = &request.inbound;
        let dialect = ctx.dialect;
        let hub = if dialect.takes_transforms() && !inbound.hub.is_empty() {
            state
                .transforms()
                .apply_to_request(&inbound.hub)
                .map_or_else(|| inbound.hub.clone(), Bytes::from)
        } else {
            inbound.hub.clone()
        };
        Self {
            rt,
            state,
            request,
            dialect,
            hub,
            add_stream_usage: inbound.stream
                && dialect.asks_stream_usage(inbound.client_wants_usage),
            request_id: ctx.fin.id().to_owned(),
            fitted_cap: ctx.trip.output_cap,
            client_headers: request
                .credential
                .as_ref()
                .map(|_| passthrough_headers(&request.headers))
                .unwrap_or_default(),
        }
    }

    /// Whether the target at `provider` takes the client's own body, untranslated.
    fn native_at(&self, provider: usize) -> bool {
        self.dialect.native_passthrough(
            self.rt.providers[provider].native_format(),
            &self.rt.config.providers[provider],
        )
    }

    fn request_for(&self, candidate: &Candidate) -> Result<UpstreamRequest, ProviderError> {
        let (rt, request, inbound) = (self.rt, self.request, &self.request.inbound);
        // The route phase kept only Anthropic targets; a client's credential goes nowhere else.
        if request.credential.is_some()
            && rt.providers[candidate.provider].native_format() != WireFormat::Anthropic
        {
            return Err(ProviderError::Rejected(
                "a pass-through credential is only forwarded to an `anthropic` provider".to_owned(),
            ));
        }
        let (source, format, endpoint, add_usage) = self.source_for(candidate)?;
        let new_model = (candidate.model != inbound.model).then_some(candidate.model.as_str());
        // Translated bodies are smartproxy's own writing: their output cap goes under the name
        // the target takes. A client's own OpenAI body keeps the field it chose.
        let translated = format == WireFormat::OpenAi
            && endpoint == Endpoint::Chat
            && (inbound.native.is_some() || self.dialect.hub_is_translation());
        let rewrite = Rewrite {
            model: new_model,
            add_stream_usage: add_usage,
            max_completion_tokens: translated
                && rt.config.providers[candidate.provider].wants_max_completion_tokens(),
            output_cap: self
                .fitted_cap
                .map(|cap| (output_cap_field(endpoint, source), cap)),
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
        Ok(UpstreamRequest {
            body,
            format,
            endpoint,
            model: candidate.model.clone(),
            stream: inbound.stream,
            request_id: self.request_id.clone(),
            headers: self.headers_for(candidate, format),
            credential: request.credential.clone(),
            max_reply_bytes: rt.config.max_reply_bytes,
        })
    }

    /// The body `candidate` gets, its format and endpoint, and whether to ask for stream usage:
    /// the client's own where the target takes it natively, else the chat body.
    fn source_for(
        &self,
        candidate: &Candidate,
    ) -> Result<(&Bytes, WireFormat, Endpoint, bool), ProviderError> {
        Ok(
            match (
                &self.request.inbound.native,
                self.native_at(candidate.provider),
            ) {
                (Some(native_body), true) => {
                    let (format, endpoint) = self.dialect.native_wire();
                    (native_body, format, endpoint, false)
                }
                (Some(_), false) if self.hub.is_empty() => {
                    // Routing translated the request for every target that needs it; a safety net.
                    return Err(ProviderError::Rejected(
                        "the request has no chat completions translation".to_owned(),
                    ));
                }
                (Some(_), false) => (
                    &self.hub,
                    WireFormat::OpenAi,
                    Endpoint::Chat,
                    self.add_stream_usage,
                ),
                (None, _) => (
                    &self.hub,
                    WireFormat::OpenAi,
                    self.dialect.endpoint(),
                    self.add_stream_usage,
                ),
            },
        )
    }

    fn headers_for(&self, candidate: &Candidate, format: WireFormat) -> Vec<(String, String)> {
        // Anthropic's version and beta headers matter only to Anthropic's own API.
        let mut headers = if format == WireFormat::Anthropic {
            self.request.inbound.passthrough_headers.clone()
        } else {
            Vec::new()
        };
        headers.extend(self.client_headers.iter().cloned());
        // To the parent session's proxy: this request is recorded here, not there too.
        if let Some(parent) = &self.state.forward_to_parent
            && parent.serves(&self.rt.config.providers[candidate.provider].base_url)
        {
            headers.push((FORWARDED_SESSION.to_owned(), parent.session_id.clone()));
        }
        headers
    }
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
