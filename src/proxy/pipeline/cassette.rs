//! Phase 1b, cassette (`run --replay`/`--record`): a request the replayed cassette holds is
//! answered here with the recorded reply, byte for byte, with no provider, budget or cost; a
//! miss is a `cassette_miss` error naming where it differs from the nearest recorded request
//! (or goes on upstream with `--replay-miss passthrough`). When recording, the request's pair
//! is started here and finished by the reply phase or the stream relay.

use std::time::Duration;

use bytes::Bytes;

use super::reply::Reply;
use super::{Admitted, RequestCtx};
use crate::cassette::{Entry, OnMiss, key};
use crate::proxy::error::ApiError;

/// The recorded reply when the replayed cassette has one; else the pair to record, if any, is
/// left on `ctx.tape`.
pub fn replay(ctx: &mut RequestCtx, request: &Admitted) -> Result<Option<Reply>, ApiError> {
    let Some(cassette) = ctx.state.cassette.clone() else {
        return Ok(None);
    };
    // A nested `run` records its own requests.
    if ctx.fin.forwarded() {
        return Ok(None);
    }
    let endpoint = ctx.dialect.path();
    let mut stored = key::redact_request(&request.body, &cassette.redactions);
    if let Some(player) = &cassette.player {
        // Only a recording needs the stored body after this.
        let asked = if cassette.recorder.is_some() {
            stored.clone()
        } else {
            std::mem::take(&mut stored)
        };
        match player.take(&key::canonical_owned(endpoint, asked)) {
            Ok(entry) => return Ok(Some(replayed(ctx, &entry))),
            Err(miss) if cassette.on_miss == OnMiss::Fail => {
                return Err(ApiError::cassette_miss(miss.message));
            }
            Err(_) => {
                tracing::info!("not in the cassette: sent upstream (--replay-miss passthrough)");
            }
        }
    }
    if cassette.recorder.is_some() {
        ctx.tape = Some(Entry {
            endpoint: endpoint.to_owned(),
            request: stored,
            status: 0,
            content_type: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            reply: crate::cassette::Reply::Text {
                text: String::new(),
            },
        });
    }
    Ok(None)
}

/// A recorded pair as this request's reply; the row says it was replayed and cost nothing.
fn replayed(ctx: &mut RequestCtx, entry: &Entry) -> Reply {
    ctx.fin.set_ttfb();
    let record = ctx.fin.record();
    record.provider = Some("cassette".to_owned());
    record.cache_status = "replay";
    record.served_model.clone_from(&entry.model);
    record.prompt_tokens = entry.prompt_tokens;
    record.completion_tokens = entry.completion_tokens;
    record.cost_usd = Some(0.0);
    // Recorded with `--record-timing`: paced as it came.
    if let crate::cassette::Reply::Stream {
        chunks,
        chunk_ms: Some(times),
    } = &entry.reply
        && times.len() == chunks.len()
        && entry.status == 200
    {
        let waits = times
            .iter()
            .scan(0, |previous, &at| {
                let wait = at.saturating_sub(*previous);
                *previous = at;
                Some(Duration::from_millis(wait))
            })
            .zip(chunks.iter().map(|c| Bytes::from(c.clone())));
        return Reply::Paced {
            content_type: entry.content_type.clone(),
            chunks: waits.collect(),
        };
    }
    Reply::Whole {
        status: entry.status,
        content_type: entry.content_type.clone(),
        retry_after: None,
        body: Bytes::from(entry.reply.bytes()),
    }
}
