//! The SSE relay: forwards a provider's stream to the client event by event the moment each
//! event is complete, reads usage on the way, drops the usage chunk the proxy asked for on the
//! client's behalf, and writes the ledger row when the stream ends or the client leaves.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;

use super::context::{Finalizer, Tokens};
use crate::ledger::Outcome;
use crate::providers::{BodyStream, ProviderError};
use crate::transform::{ChunkOut, StreamTransform};
use crate::wire::openai::{ChunkView, ErrorBody, Usage};
use crate::wire::{estimate_tokens, sse};

pub struct SseRelay {
    upstream: BodyStream,
    decoder: sse::Decoder,
    /// Events ready to send, in order.
    ready: VecDeque<Bytes>,
    /// True when the client did not ask for the usage chunk and it must be removed.
    drop_usage_chunk: bool,
    prompt_estimate: u64,
    usage: Option<Usage>,
    served_model: Option<String>,
    content_bytes: usize,
    upstream_error: bool,
    ended: bool,
    finalizer: Option<Finalizer>,
    transform: Option<StreamTransform>,
    /// The last chunk payload, the template for text a transform still holds at the end.
    last_chunk: Option<Bytes>,
}

impl SseRelay {
    pub fn new(
        upstream: BodyStream,
        finalizer: Finalizer,
        drop_usage_chunk: bool,
        prompt_estimate: u64,
        transform: Option<StreamTransform>,
    ) -> Self {
        Self {
            upstream,
            decoder: sse::Decoder::new(),
            ready: VecDeque::new(),
            drop_usage_chunk,
            prompt_estimate,
            usage: None,
            served_model: None,
            content_bytes: 0,
            upstream_error: false,
            ended: false,
            finalizer: Some(finalizer),
            transform,
            last_chunk: None,
        }
    }

    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                if let Some(f) = self.finalizer.as_mut() {
                    f.set_ttfb();
                }
                return Poll::Ready(Some(event));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match self.upstream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    self.decoder.push(&chunk);
                    while let Some(event) = self.decoder.next_event() {
                        self.on_event(event);
                    }
                }
                Poll::Ready(Some(Err(err))) => self.on_broken(&err),
                Poll::Ready(None) => self.on_end(),
            }
        }
    }

    fn on_event(&mut self, event: sse::Event) {
        if event.is_done() {
            self.flush_transform();
            self.ready.push_back(event.raw);
            return;
        }
        let data = event.data.as_ref();
        if data.first() == Some(&b'{') {
            if let Ok(chunk) = serde_json::from_slice::<ChunkView<'_>>(data) {
                self.content_bytes += chunk.content_bytes();
                if self.served_model.is_none() {
                    self.served_model = chunk.model.as_deref().map(str::to_owned);
                }
                if chunk.error.is_some() {
                    self.upstream_error = true;
                }
                if let Some(usage) = chunk.usage {
                    self.usage = Some(usage);
                    if self.drop_usage_chunk && chunk.is_usage_only() {
                        return;
                    }
                }
            }
            if let Some(transform) = self.transform.as_mut() {
                self.last_chunk = Some(event.data.clone());
                match transform.push_chunk(data) {
                    ChunkOut::Unchanged => {}
                    ChunkOut::Rewritten(payload) => {
                        self.ready.push_back(sse::data_event(&payload));
                        return;
                    }
                    ChunkOut::Drop => return,
                }
            }
        }
        self.ready.push_back(event.raw);
    }

    /// Sends what a transform still holds (a stream that ended without a finish chunk).
    fn flush_transform(&mut self) {
        if let (Some(transform), Some(template)) =
            (self.transform.as_mut(), self.last_chunk.as_ref())
        {
            if let Some(payload) = transform.flush(template) {
                self.ready.push_back(sse::data_event(&payload));
            }
        }
    }

    /// The upstream broke mid-stream: the client gets a well-formed error event (headers are
    /// already sent, so no other provider may take over), and the ledger says so.
    fn on_broken(&mut self, err: &ProviderError) {
        if let Some(rest) = self.decoder.take_rest() {
            self.ready.push_back(rest.raw);
        }
        let body = ErrorBody::new(
            format!("the stream from the provider broke: {err}"),
            "upstream_error",
            Some(err.code()),
            None,
        );
        self.ready.push_back(sse::data_event(&body.to_json()));
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
            self.finish(200, Outcome::UpstreamError, Some("upstream_stream_error"));
        } else {
            // Some providers end without `[DONE]`; a cleanly closed stream is complete either way.
            self.finish(200, Outcome::Ok, None);
        }
    }

    fn tokens(&self) -> Tokens {
        match &self.usage {
            Some(usage) => Tokens::from_usage(usage),
            None => Tokens::estimated(self.prompt_estimate, estimate_tokens(self.content_bytes)),
        }
    }

    fn finish(&mut self, status: u16, outcome: Outcome, code: Option<&str>) {
        let tokens = self.tokens();
        if let Some(mut finalizer) = self.finalizer.take() {
            if let Some(model) = self.served_model.take() {
                finalizer.record().served_model = Some(model);
            }
            finalizer.set_tokens(tokens);
            finalizer.finish(status, outcome, code);
        }
    }
}

impl Drop for SseRelay {
    fn drop(&mut self) {
        // The client left before the stream ended: dropping `upstream` cancels the provider
        // request; the row records what was seen so far.
        if self.finalizer.is_some() {
            self.finish(
                super::context::CLIENT_CLOSED,
                Outcome::ClientClosed,
                Some("client_closed"),
            );
        }
    }
}
