//! The reply rewrites (strip `<think>` blocks, unwrap a ```json fence) fed an OpenAI stream's
//! chunks: no panic, every chunk rewritten from JSON is JSON, and the whole-body rewrite and the
//! request rewrite take any bytes. (Bytes that are not JSON, e.g. with invalid UTF-8 in a string
//! the peek skips, may come out as they went in: not JSON either.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy::transform::{ChunkOut, Transforms};
use smartproxy_fuzz::{Split, assert_json, is_json, sse_events};

fuzz_target!(|data: &[u8]| {
    let split = Split::new(data);
    let flags = split.plan.first().copied().unwrap_or(3);
    let transforms = Transforms {
        strip_thinking: flags & 1 != 0,
        unwrap_json_fence: flags & 2 != 0,
        disable_thinking: flags & 4 != 0,
    };
    let mut stream = transforms.stream();
    let mut last = Vec::new();
    for event in sse_events(&split.chunks()) {
        match stream.push_chunk(&event.data) {
            ChunkOut::Rewritten(out) if is_json(&event.data) => assert_json(&out, "push_chunk"),
            ChunkOut::Rewritten(_) => {}
            ChunkOut::Unchanged | ChunkOut::Drop => {}
        }
        last = event.data.to_vec();
    }
    if let Some(out) = stream.flush(&last) {
        if is_json(&last) {
            assert_json(&out, "flush");
        }
    }
    if let Ok(text) = std::str::from_utf8(split.stream) {
        let _ = transforms.apply_to_text(text);
    }
    let valid = is_json(split.stream);
    if let Some(out) = transforms.apply_to_response(split.stream) {
        if valid {
            assert_json(&out, "apply_to_response");
        }
    }
    if let Some(out) = transforms.apply_to_request(split.stream) {
        if valid {
            assert_json(&out, "apply_to_request");
        }
    }
});
