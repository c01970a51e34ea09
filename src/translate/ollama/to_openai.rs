//! Ollama client requests (`/api/chat`, `/api/generate`) rewritten as OpenAI chat requests for an
//! OpenAI-compatible provider.

use serde_json::{Map, Value, json};

use super::{Probe, TranslateError, check_model, parse_typed, probe, probe_items, probe_keys};
use crate::wire::ollama::{ChatRequest, Format, GenerateRequest, Message, Options, Think};

/// An OpenAI chat request ready to send, and what the caller needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiRequest {
    /// OpenAI chat JSON. A streaming request asks for `stream_options.include_usage`, so the
    /// final Ollama line can carry token counts.
    pub body: Vec<u8>,
    pub model: String,
    /// Ollama's default: true unless the client sent `"stream": false`.
    pub stream: bool,
    /// Fields the client sent that have no OpenAI equivalent and were dropped, as paths
    /// (`keep_alive`, `options.num_ctx`), for a debug log.
    pub ignored: Vec<String>,
}

const MESSAGE_ROLES: &str = "system, user, assistant or tool";

/// Translates an Ollama `/api/chat` request into an OpenAI chat request.
pub fn chat_request_to_openai(ollama_body: &[u8]) -> Result<OpenAiRequest, TranslateError> {
    let probes: &[(&str, Probe)] = &[
        ("model", probe::<String>),
        ("messages", probe_messages),
        ("tools", probe::<Vec<Value>>),
        ("format", probe_format),
        ("options", probe_keys::<Options>),
        ("stream", probe::<Option<bool>>),
        ("think", probe_think),
    ];
    let req: ChatRequest = parse_typed(ollama_body, "Ollama chat request", &["model"], probes)?;
    check_model(&req.model)?;
    if req.messages.is_empty() {
        return Err(TranslateError::at(
            "messages",
            "must not be empty (loading a model without a prompt is not supported through the proxy)",
        ));
    }
    let mut ignored = Vec::new();
    let mut out = Map::new();
    out.insert("model".into(), json!(req.model));
    let list = messages(&req.messages, &mut ignored)?;
    out.insert("messages".into(), Value::Array(list));
    if !req.tools.is_empty() {
        out.insert("tools".into(), Value::Array(req.tools.clone()));
    }
    let common = Common {
        format: req.format.as_ref(),
        options: req.options.as_ref(),
        think: req.think.as_ref(),
        keep_alive: req.keep_alive.is_some(),
        extra: &req.extra,
        stream: req.is_stream(),
    };
    common.apply(&mut out, &mut ignored)?;
    let stream = req.is_stream();
    Ok(finish(out, req.model, stream, ignored))
}

/// Translates an Ollama `/api/generate` request into an OpenAI chat request: `system` becomes a
/// system message, `prompt` and `images` the user message.
pub fn generate_request_to_openai(ollama_body: &[u8]) -> Result<OpenAiRequest, TranslateError> {
    let probes: &[(&str, Probe)] = &[
        ("model", probe::<String>),
        ("prompt", probe::<String>),
        ("suffix", probe::<Option<String>>),
        ("system", probe::<Option<String>>),
        ("template", probe::<Option<String>>),
        ("images", probe_items::<String>),
        ("format", probe_format),
        ("options", probe_keys::<Options>),
        ("stream", probe::<Option<bool>>),
        ("raw", probe::<Option<bool>>),
        ("context", probe_items::<i64>),
        ("think", probe_think),
    ];
    let req: GenerateRequest =
        parse_typed(ollama_body, "Ollama generate request", &["model"], probes)?;
    check_model(&req.model)?;
    if req.prompt.is_empty() && req.images.is_empty() {
        return Err(TranslateError::at(
            "prompt",
            "must not be empty (loading a model without a prompt is not supported through the proxy)",
        ));
    }
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(TranslateError::unsupported(
            "suffix",
            "fill-in-the-middle has no equivalent in OpenAI chat completions; send the text as `prompt` only",
        ));
    }
    let mut ignored = Vec::new();
    if req.template.as_deref().is_some_and(|t| !t.is_empty()) {
        ignored.push("template".to_owned());
    }
    if req.raw == Some(true) {
        ignored.push("raw".to_owned());
    }
    if !req.context.is_empty() {
        ignored.push("context".to_owned());
    }
    let mut list = Vec::new();
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        list.push(json!({"role": "system", "content": system}));
    }
    list.push(user_message(&req.prompt, &req.images));
    let mut out = Map::new();
    out.insert("model".into(), json!(req.model));
    out.insert("messages".into(), Value::Array(list));
    let common = Common {
        format: req.format.as_ref(),
        options: req.options.as_ref(),
        think: req.think.as_ref(),
        keep_alive: req.keep_alive.is_some(),
        extra: &req.extra,
        stream: req.is_stream(),
    };
    common.apply(&mut out, &mut ignored)?;
    let stream = req.is_stream();
    Ok(finish(out, req.model, stream, ignored))
}

