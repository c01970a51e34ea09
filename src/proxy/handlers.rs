//! The HTTP endpoints. Chat completions run the pipeline described in the module doc of `proxy`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
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
use crate::providers::{BodyStream, UpstreamRequest};
use crate::routing::plan;
use crate::wire::estimate_tokens;
use crate::wire::openai::{ChatRequestView, RequestError, ResponseView, rewrite_request};

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
        body: Bytes,
    },
    Stream {
        upstream: BodyStream,
        drop_usage_chunk: bool,
        prompt_estimate: u64,
    },
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
    match pipeline(&state, &mut fin, req).await {
        Ok(Reply::Whole {
            status,
            content_type,
            body,
        }) => {
            let mut response = Response::new(ProxyBody::full(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = content_type.as_deref().unwrap_or("application/json");
            if let Ok(value) = HeaderValue::from_str(content_type) {
                response.headers_mut().insert(CONTENT_TYPE, value);
            }
            routing_headers(response.headers_mut(), &mut fin, true);
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
        }) => {
            let mut headers = HeaderMap::new();
            routing_headers(&mut headers, &mut fin, false);
            let relay = SseRelay::new(upstream, fin, drop_usage_chunk, prompt_estimate);
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
            fin.finish(err.status.as_u16(), err.outcome(), Some(err.code));
            err.into_response(&id)
        }
    }
}

/// parse -> auth -> budget -> plan -> attempt. Fills in the ledger row as it learns things.
async fn pipeline(
    state: &AppState,
    fin: &mut Finalizer,
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

    let decision = plan::plan(&state.config, &view.model).map_err(|e| ApiError::no_route(&e))?;
    let provider_config = &state.config.providers[decision.provider];
    {
        let record = fin.record();
        record.route = Some(decision.route.to_owned());
        record.provider = Some(provider_config.name.clone());
        record.served_model = Some(decision.upstream_model.clone());
    }

    let prompt_estimate = estimate_tokens(view.messages.get().len());
    let estimate = TokenCounts {
        prompt: prompt_estimate,
        completion: view.output_cap().unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        cached_prompt: 0,
    };
    let estimate_usd = state
        .cost_usd(
            Some(&provider_config.name),
            &decision.upstream_model,
            estimate,
        )
        .unwrap_or(0.0);
    let reservation = state
        .budget
        .reserve(estimate_usd)
        .map_err(|refusal| ApiError::budget_exceeded(&refusal))?;
    fin.hold(reservation);

    let add_stream_usage = stream && !view.wants_stream_usage();
    let new_model =
        (decision.upstream_model != view.model).then_some(decision.upstream_model.as_str());
    let upstream_body = match rewrite_request(&body, new_model, add_stream_usage) {
        Ok(Some(rewritten)) => Bytes::from(rewritten),
        Ok(None) => body.clone(),
        Err(e) => {
            return Err(ApiError::bad_request(RequestError::new(
                e.to_string(),
                "messages",
            )));
        }
    };
    drop(view);

    let provider = &state.providers[decision.provider];
    fin.record().attempts = 1;
    let response = provider
        .send(UpstreamRequest {
            body: upstream_body,
            stream,
            request_id: fin.id().to_owned(),
        })
        .await
        .map_err(|e| ApiError::upstream(&e))?;

    if stream && (200..300).contains(&response.status) {
        return Ok(Reply::Stream {
            upstream: response.body,
            drop_usage_chunk: add_stream_usage,
            prompt_estimate,
        });
    }
    let status = response.status;
    let content_type = response.content_type;
    let bytes = collect(response.body)
        .await
        .map_err(|e| ApiError::upstream(&e))?;
    fin.set_ttfb();
    if (200..300).contains(&status) {
        let parsed: ResponseView = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(model) = parsed.model.as_ref().filter(|m| !m.is_empty()) {
            fin.record().served_model = Some(model.clone());
        }
        let tokens = match &parsed.usage {
            Some(usage) => Tokens::from_usage(usage),
            None => Tokens::estimated(prompt_estimate, estimate_tokens(parsed.content_bytes())),
        };
        fin.set_tokens(tokens);
    }
    Ok(Reply::Whole {
        status,
        content_type,
        body: bytes,
    })
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

async fn collect(mut body: BodyStream) -> Result<Bytes, crate::providers::ProviderError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        match &first {
            None if rest.is_empty() => first = Some(chunk),
            _ => {
                if let Some(f) = first.take() {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(rest)))
}

fn routing_headers(headers: &mut HeaderMap, fin: &mut Finalizer, with_cost: bool) {
    set_request_id(headers, fin.id());
    let record = fin.record();
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    };
    put("x-smartproxy-route", record.route.as_deref());
    put("x-smartproxy-provider", record.provider.as_deref());
    put("x-smartproxy-model", record.served_model.as_deref());
    put("x-smartproxy-attempts", Some(&record.attempts.to_string()));
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
