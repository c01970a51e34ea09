//! `GET /v1/responses/{id}` (and `/v1/responses/{id}/input_items`): a Responses API object
//! stored by OpenAI, read from the first enabled provider that serves that API. smartproxy keeps
//! no responses of its own: the ones it translates for chat providers are not stored.

use std::sync::Arc;

use futures_util::StreamExt;
use http::{Response, StatusCode};

use super::body::{ProxyBody, error_response, json_response};
use super::dialect::Dialect;
use super::error::ApiError;
use super::state::AppState;
use crate::config::ProviderKind;
use crate::providers::ProviderError;

/// Largest stored object passed back (a response with its output, or a page of input items).
const MAX_STORED_BYTES: usize = 32 << 20;

pub(super) async fn retrieve(state: &Arc<AppState>, path: &str) -> Response<ProxyBody> {
    let rest = path
        .strip_prefix("/v1/responses/")
        .or_else(|| path.strip_prefix("/responses/"))
        .unwrap_or_default();
    if !valid(rest) {
        return refuse(ApiError::not_found(&http::Method::GET, path));
    }
    let rt = state.runtime();
    let Some(index) = rt
        .config
        .providers
        .iter()
        .position(|p| p.enabled && p.kind == ProviderKind::OpenAi && p.responses_api)
    else {
        return refuse(ApiError::upstream(&ProviderError::Rejected(
            "no provider with the Responses API is configured, and smartproxy stores no \
             responses itself (those it translates for chat providers are not kept)"
                .to_owned(),
        )));
    };
    let reply = match rt.providers[index].retrieve_response(rest).await {
        Ok(reply) => reply,
        Err(err) => return refuse(ApiError::upstream(&err)),
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut body = Vec::new();
    let mut chunks = reply.body;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) if body.len() + bytes.len() <= MAX_STORED_BYTES => {
                body.extend_from_slice(&bytes);
            }
            Ok(_) => {
                return refuse(ApiError::internal(format!(
                    "the stored response is larger than {} MiB",
                    MAX_STORED_BYTES >> 20
                )));
            }
            Err(err) => return refuse(ApiError::upstream(&err)),
        }
    }
    json_response(status, body)
}

/// An id path: `resp_…` or `resp_…/input_items`, nothing that could leave `/responses/`.
fn valid(rest: &str) -> bool {
    !rest.is_empty()
        && rest.split('/').count() <= 2
        && rest.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

fn refuse(err: ApiError) -> Response<ProxyBody> {
    error_response(&err, Dialect::Responses, "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_ids_and_their_input_items_are_read() {
        assert!(super::valid("resp_abc123"));
        assert!(super::valid("resp_abc123/input_items"));
        for bad in [
            "",
            "..",
            "resp_1/../../chat",
            "resp_1/a/b",
            "resp_1/",
            "a?b",
            "a%2F",
        ] {
            assert!(!super::valid(bad), "{bad}");
        }
    }
}
