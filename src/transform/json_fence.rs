//! Unwraps JSON that a model fenced as Markdown ("```json\n{...}\n```") so clients that parse the
//! reply get the raw JSON, on whole replies and on streams.
//!
//! A fence qualifies when its info string is empty or `json` (any case), its body starts with `{`
//! or `[`, and the closing ``` stands on its own line. A whole reply must also be nothing but that
//! one block, with a body that parses. A stream cannot wait for that proof without holding the
//! whole reply, so once the opening line and a `{`/`[` are seen the opening goes and the body flows;
//! when the body then turns out not to be one JSON block (text after the closing fence, a fence
//! never closed), the stream's output still lacks the opening line where the whole reply would be
//! left as it was.

use serde::de::IgnoredAny;

const FENCE: &str = "```";

/// The whole-reply form: the JSON inside when `text` (trimmed) is a single qualifying block.
pub fn unwrap(text: &str) -> Option<&str> {
    let after = text.trim().strip_prefix(FENCE)?;
    let newline = after.find('\n')?;
    if !info_is_json(&after[..newline]) {
        return None;
    }
    let body = after[newline + 1..].strip_suffix(FENCE)?;
    let inner = body.trim_end();
    // The closing fence must start its own line (which also rules out a fourth backtick).
    if !body[inner.len()..].contains('\n') {
        return None;
    }
    let inner = inner.trim_start();
    if !inner.starts_with(['{', '[']) {
        return None;
    }
    serde_json::from_str::<IgnoredAny>(inner).ok()?;
    Some(inner)
}

fn info_is_json(info: &str) -> bool {
    let info = info.trim();
    info.is_empty() || info.eq_ignore_ascii_case("json")
}

/// Whether an info string still being streamed may turn out to be `json`.
fn info_may_be_json(info: &str) -> bool {
    let info = info.trim();
    "json"
        .get(..info.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(info))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Not yet known whether the text opens with a fence: everything so far is held.
    #[default]
    Opening,
    /// Inside the fence: text flows except a trailing candidate for the closing fence.
    Body,
    /// Not a fence: everything flows.
    Passthrough,
}

enum Opening {
    Undecided,
    NotFence,
    /// A fence whose body starts at this byte offset of the held text.
    Body(usize),
}

/// The streaming form: feed text deltas in order, get back what can be emitted now.
///
/// Held back at any moment: at the start, leading whitespace and the opening fence line until it
/// is complete and the body's first character is seen; in the body, trailing whitespace and a
/// closing fence on its own line (dropped if the text ends there).
#[derive(Debug, Clone, Default)]
pub struct FenceStripper {
    state: State,
    held: String,
}

impl FenceStripper {
    /// Appends to `out` the part of `delta` (after what was held) that is decided.
    pub fn push(&mut self, delta: &str, out: &mut String) {
        if delta.is_empty() {
            return;
        }
        match self.state {
            State::Passthrough => out.push_str(delta),
            State::Body => self.push_body(delta, out),
            State::Opening => {
                self.held.push_str(delta);
                match opening(&self.held) {
                    Opening::Undecided => {}
                    Opening::NotFence => {
                        out.push_str(&self.held);
                        self.held.clear();
                        self.state = State::Passthrough;
                    }
                    Opening::Body(start) => {
                        let held = std::mem::take(&mut self.held);
                        self.state = State::Body;
                        self.push_body(&held[start..], out);
                    }
                }
            }
        }
    }

    fn push_body(&mut self, delta: &str, out: &mut String) {
        let joined;
        let text = if self.held.is_empty() {
            delta
        } else {
            self.held.push_str(delta);
            joined = std::mem::take(&mut self.held);
            joined.as_str()
        };
        let (emit, hold) = text.split_at(closing_candidate(text));
        out.push_str(emit);
        self.held.push_str(hold);
    }

    /// Ends the text: a complete closing fence (and the whitespace around it) is dropped, anything
    /// else held goes out. The stripper is then ready for a new text.
    pub fn finish(&mut self, out: &mut String) {
        if !(self.state == State::Body && self.held.contains(FENCE)) {
            out.push_str(&self.held);
        }
        *self = Self::default();
    }

    /// Whether some text is held back waiting for the next delta.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }
}

fn opening(held: &str) -> Opening {
    let text = held.trim_start();
    let Some(after) = text.strip_prefix(FENCE) else {
        return if FENCE.starts_with(text) {
            Opening::Undecided
        } else {
            Opening::NotFence
        };
    };
    let Some(newline) = after.find('\n') else {
        return if info_may_be_json(after) {
            Opening::Undecided
        } else {
            Opening::NotFence
        };
    };
    if !info_is_json(&after[..newline]) {
        return Opening::NotFence;
    }
    let body = after[newline + 1..].trim_start();
    match body.chars().next() {
        None => Opening::Undecided,
        Some('{' | '[') => Opening::Body(held.len() - body.len()),
        Some(_) => Opening::NotFence,
    }
}

