//! A Responses API request written as a Chat Completions request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{ResponsesError, refuse};

/// A translated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The chat completions body.
    pub body: Vec<u8>,
    /// Hosted tools left out because a chat provider has none (`web_search`).
    pub dropped_tools: Vec<String>,
}

/// What the reply's tool calls are in Responses terms: chat only knows functions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolKinds {
    /// Freeform (`custom`) tools, sent to chat as functions taking one string, `input`.
    custom: Vec<String>,
    /// Functions declared inside a `namespace` tool, by name: the namespace.
    namespaced: HashMap<String, String>,
}

impl ToolKinds {
    /// The tool kinds a Responses request declares (nothing when it cannot be read).
    pub fn of_request(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct ToolsOnly {
            #[serde(default)]
            tools: Vec<Value>,
            #[serde(default)]
            input: Value,
        }
        let mut kinds = Self::default();
        if let Ok(parsed) = serde_json::from_slice::<ToolsOnly>(body) {
            let additional = parsed
                .input
                .as_array()
                .into_iter()
                .flatten()
                .filter(|item| item["type"] == "additional_tools")
                .flat_map(|item| item["tools"].as_array().into_iter().flatten());
            for tool in parsed.tools.iter().chain(additional) {
                kinds.learn(tool, None);
            }
        }
        kinds
    }

    fn learn(&mut self, tool: &Value, space: Option<&str>) {
        let name = tool["name"].as_str();
        if let (Some(space), Some(name)) = (space, name) {
            self.namespaced.insert(name.to_owned(), space.to_owned());
        }
        match tool["type"].as_str() {
            Some("custom") => {
                if let Some(name) = name {
                    self.custom.push(name.to_owned());
                }
            }
            Some("namespace") if space.is_none() => {
                let space = name.unwrap_or_default();
                for inner in tool["tools"].as_array().into_iter().flatten() {
                    self.learn(inner, Some(space));
                }
            }
            _ => {}
        }
    }

    pub fn is_custom(&self, name: &str) -> bool {
        self.custom.iter().any(|c| c == name)
    }

    pub fn namespace_of(&self, name: &str) -> Option<&str> {
        self.namespaced.get(name).map(String::as_str)
    }
}

/// Hosted tools a chat provider does not have, which the model can do without.
const DROPPABLE_TOOLS: &[&str] = &["web_search", "web_search_preview"];

/// Request fields that only mean something to OpenAI's own service (storage, caching hints,
/// metadata, `include` of encrypted reasoning): a chat provider goes without them.
const IGNORED_FIELDS: &[&str] = &[
    "store",
    "include",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "client_metadata",
    "service_tier",
    "truncation",
    "safety_identifier",
    "max_tool_calls",
    "top_logprobs",
    "stream_options",
];

/// Writes a Responses request as a chat completions request.
pub fn request_to_chat(body: &[u8]) -> Result<Conversion, ResponsesError> {
    let request: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| refuse("body", format!("not a JSON object: {e}")))?;
    let mut chat = Map::new();
    let mut dropped_tools = Vec::new();
    let mut messages = Vec::new();
    let mut tools = Vec::new();
    for (key, value) in &request {
        match key.as_str() {
            "model" | "temperature" | "top_p" | "parallel_tool_calls" | "user" | "stream" => {
                chat.insert(key.clone(), value.clone());
            }
            "instructions" => match value {
                Value::String(text) if !text.is_empty() => {
                    messages.insert(0, json!({"role": "system", "content": text}));
                }
                Value::String(_) | Value::Null => {}
                _ => return Err(refuse("instructions", "must be a string")),
            },
            "input" => messages.extend(input_messages(value, &mut tools, &mut dropped_tools)?),
            "tools" => chat_tools(value, "tools", &mut tools, &mut dropped_tools)?,
            "tool_choice" => {
                chat.insert(key.clone(), tool_choice(value)?);
            }
            "max_output_tokens" if !value.is_null() => {
                chat.insert("max_tokens".to_owned(), value.clone());
            }
            "reasoning" => {
                if let Some(effort) = value["effort"].as_str() {
                    chat.insert("reasoning_effort".to_owned(), json!(effort));
                }
            }
            "text" => {
                if let Some(format) = response_format(&value["format"])? {
                    chat.insert("response_format".to_owned(), format);
                }
            }
            "previous_response_id" | "conversation" if !value.is_null() => {
                return Err(refuse(
                    key.as_str(),
                    "this model's provider speaks chat completions, which keep no conversations: \
                     smartproxy keeps none either, so send the whole conversation in `input` \
                     (`store: false` clients such as Codex already do)",
                ));
            }
            "background" if value.as_bool() == Some(true) => {
                return Err(refuse(
                    "background",
                    "background responses need an OpenAI provider",
                ));
            }
            _ if IGNORED_FIELDS.contains(&key.as_str()) => {}
            _ => {}
        }
    }
    if !request.contains_key("model") {
        return Err(refuse("model", "is required"));
    }
    if messages.is_empty() {
        return Err(refuse("input", "is required: a string or a list of items"));
    }
    chat.insert("messages".to_owned(), Value::Array(messages));
    if !tools.is_empty() {
        chat.insert("tools".to_owned(), Value::Array(tools));
    }
    let body = serde_json::to_vec(&Value::Object(chat))
        .map_err(|e| refuse("body", format!("cannot be written: {e}")))?;
    Ok(Conversion {
        body,
        dropped_tools,
    })
}