fn finish(
    out: Map<String, Value>,
    model: String,
    stream: bool,
    ignored: Vec<String>,
) -> OpenAiRequest {
    OpenAiRequest {
        body: Value::Object(out).to_string().into_bytes(),
        model,
        stream,
        ignored,
    }
}

/// A tool call of an earlier assistant message that no tool result has answered yet.
struct Waiting {
    id: String,
    name: String,
}

/// Translates the message list, giving tool calls ids and pairing tool results with them.
/// Earlier `thinking` is not sent back: OpenAI-compatible APIs take no reasoning as input.
fn messages(list: &[Message], ignored: &mut Vec<String>) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(list.len());
    let mut waiting: Vec<Waiting> = Vec::new();
    // Numbered across the conversation so ids stay unique over several tool-using turns.
    let mut next_call = 0usize;
    for (i, message) in list.iter().enumerate() {
        ignored.extend(message.extra.keys().map(|k| format!("messages[{i}].{k}")));
        let role = message.role.to_ascii_lowercase();
        if !message.images.is_empty() && role != "user" {
            return Err(TranslateError::unsupported(
                format!("messages[{i}].images"),
                "OpenAI-compatible providers take images on user messages only",
            ));
        }
        let translated = match role.as_str() {
            "system" | "user" if !message.tool_calls.is_empty() => {
                return Err(TranslateError::at(
                    format!("messages[{i}].tool_calls"),
                    "are only allowed on assistant messages",
                ));
            }
            "system" => json!({"role": "system", "content": message.content}),
            "user" => user_message(&message.content, &message.images),
            "assistant" => {
                waiting.clear();
                let mut calls = Vec::with_capacity(message.tool_calls.len());
                for call in &message.tool_calls {
                    let id = call.id.clone().unwrap_or_else(|| {
                        next_call += 1;
                        super::call_id(next_call - 1)
                    });
                    calls.push(json!({
                        "id": id,
                        "type": "function",
                        "function": {
                            "name": call.function.name,
                            "arguments": Value::Object(call.function.arguments.clone()).to_string(),
                        },
                    }));
                    waiting.push(Waiting {
                        id,
                        name: call.function.name.clone(),
                    });
                }
                if calls.is_empty() {
                    json!({"role": "assistant", "content": message.content})
                } else {
                    let content = (!message.content.is_empty()).then(|| message.content.clone());
                    json!({"role": "assistant", "content": content, "tool_calls": calls})
                }
            }
            "tool" => {
                let id = answered_call(message, &mut waiting, i)?;
                json!({"role": "tool", "tool_call_id": id, "content": message.content})
            }
            other => {
                return Err(TranslateError::at(
                    format!("messages[{i}].role"),
                    format!("must be {MESSAGE_ROLES}, got `{other}`"),
                ));
            }
        };
        if role != "assistant" && role != "tool" {
            waiting.clear();
        }
        out.push(translated);
    }
    Ok(out)
}

