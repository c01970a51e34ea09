//! The request pipeline every model endpoint shares, whatever format the client speaks:
//! auth -> parse -> plan -> budget -> attempts -> reply in the client's format -> ledger.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::AppState;
use super::body::ProxyBody;
use super::context::{Finalizer, Peer, Tokens, new_request_id, salted_hash};
use super::error::ApiError;
use super::handlers::{authorize, read_parts_body, routing_headers};
use super::inbound::{self, Dialect, Inbound};
use super::stream::{Output, SseRelay};
use crate::ledger::Outcome;
use crate::ledger::pricing::TokenCounts;
use crate::providers::{ProviderError, UpstreamRequest, UpstreamResponse, WireFormat};
use crate::routing::execute::{Executor, Reply as ExecReply};
use crate::routing::health::Transition;
use crate::routing::plan::{self, Candidate, Facts};
use crate::translate::{anthropic, ollama};
use crate::wire::estimate_tokens;
use crate::wire::openai::{ResponseView, Rewrite, UsageView, rewrite_request};

/// Output tokens assumed for a budget reservation when the request sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

/// Facts about the trip for the response headers.
#[derive(Default)]
pub struct Trip {
    pub failover: bool,
    /// What is left of the tightest budget after this request's reservation.
    pub budget_remaining: Option<f64>,
    /// Time spent waiting on providers (attempts and backoff), to tell smartproxy's own share.
    pub upstream: Duration,
}

/// What the attempts produced, ready to become a response.
enum Reply {
    Whole {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        body: Bytes,
    },
    Stream {
        response: UpstreamResponse,
        prompt_estimate: u64,
        requested_model: String,
        client_wants_usage: bool,
        /// The cache key to store the stream under once it completes.
        cache_fill: Option<String>,
    },
}

/// Serves one model request in `dialect`.
pub async fn serve(
    state: Arc<AppState>,
    peer: Peer,
    req: Request<Incoming>,
    dialect: Dialect,
) -> Response<ProxyBody> {
    let mut fin = Finalizer::new(Arc::clone(&state), new_request_id(), dialect.label());
    let id = fin.id().to_owned();
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
    let mut trip = Trip::default();
    let transforms = state.transforms();
    let reply = run(&state, &mut fin, &mut trip, peer.addr, req, dialect).await;
    match reply {
        Ok(Reply::Whole {
            status,
            content_type,
            retry_after,
            body,
        }) => {
            let mut response = Response::new(ProxyBody::full(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let headers = response.headers_mut();
            if let Some(value) = content_type.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(CONTENT_TYPE, value);
            }
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(http::header::RETRY_AFTER, value);
            }
            routing_headers(&state, headers, &mut fin, &trip, true);
            let outcome = if (200..300).contains(&status) {
                Outcome::Ok
            } else {
                Outcome::UpstreamError
            };
            let code = (outcome != Outcome::Ok).then(|| format!("upstream_{status}"));
            fin.finish(status, outcome, code.as_deref());
            response
        }
        Ok(Reply::Stream {
            response,
            prompt_estimate,
            requested_model,
            client_wants_usage,
            cache_fill,
        }) => {
            let mut headers = HeaderMap::new();
            routing_headers(&state, &mut headers, &mut fin, &trip, false);
            let output = stream_output(
                dialect,
                response.format,
                &fin,
                &requested_model,
                client_wants_usage,
            );
            let transform = (response.format == WireFormat::OpenAi && transforms.any_on_response())
                .then(|| transforms.stream());
            let mut relay = SseRelay::new(response.body, fin, output, prompt_estimate, transform);
            if let Some(key) = cache_fill {
                relay.fill_cache(key);
            }
            let mut out = Response::new(ProxyBody::Stream(Box::new(relay)));
            *out.headers_mut() = headers;
            let h = out.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(dialect.stream_content_type()),
            );
            h.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            out
        }
        Err(err) => {
            let (status, outcome, code) = (err.status.as_u16(), err.outcome(), err.code);
            let mut response = err.into_response_for(dialect, &id);
            if fin.record().attempts > 0 {
                routing_headers(&state, response.headers_mut(), &mut fin, &trip, false);
            }
            fin.finish(status, outcome, Some(code));
            response
        }
    }
}

