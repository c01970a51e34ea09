//! The HTTP endpoints. Chat completions run the pipeline described in the module doc of `proxy`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::AppState;
use super::body::ProxyBody;
use super::context::{Finalizer, Tokens, new_request_id, salted_hash};
use super::error::{ApiError, json_response, set_request_id};
use super::stream::SseRelay;
use crate::ledger::Outcome;
use crate::ledger::pricing::TokenCounts;
use crate::providers::{BodyStream, ProviderError, UpstreamRequest};
use crate::routing::execute::{Executor, Reply as ExecReply};
use crate::routing::health::Transition;
use crate::routing::plan::{self, Candidate, Facts};
use crate::transform::StreamTransform;
use crate::wire::estimate_tokens;
use crate::wire::openai::{ChatRequestView, ResponseView, rewrite_request};

/// Output tokens assumed for a budget reservation when the request sets no `max_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 1024;

pub async fn handle(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
            chat(state, peer, req).await
        }
        (_, "/v1/chat/completions" | "/chat/completions") => reject(
            &state,
            ApiError::method_not_allowed(req.method(), path, "POST"),
        ),
        (&Method::GET, "/v1/models" | "/models") => match authorize(&state, req.headers()) {
            Ok(()) => models(&state),
            Err(err) => err.into_response(""),
        },
        (&Method::GET | &Method::HEAD, "/healthz") => {
            json_response(StatusCode::OK, r#"{"status":"ok"}"#)
        }
        (&Method::GET | &Method::HEAD, "/readyz") => readyz(&state),
        (_, "/v1/responses" | "/v1/completions" | "/v1/embeddings") => {
            reject(&state, ApiError::unsupported_endpoint(path))
        }
        (method, path) => reject(&state, ApiError::not_found(method, path)),
    }
}

/// Answers and records a request refused before any pipeline phase.
fn reject(state: &Arc<AppState>, err: ApiError) -> Response<ProxyBody> {
    let finalizer = Finalizer::new(Arc::clone(state), new_request_id(), "other");
    let id = finalizer.id().to_owned();
    finalizer.finish(err.status.as_u16(), err.outcome(), Some(err.code));
    err.into_response(&id)
}

/// What the pipeline produced, before it becomes a response.
enum Reply {
    Whole {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        body: Bytes,
    },
    Stream {
        upstream: BodyStream,
        drop_usage_chunk: bool,
        prompt_estimate: u64,
        transform: Option<StreamTransform>,
    },
}

/// Facts about the trip for the response headers.
#[derive(Default)]
struct Trip {
    failover: bool,
    /// Time spent waiting on providers (attempts and backoff), to tell smartproxy's own share.
    upstream: Duration,
}

async fn chat(
    state: Arc<AppState>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut fin = Finalizer::new(Arc::clone(&state), new_request_id(), "chat.completions");
    let id = fin.id().to_owned();
    let record = fin.record();
    record.user_agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(200).collect());
    record.client_hash = Some(salted_hash(
        state.ledger.salt(),
        peer.ip().to_string().as_bytes(),
    ));
    let mut trip = Trip::default();
    match pipeline(&state, &mut fin, &mut trip, peer, req).await {
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
            let content_type = content_type.as_deref().unwrap_or("application/json");
            if let Ok(value) = HeaderValue::from_str(content_type) {
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
            upstream,
            drop_usage_chunk,
            prompt_estimate,
            transform,
        }) => {
            let mut headers = HeaderMap::new();
            routing_headers(&state, &mut headers, &mut fin, &trip, false);
            let relay = SseRelay::new(upstream, fin, drop_usage_chunk, prompt_estimate, transform);
            let mut response = Response::new(ProxyBody::Stream(Box::new(relay)));
            *response.headers_mut() = headers;
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            response
        }
        Err(err) => {
            let (status, outcome, code) = (err.status.as_u16(), err.outcome(), err.code);
            let mut response = err.into_response(&id);
            if fin.record().attempts > 0 {
                routing_headers(&state, response.headers_mut(), &mut fin, &trip, false);
            }
            fin.finish(status, outcome, Some(code));
            response
        }
    }
}

