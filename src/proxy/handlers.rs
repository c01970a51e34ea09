//! The HTTP endpoints: which path goes where, and the small ones that need no provider (model
//! lists, health, Ollama's discovery endpoints). Model requests run `pipeline::serve`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;

use super::AppState;
use super::body::ProxyBody;
use super::context::{Finalizer, Peer, new_request_id};
use super::error::{ApiError, X_REQUEST_ID, json_response, set_request_id};
use super::inbound::Dialect;
use super::pipeline::{Trip, serve};
use crate::config::ProviderKind;
use crate::translate::ollama;
use crate::wire::estimate_tokens;

/// The Ollama version reported to Ollama clients, which gate features on it.
const OLLAMA_COMPAT_VERSION: &str = "0.12.6";

pub async fn handle(
    state: Arc<AppState>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = req.uri().path();
    let method = req.method();
    let dialect = match (method, path) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => Some(Dialect::OpenAi),
        (&Method::POST, "/v1/completions" | "/completions") => Some(Dialect::Completions),
        (&Method::POST, "/v1/messages") => Some(Dialect::Anthropic),
        (&Method::POST, "/api/chat") => Some(Dialect::OllamaChat),
        (&Method::POST, "/api/generate") => Some(Dialect::OllamaGenerate),
        _ => None,
    };
    if let Some(dialect) = dialect {
        return serve(state, peer, req, dialect).await;
    }
    let headers = req.headers();
    match (method, path) {
        (_, "/v1/chat/completions" | "/chat/completions" | "/v1/messages" | "/v1/completions") => {
            reject(&state, ApiError::method_not_allowed(method, path, "POST"))
        }
        (&Method::GET, "/v1/models" | "/models") => match authorize(&state, headers) {
            Ok(_) => models(&state),
            Err(err) => reject(&state, err),
        },
        (&Method::POST, "/v1/messages/count_tokens") => match authorize(&state, headers) {
            Ok(_) => count_tokens(&state, req).await,
            Err(err) => reject_for(&state, err, Dialect::Anthropic),
        },
        (&Method::GET | &Method::HEAD, "/api/tags") => {
            match authorize_ollama(&state, peer.addr, headers) {
                Ok(_) => ollama_tags(&state),
                Err(err) => reject_for(&state, err, Dialect::OllamaChat),
            }
        }
        (&Method::POST, "/api/show") => match authorize_ollama(&state, peer.addr, headers) {
            Ok(_) => ollama_show(&state, req).await,
            Err(err) => reject_for(&state, err, Dialect::OllamaChat),
        },
        // The version tells nothing about the daemon; Ollama clients probe it before anything.
        (&Method::GET | &Method::HEAD, "/api/version") => json_response(
            StatusCode::OK,
            json!({"version": OLLAMA_COMPAT_VERSION}).to_string(),
        ),
        (&Method::GET, "/debug/status") => match authorize_admin(&state, headers) {
            Ok(()) => debug_status(&state),
            Err(err) => reject(&state, err),
        },
        (&Method::GET, "/stats") => match authorize_admin(&state, headers) {
            Ok(()) => super::admin::stats(&state).await,
            Err(err) => reject(&state, err),
        },
        (&Method::GET | &Method::HEAD, "/healthz") => {
            json_response(StatusCode::OK, r#"{"status":"ok"}"#)
        }
        (&Method::GET | &Method::HEAD, "/readyz") => readyz(&state),
        (_, "/v1/responses" | "/v1/embeddings") => {
            reject(&state, ApiError::unsupported_endpoint(path))
        }
        (method, path) => reject(&state, ApiError::not_found(method, path)),
    }
}

/// Answers and records a request refused before any pipeline phase.
pub(super) fn reject(state: &Arc<AppState>, err: ApiError) -> Response<ProxyBody> {
    reject_for(state, err, Dialect::OpenAi)
}

/// `reject`, with the error body in the shape `dialect`'s clients read.
fn reject_for(state: &Arc<AppState>, err: ApiError, dialect: Dialect) -> Response<ProxyBody> {
    let finalizer = Finalizer::new(Arc::clone(state), new_request_id(), "other");
    let id = finalizer.id().to_owned();
    finalizer.finish(err.status.as_u16(), err.outcome(), Some(err.code));
    err.into_response_for(dialect, &id)
}

