//! Bodies: a request's, read under the size cap; the response body type (a whole body or a
//! live SSE relay, as an enum rather than a boxed trait object so the common case costs no
//! allocation); and the JSON and error responses built on it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::dialect::Dialect;
use super::error::ApiError;
use super::headers::set_request_id;
use super::stream::SseRelay;

pub enum ProxyBody {
    Full(Option<Bytes>),
    Stream(Box<SseRelay>),
    /// A recorded stream replayed at its recorded pace (`run --record-timing`).
    Paced(Box<Paced>),
}

/// Chunks sent each after its wait (the time since the previous one was recorded).
pub struct Paced {
    chunks: std::collections::VecDeque<(Duration, Bytes)>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Paced {
    pub fn new(chunks: impl IntoIterator<Item = (Duration, Bytes)>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
            wait: None,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some((delay, _)) = self.chunks.front() else {
            return Poll::Ready(None);
        };
        let delay = *delay;
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        if wait.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.wait = None;
        Poll::Ready(self.chunks.pop_front().map(|(_, bytes)| bytes))
    }
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(relay) => relay
                .poll_next_frame(cx)
                .map(|f| f.map(|b| Ok(Frame::data(b)))),
            Self::Paced(paced) => paced.poll_chunk(cx).map(|f| f.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) | Self::Paced(_) => SizeHint::default(),
        }
    }
}

/// The bounds on a request body: its size, and the time it may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl BodyLimits {
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            max_bytes: config.max_body_bytes,
            timeout: config.clients.body_timeout,
        }
    }
}

pub(super) async fn read_body(
    req: Request<Incoming>,
    limits: BodyLimits,
) -> Result<Bytes, ApiError> {
    let (parts, body) = req.into_parts();
    read_parts_body(&parts.headers, body, limits).await
}

/// Reads a body under the size cap and within the body timeout (a client that declares 1000
/// bytes and sends 9 would otherwise hold its connection and task for ever); a declared length
/// over the cap is refused before reading.
pub(super) async fn read_parts_body(
    headers: &HeaderMap,
    body: Incoming,
    limits: BodyLimits,
) -> Result<Bytes, ApiError> {
    let limit = limits.max_bytes;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let read = tokio::time::timeout(limits.timeout, Limited::new(body, limit).collect());
    let Ok(collected) = read.await else {
        return Err(ApiError::body_timeout(limits.timeout));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(err) => Err(ApiError::unreadable_body(&err.to_string())),
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// smartproxy's own error as a response: its status, `x-should-retry` where it applies, the
/// request id, and the body in the shape `dialect`'s clients read.
pub fn error_response(err: &ApiError, dialect: Dialect, request_id: &str) -> Response<ProxyBody> {
    let body = dialect.api_error_body(err);
    let mut response = json_response(err.status(), body);
    let headers = response.headers_mut();
    if let Some(retry) = err.should_retry {
        headers.insert(
            "x-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
    }
    if let Some(seconds) = err.retry_after_s {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    // The rest of a body that did not arrive in time is not waited for: the connection ends.
    if err.kind == super::error::ErrorKind::BodyTimeout {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    set_request_id(headers, request_id);
    response
}
