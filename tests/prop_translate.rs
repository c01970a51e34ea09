//! Property tests for translation round trips: an OpenAI request or response sent through
//! Anthropic's or Ollama's format and back keeps what the formats share (message text and
//! roles, tools, tool calls, stop, max_tokens, temperature; reply text, tool calls, finish
//! reason, token counts). Hand-rolled over `rand` (already a dependency) with fixed seeds, so a
//! failure names the seed that reproduces it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use smartproxy::translate::{anthropic, ollama};

/// Cases per property: few enough for seconds in CI; `PROP_CASES=100000` runs more on demand.
fn cases() -> u64 {
    std::env::var("PROP_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

fn for_each_case(name: &str, check: impl Fn(&mut StdRng)) {
    for seed in 0..cases() {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7a11_0000);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut rng)));
        if let Err(panic) = result {
            eprintln!("{name}: failed for seed {seed}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// Non-empty text with quotes, escapes, line breaks, tags and multi-byte characters.
fn text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "hello", " ", "world", "\"", "\\", "\n", "é", "日本", "🦀", "<think>", "{", "}", ":",
        "data: x", "\t", "42",
    ];
    let mut out = String::from(PIECES[rng.random_range(0..3)]);
    for _ in 0..rng.random_range(0..8) {
        out.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    out
}

/// Message content: a string, or an array of one text part (whose text is the same to all
/// three formats).
fn content(rng: &mut StdRng) -> Value {
    if rng.random_bool(0.7) {
        json!(text(rng))
    } else {
        json!([{"type": "text", "text": text(rng)}])
    }
}

fn arguments(rng: &mut StdRng) -> Value {
    let mut args = Map::new();
    for i in 0..rng.random_range(0..3) {
        let value = match rng.random_range(0..4) {
            0 => json!(text(rng)),
            1 => json!(rng.random_range(-100..100)),
            2 => json!(rng.random_bool(0.5)),
            _ => json!([text(rng), {"k": i}]),
        };
        args.insert(format!("arg{i}"), value);
    }
    Value::Object(args)
}

fn tool(i: usize, rng: &mut StdRng) -> Value {
    json!({"type": "function", "function": {
        "name": format!("tool_{i}"),
        "description": text(rng),
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
            "required": ["q"]},
    }})
}

/// A random OpenAI chat request of the kind all three formats can carry: an optional system
/// message, then user turns and assistant turns (text, tool calls or both), each tool call
/// answered by a tool message, ending with a user turn.
fn openai_request(rng: &mut StdRng) -> Value {
    let tools: Vec<Value> = (0..rng.random_range(0..3)).map(|i| tool(i, rng)).collect();
    let mut messages = Vec::new();
    if rng.random_bool(0.5) {
        messages.push(json!({"role": "system", "content": content(rng)}));
    }
    let mut call_id = 0;
    for _ in 0..rng.random_range(0..3) {
        messages.push(json!({"role": "user", "content": content(rng)}));
        let calls: Vec<Value> = if tools.is_empty() {
            Vec::new()
        } else {
            (0..rng.random_range(0..3))
                .map(|_| {
                    call_id += 1;
                    json!({"id": format!("call_{call_id}"), "type": "function", "function": {
                        "name": format!("tool_{}", rng.random_range(0..tools.len())),
                        "arguments": arguments(rng).to_string(),
                    }})
                })
                .collect()
        };
        if calls.is_empty() {
            messages.push(json!({"role": "assistant", "content": text(rng)}));
        } else {
            let content = if rng.random_bool(0.5) {
                json!(text(rng))
            } else {
                Value::Null
            };
            messages.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
            for call in &calls {
                messages.push(json!({"role": "tool", "tool_call_id": call["id"],
                    "content": text(rng)}));
            }
        }
    }
    messages.push(json!({"role": "user", "content": content(rng)}));
    let mut request = json!({"model": "gpt", "messages": messages});
    if !tools.is_empty() {
        request["tools"] = Value::Array(tools);
    }
    match rng.random_range(0..3) {
        0 => request["max_tokens"] = json!(rng.random_range(1..8192)),
        1 => request["max_completion_tokens"] = json!(rng.random_range(1..8192)),
        _ => {}
    }
    if rng.random_bool(0.5) {
        // Anthropic's range, so nothing is clamped; a multiple of 1/8 prints exactly.
        request["temperature"] = json!(f64::from(rng.random_range(0..=8)) / 8.0);
    }
    match rng.random_range(0..3) {
        0 => {
            let stops: Vec<String> = (0..rng.random_range(1..4)).map(|_| text(rng)).collect();
            request["stop"] = json!(stops);
        }
        1 => request["stop"] = json!(text(rng)),
        _ => {}
    }
    request
}

