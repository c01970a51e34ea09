//! The admin listener: reload, stats, budget, Prometheus metrics and debug views. It listens on
//! its own address (127.0.0.1:4101 by default) so that it never shares a port with clients.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::auth::authorize_admin;
use super::body::{ProxyBody, error_response, json_response};
use super::dialect::Dialect;
use super::error::ApiError;
use super::router::{browser_check, reject};
use super::state::AppState;
use super::views::{debug_status, stats};

pub async fn handle(
    state: Arc<AppState>,
    peer: SocketAddr,
    local: SocketAddr,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = req.uri().path();
    // Every route, the dashboard's included: no page on another site, no rebinding name.
    if let Err(err) = browser_check(&state, local, &req) {
        return reject(&state, err);
    }
    // The dashboard's pages check their own access (`WEBUI_SECURITY`, JWT); `/admin/*`,
    // `/metrics` and `/debug/*` keep the admin key.
    if let Some(web) = &state.web
        && crate::web::is_web_path(path)
    {
        return crate::web::handle(Arc::clone(web), peer, req)
            .await
            .map(ProxyBody::full);
    }
    // Health checks need no key: they say nothing but "up".
    if path != "/healthz"
        && let Err(err) = authorize_admin(&state, peer, req.headers())
    {
        return reject(&state, err);
    }
    match (req.method(), path) {
        (&Method::POST, "/admin/reload") => reload(&state).await,
        (&Method::GET, "/admin/stats" | "/stats") => stats(&state).await,
        (&Method::GET, "/admin/budget") => budget(&state).await,
        (&Method::GET, "/metrics") => metrics(&state),
        (&Method::GET, "/debug/routes") => routes(&state),
        (&Method::GET, "/debug/status") => debug_status(&state),
        (&Method::GET, "/healthz") => json_response(StatusCode::OK, r#"{"status":"ok"}"#),
        (method, path) => error_response(&ApiError::not_found(method, path), Dialect::OpenAi, ""),
    }
}

/// Reloads the config file; a bad one is refused and the old one keeps serving.
pub async fn reload(state: &Arc<AppState>) -> Response<ProxyBody> {
    let state = Arc::clone(state);
    let result = tokio::task::spawn_blocking(move || {
        let reloaded = state.reload_from_source();
        if let (Ok(_), Some(after)) = (&reloaded, state.after_reload) {
            after(&state);
        }
        reloaded
    })
    .await;
    match result {
        Ok(Ok(reloaded)) => json_response(
            StatusCode::OK,
            json!({"reloaded": true, "source": reloaded.source, "restart_needed": reloaded.restart_needed})
                .to_string(),
        ),
        Ok(Err(message)) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"reloaded": false, "error": {"message": message, "type": "invalid_request_error", "code": "invalid_config"}})
                .to_string(),
        ),
        Err(err) => error_response(&ApiError::internal(format!("reload failed: {err}")), Dialect::OpenAi, ""),
    }
}

async fn budget(state: &Arc<AppState>) -> Response<ProxyBody> {
    let (spent, reserved) = state.budget.spent_and_reserved();
    let mut body = json!({
        "session": {
            "limit_usd": state.budget.limit_usd(),
            "spent_usd": spent,
            "reserved_usd": reserved,
            "remaining_usd": state.budget.remaining_usd(),
        }
    });
    if let Some(shared) = &state.shared_budget {
        let shared = Arc::clone(shared);
        let standings =
            tokio::task::spawn_blocking(move || shared.standings(crate::ledger::now_ms()))
                .await
                .unwrap_or_default();
        for s in standings {
            body[s.name] = json!({
                "limit_usd": s.limit_usd, "spent_usd": s.spent_usd, "reserved_usd": s.reserved_usd,
                "remaining_usd": s.remaining_usd(),
            });
        }
    }
    json_response(StatusCode::OK, body.to_string())
}

fn metrics(state: &AppState) -> Response<ProxyBody> {
    let mut text = state.metrics.render(
        &state.health.snapshot(std::time::Instant::now()),
        state.ledger.dropped(),
        state.ledger.queued(),
    );
    if let Some(capture) = &state.capture {
        super::metrics::render_capture(&mut text, &capture.counters());
    }
    let mut response = Response::new(ProxyBody::full(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn routes(state: &AppState) -> Response<ProxyBody> {
    let rt = state.runtime();
    let config = &rt.config;
    let name = |i: usize| {
        config
            .providers
            .get(i)
            .map_or("?", |p| p.name.as_str())
            .to_owned()
    };
    let target = |t: &crate::config::Target| {
        let provider = if t.provider == usize::MAX {
            "(whoever serves it)".to_owned()
        } else {
            name(t.provider)
        };
        json!({"provider": provider, "model": t.model})
    };
    let aliases: serde_json::Map<String, serde_json::Value> = config
        .aliases
        .iter()
        .map(|(alias, targets)| (alias.clone(), targets.iter().map(target).collect()))
        .collect();
    let routes: Vec<serde_json::Value> = config
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.label,
                "model": r.matcher.model.as_ref().map(ToString::to_string),
                "source": r.matcher.source.map(|n| n.to_string()),
                "stream": r.matcher.stream, "tools": r.matcher.tools, "images": r.matcher.images,
                "min_tokens": r.matcher.min_tokens, "max_tokens": r.matcher.max_tokens, "tag": r.matcher.tag,
                "targets": r.targets.iter().map(target).collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = json!({
        "model_map": config.model_map,
        "aliases": aliases,
        "routes": routes,
        "default_provider": config.default_provider.map(name),
    });
    json_response(StatusCode::OK, body.to_string())
}
