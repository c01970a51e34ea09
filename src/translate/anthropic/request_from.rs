//! Anthropic Messages request -> OpenAI chat request, for an Anthropic client (Claude Code, the
//! Anthropic SDKs) routed to an OpenAI-compatible provider.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{TranslateError, to_json};
use crate::wire::anthropic::{
    Content, ContentBlock, ImageSource, Message, MessagesRequest, Role, TextBlock, Tool,
    ToolChoice, ToolResultBlock,
};

/// Translates an Anthropic Messages request into an OpenAI chat completion request for the
/// upstream `model`. A streaming request asks for `stream_options.include_usage` so the proxy
/// learns the usage.
///
/// - `system` becomes the first message; text blocks are joined with blank lines.
/// - `tool_result` blocks become `tool` messages placed before the rest of their user message,
///   as OpenAI wants them right after the assistant's tool calls. Their images move to a user
///   message after them (OpenAI tool messages hold text only), and `is_error` is marked with an
///   `Error: ` prefix, OpenAI having no such flag.
/// - Thinking blocks are dropped: an OpenAI-compatible provider can neither read nor verify them.
/// - `max_tokens` is sent as `max_tokens`, the name OpenAI-compatible servers accept most widely
///   (OpenAI's own API gets `max_completion_tokens` when the request goes out: `Rewrite`).
/// - `top_k`, `thinking` and other Anthropic-only fields are dropped; server tools (web search,
///   code execution...) and block types OpenAI has no equivalent for are refused.
pub fn request_from_anthropic(
    anthropic_body: &[u8],
    model: &str,
) -> Result<Vec<u8>, TranslateError> {
    let request = parse(anthropic_body)?;
    let mut messages = Vec::new();
    match &request.system {
        Some(Content::Text(text)) if !text.is_empty() => {
            messages.push(json!({"role": "system", "content": text}));
        }
        Some(Content::Blocks(blocks)) if !blocks.is_empty() => {
            let text: Vec<&str> = blocks.iter().map(|b| b.text.as_str()).collect();
            messages.push(json!({"role": "system", "content": text.join("\n\n")}));
        }
        _ => {}
    }
    for (i, message) in request.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        match message.role {
            Role::User => user_messages(&message.content, &path, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(&message.content, &path)?),
            Role::System => messages.push(system_message(&message.content, &path)?),
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    if let Some(max_tokens) = request.max_tokens {
        body.insert("max_tokens".into(), max_tokens.into());
    }
    if let Some(stops) = request.stop_sequences.filter(|s| !s.is_empty()) {
        body.insert("stop".into(), stops.into());
    }
    if let Some(temperature) = request.temperature {
        body.insert("temperature".into(), temperature.into());
    }
    if let Some(top_p) = request.top_p {
        body.insert("top_p".into(), top_p.into());
    }
    if let Some(user) = request.metadata.and_then(|m| m.user_id) {
        body.insert("user".into(), user.into());
    }
    let tools = request.tools.unwrap_or_default();
    if !tools.is_empty() {
        let tools = tools
            .iter()
            .enumerate()
            .map(|(i, tool)| convert_tool(tool, i))
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &request.tool_choice {
            body.insert("tool_choice".into(), convert_tool_choice(choice));
            if choice.disables_parallel_tool_use() {
                body.insert("parallel_tool_calls".into(), false.into());
            }
        }
    }
    if request.stream == Some(true) {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(to_json(&body))
}

/// Parses the request; when that fails, looks for the message or tool at fault, because
/// serde's own error does not say where in the conversation it is.
fn parse(body: &[u8]) -> Result<MessagesRequest, TranslateError> {
    let err = match serde_json::from_slice::<MessagesRequest>(body) {
        Ok(request) => return Ok(request),
        Err(err) => err,
    };
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        for field in ["messages", "tools"] {
            let Some(Value::Array(items)) = object.get(field) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let found = if field == "messages" {
                    Message::deserialize(item).err()
                } else {
                    Tool::deserialize(item).err()
                };
                if let Some(e) = found {
                    return Err(TranslateError::invalid(format!("{field}[{i}]"), e));
                }
            }
        }
    }
    Err(TranslateError::from_json(
        &err,
        "Anthropic messages request",
    ))
}

