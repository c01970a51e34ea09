//! Property tests for stream splitting: the SSE and NDJSON decoders, and the translating stream
//! state machines behind them, give the same output however the bytes are cut into chunks, and
//! the decoders agree with a plain reference parse. Hand-rolled over `rand` (already a
//! dependency) with fixed seeds, so a failure names the seed and case that reproduce it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use smartproxy::transform::{ChunkOut, Transforms};
use smartproxy::translate::anthropic::{StreamFromAnthropic, StreamToAnthropic};
use smartproxy::translate::ollama::{Endpoint, LineDecoder, NdjsonFromOpenAi, SseFromNdjson};
use smartproxy::wire::sse::{Decoder, Event};

/// Cases per property: few enough for seconds in CI; `PROP_CASES=100000` runs more on demand.
fn cases() -> u64 {
    std::env::var("PROP_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150)
}

/// Runs `check` for `cases()` seeds; a failing case reports its seed.
fn for_each_case(name: &str, check: impl Fn(&mut StdRng)) {
    for seed in 0..cases() {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_0000);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut rng)));
        if let Err(panic) = result {
            eprintln!("{name}: failed for seed {seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// `stream` cut at random places: sometimes byte by byte, sometimes in a few large pieces, with
/// empty chunks now and then.
fn random_split<'a>(rng: &mut StdRng, stream: &'a [u8]) -> Vec<&'a [u8]> {
    let max = match rng.random_range(0..4) {
        0 => 1,
        1 => 3,
        2 => 16,
        _ => stream.len().max(1),
    };
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let size = rng.random_range(0..=max.min(rest.len()));
        let (head, tail) = rest.split_at(size);
        chunks.push(head);
        rest = tail;
    }
    chunks
}

/// Text with the characters that matter to the parsers: quotes, backslashes, colons, field names,
/// tags, multi-byte characters. No line breaks unless `lines` is set.
fn text(rng: &mut StdRng, lines: bool) -> String {
    const PIECES: &[&str] = &[
        "a", "hello", " ", ":", "data:", "event:", "\"", "\\", "{", "}", "[DONE]", "é", "日本",
        "🦀", "<think>", "</think>", "```json", "\t", "id: 1", "0",
    ];
    let n = rng.random_range(0..8);
    let mut out = String::new();
    for _ in 0..n {
        if lines && rng.random_bool(0.1) {
            out.push_str(["\n", "\r\n", "\r"][rng.random_range(0..3)]);
        }
        out.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    out
}

// ---- SSE ------------------------------------------------------------------------------------

/// A random SSE stream: events of data, event, id and comment lines, with any of the three line
/// endings, stray blank lines, and now and then a cut-off tail.
fn sse_stream(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(0..8) {
        for _ in 0..rng.random_range(0..4) {
            let line = match rng.random_range(0..5) {
                0 => format!("event: {}", text(rng, false)),
                1 => format!(": {}", text(rng, false)),
                2 => format!("id: {}", rng.random_range(0..100)),
                3 => format!("data:{}", text(rng, false)),
                _ => format!("data: {}", text(rng, false)),
            };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(eol(rng));
        }
        out.extend_from_slice(eol(rng));
    }
    if rng.random_bool(0.3) {
        out.extend_from_slice(format!("data: {}", text(rng, false)).as_bytes());
    }
    out
}

fn eol(rng: &mut StdRng) -> &'static [u8] {
    [&b"\n"[..], b"\r\n", b"\r"][rng.random_range(0..3)]
}

