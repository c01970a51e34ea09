//! The mock upstream's other wire formats: Anthropic Messages (`/v1/messages`), Ollama's native
//! chat (`/api/chat`, NDJSON streams) and legacy completions (`/v1/completions`), each with the
//! same reply text and token counts as the OpenAI replies.

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};

use super::upstream::{Body, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY_WORDS, full};

fn respond(content_type: &str, status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(Bytes::from(body)))
        .unwrap()
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A Messages reply; streamed as Anthropic's named events when the request asks. `cache` is the
/// prompt cache's (read, written) tokens, which Anthropic counts apart from `input_tokens`.
pub fn anthropic_reply(model: &str, request: &Value, cache: (u64, u64)) -> Response<Body> {
    let (read, written) = cache;
    let usage = json!({"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
        "cache_read_input_tokens": read, "cache_creation_input_tokens": written});
    if !request["stream"].as_bool().unwrap_or(false) {
        let body = json!({
            "id": "msg_upstream", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": REPLY_WORDS.concat()}],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": usage,
        });
        return respond("application/json", 200, body.to_string());
    }
    let mut out = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_upstream", "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": PROMPT_TOKENS, "output_tokens": 1,
                "cache_read_input_tokens": read, "cache_creation_input_tokens": written}}}),
    );
    out += &event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    out += &event("ping", json!({"type": "ping"}));
    for word in REPLY_WORDS {
        out += &event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}),
        );
    }
    out += &event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    out += &event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": COMPLETION_TOKENS}}),
    );
    out += &event("message_stop", json!({"type": "message_stop"}));
    respond("text/event-stream", 200, out)
}

pub fn anthropic_error(status: u16) -> Response<Body> {
    let kind = match status {
        529 => "overloaded_error",
        429 => "rate_limit_error",
        401 => "authentication_error",
        _ => "invalid_request_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": format!("mock upstream says {status}")}});
    respond("application/json", status, body.to_string())
}

/// An Ollama chat reply; streamed as NDJSON lines unless the request says `stream: false`
/// (Ollama streams by default).
pub fn ollama_reply(model: &str, request: &Value) -> Response<Body> {
    let created = "2026-11-22T00:00:00Z";
    let done = json!({
        "model": model, "created_at": created, "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": "stop", "total_duration": 1000, "prompt_eval_count": PROMPT_TOKENS,
        "eval_count": COMPLETION_TOKENS,
    });
    if request["stream"].as_bool() == Some(false) {
        let mut whole = done;
        whole["message"]["content"] = json!(REPLY_WORDS.concat());
        return respond("application/json", 200, whole.to_string());
    }
    let mut out = String::new();
    for word in REPLY_WORDS {
        out += &json!({"model": model, "created_at": created, "message": {"role": "assistant", "content": word}, "done": false})
            .to_string();
        out.push('\n');
    }
    out += &done.to_string();
    out.push('\n');
    respond("application/x-ndjson", 200, out)
}

pub fn ollama_error(status: u16) -> Response<Body> {
    respond(
        "application/json",
        status,
        json!({"error": format!("mock upstream says {status}")}).to_string(),
    )
}

/// A legacy completions reply, streamed as OpenAI events when asked.
/// Cached input and reasoning tokens the upstream reports for every Responses API request.
pub const RESPONSES_CACHED_TOKENS: u64 = 5;
pub const RESPONSES_REASONING_TOKENS: u64 = 3;

/// A Responses API reply (`POST /v1/responses`): whole, or streamed as its typed events ending
/// with `response.completed` and the usage.
pub fn responses_reply(model: &str, request: &Value) -> Response<Body> {
    let text = REPLY_WORDS.concat();
    let message = |text: &str, status: &str| {
        json!({"type": "message", "id": "msg_upstream", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]})
    };
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_upstream", "object": "response", "created_at": 1_700_000_000,
            "status": status, "model": model, "output": output, "usage": usage,
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
            "error": null, "incomplete_details": null, "instructions": request["instructions"]})
    };
    let usage = json!({"input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": RESPONSES_CACHED_TOKENS},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": RESPONSES_REASONING_TOKENS},
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    let done = response("completed", json!([message(&text, "completed")]), usage);
    if !request["stream"].as_bool().unwrap_or(false) {
        return respond("application/json", 200, done.to_string());
    }
    let mut n = 0;
    let mut out = String::new();
    let mut emit = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(n);
        n += 1;
        out += &event(name, data);
    };
    emit(
        "response.created",
        json!({"response": response("in_progress", json!([]), Value::Null)}),
    );
    emit(
        "response.output_item.added",
        json!({"output_index": 0, "item": message("", "in_progress")}),
    );
    for word in REPLY_WORDS {
        emit(
            "response.output_text.delta",
            json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0, "delta": word}),
        );
    }
    emit(
        "response.output_text.done",
        json!({"item_id": "msg_upstream", "output_index": 0, "content_index": 0, "text": text}),
    );
    emit(
        "response.output_item.done",
        json!({"output_index": 0, "item": message(&text, "completed")}),
    );
    emit("response.completed", json!({"response": done}));
    respond("text/event-stream", 200, out)
}

/// Input tokens the upstream reports for every embeddings request.
pub const EMBEDDING_TOKENS: u64 = 12;

/// An OpenAI embeddings reply: one 3-number vector per input, as `float` or `base64`.
pub fn embeddings_reply(model: &str, request: &Value) -> Response<Body> {
    let count = request["input"].as_array().map_or(1, Vec::len);
    let data: Vec<Value> = (0..count)
        .map(|i| {
            let embedding = if request["encoding_format"] == "base64" {
                // Three little-endian f32s: 0.25, 0.5, 0.75.
                json!("AACAPgAAAD8AAEA/")
            } else {
                json!([0.25, 0.5, 0.75])
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS}});
    respond("application/json", 200, body.to_string())
}

pub fn completions_reply(model: &str, request: &Value) -> Response<Body> {
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    if !request["stream"].as_bool().unwrap_or(false) {
        let body = json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1_700_000_000, "model": model,
            "choices": [{"text": REPLY_WORDS.concat(), "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage});
        return respond("application/json", 200, body.to_string());
    }
    let mut out = String::new();
    for word in REPLY_WORDS {
        let chunk = json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1_700_000_000, "model": model,
            "choices": [{"text": word, "index": 0, "logprobs": null, "finish_reason": null}]});
        out += &format!("data: {chunk}\n\n");
    }
    if request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false)
    {
        let chunk = json!({"id": "cmpl-upstream", "object": "text_completion", "created": 1_700_000_000, "model": model,
            "choices": [], "usage": usage});
        out += &format!("data: {chunk}\n\n");
    }
    out += "data: [DONE]\n\n";
    respond("text/event-stream", 200, out)
}
