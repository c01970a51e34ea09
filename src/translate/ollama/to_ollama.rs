//! OpenAI chat requests rewritten for an Ollama provider's native `/api/chat`. The OpenAI body is
//! walked as JSON values so every error can name the exact field (`messages[2].content[1]...`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{TranslateError, arguments_to_object, parse_error, to_json};
use crate::wire::ollama::{
    ChatRequest, Format, Message, Options, Think, ToolCall, ToolCallFunction,
};

/// Translates an OpenAI chat request into an Ollama `/api/chat` request for `model` (the name
/// the provider serves). `stream` is always written, as Ollama streams when it is absent.
pub fn request_to_ollama(openai_body: &[u8], model: &str) -> Result<Vec<u8>, TranslateError> {
    let body: Value =
        serde_json::from_slice(openai_body).map_err(|e| parse_error(e, "OpenAI chat request"))?;
    let Value::Object(body) = body else {
        return Err(TranslateError::Invalid {
            what: "OpenAI chat request",
            message: "expected a JSON object".to_owned(),
        });
    };
    let messages = match body.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => messages(list)?,
        Some(Value::Array(_)) => return Err(TranslateError::at("messages", "must not be empty")),
        Some(_) => return Err(TranslateError::at("messages", "must be an array")),
        None => return Err(TranslateError::at("messages", "is required")),
    };
    if let Some(n) = number(&body, "n")?
        && n > 1.0
    {
        return Err(TranslateError::unsupported(
            "n",
            "Ollama returns one choice per request; send `n` = 1",
        ));
    }
    let request = ChatRequest {
        model: model.to_owned(),
        messages,
        tools: tools(&body)?,
        format: format(&body)?,
        options: Some(options(&body)?).filter(|o| !o.is_empty()),
        stream: Some(matches!(body.get("stream"), Some(Value::Bool(true)))),
        keep_alive: None,
        think: think(&body)?,
        extra: Map::new(),
    };
    Ok(to_json(&request))
}

fn messages(list: &[Value]) -> Result<Vec<Message>, TranslateError> {
    // Ollama pairs tool results with calls by function name only.
    let mut names_by_id: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        let Value::Object(message) = item else {
            return Err(TranslateError::at(path, "must be an object"));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) => role.as_str(),
            Some(_) => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    "must be a string",
                ));
            }
            None => return Err(TranslateError::at(format!("{path}.role"), "is required")),
        };
        let (content, images) = content(message.get("content"), &format!("{path}.content"))?;
        let mut translated = Message {
            content,
            images,
            ..Message::default()
        };
        match role {
            "system" | "developer" => translated.role = "system".to_owned(),
            "user" => translated.role = "user".to_owned(),
            "assistant" => {
                translated.role = "assistant".to_owned();
                translated.tool_calls = assistant_calls(message, &path, &mut names_by_id)?;
                translated.thinking = ["reasoning_content", "reasoning"]
                    .iter()
                    .find_map(|k| message.get(*k).and_then(Value::as_str))
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                if translated.content.is_empty()
                    && let Some(Value::String(refusal)) = message.get("refusal")
                {
                    translated.content = refusal.clone();
                }
            }
            "tool" => {
                translated.role = "tool".to_owned();
                translated.tool_name = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .and_then(|id| names_by_id.get(id).cloned());
            }
            // The pre-tools form of a tool result: the function's name travels with it.
            "function" => {
                translated.role = "tool".to_owned();
                translated.tool_name = message
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            other => {
                return Err(TranslateError::at(
                    format!("{path}.role"),
                    format!("must be system, developer, user, assistant or tool, got `{other}`"),
                ));
            }
        }
        out.push(translated);
    }
    Ok(out)
}

/// An assistant message's `tool_calls` (or legacy `function_call`) in Ollama's shape, recording
/// each call's function name under its id for the tool results that follow.
fn assistant_calls(
    message: &Map<String, Value>,
    path: &str,
    names_by_id: &mut HashMap<String, String>,
) -> Result<Vec<ToolCall>, TranslateError> {
    let (calls, legacy) = match (message.get("tool_calls"), message.get("function_call")) {
        (Some(Value::Array(calls)), _) => (calls.iter().collect::<Vec<_>>(), false),
        (Some(Value::Null) | None, Some(Value::Object(_))) => {
            (message.get("function_call").into_iter().collect(), true)
        }
        (Some(Value::Null) | None, _) => return Ok(Vec::new()),
        (Some(_), _) => {
            return Err(TranslateError::at(
                format!("{path}.tool_calls"),
                "must be an array",
            ));
        }
    };
    let mut out = Vec::with_capacity(calls.len());
    for (k, call) in calls.into_iter().enumerate() {
        let (call_path, function) = if legacy {
            (format!("{path}.function_call"), Some(call))
        } else {
            let call_path = format!("{path}.tool_calls[{k}]");
            (format!("{call_path}.function"), call.get("function"))
        };
        let Some(Value::Object(function)) = function else {
            return Err(TranslateError::at(
                call_path,
                "must be an object with `name` and `arguments`",
            ));
        };
        let Some(name) = function.get("name").and_then(Value::as_str) else {
            return Err(TranslateError::at(
                format!("{call_path}.name"),
                "must be a string",
            ));
        };
        let arguments = arguments_to_object(
            function.get("arguments"),
            &format!("{call_path}.arguments"),
            name,
        )?;
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            names_by_id.insert(id.to_owned(), name.to_owned());
        }
        out.push(ToolCall {
            id: None,
            function: ToolCallFunction {
                index: None,
                name: name.to_owned(),
                arguments,
            },
        });
    }
    Ok(out)
}

