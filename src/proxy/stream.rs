//! The stream relay: forwards a provider's stream to the client event by event the moment each
//! event is complete, reads usage on the way, applies transforms, converts OpenAI events into
//! the client's format when it speaks another, and writes the ledger row when the stream ends
//! or the client leaves.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::context::{Finalizer, PromptEstimate, Tokens};
use super::dialect::StreamFraming;
use crate::cache::StreamAssembler;
use crate::capture::StreamCapture;
use crate::cassette::StreamTape;
use crate::ledger::Outcome;
use crate::providers::{BodyStream, ProviderError};
use crate::transform::{ChunkOut, StreamTransform};
use crate::wire::estimate::TextTokens;
use crate::wire::openai::{ChunkView, ErrorBody, ResponsesEventView, Usage};
use crate::wire::sse;

/// How long a stream's end may wait for its row to be committed. Commits take a millisecond or
/// two; this bounds the wait when another process holds the ledger, and then the end goes out
/// anyway (the row is still written when the ledger frees up).
const COMMIT_WAIT: Duration = Duration::from_secs(1);

/// How many frames may wait to be forwarded while the relay reads on what already came.
const READ_AHEAD: usize = 64;

pub struct SseRelay {
    upstream: BodyStream,
    decoder: sse::Decoder,
    /// Bytes ready to send, in order.
    ready: VecDeque<Bytes>,
    output: StreamFraming,
    prompt: PromptEstimate,
    usage: Option<Usage>,
    /// The reply's `service_tier`, which sets its price.
    service_tier: Option<String>,
    served_model: Option<String>,
    /// The generated text so far, for an estimate when usage never comes.
    output_text: TextTokens,
    upstream_error: bool,
    /// The provider's own end arrived (`[DONE]` or a finish reason, `message_stop` or a stop
    /// reason, `response.completed`): without it the reply was cut short.
    terminal: bool,
    /// An event was not the JSON its format promises.
    malformed: bool,
    /// A translating provider already told the client (with an error chunk) that its stream
    /// was cut short.
    truncated: bool,
    /// Resolves when smartproxy's shutdown gives up waiting for the stream (the drain grace ran
    /// out): the client then gets an error event rather than a connection cut mid-event.
    cut: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
    ended: bool,
    finalizer: Option<Finalizer>,
    transform: Option<StreamTransform>,
    /// The last chunk payload, the template for text a transform still holds at the end.
    last_chunk: Option<Bytes>,
    /// Rebuilds the reply for the cache, under this key, when the stream completes.
    cache_fill: Option<(String, StreamAssembler)>,
    /// Opt-in body capture: a copy of the bytes forwarded, stored when the stream ends.
    capture: Option<StreamCapture>,
    /// `run --record`: the chunks forwarded, recorded once the stream completed and all of
    /// it was forwarded.
    tape: Option<StreamTape>,
    /// The completed stream's served model and tokens, for the tape.
    tape_done: Option<(Option<String>, (u64, u64))>,
    /// The row is written and being committed: nothing more is forwarded until it is (or
    /// `COMMIT_WAIT` passed), so a client that saw the stream end finds it in the ledger even
    /// if smartproxy is killed right after.
    committing: Option<Pin<Box<tokio::time::Timeout<tokio::sync::oneshot::Receiver<()>>>>>,
}

impl SseRelay {
    pub fn new(
        upstream: BodyStream,
        finalizer: Finalizer,
        output: StreamFraming,
        prompt: PromptEstimate,
        transform: Option<StreamTransform>,
    ) -> Self {
        let cut = finalizer.state().stream_cut();
        Self {
            upstream,
            decoder: sse::Decoder::new(),
            ready: VecDeque::new(),
            output,
            prompt,
            usage: None,
            service_tier: None,
            served_model: None,
            output_text: TextTokens::default(),
            upstream_error: false,
            terminal: false,
            malformed: false,
            truncated: false,
            cut: Some(cut),
            ended: false,
            finalizer: Some(finalizer),
            transform,
            last_chunk: None,
            cache_fill: None,
            capture: None,
            tape: None,
            tape_done: None,
            committing: None,
        }
    }