/// The `input` string or item list as chat messages; the tools of `additional_tools` items
/// (where Codex's own models get their tools, instead of `tools`) go to `tools`.
fn input_messages(
    input: &Value,
    tools: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<Vec<Value>, ResponsesError> {
    let items = match input {
        Value::String(text) => return Ok(vec![json!({"role": "user", "content": text})]),
        Value::Array(items) => items,
        _ => return Err(refuse("input", "must be a string or a list of items")),
    };
    let mut messages: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("input[{i}].{field}");
        // Items without a type are messages (`{"role": "user", "content": "..."}`).
        let kind = item["type"].as_str().unwrap_or("message");
        match kind {
            "message" => messages.push(message(item, i)?),
            "function_call" | "custom_tool_call" => {
                let call_id = string_field(item, "call_id", &at("call_id"))?;
                let name = string_field(item, "name", &at("name"))?;
                let arguments = if kind == "custom_tool_call" {
                    json!({"input": item["input"].as_str().unwrap_or_default()}).to_string()
                } else {
                    item["arguments"].as_str().unwrap_or("{}").to_owned()
                };
                let call = json!({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                });
                push_tool_call(&mut messages, call);
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = string_field(item, "call_id", &at("call_id"))?;
                let output = tool_output(&item["output"], &at("output"))?;
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            "additional_tools" => chat_tools(&item["tools"], &at("tools"), tools, dropped)?,
            // Encrypted reasoning only OpenAI can read; the text already answered it.
            "reasoning" => {}
            other => {
                return Err(refuse(
                    at("type"),
                    format!(
                        "`{other}` items cannot be sent to a chat completions provider \
                         (supported: message, function_call, function_call_output, \
                         custom_tool_call, custom_tool_call_output, additional_tools, reasoning)"
                    ),
                ));
            }
        }
    }
    Ok(messages)
}

/// A tool call joins the assistant message before it, as chat puts all calls of a turn in one.
fn push_tool_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut()
        && last["role"] == "assistant"
    {
        if let Some(calls) = last["tool_calls"].as_array_mut() {
            calls.push(call);
        } else {
            last["tool_calls"] = json!([call]);
        }
        return;
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

fn message(item: &Value, i: usize) -> Result<Value, ResponsesError> {
    let role = match item["role"].as_str() {
        Some("user") => "user",
        Some("assistant") => "assistant",
        Some("system" | "developer") => "system",
        Some(other) => {
            return Err(refuse(
                format!("input[{i}].role"),
                format!("`{other}` is not a role (user, assistant, system, developer)"),
            ));
        }
        None => return Err(refuse(format!("input[{i}].role"), "is required")),
    };
    let content = match &item["content"] {
        Value::String(text) => Value::String(text.clone()),
        Value::Array(parts) => content_parts(parts, i, role)?,
        _ => {
            return Err(refuse(
                format!("input[{i}].content"),
                "must be a string or a list of content parts",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// Content parts as chat content: a plain string when all of it is text (what every chat
/// provider takes, and the only form assistant and system messages may have everywhere).
fn content_parts(parts: &[Value], i: usize, role: &str) -> Result<Value, ResponsesError> {
    let mut chat_parts = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = |field: &str| format!("input[{i}].content[{j}].{field}");
        match part["type"].as_str() {
            Some("input_text" | "output_text" | "text" | "summary_text") => {
                chat_parts.push(
                    json!({"type": "text", "text": part["text"].as_str().unwrap_or_default()}),
                );
            }
            Some("refusal") => {
                chat_parts.push(
                    json!({"type": "text", "text": part["refusal"].as_str().unwrap_or_default()}),
                );
            }
            Some("input_image") if role == "user" => {
                let Some(url) = part["image_url"].as_str() else {
                    return Err(refuse(
                        at("image_url"),
                        "images must be given by URL or data URL (`file_id` images are stored at \
                         OpenAI only)",
                    ));
                };
                let mut image = json!({"url": url});
                if let Some(detail) = part["detail"].as_str() {
                    image["detail"] = json!(detail);
                }
                chat_parts.push(json!({"type": "image_url", "image_url": image}));
            }
            Some(other) => {
                return Err(refuse(
                    at("type"),
                    format!(
                        "`{other}` content cannot be sent to a chat completions provider in a \
                         {role} message (supported: input_text, output_text, refusal, and \
                         input_image from the user)"
                    ),
                ));
            }
            None => return Err(refuse(at("type"), "is required")),
        }
    }
    let all_text = chat_parts.iter().all(|p| p["type"] == "text");
    if all_text {
        let text: Vec<&str> = chat_parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect();
        return Ok(Value::String(text.join("\n")));
    }
    Ok(Value::Array(chat_parts))
}

/// A tool's output: a string, or text parts joined.
fn tool_output(output: &Value, at: &str) -> Result<String, ResponsesError> {
    match output {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut text = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match part["type"].as_str() {
                    Some("input_text" | "output_text" | "text") => {
                        text.push(part["text"].as_str().unwrap_or_default());
                    }
                    other => {
                        return Err(refuse(
                            format!("{at}[{j}].type"),
                            format!(
                                "`{}` tool output cannot be sent to a chat completions provider \
                                 (text only)",
                                other.unwrap_or("(none)")
                            ),
                        ));
                    }
                }
            }
            Ok(text.join("\n"))
        }
        Value::Null => Ok(String::new()),
        other => Ok(other.to_string()),
    }
}

fn string_field<'a>(item: &'a Value, key: &str, at: &str) -> Result<&'a str, ResponsesError> {
    item[key]
        .as_str()
        .ok_or_else(|| refuse(at, "is required (a string)"))
}

/// The `tools` list (or an `additional_tools` item's, `at` saying where) as chat functions,
/// appended to `out`.
fn chat_tools(
    tools: &Value,
    at: &str,
    out: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ResponsesError> {
    let Some(list) = tools.as_array() else {
        return if tools.is_null() {
            Ok(())
        } else {
            Err(refuse(at, "must be a list"))
        };
    };
    for (i, tool) in list.iter().enumerate() {
        chat_tool(tool, &format!("{at}[{i}]"), out, dropped)?;
    }
    Ok(())
}

/// One tool as chat functions: a namespace gives each of its tools (Codex puts freeform ones
/// there too), by their own names.
fn chat_tool(
    tool: &Value,
    at: &str,
    out: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ResponsesError> {
    match tool["type"].as_str() {
        Some("function") => out.push(function_tool(tool, at)?),
        Some("custom") => {
            let name = string_field(tool, "name", &format!("{at}.name"))?;
            let mut description = tool["description"].as_str().unwrap_or_default().to_owned();
            if let Some(grammar) = tool["format"]["definition"].as_str() {
                description.push_str("\n\nThe input follows this grammar:\n");
                description.push_str(grammar);
            }
            out.push(json!({"type": "function", "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": "The tool's input, verbatim."}},
                    "required": ["input"],
                },
            }}));
        }
        Some("namespace") => {
            for (j, inner) in tool["tools"].as_array().into_iter().flatten().enumerate() {
                let inner_at = format!("{at}.tools[{j}]");
                if inner["type"].as_str() == Some("namespace") {
                    return Err(refuse(
                        format!("{inner_at}.type"),
                        "a namespace inside a namespace cannot be sent to a chat completions provider",
                    ));
                }
                chat_tool(inner, &inner_at, out, dropped)?;
            }
        }
        Some(kind) if DROPPABLE_TOOLS.contains(&kind) => dropped.push(kind.to_owned()),
        Some(other) => {
            return Err(refuse(
                format!("{at}.type"),
                format!(
                    "`{other}` tools cannot be sent to a chat completions provider \
                     (supported: function, custom, namespace; web_search is left out)"
                ),
            ));
        }
        None => return Err(refuse(format!("{at}.type"), "is required")),
    }
    Ok(())
}

