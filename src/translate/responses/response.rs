//! A chat completion written as a Responses API `response` object, and the pieces the stream
//! converter shares: output items and usage.

use serde_json::{Value, json};

use super::ToolKinds;

/// Writes a whole chat completion as a Responses API response (`id`: the response id to use).
pub fn response_from_chat(body: &[u8], id: &str, kinds: &ToolKinds) -> Result<Vec<u8>, String> {
    let chat: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(reasoning) = message["reasoning_content"]
        .as_str()
        .filter(|r| !r.is_empty())
    {
        output.push(reasoning_item(&format!("rs_{id}"), reasoning));
    }
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        output.push(message_item(&format!("msg_{id}"), text, "completed"));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        output.push(call_item(
            &format!("fc_{id}_{i}"),
            call["id"].as_str().unwrap_or_default(),
            call["function"]["name"].as_str().unwrap_or_default(),
            call["function"]["arguments"].as_str().unwrap_or_default(),
            kinds,
            "completed",
        ));
    }
    let created = chat["created"].as_u64().unwrap_or(0);
    let model = chat["model"].as_str().unwrap_or_default();
    let response = response_object(
        id,
        created,
        model,
        choice["finish_reason"].as_str(),
        output,
        usage(&chat["usage"]),
    );
    serde_json::to_vec(&response).map_err(|e| e.to_string())
}

/// A `response` object; `finish`: the chat finish reason, `None` while in progress.
pub(super) fn response_object(
    id: &str,
    created: u64,
    model: &str,
    finish: Option<&str>,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    let incomplete = match finish {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    let status = match (finish, incomplete) {
        (None, _) => "in_progress",
        (Some(_), Some(_)) => "incomplete",
        (Some(_), None) => "completed",
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete.map(|reason| json!({"reason": reason})),
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "store": false,
        "usage": usage,
    })
}

pub(super) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    })
}

pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({
        "type": "reasoning",
        "id": id,
        "summary": [{"type": "summary_text", "text": text}],
    })
}

/// A tool call as the item the client declared: a `custom_tool_call` for freeform tools (its
/// `input` unwrapped from the function arguments smartproxy asked for), else a `function_call`;
/// either names the namespace the tool was declared in.
pub(super) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    kinds: &ToolKinds,
    status: &str,
) -> Value {
    let mut item = if kinds.is_custom(name) {
        json!({
            "type": "custom_tool_call",
            "id": id,
            "status": status,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
        })
    } else {
        json!({
            "type": "function_call",
            "id": id,
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        })
    };
    if let Some(space) = kinds.namespace_of(name) {
        item["namespace"] = json!(space);
    }
    item
}

/// The `input` of a freeform tool call from its function arguments (`{"input": "..."}`); the
/// arguments as they are when the model wrote something else.
pub(super) fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v["input"].as_str().map(str::to_owned))
        .unwrap_or_else(|| arguments.to_owned())
}

/// Chat usage as Responses usage (`null` when the provider sent none).
pub(super) fn usage(chat: &Value) -> Value {
    if !chat.is_object() {
        return Value::Null;
    }
    let input = chat["prompt_tokens"].as_u64().unwrap_or(0);
    let output = chat["completion_tokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": chat["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0),
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": chat["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0),
        },
        "total_tokens": chat["total_tokens"].as_u64().unwrap_or(input + output),
    })
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn text_tool_calls_and_usage_become_output_items() {
        let chat = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "claude-x",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Looking.",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "ls", "arguments": "{}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin\"}"}},
                ],
            }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                      "prompt_tokens_details": {"cached_tokens": 2}},
        });
        let kinds = ToolKinds::of_request(
            json!({"tools": [{"type": "custom", "name": "apply_patch"}]})
                .to_string()
                .as_bytes(),
        );
        let out = response_from_chat(chat.to_string().as_bytes(), "resp_1", &kinds).expect("ok");
        let out: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(out["status"], "completed");
        assert_eq!(out["model"], "claude-x");
        assert_eq!(out["output"][0]["content"][0]["text"], "Looking.");
        assert_eq!(out["output"][1]["type"], "function_call");
        assert_eq!(out["output"][1]["call_id"], "call_a");
        assert_eq!(out["output"][2]["type"], "custom_tool_call");
        assert_eq!(out["output"][2]["input"], "*** Begin");
        assert_eq!(out["usage"]["input_tokens"], 10);
        assert_eq!(out["usage"]["input_tokens_details"]["cached_tokens"], 2);
        assert_eq!(out["usage"]["output_tokens"], 4);
        assert_eq!(out["usage"]["total_tokens"], 14);
    }

    /// A call of a tool declared in an `additional_tools` namespace comes back as the kind
    /// declared, with its namespace (as Codex's default model declares `functions.exec`).
    #[test]
    fn calls_of_additional_tools_keep_their_kind_and_namespace() {
        let kinds = ToolKinds::of_request(
            json!({"input": [{"type": "additional_tools", "role": "developer", "tools": [
                {"type": "namespace", "name": "functions", "tools": [
                    {"type": "custom", "name": "exec"}, {"type": "function", "name": "wait"}]}]}]})
            .to_string()
            .as_bytes(),
        );
        let exec = call_item(
            "fc_1",
            "call_1",
            "exec",
            r#"{"input":"1+1"}"#,
            &kinds,
            "completed",
        );
        assert_eq!(
            exec,
            json!({"type": "custom_tool_call", "id": "fc_1", "status": "completed",
                   "call_id": "call_1", "name": "exec", "input": "1+1", "namespace": "functions"})
        );
        let wait = call_item("fc_2", "call_2", "wait", "{}", &kinds, "completed");
        assert_eq!(wait["type"], "function_call");
        assert_eq!(wait["namespace"], "functions");
    }

    #[test]
    fn a_reply_cut_at_the_cap_is_incomplete() {
        let chat = json!({"model": "m", "choices": [{"finish_reason": "length",
            "message": {"role": "assistant", "content": "one two"}}]});
        let out = response_from_chat(chat.to_string().as_bytes(), "r", &ToolKinds::default())
            .expect("ok");
        let out: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(out["status"], "incomplete");
        assert_eq!(out["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(out["usage"], Value::Null);
    }
}