/// Where the part of `text` that may still turn out to end the body begins: trailing whitespace,
/// or whitespace holding a newline followed by up to three backticks (and, after three, more
/// whitespace). `text` always starts right after emitted non-whitespace, so the runs are whole.
fn closing_candidate(text: &str) -> usize {
    let end = text.trim_end().len();
    let before_ws = &text[..end];
    let ticks_start = before_ws.trim_end_matches('`').len();
    let ticks = end - ticks_start;
    if ticks == 0 || ticks > 3 || (ticks < 3 && end < text.len()) {
        return end;
    }
    let run_start = before_ws[..ticks_start].trim_end().len();
    if before_ws[run_start..ticks_start].contains('\n') {
        run_start
    } else {
        end
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::transform::test_support::splits;

    fn streamed(deltas: &[&str]) -> String {
        let mut s = FenceStripper::default();
        let mut out = String::new();
        for d in deltas {
            s.push(d, &mut out);
        }
        s.finish(&mut out);
        out
    }

    /// (input, whole-reply result); the stream gives the same for every one of these.
    const AGREEING: &[(&str, Option<&str>)] = &[
        ("```json\n{\"a\":1}\n```", Some("{\"a\":1}")),
        (
            "  ```JSON\r\n{\"a\": [1, 2]}\r\n```\n",
            Some("{\"a\": [1, 2]}"),
        ),
        ("```\n[1,2,3]\n```", Some("[1,2,3]")),
        (
            "```json\n\n  {\n  \"k\": \"日本 🎉\"\n}  \n\n```  ",
            Some("{\n  \"k\": \"日本 🎉\"\n}"),
        ),
        (
            "```json\n{\"md\": \"a ``` b\"}\n  ```",
            Some("{\"md\": \"a ``` b\"}"),
        ),
        ("plain text", None),
        ("{\"already\": true}", None),
        ("``not a fence``", None),
        ("```python\nprint(1)\n```", None),
        ("```jsonc\n{}\n```", None),
        ("```json\nnot json\n```", None),
        ("```\n\"a string\"\n```", None),
        ("```json\n```", None),
        ("Here you go:\n```json\n{}\n```", None),
        ("```json {}```", None),
        ("``", None),
        ("   ", None),
    ];

    #[test]
    fn whole_replies() {
        for (input, want) in AGREEING {
            assert_eq!(unwrap(input), *want, "{input:?}");
        }
    }

    #[test]
    fn streams_split_anywhere_match_the_whole_reply() {
        for (input, want) in AGREEING {
            let want = want.unwrap_or(input);
            for parts in splits(input) {
                assert_eq!(streamed(&parts), want, "{parts:?}");
            }
        }
    }

    #[test]
    fn streams_cannot_take_back_a_dropped_opening() {
        let cases = [
            (
                "```json\n{\"a\":1}\n```\nHope this helps",
                "{\"a\":1}\n```\nHope this helps",
            ),
            ("```json\n{\"a\":1", "{\"a\":1"),
            ("```json\n{oops}\n```", "{oops}"),
        ];
        for (input, streamed_out) in cases {
            assert_eq!(unwrap(input), None);
            assert_eq!(streamed(&[input]), streamed_out);
        }
    }

    #[test]
    fn holds_only_the_opening_line_and_a_closing_candidate() {
        let mut s = FenceStripper::default();
        let mut out = String::new();
        for d in ["\n``", "`js", "on\n"] {
            s.push(d, &mut out);
            assert_eq!(out, "");
        }
        s.push("{\"a\":", &mut out);
        assert_eq!(out, "{\"a\":");
        s.push(" 1", &mut out);
        assert_eq!(out, "{\"a\": 1");
        s.push("}\n", &mut out);
        assert_eq!(out, "{\"a\": 1}");
        s.push("``", &mut out);
        assert_eq!((out.as_str(), s.held.as_str()), ("{\"a\": 1}", "\n``"));
        s.push("`x", &mut out);
        assert_eq!(out, "{\"a\": 1}\n```x");
        // Not a fence: released at the first character that rules it out.
        let mut s = FenceStripper::default();
        let mut out = String::new();
        s.push("``", &mut out);
        s.push("`rust", &mut out);
        assert_eq!(out, "```rust");
        s.push("\nfn", &mut out);
        assert_eq!(out, "```rust\nfn");
    }

    #[test]
    fn closing_candidates() {
        let cases = [
            ("abc", 3),
            ("abc  ", 3),
            ("abc\n`", 3),
            ("abc\n```", 3),
            ("abc\n```\n", 3),
            ("abc ```", 7),
            ("abc\n````", 8),
            ("abc\n`` ", 6),
            ("\n``", 0),
        ];
        for (text, at) in cases {
            assert_eq!(closing_candidate(text), at, "{text:?}");
        }
    }
}
