//! Who may use which endpoint: the key a request presents, checked against the client keys
//! (model endpoints), the admin key (admin views), or let in without one (Ollama clients on a
//! proxy that allows it), or, in pass-through mode, the Anthropic client's own credential.

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;

use super::context::Peer;
use super::error::ApiError;
use super::keys::ClientKey;
use super::state::AppState;
use crate::config::Secret;
use crate::providers::ClientCredential;

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

/// Checks the client's key when this proxy requires one and returns the key (its name, and
/// for a team ledger's key its user, team and limits). The connection remembers the key it
/// presented last (`KeyMemo`), so keep-alive requests skip hashing it again.
pub(super) fn authorize(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
) -> Result<Option<Arc<ClientKey>>, ApiError> {
    if state.keys.is_open() {
        return Ok(None);
    }
    let name = guarded(state, peer.addr, headers, |key| {
        state.keys.identify_remembered(key, &peer.keys)
    })?;
    match name {
        Some(key) => Ok(Some(key)),
        None => Err(ApiError::unauthorized(state.daemon_sessions.is_some())),
    }
}

/// Looks up the presented key with `identify`, braking guessers: a client off loopback that
/// sent `key_throttle::MAX_FAILURES` wrong keys within a minute is refused (429) until the
/// minute is over, whatever it sends. Loopback clients are not counted (their processes can
/// read the user's keys anyway, and one misconfigured tool must not lock out every other).
fn guarded<T>(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    identify: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    let ip = peer.ip().to_canonical();
    let counted = !ip.is_loopback();
    let now = std::time::Instant::now();
    if counted && let Err(wait) = state.key_throttle.admit(ip, now) {
        return Err(ApiError::too_many_wrong_keys(wait));
    }
    let key = presented_key(headers);
    let found = key.and_then(identify);
    if found.is_none() && key.is_some() && counted {
        state.key_throttle.failed(ip, now);
    }
    Ok(found)
}

/// Who a request to the Anthropic endpoints is.
#[derive(Debug)]
pub(super) struct Access {
    /// The client key, as `authorize` returns it.
    pub key: Option<Arc<ClientKey>>,
    /// The client's own credential, to forward in place of the provider's key.
    pub credential: Option<ClientCredential>,
}

/// `authorize` for Anthropic's endpoints. With pass-through on (`passthrough: anthropic`,
/// `run --passthrough`), a request whose credential is none of this proxy's keys is let in with
/// that credential, which it is forwarded with. Under `run` that is every request (the proxy
/// listens on loopback for one command: the port is the session's identity); the daemon takes
/// them from loopback clients only, and keeps requiring its keys from everyone else.
pub(super) fn authorize_anthropic(
    state: &AppState,
    passthrough: bool,
    peer: &Peer,
    headers: &HeaderMap,
) -> Result<Access, ApiError> {
    let daemon = state.daemon_sessions.is_some();
    if !passthrough || (daemon && !peer.addr.ip().is_loopback()) {
        let key = authorize(state, peer, headers)?;
        return Ok(Access {
            key,
            credential: None,
        });
    }
    if let Some(key) = presented_key(headers).and_then(|key| state.keys.identify(key)) {
        return Ok(Access {
            key: Some(key),
            credential: None,
        });
    }
    match client_credential(headers) {
        Some(credential) => Ok(Access {
            key: None,
            credential: Some(credential),
        }),
        None if state.keys.is_open() => Ok(Access {
            key: None,
            credential: None,
        }),
        None => Err(ApiError::passthrough_unauthorized()),
    }
}

/// The credential an Anthropic client sends: a bearer token (Claude Code's OAuth login) or an
/// `x-api-key`.
fn client_credential(headers: &HeaderMap) -> Option<ClientCredential> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(auth) = text("authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())?;
        return Some(ClientCredential::Bearer(Secret::new(token.to_owned())));
    }
    text("x-api-key").map(|key| ClientCredential::ApiKey(Secret::new(key.to_owned())))
}

/// `authorize` for Ollama's endpoints: Ollama clients cannot send a key, so where keyless access
/// is allowed (a `run` session's own proxy, or a daemon with `ollama.keyless: true`) a loopback
/// client without one is let in. A key that is sent must be right.
pub(super) fn authorize_ollama(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
) -> Result<Option<Arc<ClientKey>>, ApiError> {
    let keyless = state.ollama_keyless || state.runtime().config.ollama_keyless;
    if keyless && peer.addr.ip().is_loopback() && !presents_key(headers) {
        return Ok(None);
    }
    authorize(state, peer, headers)
}

/// Checks the admin key. Without one configured, admin is open only on a proxy that is open to
/// clients too (a loopback daemon without client keys): a client key never opens it.
pub(super) fn authorize_admin(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if state.admin_keys.is_empty() {
        return if state.keys.is_open() {
            Ok(())
        } else {
            Err(ApiError::admin_key_not_set())
        };
    }
    match guarded(state, peer, headers, |key| {
        state.admin_keys.identify(key).map(|_| ())
    })? {
        Some(()) => Ok(()),
        None => Err(ApiError::admin_unauthorized()),
    }
}
