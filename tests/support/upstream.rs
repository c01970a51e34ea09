//! A scripted mock upstream speaking OpenAI's wire format (JSON and SSE) on 127.0.0.1:0. It
//! counts calls, keeps what it was sent, and misbehaves on script: error statuses with
//! `Retry-After`, a slow first byte, a stream cut mid-way, malformed SSE, a slow trickle.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// What the upstream does with one request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// A normal reply (streamed when the request asks), with usage.
    Ok,
    /// A normal reply whose usage is missing, as some providers do.
    OkWithoutUsage,
    /// An error status with an OpenAI error body and optional `Retry-After` seconds.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// An error status with an OpenAI error body and OpenAI's `retry-after-ms` header only.
    StatusRetryAfterMs { status: u16, ms: u64 },
    /// Waits before sending anything.
    SlowFirstByte(Duration),
    /// Streams `chunks` content chunks and then drops the connection.
    CutStream { chunks: usize },
    /// Streams chunks with `delay` between them.
    Trickle(Duration),
    /// Sends a stream whose events are not JSON.
    MalformedSse,
    /// A redirect to `location` with `status` (301, 302, 307, 308...).
    Redirect { status: u16, location: &'static str },
    /// A normal Anthropic reply that also read and wrote the prompt cache (tokens on top of
    /// `PROMPT_TOKENS`, as Anthropic counts them).
    PromptCache { read: u64, written: u64 },
    /// A chat reply calling the function `name` with `arguments` (streamed in two pieces when
    /// the request streams), with usage.
    ToolCall {
        name: &'static str,
        arguments: &'static str,
    },
    /// Exactly this body with status 200, whatever the path (a scripted reply in any format).
    Raw {
        content_type: &'static str,
        body: String,
    },
    /// A chat reply that bills every output token the request allowed (`max_tokens`) and
    /// `prompt_tokens`, with `usage_extra` merged into its usage and the request's
    /// `service_tier` echoed: the costliest reply a budget must still have room for.
    SpendsAll {
        prompt_tokens: u64,
        usage_extra: Value,
    },
    /// `Raw`, gzip-compressed and sent with `Content-Encoding: gzip`.
    RawGzip {
        content_type: &'static str,
        body: String,
    },
    /// `Raw`, then the connection held open for `hold` before the body ends (a provider slow to
    /// close after its last event).
    RawThenHold {
        content_type: &'static str,
        body: String,
        hold: Duration,
    },
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    /// Every header, names lowercased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Behavior>,
    received: Vec<Received>,
    /// Streams whose every event was handed to the connection (not cut short by the peer).
    streams_completed: usize,
    /// Streams whose body went before its last event: the peer closed the connection (or the
    /// script cut it).
    streams_cut_short: usize,
}

pub struct MockUpstream {
    pub addr: SocketAddr,
    /// Served over TLS (`start_tls`).
    tls: bool,
    script: Arc<Mutex<Script>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const REPLY_WORDS: &[&str] = &["The ", "answer ", "is ", "forty-two."];
pub const PROMPT_TOKENS: u64 = 21;
pub const COMPLETION_TOKENS: u64 = 7;

impl MockUpstream {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same upstream over TLS with the given PEM certificate chain and PKCS#8 key.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let is_tls = tls.is_some();
        let script = Arc::new(Mutex::new(Script::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&script);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let mut stop_rx = stop_rx;
                loop {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => match accepted { Ok(p) => p, Err(_) => continue },
                        _ = &mut stop_rx => break,
                    };
                    let script = Arc::clone(&shared);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| serve(Arc::clone(&script), req));
                        let http = hyper::server::conn::http1::Builder::new();
                        match tls {
                            // A failed handshake (the client refused the certificate) just ends.
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                                }
                            }
                            None => {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            tls: is_tls,
            script,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The base URL a provider config uses: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/v1", self.addr)
    }

