//! The OpenAI <-> Ollama translators of whole bodies: chat and generate requests to OpenAI, chat
//! requests to Ollama, responses both ways, error bodies. What they produce is valid JSON, and a
//! request sent to Ollama is one our own Ollama request type reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy::translate::ollama::{
    chat_request_to_openai, chat_response_from_openai, error_from_ollama, error_to_ollama,
    generate_request_to_openai, generate_response_from_openai, request_to_ollama,
    response_from_ollama,
};
use smartproxy::wire::ollama::ChatRequest;
use smartproxy_fuzz::assert_json;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = 400 + u16::from(selector);
    match selector % 3 {
        0 => {
            if let Ok(out) = chat_request_to_openai(body) {
                assert_json(&out.body, "chat_request_to_openai");
                let _ = request_to_ollama(&out.body, &out.model);
            }
            if let Ok(out) = generate_request_to_openai(body) {
                assert_json(&out.body, "generate_request_to_openai");
            }
            if let Ok(out) = request_to_ollama(body, "llama-fuzz") {
                if let Err(e) = serde_json::from_slice::<ChatRequest>(&out) {
                    panic!(
                        "request_to_ollama wrote a request that does not parse ({e}): {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                let _ = chat_request_to_openai(&out);
            }
        }
        1 => {
            if let Ok(out) = response_from_ollama(body, 1_700_000_000, "chatcmpl-fuzz") {
                assert_json(&out.body, "response_from_ollama");
                let _ = chat_response_from_openai(&out.body, "2025-01-01T00:00:00Z");
            }
            if let Ok(out) = chat_response_from_openai(body, "2025-01-01T00:00:00Z") {
                assert_json(&out.body, "chat_response_from_openai");
                let _ = response_from_ollama(&out.body, 0, "x");
            }
            if let Ok(out) = generate_response_from_openai(body, "2025-01-01T00:00:00Z") {
                assert_json(&out.body, "generate_response_from_openai");
            }
        }
        _ => {
            assert_json(&error_from_ollama(status, body), "error_from_ollama");
            assert_json(&error_to_ollama(status, body), "error_to_ollama");
        }
    }
});