/// Anthropic's token counting, estimated (smartproxy does not run tokenizers).
async fn count_tokens(state: &AppState, req: Request<Incoming>) -> Response<ProxyBody> {
    match read_body(req, state.runtime().config.max_body_bytes).await {
        Ok(body) => json_response(
            StatusCode::OK,
            json!({"input_tokens": estimate_tokens(body.len())}).to_string(),
        ),
        Err(err) => err.into_response_for(Dialect::Anthropic, ""),
    }
}

/// The models a client may name: each provider's listed names (the mock's sample list).
fn model_names(state: &AppState) -> Vec<(String, String)> {
    let rt = state.runtime();
    let mut names = Vec::new();
    for provider in &rt.config.providers {
        if provider.kind == ProviderKind::Mock {
            for name in crate::providers::mock::LISTED_MODELS {
                names.push(((*name).to_owned(), provider.name.clone()));
            }
        } else {
            for name in provider.models.iter().filter_map(|m| m.exact()) {
                names.push((name.to_owned(), provider.name.clone()));
            }
        }
    }
    for alias in rt.config.aliases.keys() {
        names.push((alias.clone(), "alias".to_owned()));
    }
    names
}

fn ollama_tags(state: &AppState) -> Response<ProxyBody> {
    let body = ollama::tags_from_models(&model_names(state), &super::inbound::rfc3339_now());
    json_response(StatusCode::OK, body)
}

async fn ollama_show(state: &AppState, req: Request<Incoming>) -> Response<ProxyBody> {
    let body = match read_body(req, state.runtime().config.max_body_bytes).await {
        Ok(body) => body,
        Err(err) => return err.into_response_for(Dialect::OllamaChat, ""),
    };
    #[derive(serde::Deserialize)]
    struct Show {
        #[serde(alias = "name")]
        model: String,
    }
    let Ok(show) = serde_json::from_slice::<Show>(&body) else {
        return json_response(StatusCode::BAD_REQUEST, r#"{"error":"model is required"}"#);
    };
    let names = model_names(state);
    let wanted = show.model.strip_suffix(":latest").unwrap_or(&show.model);
    let Some((name, provider)) = names.iter().find(|(n, _)| n == wanted || *n == show.model) else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("model '{}' not found", show.model)}).to_string(),
        );
    };
    let window = crate::pricing::builtin(name).and_then(|e| e.context_window);
    json_response(
        StatusCode::OK,
        Bytes::from(ollama::show_for_model(name, provider, window)),
    )
}

fn models(state: &AppState) -> Response<ProxyBody> {
    let data: Vec<serde_json::Value> = model_names(state)
        .into_iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data}).to_string(),
    )
}

/// Targets and their circuit breakers, as this process sees them.
pub(super) fn debug_status(state: &AppState) -> Response<ProxyBody> {
    let rt = state.runtime();
    let providers: Vec<serde_json::Value> = rt
        .config
        .providers
        .iter()
        .map(|p| {
            json!({"name": p.name, "kind": p.kind.as_str(), "base_url": p.base_url, "enabled": p.enabled,
                "key_present": !p.missing_credential()})
        })
        .collect();
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "session_id": state.session_id.as_deref(),
        "config": rt.config.source_display(),
        "config_loaded_ms": rt.loaded_ms,
        "providers": providers,
        "breakers": state.health.snapshot(std::time::Instant::now()),
    });
    json_response(StatusCode::OK, body.to_string())
}

fn readyz(state: &AppState) -> Response<ProxyBody> {
    let usable = state
        .runtime()
        .config
        .providers
        .iter()
        .filter(|p| p.enabled && !p.missing_credential())
        .count();
    let (status, text) = if usable > 0 {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no usable provider")
    };
    json_response(
        status,
        json!({"status": text, "providers": usable}).to_string(),
    )
}

/// Whether the request carries a key at all.
pub(super) fn presents_key(headers: &HeaderMap) -> bool {
    ["authorization", "x-api-key", "api-key"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

/// The key a client presents: a bearer token, `x-api-key` or `api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
}

/// Checks the client's key when this proxy requires one and returns the key's name.
pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if state.keys.is_open() {
        return Ok(None);
    }
    match presented_key(headers).and_then(|key| state.keys.identify(key)) {
        Some(name) => Ok(Some(name.to_owned())),
        None => Err(ApiError::unauthorized()),
    }
}

