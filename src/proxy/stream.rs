//! The stream relay: forwards a provider's stream to the client event by event the moment each
//! event is complete, reads usage on the way, applies transforms, converts OpenAI events into
//! the client's format when it speaks another, and writes the ledger row when the stream ends
//! or the client leaves.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::context::{Finalizer, PromptEstimate, Tokens};
use super::dialect::StreamFraming;
use crate::cache::StreamAssembler;
use crate::capture::StreamCapture;
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
    ended: bool,
    finalizer: Option<Finalizer>,
    transform: Option<StreamTransform>,
    /// The last chunk payload, the template for text a transform still holds at the end.
    last_chunk: Option<Bytes>,
    /// Rebuilds the reply for the cache, under this key, when the stream completes.
    cache_fill: Option<(String, StreamAssembler)>,
    /// Opt-in body capture: a copy of the bytes forwarded, stored when the stream ends.
    capture: Option<StreamCapture>,
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
            ended: false,
            finalizer: Some(finalizer),
            transform,
            last_chunk: None,
            cache_fill: None,
            capture: None,
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

    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(wait) = self.committing.as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
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
            if let Some(bytes) = self.ready.pop_front() {
                if let Some(f) = self.finalizer.as_mut() {
                    f.set_ttfb();
                }
                if let Some(capture) = self.capture.as_mut() {
                    capture.push(&bytes);
                }
                return Poll::Ready(Some(bytes));
            }
            if self.ended {
                if let Some(capture) = self.capture.take() {
                    capture.finish();
                }
                return Poll::Ready(None);
            }
            // Nothing to forward, and the provider was polled above: it wakes us.
            return Poll::Pending;
        }
    }

    fn on_event(&mut self, event: sse::Event) {
        if let Some(counter) = self.output.native() {
            let _ = counter.push(event.name(), &event.data);
            if event.name() == Some("error") {
                self.upstream_error = true;
            }
            self.ready.push_back(event.raw);
            return;
        }
        if self.output.is_responses() {
            self.read_responses_event(&event.data);
            self.ready.push_back(event.raw);
            return;
        }
        if event.is_done() {
            self.flush_transform();
            self.finish_output(Some(event.raw));
            return;
        }
        let data = event.data.as_ref();
        if let Some((_, assembler)) = self.cache_fill.as_mut() {
            assembler.push(data);
        }
        if data.first() == Some(&b'{') {
            if let Ok(chunk) = serde_json::from_slice::<ChunkView<'_>>(data) {
                chunk.count_content(&mut self.output_text);
                if self.served_model.is_none() {
                    self.served_model = chunk.model.as_deref().map(str::to_owned);
                }
                if self.service_tier.is_none() {
                    self.service_tier = chunk.service_tier.as_deref().map(str::to_owned);
                }
                if chunk.error.is_some() {
                    self.upstream_error = true;
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
        let Ok(event) = serde_json::from_slice::<ResponsesEventView<'_>>(data) else {
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
                }
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
        // Providers that end without `[DONE]` still get a proper ending in translated formats;
        // the converters ignore a second finish.
        if self.output.needs_ending() {
            self.finish_output(None);
        }
        self.ended = true;
        if self.upstream_error {
            self.finish(200, Outcome::UpstreamError, Some("upstream_stream_error"));
        } else {
            self.store_in_cache();
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
        let tokens = self.tokens();
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
            // Ended before Anthropic's final count: the input side as `message_start` gave it,
            // the output estimated from what was written (never the start's placeholder 1).
            let prompt = counter
                .usage()
                .map_or_else(|| self.prompt.tokens(), |u| u.prompt);
            return Tokens::estimated(prompt, counter.output_tokens());
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
        // cancels the provider request; the row records what was seen so far.
        if let Some(state) = self
            .finalizer
            .as_ref()
            .map(|f| std::sync::Arc::clone(f.state()))
        {
            let (status, outcome, code) = state.dropped_ending();
            // Nobody is left to hold the end for (and there may be no runtime for a timer).
            self.finish_row(status, outcome, Some(code), false);
        }
    }
}
