//! Phase 6, reply: the upstream's reply (or a cache hit) becomes the client's response. Whole
//! replies are read once for usage, transformed and converted to the client's format; streams
//! are handed to the relay, which forwards them event by event and writes the row at the end.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::attempt::Upstream;
use super::{Admitted, RequestCtx};
use crate::cache::CachedReply;
use crate::capture::Kind;
use crate::ledger::Outcome;
use crate::providers::{ProviderError, UpstreamResponse, WireFormat};
use crate::proxy::body::{Paced, ProxyBody, error_response};
use crate::proxy::context::{Finalizer, PromptEstimate, Tokens, Trip};
use crate::proxy::dialect::{Dialect, StreamFraming};
use crate::proxy::error::ApiError;
use crate::proxy::headers::routing_headers;
use crate::proxy::state::AppState;
use crate::proxy::stream::SseRelay;
use crate::routing::execute::Reply as Served;
use crate::translate::{anthropic, responses};
use crate::wire::openai::{ResponseView, UsageView};

/// Room for the headers of a reply: content type, retry-after or cache-control, and the
/// `x-smartproxy-*` ones (a map of this capacity never grows for them).
const RESPONSE_HEADERS: usize = 16;

/// What the phases produced, ready to become a response.
pub enum Reply {
    Whole {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        body: Bytes,
    },
    Stream {
        response: UpstreamResponse,
        stream: StreamFacts,
        /// The cache key to store the stream under once it completes.
        cache_fill: Option<String>,
    },
    /// A recorded stream replayed at its recorded pace: each chunk after its wait.
    Paced {
        content_type: Option<String>,
        chunks: Vec<(std::time::Duration, Bytes)>,
    },
}

/// What the stream relay needs to know of the request.
pub struct StreamFacts {
    prompt: PromptEstimate,
    requested_model: String,
    client_wants_usage: bool,
    /// What converting chat chunks for this client needs from its request (a Responses API
    /// client's tool kinds), when a chat provider served it.
    chat_reply_tools: Option<responses::ToolKinds>,
}

impl StreamFacts {
    pub fn of(request: &Admitted) -> Self {
        Self {
            prompt: request.prompt.clone(),
            requested_model: request.inbound.model.clone(),
            client_wants_usage: request.inbound.client_wants_usage,
            chat_reply_tools: None,
        }
    }

    /// The facts of a stream from `upstream`: a chat stream the client's format converts with
    /// what its request declared.
    fn of_upstream(request: &Admitted, dialect: Dialect, upstream_native: bool) -> Self {
        let mut facts = Self::of(request);
        if !upstream_native {
            facts.chat_reply_tools = dialect.chat_reply_tools(request.inbound.native.as_ref());
        }
        facts
    }
}

/// The upstream's reply as this request's reply; a whole OpenAI reply is cached under
/// `cache_key` when complete.
pub fn from_upstream(
    ctx: &mut RequestCtx,
    request: &Admitted,
    upstream: Upstream,
    cache_key: Option<String>,
) -> Result<Reply, ApiError> {
    match upstream.reply {
        Served::Stream(response) => Ok(Reply::Stream {
            cache_fill: cache_key.filter(|_| response.format == WireFormat::OpenAi),
            response,
            stream: StreamFacts::of_upstream(request, ctx.dialect, upstream.served_native),
        }),
        Served::Whole {
            status,
            content_type,
            retry_after,
            body,
            ..
        } => {
            ctx.fin.set_ttfb();
            // A 200 that is no reply (cut, an HTML page, an error object) is a failure, and
            // never cached; its tokens are an estimate.
            // The check reads the model and usage on the way, for `whole_body`.
            let head = if (200..300).contains(&status) {
                match crate::wire::reply_check::check(&body) {
                    Ok(checked) => Some(checked.usage_view()),
                    Err(fault) => {
                        ctx.fin
                            .set_tokens(Tokens::estimated(request.prompt.tokens(), 0));
                        let provider = ctx.fin.record().provider.clone().unwrap_or_default();
                        return Err(ApiError::bad_reply(&provider, fault));
                    }
                }
            } else {
                None
            };
            // The reply's format: translating providers answer in OpenAI's.
            let native_reply = request.inbound.native.is_some() && upstream.served_native;
            if let Some(key) = cache_key.filter(|_| status == 200 && !native_reply) {
                super::cache::fill(ctx, key, &body);
            }
            let body = whole_body(ctx, request, native_reply, status, body, head)?;
            Ok(Reply::Whole {
                status,
                content_type: ctx.dialect.reply_content_type(content_type),
                retry_after,
                body,
            })
        }
    }
}

