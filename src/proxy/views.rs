//! Endpoints that need no provider: model lists, Ollama's discovery endpoints, token counts,
//! health, and the read-only views of the proxy's state (status, today's stats). Callers check
//! access first.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::body::{BodyLimits, ProxyBody, error_response, json_response, read_body};
use super::dialect::{Dialect, rfc3339_now};
use super::error::ApiError;
use super::state::AppState;
use crate::config::ProviderKind;
use crate::ledger::query::{Filter, GroupBy};
use crate::ledger::reader::LedgerReader;
use crate::translate::ollama;
use crate::wire::estimate::json_text_tokens;

/// Anthropic's token counting, estimated (smartproxy does not run tokenizers).
pub(super) async fn count_tokens(state: &AppState, req: Request<Incoming>) -> Response<ProxyBody> {
    match read_body(req, BodyLimits::of(&state.runtime().config)).await {
        Ok(body) => json_response(
            StatusCode::OK,
            json!({"input_tokens": json_text_tokens(&String::from_utf8_lossy(&body))}).to_string(),
        ),
        Err(err) => error_response(&err, Dialect::Anthropic, ""),
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

pub(super) fn ollama_tags(state: &AppState) -> Response<ProxyBody> {
    let body = ollama::tags_from_models(&model_names(state), &rfc3339_now());
    json_response(StatusCode::OK, body)
}

pub(super) async fn ollama_show(state: &AppState, req: Request<Incoming>) -> Response<ProxyBody> {
    let body = match read_body(req, BodyLimits::of(&state.runtime().config)).await {
        Ok(body) => body,
        Err(err) => return error_response(&err, Dialect::OllamaChat, ""),
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

pub(super) fn models(state: &AppState) -> Response<ProxyBody> {
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
            json!({"name": p.name, "kind": p.kind.as_str(), "base_url": crate::format::redact_url(&p.base_url), "enabled": p.enabled,
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

pub(super) fn readyz(state: &AppState) -> Response<ProxyBody> {
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

/// Today's totals from the ledger (every process's, not only this one's), on either backend.
pub(super) async fn stats(state: &Arc<AppState>) -> Response<ProxyBody> {
    let location = state.ledger.location().clone();
    let since = chrono::Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.timestamp_millis());
    let result = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let reader = LedgerReader::open(&location).map_err(|e| e.to_string())?;
        let filter = Filter {
            session_id: None,
            since_ms: since,
            until_ms: None,
        };
        let total = reader.totals(&filter).map_err(|e| e.to_string())?;
        let by_model = reader
            .grouped(&filter, GroupBy::Model)
            .map_err(|e| e.to_string())?;
        Ok(json!({"since_ms": since, "total": total, "by_model": by_model}))
    })
    .await;
    match result {
        Ok(Ok(body)) => json_response(StatusCode::OK, body.to_string()),
        Ok(Err(message)) => error_response(&ApiError::internal(message), Dialect::OpenAi, ""),
        Err(err) => error_response(&ApiError::internal(err.to_string()), Dialect::OpenAi, ""),
    }
}
