//! OpenAI chat request -> Anthropic Messages request, for an OpenAI client routed to Anthropic.

use serde_json::{Map, Value, json};

use super::openai::{
    ChatMessage, ChatRequest, FileRef, Part, ResponseFormat, Stop, ToolDef, is_http_url,
    parse_data_url, parts, text_only,
};
use super::{TranslateError, to_json, tool_input};
use crate::wire::anthropic::{
    Content, ContentBlock, ImageBlock, ImageSource, Message, MessagesRequest, Metadata, Role,
    TextBlock, Tool, ToolChoice, ToolResultBlock, ToolUseBlock,
};

/// Translates an OpenAI chat completion request into an Anthropic Messages request for the
/// upstream `model`, using `default_max_tokens` when the client set no output cap (Anthropic
/// requires one).
///
/// - System and developer messages, wherever they appear, are merged in order into `system`.
/// - Tool results become `tool_result` blocks; consecutive messages of the same role are merged,
///   with tool results first, as Anthropic requires.
/// - `response_format` becomes an instruction in the system prompt (Anthropic has no JSON mode).
/// - `temperature` is capped at 1, Anthropic's maximum.
/// - Fields Anthropic has no use for (`frequency_penalty`, `seed`, `logprobs`, ...) are dropped;
///   `n` above 1 and audio input are refused.
pub fn request_to_anthropic(
    openai_body: &[u8],
    model: &str,
    default_max_tokens: u32,
) -> Result<Vec<u8>, TranslateError> {
    let request: ChatRequest = serde_json::from_slice(openai_body)
        .map_err(|e| TranslateError::from_json(&e, "chat completion request"))?;
    if request.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported(
            "n",
            "Anthropic returns one choice per request; n must be 1",
        ));
    }

    let mut system = Vec::new();
    let mut messages: Vec<(Role, Vec<ContentBlock>)> = Vec::new();
    for (i, raw) in request.messages.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let (role, blocks) = match ChatMessage::parse(raw, &path)? {
            ChatMessage::System { content } | ChatMessage::Developer { content } => {
                let text = text_only(content, &path)?;
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            ChatMessage::User { content } => (Role::User, user_blocks(content, &path)?),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => (
                Role::Assistant,
                assistant_blocks(content, tool_calls, &path)?,
            ),
            ChatMessage::Tool {
                tool_call_id,
                content,
            } => (Role::User, vec![tool_result(tool_call_id, content, &path)?]),
            ChatMessage::Function {} => {
                return Err(TranslateError::unsupported(
                    format!("{path}.role"),
                    "`function` messages are deprecated; use `tool` messages with a tool_call_id",
                ));
            }
        };
        push_merged(&mut messages, role, blocks);
    }
    if messages.is_empty() {
        return Err(TranslateError::invalid(
            "messages",
            "needs at least one user or assistant message besides system messages",
        ));
    }

    if let Some(format) = request.response_format {
        system.extend(json_instruction(format));
    }

    let tools = match request.tools {
        Some(tools) if !tools.is_empty() => Some(
            tools
                .into_iter()
                .enumerate()
                .map(|(i, tool)| convert_tool(tool, i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => None,
    };
    let tool_choice = match &tools {
        Some(_) => convert_tool_choice(request.tool_choice, request.parallel_tool_calls)?,
        None => None,
    };

    let stop_sequences = match request.stop {
        Some(Stop::One(stop)) => Some(vec![stop]),
        Some(Stop::Many(stops)) if !stops.is_empty() => Some(stops),
        _ => None,
    };

    let body = MessagesRequest {
        model: model.to_owned(),
        messages: messages
            .into_iter()
            .map(|(role, blocks)| Message {
                role,
                content: compact(blocks),
                extra: Map::new(),
            })
            .collect(),
        system: (!system.is_empty()).then(|| Content::Text(system.join("\n\n"))),
        max_tokens: Some(
            request
                .max_completion_tokens
                .or(request.max_tokens)
                .unwrap_or(u64::from(default_max_tokens)),
        ),
        stop_sequences,
        temperature: request.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: request.top_p,
        top_k: request.top_k,
        metadata: request.user.map(|user| Metadata {
            user_id: Some(user),
            extra: Map::new(),
        }),
        stream: request.stream,
        tools,
        tool_choice,
        extra: Map::new(),
    };
    Ok(to_json(&body))
}

fn user_blocks(content: Option<Value>, path: &str) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut blocks = Vec::new();
    for (i, part) in parts(content, path)?.into_iter().enumerate() {
        let part_path = format!("{path}.content[{i}]");
        match part {
            Part::Text { text } | Part::Refusal { refusal: text } => push_text(&mut blocks, text),
            Part::ImageUrl { image_url } => blocks.push(image_block(image_url.url(), &part_path)?),
            Part::File { file } => blocks.push(document_block(file, &part_path)?),
            Part::InputAudio {} => {
                return Err(TranslateError::unsupported(
                    part_path,
                    "Anthropic models do not accept audio input",
                ));
            }
        }
    }
    Ok(blocks)
}

fn image_block(url: &str, path: &str) -> Result<ContentBlock, TranslateError> {
    let source = if let Some(data) = parse_data_url(url) {
        ImageSource::Base64 {
            media_type: data.media_type.to_owned(),
            data: data.data.to_owned(),
        }
    } else if is_http_url(url) {
        ImageSource::Url {
            url: url.to_owned(),
        }
    } else {
        return Err(TranslateError::invalid(
            path,
            "image_url must be a data: URL or an http(s) URL",
        ));
    };
    Ok(ContentBlock::Image(ImageBlock {
        source,
        extra: Map::new(),
    }))
}

/// A `file` part becomes a `document` block; only inline base64 data can be carried over, since
/// OpenAI file ids mean nothing to Anthropic.
fn document_block(file: FileRef, path: &str) -> Result<ContentBlock, TranslateError> {
    let Some(data) = file.file_data.as_deref().and_then(parse_data_url) else {
        let reason = if file.file_id.is_some() {
            "OpenAI file ids cannot be sent to Anthropic; send the file inline as file_data"
        } else {
            "file_data must be a base64 data: URL"
        };
        return Err(TranslateError::unsupported(format!("{path}.file"), reason));
    };
    let mut block = json!({
        "type": "document",
        "source": {"type": "base64", "media_type": data.media_type, "data": data.data},
    });
    if let Some(name) = file.filename {
        block["title"] = Value::String(name);
    }
    Ok(ContentBlock::Other(block))
}

fn assistant_blocks(
    content: Option<Value>,
    tool_calls: Option<Vec<super::openai::ToolCall>>,
    path: &str,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut blocks = Vec::new();
    for (i, part) in parts(content, path)?.into_iter().enumerate() {
        match part {
            Part::Text { text } | Part::Refusal { refusal: text } => push_text(&mut blocks, text),
            _ => {
                return Err(TranslateError::unsupported(
                    format!("{path}.content[{i}]"),
                    "assistant messages may only hold text",
                ));
            }
        }
    }
    for (i, call) in tool_calls.unwrap_or_default().into_iter().enumerate() {
        let Some(function) = call.function else {
            return Err(TranslateError::unsupported(
                format!("{path}.tool_calls[{i}]"),
                "only function tool calls can be sent to Anthropic",
            ));
        };
        blocks.push(ContentBlock::ToolUse(ToolUseBlock {
            id: call.id,
            name: function.name,
            input: tool_input(&function.arguments),
            extra: Map::new(),
        }));
    }
    Ok(blocks)
}

fn tool_result(
    tool_call_id: String,
    content: Option<Value>,
    path: &str,
) -> Result<ContentBlock, TranslateError> {
    let content = match content {
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) => Some(Content::Text(text)),
        other => {
            let blocks = user_blocks(other, path)?;
            (!blocks.is_empty()).then_some(Content::Blocks(blocks))
        }
    };
    Ok(ContentBlock::ToolResult(ToolResultBlock {
        tool_use_id: tool_call_id,
        content,
        is_error: None,
        extra: Map::new(),
    }))
}

