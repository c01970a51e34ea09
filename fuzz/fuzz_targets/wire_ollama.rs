//! The Ollama wire types on client and provider bytes: chat, generate and show requests, chat
//! and generate responses, error bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartproxy::wire::ollama::{
    ChatRequest, ChatResponse, ErrorBody, GenerateRequest, GenerateResponse, ShowRequest,
    TagsResponse,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ChatRequest>(data) {
        let _ = request.is_stream();
        if let Some(options) = &request.options {
            let _ = options.is_empty();
        }
        let _ = serde_json::to_vec(&request);
    }
    if let Ok(request) = serde_json::from_slice::<GenerateRequest>(data) {
        let _ = request.is_stream();
        let _ = serde_json::to_vec(&request);
    }
    if let Ok(request) = serde_json::from_slice::<ShowRequest>(data) {
        let _ = request.model_name();
    }
    if let Ok(response) = serde_json::from_slice::<ChatResponse>(data) {
        let _ = serde_json::to_vec(&response);
    }
    if let Ok(response) = serde_json::from_slice::<GenerateResponse>(data) {
        let _ = serde_json::to_vec(&response);
    }
    let _ = serde_json::from_slice::<TagsResponse>(data);
    let _ = serde_json::from_slice::<ErrorBody>(data);
});
