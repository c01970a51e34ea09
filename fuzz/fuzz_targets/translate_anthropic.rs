//! The OpenAI <-> Anthropic translators of whole bodies: requests both ways, responses both ways,
//! error bodies. What they produce is valid JSON, and a request sent to Anthropic is one our own
//! Anthropic request type reads back and translates back to OpenAI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy::translate::anthropic::{
    error_from_anthropic, error_to_anthropic, request_from_anthropic, request_to_anthropic,
    response_from_anthropic, response_to_anthropic,
};
use smartproxy::wire::anthropic::MessagesRequest;
use smartproxy_fuzz::assert_json;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = 400 + u16::from(selector);
    match selector % 3 {
        0 => {
            if let Ok(out) = request_to_anthropic(body, "claude-fuzz", u32::from(selector) * 64) {
                if let Err(e) = serde_json::from_slice::<MessagesRequest>(&out) {
                    panic!(
                        "request_to_anthropic wrote a request that does not parse ({e}): {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                if let Err(e) = request_from_anthropic(&out, "gpt-fuzz") {
                    panic!(
                        "request_from_anthropic refused what request_to_anthropic wrote ({e}): {}",
                        String::from_utf8_lossy(&out)
                    );
                }
            }
            if let Ok(out) = request_from_anthropic(body, "gpt-fuzz") {
                assert_json(&out, "request_from_anthropic");
                let _ = request_to_anthropic(&out, "claude-fuzz", 1024);
            }
        }
        1 => {
            if let Ok(out) = response_from_anthropic(body, 1_700_000_000) {
                assert_json(&out.body, "response_from_anthropic");
                let _ = response_to_anthropic(&out.body, "claude-fuzz");
            }
            if let Ok(out) = response_to_anthropic(body, "claude-fuzz") {
                assert_json(&out.body, "response_to_anthropic");
                let _ = response_from_anthropic(&out.body, 0);
            }
        }
        _ => {
            assert_json(&error_from_anthropic(status, body), "error_from_anthropic");
            assert_json(&error_to_anthropic(status, body), "error_to_anthropic");
        }
    }
});
