//! Helpers shared by the fuzz targets: how an input is cut into a plan of chunk sizes and the
//! stream those chunks come from, and the reference feeds the targets compare against.

use smartproxy::translate::ollama::LineDecoder;
use smartproxy::wire::sse::{Decoder, Event};

/// The most chunk sizes a plan holds.
pub const MAX_PLAN: usize = 32;

/// An input cut in two: chunk sizes chosen by the fuzzer, then the stream itself.
///
/// Layout: one byte `n` (taken modulo `MAX_PLAN + 1`), then `n` bytes each the length of one
/// chunk (0 is an empty push), then the stream. The sizes repeat until the stream is used up; no
/// sizes means the stream arrives whole.
pub struct Split<'a> {
    pub plan: &'a [u8],
    pub stream: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let Some((&n, rest)) = data.split_first() else {
            return Self {
                plan: &[],
                stream: &[],
            };
        };
        let n = usize::from(n) % (MAX_PLAN + 1);
        let n = n.min(rest.len());
        let (plan, stream) = rest.split_at(n);
        Self { plan, stream }
    }

    /// The stream in the planned chunks (empty chunks included).
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        chunks(self.stream, self.plan)
    }
}

/// `stream` cut into pieces whose lengths cycle through `plan`; the whole stream when `plan`
/// is empty. Every byte is in exactly one piece, in order.
pub fn chunks<'a>(stream: &'a [u8], plan: &[u8]) -> Vec<&'a [u8]> {
    if plan.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    // A plan of zeros alone would never end: after a full cycle without progress take one byte.
    let mut stalled = 0;
    for &size in plan.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let mut size = usize::from(size);
        if size == 0 {
            stalled += 1;
            if stalled < plan.len() {
                out.push(&rest[..0]);
                continue;
            }
            size = 1;
        }
        stalled = 0;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Every SSE event of `chunks` fed in order, the unterminated tail included.
pub fn sse_events(chunks: &[&[u8]]) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            events.push(event);
        }
    }
    events.extend(decoder.take_rest());
    events
}

/// Every NDJSON line of `chunks` fed in order, the unterminated last line included.
pub fn ndjson_lines(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut decoder = LineDecoder::new();
    let mut lines = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(line) = decoder.next_line() {
            lines.push(line.to_vec());
        }
    }
    lines.extend(decoder.finish().map(|l| l.to_vec()));
    lines
}

/// Whether `bytes` is one JSON value.
pub fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

