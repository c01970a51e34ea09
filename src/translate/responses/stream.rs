//! Chat completion chunks written as the Responses API's typed stream events, one chunk at a
//! time: `response.created`, then per output item `response.output_item.added`, its deltas
//! (`response.output_text.delta`, `response.function_call_arguments.delta`, ...) and its
//! `.done` events, and at the end `response.completed` (or `response.incomplete`) with usage.

use bytes::Bytes;
use serde_json::{Value, json};

use super::ToolKinds;
use super::response::{
    call_item, custom_input, message_item, output_text, reasoning_item, response_object, usage,
};
use crate::wire::sse;

/// One output item being written.
struct Item {
    /// The item as it will be in the final response (text and arguments grow as deltas come).
    value: Value,
    open: bool,
    kind: ItemKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Text,
    Reasoning,
    /// A tool call; `index`: its index among the chat chunk's `tool_calls`.
    Call {
        index: u64,
        custom: bool,
    },
}

/// The converter of one stream.
pub struct StreamToResponses {
    id: String,
    model: String,
    created: u64,
    kinds: ToolKinds,
    sequence: u64,
    started: bool,
    finished: bool,
    items: Vec<Item>,
    finish_reason: Option<String>,
    usage: Value,
}

impl StreamToResponses {
    /// `id`: the response id; `model`: the name the client asked for, until the provider names
    /// its own; `created`: Unix seconds.
    pub fn new(id: &str, model: &str, created: u64, kinds: ToolKinds) -> Self {
        Self {
            id: id.to_owned(),
            model: model.to_owned(),
            created,
            kinds,
            sequence: 0,
            started: false,
            finished: false,
            items: Vec::new(),
            finish_reason: None,
            usage: Value::Null,
        }
    }