/// A cache hit as a reply: whole, or replayed as a stream.
pub fn from_cache(
    ctx: &mut RequestCtx,
    request: &Admitted,
    hit: CachedReply,
) -> Result<Reply, ApiError> {
    if request.inbound.stream {
        let events = crate::cache::replay_as_sse(&hit.body, true)
            .map_err(|e| ApiError::internal(format!("unreadable cache entry: {e}")))?;
        let body =
            futures_util::StreamExt::boxed(futures_util::stream::iter(events.into_iter().map(Ok)));
        return Ok(Reply::Stream {
            response: UpstreamResponse {
                status: 200,
                content_type: Some("text/event-stream".to_owned()),
                retry_after: None,
                final_refusal: false,
                format: WireFormat::OpenAi,
                body,
            },
            stream: StreamFacts::of(request),
            cache_fill: None,
        });
    }
    let body = whole_body(ctx, request, false, 200, Bytes::from(hit.body), None)?;
    Ok(Reply::Whole {
        status: 200,
        content_type: Some("application/json".to_owned()),
        retry_after: None,
        body,
    })
}

/// Reads usage from a whole reply onto the row and converts the reply into the client's format.
/// `head`: its model and usage when the reply check already read them.
fn whole_body(
    ctx: &mut RequestCtx,
    request: &Admitted,
    native_reply: bool,
    status: u16,
    body: Bytes,
    head: Option<UsageView>,
) -> Result<Bytes, ApiError> {
    let ok = (200..300).contains(&status);
    // A native reply in OpenAI's wire format (the Responses API) is read like a chat reply
    // (its usage has the same reader) and passed on as it came.
    if native_reply && ctx.dialect.native_wire().0 != WireFormat::OpenAi {
        if ok {
            record_anthropic_usage(ctx, request, &body);
        }
        return Ok(body);
    }
    if !ok {
        return Ok(ctx.dialect.error_body(status, body));
    }
    // Model and usage first; the choices are read only when the provider sent no usage.
    let head = head.unwrap_or_else(|| serde_json::from_slice(&body).unwrap_or_default());
    if let Some(model) = head.model.filter(|m| !m.is_empty()) {
        ctx.fin.record().served_model = Some(model);
    }
    let tokens = match &head.usage {
        Some(usage) => Tokens::from_usage(usage).served_at(head.service_tier.as_deref()),
        None => {
            let parsed: ResponseView = serde_json::from_slice(&body).unwrap_or_default();
            Tokens::estimated(request.prompt.tokens(), parsed.content_tokens())
        }
    };
    ctx.fin.set_tokens(tokens);
    let transforms = ctx.state.transforms();
    let body = if ctx.dialect.takes_transforms() && transforms.any_on_response() {
        transforms
            .apply_to_response(&body)
            .map_or(body, Bytes::from)
    } else {
        body
    };
    let model = &request.inbound.model;
    let converted = if native_reply {
        ctx.dialect.reply_from_openai(body, model)
    } else {
        let native_request = request.inbound.native.as_ref();
        ctx.dialect
            .reply_from_chat(body, model, ctx.fin.id(), native_request)
    };
    converted.map_err(|detail| {
        ApiError::upstream(&ProviderError::Broken {
            provider: ctx.fin.record().provider.clone().unwrap_or_default(),
            detail: format!("the reply could not be converted: {detail}"),
        })
    })
}

/// Model and usage of an Anthropic provider's own reply, passed to an Anthropic client as is.
fn record_anthropic_usage(ctx: &mut RequestCtx, request: &Admitted, body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct UsageOnly {
        usage: Option<crate::wire::anthropic::Usage>,
        model: Option<String>,
    }
    let parsed = serde_json::from_slice::<UsageOnly>(body).ok();
    let (usage, model) = parsed.map_or((None, None), |p| (p.usage, p.model));
    if let Some(model) = model {
        ctx.fin.record().served_model = Some(model);
    }
    let usage = usage.filter(|u| u.input_tokens.is_some() || u.output_tokens.is_some());
    let tokens = match usage {
        Some(usage) => Tokens::from_token_usage(&anthropic::TokenUsage::from_anthropic(&usage)),
        // No counts: an estimate, marked, never a silent zero.
        None => Tokens::estimated(request.prompt.tokens(), anthropic::content_tokens(body)),
    };
    ctx.fin.set_tokens(tokens);
}

