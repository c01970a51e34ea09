//! Turns a cached `chat.completion` into the SSE events a streaming client expects, so a stored
//! reply serves streamed requests too. Pure: the inverse of `assemble`.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::wire::sse::{DONE_EVENT, data_event};

/// Content is sent in pieces of at least this many bytes...
const MIN_PIECE: usize = 256;
/// ...and in at most this many pieces, so long replies do not become thousands of events.
const MAX_PIECES: usize = 16;

/// Turns a cached `chat.completion` JSON into the SSE events a streaming client expects, per
/// choice: a role chunk (carrying other message fields such as `refusal`), the content split into
/// a few pieces (or one), tool call deltas (a header with id and name, then the arguments), the
/// finish chunk; then a usage chunk when `include_usage` (and the reply has usage), then
/// `data: [DONE]`. Chunks use object `chat.completion.chunk` and the cached id, model, created and
/// system fingerprint; with `include_usage` every other chunk carries `"usage": null` as OpenAI's
/// do.
pub fn replay_as_sse(
    completion_json: &[u8],
    include_usage: bool,
) -> Result<Vec<Bytes>, serde_json::Error> {
    let completion: Map<String, Value> = serde_json::from_slice(completion_json)?;
    let mut header = Map::new();
    header.insert(
        "id".to_owned(),
        completion.get("id").cloned().unwrap_or(Value::from("")),
    );
    header.insert("object".to_owned(), Value::from("chat.completion.chunk"));
    header.insert(
        "created".to_owned(),
        completion.get("created").cloned().unwrap_or(Value::from(0)),
    );
    header.insert(
        "model".to_owned(),
        completion.get("model").cloned().unwrap_or(Value::from("")),
    );
    for field in ["system_fingerprint", "service_tier"] {
        if let Some(value) = completion.get(field).filter(|v| !v.is_null()) {
            header.insert(field.to_owned(), value.clone());
        }
    }
    let mut replay = Replay {
        header,
        include_usage,
        events: Vec::new(),
    };
    let empty = Vec::new();
    let choices = completion
        .get("choices")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (position, choice) in choices.iter().enumerate() {
        let index = choice
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        replay.choice(index, choice)?;
    }
    if include_usage && let Some(usage) = completion.get("usage").filter(|u| !u.is_null()) {
        let mut chunk = replay.header.clone();
        chunk.insert("choices".to_owned(), Value::Array(Vec::new()));
        chunk.insert("usage".to_owned(), usage.clone());
        replay.events.push(data_event(&serde_json::to_vec(&chunk)?));
    }
    replay.events.push(Bytes::from_static(DONE_EVENT));
    Ok(replay.events)
}

struct Replay {
    header: Map<String, Value>,
    include_usage: bool,
    events: Vec<Bytes>,
}

impl Replay {
    fn choice(&mut self, index: u64, choice: &Value) -> Result<(), serde_json::Error> {
        let no_message = Map::new();
        let message = choice
            .get("message")
            .and_then(Value::as_object)
            .unwrap_or(&no_message);
        // Logprobs ride on the first content chunk, or on the finish chunk when there is none.
        let mut logprobs = choice.get("logprobs").filter(|l| !l.is_null()).cloned();

        let mut role = Map::new();
        role.insert(
            "role".to_owned(),
            message
                .get("role")
                .cloned()
                .unwrap_or(Value::from("assistant")),
        );
        for (field, value) in message {
            if !matches!(
                field.as_str(),
                "role" | "content" | "tool_calls" | "function_call"
            ) {
                role.insert(field.clone(), value.clone());
            }
        }
        self.push(index, role, None, None)?;

        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                for piece in split_text(text) {
                    let delta = one("content", Value::from(piece));
                    self.push(index, delta, logprobs.take(), None)?;
                }
            }
            Some(other) => {
                self.push(index, one("content", other.clone()), logprobs.take(), None)?
            }
        }

        let calls = message.get("tool_calls").and_then(Value::as_array);
        for (position, call) in calls.into_iter().flatten().enumerate() {
            let function = call.get("function");
            let name = function.and_then(|f| f.get("name")).cloned();
            let arguments = function
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let head = serde_json::json!({
                "index": position,
                "id": call.get("id").cloned().unwrap_or(Value::from("")),
                "type": call.get("type").cloned().unwrap_or(Value::from("function")),
                "function": { "name": name.unwrap_or(Value::from("")), "arguments": "" },
            });
            self.push(
                index,
                one("tool_calls", Value::Array(vec![head])),
                None,
                None,
            )?;
            for piece in split_text(arguments) {
                let part =
                    serde_json::json!({ "index": position, "function": { "arguments": piece } });
                self.push(
                    index,
                    one("tool_calls", Value::Array(vec![part])),
                    None,
                    None,
                )?;
            }
        }

        if let Some(call) = message.get("function_call").filter(|c| !c.is_null()) {
            self.push(index, one("function_call", call.clone()), None, None)?;
        }

        let finish = choice
            .get("finish_reason")
            .cloned()
            .unwrap_or(Value::from("stop"));
        self.push(index, Map::new(), logprobs, Some(finish))
    }

    fn push(
        &mut self,
        index: u64,
        delta: Map<String, Value>,
        logprobs: Option<Value>,
        finish_reason: Option<Value>,
    ) -> Result<(), serde_json::Error> {
        let mut chunk = self.header.clone();
        chunk.insert(
            "choices".to_owned(),
            serde_json::json!([{
                "index": index,
                "delta": delta,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            }]),
        );
        if self.include_usage {
            chunk.insert("usage".to_owned(), Value::Null);
        }
        self.events.push(data_event(&serde_json::to_vec(&chunk)?));
        Ok(())
    }
}