fn decode_sse(chunks: &[&[u8]]) -> Vec<Event> {
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

/// The reference: the stream read whole, line by line (`\r\n`, `\r` or `\n` ending a line). An
/// event is everything up to a blank line that is not the event's first line; what is left at
/// the end is one more event unless it is only whitespace. Returns each event's raw bytes and
/// its `data:` lines joined with `\n`.
fn reference_sse(stream: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut data: Vec<&[u8]> = Vec::new();
    let mut lines_in_event = 0;
    let mut i = 0;
    while i < stream.len() {
        let line_start = i;
        while i < stream.len() && stream[i] != b'\n' && stream[i] != b'\r' {
            i += 1;
        }
        let line = &stream[line_start..i];
        if i == stream.len() {
            // An unterminated last line.
            break;
        }
        i += if stream[i] == b'\r' && stream.get(i + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        if line.is_empty() && lines_in_event > 0 {
            events.push((stream[start..i].to_vec(), data.join(&b'\n')));
            start = i;
            data.clear();
            lines_in_event = 0;
            continue;
        }
        lines_in_event += 1;
        if let Some(rest) = line.strip_prefix(b"data:") {
            data.push(rest.strip_prefix(b" ").unwrap_or(rest));
        }
    }
    // A stream that ends in `\r` ends an event the decoder cannot close (the `\r` might have
    // become `\r\n`): it comes out as the tail, and a whitespace-only tail does not come out.
    if stream.ends_with(b"\r") && events.last().is_some() && start == stream.len() {
        let (raw, _) = events.pop().unwrap_or_default();
        start -= raw.len();
    }
    let rest = &stream[start..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        let mut data: Vec<&[u8]> = Vec::new();
        for line in rest.split(|b| *b == b'\n' || *b == b'\r') {
            if let Some(d) = line.strip_prefix(b"data:") {
                data.push(d.strip_prefix(b" ").unwrap_or(d));
            }
        }
        events.push((rest.to_vec(), data.join(&b'\n')));
    }
    events
}

#[test]
fn sse_decoder_is_split_invariant_and_matches_the_reference() {
    for_each_case("sse", |rng| {
        let stream = sse_stream(rng);
        let whole = decode_sse(&[&stream]);
        let reference = reference_sse(&stream);
        let got: Vec<(Vec<u8>, Vec<u8>)> = whole
            .iter()
            .map(|e| (e.raw.to_vec(), e.data.to_vec()))
            .collect();
        assert_eq!(
            got,
            reference,
            "stream {:?}",
            String::from_utf8_lossy(&stream)
        );
        for _ in 0..4 {
            let chunks = random_split(rng, &stream);
            assert_eq!(decode_sse(&chunks), whole, "chunks {chunks:?}");
        }
    });
}

// ---- NDJSON ---------------------------------------------------------------------------------

fn ndjson_stream(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(0..10) {
        match rng.random_range(0..6) {
            0 => out.extend_from_slice(b" \t"),
            1 => {}
            _ => out.extend_from_slice(
                json!({"message": {"content": text(rng, true)}, "done": false})
                    .to_string()
                    .as_bytes(),
            ),
        }
        out.extend_from_slice([&b"\n"[..], b"\r\n"][rng.random_range(0..2)]);
    }
    if rng.random_bool(0.3) {
        out.extend_from_slice(json!({"done": true}).to_string().as_bytes());
    }
    out
}

fn decode_lines(chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut decoder = LineDecoder::new();
    let mut lines = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(line) = decoder.next_line() {
            lines.push(line);
        }
    }
    lines.extend(decoder.finish());
    lines
}

#[test]
fn ndjson_decoder_is_split_invariant_and_matches_the_reference() {
    for_each_case("ndjson", |rng| {
        let stream = ndjson_stream(rng);
        let whole = decode_lines(&[&stream]);
        let reference: Vec<&[u8]> = stream
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        assert_eq!(whole, reference);
        for _ in 0..4 {
            let chunks = random_split(rng, &stream);
            assert_eq!(decode_lines(&chunks), whole, "chunks {chunks:?}");
        }
    });
}

// ---- Translating stream state machines -----------------------------------------------------

fn sse_bytes(events: &[Value], named: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        if named {
            let name = event["type"].as_str().unwrap_or("unknown");
            out.extend_from_slice(format!("event: {name}\n").as_bytes());
        }
        out.extend_from_slice(format!("data: {event}\n\n").as_bytes());
    }
    out
}

