//! The streaming side of the reply rewrites: one text pipeline per choice, fed each chunk's
//! `delta.content`, with the chunk's bytes spliced rather than re-serialized.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{TextPipeline, Transforms, decode_str, json_string, span_in, splice};

/// What to do with one SSE chunk payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkOut {
    /// Forward the original bytes.
    Unchanged,
    /// Forward these bytes instead.
    Rewritten(Vec<u8>),
    /// Send nothing: the chunk was left with nothing to say.
    Drop,
}

/// Per-stream state: one text pipeline per choice index, fed the content deltas in order.
#[derive(Debug, Clone)]
pub struct StreamTransform {
    transforms: Transforms,
    choices: Vec<(u64, TextPipeline)>,
}

impl StreamTransform {
    pub(super) fn new(transforms: Transforms) -> Self {
        Self {
            transforms,
            choices: Vec::new(),
        }
    }

    /// Transforms one OpenAI SSE chunk payload (the JSON after `data: `), rewriting each
    /// `choices[i].delta.content` to the text that can be sent now. A choice's `finish_reason`
    /// ends its text, so anything still held goes out in that chunk. Drop when the chunk is left
    /// with nothing to say (no content, no other delta field, no finish_reason, no usage).
    /// Chunks without content are not re-serialized, and usually not even parsed.
    pub fn push_chunk(&mut self, chunk: &[u8]) -> ChunkOut {
        if !self.transforms.any_on_response() {
            return ChunkOut::Unchanged;
        }
        let holding = self.choices.iter().any(|(_, p)| p.is_holding());
        if !holding && memchr::memmem::find(chunk, b"\"content\"").is_none() {
            return ChunkOut::Unchanged;
        }
        let Ok(peek) = serde_json::from_slice::<ChunkPeek<'_>>(chunk) else {
            return ChunkOut::Unchanged;
        };
        let mut edits = Vec::new();
        let mut silent = peek.usage.is_none();
        for (pos, choice) in peek.choices.iter().enumerate() {
            let fields: BTreeMap<Cow<'_, str>, &RawValue> = match choice.delta {
                Some(delta) => match serde_json::from_str(delta.get()) {
                    Ok(fields) => fields,
                    Err(_) => {
                        silent = false;
                        continue;
                    }
                },
                None => BTreeMap::new(),
            };
            let slot = fields.get("content").copied();
            let content = match slot.filter(|raw| raw.get() != "null") {
                Some(raw) => match decode_str(raw) {
                    Some(text) => Some(text),
                    None => {
                        silent = false;
                        continue;
                    }
                },
                None => None,
            };
            let finished = choice.finish_reason.is_some();
            let mut out = String::new();
            if content.is_some() || finished {
                let pipeline = self.pipeline(choice.index);
                pipeline.push(content.as_deref().unwrap_or(""), &mut out);
                if finished {
                    pipeline.finish(&mut out);
                }
            }
            let others = fields
                .iter()
                .any(|(key, value)| key != "content" && value.get() != "null");
            silent &= out.is_empty() && !finished && !others;
            if out != content.as_deref().unwrap_or("") {
                edits.push(Edit {
                    pos,
                    slot,
                    delta: choice.delta,
                    delta_is_empty: fields.is_empty(),
                    text: out,
                });
            }
        }
        if edits.is_empty() {
            ChunkOut::Unchanged
        } else if silent {
            ChunkOut::Drop
        } else {
            rewrite_chunk(chunk, &edits).map_or(ChunkOut::Unchanged, ChunkOut::Rewritten)
        }
    }

    /// Call when the stream ends (at `[DONE]` or a cut): text still held by choices that never
    /// sent a `finish_reason` (a lone "<thi" that never became a tag, an unclosed fence line),
    /// as one chunk payload shaped after `template_chunk` (id, model, created). None when
    /// nothing is held.
    pub fn flush(&mut self, template_chunk: &[u8]) -> Option<Vec<u8>> {
        let mut choices = Vec::new();
        for (index, pipeline) in &mut self.choices {
            let mut out = String::new();
            pipeline.finish(&mut out);
            if !out.is_empty() {
                choices.push(serde_json::json!({
                    "index": index, "delta": {"content": out}, "finish_reason": null
                }));
            }
        }
        if choices.is_empty() {
            return None;
        }
        let mut chunk: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(template_chunk).unwrap_or_default();
        chunk.remove("usage");
        chunk
            .entry("object")
            .or_insert_with(|| "chat.completion.chunk".into());
        chunk.insert("choices".to_owned(), choices.into());
        serde_json::to_vec(&chunk).ok()
    }

    fn pipeline(&mut self, index: u64) -> &mut TextPipeline {
        let pos = match self.choices.iter().position(|(i, _)| *i == index) {
            Some(pos) => pos,
            None => {
                let pipeline = TextPipeline::new(self.transforms);
                self.choices.push((index, pipeline));
                self.choices.len() - 1
            }
        };
        &mut self.choices[pos].1
    }
}