fn one(field: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(field.to_owned(), value);
    map
}

/// Splits text into a few pieces at character boundaries; empty text is one empty piece, so that
/// an empty string survives the round trip.
fn split_text(text: &str) -> Vec<&str> {
    let size = MIN_PIECE.max(text.len().div_ceil(MAX_PIECES));
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > size {
        let mut cut = size;
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::cache::StreamAssembler;
    use crate::wire::sse::Decoder;

    /// Decodes the events with the proxy's own SSE decoder and reassembles them.
    fn round_trip(completion: &Value, include_usage: bool) -> (Vec<Value>, Value) {
        let events =
            replay_as_sse(&serde_json::to_vec(completion).unwrap(), include_usage).unwrap();
        let mut decoder = Decoder::new();
        for event in &events {
            decoder.push(event);
        }
        let mut assembler = StreamAssembler::new();
        let mut chunks = Vec::new();
        let mut saw_done = false;
        while let Some(event) = decoder.next_event() {
            assert!(!saw_done, "nothing after [DONE]");
            if event.is_done() {
                saw_done = true;
                continue;
            }
            chunks.push(serde_json::from_slice(&event.data).unwrap());
            assembler.push(&event.data);
        }
        assert!(saw_done);
        assert_eq!(decoder.buffered(), 0);
        let assembled = serde_json::from_slice(&assembler.finish().unwrap()).unwrap();
        (chunks, assembled)
    }

    fn text_completion(content: &str) -> Value {
        serde_json::json!({
            "id": "chatcmpl-9",
            "object": "chat.completion",
            "created": 1_700_000_123,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52,
                      "prompt_tokens_details": {"cached_tokens": 0}},
            "service_tier": "default",
            "system_fingerprint": "fp_x"
        })
    }

    #[test]
    fn replays_text_that_reassembles_to_the_same_completion() {
        let long = "Où est la bibliothèque? 🚀 ".repeat(300);
        for content in ["Hello!", "", long.as_str()] {
            let completion = text_completion(content);
            let (chunks, assembled) = round_trip(&completion, true);
            assert_eq!(assembled, completion, "content of {} bytes", content.len());
            for chunk in &chunks {
                assert_eq!(chunk["object"], "chat.completion.chunk");
                assert_eq!(chunk["id"], "chatcmpl-9");
                assert_eq!(chunk["created"], 1_700_000_123);
                assert_eq!(chunk["model"], "gpt-4o-mini-2024-07-18");
                assert!(chunk.get("usage").is_some(), "usage: null on every chunk");
            }
            let last = chunks.last().unwrap();
            assert_eq!(last["choices"], serde_json::json!([]));
            assert_eq!(last["usage"]["completion_tokens"], 40);
            assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        }
        let (chunks, _) = round_trip(&text_completion(&long), false);
        let content_chunks = chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"].is_string())
            .count();
        assert!(
            (2..=MAX_PIECES).contains(&content_chunks),
            "{content_chunks}"
        );
    }

    #[test]
    fn without_include_usage_there_is_no_usage_chunk() {
        let (chunks, assembled) = round_trip(&text_completion("hi"), false);
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        let mut expected = text_completion("hi");
        expected.as_object_mut().unwrap().remove("usage");
        assert_eq!(assembled, expected);
    }

    #[test]
    fn replays_tool_calls() {
        let args = format!(r#"{{"query":"{}"}}"#, "x".repeat(2000));
        let completion = serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": args}},
                    {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}
                ]},
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        });
        let (chunks, assembled) = round_trip(&completion, true);
        assert_eq!(assembled, completion);
        let first_call = chunks
            .iter()
            .find(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
            .unwrap();
        let head = &first_call["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(head["id"], "call_1");
        assert_eq!(head["function"]["name"], "search");
    }

    #[test]
    fn replays_logprobs_reasoning_and_several_choices() {
        let completion = serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "A", "reasoning_content": "why"},
                 "logprobs": {"content": [{"token": "A", "logprob": -0.5}], "refusal": null}, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": null, "refusal": "no"},
                 "logprobs": null, "finish_reason": "stop"}
            ]
        });
        let (_, assembled) = round_trip(&completion, false);
        assert_eq!(assembled, completion);
    }

    #[test]
    fn every_event_is_well_formed() {
        let events =
            replay_as_sse(&serde_json::to_vec(&text_completion("hi")).unwrap(), false).unwrap();
        for event in &events {
            assert!(event.starts_with(b"data: "));
            assert!(event.ends_with(b"\n\n"));
            assert_eq!(memchr::memchr_iter(b'\n', event).count(), 2);
        }
        assert_eq!(events.last().unwrap().as_ref(), DONE_EVENT);
        assert!(replay_as_sse(b"[]", false).is_err());
    }

    #[test]
    fn splits_text_at_character_boundaries() {
        let text = "é".repeat(1000);
        let pieces = split_text(&text);
        assert!(pieces.len() > 1 && pieces.len() <= MAX_PIECES);
        assert_eq!(pieces.concat(), text);
        assert_eq!(split_text(""), vec![""]);
        assert_eq!(split_text("short"), vec!["short"]);
    }
}