/// A random OpenAI chat stream: role, text and reasoning deltas, tool calls in pieces, a finish
/// reason, a usage chunk, `[DONE]`; sometimes cut short or carrying an error.
fn openai_stream(rng: &mut StdRng) -> Vec<u8> {
    let mut chunks = vec![
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    ];
    let calls = rng.random_range(0..3);
    for _ in 0..rng.random_range(0..6) {
        let delta = if rng.random_bool(0.2) {
            json!({"reasoning_content": text(rng, true)})
        } else {
            json!({"content": text(rng, true)})
        };
        chunks.push(json!({"choices": [{"index": 0, "delta": delta}]}));
    }
    for call in 0..calls {
        chunks.push(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": call,
            "id": format!("call_{call}"), "type": "function",
            "function": {"name": format!("tool_{call}"), "arguments": ""}}]}}]}),
        );
        let args = json!({"q": text(rng, true), "n": call}).to_string();
        let mut rest = args.as_str();
        while !rest.is_empty() {
            let mut at = rng.random_range(1..=rest.len());
            while !rest.is_char_boundary(at) {
                at += 1;
            }
            let (piece, tail) = rest.split_at(at);
            chunks.push(
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": call,
                "function": {"arguments": piece}}]}}]}),
            );
            rest = tail;
        }
    }
    if rng.random_bool(0.1) {
        chunks.push(json!({"error": {"message": text(rng, false), "type": "server_error"}}));
    }
    let finish = ["stop", "length", "tool_calls", "content_filter"][rng.random_range(0..4)];
    if rng.random_bool(0.85) {
        chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}));
    }
    if rng.random_bool(0.7) {
        chunks.push(
            json!({"choices": [], "usage": {"prompt_tokens": rng.random_range(0..500),
            "completion_tokens": rng.random_range(0..500), "total_tokens": 1000}}),
        );
    }
    let mut out = sse_bytes(&chunks, false);
    if rng.random_bool(0.85) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    out
}

/// A random Anthropic Messages stream: message_start, text, thinking and tool_use blocks with
/// their deltas, pings, message_delta with usage and message_stop; sometimes cut short or ending
/// in an error event.
fn anthropic_stream(rng: &mut StdRng) -> Vec<u8> {
    let mut events = vec![json!({"type": "message_start", "message": {"id": "msg_1",
        "type": "message", "role": "assistant", "model": "claude", "content": [],
        "stop_reason": null, "usage": {"input_tokens": rng.random_range(0..100),
        "output_tokens": 1, "cache_read_input_tokens": rng.random_range(0..50)}}})];
    for index in 0..rng.random_range(0..4) {
        match rng.random_range(0..3) {
            0 => {
                events.push(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}));
                for _ in 0..rng.random_range(0..4) {
                    events.push(json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": text(rng, true)}}));
                }
            }
            1 => {
                events.push(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "thinking", "thinking": ""}}));
                events.push(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": text(rng, true)}}));
                events.push(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "signature_delta", "signature": "sig"}}));
            }
            _ => {
                events.push(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": format!("toolu_{index}"),
                    "name": "lookup", "input": {}}}));
                let args = json!({"q": text(rng, true)}).to_string();
                let (a, b) = args.split_at(args.find(':').unwrap_or(0));
                for piece in [a, b] {
                    events.push(json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece}}));
                }
            }
        }
        if rng.random_bool(0.2) {
            events.push(json!({"type": "ping"}));
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    if rng.random_bool(0.1) {
        events.push(
            json!({"type": "error", "error": {"type": "overloaded_error",
            "message": "Overloaded"}}),
        );
    }
    if rng.random_bool(0.85) {
        let stop = ["end_turn", "max_tokens", "tool_use", "stop_sequence"][rng.random_range(0..4)];
        events.push(
            json!({"type": "message_delta", "delta": {"stop_reason": stop,
            "stop_sequence": null}, "usage": {"output_tokens": rng.random_range(0..500)}}),
        );
        events.push(json!({"type": "message_stop"}));
    }
    sse_bytes(&events, true)
}