/// `authorize` for Ollama's endpoints: Ollama clients cannot send a key, so where keyless access
/// is allowed (a `run` session's own proxy, or a daemon with `ollama.keyless: true`) a loopback
/// client without one is let in. A key that is sent must be right.
pub(super) fn authorize_ollama(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let keyless = state.ollama_keyless || state.runtime().config.ollama_keyless;
    if keyless && peer.ip().is_loopback() && !presents_key(headers) {
        return Ok(None);
    }
    authorize(state, headers)
}

/// Checks the admin key. Without one configured, admin is open only on a proxy that is open to
/// clients too (a loopback daemon without client keys): a client key never opens it.
pub(super) fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.admin_keys.is_empty() {
        return if state.keys.is_open() {
            Ok(())
        } else {
            Err(ApiError::admin_key_not_set())
        };
    }
    match presented_key(headers).and_then(|key| state.admin_keys.identify(key)) {
        Some(_) => Ok(()),
        None => Err(ApiError::admin_unauthorized()),
    }
}

pub(super) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let (parts, body) = req.into_parts();
    read_parts_body(&parts.headers, body, limit).await
}

/// Reads a body under the size cap; a declared length over the cap is refused before reading.
pub(super) async fn read_parts_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(err) => Err(ApiError::unreadable_body(&err.to_string())),
    }
}

/// Header names, built once at compile time rather than parsed per response.
const X_ROUTE: HeaderName = HeaderName::from_static("x-smartproxy-route");
const X_TARGET: HeaderName = HeaderName::from_static("x-smartproxy-target");
const X_PROVIDER: HeaderName = HeaderName::from_static("x-smartproxy-provider");
const X_MODEL: HeaderName = HeaderName::from_static("x-smartproxy-model");
const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-smartproxy-attempts");
const X_FAILOVER: HeaderName = HeaderName::from_static("x-smartproxy-failover");
const X_CACHE: HeaderName = HeaderName::from_static("x-smartproxy-cache");
const X_BUDGET: HeaderName = HeaderName::from_static("x-smartproxy-budget-remaining");
const X_OVERHEAD: HeaderName = HeaderName::from_static("x-smartproxy-overhead-ms");
const X_COST: HeaderName = HeaderName::from_static("x-smartproxy-cost");

pub(super) fn routing_headers(
    state: &AppState,
    headers: &mut HeaderMap,
    fin: &mut Finalizer,
    trip: &Trip,
    with_cost: bool,
) {
    if !state.runtime().config.response_headers {
        set_request_id(headers, fin.id());
        return;
    }
    let overhead = fin.started().elapsed().saturating_sub(trip.upstream);
    let record = fin.record();
    // Every value is written into one buffer and handed out as slices of it: one allocation for
    // the lot instead of two per header, on every response.
    let mut text = String::with_capacity(160);
    let mut put = |value: &dyn std::fmt::Display| {
        let start = text.len();
        let _ = write!(text, "{value}");
        start..text.len()
    };
    let id = put(&record.id);
    let target = match (&record.provider, &record.served_model) {
        (Some(p), Some(m)) => {
            let provider = put(p);
            let _ = put(&'/');
            let model = put(m);
            Some((provider.start..model.end, provider, model))
        }
        _ => None,
    };
    let route = record.route.as_ref().map(|r| put(r));
    let budget = trip.budget_remaining.map(|r| put(&format_args!("{r:.6}")));
    let overhead = put(&format_args!("{:.3}", overhead.as_secs_f64() * 1000.0));
    let cost = record
        .cost_usd
        .filter(|_| with_cost)
        .map(|c| put(&format_args!("{c:.8}")));
    let attempts = put(&record.attempts);
    let text = Bytes::from(text);
    let mut insert = |name: HeaderName, range: Option<std::ops::Range<usize>>| {
        if let Some(value) = range.and_then(|r| HeaderValue::from_maybe_shared(text.slice(r)).ok())
        {
            headers.insert(name, value);
        }
    };
    insert(X_REQUEST_ID, Some(id));
    if let Some((target, provider, model)) = target {
        insert(X_TARGET, Some(target));
        insert(X_PROVIDER, Some(provider));
        insert(X_MODEL, Some(model));
    }
    insert(X_ROUTE, route);
    insert(X_BUDGET, budget);
    insert(X_OVERHEAD, Some(overhead));
    insert(X_COST, cost);
    insert(X_ATTEMPTS, Some(attempts));
    headers.insert(
        X_FAILOVER,
        HeaderValue::from_static(if trip.failover { "true" } else { "false" }),
    );
    headers.insert(X_CACHE, HeaderValue::from_static(record.cache_status));
}