    /// The events for one chat chunk payload (the `data:` of an SSE event).
    pub fn push(&mut self, payload: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        let Ok(chunk) = serde_json::from_slice::<Value>(payload) else {
            return out;
        };
        if self.finished {
            return out;
        }
        if let Some(model) = chunk["model"].as_str().filter(|m| !m.is_empty()) {
            model.clone_into(&mut self.model);
        }
        self.start(&mut out);
        if chunk["usage"].is_object() {
            self.usage = usage(&chunk["usage"]);
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(text) = delta["reasoning_content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            self.append(ItemKind::Reasoning, text, &mut out);
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.append(ItemKind::Text, text, &mut out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_call_delta(call, &mut out);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        out
    }

    /// The closing events: every open item done, then the final response with its usage.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.start(&mut out);
        for index in 0..self.items.len() {
            self.close(index, &mut out);
        }
        self.finished = true;
        let finish = self
            .finish_reason
            .clone()
            .unwrap_or_else(|| "stop".to_owned());
        let response = self.response(Some(&finish));
        let name = if response["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({"response": response}), &mut out);
        out
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response(None);
        self.emit(
            "response.created",
            json!({"response": response.clone()}),
            out,
        );
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn response(&self, finish: Option<&str>) -> Value {
        let output = if finish.is_some() {
            self.items.iter().map(|i| i.value.clone()).collect()
        } else {
            Vec::new()
        };
        let usage = if finish.is_some() {
            self.usage.clone()
        } else {
            Value::Null
        };
        response_object(&self.id, self.created, &self.model, finish, output, usage)
    }

    /// Text or reasoning text: into the open item of that kind, or a new one.
    fn append(&mut self, kind: ItemKind, text: &str, out: &mut Vec<Bytes>) {
        let open = self.items.iter().position(|i| i.open && i.kind == kind);
        let index = match open {
            Some(index) => index,
            None => {
                self.close_text_items(out);
                self.open(kind, out)
            }
        };
        let item_id = self.items[index].value["id"].clone();
        match kind {
            ItemKind::Reasoning => {
                push_str(&mut self.items[index].value["summary"][0]["text"], text);
                self.emit(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": text}),
                    out,
                );
            }
            _ => {
                push_str(&mut self.items[index].value["content"][0]["text"], text);
                self.emit(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
                    out,
                );
            }
        }
    }

    /// Closes the open text and reasoning items: a new item starts, and the client reads
    /// items in order.
    fn close_text_items(&mut self, out: &mut Vec<Bytes>) {
        for index in 0..self.items.len() {
            if matches!(self.items[index].kind, ItemKind::Text | ItemKind::Reasoning) {
                self.close(index, out);
            }
        }
    }

    fn open(&mut self, kind: ItemKind, out: &mut Vec<Bytes>) -> usize {
        let index = self.items.len();
        let (value, announced) = match kind {
            ItemKind::Reasoning => {
                let id = format!("rs_{}_{index}", self.id);
                let value = reasoning_item(&id, "");
                let mut announced = value.clone();
                announced["summary"] = json!([]);
                (value, announced)
            }
            _ => {
                let id = format!("msg_{}_{index}", self.id);
                let value = message_item(&id, "", "in_progress");
                let mut announced = value.clone();
                announced["content"] = json!([]);
                (value, announced)
            }
        };
        let item_id = value["id"].clone();
        self.items.push(Item {
            value,
            open: true,
            kind,
        });
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": announced}),
            out,
        );
        if kind == ItemKind::Reasoning {
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            );
        } else {
            self.emit(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": output_text("")}),
                out,
            );
        }
        index
    }

    fn tool_call_delta(&mut self, call: &Value, out: &mut Vec<Bytes>) {
        let chat_index = call["index"].as_u64().unwrap_or(0);
        let found = self
            .items
            .iter()
            .position(|i| matches!(i.kind, ItemKind::Call { index, .. } if index == chat_index));
        let index = match found {
            Some(index) => index,
            None => {
                self.close_text_items(out);
                let index = self.items.len();
                let name = call["function"]["name"].as_str().unwrap_or_default();
                let call_id = call["id"].as_str().unwrap_or_default();
                let custom = self.kinds.is_custom(name);
                let id = format!("fc_{}_{index}", self.id);
                let value = call_item(&id, call_id, name, "", &self.kinds, "in_progress");
                self.items.push(Item {
                    value: value.clone(),
                    open: true,
                    kind: ItemKind::Call {
                        index: chat_index,
                        custom,
                    },
                });
                self.emit(
                    "response.output_item.added",
                    json!({"output_index": index, "item": value}),
                    out,
                );
                index
            }
        };
        let Some(delta) = call["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let item = &mut self.items[index];
        match item.kind {
            // A freeform tool's input is unwrapped from the whole arguments at the end.
            ItemKind::Call { custom: true, .. } => push_str(&mut item.value["input"], delta),
            _ => {
                push_str(&mut item.value["arguments"], delta);
                let item_id = item.value["id"].clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({"item_id": item_id, "output_index": index, "delta": delta}),
                    out,
                );
            }
        }
    }

    fn close(&mut self, index: usize, out: &mut Vec<Bytes>) {
        let Some(item) = self.items.get_mut(index).filter(|i| i.open) else {
            return;
        };
        item.open = false;
        if item.value.get("status").is_some() {
            item.value["status"] = json!("completed");
        }
        let kind = item.kind;
        if let ItemKind::Call { custom: true, .. } = kind {
            let input = custom_input(item.value["input"].as_str().unwrap_or_default());
            item.value["input"] = json!(input);
        }
        let value = item.value.clone();
        let item_id = value["id"].clone();
        match kind {
            ItemKind::Text => {
                let part = value["content"][0].clone();
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": part["text"], "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part}),
                    out,
                );
            }
            ItemKind::Reasoning => {
                let part = value["summary"][0].clone();
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": part["text"]}),
                    out,
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": part}),
                    out,
                );
            }
            ItemKind::Call { custom: true, .. } => {
                self.emit(
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": item_id, "output_index": index, "delta": value["input"]}),
                    out,
                );
                self.emit(
                    "response.custom_tool_call_input.done",
                    json!({"item_id": item_id, "output_index": index, "input": value["input"]}),
                    out,
                );
            }
            ItemKind::Call { custom: false, .. } => {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": value["arguments"]}),
                    out,
                );
            }
        }
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": value}),
            out,
        );
    }

    fn emit(&mut self, name: &str, mut event: Value, out: &mut Vec<Bytes>) {
        event["type"] = json!(name);
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push(sse::named_event(name, event.to_string().as_bytes()));
    }
}

