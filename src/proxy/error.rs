//! The one place that picks status codes and renders errors in OpenAI's shape,
//! `{"error":{"message","type","param","code"}}`, whatever went wrong.

use http::StatusCode;

use crate::budget::Refusal;
use crate::ledger::Outcome;
use crate::providers::{FailureKind, ProviderError};
use crate::routing::plan::{NoRoute, Skip, SkipReason};
use crate::wire::anthropic;
use crate::wire::openai::{ErrorBody, RequestError};

/// What went wrong, as a closed set: the status code, the error `type` and `code` clients
/// see, and how the ledger files the request all follow from the kind alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body is not JSON.
    InvalidJson,
    /// JSON of the wrong shape, or a field no translation can carry.
    InvalidRequest,
    /// No key, or a key this proxy does not accept.
    Unauthorized,
    /// An admin endpoint asked without the admin key.
    AdminUnauthorized,
    /// Admin endpoints on a daemon that requires client keys but has no admin key.
    AdminKeyNotSet,
    TooLarge,
    UnreadableBody,
    /// The body did not arrive within `limits.body_timeout_s` (a slow or stalled client).
    BodyTimeout,
    NoProvider,
    NoUsableProvider,
    /// Every target was passed over because the prompt is larger than its context window:
    /// the request itself is at fault, and no retry will change that.
    ContextLengthExceeded,
    ModelNotFound,
    BudgetExceeded,
    /// The loop breaker stopped the session: its agent repeats itself
    /// (`crate::proxy::loop_breaker`).
    LoopDetected,
    /// Too many wrong keys from one client address off loopback.
    TooManyWrongKeys,
    /// A budget applies and the model has no known price, so its cost could not be capped.
    UnpricedModel,
    /// The shared budgets could not be checked in time (another process holds the ledger).
    BudgetUnavailable,
    /// The PostgreSQL ledger that keeps the shared budgets cannot be reached.
    BudgetStoreUnavailable,
    /// A provider (or the way to it) failed.
    Upstream(FailureKind),
    UnknownUrl,
    MethodNotAllowed,
    UnsupportedEndpoint,
    /// A browser page on another site, or a `Host` the listener does not answer to
    /// (`crate::http_guard`).
    CrossSite,
    HostNotAllowed,
    /// A model request whose body is declared as something other than JSON (a web form's).
    NotJson,
    Internal,
    /// A provider's 2xx reply ended mid-body (empty, or cut mid-JSON).
    UpstreamTruncated,
    /// A provider's 2xx reply is not a reply: not JSON (an HTML gateway page), or an error.
    UpstreamMalformed,
    /// `run --replay`: the cassette holds no reply for this request.
    CassetteMiss,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson
            | Self::InvalidRequest
            | Self::ContextLengthExceeded
            | Self::UnreadableBody
            | Self::UnpricedModel
            | Self::Upstream(FailureKind::Rejected) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            Self::AdminKeyNotSet | Self::CrossSite | Self::HostNotAllowed => StatusCode::FORBIDDEN,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NoProvider
            | Self::NoUsableProvider
            | Self::BudgetUnavailable
            | Self::BudgetStoreUnavailable
            | Self::Upstream(FailureKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::ModelNotFound | Self::UnknownUrl | Self::CassetteMiss => StatusCode::NOT_FOUND,
            Self::BudgetExceeded | Self::TooManyWrongKeys | Self::LoopDetected => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Upstream(FailureKind::FirstByteTimeout | FailureKind::IdleTimeout) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Upstream(
                FailureKind::Connect
                | FailureKind::Broken
                | FailureKind::Redirected
                | FailureKind::TooLarge,
            ) => StatusCode::BAD_GATEWAY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedEndpoint => StatusCode::NOT_IMPLEMENTED,
            Self::Internal | Self::Upstream(FailureKind::Internal) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::UpstreamTruncated | Self::UpstreamMalformed => StatusCode::BAD_GATEWAY,
        }
    }

    /// The error body's `type`, as OpenAI names them.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::BudgetExceeded => "insufficient_quota",
            Self::NoProvider
            | Self::NoUsableProvider
            | Self::BudgetUnavailable
            | Self::BudgetStoreUnavailable
            | Self::Internal
            | Self::Upstream(FailureKind::Unavailable | FailureKind::Internal) => "server_error",
            Self::Upstream(FailureKind::Rejected) => "invalid_request_error",
            Self::Upstream(_) | Self::UpstreamTruncated | Self::UpstreamMalformed => {
                "upstream_error"
            }
            _ => "invalid_request_error",
        }
    }

    /// The error body's `code`, also the ledger's `error_code`.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "invalid_api_key",
            Self::AdminUnauthorized => "invalid_admin_key",
            Self::AdminKeyNotSet => "admin_key_not_set",
            Self::TooLarge => "request_too_large",
            Self::UnreadableBody => "unreadable_body",
            Self::BodyTimeout => "request_timeout",
            Self::NoProvider => "no_provider",
            Self::NoUsableProvider => "no_usable_provider",
            // OpenAI's code for the same refusal, which clients recognise.
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ModelNotFound => "model_not_found",
            Self::BudgetExceeded => "budget_exceeded",
            Self::LoopDetected => "loop_detected",
            Self::UnpricedModel => "model_unpriced",
            Self::TooManyWrongKeys => "too_many_wrong_keys",
            Self::BudgetUnavailable => "budget_unavailable",
            Self::BudgetStoreUnavailable => "budget_store_unavailable",
            Self::Upstream(failure) => failure.code(),
            Self::UnknownUrl => "unknown_url",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedEndpoint => "unsupported_endpoint",
            Self::CrossSite => "cross_site_request",
            Self::HostNotAllowed => "host_not_allowed",
            Self::NotJson => "unsupported_content_type",
            Self::Internal => "internal_error",
            Self::UpstreamTruncated => "upstream_truncated",
            Self::UpstreamMalformed => "upstream_malformed",
            Self::CassetteMiss => "cassette_miss",
        }
    }

    /// How the ledger files a request that ended this way.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::BudgetExceeded
            | Self::UnpricedModel
            | Self::BudgetUnavailable
            | Self::BudgetStoreUnavailable => Outcome::BudgetExceeded,
            Self::Upstream(
                FailureKind::Connect
                | FailureKind::FirstByteTimeout
                | FailureKind::IdleTimeout
                | FailureKind::Broken
                | FailureKind::Redirected,
            ) => Outcome::TransportError,
            Self::LoopDetected => Outcome::LoopDetected,
            Self::UpstreamTruncated
            | Self::UpstreamMalformed
            | Self::Upstream(FailureKind::TooLarge) => Outcome::UpstreamError,
            _ => Outcome::Rejected,
        }
    }

    /// `x-should-retry`, which the OpenAI and Anthropic SDKs (and so Claude Code and Codex)
    /// obey before their own rules, which retry every 5xx for up to minutes. A budget refusal
    /// and a configuration error are not worth retrying: no provider configured, a redirect the
    /// config must follow, or a provider nothing answers at (smartproxy has already retried it
    /// per `routing.retries`; the client's retries on top only make the user wait for the same
    /// error). `NoUsableProvider` is decided by `ApiError::no_route`, which sees why. A budget
    /// that could not be checked for a moment (a busy ledger) is worth a retry.
    pub fn should_retry(self) -> Option<bool> {
        match self {
            Self::BudgetExceeded
            | Self::LoopDetected
            | Self::UnpricedModel
            | Self::TooManyWrongKeys
            | Self::NoProvider
            | Self::ContextLengthExceeded
            | Self::CassetteMiss
            | Self::Upstream(
                FailureKind::Connect | FailureKind::Redirected | FailureKind::TooLarge,
            ) => Some(false),
            Self::BudgetUnavailable | Self::BudgetStoreUnavailable => Some(true),
            _ => None,
        }
    }

    /// `Retry-After` seconds smartproxy itself asks for.
    pub fn retry_after_s(self) -> Option<u64> {
        matches!(self, Self::BudgetUnavailable | Self::BudgetStoreUnavailable).then_some(1)
    }
}