/// Panics unless `bytes` is one JSON value.
pub fn assert_json(bytes: &[u8], what: &str) {
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(bytes) {
        panic!(
            "{what} is not JSON ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Panics unless each SSE event in `events` is one well-formed `data:` event holding JSON or
/// `[DONE]` (with an optional `event:` line before it), as the translators promise.
pub fn assert_sse_out(events: &[bytes::Bytes], what: &str) {
    for raw in events {
        let parsed = sse_events(&[raw.as_ref()]);
        assert_eq!(parsed.len(), 1, "{what}: not one SSE event: {raw:?}");
        assert_eq!(&parsed[0].raw, raw, "{what}: event not terminated: {raw:?}");
        if !parsed[0].is_done() {
            assert_json(&parsed[0].data, what);
        }
    }
}

/// Panics unless each line is one JSON object ending in a single `\n`.
pub fn assert_ndjson_out(lines: &[bytes::Bytes], what: &str) {
    for line in lines {
        let Some(body) = line.strip_suffix(b"\n") else {
            panic!("{what}: line without newline: {line:?}");
        };
        assert!(!body.contains(&b'\n'), "{what}: newline inside: {line:?}");
        assert_json(body, what);
    }
}

/// Returns an error naming the broken rule unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// Whether `events` follow Anthropic's stream grammar, and if not why:
/// `message_start` first; blocks started in index order 0, 1, 2, ..., one open at a time; deltas
/// and stops only for the open block; `message_delta` then `message_stop` last, or an `error`
/// event last; nothing after the end.
pub fn anthropic_grammar(events: &[&[u8]]) -> Result<(), String> {
    let mut started = false;
    let mut ended = false;
    let mut open: Option<u64> = None;
    let mut next_block = 0;
    let mut delta_seen = false;
    for raw in events {
        let parsed = sse_events(&[raw]);
        let Some(event) = parsed.first() else {
            return Err(format!("not an SSE event: {raw:?}"));
        };
        let value: serde_json::Value = match serde_json::from_slice(&event.data) {
            Ok(v) => v,
            Err(e) => return Err(format!("not JSON ({e}): {raw:?}")),
        };
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        check!(
            event.name() == Some(kind.as_str()),
            "event name differs: {raw:?}"
        );
        check!(!ended, "{kind} after the end of the message");
        if kind == "error" {
            ended = true;
            continue;
        }
        if kind == "message_start" {
            check!(!started, "a second message_start");
            started = true;
            continue;
        }
        check!(started, "{kind} before message_start");
        let index = value["index"].as_u64();
        match kind.as_str() {
            "content_block_start" => {
                check!(open.is_none(), "block started while block {open:?} is open");
                check!(!delta_seen, "a block after message_delta");
                check!(index == Some(next_block), "blocks out of order");
                open = index;
                next_block += 1;
            }
            "content_block_delta" => {
                // Known limitation, left as it is: when a provider interleaves the argument
                // fragments of parallel tool calls (OpenAI's format allows it), a late fragment
                // goes to its call's block although a later block was started since. SDKs
                // accumulate by index, so it still lands in the right place.
                let late_tool_args = value["delta"]["type"] == "input_json_delta"
                    && index.is_some_and(|i| i < next_block);
                check!(
                    (open.is_some() && open == index) || late_tool_args,
                    "delta for block {index:?} while {open:?} is open: {raw:?}"
                );
            }
            "content_block_stop" => {
                check!(open.is_some() && open == index, "stop for a block not open");
                open = None;
            }
            "message_delta" => {
                check!(open.is_none(), "message_delta with a block open");
                check!(!delta_seen, "a second message_delta");
                delta_seen = true;
            }
            "message_stop" => {
                check!(delta_seen, "message_stop without message_delta");
                ended = true;
            }
            "ping" => {}
            other => return Err(format!("unexpected event type {other:?}")),
        }
    }
    check!(ended || events.is_empty(), "the stream does not end");
    Ok(())
}

/// Panics unless `events` follow Anthropic's stream grammar (see [`anthropic_grammar`]).
pub fn assert_anthropic_grammar(events: &[bytes::Bytes]) {
    let events: Vec<&[u8]> = events.iter().map(|e| e.as_ref()).collect();
    if let Err(why) = anthropic_grammar(&events) {
        panic!("{why}");
    }
}

/// Panics unless `events` (StreamFromAnthropic's or SseFromNdjson's output) read as an OpenAI
/// chat stream a client can assemble: nothing after `[DONE]`; each tool call index first seen
/// in order 0, 1, 2, ... with an id and a function name, and never given another id; at most
/// one finish reason, with no text or tool call after it.
pub fn assert_openai_chunks(events: &[bytes::Bytes]) {
    let mut done = false;
    let mut ids: Vec<String> = Vec::new();
    let mut finished = false;
    for raw in events {
        let parsed = sse_events(&[raw.as_ref()]);
        let Some(event) = parsed.first() else {
            panic!("not an SSE event: {raw:?}");
        };
        assert!(!done, "an event after [DONE]: {raw:?}");
        if event.is_done() {
            done = true;
            continue;
        }
        let value: serde_json::Value = match serde_json::from_slice(&event.data) {
            Ok(v) => v,
            Err(e) => panic!("not JSON ({e}): {raw:?}"),
        };
        let Some(choice) = value["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        let has_text = delta["content"].as_str().is_some_and(|t| !t.is_empty());
        let calls = delta["tool_calls"].as_array().cloned().unwrap_or_default();
        assert!(
            !finished || (!has_text && calls.is_empty()),
            "content after the finish reason: {raw:?}"
        );
        for call in calls {
            let index = call["index"].as_u64().map(|i| i as usize);
            let Some(index) = index else {
                panic!("a tool call without an index: {raw:?}");
            };
            match ids.get(index) {
                Some(id) => {
                    if let Some(new) = call["id"].as_str() {
                        assert_eq!(new, id, "tool call {index} changed its id: {raw:?}");
                    }
                }
                None => {
                    assert_eq!(index, ids.len(), "tool call indexes skip: {raw:?}");
                    let id = call["id"].as_str().unwrap_or_default();
                    assert!(!id.is_empty(), "a new tool call without an id: {raw:?}");
                    assert!(
                        call["function"]["name"].is_string(),
                        "a new tool call without a name: {raw:?}"
                    );
                    ids.push(id.to_owned());
                }
            }
        }
        if !choice["finish_reason"].is_null() {
            assert!(!finished, "a second finish reason: {raw:?}");
            finished = true;
        }
    }
}