    /// Stores the reply in the cache under `key` if the stream completes.
    pub fn fill_cache(&mut self, key: String) {
        self.cache_fill = Some((key, StreamAssembler::new()));
    }

    /// Copies the bytes forwarded into `capture`, stored when the stream ends or is dropped.
    pub fn capture(&mut self, capture: StreamCapture) {
        self.capture = Some(capture);
    }

    /// Copies the bytes forwarded onto `tape`, recorded in the cassette if the stream
    /// completes.
    pub fn record(&mut self, tape: StreamTape) {
        self.tape = Some(tape);
    }

    /// Hands a completed, wholly forwarded stream's tape to the cassette.
    fn end_tape(&mut self) {
        let Some((model, tokens)) = self.tape_done.take() else {
            return;
        };
        if let Some(tape) = self.tape.take() {
            tape.finish(model, tokens);
        }
    }

    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(wait) = self.committing.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    // Only the end waits for the commit: what came before it goes out now (a
                    // stream that arrived in one burst would otherwise hold its first event).
                    return match self.take_ready_before_end() {
                        Some(bytes) => Poll::Ready(Some(self.forward(bytes))),
                        None => Poll::Pending,
                    };
                }
                self.committing = None;
            }
            // What the provider already sent is read before anything is forwarded (nothing
            // waits for the provider here): its final event and the end of its stream come
            // together, so the final event goes out after the row is committed.
            if !self.ended && self.ready.len() < READ_AHEAD {
                match self.upstream.poll_next_unpin(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Some(Ok(chunk))) => {
                        self.decoder.push(&chunk);
                        while let Some(event) = self.decoder.next_event() {
                            self.on_event(event);
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(err))) => {
                        self.on_broken(&err);
                        continue;
                    }
                    Poll::Ready(None) => {
                        self.on_end();
                        continue;
                    }
                }
            }
            if let Some(bytes) = self.take_ready() {
                return Poll::Ready(Some(self.forward(bytes)));
            }
            if self.ended {
                if let Some(capture) = self.capture.take() {
                    capture.finish();
                }
                self.end_tape();
                return Poll::Ready(None);
            }
            // Nothing to forward, and the provider was polled above: it wakes us. Only a stream
            // waiting on its provider can be cut at shutdown (a busy one ends soon anyway);
            // polling the cut here registers its waker too.
            if let Some(cut) = self.cut.as_mut()
                && cut.as_mut().poll(cx).is_ready()
            {
                self.cut = None;
                self.on_cut();
                continue;
            }
            return Poll::Pending;
        }
    }

    /// Notes a frame on its way to the client (time to first byte, capture) and returns it.
    fn forward(&mut self, bytes: Bytes) -> Bytes {
        if let Some(f) = self.finalizer.as_mut() {
            f.set_ttfb();
        }
        if let Some(capture) = self.capture.as_mut() {
            capture.push(&bytes);
        }
        if let Some(tape) = self.tape.as_mut() {
            tape.push(&bytes);
        }
        bytes
    }

    /// Everything ready to send, as one frame: the events the provider sent together go out in
    /// one chunk and one write (hyper frames each body chunk apart and flushes every few).
    /// Only what is already here is joined; nothing waits for more.
    fn take_ready(&mut self) -> Option<Bytes> {
        self.take_first(self.ready.len())
    }

    /// Everything ready but the last frame, the stream's end, which waits for the commit.
    fn take_ready_before_end(&mut self) -> Option<Bytes> {
        self.take_first(self.ready.len().saturating_sub(1))
    }

    /// The first `count` ready frames joined into one.
    fn take_first(&mut self, count: usize) -> Option<Bytes> {
        if count == 0 {
            return None;
        }
        let first = self.ready.pop_front()?;
        if count == 1 {
            return Some(first);
        }
        let len = first.len() + self.ready.range(..count - 1).map(Bytes::len).sum::<usize>();
        let mut joined = BytesMut::with_capacity(len);
        joined.extend_from_slice(&first);
        for bytes in self.ready.drain(..count - 1) {
            joined.extend_from_slice(&bytes);
        }
        Some(joined.freeze())
    }

    fn on_event(&mut self, event: sse::Event) {
        if let Some(counter) = self.output.native() {
            let _ = counter.push(event.name(), &event.data);
            self.upstream_error |= counter.is_errored();
            self.malformed |= counter.is_malformed();
            self.terminal |= counter.is_complete();
            self.ready.push_back(event.raw);
            return;
        }
        if self.output.is_responses() {
            self.read_responses_event(&event.data);
            self.ready.push_back(event.raw);
            return;
        }
        if event.is_done() {
            self.terminal = true;
            self.flush_transform();
            self.finish_output(Some(event.raw));
            return;
        }
        let data = event.data.as_ref();
        if let Some((_, assembler)) = self.cache_fill.as_mut() {
            assembler.push(data);
        }
        // Every event is a JSON chunk (comments and keep-alives carry no data).
        if data.first() != Some(&b'{') && !data.iter().all(u8::is_ascii_whitespace) {
            self.malformed = true;
        }
        if data.first() == Some(&b'{') {
            let parsed = serde_json::from_slice::<ChunkView<'_>>(data);
            self.malformed |= parsed.is_err();
            if let Ok(chunk) = parsed {
                chunk.count_content(&mut self.output_text);
                self.terminal |= chunk.has_finish_reason();
                if self.served_model.is_none() {
                    self.served_model = chunk.model.as_deref().map(str::to_owned);
                }
                if self.service_tier.is_none() {
                    self.service_tier = chunk.service_tier.as_deref().map(str::to_owned);
                }
                if let Some(error) = chunk.error {
                    // A translating provider's word that its native stream was malformed or
                    // cut short, or the provider's own error.
                    let error = error.get().as_bytes();
                    if memchr::memmem::find(error, b"\"upstream_malformed\"").is_some() {
                        self.malformed = true;
                    } else if memchr::memmem::find(error, b"\"upstream_truncated\"").is_some() {
                        self.truncated = true;
                    } else {
                        self.upstream_error = true;
                    }
                }
                if let Some(usage) = chunk.usage {
                    self.usage = Some(usage);
                    if self.output.drops_usage_chunks() && chunk.is_usage_only() {
                        return;
                    }
                }
            }
            if let Some(transform) = self.transform.as_mut() {
                self.last_chunk = Some(event.data.clone());
                match transform.push_chunk(data) {
                    ChunkOut::Unchanged => {}
                    ChunkOut::Rewritten(payload) => {
                        self.emit_chunk(&payload, None);
                        return;
                    }
                    ChunkOut::Drop => return,
                }
            }
        }
        let raw = event.raw.clone();
        self.emit_chunk(&event.data, Some(raw));
    }

    /// Reads what the ledger needs from a Responses API event passing through: the final
    /// response's model and usage, text sizes for an estimate, failures.
    fn read_responses_event(&mut self, data: &[u8]) {
        if data.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(event) = serde_json::from_slice::<ResponsesEventView<'_>>(data) else {
            self.malformed = true;
            return;
        };
        match event.kind.as_ref() {
            "response.output_text.delta" | "response.function_call_arguments.delta" => {
                if let Some(delta) = event.delta {
                    self.output_text.push_json(delta.get());
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(response) = event.response {
                    if response.model.is_some() {
                        self.served_model = response.model;
                    }
                    if response.usage.is_some() {
                        self.usage = response.usage;
                    }
                    // `flex` and `priority` replies are priced apart.
                    if response.service_tier.is_some() {
                        self.service_tier = response.service_tier;
                    }
                }
                self.terminal = true;
                if event.kind == "response.failed" {
                    self.upstream_error = true;
                }
            }
            "error" => self.upstream_error = true,
            _ => {}
        }
    }

    /// Sends one OpenAI chunk payload in the client's format (`raw`: the event as it came, for
    /// OpenAI clients).
    fn emit_chunk(&mut self, payload: &[u8], raw: Option<Bytes>) {
        self.output.chunk(payload, raw, &mut self.ready);
    }

    /// The end of the OpenAI stream in the client's format.
    fn finish_output(&mut self, done_event: Option<Bytes>) {
        self.output.finish(done_event, &mut self.ready);
    }

    /// Sends what a transform still holds (a stream that ended without a finish chunk).
    fn flush_transform(&mut self) {
        let held = match (self.transform.as_mut(), self.last_chunk.as_ref()) {
            (Some(transform), Some(template)) => transform.flush(template),
            _ => None,
        };
        if let Some(payload) = held {
            self.emit_chunk(&payload, None);
        }
    }

    /// The upstream broke mid-stream: the client gets a well-formed error event (headers are
    /// already sent, so no other provider may take over), and the ledger says so.
    fn on_broken(&mut self, err: &ProviderError) {
        // The provider's end already came: a provider slow to close after it (an idle timeout)
        // or a reset then takes nothing from the reply.
        if self.terminal {
            self.on_end();
            return;
        }
        if let Some(rest) = self.decoder.take_rest()
            && self.output.passes_events_through()
        {
            self.ready.push_back(rest.raw);
        }
        let body = ErrorBody::new(
            format!("the stream from the provider broke: {err}"),
            "upstream_error",
            Some(err.code()),
            None,
        )
        .to_json();
        let event = self.output.error_event(&body);
        self.ready.push_back(event);
        self.ended = true;
        self.finish(502, Outcome::TransportError, Some(err.code()));
    }

    fn on_end(&mut self) {
        if let Some(rest) = self.decoder.take_rest() {
            self.on_event(rest);
        }
        self.flush_transform();
        self.ended = true;
        if self.upstream_error {
            // The client got the provider's error; a translated format still gets its ending
            // (the converters ignore a second finish).
            if self.output.needs_ending() {
                self.finish_output(None);
            }
            self.finish(200, Outcome::UpstreamError, Some("upstream_stream_error"));
        } else if !self.terminal && !self.truncated {
            self.on_truncated();
        } else {
            // Providers that end with a finish reason but without `[DONE]` still get a proper
            // ending in translated formats.
            if self.output.needs_ending() {
                self.finish_output(None);
            }
            self.complete();
        }
    }

    /// The stream ended cleanly but without the provider's own end: the reply was cut short.
    /// The client gets an error event (never an ending of smartproxy's invention, which would
    /// pass half a reply off as whole), and the row is a failure with estimated tokens.
    fn on_truncated(&mut self) {
        let body = ErrorBody::new(
            "the provider's stream ended before the reply was complete (no finish reason or \
             end event came): the reply is cut short",
            "upstream_error",
            Some("upstream_truncated"),
            None,
        )
        .to_json();
        let event = self.output.error_event(&body);
        self.ready.push_back(event);
        self.finish(502, Outcome::TransportError, Some("upstream_truncated"));
    }

    /// smartproxy's shutdown stopped waiting for this stream (its drain grace ran out): the
    /// client gets a well-formed error event before the stream closes, and the row says who
    /// cut it.
    fn on_cut(&mut self) {
        self.ended = true;
        // The provider's end already reached the client: the reply is whole, only the
        // provider's close is not waited for.
        if self.terminal && self.ready.is_empty() && !self.upstream_error {
            self.cache_fill = None;
            self.complete();
            return;
        }
        let body = ErrorBody::new(
            "smartproxy is shutting down and could not wait any longer for the rest of this \
             stream",
            "server_error",
            Some("proxy_stopped"),
            None,
        )
        .to_json();
        let event = self.output.error_event(&body);
        self.ready.push_back(event);
        self.finish(503, Outcome::ProxyStopped, Some("proxy_stopped"));
    }

    /// The provider's end arrived: the row is ok, unless a translating provider said its stream
    /// was cut (the client got its error chunk) or an event on the way was malformed.
    fn complete(&mut self) {
        if self.truncated {
            self.finish(502, Outcome::TransportError, Some("upstream_truncated"));
        } else if self.malformed {
            self.finish(502, Outcome::UpstreamError, Some("upstream_malformed"));
        } else {
            self.store_in_cache();
            if self.tape.is_some() {
                let tokens = self.tokens();
                let model = self.served_model.clone();
                self.tape_done = Some((model, (tokens.counts.prompt, tokens.counts.completion)));
            }
            self.finish(200, Outcome::Ok, None);
        }
    }

    /// Hands a completed stream to the cache (only complete replies are stored).
    fn store_in_cache(&mut self) {
        let Some((key, assembler)) = self.cache_fill.take() else {
            return;
        };
        let (Some(body), Some(finalizer)) = (assembler.finish(), self.finalizer.as_ref()) else {
            return;
        };
        let state = std::sync::Arc::clone(finalizer.state());
        let Some(cache) = state.cache.as_ref() else {
            return;
        };
        let mut tokens = self.tokens();
        // What the reply cost, at the prices of the moment it started.
        tokens.detail.started_ms = self.finalizer.as_mut().map(|f| f.record().started_ms);
        let model = self.served_model.clone().unwrap_or_default();
        let cost = state.cost_usd_with(None, &model, tokens.counts, tokens.detail);
        cache.put_later(
            key,
            crate::cache::CachedReply {
                body,
                model,
                prompt_tokens: tokens.counts.prompt,
                completion_tokens: tokens.counts.completion,
                cost_usd: cost,
            },
        );
    }

    fn tokens(&self) -> Tokens {
        if let Some(counter) = self.output.native_ref() {
            if let Some(u) = counter.final_usage() {
                return Tokens::from_token_usage(&u);
            }
            // Ended before Anthropic's final count, or no input count came: what the provider
            // reported is kept and the rest estimated (never the start's placeholder output 1,
            // never a prompt of 0).
            let prompt = counter
                .reported_input()
                .map_or_else(|| self.prompt.tokens(), |u| u.prompt);
            let completion = counter
                .reported_output()
                .unwrap_or_else(|| counter.output_tokens());
            return Tokens::estimated(prompt, completion);
        }
        match &self.usage {
            Some(usage) => Tokens::from_usage(usage).served_at(self.service_tier.as_deref()),
            None => Tokens::estimated(self.prompt.tokens(), self.output_text.tokens()),
        }
    }

    fn finish(&mut self, status: u16, outcome: Outcome, code: Option<&str>) {
        self.finish_row(status, outcome, code, true);
    }

    /// Writes the row; `hold_end` keeps the rest of the stream until it is committed.
    fn finish_row(&mut self, status: u16, outcome: Outcome, code: Option<&str>, hold_end: bool) {
        let tokens = self.tokens();
        if let Some(mut finalizer) = self.finalizer.take() {
            if let Some(model) = self.served_model.take() {
                finalizer.record().served_model = Some(model);
            }
            finalizer.set_tokens(tokens);
            if hold_end {
                self.committing = finalizer
                    .finish_committed(status, outcome, code)
                    .map(|done| Box::pin(tokio::time::timeout(COMMIT_WAIT, done)));
            } else {
                finalizer.finish(status, outcome, code);
            }
        }
    }
}

impl Drop for SseRelay {
    fn drop(&mut self) {
        // What was forwarded before the client left (or the relay was dropped) is captured.
        if let Some(capture) = self.capture.take() {
            capture.finish();
        }
        // The client left (or smartproxy stopped) before the stream ended: dropping `upstream`
        // cancels the provider request; the row records what was seen so far. A client that
        // leaves once the provider's end was handed to it (Codex closes on
        // `response.completed`) got the whole reply.
        if let Some(state) = self
            .finalizer
            .as_ref()
            .map(|f| std::sync::Arc::clone(f.state()))
        {
            if self.terminal && self.ready.is_empty() {
                self.cache_fill = None;
                if self.upstream_error {
                    self.finish(200, Outcome::UpstreamError, Some("upstream_stream_error"));
                } else {
                    self.complete();
                    self.end_tape();
                }
                return;
            }
            let (status, outcome, code) = state.dropped_ending();
            self.tape_done = None;
            // Nobody is left to hold the end for (and there may be no runtime for a timer).
            self.finish_row(status, outcome, Some(code), false);
        }
        // Everything was forwarded before the client left: the stream is recorded.
        if self.ready.is_empty() {
            self.end_tape();
        }
    }
}