/// Message content as Ollama's text and base64 images. Text parts are joined by newlines.
fn content(value: Option<&Value>, path: &str) -> Result<(String, Vec<String>), TranslateError> {
    let parts = match value {
        None | Some(Value::Null) => return Ok((String::new(), Vec::new())),
        Some(Value::String(text)) => return Ok((text.clone(), Vec::new())),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(TranslateError::at(
                path,
                "must be a string or an array of parts",
            ));
        }
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}[{j}]");
        let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "text" | "input_text" | "refusal" => {
                let key = if kind == "refusal" { "refusal" } else { "text" };
                let Some(text) = part.get(key).and_then(Value::as_str) else {
                    return Err(TranslateError::at(
                        format!("{part_path}.{key}"),
                        "must be a string",
                    ));
                };
                texts.push(text);
            }
            "image_url" => images.push(image_base64(part, &part_path)?),
            other => {
                return Err(TranslateError::unsupported(
                    format!("{part_path}.type"),
                    format!(
                        "`{other}` parts cannot be sent to Ollama; only text and image_url parts can"
                    ),
                ));
            }
        }
    }
    Ok((texts.join("\n"), images))
}

/// The base64 payload of an `image_url` part. Ollama takes inline images only.
fn image_base64(part: &Value, path: &str) -> Result<String, TranslateError> {
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(Value::Object(image)) => image.get("url").and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    let path = format!("{path}.image_url.url");
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(TranslateError::unsupported(
            path,
            "Ollama takes images as base64 only; send the image inline as a data: URL \
             (data:image/png;base64,...) instead of a link",
        ));
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(TranslateError::at(
            path,
            "must be a data: URL (data:image/png;base64,...)",
        ));
    };
    match rest.split_once(',') {
        Some((meta, data)) if meta.ends_with(";base64") && !data.is_empty() => Ok(data.to_owned()),
        _ => Err(TranslateError::at(
            path,
            "must be a base64 data: URL (data:image/png;base64,...)",
        )),
    }
}

/// Function tools pass as they are (same shape in both APIs); `tool_choice: "none"` drops them.
/// Ollama cannot force a tool, so other `tool_choice` values leave the choice to the model.
fn tools(body: &Map<String, Value>) -> Result<Vec<Value>, TranslateError> {
    if body.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return Ok(Vec::new());
    }
    let list = match body.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::at("tools", "must be an array")),
    };
    for (k, tool) in list.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") | None => {}
            Some(other) => {
                return Err(TranslateError::unsupported(
                    format!("tools[{k}].type"),
                    format!("Ollama supports function tools only, got `{other}`"),
                ));
            }
        }
    }
    Ok(list.clone())
}

fn format(body: &Map<String, Value>) -> Result<Option<Format>, TranslateError> {
    let Some(Value::Object(format)) = body.get("response_format") else {
        return match body.get("response_format") {
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(TranslateError::at("response_format", "must be an object")),
        };
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Format::Named("json".to_owned()))),
        Some("json_schema") => match format.get("json_schema").and_then(|s| s.get("schema")) {
            Some(Value::Object(schema)) => Ok(Some(Format::Schema(schema.clone()))),
            _ => Err(TranslateError::at(
                "response_format.json_schema.schema",
                "must be a JSON schema object",
            )),
        },
        other => Err(TranslateError::at(
            "response_format.type",
            format!(
                "must be text, json_object or json_schema, got {}",
                other.unwrap_or("nothing")
            ),
        )),
    }
}

fn options(body: &Map<String, Value>) -> Result<Options, TranslateError> {
    let integer = |key: &str| -> Result<Option<i64>, TranslateError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| TranslateError::at(key, "must be an integer")),
        }
    };
    let stop = match body.get("stop") {
        None | Some(Value::Null) => None,
        Some(Value::String(one)) => Some(vec![one.clone()]),
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    TranslateError::at("stop", "must be a string or an array of strings")
                })?,
        ),
        Some(_) => {
            return Err(TranslateError::at(
                "stop",
                "must be a string or an array of strings",
            ));
        }
    };
    Ok(Options {
        temperature: number(body, "temperature")?,
        top_p: number(body, "top_p")?,
        num_predict: integer("max_completion_tokens")?.or(integer("max_tokens")?),
        stop,
        seed: integer("seed")?,
        frequency_penalty: number(body, "frequency_penalty")?,
        presence_penalty: number(body, "presence_penalty")?,
        ..Options::default()
    })
}

fn number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, TranslateError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| TranslateError::at(key, "must be a number")),
    }
}

/// `reasoning_effort` as Ollama's `think`, which takes the levels low, medium and high.
fn think(body: &Map<String, Value>) -> Result<Option<Think>, TranslateError> {
    let level = match body.get("reasoning_effort") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(level)) => level.as_str(),
        Some(_) => return Err(TranslateError::at("reasoning_effort", "must be a string")),
    };
    Ok(Some(match level {
        "none" => Think::Enabled(false),
        "minimal" | "low" => Think::Level("low".to_owned()),
        "medium" => Think::Level("medium".to_owned()),
        "high" | "xhigh" => Think::Level("high".to_owned()),
        other => {
            return Err(TranslateError::at(
                "reasoning_effort",
                format!("must be none, minimal, low, medium or high, got `{other}`"),
            ));
        }
    }))
}