/// The id of the call a tool result answers: its own `tool_call_id`, else the first waiting call
/// with its `tool_name`, else the first waiting call.
fn answered_call(
    message: &Message,
    waiting: &mut Vec<Waiting>,
    i: usize,
) -> Result<String, TranslateError> {
    if let Some(id) = &message.tool_call_id {
        waiting.retain(|w| w.id != *id);
        return Ok(id.clone());
    }
    let position = match message.tool_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => waiting.iter().position(|w| w.name == name).ok_or_else(|| {
            let names: Vec<&str> = waiting.iter().map(|w| w.name.as_str()).collect();
            TranslateError::at(
                format!("messages[{i}].tool_name"),
                format!(
                    "is `{name}`, but no call to it is waiting for a result (waiting: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })?,
        None if waiting.is_empty() => {
            return Err(TranslateError::at(
                format!("messages[{i}]"),
                "is a tool result, but no earlier assistant tool call is waiting for one",
            ));
        }
        None => 0,
    };
    Ok(waiting.remove(position).id)
}

/// A user message: plain text, or text and image parts when there are images.
fn user_message(text: &str, images: &[String]) -> Value {
    if images.is_empty() {
        return json!({"role": "user", "content": text});
    }
    let mut parts = Vec::with_capacity(images.len() + 1);
    if !text.is_empty() {
        parts.push(json!({"type": "text", "text": text}));
    }
    for image in images {
        parts.push(json!({"type": "image_url", "image_url": {"url": image_data_url(image)}}));
    }
    json!({"role": "user", "content": parts})
}

/// A `data:` URL for base64 image bytes. Ollama does not say the type, so it is sniffed from the
/// first bytes (the base64 of the PNG, JPEG, GIF and WebP signatures).
fn image_data_url(base64: &str) -> String {
    if base64.starts_with("data:") {
        return base64.to_owned();
    }
    let mime = if base64.starts_with("/9j/") {
        "image/jpeg"
    } else if base64.starts_with("R0lGOD") {
        "image/gif"
    } else if base64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/png"
    };
    format!("data:{mime};base64,{base64}")
}

/// The request fields `/api/chat` and `/api/generate` share.
struct Common<'a> {
    format: Option<&'a Format>,
    options: Option<&'a Options>,
    think: Option<&'a Think>,
    keep_alive: bool,
    extra: &'a Map<String, Value>,
    stream: bool,
}

impl Common<'_> {
    fn apply(
        &self,
        out: &mut Map<String, Value>,
        ignored: &mut Vec<String>,
    ) -> Result<(), TranslateError> {
        match self.format {
            None => {}
            Some(Format::Named(name)) if name.is_empty() => {}
            Some(Format::Named(name)) if name == "json" => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some(Format::Named(other)) => {
                return Err(TranslateError::at(
                    "format",
                    format!("must be \"json\" or a JSON schema object, got \"{other}\""),
                ));
            }
            Some(Format::Schema(schema)) => {
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
                );
            }
        }
        if let Some(options) = self.options {
            apply_options(options, out, ignored);
        }
        match self.think {
            Some(Think::Level(level)) => {
                out.insert("reasoning_effort".into(), json!(level));
            }
            // On/off has no portable OpenAI switch; models that reason will do so.
            Some(Think::Enabled(_)) => ignored.push("think".to_owned()),
            None => {}
        }
        if self.keep_alive {
            ignored.push("keep_alive".to_owned());
        }
        ignored.extend(self.extra.keys().cloned());
        out.insert("stream".into(), json!(self.stream));
        if self.stream {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Ok(())
    }
}

fn apply_options(options: &Options, out: &mut Map<String, Value>, ignored: &mut Vec<String>) {
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            out.insert(key.to_owned(), value);
        }
    };
    put("temperature", options.temperature.map(|v| json!(v)));
    put("top_p", options.top_p.map(|v| json!(v)));
    put("seed", options.seed.map(|v| json!(v)));
    put(
        "frequency_penalty",
        options.frequency_penalty.map(|v| json!(v)),
    );
    put(
        "presence_penalty",
        options.presence_penalty.map(|v| json!(v)),
    );
    put(
        "stop",
        options
            .stop
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|v| json!(v)),
    );
    // -1 (no limit) and -2 (fill the context) are the provider's default behaviour anyway.
    // `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server knows it
    // (OpenAI's own API gets `max_completion_tokens` when the request goes out).
    put(
        "max_tokens",
        options.num_predict.filter(|n| *n > 0).map(|v| json!(v)),
    );
    let unmapped = [
        ("top_k", options.top_k.is_some()),
        ("min_p", options.min_p.is_some()),
        ("num_ctx", options.num_ctx.is_some()),
        ("repeat_penalty", options.repeat_penalty.is_some()),
    ];
    for (name, set) in unmapped {
        if set {
            ignored.push(format!("options.{name}"));
        }
    }
    ignored.extend(options.extra.keys().map(|k| format!("options.{k}")));
}

/// Names the message and field at fault: each key is re-read beside a valid role.
fn probe_messages(value: &Value) -> Option<(String, String)> {
    let Value::Array(items) = value else {
        return probe::<Vec<Message>>(value);
    };
    items.iter().enumerate().find_map(|(i, item)| {
        let Value::Object(fields) = item else {
            return Some((format!("[{i}]"), "must be an object".to_owned()));
        };
        match fields.get("role") {
            Some(Value::String(_)) => {}
            Some(_) => return Some((format!("[{i}].role"), "must be a string".to_owned())),
            None => return Some((format!("[{i}].role"), "is required".to_owned())),
        }
        fields
            .iter()
            .filter(|(key, _)| *key != "role")
            .find_map(|(key, field)| {
                let single = Map::from_iter([
                    ("role".to_owned(), json!("user")),
                    (key.clone(), field.clone()),
                ]);
                serde_json::from_value::<Message>(Value::Object(single))
                    .err()
                    .map(|e| (format!("[{i}].{key}"), format!("is invalid: {e}")))
            })
    })
}

fn probe_format(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Null | Value::String(_) | Value::Object(_) => None,
        _ => Some((
            String::new(),
            "must be \"json\" or a JSON schema object".to_owned(),
        )),
    }
}

fn probe_think(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => None,
        _ => Some((
            String::new(),
            "must be true, false or a level (\"low\", \"medium\", \"high\")".to_owned(),
        )),
    }
}