/// The response: a whole body or a live stream with the routing headers, or the error in the
/// client's format. Whole replies and errors write the ledger row here; streams when they end.
pub fn respond(ctx: RequestCtx, reply: Result<Reply, ApiError>) -> Response<ProxyBody> {
    let RequestCtx {
        state,
        dialect,
        mut fin,
        trip,
        tape,
        ..
    } = ctx;
    match reply {
        Ok(Reply::Whole {
            status,
            content_type,
            retry_after,
            body,
        }) => {
            if let Some(entry) = tape {
                record_whole(
                    &state,
                    &mut fin,
                    entry,
                    status,
                    content_type.as_deref(),
                    &body,
                );
            }
            let headers = (content_type, retry_after);
            respond_whole(&state, fin, &trip, status, headers, body)
        }
        Ok(Reply::Stream {
            response,
            stream,
            cache_fill,
        }) => {
            let facts = (stream, cache_fill, tape);
            respond_stream(&state, dialect, fin, &trip, response, facts)
        }
        Ok(Reply::Paced {
            content_type,
            chunks,
        }) => {
            let whole: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
            let mut response =
                respond_whole(&state, fin, &trip, 200, (content_type, None), whole.into());
            *response.body_mut() = ProxyBody::Paced(Box::new(Paced::new(chunks)));
            response
        }
        Err(err) => {
            let mut response = error_response(&err, dialect, fin.id());
            if fin.record().attempts > 0 {
                routing_headers(&state, response.headers_mut(), &mut fin, &trip, false);
            }
            fin.finish(err.status().as_u16(), err.outcome(), Some(err.code()));
            response
        }
    }
}

/// `run --record`: a whole reply's pair, queued for the cassette.
fn record_whole(
    state: &AppState,
    fin: &mut Finalizer,
    mut entry: crate::cassette::Entry,
    status: u16,
    content_type: Option<&str>,
    body: &Bytes,
) {
    let Some(recorder) = state.cassette.as_ref().and_then(|c| c.recorder.as_ref()) else {
        return;
    };
    let record = fin.record();
    entry.status = status;
    entry.content_type = content_type.map(str::to_owned);
    entry.model.clone_from(&record.served_model);
    entry.prompt_tokens = record.prompt_tokens;
    entry.completion_tokens = record.completion_tokens;
    entry.reply = crate::cassette::Reply::whole(body);
    recorder.record(entry);
}

/// A whole reply with its headers; its row is written here.
fn respond_whole(
    state: &AppState,
    mut fin: Finalizer,
    trip: &Trip,
    status: u16,
    (content_type, retry_after): (Option<String>, Option<String>),
    body: Bytes,
) -> Response<ProxyBody> {
    // Opt-in: the body as the client gets it.
    if let Some(capture) = &state.capture
        && !fin.forwarded()
    {
        capture.put(fin.id(), Kind::Response, body.clone());
    }
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    // Sized for the routing headers at once: growing an empty map to hold them rehashed
    // it three times on every response.
    *response.headers_mut() = HeaderMap::with_capacity(RESPONSE_HEADERS);
    let headers = response.headers_mut();
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(RETRY_AFTER, value);
    }
    routing_headers(state, headers, &mut fin, trip, true);
    let outcome = if (200..300).contains(&status) {
        Outcome::Ok
    } else {
        Outcome::UpstreamError
    };
    let code = (outcome != Outcome::Ok).then(|| format!("upstream_{status}"));
    fin.finish(status, outcome, code.as_deref());
    response
}

/// A live stream handed to the relay, which writes the row when it ends.
fn respond_stream(
    state: &AppState,
    dialect: Dialect,
    mut fin: Finalizer,
    trip: &Trip,
    response: UpstreamResponse,
    (stream, cache_fill, tape): (StreamFacts, Option<String>, Option<crate::cassette::Entry>),
) -> Response<ProxyBody> {
    let mut headers = HeaderMap::with_capacity(RESPONSE_HEADERS);
    routing_headers(state, &mut headers, &mut fin, trip, false);
    let framing = StreamFraming::for_client(
        dialect,
        response.format,
        fin.id(),
        &stream.requested_model,
        &stream.prompt,
        stream.client_wants_usage,
        stream.chat_reply_tools,
    );
    let transforms = state.transforms();
    let transform = (response.format == WireFormat::OpenAi && transforms.any_on_response())
        .then(|| transforms.stream());
    // Opt-in: the stream's bytes copied as they are forwarded, stored when it ends.
    let capture = state
        .capture
        .as_ref()
        .filter(|_| !fin.forwarded())
        .map(|c| c.stream(fin.id()));
    let mut relay = SseRelay::new(response.body, fin, framing, stream.prompt, transform);
    if let Some(capture) = capture {
        relay.capture(capture);
    }
    if let Some(key) = cache_fill {
        relay.fill_cache(key);
    }
    // `run --record`: the chunks forwarded, recorded when the stream completes.
    if let (Some(mut entry), Some(recorder)) = (
        tape,
        state.cassette.as_ref().and_then(|c| c.recorder.as_ref()),
    ) {
        entry.status = 200;
        entry.content_type = Some(dialect.stream_content_type().to_owned());
        relay.record(recorder.tape(entry));
    }
    let mut out = Response::new(ProxyBody::Stream(Box::new(relay)));
    *out.headers_mut() = headers;
    let h = out.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(dialect.stream_content_type()),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out
}