/// A random Ollama `/api/chat` NDJSON stream: text and thinking lines, a tool call line, the
/// final `done` line with counts; sometimes cut short, with an error line or a malformed line.
fn ollama_stream(rng: &mut StdRng) -> Vec<u8> {
    let base = |message: Value| {
        json!({"model": "llama", "created_at": "2025-01-01T00:00:00Z",
        "message": message, "done": false})
    };
    let mut lines = Vec::new();
    for _ in 0..rng.random_range(0..6) {
        let message = if rng.random_bool(0.2) {
            json!({"role": "assistant", "content": "", "thinking": text(rng, true)})
        } else {
            json!({"role": "assistant", "content": text(rng, true)})
        };
        lines.push(base(message).to_string());
    }
    if rng.random_bool(0.3) {
        lines.push(
            base(json!({"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "lookup", "arguments": {"q": text(rng, true)}}}]}))
            .to_string(),
        );
    }
    match rng.random_range(0..10) {
        0 => lines.push(json!({"error": text(rng, false)}).to_string()),
        1 => lines.push("{not json".to_owned()),
        _ => {}
    }
    if rng.random_bool(0.85) {
        let reason = ["stop", "length"][rng.random_range(0..2)];
        lines.push(
            json!({"model": "llama", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true,
            "done_reason": reason, "prompt_eval_count": rng.random_range(0..100),
            "eval_count": rng.random_range(0..100)})
            .to_string(),
        );
    }
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice([&b"\n"[..], b"\r\n", b"\n\n"][rng.random_range(0..3)]);
    }
    out
}

fn from_anthropic(chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut t = StreamFromAnthropic::new(true, 1_700_000_000);
    let mut out = Vec::new();
    for event in decode_sse(chunks) {
        out.extend(t.push(event.name(), &event.data));
    }
    out.extend(t.finish());
    out
}

fn to_anthropic(chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut t = StreamToAnthropic::new("claude", "msg_1");
    let mut out = Vec::new();
    for event in decode_sse(chunks) {
        out.extend(t.push(&event.data));
    }
    out.extend(t.finish());
    out
}

fn ndjson_from_openai(chunks: &[&[u8]], kind: Endpoint) -> Vec<Bytes> {
    let mut t = NdjsonFromOpenAi::new(kind, "llama", "2025-01-01T00:00:00Z".to_owned());
    let mut out = Vec::new();
    for event in decode_sse(chunks) {
        out.extend(t.push(&event.data));
    }
    out.extend(t.finish());
    out
}

fn sse_from_ndjson(chunks: &[&[u8]]) -> Vec<Bytes> {
    let mut t = SseFromNdjson::new("llama", true, 1_700_000_000, "chatcmpl-1".to_owned());
    let mut out = Vec::new();
    for line in decode_lines(chunks) {
        out.extend(t.push_line(&line));
    }
    out.extend(t.finish());
    out
}

/// Each output line is one JSON value ending in `\n`.
fn assert_json_lines(out: &[Bytes]) {
    for line in out {
        let body = line.strip_suffix(b"\n").expect("a line ends in a newline");
        assert!(!body.contains(&b'\n'), "a newline inside a line: {line:?}");
        let parsed = serde_json::from_slice::<Value>(body);
        assert!(parsed.is_ok(), "not JSON: {line:?}");
    }
}

/// Each output event holds JSON (or `[DONE]`).
fn assert_json_payloads(out: &[Bytes]) {
    for item in out {
        for event in decode_sse(&[item]) {
            if !event.is_done() {
                let parsed = serde_json::from_slice::<Value>(&event.data);
                assert!(parsed.is_ok(), "not JSON: {item:?}");
            }
        }
    }
}

fn check_split_invariant(
    name: &str,
    make: fn(&mut StdRng) -> Vec<u8>,
    translate: impl Fn(&[&[u8]]) -> Vec<Bytes>,
    well_formed: fn(&[Bytes]),
) {
    for_each_case(name, |rng| {
        let stream = make(rng);
        let whole = translate(&[&stream]);
        assert!(!whole.is_empty(), "a stream always ends in something");
        well_formed(&whole);
        for _ in 0..3 {
            let chunks = random_split(rng, &stream);
            assert_eq!(translate(&chunks), whole, "chunks {chunks:?}");
        }
    });
}

#[test]
fn anthropic_sse_to_openai_chunks_is_split_invariant() {
    check_split_invariant(
        "from_anthropic",
        anthropic_stream,
        from_anthropic,
        assert_json_payloads,
    );
}

#[test]
fn openai_chunks_to_anthropic_sse_is_split_invariant() {
    check_split_invariant(
        "to_anthropic",
        openai_stream,
        to_anthropic,
        assert_json_payloads,
    );
}

#[test]
fn openai_chunks_to_ollama_ndjson_is_split_invariant() {
    check_split_invariant(
        "ndjson_chat",
        openai_stream,
        |c| ndjson_from_openai(c, Endpoint::Chat),
        assert_json_lines,
    );
    check_split_invariant(
        "ndjson_generate",
        openai_stream,
        |c| ndjson_from_openai(c, Endpoint::Generate),
        assert_json_lines,
    );
}

#[test]
fn ollama_ndjson_to_openai_sse_is_split_invariant() {
    check_split_invariant(
        "sse_from_ndjson",
        ollama_stream,
        sse_from_ndjson,
        assert_json_payloads,
    );
}

/// What a client reads from an OpenAI stream: the text and the tool call arguments, in order,
/// up to an error.
fn openai_text(stream: &[u8]) -> (String, String) {
    let mut text = String::new();
    let mut args = String::new();
    for event in decode_sse(&[stream]) {
        let Ok(v) = serde_json::from_slice::<Value>(&event.data) else {
            continue;
        };
        if v.get("error").is_some() {
            break;
        }
        let delta = &v["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or(""));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    (text, args)
}

/// An OpenAI stream relayed as Anthropic's and read back keeps its text and tool arguments,
/// whatever the chunking of either leg.
#[test]
fn openai_stream_through_anthropic_and_back_keeps_text_and_arguments() {
    for_each_case("openai_anthropic_openai", |rng| {
        let stream = openai_stream(rng);
        let anthropic = to_anthropic(&random_split(rng, &stream)).concat();
        let back = from_anthropic(&random_split(rng, &anthropic)).concat();
        assert_eq!(openai_text(&stream), openai_text(&back));
    });
}

/// The text and tool arguments an Anthropic stream carries, up to an error event.
fn anthropic_text(stream: &[u8]) -> (String, String) {
    let mut text = String::new();
    let mut args = String::new();
    for event in decode_sse(&[stream]) {
        let Ok(v) = serde_json::from_slice::<Value>(&event.data) else {
            continue;
        };
        if v["type"] == "error" {
            break;
        }
        let delta = &v["delta"];
        match delta["type"].as_str() {
            Some("text_delta") => text.push_str(delta["text"].as_str().unwrap_or("")),
            Some("input_json_delta") => {
                args.push_str(delta["partial_json"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }
    (text, args)
}

/// The text and tool arguments (as JSON text) an Ollama NDJSON stream carries, up to an error.
fn ollama_text(stream: &[u8]) -> (String, String) {
    let mut text = String::new();
    let mut args = String::new();
    for line in decode_lines(&[stream]) {
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            break;
        };
        if v.get("error").is_some() {
            break;
        }
        text.push_str(v["message"]["content"].as_str().unwrap_or(""));
        text.push_str(v["response"].as_str().unwrap_or(""));
        for call in v["message"]["tool_calls"].as_array().into_iter().flatten() {
            args.push_str(&call["function"]["arguments"].to_string());
        }
    }
    (text, args)
}

/// The text and tool call arguments of every translating stream reach the client whole, however
/// the stream was cut: Anthropic's into OpenAI chunks, OpenAI's into Anthropic events and into
/// Ollama lines, Ollama's into OpenAI chunks.
#[test]
fn translated_streams_keep_text_and_tool_arguments() {
    for_each_case("text_from_anthropic", |rng| {
        let stream = anthropic_stream(rng);
        let openai = from_anthropic(&random_split(rng, &stream)).concat();
        assert_eq!(openai_text(&openai), anthropic_text(&stream));
    });
    for_each_case("text_to_anthropic", |rng| {
        let stream = openai_stream(rng);
        let anthropic = to_anthropic(&random_split(rng, &stream)).concat();
        assert_eq!(anthropic_text(&anthropic), openai_text(&stream));
    });
    for_each_case("text_to_ollama", |rng| {
        let stream = openai_stream(rng);
        let ndjson = ndjson_from_openai(&random_split(rng, &stream), Endpoint::Chat).concat();
        let (text, args) = openai_text(&stream);
        let (got_text, got_args) = ollama_text(&ndjson);
        assert_eq!(got_text, text);
        // Ollama sends each call's arguments as one object.
        let objects = |s: &str| -> Vec<Value> {
            serde_json::Deserializer::from_str(s)
                .into_iter::<Value>()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // Ollama sends tool calls whole when the choice finishes: an error before that leaves
        // them out, on purpose.
        let errored = has_error(&stream);
        if !errored {
            assert_eq!(
                objects(&got_args),
                objects(&args),
                "stream {}",
                String::from_utf8_lossy(&stream)
            );
        }
    });
    for_each_case("text_from_ollama", |rng| {
        let stream = ollama_stream(rng);
        let openai = sse_from_ndjson(&random_split(rng, &stream)).concat();
        let (text, args) = ollama_text(&stream);
        let (got_text, got_args) = openai_text(&openai);
        assert_eq!(got_text, text);
        let args: Vec<Value> = serde_json::Deserializer::from_str(&args)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap();
        let got: Vec<Value> = serde_json::Deserializer::from_str(&got_args)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, args);
    });
}

fn has_error(stream: &[u8]) -> bool {
    stream.windows(8).any(|w| w == b"\"error\":")
}

// ---- Reply transforms on streams ------------------------------------------------------------

/// A reply with reasoning blocks, partial tags and fences.
fn reply_text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "<think>",
        "</think>",
        "<th",
        "ink>",
        "</",
        "<",
        ">",
        "```json\n",
        "```",
        "\n",
        "  ",
        "{\"a\":1}",
        "[1]",
        "hello",
        "é",
        "日本",
        "json",
        "\n```",
    ];
    (0..rng.random_range(0..10))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// `text` cut at random char boundaries.
fn random_deltas<'a>(rng: &mut StdRng, text: &'a str) -> Vec<&'a str> {
    let mut deltas = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut at = rng.random_range(0..=rest.len().min(6));
        while !rest.is_char_boundary(at) {
            at += 1;
        }
        let (head, tail) = rest.split_at(at);
        deltas.push(head);
        rest = tail;
    }
    deltas
}

/// The text a client gets from a stream of `deltas` through `transforms`, the finishing chunk's
/// and a final flush included.
fn transformed(transforms: Transforms, deltas: &[&str]) -> String {
    let mut stream = transforms.stream();
    let mut chunks: Vec<Value> = deltas
        .iter()
        .map(|d| json!({"id": "c", "choices": [{"index": 0, "delta": {"content": d}}]}))
        .collect();
    chunks
        .push(json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
    let mut text = String::new();
    for chunk in &chunks {
        let bytes = serde_json::to_vec(chunk).unwrap();
        let out = match stream.push_chunk(&bytes) {
            ChunkOut::Unchanged => chunk.clone(),
            ChunkOut::Rewritten(out) => serde_json::from_slice(&out).unwrap(),
            ChunkOut::Drop => continue,
        };
        text.push_str(out["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(
        stream.flush(b"{}"),
        None,
        "text held after the finish reason"
    );
    text
}

/// Stripping `<think>` blocks from a stream, cut anywhere, gives what stripping the whole reply
/// gives; with the fence unwrapped too the output does not depend on the cuts.
#[test]
fn reply_transforms_on_streams_are_split_invariant() {
    let think = Transforms {
        strip_thinking: true,
        ..Transforms::default()
    };
    let all = Transforms {
        strip_thinking: true,
        unwrap_json_fence: true,
        ..Transforms::default()
    };
    let fence = Transforms {
        unwrap_json_fence: true,
        ..Transforms::default()
    };
    for_each_case("transforms", |rng| {
        let text = reply_text(rng);
        let whole = think.apply_to_text(&text).unwrap_or_else(|| text.clone());
        for _ in 0..3 {
            let deltas = random_deltas(rng, &text);
            assert_eq!(transformed(think, &deltas), whole, "deltas {deltas:?}");
            for transforms in [all, fence] {
                assert_eq!(
                    transformed(transforms, &deltas),
                    transformed(transforms, &[&text]),
                    "{transforms:?} deltas {deltas:?}"
                );
            }
        }
    });
}