/// Appends the OpenAI messages for one Anthropic user message: its tool results as `tool`
/// messages first, then one user message with the rest.
fn user_messages(
    content: &Content<ContentBlock>,
    path: &str,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let block_path = format!("{path}.content[{j}]");
        match block {
            ContentBlock::ToolResult(result) => {
                out.push(tool_message(result, &block_path, &mut parts)?);
            }
            other => parts.push(user_part(other, &block_path)?),
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    // Plain text goes as a string, which every OpenAI-compatible server understands.
    let content = match parts.as_slice() {
        [part] if part["type"] == "text" => part["text"].clone(),
        _ => Value::Array(parts),
    };
    out.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn user_part(block: &ContentBlock, path: &str) -> Result<Value, TranslateError> {
    match block {
        ContentBlock::Text(TextBlock { text, .. }) => Ok(json!({"type": "text", "text": text})),
        ContentBlock::Image(image) => {
            let url = match &image.source {
                ImageSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
                ImageSource::Url { url } => url.clone(),
                ImageSource::Other(_) => {
                    return Err(TranslateError::unsupported(
                        format!("{path}.source"),
                        "only base64 and url image sources can be sent to an OpenAI-compatible \
                         provider",
                    ));
                }
            };
            Ok(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        ContentBlock::Other(value) if value["type"] == "document" => document_part(value, path),
        other => Err(TranslateError::unsupported(
            path,
            format!(
                "`{}` blocks cannot be sent to an OpenAI-compatible provider",
                other.kind()
            ),
        )),
    }
}

/// A document: inline text becomes text; base64 (PDF) becomes an OpenAI `file` part.
fn document_part(value: &Value, path: &str) -> Result<Value, TranslateError> {
    let source = &value["source"];
    match source["type"].as_str() {
        Some("text") if source["data"].is_string() => {
            Ok(json!({"type": "text", "text": source["data"]}))
        }
        Some("base64") if source["data"].is_string() && source["media_type"].is_string() => {
            let data = format!(
                "data:{};base64,{}",
                source["media_type"].as_str().unwrap_or_default(),
                source["data"].as_str().unwrap_or_default()
            );
            let mut file = json!({"file_data": data});
            if let Some(title) = value["title"].as_str() {
                file["filename"] = title.into();
            }
            Ok(json!({"type": "file", "file": file}))
        }
        _ => Err(TranslateError::unsupported(
            format!("{path}.source"),
            "only base64 and text document sources can be sent to an OpenAI-compatible provider",
        )),
    }
}

/// A `tool` message for a tool result. Images in the result are appended to `user_parts`.
fn tool_message(
    result: &ToolResultBlock,
    path: &str,
    user_parts: &mut Vec<Value>,
) -> Result<Value, TranslateError> {
    let mut texts = Vec::new();
    match &result.content {
        None => {}
        Some(Content::Text(text)) => texts.push(text.clone()),
        Some(Content::Blocks(blocks)) => {
            for (k, block) in blocks.iter().enumerate() {
                let part = user_part(block, &format!("{path}.content[{k}]"))?;
                match part["type"].as_str() {
                    Some("text") => texts.push(part["text"].as_str().unwrap_or_default().into()),
                    _ => user_parts.push(part),
                }
            }
        }
    }
    let mut content = texts.join("\n");
    if result.is_error == Some(true) {
        content.insert_str(0, "Error: ");
    }
    Ok(json!({"role": "tool", "tool_call_id": result.tool_use_id, "content": content}))
}

/// A system turn: its text, at its place in the conversation (OpenAI takes system messages
/// anywhere).
fn system_message(content: &Content<ContentBlock>, path: &str) -> Result<Value, TranslateError> {
    let text = match content {
        Content::Text(t) => t.clone(),
        Content::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text(block) => parts.push(block.text.as_str()),
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("{path}.content[{j}]"),
                            format!(
                                "system messages hold text only, not `{}` blocks",
                                other.kind()
                            ),
                        ));
                    }
                }
            }
            parts.join("\n\n")
        }
    };
    Ok(json!({"role": "system", "content": text}))
}