    /// Queues behaviors for the next requests, in order; after them every request gets `Ok`.
    pub fn push(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        self.script.lock().unwrap().queue.extend(behaviors);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    pub fn streams_completed(&self) -> usize {
        self.script.lock().unwrap().streams_completed
    }

    pub fn streams_cut_short(&self) -> usize {
        self.script.lock().unwrap().streams_cut_short
    }

    pub fn calls(&self) -> usize {
        self.script.lock().unwrap().received.len()
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub type Body = BoxBody<Bytes, std::io::Error>;

/// An OpenAI error reply with `status` and, when given, a wait header (name, value).
fn error_status(status: u16, wait: Option<(&str, u64)>) -> Response<Body> {
    let kind = if status == 429 {
        "rate_limit_error"
    } else {
        "server_error"
    };
    let body = json!({"error": {"message": format!("mock upstream says {status}"), "type": kind, "param": null, "code": null}});
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some((name, value)) = wait {
        builder = builder.header(name, value.to_string());
    }
    builder.body(full(body.to_string())).unwrap()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

async fn serve(
    script: Arc<Mutex<Script>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let behavior = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            path: path.clone(),
            authorization,
            headers,
            body: body.clone(),
        });
        script.queue.pop_front().unwrap_or(Behavior::Ok)
    };
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    if let Behavior::Raw { content_type, body } = &behavior {
        let response = Response::builder()
            .header("content-type", *content_type)
            .body(full(body.clone()))
            .unwrap();
        return Ok(response);
    }
    if let Behavior::SpendsAll {
        prompt_tokens,
        usage_extra,
    } = &behavior
    {
        return Ok(spends_all(&model, &body, *prompt_tokens, usage_extra));
    }
    if let Some(response) = scripted_extra(&behavior) {
        return Ok(response);
    }
    match (path.as_str(), &behavior) {
        ("/v1/messages", Behavior::Status { status, .. }) => {
            return Ok(super::dialects::anthropic_error(*status));
        }
        ("/v1/messages", Behavior::PromptCache { read, written }) => {
            return Ok(super::dialects::anthropic_reply(
                &model,
                &body,
                (*read, *written),
            ));
        }
        ("/v1/messages", _) => return Ok(super::dialects::anthropic_reply(&model, &body, (0, 0))),
        ("/api/chat", Behavior::Status { status, .. }) => {
            return Ok(super::dialects::ollama_error(*status));
        }
        ("/api/chat", _) => return Ok(super::dialects::ollama_reply(&model, &body)),
        ("/v1/completions", _) => return Ok(super::dialects::completions_reply(&model, &body)),
        // A response OpenAI stored: read back by its id.
        (stored, Behavior::Ok) if stored.starts_with("/v1/responses/") => {
            let id = stored.trim_start_matches("/v1/responses/");
            let body = json!({"id": id, "object": "response", "status": "completed", "output": []});
            return Ok(Response::builder()
                .header("content-type", "application/json")
                .body(full(body.to_string()))
                .unwrap());
        }
        ("/v1/responses", Behavior::Ok) => {
            return Ok(super::dialects::responses_reply(&model, &body));
        }
        ("/v1/embeddings", Behavior::Ok) => {
            return Ok(super::dialects::embeddings_reply(&model, &body));
        }
        _ => {}
    }
    let done = Arc::clone(&script);
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let response = match behavior {
        Behavior::Ok
        | Behavior::PromptCache { .. }
        | Behavior::Raw { .. }
        | Behavior::SpendsAll { .. } => reply(
            &done,
            &model,
            stream,
            include_usage,
            true,
            Duration::ZERO,
            None,
        ),
        Behavior::OkWithoutUsage => {
            reply(&done, &model, stream, false, false, Duration::ZERO, None)
        }
        Behavior::SlowFirstByte(wait) => {
            tokio::time::sleep(wait).await;
            reply(
                &done,
                &model,
                stream,
                include_usage,
                true,
                Duration::ZERO,
                None,
            )
        }
        Behavior::Trickle(delay) => reply(&done, &model, stream, include_usage, true, delay, None),
        // A small gap between events so the ones before the cut are really on the wire.
        Behavior::CutStream { chunks } => reply(
            &done,
            &model,
            true,
            include_usage,
            true,
            Duration::from_millis(20),
            Some(chunks),
        ),
        Behavior::Status {
            status,
            retry_after,
        } => error_status(status, retry_after.map(|s| ("retry-after", s))),
        Behavior::StatusRetryAfterMs { status, ms } => {
            error_status(status, Some(("retry-after-ms", ms)))
        }
        Behavior::Redirect { status, location } => Response::builder()
            .status(status)
            .header("location", location)
            .body(full(""))
            .unwrap(),
        Behavior::ToolCall { name, arguments } => {
            tool_call_reply(&model, stream, include_usage, name, arguments)
        }
        Behavior::MalformedSse => Response::builder()
            .header("content-type", "text/event-stream")
            .body(full("data: {not json\n\ndata: [DONE]\n\n"))
            .unwrap(),
        Behavior::RawGzip { .. } | Behavior::RawThenHold { .. } => unreachable!("served above"),
    };
    Ok(response)
}

fn spends_all(model: &str, request: &Value, prompt_tokens: u64, extra: &Value) -> Response<Body> {
    let completion = request["max_tokens"]
        .as_u64()
        .or_else(|| request["max_completion_tokens"].as_u64())
        .unwrap_or(1024);
    let mut usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    });
    if let (Some(usage), Some(extra)) = (usage.as_object_mut(), extra.as_object()) {
        usage.extend(extra.clone());
    }
    let body = json!({
        "id": "chatcmpl-spends-all",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "service_tier": request["service_tier"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word ".repeat(completion as usize)}, "finish_reason": "length"}],
        "usage": usage,
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

/// The raw behaviors other than `Raw` itself, whatever the path.
fn scripted_extra(behavior: &Behavior) -> Option<Response<Body>> {
    match behavior {
        Behavior::RawGzip { content_type, body } => {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body.as_bytes()).unwrap();
            let compressed = encoder.finish().unwrap();
            Some(
                Response::builder()
                    .header("content-type", *content_type)
                    .header("content-encoding", "gzip")
                    .body(full(compressed))
                    .unwrap(),
            )
        }
        Behavior::RawThenHold {
            content_type,
            body,
            hold,
        } => {
            let (body, hold) = (Bytes::from(body.clone()), *hold);
            let frames =
                futures_util::stream::iter([Some(body), None]).then(move |frame| async move {
                    match frame {
                        Some(bytes) => Ok::<_, std::io::Error>(Frame::data(bytes)),
                        None => {
                            tokio::time::sleep(hold).await;
                            Ok(Frame::data(Bytes::new()))
                        }
                    }
                });
            Some(
                Response::builder()
                    .header("content-type", *content_type)
                    .body(BodyExt::boxed(StreamBody::new(frames)))
                    .unwrap(),
            )
        }
        _ => None,
    }
}

fn usage() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0}
    })
}