/// parse -> auth -> plan -> budget -> attempts. Fills in the ledger row as it learns things.
async fn pipeline(
    state: &AppState,
    fin: &mut Finalizer,
    trip: &mut Trip,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    authorize(state, req.headers())?;
    let body = read_body(req, state.config.max_body_bytes).await?;
    fin.record().fingerprint = Some(salted_hash(state.ledger.salt(), &body));

    let view = ChatRequestView::parse(&body).map_err(ApiError::bad_request)?;
    let stream = view.is_stream();
    {
        let record = fin.record();
        record.requested_model = Some(view.model.to_string());
        record.stream = stream;
    }

    let prompt_estimate = estimate_tokens(view.messages.get().len());
    let facts = Facts {
        model: &view.model,
        stream,
        tools: view.has_tools(),
        images: view.has_images(),
        json: view.wants_json(),
        prompt_tokens: prompt_estimate,
        source: Some(peer.ip()),
        tag: state.session_tag.as_deref(),
    };
    let now = Instant::now();
    let plan = plan::plan(&state.config, &facts, &|p, m| {
        state.health.is_open(p, m, now)
    })
    .map_err(|e| ApiError::no_route(&e))?;
    let first = &plan.targets[0];
    let first_provider = &state.config.providers[first.provider];
    {
        let record = fin.record();
        record.route = Some(plan.route.clone());
        record.provider = Some(first_provider.name.clone());
        record.served_model = Some(first.model.clone());
    }

    let estimate = TokenCounts {
        prompt: prompt_estimate,
        completion: view.output_cap().unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        cached_prompt: 0,
    };
    let estimate_usd = state
        .cost_usd(Some(&first_provider.name), &first.model, estimate)
        .unwrap_or(0.0);
    let reservation = state
        .budget
        .reserve(estimate_usd)
        .map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
    fin.hold(reservation);

    let add_stream_usage = stream && !view.wants_stream_usage();
    let requested = view.model.to_string();
    let transforms = state.transforms();
    let body = match transforms.apply_to_request(&body) {
        Some(changed) => Bytes::from(changed),
        None => body.clone(),
    };
    let request_id = fin.id().to_owned();
    let request_for = |candidate: &Candidate| -> Result<UpstreamRequest, ProviderError> {
        let new_model = (candidate.model != requested).then_some(candidate.model.as_str());
        let body = match rewrite_request(&body, new_model, add_stream_usage) {
            Ok(Some(rewritten)) => Bytes::from(rewritten),
            Ok(None) => body.clone(),
            Err(e) => {
                return Err(ProviderError::Internal(format!(
                    "cannot rewrite the request: {e}"
                )));
            }
        };
        Ok(UpstreamRequest {
            body,
            stream,
            request_id: request_id.clone(),
        })
    };
    let on_transition = |provider: &str, model: &str, transition: Transition| {
        state.record_transition(provider, model, transition)
    };
    let executor = Executor {
        config: &state.config,
        providers: &state.providers,
        health: &state.health,
        on_transition: &on_transition,
    };
    let executed = executor.run(&plan, stream, &request_for).await;
    trip.failover = executed.failed_over(&plan);
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
            record.provider = Some(state.config.providers[served.provider].name.clone());
            record.served_model = Some(served.model.clone());
        }
        record.attempt_log = executed.attempts;
    }

    match executed.result.map_err(|e| ApiError::upstream(&e))? {
        ExecReply::Stream(response) => Ok(Reply::Stream {
            upstream: response.body,
            drop_usage_chunk: add_stream_usage,
            prompt_estimate,
            transform: transforms.any_on_response().then(|| transforms.stream()),
        }),
        ExecReply::Whole {
            status,
            content_type,
            retry_after,
            body: bytes,
        } => {
            fin.set_ttfb();
            if (200..300).contains(&status) {
                let parsed: ResponseView = serde_json::from_slice(&bytes).unwrap_or_default();
                if let Some(model) = parsed.model.as_ref().filter(|m| !m.is_empty()) {
                    fin.record().served_model = Some(model.clone());
                }
                let tokens = match &parsed.usage {
                    Some(usage) => Tokens::from_usage(usage),
                    None => {
                        Tokens::estimated(prompt_estimate, estimate_tokens(parsed.content_bytes()))
                    }
                };
                fin.set_tokens(tokens);
            }
            let bytes = match (200..300).contains(&status) && transforms.any_on_response() {
                true => transforms
                    .apply_to_response(&bytes)
                    .map_or(bytes, Bytes::from),
                false => bytes,
            };
            Ok(Reply::Whole {
                status,
                content_type,
                retry_after,
                body: bytes,
            })
        }
    }
}

/// Checks the client's key when this proxy requires one. Constant-time comparison.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.client_key else {
        return Ok(());
    };
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()));
    match presented {
        Some(key) if super::auth::keys_match(key.trim(), expected.expose()) => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(err) => Err(ApiError::unreadable_body(&err.to_string())),
    }
}

fn routing_headers(
    state: &AppState,
    headers: &mut HeaderMap,
    fin: &mut Finalizer,
    trip: &Trip,
    with_cost: bool,
) {
    set_request_id(headers, fin.id());
    if !state.config.response_headers {
        return;
    }
    let overhead = fin.started().elapsed().saturating_sub(trip.upstream);
    let record = fin.record();
    let target = match (&record.provider, &record.served_model) {
        (Some(p), Some(m)) => Some(format!("{p}/{m}")),
        _ => None,
    };
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    };
    put("x-smartproxy-route", record.route.as_deref());
    put("x-smartproxy-target", target.as_deref());
    put("x-smartproxy-provider", record.provider.as_deref());
    put("x-smartproxy-model", record.served_model.as_deref());
    put("x-smartproxy-attempts", Some(&record.attempts.to_string()));
    put(
        "x-smartproxy-failover",
        Some(if trip.failover { "true" } else { "false" }),
    );
    put("x-smartproxy-cache", Some(record.cache_status));
    put(
        "x-smartproxy-overhead-ms",
        Some(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)),
    );
    if with_cost {
        put(
            "x-smartproxy-cost",
            record.cost_usd.map(|c| format!("{c:.8}")).as_deref(),
        );
    }
}

fn models(state: &AppState) -> Response<ProxyBody> {
    let mut data = Vec::new();
    for provider in &state.config.providers {
        let names: Vec<&str> = if provider.kind == crate::config::ProviderKind::Mock {
            crate::providers::mock::LISTED_MODELS.to_vec()
        } else {
            provider.models.iter().filter_map(|m| m.exact()).collect()
        };
        for name in names {
            data.push(
                json!({"id": name, "object": "model", "created": 0, "owned_by": provider.name}),
            );
        }
    }
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data}).to_string(),
    )
}

fn readyz(state: &AppState) -> Response<ProxyBody> {
    let usable = state
        .config
        .providers
        .iter()
        .filter(|p| p.enabled && !p.missing_credential())
        .count();
    if usable > 0 {
        json_response(
            StatusCode::OK,
            json!({"status": "ready", "providers": usable}).to_string(),
        )
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "no usable provider", "providers": 0}).to_string(),
        )
    }
}
