//! The OpenAI <-> Anthropic stream state machines fed SSE bytes in fuzzer-chosen chunks: no
//! panic, every event they write is a well-formed SSE event holding JSON, and their output does
//! not depend on how the input was cut; the Anthropic events follow Anthropic's stream grammar.
//! Then the output of each is fed to the other.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use smartproxy::translate::anthropic::{StreamFromAnthropic, StreamToAnthropic};
use smartproxy::wire::sse::Event;
use smartproxy_fuzz::{
    Split, anthropic_grammar, assert_anthropic_grammar, assert_openai_chunks, assert_sse_out,
    sse_events,
};

fn from_anthropic(events: &[Event], include_usage: bool) -> Vec<Bytes> {
    let mut from = StreamFromAnthropic::new(include_usage, 1_700_000_000);
    let mut out = Vec::new();
    for event in events {
        out.extend(from.push(event.name(), &event.data));
    }
    out.extend(from.finish());
    out.extend(from.finish());
    let _ = from.usage();
    out
}

fn to_anthropic(events: &[Event]) -> Vec<Bytes> {
    let mut to = StreamToAnthropic::new("claude-fuzz", "msg_fuzz");
    let mut out = Vec::new();
    for event in events {
        out.extend(to.push(&event.data));
    }
    out.extend(to.finish());
    out.extend(to.finish());
    let _ = to.usage();
    out
}

fuzz_target!(|data: &[u8]| {
    let split = Split::new(data);
    let include_usage = split.plan.first().is_some_and(|b| b & 1 == 1);
    let events = sse_events(&split.chunks());
    let whole = sse_events(&[split.stream]);

    let openai = from_anthropic(&events, include_usage);
    assert_sse_out(&openai, "StreamFromAnthropic");
    // A provider stream that keeps Anthropic's grammar gives a stream an OpenAI client can
    // assemble (a broken one, e.g. two message_delta events, is relayed as it is).
    let raw: Vec<&[u8]> = events.iter().map(|e| e.raw.as_ref()).collect();
    if anthropic_grammar(&raw).is_ok() {
        assert_openai_chunks(&openai);
    }
    assert_eq!(
        openai,
        from_anthropic(&whole, include_usage),
        "chunking changed the output"
    );

    let anthropic = to_anthropic(&events);
    assert_sse_out(&anthropic, "StreamToAnthropic");
    assert_anthropic_grammar(&anthropic);
    assert_eq!(
        anthropic,
        to_anthropic(&whole),
        "chunking changed the output"
    );

    // Each one's output is the other's input.
    let back = from_anthropic(&sse_events(&[&anthropic.concat()]), include_usage);
    assert_sse_out(&back, "StreamFromAnthropic after StreamToAnthropic");
    assert_openai_chunks(&back);
    let forth = to_anthropic(&sse_events(&[&openai.concat()]));
    assert_sse_out(&forth, "StreamToAnthropic after StreamFromAnthropic");
    assert_anthropic_grammar(&forth);
});
