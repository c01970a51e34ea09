//! PURE reply and request rewrites inherited from SmolRouter, switched on per config: strip
//! `<think>` blocks, unwrap a Markdown-fenced JSON reply, append `/no_think` to the prompt.
//!
//! Replies are rewritten whole (`apply_to_response`) or chunk by chunk (`StreamTransform`), with
//! the same result: a tag split across chunks is still stripped, and text is held back only while
//! it may still be part of a tag. Think stripping runs first, then the JSON fence. Only the content
//! strings are spliced into the original bytes; everything else is forwarded as it came.

pub mod json_fence;
pub mod no_think;
mod stream;
pub mod think;

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use self::json_fence::FenceStripper;
pub use self::stream::{ChunkOut, StreamTransform};
use self::think::ThinkStripper;

/// Which rewrites are on, for one route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transforms {
    /// Remove `<think>…</think>` reasoning blocks from replies.
    pub strip_thinking: bool,
    /// Turn a reply that is a single ```json fenced block into the raw JSON.
    pub unwrap_json_fence: bool,
    /// Append `/no_think` to the last user message of requests.
    pub disable_thinking: bool,
}

impl Transforms {
    /// Whether replies may be rewritten at all (callers skip the work when not).
    pub fn any_on_response(&self) -> bool {
        self.strip_thinking || self.unwrap_json_fence
    }

    /// Rewrites one whole reply text. None when it stays as it is.
    pub fn apply_to_text(&self, text: &str) -> Option<String> {
        let stripped = self.strip_thinking.then(|| think::strip(text)).flatten();
        let base = stripped.as_deref().unwrap_or(text);
        let unwrapped = self.unwrap_json_fence.then(|| json_fence::unwrap(base));
        unwrapped.flatten().map(str::to_owned).or(stripped)
    }

    /// Rewrites a whole OpenAI chat.completion JSON body: each choice's string `message.content`
    /// goes through `apply_to_text`. None when nothing changed (the caller forwards the original
    /// bytes), including bodies it cannot read.
    pub fn apply_to_response(&self, openai_body: &[u8]) -> Option<Vec<u8>> {
        if !self.any_on_response() {
            return None;
        }
        let response: ResponsePeek<'_> = serde_json::from_slice(openai_body).ok()?;
        let mut pieces = Vec::new();
        for content in response
            .choices
            .iter()
            .filter_map(|c| c.message.as_ref()?.content)
        {
            let Some(new) = decode_str(content).and_then(|old| self.apply_to_text(&old)) else {
                continue;
            };
            pieces.push((span_in(openai_body, content)?, json_string(&new)?));
        }
        (!pieces.is_empty()).then(|| splice(openai_body, pieces))
    }

    /// Request side: appends " /no_think" to the last user message's text when
    /// `disable_thinking` is on. None when off, unchanged or not applicable.
    pub fn apply_to_request(&self, openai_body: &[u8]) -> Option<Vec<u8>> {
        if !self.disable_thinking {
            return None;
        }
        no_think::append_no_think(openai_body)
    }

    /// Fresh state for one streamed reply.
    pub fn stream(&self) -> StreamTransform {
        StreamTransform::new(*self)
    }
}

/// The streaming rewrites of one choice's text, chained in order.
#[derive(Debug, Clone)]
struct TextPipeline {
    think: Option<ThinkStripper>,
    fence: Option<FenceStripper>,
}

impl TextPipeline {
    fn new(transforms: Transforms) -> Self {
        Self {
            think: transforms.strip_thinking.then(ThinkStripper::default),
            fence: transforms.unwrap_json_fence.then(FenceStripper::default),
        }
    }

    fn push(&mut self, delta: &str, out: &mut String) {
        match (&mut self.think, &mut self.fence) {
            (Some(think), Some(fence)) => {
                let mut middle = String::new();
                think.push(delta, &mut middle);
                fence.push(&middle, out);
            }
            (Some(think), None) => think.push(delta, out),
            (None, Some(fence)) => fence.push(delta, out),
            (None, None) => out.push_str(delta),
        }
    }

    fn finish(&mut self, out: &mut String) {
        let mut middle = String::new();
        if let Some(think) = &mut self.think {
            think.finish(&mut middle);
        }
        match &mut self.fence {
            Some(fence) => {
                fence.push(&middle, out);
                fence.finish(out);
            }
            None => out.push_str(&middle),
        }
    }

    fn is_holding(&self) -> bool {
        self.think.as_ref().is_some_and(ThinkStripper::is_holding)
            || self.fence.as_ref().is_some_and(FenceStripper::is_holding)
    }
}

#[derive(Deserialize)]
struct ResponsePeek<'a> {
    #[serde(default, borrow)]
    choices: Vec<MessageChoicePeek<'a>>,
}

#[derive(Deserialize)]
struct MessageChoicePeek<'a> {
    #[serde(default, borrow)]
    message: Option<ContentPeek<'a>>,
}