/// A message's text: a string, or the text parts of an array, joined.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// What OpenAI, Anthropic and Ollama requests share, in one comparable shape. Tool call ids are
/// left out when `ids` is false (Ollama has none); arguments are compared as JSON values.
fn shared_request(request: &Value, ids: bool) -> Value {
    let messages: Vec<Value> = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let calls: Vec<Value> = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let args: Value =
                        serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                    json!({"id": if ids { c["id"].clone() } else { Value::Null },
                        "name": c["function"]["name"], "arguments": args})
                })
                .collect();
            json!({
                "role": m["role"],
                "text": content_text(&m["content"]),
                "tool_calls": calls,
                "tool_call_id": if ids { m["tool_call_id"].clone() } else { Value::Null },
            })
        })
        .collect();
    let tools: Vec<Value> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            json!({"name": t["function"]["name"], "description": t["function"]["description"],
                "parameters": t["function"]["parameters"]})
        })
        .collect();
    let stop = match &request["stop"] {
        Value::String(s) => json!([s]),
        other => other.clone(),
    };
    json!({
        "messages": messages,
        "tools": tools,
        "stop": stop,
        "max_tokens": request.get("max_completion_tokens").or(request.get("max_tokens")),
        "temperature": request["temperature"],
    })
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn openai_request_through_anthropic_and_back_keeps_what_both_share() {
    for_each_case("request_anthropic", |rng| {
        let request = openai_request(rng);
        let body = serde_json::to_vec(&request).unwrap();
        let to = anthropic::request_to_anthropic(&body, "claude", 4096).unwrap();
        let back = parse(&anthropic::request_from_anthropic(&to, "gpt").unwrap());
        let mut expected = shared_request(&request, true);
        if request.get("max_tokens").is_none() && request.get("max_completion_tokens").is_none() {
            // Anthropic requires a cap: the default one comes back.
            expected["max_tokens"] = json!(4096);
        }
        assert_eq!(shared_request(&back, true), expected, "request {request}");
    });
}

#[test]
fn openai_request_through_ollama_and_back_keeps_what_both_share() {
    for_each_case("request_ollama", |rng| {
        let request = openai_request(rng);
        let body = serde_json::to_vec(&request).unwrap();
        let to = ollama::request_to_ollama(&body, "llama").unwrap();
        let back = ollama::chat_request_to_openai(&to).unwrap();
        assert_eq!(back.model, "llama");
        let back = parse(&back.body);
        assert_eq!(
            shared_request(&back, false),
            shared_request(&request, false),
            "request {request}\nollama {}",
            String::from_utf8_lossy(&to)
        );
    });
}

/// A random OpenAI chat completion: text, tool calls or both, a finish reason, usage.
fn openai_response(rng: &mut StdRng) -> Value {
    let calls: Vec<Value> = (0..rng.random_range(0..3))
        .map(|i| {
            json!({"id": format!("call_{i}"), "type": "function", "function": {
                "name": format!("tool_{i}"), "arguments": arguments(rng).to_string()}})
        })
        .collect();
    let finish = if calls.is_empty() {
        ["stop", "length"][rng.random_range(0..2)]
    } else {
        "tool_calls"
    };
    let mut message = json!({"role": "assistant", "content": text(rng)});
    if !calls.is_empty() {
        if rng.random_bool(0.5) {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    let prompt = rng.random_range(0..10_000);
    let completion = rng.random_range(0..10_000);
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000,
        "model": "gpt", "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}})
}

fn shared_response(response: &Value, ids: bool) -> Value {
    let choice = &response["choices"][0];
    let calls: Vec<Value> = choice["message"]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let args: Value =
                serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
            json!({"id": if ids { c["id"].clone() } else { Value::Null },
                "name": c["function"]["name"], "arguments": args})
        })
        .collect();
    json!({
        "text": content_text(&choice["message"]["content"]),
        "tool_calls": calls,
        "finish_reason": choice["finish_reason"],
        "prompt_tokens": response["usage"]["prompt_tokens"],
        "completion_tokens": response["usage"]["completion_tokens"],
    })
}

#[test]
fn openai_response_through_anthropic_and_back_keeps_what_both_share() {
    for_each_case("response_anthropic", |rng| {
        let response = openai_response(rng);
        let body = serde_json::to_vec(&response).unwrap();
        let to = anthropic::response_to_anthropic(&body, "claude").unwrap();
        let back = anthropic::response_from_anthropic(&to.body, 1_700_000_000).unwrap();
        assert_eq!(back.usage, to.usage);
        assert_eq!(
            shared_response(&parse(&back.body), true),
            shared_response(&response, true),
            "response {response}"
        );
    });
}

#[test]
fn openai_response_through_ollama_and_back_keeps_what_both_share() {
    for_each_case("response_ollama", |rng| {
        let response = openai_response(rng);
        let body = serde_json::to_vec(&response).unwrap();
        let to = ollama::chat_response_from_openai(&body, "2025-01-01T00:00:00Z").unwrap();
        let back = ollama::response_from_ollama(&to.body, 1_700_000_000, "chatcmpl-1").unwrap();
        assert_eq!(back.usage, to.usage);
        assert_eq!(
            shared_response(&parse(&back.body), false),
            shared_response(&response, false),
            "response {response}\nollama {}",
            String::from_utf8_lossy(&to.body)
        );
    });
}