pub fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-upstream",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}

fn tool_call_reply(
    model: &str,
    stream: bool,
    include_usage: bool,
    name: &str,
    arguments: &str,
) -> Response<Body> {
    if !stream {
        let body = json!({
            "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_upstream_1", "type": "function",
                                "function": {"name": name, "arguments": arguments}}],
            }}],
            "usage": usage(),
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap();
    }
    let (first, second) = arguments.split_at(arguments.len() / 2);
    let mut events = vec![
        chunk(
            model,
            json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_upstream_1", "type": "function", "function": {"name": name, "arguments": first}}]}),
            None,
        ),
        chunk(
            model,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": second}}]}),
            None,
        ),
        chunk(model, json!({}), Some("tool_calls")),
    ];
    if include_usage {
        events.push(
            json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage()})
                .to_string(),
        );
    }
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(full(text))
        .unwrap()
}

fn reply(
    script: &Arc<Mutex<Script>>,
    model: &str,
    stream: bool,
    include_usage: bool,
    with_usage: bool,
    delay: Duration,
    cut_after: Option<usize>,
) -> Response<Body> {
    if !stream {
        let mut body = json!({
            "id": "chatcmpl-upstream",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY_WORDS.concat()}, "finish_reason": "stop"}],
        });
        if with_usage {
            body["usage"] = usage();
        }
        return Response::builder()
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap();
    }
    let mut events: Vec<String> = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    events.extend(
        REPLY_WORDS
            .iter()
            .map(|w| chunk(model, json!({"content": w}), None)),
    );
    events.push(chunk(model, json!({}), Some("stop")));
    if include_usage {
        events.push(
            json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage()})
                .to_string(),
        );
    }
    let mut frames: Vec<Result<Frame<Bytes>, std::io::Error>> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if cut_after.is_some_and(|n| i > n) {
            frames.push(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            )));
            break;
        }
        frames.push(Ok(Frame::data(Bytes::from(format!("data: {event}\n\n")))));
    }
    if cut_after.is_none() {
        frames.push(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))));
    }
    let last = frames.len() - 1;
    let end = StreamEnd {
        script: Arc::clone(script),
        completed: Arc::new(AtomicBool::new(false)),
    };
    let body =
        futures_util::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| {
            let script = Arc::clone(&end.script);
            let completed = Arc::clone(&end.completed);
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if i == last && frame.is_ok() {
                    completed.store(true, Ordering::SeqCst);
                    script.lock().unwrap().streams_completed += 1;
                }
                frame
            }
        });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(StreamBody::new(body)))
        .unwrap()
}

/// Goes with a stream's body: counts the stream as cut short when the body is dropped (hyper
/// drops it when the peer closes the connection) before its last event.
struct StreamEnd {
    script: Arc<Mutex<Script>>,
    completed: Arc<AtomicBool>,
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        if !self.completed.load(Ordering::SeqCst)
            && let Ok(mut script) = self.script.lock()
        {
            script.streams_cut_short += 1;
        }
    }
}