#[derive(Deserialize)]
struct ContentPeek<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// The text of a JSON string value, borrowed when it has no escapes. None for other values.
fn decode_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let json = raw.get();
    if !json.starts_with('"') {
        return None;
    }
    if json.contains('\\') {
        serde_json::from_str::<String>(json).ok().map(Cow::Owned)
    } else {
        json.get(1..json.len() - 1).map(Cow::Borrowed)
    }
}

fn json_string(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 2);
    serde_json::to_writer(&mut out, text).ok()?;
    Some(out)
}

/// Where a value borrowed from `body` (by a borrowing parse of it) sits in it.
fn span_in(body: &[u8], raw: &RawValue) -> Option<Range<usize>> {
    let json = raw.get().as_bytes();
    let start = (json.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let span = start..start + json.len();
    (body.get(span.clone())? == json).then_some(span)
}

/// Replaces the given non-overlapping ranges of `src`.
fn splice(src: &[u8], mut pieces: Vec<(Range<usize>, Vec<u8>)>) -> Vec<u8> {
    pieces.sort_by_key(|(range, _)| range.start);
    let extra: usize = pieces.iter().map(|(_, bytes)| bytes.len()).sum();
    let mut out = Vec::with_capacity(src.len() + extra);
    let mut at = 0;
    for (range, bytes) in pieces {
        out.extend_from_slice(&src[at..range.start]);
        out.extend_from_slice(&bytes);
        at = range.end;
    }
    out.extend_from_slice(&src[at..]);
    out
}

#[cfg(test)]
pub(crate) mod test_support {
    /// Every way to cut `text` into two and three pieces at char boundaries (pieces may be empty).
    pub fn splits(text: &str) -> Vec<Vec<&str>> {
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let mut out = Vec::new();
        for (n, &i) in cuts.iter().enumerate() {
            out.push(vec![&text[..i], &text[i..]]);
            for &j in &cuts[n..] {
                out.push(vec![&text[..i], &text[i..j], &text[j..]]);
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ALL: Transforms = Transforms {
        strip_thinking: true,
        unwrap_json_fence: true,
        disable_thinking: true,
    };
    const THINK: Transforms = Transforms {
        strip_thinking: true,
        unwrap_json_fence: false,
        disable_thinking: false,
    };
    const FENCE: Transforms = Transforms {
        strip_thinking: false,
        unwrap_json_fence: true,
        disable_thinking: false,
    };

    #[test]
    fn text_rewrites_run_think_first_then_the_fence() {
        let fenced_thought = "<think>plan</think>\n\n```json\n{\"a\":1}\n```";
        let cases: &[(Transforms, &str, Option<&str>)] = &[
            (ALL, fenced_thought, Some("{\"a\":1}")),
            (THINK, fenced_thought, Some("```json\n{\"a\":1}\n```")),
            (FENCE, fenced_thought, None),
            (FENCE, "```json\n[1]\n```", Some("[1]")),
            (ALL, "plain", None),
            (Transforms::default(), "<think>x</think>y", None),
        ];
        for (transforms, text, want) in cases {
            assert_eq!(transforms.apply_to_text(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn whole_responses_splice_only_the_content() {
        let body = br#"{"id":"r","choices":[{"index":0,"message":{"role":"assistant","content":"<think>hm\n</think>\n\nHi \"you\"\n"},"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":null,"tool_calls":[]}},{"index":2,"message":{"content":"untouched"}}],"usage":{"prompt_tokens":1}}"#;
        let out = ALL.apply_to_response(body).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"id":"r","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"you\"\n"},"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":null,"tool_calls":[]}},{"index":2,"message":{"content":"untouched"}}],"usage":{"prompt_tokens":1}}"#
        );
    }

    #[test]
    fn whole_responses_left_alone_give_none() {
        let cases: &[(Transforms, &[u8])] = &[
            (ALL, br#"{"choices":[{"message":{"content":"plain"}}]}"#),
            (
                ALL,
                br#"{"choices":[{"message":{"content":[{"type":"text"}]}}]}"#,
            ),
            (ALL, br#"{"choices":[]}"#),
            (ALL, b"not json"),
            (
                Transforms {
                    disable_thinking: true,
                    ..Transforms::default()
                },
                br#"{"choices":[{"message":{"content":"<think>x</think>"}}]}"#,
            ),
        ];
        for (transforms, body) in cases {
            assert_eq!(transforms.apply_to_response(body), None);
        }
        let fenced = br#"{"choices":[{"message":{"content":"```json\n{\"k\":\"\u00e9\"}\n```"}}]}"#;
        let out = FENCE.apply_to_response(fenced).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "{\"k\":\"é\"}");
    }

    #[test]
    fn requests_get_no_think_only_when_asked() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(THINK.apply_to_request(body), None);
        assert_eq!(
            ALL.apply_to_request(body).unwrap(),
            br#"{"messages":[{"role":"user","content":"hi /no_think"}]}"#
        );
        assert!(!Transforms::default().any_on_response());
        assert!(FENCE.any_on_response());
    }
}