/// Anthropic refuses empty text blocks, which OpenAI clients send freely (e.g. `""` next to
/// tool calls).
fn push_text(blocks: &mut Vec<ContentBlock>, text: String) {
    if !text.is_empty() {
        blocks.push(ContentBlock::Text(TextBlock::new(text)));
    }
}

/// Appends a message, merging it into the previous one when the role repeats (several tool
/// results in a row, or tool results followed by a user message). In a merged user message the
/// tool results go first: Anthropic requires them before any other content.
fn push_merged(
    messages: &mut Vec<(Role, Vec<ContentBlock>)>,
    role: Role,
    blocks: Vec<ContentBlock>,
) {
    if blocks.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some((last_role, last)) if *last_role == role => {
            last.extend(blocks);
            if role == Role::User {
                // A stable sort: tool results first, everything else keeps its order.
                last.sort_by_key(|block| !matches!(block, ContentBlock::ToolResult(_)));
            }
        }
        _ => messages.push((role, blocks)),
    }
}

/// A single plain text block is sent as a string, the form most requests use.
fn compact(mut blocks: Vec<ContentBlock>) -> Content<ContentBlock> {
    match blocks.as_mut_slice() {
        [ContentBlock::Text(text)] if text.extra.is_empty() => {
            Content::Text(std::mem::take(&mut text.text))
        }
        _ => Content::Blocks(blocks),
    }
}