fn assistant_message(content: &Content<ContentBlock>, path: &str) -> Result<Value, TranslateError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    match content {
        Content::Text(t) => text.push_str(t),
        Content::Blocks(blocks) => {
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text(block) => text.push_str(&block.text),
                    ContentBlock::ToolUse(call) => tool_calls.push(json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.input.to_string()},
                    })),
                    ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) => {}
                    other => {
                        return Err(TranslateError::unsupported(
                            format!("{path}.content[{j}]"),
                            format!(
                                "`{}` blocks cannot be sent to an OpenAI-compatible provider",
                                other.kind()
                            ),
                        ));
                    }
                }
            }
        }
    }
    let mut message = json!({"role": "assistant"});
    if tool_calls.is_empty() {
        message["content"] = text.into();
    } else {
        message["content"] = if text.is_empty() {
            Value::Null
        } else {
            text.into()
        };
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(message)
}

fn convert_tool(tool: &Tool, i: usize) -> Result<Value, TranslateError> {
    if let Some(kind) = tool.server_type() {
        return Err(TranslateError::unsupported(
            format!("tools[{i}]"),
            format!(
                "`{kind}` is an Anthropic server tool, which an OpenAI-compatible provider cannot \
                 run"
            ),
        ));
    }
    let mut function = json!({
        "name": tool.name,
        "parameters": tool
            .input_schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    });
    if let Some(description) = &tool.description {
        function["description"] = description.as_str().into();
    }
    Ok(json!({"type": "function", "function": function}))
}

fn convert_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto { .. } => "auto".into(),
        ToolChoice::Any { .. } => "required".into(),
        ToolChoice::None => "none".into(),
        ToolChoice::Tool { name, .. } => json!({"type": "function", "function": {"name": name}}),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    #[test]
    fn matches_snapshots() {
        snapshot::each_case("request_from_anthropic", ".anthropic.json", |input| {
            let out = request_from_anthropic(input, "gpt-4o").unwrap();
            (".openai.json", snapshot::parse(&out))
        });
    }

    #[test]
    fn refuses_what_openai_cannot_take_naming_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"a"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#,
                "tools[0]: `web_search_20250305` is an Anthropic server tool",
            ),
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}"#,
                "messages[1].content[0]: `server_tool_use` blocks cannot be sent",
            ),
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
                "messages[0].content[0].source: only base64 and url image sources",
            ),
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"image","source":{"type":"base64"}}]}]}"#,
                "messages[1]: content[0]: `image` block:",
            ),
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"tool","content":"a"}]}"#,
                "messages[0]: unknown variant `tool`",
            ),
            (
                r#"{"model":"c","max_tokens":5,"messages":[{"role":"system","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}"#,
                "messages[0].content[0]: system messages hold text only",
            ),
            (
                r#"{"model":"c","messages":"hi"}"#,
                "invalid Anthropic messages request: invalid type: string",
            ),
            (r#"{"model":"#, "request body is not valid JSON"),
            (
                "[]",
                "invalid Anthropic messages request: invalid type: sequence",
            ),
        ];
        for (body, message) in cases {
            let err = request_from_anthropic(body.as_bytes(), "gpt").unwrap_err();
            assert!(err.to_string().starts_with(message), "{err} / {message}");
        }
    }

    #[test]
    fn system_turns_among_the_messages_stay_in_place() {
        // Claude Code 2 sends system turns inside `messages`, beside the top-level prompt.
        let body = br#"{"model":"c","max_tokens":5,"system":"top","messages":[{"role":"user","content":"a"},{"role":"system","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]},{"role":"user","content":"b"}]}"#;
        let out: Value =
            serde_json::from_slice(&request_from_anthropic(body, "gpt").unwrap()).unwrap();
        let roles: Vec<&str> = out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "system", "user"]);
        assert_eq!(out["messages"][2]["content"], "x\n\ny");
    }
}