/// An error answered by smartproxy itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub param: Option<&'static str>,
    /// `x-should-retry`: the kind's, unless the error knows better (`no_route`).
    pub should_retry: Option<bool>,
    /// `Retry-After` seconds: the kind's, unless the error knows better.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
            should_retry: kind.should_retry(),
            retry_after_s: kind.retry_after_s(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    pub fn outcome(&self) -> Outcome {
        self.kind.outcome()
    }

    /// `run --replay` has no recorded reply for the request; `message` says where it differs.
    pub fn cassette_miss(message: String) -> Self {
        Self::new(ErrorKind::CassetteMiss, message)
    }

    pub fn bad_request(err: RequestError) -> Self {
        let kind = if err.not_json {
            ErrorKind::InvalidJson
        } else {
            ErrorKind::InvalidRequest
        };
        Self {
            param: err.param,
            ..Self::new(kind, err.message)
        }
    }

    /// A missing or wrong client key, explained to whoever can fix it: the command under
    /// `run` (which was given the session key), or an editor pointed at the daemon.
    pub fn unauthorized(daemon: bool) -> Self {
        let message = if daemon {
            "missing or wrong API key: this smartproxy daemon requires a client key. Put a key \
             from `smartproxy keys create --name <editor>` (or the daemon's SMARTPROXY_API_KEY) \
             in your editor's OpenAI API key setting; it is sent as `Authorization: Bearer <key>`"
        } else {
            "missing or wrong API key: send this session's key (the OPENAI_API_KEY that \
             `smartproxy run` gave the command) as `Authorization: Bearer <key>`, `x-api-key` \
             or `api-key`"
        };
        Self::new(ErrorKind::Unauthorized, message)
    }

    /// Pass-through mode, and the request brought no credential of its own.
    pub fn passthrough_unauthorized() -> Self {
        Self::new(
            ErrorKind::Unauthorized,
            "missing API key: this smartproxy forwards Anthropic clients' own credentials \
             (pass-through mode) and the request brought none. Log in to Claude Code (`claude \
             /login`, or set CLAUDE_CODE_OAUTH_TOKEN), or send `Authorization: Bearer <token>` \
             or `x-api-key`",
        )
    }

    /// Pass-through mode, and the request's route leads to no provider of kind `anthropic`:
    /// a configuration matter, not worth a retry.
    pub fn passthrough_unroutable(model: &str, providers: &str) -> Self {
        Self {
            param: Some("model"),
            ..Self::new(
                ErrorKind::InvalidRequest,
                format!(
                    "`{model}` routes to {providers}, but a request bringing its own Anthropic \
                     credential (pass-through) is only forwarded to a provider of kind \
                     `anthropic`: route this model to one, or send the session's key instead"
                ),
            )
        }
    }

    /// The loop breaker stopped this session; `message` names what repeated and how to resume.
    pub fn loop_detected(message: String) -> Self {
        Self::new(ErrorKind::LoopDetected, message)
    }

    /// Too many wrong keys from this client lately: refused whatever it sends for `wait`.
    pub fn too_many_wrong_keys(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + 1;
        Self {
            retry_after_s: Some(seconds),
            ..Self::new(
                ErrorKind::TooManyWrongKeys,
                format!(
                    "too many wrong API keys from this address: requests are refused for {seconds} s; \
                     check the key your client sends"
                ),
            )
        }
    }

    pub fn admin_unauthorized() -> Self {
        Self::new(
            ErrorKind::AdminUnauthorized,
            "missing or wrong admin key: admin endpoints take the daemon's admin key \
             (SMARTPROXY_ADMIN_KEY), not a client key, as `Authorization: Bearer <key>`",
        )
    }

    pub fn admin_key_not_set() -> Self {
        Self::new(
            ErrorKind::AdminKeyNotSet,
            "admin endpoints are closed: this daemon requires client keys but has no admin key; \
             restart it with SMARTPROXY_ADMIN_KEY set (e.g. `export SMARTPROXY_ADMIN_KEY=$(openssl rand -hex 24)`) \
             and send that key as `Authorization: Bearer <key>`",
        )
    }

    /// A request `crate::http_guard` refused.
    pub fn browser(refusal: &crate::http_guard::Refusal) -> Self {
        let kind = match refusal {
            crate::http_guard::Refusal::Host(_) => ErrorKind::HostNotAllowed,
            crate::http_guard::Refusal::CrossSite(_) => ErrorKind::CrossSite,
        };
        Self::new(kind, refusal.message())
    }

    pub fn not_json() -> Self {
        Self::new(
            ErrorKind::NotJson,
            "a model request without a key must declare a JSON body: send `Content-Type: \
             application/json` (curl: `-H 'content-type: application/json'`). A web form's or \
             plain text body is what any web page can send, so it is refused",
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ErrorKind::TooLarge,
            format!(
                "request body is larger than the limit of {limit} bytes (limits.max_body_bytes)"
            ),
        )
    }

    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::BodyTimeout,
            format!(
                "the request body did not arrive within {} s (limits.body_timeout_s)",
                timeout.as_secs()
            ),
        )
    }

    pub fn unreadable_body(detail: &str) -> Self {
        Self::new(
            ErrorKind::UnreadableBody,
            format!("could not read the request body: {detail}"),
        )
    }

    pub fn no_route(err: &NoRoute) -> Self {
        if let NoRoute::NoneServes { skipped, .. } = err
            && let Some(needed) = too_large_for_all(skipped)
        {
            return Self::context_length_exceeded(needed, skipped);
        }
        match err {
            // Claude Code on a subscription has no key to give: its way out is pass-through.
            NoRoute::NoProviders => Self::new(
                ErrorKind::NoProvider,
                format!(
                    "{err}; Claude Code on a Pro/Max subscription: `smartproxy run --passthrough -- claude`"
                ),
            ),
            // Worth a retry only while a circuit may close again; a missing credential, a
            // disabled provider or a missing capability stays so until the config changes.
            NoRoute::NoneServes { skipped, .. } if !skipped.is_empty() => Self {
                should_retry: skipped
                    .iter()
                    .all(|s| s.reason != SkipReason::CircuitOpen)
                    .then_some(false),
                ..Self::new(ErrorKind::NoUsableProvider, err.to_string())
            },
            NoRoute::NoneServes { .. } => Self {
                param: Some("model"),
                ..Self::new(ErrorKind::ModelNotFound, err.to_string())
            },
        }
    }

    /// Every target was passed over because the prompt does not fit its context window.
    fn context_length_exceeded(needed: u64, skipped: &[Skip]) -> Self {
        let windows = skipped
            .iter()
            .filter_map(|s| match s.reason {
                SkipReason::TooSmall { window, .. } => {
                    Some(format!("{}/{}: {window}", s.provider, s.model))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            param: Some("messages"),
            ..Self::new(
                ErrorKind::ContextLengthExceeded,
                format!(
                    "this request's prompt is about {needed} tokens, more than the context window \
                     of every model that could serve it ({windows} tokens): shorten the \
                     conversation, or send it to a model with a larger context window"
                ),
            )
        }
    }

    pub fn budget_exceeded(refusal: &Refusal) -> Self {
        if let Some(every_ms) = refusal.window_ms {
            return Self::window_exceeded(refusal, every_ms);
        }
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
        Self::new(ErrorKind::BudgetExceeded, message)
    }

    /// A rolling window refused: what it holds, and when enough of it ages out (`Retry-After`
    /// the seconds until then, when the spend that must leave is known).
    fn window_exceeded(refusal: &Refusal, every_ms: i64) -> Self {
        let name = format!(
            "{} {} budget {}",
            refusal.budget,
            crate::budget::window::every_text(every_ms),
            Self::short_usd(refusal.limit_usd)
        );
        let state = if refusal.spent_usd + refusal.reserved_usd >= refusal.limit_usd {
            format!(
                "${:.4} spent in the last {}{}",
                refusal.spent_usd,
                crate::budget::window::every_text(every_ms),
                in_flight(refusal.reserved_usd)
            )
        } else {
            format!(
                "this request may cost up to ${:.4} and ${:.4} is spent in the last {}{}",
                refusal.estimate_usd,
                refusal.spent_usd,
                crate::budget::window::every_text(every_ms),
                in_flight(refusal.reserved_usd)
            )
        };
        let now_ms = crate::ledger::now_ms();
        let frees = match refusal.frees_at_ms {
            Some(at) => format!(
                "; enough frees up at {} as older spend leaves the window",
                crate::budget::window::clock_text(at, refusal.utc_offset_s)
            ),
            None => "; it frees up only as requests in flight finish".to_owned(),
        };
        let mut error = Self::new(
            ErrorKind::BudgetExceeded,
            format!("{name} exceeded: {state}{frees}"),
        );
        error.retry_after_s = refusal.frees_at_ms.map(|at| {
            u64::try_from(((at - now_ms).max(0) + 999) / 1000)
                .unwrap_or(0)
                .max(1)
        });
        error
    }

    /// `$10`, `$0.004`: a cap as it was written (at most four decimals).
    fn short_usd(usd: f64) -> String {
        let text = format!("{usd:.4}");
        format!("${}", text.trim_end_matches('0').trim_end_matches('.'))
    }

    /// A budget applies and `model` has no known price: its spending could not be capped.
    pub fn unpriced_model(model: &str) -> Self {
        Self {
            param: Some("model"),
            ..Self::new(
                ErrorKind::UnpricedModel,
                format!(
                    "`{model}` has no known price, so a budget cannot cap what it spends: give it \
                     a price under `pricing:` in the config (`{model}: {{input_per_mtok: ..., \
                     output_per_mtok: ...}}`), or set `budget.unpriced` to `{{price_as: MODEL}}` \
                     (charge it at a known model's prices) or `allow` (let it through uncounted)"
                ),
            )
        }
    }

    /// The shared budgets could not be read within `waited` (another process holds the
    /// ledger): refused rather than let through unchecked.
    /// A PostgreSQL ledger holding the shared budgets cannot be reached.
    pub fn budget_store_unavailable(detail: &str) -> Self {
        Self::new(
            ErrorKind::BudgetStoreUnavailable,
            format!(
                "the shared budget could not be checked ({detail}); the request was not sent. \
                 Retry shortly; budget.offline_grace_usd lets a process spend a little while \
                 PostgreSQL is down"
            ),
        )
    }

    pub fn budget_unavailable(waited: std::time::Duration, detail: &str) -> Self {
        Self::new(
            ErrorKind::BudgetUnavailable,
            format!(
                "the shared budget could not be checked within {} ms ({detail}); the request was \
                 not sent. Retry shortly; budget.check_timeout_ms sets the wait",
                waited.as_millis()
            ),
        )
    }

    pub fn upstream(err: &ProviderError) -> Self {
        Self::new(ErrorKind::Upstream(err.kind()), err.to_string())
    }

    /// A provider's 2xx reply that is not a reply (see `wire::reply_check`).
    pub fn bad_reply(provider: &str, fault: crate::wire::reply_check::ReplyFault) -> Self {
        use crate::wire::reply_check::ReplyFault;
        match fault {
            ReplyFault::Truncated => Self::new(
                ErrorKind::UpstreamTruncated,
                format!("the reply from provider {provider} ended before it was complete"),
            ),
            ReplyFault::Malformed(detail) => Self::new(
                ErrorKind::UpstreamMalformed,
                format!("the reply from provider {provider} is not a valid reply: {detail}"),
            ),
        }
    }

    pub fn not_found(method: &http::Method, path: &str) -> Self {
        Self::new(
            ErrorKind::UnknownUrl,
            format!("unknown request URL: {method} {path}"),
        )
    }

    pub fn method_not_allowed(method: &http::Method, path: &str, allowed: &str) -> Self {
        Self::new(
            ErrorKind::MethodNotAllowed,
            format!("{method} is not allowed on {path}; use {allowed}"),
        )
    }

    pub fn unsupported_endpoint(path: &str) -> Self {
        Self::new(
            ErrorKind::UnsupportedEndpoint,
            format!(
                "{path} is not supported by smartproxy: stored responses can be read \
                 (GET /v1/responses/{{id}}), not changed; send the conversation again with \
                 POST /v1/responses"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The error in Anthropic's shape, for `/v1/messages`: the `type` Anthropic's API gives the
    /// status, except that a 503 not worth retrying is an `api_error`. Claude Code takes an
    /// `overloaded_error` for a lack of capacity: it retries it, then shows "Repeated 529
    /// Overloaded errors" instead of smartproxy's message.
    pub fn to_anthropic_json(&self) -> Vec<u8> {
        let status = self.status();
        let kind = if status == StatusCode::SERVICE_UNAVAILABLE && self.should_retry == Some(false)
        {
            "api_error"
        } else {
            anthropic::error_type_for_status(status.as_u16())
        };
        anthropic::ErrorBody::new(kind, self.message.clone()).to_json()
    }

    /// The error as an OpenAI-shaped JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        ErrorBody::new(
            self.message.clone(),
            self.kind.error_type(),
            Some(self.kind.code()),
            self.param,
        )
        .to_json()
    }
}

/// The prompt size, when every target was passed over only because the prompt does not fit
/// its context window.
fn too_large_for_all(skipped: &[Skip]) -> Option<u64> {
    let mut needed = None;
    for skip in skipped {
        match skip.reason {
            SkipReason::TooSmall { needed: n, .. } => needed = Some(n),
            _ => return None,
        }
    }
    needed
}

fn in_flight(reserved: f64) -> String {
    if reserved > 0.0 {
        format!(" and ${reserved:.4} is reserved by requests in flight")
    } else {
        String::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn too_small(provider: &str) -> Skip {
        Skip {
            provider: provider.into(),
            model: "m".into(),
            reason: SkipReason::TooSmall {
                window: 8192,
                needed: 9000,
            },
        }
    }

    #[test]
    fn statuses_and_codes() {
        let refusal = Refusal {
            budget: "session",
            limit_usd: 1.0,
            spent_usd: 1.0,
            reserved_usd: 0.0,
            estimate_usd: 0.1,
            window_ms: None,
            frees_at_ms: None,
            utc_offset_s: None,
        };
        let cases = [
            (ApiError::unauthorized(false), 401, "invalid_api_key"),
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
                ApiError::no_route(&NoRoute::NoneServes {
                    model: "m".into(),
                    route: None,
                    skipped: vec![too_small("a"), too_small("b")],
                    trail: vec![],
                }),
                400,
                "context_length_exceeded",
            ),
            (
                ApiError::no_route(&NoRoute::NoneServes {
                    model: "m".into(),
                    route: None,
                    skipped: vec![
                        too_small("a"),
                        Skip {
                            reason: SkipReason::CircuitOpen,
                            ..too_small("b")
                        },
                    ],
                    trail: vec![],
                }),
                503,
                "no_usable_provider",
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
            (
                ApiError::bad_reply("p", crate::wire::reply_check::ReplyFault::Truncated),
                502,
                "upstream_truncated",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{code}");
            assert_eq!(err.code(), code);
        }
        let budget = crate::proxy::body::error_response(
            &ApiError::budget_exceeded(&refusal),
            crate::proxy::dialect::Dialect::OpenAi,
            "req_1",
        );
        assert_eq!(budget.headers()["x-should-retry"], "false");
        assert_eq!(budget.headers()["x-smartproxy-request-id"], "req_1");
    }

    /// Configuration errors are final (`x-should-retry: false`, and not "overloaded" to
    /// Anthropic clients); an open circuit may close, so its 503 stays retryable.
    #[test]
    fn configuration_errors_are_not_worth_a_retry() {
        let skipped = |reason| NoRoute::NoneServes {
            model: "claude-x".into(),
            route: None,
            skipped: vec![crate::routing::plan::Skip {
                provider: "p".into(),
                model: "claude-x".into(),
                reason,
            }],
            trail: vec![],
        };
        let connect = ProviderError::Connect {
            provider: "p".into(),
            detail: "refused".into(),
        };
        let cases = [
            (ApiError::no_route(&NoRoute::NoProviders), Some(false)),
            (
                ApiError::no_route(&skipped(SkipReason::MissingCredential { env: "K".into() })),
                Some(false),
            ),
            (
                ApiError::no_route(&skipped(SkipReason::Disabled)),
                Some(false),
            ),
            (ApiError::no_route(&skipped(SkipReason::CircuitOpen)), None),
            (ApiError::upstream(&connect), Some(false)),
            (
                ApiError::upstream(&ProviderError::FirstByteTimeout {
                    provider: "p".into(),
                    seconds: 1.0,
                }),
                None,
            ),
        ];
        for (err, retry) in cases {
            assert_eq!(err.should_retry, retry, "{}", err.message);
            let response = crate::proxy::body::error_response(
                &err,
                crate::proxy::dialect::Dialect::Anthropic,
                "req_1",
            );
            assert_eq!(
                response
                    .headers()
                    .get("x-should-retry")
                    .map(|v| v.to_str().unwrap()),
                retry.map(|r| if r { "true" } else { "false" }),
            );
            let body: serde_json::Value = serde_json::from_slice(&err.to_anthropic_json()).unwrap();
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["message"], err.message.as_str());
            let expected = match (err.status().as_u16(), retry) {
                (503, Some(false)) | (502, _) => "api_error",
                (503, _) => "overloaded_error",
                _ => "timeout_error",
            };
            assert_eq!(body["error"]["type"], expected, "{}", err.message);
        }
        let message = ApiError::no_route(&NoRoute::NoProviders).message;
        assert!(message.contains("--passthrough"), "{message}");
    }
}
