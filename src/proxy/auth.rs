//! Who may use which endpoint: the key a request presents, checked against the client keys
//! (model endpoints), the admin key (admin views), or let in without one (Ollama clients on a
//! proxy that allows it).

use std::net::SocketAddr;

use http::HeaderMap;

use super::error::ApiError;
use super::state::AppState;

/// Whether the request carries a key at all.
pub fn presents_key(headers: &HeaderMap) -> bool {
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
        None => Err(ApiError::unauthorized(state.daemon_sessions.is_some())),
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