fn push_str(target: &mut Value, text: &str) {
    match target {
        Value::String(s) => s.push_str(text),
        other => *other = Value::String(text.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn events(out: &[Bytes]) -> Vec<(String, Value)> {
        out.iter()
            .map(|b| {
                let text = std::str::from_utf8(b).expect("utf8");
                let (head, data) = text.split_once("\ndata: ").expect("named event");
                let name = head.trim_start_matches("event: ").to_owned();
                let data: Value = serde_json::from_str(data.trim()).expect("json");
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> Vec<u8> {
        json!({"model": "up-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn text_then_a_tool_call_stream_as_typed_events_with_usage_at_the_end() {
        let mut conv = StreamToResponses::new("resp_x", "asked", 5, ToolKinds::default());
        let mut out = Vec::new();
        out.extend(conv.push(&chunk(json!({"role": "assistant", "content": "Hel"}), None)));
        out.extend(conv.push(&chunk(json!({"content": "lo"}), None)));
        out.extend(conv.push(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                   "function": {"name": "ls", "arguments": "{\"a\""}}]}),
            None,
        )));
        out.extend(conv.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            Some("tool_calls"),
        )));
        out.extend(conv.push(
            json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
                .to_string()
                .as_bytes(),
        ));
        out.extend(conv.finish());
        out.extend(conv.finish());
        let events = events(&out);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let sequence: Vec<u64> = events
            .iter()
            .map(|(_, e)| e["sequence_number"].as_u64().expect("n"))
            .collect();
        assert_eq!(sequence, (0..15).collect::<Vec<u64>>());
        assert_eq!(events[6].1["text"], "Hello");
        assert_eq!(events[12].1["arguments"], "{\"a\":1}");
        let done = &events[14].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["model"], "up-model");
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["output"][1]["call_id"], "call_1");
        assert_eq!(done["output"][1]["status"], "completed");
        assert_eq!(done["usage"]["input_tokens"], 9);
        assert_eq!(done["usage"]["output_tokens"], 3);
    }

    #[test]
    fn a_freeform_tool_call_comes_back_as_its_input() {
        let kinds = ToolKinds::of_request(
            json!({"tools": [{"type": "custom", "name": "apply_patch"}]})
                .to_string()
                .as_bytes(),
        );
        let mut conv = StreamToResponses::new("r", "m", 0, kinds);
        let mut out = conv.push(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** B"}}]}),
            None,
        ));
        out.extend(conv.push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "egin\"}"}}]}),
            Some("tool_calls"),
        )));
        out.extend(conv.finish());
        let events = events(&out);
        let done = &events.last().expect("event").1["response"];
        assert_eq!(done["output"][0]["type"], "custom_tool_call");
        assert_eq!(done["output"][0]["input"], "*** Begin");
        assert!(
            events
                .iter()
                .any(|(n, e)| n == "response.custom_tool_call_input.done"
                    && e["input"] == "*** Begin")
        );
    }

    #[test]
    fn a_reply_cut_at_the_cap_ends_incomplete() {
        let mut conv = StreamToResponses::new("r", "m", 0, ToolKinds::default());
        let mut out = conv.push(&chunk(json!({"content": "one"}), Some("length")));
        out.extend(conv.finish());
        let events = events(&out);
        let (name, last) = events.last().expect("event");
        assert_eq!(name, "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
}