fn json_instruction(format: ResponseFormat) -> Option<String> {
    match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(
            "Answer with a single valid JSON object and nothing else: no prose, no Markdown \
             code fences."
                .to_owned(),
        ),
        ResponseFormat::JsonSchema { json_schema } => {
            let mut text = String::from(
                "Answer with a single valid JSON value and nothing else (no prose, no Markdown \
                 code fences)",
            );
            if let Some(schema) = &json_schema.schema {
                text.push_str(" that conforms to this JSON Schema");
                if let Some(name) = &json_schema.name {
                    text.push_str(&format!(" named \"{name}\""));
                }
                if let Some(description) = &json_schema.description {
                    text.push_str(&format!(" ({description})"));
                }
                text.push_str(":\n");
                text.push_str(&schema.to_string());
            } else {
                text.push('.');
            }
            Some(text)
        }
    }
}

fn convert_tool(tool: Value, i: usize) -> Result<Tool, TranslateError> {
    let path = format!("tools[{i}]");
    let def: ToolDef =
        serde_json::from_value(tool).map_err(|e| TranslateError::invalid(&path, e))?;
    let Some(function) = def.function.filter(|_| def.kind == "function") else {
        return Err(TranslateError::unsupported(
            format!("{path}.type"),
            format!(
                "only `function` tools can be sent to Anthropic, not `{}`",
                def.kind
            ),
        ));
    };
    Ok(Tool {
        name: function.name,
        description: function.description,
        // Anthropic requires a schema; OpenAI allows leaving it out for tools without arguments.
        input_schema: Some(
            function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        ),
        extra: Map::new(),
    })
}

fn convert_tool_choice(
    choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
) -> Result<Option<ToolChoice>, TranslateError> {
    let disable = (parallel_tool_calls == Some(false)).then_some(true);
    let choice = match choice {
        None | Some(Value::Null) => {
            return Ok(disable.map(|_| ToolChoice::Auto {
                disable_parallel_tool_use: disable,
            }));
        }
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: disable,
            },
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: disable,
            },
            "none" => ToolChoice::None,
            other => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    format!("unknown value `{other}`; use auto, required, none or a function"),
                ));
            }
        },
        Some(Value::Object(object)) => {
            match object
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) if object.get("type").and_then(Value::as_str) == Some("function") => {
                    ToolChoice::Tool {
                        name: name.to_owned(),
                        disable_parallel_tool_use: disable,
                    }
                }
                _ => {
                    return Err(TranslateError::unsupported(
                        "tool_choice",
                        "only {\"type\":\"function\",\"function\":{\"name\":...}} can be sent to \
                         Anthropic",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "tool_choice",
                "must be a string or an object",
            ));
        }
    };
    Ok(Some(choice))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::translate::anthropic::snapshot;

    #[test]
    fn matches_snapshots() {
        snapshot::each_case("request_to_anthropic", ".openai.json", |input| {
            let out = request_to_anthropic(input, "claude-sonnet-4-5", 4096).unwrap();
            (".anthropic.json", snapshot::parse(&out))
        });
    }

    #[test]
    fn refuses_what_anthropic_cannot_take_naming_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#,
                "messages[0].content[0]: image_url must be a data: URL or an http(s) URL",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
                "messages[1].content[0]: Anthropic models do not accept audio input",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"a"}],"n":2}"#,
                "n: Anthropic returns one choice per request; n must be 1",
            ),
            (
                r#"{"model":"m","messages":[{"role":"system","content":"a"}]}"#,
                "messages: needs at least one user or assistant message",
            ),
            (
                r#"{"model":"m","messages":[{"role":"robot","content":"a"}]}"#,
                "messages[0]: unknown variant `robot`",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}"#,
                "tool_choice: unknown value `sometimes`",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"custom","custom":{"name":"f"}}]}"#,
                "tools[0].type: only `function` tools",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#,
                "messages[0].content[0].file: OpenAI file ids cannot be sent",
            ),
            (
                r#"{"model":"m","messages":[{"role":"function","name":"f","content":"a"}]}"#,
                "messages[0].role: `function` messages are deprecated",
            ),
            (
                r#"{"model":"m"}"#,
                "invalid chat completion request: missing field `messages`",
            ),
            ("{", "request body is not valid JSON"),
        ];
        for (body, message) in cases {
            let err = request_to_anthropic(body.as_bytes(), "claude", 1024).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err} / {message}");
        }
    }
}