fn function_tool(tool: &Value, at: &str) -> Result<Value, ResponsesError> {
    let name = string_field(tool, "name", &format!("{at}.name"))?;
    let mut function = json!({"name": name});
    for key in ["description", "parameters", "strict"] {
        if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
            function[key] = value.clone();
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

fn tool_choice(choice: &Value) -> Result<Value, ResponsesError> {
    match choice {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => {
            Ok(choice.clone())
        }
        Value::Object(_) if matches!(choice["type"].as_str(), Some("function" | "custom")) => {
            let name = string_field(choice, "name", "tool_choice.name")?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(refuse(
            "tool_choice",
            "must be auto, none, required or a function by name for a chat completions provider",
        )),
    }
}

fn response_format(format: &Value) -> Result<Option<Value>, ResponsesError> {
    match format["type"].as_str() {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = json!({
                "name": format["name"].as_str().unwrap_or("response"),
                "schema": format["schema"],
            });
            for key in ["strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema[key] = value.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(refuse(
            "text.format.type",
            format!("`{other}` is not a format (text, json_object, json_schema)"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn chat(request: Value) -> Value {
        let out = request_to_chat(request.to_string().as_bytes()).expect("translates");
        serde_json::from_slice(&out.body).expect("json")
    }

    fn refused(request: Value) -> ResponsesError {
        request_to_chat(request.to_string().as_bytes()).expect_err("refused")
    }

    #[test]
    fn a_string_input_with_instructions_is_a_system_and_a_user_message() {
        let out = chat(json!({
            "model": "m", "instructions": "Be brief.", "input": "hi",
            "max_output_tokens": 50, "stream": true, "store": false,
            "reasoning": {"effort": "low", "summary": "auto"},
        }));
        assert_eq!(
            out,
            json!({
                "model": "m", "stream": true, "max_tokens": 50, "reasoning_effort": "low",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
            })
        );
    }

    #[test]
    fn a_tool_round_trip_becomes_an_assistant_call_and_a_tool_message() {
        let out = chat(json!({
            "model": "m",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
                {"type": "reasoning", "id": "rs_1", "encrypted_content": "xyz", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
                {"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{\"d\":\".\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "pwd", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "/"}]},
            ],
        }));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "system", "content": "rules"},
                {"role": "user", "content": "a\nb"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{\"d\":\".\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "pwd", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
                {"role": "tool", "tool_call_id": "call_2", "content": "/"},
            ])
        );
    }

    #[test]
    fn tools_of_every_kind_codex_sends_become_functions() {
        let request = json!({
            "model": "m", "input": "go", "tool_choice": "auto",
            "tools": [
                {"type": "function", "name": "exec", "description": "run", "strict": false,
                 "parameters": {"type": "object", "properties": {}}},
                {"type": "namespace", "name": "agents", "description": "sub-agents",
                 "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]},
                {"type": "custom", "name": "apply_patch", "description": "Patch files.",
                 "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
                {"type": "web_search", "external_web_access": false},
            ],
        });
        let conversion = request_to_chat(request.to_string().as_bytes()).expect("translates");
        assert_eq!(conversion.dropped_tools, vec!["web_search"]);
        let out: Value = serde_json::from_slice(&conversion.body).expect("json");
        let names: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["function"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["exec", "spawn", "apply_patch"]);
        assert_eq!(out["tool_choice"], "auto");
        assert!(
            out["tools"][2]["function"]["description"]
                .as_str()
                .expect("description")
                .ends_with("start: x")
        );
        let kinds = ToolKinds::of_request(request.to_string().as_bytes());
        assert!(kinds.is_custom("apply_patch") && !kinds.is_custom("exec"));
        assert_eq!(kinds.namespace_of("spawn"), Some("agents"));
    }

    /// Codex 0.171's default model (`gpt-6.2-sol`) sends no `tools`: its tools come as an
    /// `additional_tools` input item, freeform `exec` inside the `functions` namespace (the
    /// shape captured from `codex exec`, descriptions cut short).
    #[test]
    fn additional_tools_items_become_functions() {
        let request = json!({
            "model": "gpt-6.2-sol", "stream": true, "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "low", "context": "all_turns"},
            "text": {"verbosity": "low"},
            "input": [
                {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": [
                    {"type": "namespace", "name": "functions", "description": "", "tools": [
                        {"type": "custom", "name": "exec", "description": "Run JavaScript.",
                         "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
                        {"type": "function", "name": "wait", "description": "Waits.", "strict": false,
                         "parameters": {"type": "object", "properties": {"cell_id": {"type": "string"}}}},
                    ]},
                    {"type": "namespace", "name": "clock", "description": "Time.", "tools": [
                        {"type": "function", "name": "sleep", "strict": false,
                         "parameters": {"type": "object"}},
                    ]},
                ]},
                {"type": "message", "id": "msg_1", "role": "developer",
                 "content": [{"type": "input_text", "text": "You are Codex."}]},
                {"type": "message", "id": "msg_2", "role": "user",
                 "content": [{"type": "input_text", "text": "Say hi"}]},
            ],
        });
        let out = chat(request.clone());
        let names: Vec<&str> = out["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["function"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["exec", "wait", "sleep"]);
        assert_eq!(
            out["tools"][0]["function"]["parameters"]["required"],
            json!(["input"])
        );
        assert_eq!(
            out["messages"],
            json!([
                {"role": "system", "content": "You are Codex."},
                {"role": "user", "content": "Say hi"},
            ])
        );
        let kinds = ToolKinds::of_request(request.to_string().as_bytes());
        assert!(kinds.is_custom("exec") && !kinds.is_custom("wait"));
        assert_eq!(kinds.namespace_of("exec"), Some("functions"));
        assert_eq!(kinds.namespace_of("sleep"), Some("clock"));

        // Both lists at once: all of them, and a bad one is named by where it is.
        let out = chat(
            json!({"model": "m", "tools": [{"type": "function", "name": "top"}],
            "input": [{"type": "additional_tools", "role": "developer",
                       "tools": [{"type": "function", "name": "extra"}]}, {"role": "user", "content": "x"}]}),
        );
        assert_eq!(out["tools"].as_array().map(Vec::len), Some(2));
        let e = refused(
            json!({"model": "m", "input": [{"role": "user", "content": "x"},
            {"type": "additional_tools", "role": "developer", "tools": [{"type": "file_search"}]}]}),
        );
        assert_eq!(e.field, "input[1].tools[0].type");
    }

    #[test]
    fn json_schema_output_becomes_a_response_format() {
        let out = chat(json!({
            "model": "m", "input": "x",
            "text": {"format": {"type": "json_schema", "name": "pt", "strict": true,
                     "schema": {"type": "object"}}},
        }));
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "pt", "strict": true, "schema": {"type": "object"}}})
        );
    }

    #[test]
    fn what_chat_cannot_carry_is_refused_by_field() {
        let e = refused(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}));
        assert_eq!(e.field, "input[0].type");
        assert!(e.message.contains("item_reference"), "{e}");
        let e = refused(json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]}));
        assert_eq!(e.field, "tools[0].type");
        let e = refused(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}));
        assert_eq!(e.field, "previous_response_id");
        let e = refused(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "f"}]}]}));
        assert_eq!(e.field, "input[0].content[0].type");
        let e = refused(json!({"model": "m"}));
        assert_eq!(e.field, "input");
    }
}