#[derive(Deserialize)]
struct ChunkPeek<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoicePeek<'a>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoicePeek<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default, borrow)]
    delta: Option<&'a RawValue>,
    #[serde(default, borrow)]
    finish_reason: Option<&'a RawValue>,
}

/// A new content text for the choice at `pos` of a chunk's `choices`.
struct Edit<'a> {
    pos: usize,
    /// The `content` value it replaces (string or null), if the delta had the key.
    slot: Option<&'a RawValue>,
    delta: Option<&'a RawValue>,
    delta_is_empty: bool,
    text: String,
}

/// Splices the edits into the chunk's bytes; re-serializes only a chunk without a `delta` object.
fn rewrite_chunk(chunk: &[u8], edits: &[Edit<'_>]) -> Option<Vec<u8>> {
    let mut pieces = Vec::with_capacity(edits.len());
    for edit in edits {
        let text = json_string(&edit.text)?;
        if let Some(slot) = edit.slot {
            pieces.push((span_in(chunk, slot)?, text));
            continue;
        }
        let delta = edit.delta.and_then(|d| span_in(chunk, d));
        match delta {
            Some(span) if chunk[span.start] == b'{' => {
                let mut field = b"\"content\":".to_vec();
                field.extend_from_slice(&text);
                if !edit.delta_is_empty {
                    field.push(b',');
                }
                pieces.push((span.start + 1..span.start + 1, field));
            }
            _ => return rewrite_by_value(chunk, edits),
        }
    }
    Some(splice(chunk, pieces))
}

fn rewrite_by_value(chunk: &[u8], edits: &[Edit<'_>]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(chunk).ok()?;
    for edit in edits {
        let choice = value
            .get_mut("choices")?
            .get_mut(edit.pos)?
            .as_object_mut()?;
        let delta = choice
            .entry("delta")
            .or_insert_with(|| serde_json::json!({}));
        if !delta.is_object() {
            *delta = serde_json::json!({});
        }
        delta
            .as_object_mut()?
            .insert("content".to_owned(), edit.text.clone().into());
    }
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::transform::test_support::splits;

    const BOTH: Transforms = Transforms {
        strip_thinking: true,
        unwrap_json_fence: true,
        disable_thinking: false,
    };

    fn chunk(index: u64, delta: serde_json::Value, finish: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]
        }))
        .unwrap()
    }

    fn rewritten(out: ChunkOut) -> String {
        match out {
            ChunkOut::Rewritten(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn content(index: u64, text: &str) -> Vec<u8> {
        chunk(index, json!({ "content": text }), None)
    }

    /// What a client receives: the chunks sent, after the transform.
    fn sent(stream: &mut StreamTransform, chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for c in chunks {
            match stream.push_chunk(c) {
                ChunkOut::Unchanged => out.push(c.clone()),
                ChunkOut::Rewritten(bytes) => out.push(bytes),
                ChunkOut::Drop => {}
            }
        }
        out.extend(stream.flush(&chunks[0]));
        out
    }

    fn text_of(chunks: &[Vec<u8>], index: u64) -> String {
        let mut text = String::new();
        for c in chunks {
            let v: serde_json::Value = serde_json::from_slice(c).unwrap();
            for choice in v["choices"].as_array().unwrap() {
                if choice["index"] == index {
                    text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
                }
            }
        }
        text
    }

    #[test]
    fn chunked_streams_match_the_whole_reply_at_every_split() {
        let inputs = [
            "<think>a\nb</think>\n\n```json\n{\"k\": \"日本\"}\n```",
            "  <think>x</think>Answer with a <b>tag</b> and <th",
            "```json\n[1, \"🎉\"]\n```",
            "no tags at all, é",
            "<think>never closed",
        ];
        for input in inputs {
            let want = BOTH
                .apply_to_text(input)
                .unwrap_or_else(|| input.to_owned());
            for parts in splits(input) {
                for end_with_finish in [true, false] {
                    let mut chunks = vec![chunk(0, json!({"role": "assistant"}), None)];
                    chunks.extend(parts.iter().map(|p| content(0, p)));
                    if end_with_finish {
                        chunks.push(chunk(0, json!({}), Some("stop")));
                    }
                    let out = sent(&mut BOTH.stream(), &chunks);
                    assert_eq!(text_of(&out, 0), want, "{parts:?}");
                }
            }
        }
    }

    #[test]
    fn choices_keep_separate_state() {
        let chunks = [
            content(0, "<thi"),
            content(1, "nk>visible"),
            serde_json::to_vec(&json!({"choices": [
                {"index": 0, "delta": {"content": "nk>hidden</think>zero"}, "finish_reason": null},
                {"index": 1, "delta": {"content": " one"}, "finish_reason": null},
            ]}))
            .unwrap(),
        ];
        let out = sent(&mut BOTH.stream(), &chunks);
        assert_eq!(text_of(&out, 0), "zero");
        assert_eq!(text_of(&out, 1), "nk>visible one");
    }

    #[test]
    fn chunks_without_content_pass_through_unchanged() {
        let tool = chunk(
            0,
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"content\""}}]}),
            None,
        );
        let mut stream = BOTH.stream();
        assert_eq!(stream.push_chunk(&tool), ChunkOut::Unchanged);
        // Also while text is held, and for usage chunks and role-only chunks.
        assert!(matches!(
            stream.push_chunk(&content(0, "a <th")),
            ChunkOut::Rewritten(_)
        ));
        assert_eq!(stream.push_chunk(&tool), ChunkOut::Unchanged);
        let usage = br#"{"choices":[],"usage":{"prompt_tokens":3}}"#;
        assert_eq!(stream.push_chunk(usage), ChunkOut::Unchanged);
        let role = chunk(0, json!({"role": "assistant", "content": ""}), None);
        assert_eq!(stream.push_chunk(&role), ChunkOut::Unchanged);
        assert_eq!(
            Transforms::default()
                .stream()
                .push_chunk(&content(0, "<think>")),
            ChunkOut::Unchanged
        );
    }

    #[test]
    fn chunks_left_empty_are_dropped_unless_they_say_something_else() {
        let mut stream = BOTH.stream();
        assert_eq!(
            stream.push_chunk(&content(0, "<think>plan")),
            ChunkOut::Drop
        );
        let role = chunk(0, json!({"role": "assistant", "content": "more"}), None);
        let emptied = chunk(0, json!({"role": "assistant", "content": ""}), None);
        assert_eq!(rewritten(stream.push_chunk(&role)).as_bytes(), emptied);
        let with_usage =
            br#"{"choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"total_tokens":1}}"#;
        assert_eq!(
            rewritten(stream.push_chunk(with_usage)),
            r#"{"choices":[{"index":0,"delta":{"content":""}}],"usage":{"total_tokens":1}}"#
        );
    }

    #[test]
    fn a_finish_reason_releases_what_was_held_in_that_chunk() {
        let mut stream = BOTH.stream();
        let out = rewritten(stream.push_chunk(&content(0, "x <thi")));
        assert_eq!(out.as_bytes(), content(0, "x "));
        let cases = [
            (
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"<thi"},"finish_reason":"stop"}]}"#,
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"role":null},"finish_reason":"stop"}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"<thi","role":null},"finish_reason":"stop"}]}"#,
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"<thi"},"finish_reason":"stop"}]}"#,
            ),
            (
                r#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#,
                r#"{"choices":[{"index":0,"finish_reason":"stop","delta":{"content":"<thi"}}]}"#,
            ),
        ];
        for (finish, want) in cases {
            let mut stream = BOTH.stream();
            stream.push_chunk(&content(0, "x <thi"));
            assert_eq!(rewritten(stream.push_chunk(finish.as_bytes())), want);
            assert_eq!(stream.flush(finish.as_bytes()), None);
        }
    }

    #[test]
    fn flush_sends_what_a_cut_stream_held() {
        let mut stream = BOTH.stream();
        stream.push_chunk(&content(0, "```"));
        stream.push_chunk(&content(1, "ok <"));
        let template =
            br#"{"id":"c","created":1,"model":"m","choices":[],"usage":{"total_tokens":1}}"#;
        let out = stream.flush(template).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "c");
        assert_eq!(v["object"], "chat.completion.chunk");
        assert!(v.get("usage").is_none());
        assert_eq!(v["choices"][0]["delta"]["content"], "```");
        assert_eq!(v["choices"][1]["index"], 1);
        assert_eq!(v["choices"][1]["delta"]["content"], "<");
        assert_eq!(stream.flush(template), None);
    }
}
