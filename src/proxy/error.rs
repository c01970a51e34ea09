//! The one place that picks status codes and renders errors in OpenAI's shape,
//! `{"error":{"message","type","param","code"}}`, whatever went wrong.

use http::{HeaderValue, Response, StatusCode};

use super::body::ProxyBody;
use crate::budget::Refusal;
use crate::ledger::Outcome;
use crate::providers::ProviderError;
use crate::routing::plan::NoRoute;
use crate::wire::openai::{ErrorBody, RequestError};

/// An error answered by smartproxy itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    /// Sets `x-should-retry`, which the OpenAI SDKs obey.
    pub should_retry: Option<bool>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            should_retry: None,
        }
    }

    pub fn bad_request(err: RequestError) -> Self {
        let code = if err.message.starts_with("request body is not valid JSON") {
            "invalid_json"
        } else {
            "invalid_request"
        };
        Self {
            param: err.param,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                code,
                err.message,
            )
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "missing or wrong API key: send this session's key (the OPENAI_API_KEY that `smartproxy run` gave the \
             command) as `Authorization: Bearer <key>`, `x-api-key` or `api-key`",
        )
    }

    pub fn admin_unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_admin_key",
            "missing or wrong admin key: admin endpoints take the daemon's admin key \
             (SMARTPROXY_ADMIN_KEY), not a client key, as `Authorization: Bearer <key>`",
        )
    }

    pub fn admin_key_not_set() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            "admin_key_not_set",
            "admin endpoints are closed: this daemon requires client keys but has no admin key; \
             restart it with SMARTPROXY_ADMIN_KEY set (e.g. `export SMARTPROXY_ADMIN_KEY=$(openssl rand -hex 24)`) \
             and send that key as `Authorization: Bearer <key>`",
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!(
                "request body is larger than the limit of {limit} bytes (limits.max_body_bytes)"
            ),
        )
    }

    pub fn unreadable_body(detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "unreadable_body",
            format!("could not read the request body: {detail}"),
        )
    }

    pub fn no_route(err: &NoRoute) -> Self {
        match err {
            NoRoute::NoProviders => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "no_provider",
                err.to_string(),
            ),
            NoRoute::NoneServes { skipped, .. } if !skipped.is_empty() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "no_usable_provider",
                err.to_string(),
            ),
            NoRoute::NoneServes { .. } => Self {
                param: Some("model"),
                ..Self::new(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "model_not_found",
                    err.to_string(),
                )
            },
        }
    }

    pub fn budget_exceeded(refusal: &Refusal) -> Self {
        let message = if refusal.spent_usd + refusal.reserved_usd >= refusal.limit_usd {
            format!(
                "{} budget exceeded: ${:.4} of ${:.4} spent{}",
                refusal.budget,
                refusal.spent_usd,
                refusal.limit_usd,
                in_flight(refusal.reserved_usd)
            )
        } else {
            format!(
                "{} budget would be exceeded: this request may cost up to ${:.4}, and ${:.4} of the ${:.4} \
                 budget is spent{}; lower max_tokens or raise the budget",
                refusal.budget,
                refusal.estimate_usd,
                refusal.spent_usd,
                refusal.limit_usd,
                in_flight(refusal.reserved_usd)
            )
        };
        Self {
            should_retry: Some(false),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "budget_exceeded",
                message,
            )
        }
    }

    pub fn upstream(err: &ProviderError) -> Self {
        let (status, kind) = match err {
            ProviderError::FirstByteTimeout { .. } | ProviderError::IdleTimeout { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream_error")
            }
            ProviderError::Connect { .. }
            | ProviderError::Broken { .. }
            | ProviderError::Redirected { .. } => (StatusCode::BAD_GATEWAY, "upstream_error"),
            ProviderError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            ProviderError::Rejected(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            ProviderError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        Self::new(status, kind, err.code(), err.to_string())
    }

    pub fn not_found(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            format!("unknown request URL: {method} {path}"),
        )
    }

    pub fn method_not_allowed(method: &http::Method, path: &str, allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use {allowed}"),
        )
    }

    pub fn unsupported_endpoint(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "invalid_request_error",
            "unsupported_endpoint",
            format!("{path} is not supported by smartproxy yet; use /v1/chat/completions"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }

    /// How the ledger files this error.
    pub fn outcome(&self) -> Outcome {
        match self.code {
            "budget_exceeded" => Outcome::BudgetExceeded,
            _ if self.kind == "upstream_error" => Outcome::TransportError,
            _ => Outcome::Rejected,
        }
    }

    /// The error in the body shape of the client's format (Anthropic and Ollama clients expect
    /// their own), with the same status.
    pub fn into_response_for(
        self,
        dialect: super::inbound::Dialect,
        request_id: &str,
    ) -> Response<ProxyBody> {
        use super::inbound::Dialect;
        let status = self.status.as_u16();
        let mut response = self.into_response(request_id);
        type Convert = fn(u16, &[u8]) -> Vec<u8>;
        let convert: Option<Convert> = match dialect {
            Dialect::Anthropic => Some(crate::translate::anthropic::error_to_anthropic),
            Dialect::OllamaChat | Dialect::OllamaGenerate => {
                Some(crate::translate::ollama::error_to_ollama)
            }
            Dialect::OpenAi | Dialect::Completions => None,
        };
        if let (Some(convert), ProxyBody::Full(Some(body))) = (convert, response.body()) {
            let converted = convert(status, body);
            *response.body_mut() = ProxyBody::full(converted);
        }
        response
    }

    pub fn into_response(self, request_id: &str) -> Response<ProxyBody> {
        let body = ErrorBody::new(self.message, self.kind, Some(self.code), self.param).to_json();
        let mut response = json_response(self.status, body);
        let headers = response.headers_mut();
        if let Some(retry) = self.should_retry {
            headers.insert(
                "x-should-retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        set_request_id(headers, request_id);
        response
    }
}

fn in_flight(reserved: f64) -> String {
    if reserved > 0.0 {
        format!(" and ${reserved:.4} is reserved by requests in flight")
    } else {
        String::new()
    }
}

pub fn json_response(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(super) const X_REQUEST_ID: http::HeaderName =
    http::HeaderName::from_static("x-smartproxy-request-id");

pub fn set_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let refusal = Refusal {
            budget: "session",
            limit_usd: 1.0,
            spent_usd: 1.0,
            reserved_usd: 0.0,
            estimate_usd: 0.1,
        };
        let cases = [
            (ApiError::unauthorized(), 401, "invalid_api_key"),
            (ApiError::too_large(10), 413, "request_too_large"),
            (ApiError::budget_exceeded(&refusal), 429, "budget_exceeded"),
            (
                ApiError::no_route(&NoRoute::NoProviders),
                503,
                "no_provider",
            ),
            (
                ApiError::no_route(&NoRoute::NoneServes {
                    model: "m".into(),
                    route: None,
                    skipped: vec![],
                    trail: vec![],
                }),
                404,
                "model_not_found",
            ),
            (
                ApiError::upstream(&ProviderError::FirstByteTimeout {
                    provider: "p".into(),
                    seconds: 1.0,
                }),
                504,
                "upstream_timeout",
            ),
            (
                ApiError::upstream(&ProviderError::Connect {
                    provider: "p".into(),
                    detail: "refused".into(),
                }),
                502,
                "upstream_connect_error",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status.as_u16(), status, "{code}");
            assert_eq!(err.code, code);
        }
        let budget = ApiError::budget_exceeded(&refusal).into_response("req_1");
        assert_eq!(budget.headers()["x-should-retry"], "false");
        assert_eq!(budget.headers()["x-smartproxy-request-id"], "req_1");
    }
}
