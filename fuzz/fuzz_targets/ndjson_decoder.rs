//! The NDJSON line decoder fed the stream in fuzzer-chosen chunks: no panic, the same lines as
//! the stream fed whole and as a plain split on `\n`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy_fuzz::{Split, ndjson_lines};

fuzz_target!(|data: &[u8]| {
    let split = Split::new(data);
    let whole = ndjson_lines(&[split.stream]);
    let chunked = ndjson_lines(&split.chunks());
    assert_eq!(whole, chunked, "chunking changed the lines");
    let reference: Vec<Vec<u8>> = split
        .stream
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| {
            let mut end = line.len();
            while end > 0 && line[end - 1] == b'\r' {
                end -= 1;
            }
            line[..end].to_vec()
        })
        .collect();
    assert_eq!(whole, reference, "lines differ from a plain split");
});
