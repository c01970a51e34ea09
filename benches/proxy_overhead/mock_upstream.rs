//! The mock upstream: an OpenAI-style chat completions server (hyper 1) that answers every request
//! with the same canned completion or SSE stream, refusing any key but the bench's; and an
//! Anthropic Messages endpoint with its own canned reply, for the Messages phase.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::UPSTREAM_KEY;

const COMPLETION_ID: &str = "chatcmpl-BHm4Kz2XtVnq8bQx1yLwR7uS0fPaE";
const CREATED: u64 = 1_743_500_000;
const SERVED_MODEL: &str = "gpt-4o-mini-2024-07-18";
const FINGERPRINT: &str = "fp_b376dfbbd5";
/// The model of the Messages phase, served by the mock's Anthropic endpoint.
pub const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";

static MESSAGE: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "text", "text": "The test reads the wrong key; I will fix the lookup."},
                {"type": "tool_use", "id": "toolu_0050", "name": "Tool1", "input": {"file_path": "/src/f0.rs"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 60_000,
                "output_tokens": 64,
                "service_tier": "standard"
            }
        })
        .to_string(),
    )
});

static COMPLETION: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        json!({
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": SERVED_MODEL,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "TCP is connection-oriented and guarantees ordered, reliable delivery with \
                                retransmission and flow control. UDP sends independent datagrams with no \
                                delivery or ordering guarantees, trading reliability for lower latency.",
                    "refusal": null,
                    "annotations": []
                },
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": usage_json(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT
        })
        .to_string(),
    )
});

fn usage_json() -> serde_json::Value {
    json!({
        "prompt_tokens": 41,
        "completion_tokens": 38,
        "total_tokens": 79,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// The SSE events of one streamed reply: 10 chunks, then (when asked for) the usage chunk, then
/// `[DONE]`. Index 0: without usage; index 1: with `include_usage`.
static STREAMS: LazyLock<[Vec<Bytes>; 2]> = LazyLock::new(|| [sse_events(false), sse_events(true)]);

fn sse_events(include_usage: bool) -> Vec<Bytes> {
    let words = [
        "TCP",
        " is",
        " connection-oriented",
        " and",
        " reliable;",
        " UDP",
        " is",
        " connectionless",
        " and",
    ];
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let mut c = json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": SERVED_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = serde_json::Value::Null;
        }
        c
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    chunks.extend(words.iter().map(|w| chunk(json!({"content": w}), None)));
    chunks.push(chunk(json!({}), Some("stop")));
    if include_usage {
        chunks.push(json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": SERVED_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": usage_json()
        }));
    }
    let mut events: Vec<Bytes> = chunks
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

#[derive(Default, serde::Deserialize)]
struct MockRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<MockStreamOptions>,
}

#[derive(Default, serde::Deserialize)]
struct MockStreamOptions {
    #[serde(default)]
    include_usage: bool,
}

type SseBody = StreamBody<
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>,
>;

/// A streamed reply to this model comes an event at a time, `PACE` apart (as a model writes),
/// for the many-streams phase; any other model's reply is sent at once.
pub const PACED_MODEL: &str = "gpt-4o-mini-paced";
pub const PACE: Duration = Duration::from_millis(50);
type MockBody = Either<Full<Bytes>, SseBody>;

pub async fn start_mock() -> anyhow::Result<SocketAddr> {
    LazyLock::force(&COMPLETION);
    LazyLock::force(&MESSAGE);
    LazyLock::force(&STREAMS);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(mock_reply))
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn mock_reply(req: Request<Incoming>) -> Result<Response<MockBody>, Infallible> {
    let respond = |status: StatusCode, content_type: &'static str, body: MockBody| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(response)
    };
    let error = |status: StatusCode, message: &str| {
        let body =
            json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string();
        respond(
            status,
            "application/json",
            Either::Left(Full::new(Bytes::from(body))),
        )
    };
    if req.method() == Method::POST && req.uri().path() == "/v1/messages" {
        if req.headers().get("x-api-key").map(HeaderValue::as_bytes)
            != Some(UPSTREAM_KEY.as_bytes())
        {
            return error(StatusCode::UNAUTHORIZED, "bad key");
        }
        if req.into_body().collect().await.is_err() {
            return error(StatusCode::BAD_REQUEST, "unreadable body");
        }
        return respond(
            StatusCode::OK,
            "application/json",
            Either::Left(Full::new(MESSAGE.clone())),
        );
    }
    if req.method() != Method::POST || req.uri().path() != "/v1/chat/completions" {
        return error(StatusCode::NOT_FOUND, "unknown URL");
    }
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(UPSTREAM_KEY);
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "bad key");
    }
    let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let Ok(parsed) = serde_json::from_slice::<MockRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad JSON");
    };
    if parsed.stream {
        let with_usage = parsed.stream_options.is_some_and(|o| o.include_usage);
        let events = &STREAMS[usize::from(with_usage)];
        let body = if parsed.model == PACED_MODEL {
            let paced = futures_util::stream::iter(events.iter().enumerate()).then(
                |(i, event)| async move {
                    if i > 0 {
                        tokio::time::sleep(PACE).await;
                    }
                    Ok(Frame::data(event.clone()))
                },
            );
            StreamBody::new(Box::pin(paced) as _)
        } else {
            let frames: Vec<_> = events.iter().map(|e| Ok(Frame::data(e.clone()))).collect();
            StreamBody::new(Box::pin(futures_util::stream::iter(frames)) as _)
        };
        respond(
            StatusCode::OK,
            "text/event-stream; charset=utf-8",
            Either::Right(body),
        )
    } else {
        respond(
            StatusCode::OK,
            "application/json",
            Either::Left(Full::new(COMPLETION.clone())),
        )
    }
}
