//! The OpenAI <-> Ollama stream state machines fed bytes in fuzzer-chosen chunks: Ollama NDJSON
//! through the line decoder into `SseFromNdjson`, OpenAI SSE through the SSE decoder into
//! `NdjsonFromOpenAi` (chat and generate). No panic, well-formed output whatever the input, the
//! same output however the input was cut, and each one's output is the other's input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use smartproxy::translate::ollama::{Endpoint, NdjsonFromOpenAi, SseFromNdjson};
use smartproxy_fuzz::{
    Split, assert_ndjson_out, assert_openai_chunks, assert_sse_out, ndjson_lines, sse_events,
};

fn sse_from_ndjson(lines: &[Vec<u8>], include_usage: bool) -> Vec<Bytes> {
    let mut to = SseFromNdjson::new(
        "llama-fuzz",
        include_usage,
        1_700_000_000,
        "chatcmpl-f".into(),
    );
    let mut out = Vec::new();
    for line in lines {
        out.extend(to.push_line(line));
    }
    out.extend(to.finish());
    out.extend(to.finish());
    let _ = (to.usage(), to.is_complete());
    out
}

fn ndjson_from_sse(payloads: &[Bytes], kind: Endpoint) -> Vec<Bytes> {
    let mut to = NdjsonFromOpenAi::new(kind, "llama-fuzz", "2025-01-01T00:00:00Z".into());
    let mut out = Vec::new();
    for payload in payloads {
        out.extend(to.push(payload));
    }
    out.extend(to.finish());
    out.extend(to.finish());
    let _ = (to.usage(), to.is_complete());
    out
}

fuzz_target!(|data: &[u8]| {
    let split = Split::new(data);
    let flag = split.plan.first().is_some_and(|b| b & 1 == 1);
    let chunks = split.chunks();

    let lines = ndjson_lines(&chunks);
    let sse = sse_from_ndjson(&lines, flag);
    assert_sse_out(&sse, "SseFromNdjson");
    assert_openai_chunks(&sse);
    assert_eq!(
        sse,
        sse_from_ndjson(&ndjson_lines(&[split.stream]), flag),
        "chunking changed the output"
    );

    let payloads: Vec<Bytes> = sse_events(&chunks).into_iter().map(|e| e.data).collect();
    let whole: Vec<Bytes> = sse_events(&[split.stream])
        .into_iter()
        .map(|e| e.data)
        .collect();
    for kind in [Endpoint::Chat, Endpoint::Generate] {
        let ndjson = ndjson_from_sse(&payloads, kind);
        assert_ndjson_out(&ndjson, "NdjsonFromOpenAi");
        assert_eq!(
            ndjson,
            ndjson_from_sse(&whole, kind),
            "chunking changed the output"
        );
        if kind == Endpoint::Chat {
            let back = sse_from_ndjson(&ndjson_lines(&[&ndjson.concat()]), flag);
            assert_sse_out(&back, "SseFromNdjson after NdjsonFromOpenAi");
            assert_openai_chunks(&back);
        }
    }
    let again: Vec<Bytes> = sse_events(&[&sse.concat()])
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_ndjson_out(
        &ndjson_from_sse(&again, Endpoint::Chat),
        "NdjsonFromOpenAi after SseFromNdjson",
    );
});