/// How a stream reaches a client speaking `dialect`.
fn stream_output(
    dialect: Dialect,
    format: WireFormat,
    fin: &Finalizer,
    requested: &str,
    client_wants_usage: bool,
) -> Output {
    match (dialect, format) {
        (Dialect::Anthropic, WireFormat::Anthropic) => {
            Output::AnthropicNative(Box::new(anthropic::StreamFromAnthropic::new(true, 0)))
        }
        (Dialect::Anthropic, WireFormat::OpenAi) => {
            let id = format!("msg_{}", fin.id().trim_start_matches("req_"));
            Output::Anthropic(Box::new(anthropic::StreamToAnthropic::new(requested, &id)))
        }
        (Dialect::OllamaChat | Dialect::OllamaGenerate, _) => {
            let kind = if dialect == Dialect::OllamaChat {
                ollama::Endpoint::Chat
            } else {
                ollama::Endpoint::Generate
            };
            Output::Ndjson(Box::new(ollama::NdjsonFromOpenAi::new(
                kind,
                requested,
                inbound::rfc3339_now(),
            )))
        }
        (Dialect::OpenAi | Dialect::Completions, _) => Output::OpenAi {
            drop_usage_chunk: !client_wants_usage,
        },
    }
}

async fn run(
    state: &AppState,
    fin: &mut Finalizer,
    trip: &mut Trip,
    peer: SocketAddr,
    req: Request<Incoming>,
    dialect: Dialect,
) -> Result<Reply, ApiError> {
    let rt = state.runtime();
    let (parts, body) = req.into_parts();
    let keyless_ollama = matches!(dialect, Dialect::OllamaChat | Dialect::OllamaGenerate)
        && !super::handlers::presents_key(&parts.headers);
    // Ollama clients have no way to send a key; on the loopback-only session proxy they are let
    // in without one. A key they do send must be right.
    let key_name = if keyless_ollama && peer.ip().is_loopback() {
        None
    } else {
        authorize(state, &parts.headers)?
    };
    if let Some(sessions) = &state.daemon_sessions {
        let name = key_name.as_deref().unwrap_or("anonymous");
        fin.record().session_id = Some(sessions.session_for(&state.ledger, name));
    }
    let body = read_parts_body(&parts.headers, body, rt.config.max_body_bytes).await?;
    fin.record().fingerprint = Some(salted_hash(state.ledger.salt(), &body));
    let inbound = inbound::read(dialect, body, &parts.headers)?;
    {
        let record = fin.record();
        record.requested_model = Some(inbound.model.clone());
        record.stream = inbound.stream;
    }

    let prompt_estimate = estimate_tokens(inbound.prompt_bytes);
    // Rules match the run's tag, or under the daemon the client key's name.
    let tag = inbound
        .client_session
        .as_deref()
        .or(state.session_tag.as_deref())
        .or(key_name.as_deref());
    let facts = Facts {
        model: &inbound.model,
        stream: inbound.stream,
        tools: inbound.tools,
        images: inbound.images,
        json: inbound.json,
        prompt_tokens: prompt_estimate,
        source: Some(peer.ip()),
        tag,
    };
    let now = Instant::now();
    let mut plan = plan::plan(&rt.config, &facts, &|p, m| state.health.is_open(p, m, now))
        .map_err(|e| ApiError::no_route(&e))?;
    if dialect == Dialect::Completions {
        // Legacy completions exist only on OpenAI-compatible APIs.
        plan.targets.retain(|t| {
            rt.config.providers[t.provider].kind == crate::config::ProviderKind::OpenAi
        });
        if plan.targets.is_empty() {
            return Err(ApiError::upstream(&ProviderError::Rejected(
                "legacy /v1/completions needs an OpenAI-compatible target for this model"
                    .to_owned(),
            )));
        }
    }
    let first = &plan.targets[0];
    let first_provider = &rt.config.providers[first.provider];
    {
        let record = fin.record();
        record.route = Some(plan.route.clone());
        record.provider = Some(first_provider.name.clone());
        record.served_model = Some(first.model.clone());
        if let Some(session) = &inbound.client_session {
            record.client_session = Some(session.clone());
        }
    }

    // The cache: a hit is served without a provider, a budget reservation or a cost.
    let bypass = crate::cache::bypass_requested(
        parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
    );
    let cache_key = match &state.cache {
        Some(_) if bypass => {
            fin.record().cache_status = "bypass";
            None
        }
        Some(_) if dialect != Dialect::Completions && crate::cache::cacheable(&inbound.hub) => {
            fin.record().cache_status = "miss";
            crate::cache::cache_key(
                key_name.as_deref().unwrap_or("local"),
                &first.model,
                &inbound.hub,
            )
            .ok()
        }
        _ => None,
    };
    if let (Some(cache), Some(key)) = (&state.cache, &cache_key)
        && let Some(hit) = cache.get(key.clone()).await
    {
        fin.set_cache_hit();
        fin.record().served_model = Some(hit.model.clone());
        return cached_reply(state, fin, dialect, &inbound, hit, prompt_estimate);
    }

    let estimate = TokenCounts {
        prompt: prompt_estimate,
        completion: inbound.output_cap.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        cached_prompt: 0,
        cache_write: 0,
    };
    let estimate_usd = state
        .cost_usd(Some(&first_provider.name), &first.model, estimate)
        .unwrap_or(0.0);
    let reservation = state
        .budget
        .reserve(estimate_usd)
        .map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
    fin.hold(reservation);
    trip.budget_remaining = state.budget.remaining_usd();
    if let Some(shared) = &state.shared_budget {
        let shared = Arc::clone(shared);
        let id = fin.id().to_owned();
        let key = key_name.clone();
        let reserved = tokio::task::spawn_blocking(move || {
            shared.reserve(&id, key.as_deref(), estimate_usd, crate::ledger::now_ms())
        })
        .await
        .map_err(|e| ApiError::internal(format!("budget check failed: {e}")))?;
        let standings = reserved.map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
        if !standings.is_empty() {
            fin.record().reservation_id = Some(fin.id().to_owned());
        }
        for s in standings {
            let remaining = s.remaining_usd();
            trip.budget_remaining = Some(
                trip.budget_remaining
                    .map_or(remaining, |r| r.min(remaining)),
            );
        }
    }

    let transforms = state.transforms();
    // Usage must come back on every stream: the proxy counts it, and converters need it.
    let add_stream_usage = inbound.stream && !inbound.client_wants_usage;
    let hub = if dialect == Dialect::Completions {
        inbound.hub.clone()
    } else {
        transforms
            .apply_to_request(&inbound.hub)
            .map_or_else(|| inbound.hub.clone(), Bytes::from)
    };
    let request_id = fin.id().to_owned();
    let request_for = |candidate: &Candidate| -> Result<UpstreamRequest, ProviderError> {
        let native = rt.providers[candidate.provider].native_format() == WireFormat::Anthropic;
        let (source, format, add_usage) = match (&inbound.native, native) {
            (Some(native_body), true) => (native_body, WireFormat::Anthropic, false),
            _ => (&hub, WireFormat::OpenAi, add_stream_usage),
        };
        let new_model = (candidate.model != inbound.model).then_some(candidate.model.as_str());
        // Translated bodies are smartproxy's own writing: their output cap goes under the name
        // the target takes. A client's own OpenAI body keeps the field it chose.
        let translated = matches!(
            dialect,
            Dialect::Anthropic | Dialect::OllamaChat | Dialect::OllamaGenerate
        ) && format == WireFormat::OpenAi;
        let rewrite = Rewrite {
            model: new_model,
            add_stream_usage: add_usage,
            max_completion_tokens: translated
                && rt.config.providers[candidate.provider].wants_max_completion_tokens(),
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
            endpoint: dialect.endpoint(),
            model: candidate.model.clone(),
            stream: inbound.stream,
            request_id: request_id.clone(),
            headers: inbound.passthrough_headers.clone(),
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
    let executed = executor.run(&plan, inbound.stream, &request_for).await;
    trip.failover = executed.failed_over(&plan);
    let served_native = executed
        .served
        .as_ref()
        .is_some_and(|c| rt.providers[c.provider].native_format() == WireFormat::Anthropic);
    trip.upstream = Duration::from_secs_f64(
        executed
            .attempts
            .iter()
            .map(|a| a.latency_ms + a.waited_ms)
            .sum::<f64>()
            / 1000.0,
    );
    {
        let record = fin.record();
        record.attempts = u32::try_from(executed.attempts.len()).unwrap_or(u32::MAX);
        if let Some(served) = &executed.served {
            record.provider = Some(rt.config.providers[served.provider].name.clone());
            record.served_model = Some(served.model.clone());
        }
        record.attempt_log = executed.attempts;
    }

    match executed.result.map_err(|e| ApiError::upstream(&e))? {
        ExecReply::Stream(response) => Ok(Reply::Stream {
            cache_fill: cache_key.filter(|_| response.format == WireFormat::OpenAi),
            response,
            prompt_estimate,
            requested_model: inbound.model.clone(),
            client_wants_usage: inbound.client_wants_usage,
        }),
        ExecReply::Whole {
            status,
            content_type,
            retry_after,
            body,
        } => {
            fin.set_ttfb();
            // The reply's format: translating providers answer in OpenAI's.
            let native_reply = inbound.native.is_some() && served_native;
            if let (Some(cache), Some(key)) = (&state.cache, cache_key)
                && status == 200
                && !native_reply
                && crate::cache::is_complete(&body)
            {
                let parsed: ResponseView = serde_json::from_slice(&body).unwrap_or_default();
                let usage = parsed.usage.unwrap_or_default();
                let model = fin.record().served_model.clone().unwrap_or_default();
                let provider = fin.record().provider.clone();
                let cost = state.cost_usd(
                    provider.as_deref(),
                    &model,
                    Tokens::from_usage(&usage).counts,
                );
                cache.put_later(
                    key,
                    crate::cache::CachedReply {
                        body: body.to_vec(),
                        model,
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                        cost_usd: cost,
                    },
                );
            }
            let body = whole_reply(
                state,
                fin,
                dialect,
                native_reply,
                status,
                body,
                prompt_estimate,
                &inbound,
            )?;
            let content_type = match dialect {
                Dialect::OpenAi | Dialect::Completions => content_type,
                _ => Some("application/json".to_owned()),
            };
            Ok(Reply::Whole {
                status,
                content_type,
                retry_after,
                body,
            })
        }
    }
}

/// A cache hit as a reply: whole, or replayed as a stream, in the client's format.
fn cached_reply(
    state: &AppState,
    fin: &mut Finalizer,
    dialect: Dialect,
    inbound: &Inbound,
    hit: crate::cache::CachedReply,
    prompt_estimate: u64,
) -> Result<Reply, ApiError> {
    if inbound.stream {
        let events = crate::cache::replay_as_sse(&hit.body, true)
            .map_err(|e| ApiError::internal(format!("unreadable cache entry: {e}")))?;
        let body =
            futures_util::StreamExt::boxed(futures_util::stream::iter(events.into_iter().map(Ok)));
        return Ok(Reply::Stream {
            response: UpstreamResponse {
                status: 200,
                content_type: Some("text/event-stream".to_owned()),
                retry_after: None,
                format: WireFormat::OpenAi,
                body,
            },
            prompt_estimate,
            requested_model: inbound.model.clone(),
            client_wants_usage: inbound.client_wants_usage,
            cache_fill: None,
        });
    }
    let body = whole_reply(
        state,
        fin,
        dialect,
        false,
        200,
        Bytes::from(hit.body),
        prompt_estimate,
        inbound,
    )?;
    let content_type = Some("application/json".to_owned());
    Ok(Reply::Whole {
        status: 200,
        content_type,
        retry_after: None,
        body,
    })
}

/// Reads usage from a whole reply and converts it into the client's format.
#[allow(clippy::too_many_arguments)]
fn whole_reply(
    state: &AppState,
    fin: &mut Finalizer,
    dialect: Dialect,
    native_reply: bool,
    status: u16,
    body: Bytes,
    prompt_estimate: u64,
    inbound: &Inbound,
) -> Result<Bytes, ApiError> {
    let ok = (200..300).contains(&status);
    if native_reply {
        if ok {
            #[derive(serde::Deserialize)]
            struct UsageOnly {
                usage: Option<crate::wire::anthropic::Usage>,
                model: Option<String>,
            }
            if let Ok(parsed) = serde_json::from_slice::<UsageOnly>(&body) {
                if let Some(model) = parsed.model {
                    fin.record().served_model = Some(model);
                }
                if let Some(usage) = parsed.usage {
                    let u = anthropic::TokenUsage::from_anthropic(&usage);
                    fin.set_tokens(Tokens::from_counts(
                        u.prompt,
                        u.completion,
                        u.cache_read,
                        u.cache_creation,
                    ));
                }
            }
        }
        return Ok(body);
    }
    if !ok {
        return Ok(match dialect {
            Dialect::OpenAi | Dialect::Completions => body,
            Dialect::Anthropic => Bytes::from(anthropic::error_to_anthropic(status, &body)),
            Dialect::OllamaChat | Dialect::OllamaGenerate => {
                Bytes::from(ollama::error_to_ollama(status, &body))
            }
        });
    }
    // Model and usage first; the choices are read only when the provider sent no usage.
    let head: UsageView = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(model) = head.model.filter(|m| !m.is_empty()) {
        fin.record().served_model = Some(model);
    }
    let tokens = match &head.usage {
        Some(usage) => Tokens::from_usage(usage),
        None => {
            let parsed: ResponseView = serde_json::from_slice(&body).unwrap_or_default();
            Tokens::estimated(prompt_estimate, estimate_tokens(parsed.content_bytes()))
        }
    };
    fin.set_tokens(tokens);
    let transforms = state.transforms();
    let body = if dialect != Dialect::Completions && transforms.any_on_response() {
        transforms
            .apply_to_response(&body)
            .map_or(body, Bytes::from)
    } else {
        body
    };
    let converted = match dialect {
        Dialect::OpenAi | Dialect::Completions => return Ok(body),
        Dialect::Anthropic => anthropic::response_to_anthropic(&body, &inbound.model)
            .map(|t| t.body)
            .map_err(|e| e.to_string()),
        Dialect::OllamaChat => ollama::chat_response_from_openai(&body, &inbound::rfc3339_now())
            .map(|t| t.body)
            .map_err(|e| e.to_string()),
        Dialect::OllamaGenerate => {
            ollama::generate_response_from_openai(&body, &inbound::rfc3339_now())
                .map(|t| t.body)
                .map_err(|e| e.to_string())
        }
    };
    converted.map(Bytes::from).map_err(|detail| {
        ApiError::upstream(&ProviderError::Broken {
            provider: fin.record().provider.clone().unwrap_or_default(),
            detail: format!("the reply could not be converted: {detail}"),
        })
    })
}
