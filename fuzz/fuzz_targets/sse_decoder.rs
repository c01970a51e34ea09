//! The SSE decoder fed the stream in fuzzer-chosen chunks: no panic, the same events as the
//! stream fed whole, and the events' raw bytes put together give back the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy_fuzz::{Split, sse_events};

fuzz_target!(|data: &[u8]| {
    let split = Split::new(data);
    let whole = sse_events(&[split.stream]);
    let chunked = sse_events(&split.chunks());
    assert_eq!(whole, chunked, "chunking changed the events");
    let mut joined = Vec::new();
    for event in &whole {
        joined.extend_from_slice(&event.raw);
        let _ = event.name();
        let _ = event.is_done();
    }
    // Only a whitespace-only tail may be dropped.
    assert!(split.stream.starts_with(&joined), "raw bytes changed");
    assert!(
        split.stream[joined.len()..]
            .iter()
            .all(u8::is_ascii_whitespace),
        "bytes lost"
    );
});
