//! The public listener's routes: which path goes to which handler. Model requests run the
//! pipeline; everything else is a small view that needs no provider.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::auth::{
    authorize, authorize_admin, authorize_anthropic, authorize_ollama, presents_key,
};
use super::body::{ProxyBody, error_response, json_response};
use super::context::{Finalizer, Peer, new_request_id};
use super::dialect::Dialect;
use super::error::ApiError;
use super::pipeline::{refuse, serve};
use super::state::AppState;
use super::views;

/// The Ollama version reported to Ollama clients, which gate features on it.
const OLLAMA_COMPAT_VERSION: &str = "0.12.6";

pub async fn handle(
    state: Arc<AppState>,
    peer: Peer,
    local: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = req.uri().path();
    let method = req.method();
    let admitted = browser_check(&state, local, &req);
    let dialect = match (method, path) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => Some(Dialect::OpenAi),
        (&Method::POST, "/v1/completions" | "/completions") => Some(Dialect::Completions),
        (&Method::POST, "/v1/embeddings" | "/embeddings") => Some(Dialect::Embeddings),
        (&Method::POST, "/v1/responses" | "/responses") => Some(Dialect::Responses),
        (&Method::POST, "/v1/messages") => Some(Dialect::Anthropic),
        (&Method::POST, "/api/chat") => Some(Dialect::OllamaChat),
        (&Method::POST, "/api/generate") => Some(Dialect::OllamaGenerate),
        _ => None,
    };
    if let Some(dialect) = dialect {
        // A model request a web page sent is refused before it costs anything, with its row.
        // One that carries a key is no page's: a key header needs a preflight, never granted.
        let admitted = admitted.and_then(|()| {
            (crate::http_guard::json_or_undeclared(req.headers()) || presents_key(req.headers()))
                .then_some(())
                .ok_or_else(ApiError::not_json)
        });
        return match admitted {
            Ok(()) => serve(state, peer, req, dialect).await,
            Err(err) => refuse(state, &peer, &req, dialect, err),
        };
    }
    if let Err(err) = admitted {
        return reject(&state, err);
    }
    let headers = req.headers();
    match (method, path) {
        (
            _,
            "/v1/chat/completions"
            | "/chat/completions"
            | "/v1/messages"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/responses",
        ) => reject(&state, ApiError::method_not_allowed(method, path, "POST")),
        (&Method::GET, "/v1/models" | "/models") => match authorize(&state, &peer, headers) {
            Ok(_) => views::models(&state),
            Err(err) => reject(&state, err),
        },
        // Estimated here, so a pass-through credential is only checked for presence.
        (&Method::POST, "/v1/messages/count_tokens") => {
            let passthrough = state.runtime().config.passthrough;
            match authorize_anthropic(&state, passthrough, &peer, headers) {
                Ok(_) => views::count_tokens(&state, req).await,
                Err(err) => reject_for(&state, err, Dialect::Anthropic),
            }
        }
        (&Method::GET | &Method::HEAD, "/api/tags") => {
            match authorize_ollama(&state, &peer, headers) {
                Ok(_) => views::ollama_tags(&state),
                Err(err) => reject_for(&state, err, Dialect::OllamaChat),
            }
        }
        (&Method::POST, "/api/show") => match authorize_ollama(&state, &peer, headers) {
            Ok(_) => views::ollama_show(&state, req).await,
            Err(err) => reject_for(&state, err, Dialect::OllamaChat),
        },
        // The version tells nothing about the daemon; Ollama clients probe it before anything.
        (&Method::GET | &Method::HEAD, "/api/version") => json_response(
            StatusCode::OK,
            json!({"version": OLLAMA_COMPAT_VERSION}).to_string(),
        ),
        (&Method::GET, "/debug/status") => match authorize_admin(&state, peer.addr, headers) {
            Ok(()) => views::debug_status(&state),
            Err(err) => reject(&state, err),
        },
        (&Method::GET, "/stats") => match authorize_admin(&state, peer.addr, headers) {
            Ok(()) => views::stats(&state).await,
            Err(err) => reject(&state, err),
        },
        // Clients probe the base URL before anything (Claude Code sends `HEAD /`): an answer,
        // not a refusal in the ledger.
        (&Method::GET | &Method::HEAD, "/") => json_response(
            StatusCode::OK,
            json!({"name": "smartproxy", "version": env!("CARGO_PKG_VERSION")}).to_string(),
        ),
        (&Method::GET | &Method::HEAD, "/healthz") => {
            json_response(StatusCode::OK, r#"{"status":"ok"}"#)
        }
        (&Method::GET | &Method::HEAD, "/readyz") => views::readyz(&state),
        (&Method::GET, path)
            if path.starts_with("/v1/responses/") || path.starts_with("/responses/") =>
        {
            match authorize(&state, &peer, headers) {
                Ok(_) => super::stored_responses::retrieve(&state, path).await,
                Err(err) => reject(&state, err),
            }
        }
        (_, path) if path.starts_with("/v1/responses/") => {
            reject(&state, ApiError::unsupported_endpoint(path))
        }
        (method, path) => reject(&state, ApiError::not_found(method, path)),
    }
}

/// `http_guard::check` with this listener's config: who may reach it from a browser.
pub(super) fn browser_check<B>(
    state: &AppState,
    local: SocketAddr,
    req: &Request<B>,
) -> Result<(), ApiError> {
    crate::http_guard::check(
        &state.runtime().config.browsers,
        local,
        req.method(),
        req.uri(),
        req.headers(),
    )
    .map_err(|refusal| ApiError::browser(&refusal))
}

/// Answers and records a request refused before any pipeline phase.
pub(super) fn reject(state: &Arc<AppState>, err: ApiError) -> Response<ProxyBody> {
    reject_for(state, err, Dialect::OpenAi)
}

/// `reject`, with the error body in the shape `dialect`'s clients read.
pub(super) fn reject_for(
    state: &Arc<AppState>,
    err: ApiError,
    dialect: Dialect,
) -> Response<ProxyBody> {
    let finalizer = Finalizer::new(Arc::clone(state), new_request_id(), "other");
    let id = finalizer.id().to_owned();
    finalizer.finish(err.status().as_u16(), err.outcome(), Some(err.code()));
    error_response(&err, dialect, &id)
}
