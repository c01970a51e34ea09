//! Removes `<think>…</think>` reasoning blocks from replies, whole or streamed.
//!
//! Both forms follow the same rules, so a stream's output joined equals the whole-reply result:
//! - every `<think>…</think>` block is removed together with the whitespace right after its
//!   `</think>` (models write `</think>\n\n` before the answer);
//! - a `<think>` that is never closed removes everything to the end;
//! - whitespace in front of a block at the very start goes too;
//! - inside a block only `</think>` ends it: blocks do not nest.
//!
//! Replies that begin inside a block without the opening tag (chat templates that put `<think>` in
//! the prompt) are left alone: a stream would have to hold the whole reply back on the chance that
//! a `</think>` comes later.

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// The whole-reply form. None when the text has no `<think>` (nothing to change).
pub fn strip(text: &str) -> Option<String> {
    let first = text.find(OPEN)?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut at = Some(first);
    let mut leading = true;
    while let Some(i) = at {
        let before = &rest[..i];
        if !(leading && before.trim_start().is_empty()) {
            out.push_str(before);
        }
        leading = false;
        let inside = &rest[i + OPEN.len()..];
        match inside.find(CLOSE) {
            Some(j) => rest = inside[j + CLOSE.len()..].trim_start(),
            None => {
                rest = "";
                break;
            }
        }
        at = rest.find(OPEN);
    }
    out.push_str(rest);
    Some(out)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace seen yet: that whitespace is held, as a block may follow it.
    #[default]
    Start,
    Outside,
    Inside,
    /// Just after `</think>`: whitespace is dropped until the answer starts.
    AfterClose,
}

/// The streaming form: feed text deltas in order, get back what can be emitted now.
///
/// Held back at any moment is at most a trailing partial tag (`<th`, `</thin`), plus, before
/// anything was emitted, the leading whitespace in front of it.
#[derive(Debug, Clone, Default)]
pub struct ThinkStripper {
    state: State,
    held: String,
}

impl ThinkStripper {
    /// Appends to `out` the part of `delta` (after what was held) that is decided.
    pub fn push(&mut self, delta: &str, out: &mut String) {
        if delta.is_empty() {
            return;
        }
        let joined;
        let mut rest = if self.held.is_empty() {
            delta
        } else {
            self.held.push_str(delta);
            joined = std::mem::take(&mut self.held);
            joined.as_str()
        };
        loop {
            match self.state {
                State::Start | State::Outside => {
                    let start = self.state == State::Start;
                    if let Some(i) = rest.find(OPEN) {
                        let before = &rest[..i];
                        if !(start && before.trim_start().is_empty()) {
                            out.push_str(before);
                        }
                        self.state = State::Inside;
                        rest = &rest[i + OPEN.len()..];
                        continue;
                    }
                    let (emit, hold) = rest.split_at(rest.len() - partial_tag(rest, OPEN));
                    if start && emit.trim_start().is_empty() {
                        self.held.push_str(rest);
                    } else {
                        out.push_str(emit);
                        self.held.push_str(hold);
                        self.state = State::Outside;
                    }
                    return;
                }
                State::Inside => {
                    if let Some(i) = rest.find(CLOSE) {
                        self.state = State::AfterClose;
                        rest = &rest[i + CLOSE.len()..];
                        continue;
                    }
                    self.held
                        .push_str(&rest[rest.len() - partial_tag(rest, CLOSE)..]);
                    return;
                }
                State::AfterClose => {
                    rest = rest.trim_start();
                    if rest.is_empty() {
                        return;
                    }
                    self.state = State::Outside;
                }
            }
        }
    }

    /// Ends the text: what was held outside a block was not a tag after all and goes out; a
    /// block left open is dropped. The stripper is then ready for a new text.
    pub fn finish(&mut self, out: &mut String) {
        if matches!(self.state, State::Start | State::Outside) {
            out.push_str(&self.held);
        }
        *self = Self::default();
    }

    /// Whether some text is held back waiting for the next delta.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }
}

/// Length of the longest proper prefix of `tag` that `text` ends with. Tags are ASCII, so the
/// split this gives is always on a char boundary.
fn partial_tag(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .find(|&k| text.ends_with(&tag[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::transform::test_support::splits;

    fn streamed(deltas: &[&str]) -> String {
        let mut s = ThinkStripper::default();
        let mut out = String::new();
        for d in deltas {
            s.push(d, &mut out);
        }
        s.finish(&mut out);
        out
    }

    const CASES: &[(&str, Option<&str>)] = &[
        ("plain answer", None),
        ("<think>hmm</think>\n\nThe answer", Some("The answer")),
        ("<think>\nstep 1\nstep 2\n</think>\n\n42", Some("42")),
        ("  \n<think>x</think>Hi", Some("Hi")),
        ("Hi <think>x</think>  there", Some("Hi there")),
        ("a<think>1</think>b<think>2</think>c", Some("abc")),
        ("<think>1</think>\n<think>2</think>\n\nc", Some("c")),
        ("answer <think>never closed", Some("answer ")),
        ("<think>only thinking", Some("")),
        ("<think>a<think>b</think>c</think>", Some("c</think>")),
        ("<thinking>is not a tag</thinking>", None),
        ("x < y and a <th", None),
        ("</think> stray close", None),
        ("  leading spaces kept", None),
        (
            "<think>日本語の思考</think>\n答え 🎉 <thin",
            Some("答え 🎉 <thin"),
        ),
        ("é<think>ü</think>ö", Some("éö")),
        ("<think></think>", Some("")),
        ("<think>x</think>   ", Some("")),
    ];

    #[test]
    fn whole_replies() {
        for (input, want) in CASES {
            assert_eq!(strip(input).as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn streams_split_anywhere_match_the_whole_reply() {
        for (input, want) in CASES {
            let want = want.unwrap_or(input);
            for parts in splits(input) {
                assert_eq!(streamed(&parts), want, "{parts:?}");
            }
        }
    }

    #[test]
    fn text_that_is_not_a_tag_is_held_no_longer_than_a_tag_prefix() {
        let text = "Use a<b and <t>, then </think> or <thinx> — 日本 <think";
        let mut s = ThinkStripper::default();
        let mut out = String::new();
        let mut fed = String::new();
        for ch in text.chars() {
            fed.push(ch);
            s.push(ch.encode_utf8(&mut [0; 4]), &mut out);
            let held = &fed[out.len()..];
            assert!(fed.starts_with(&out));
            assert!(
                held.is_empty() || OPEN.starts_with(held),
                "{fed:?} holds {held:?}"
            );
            assert!(held.len() < OPEN.len());
        }
        // At the start, whitespace waits with the tag prefix; a letter releases both.
        let mut s = ThinkStripper::default();
        let mut out = String::new();
        s.push(" \n<th", &mut out);
        assert_eq!(out, "");
        s.push("ey", &mut out);
        assert_eq!(out, " \n<they");
    }

    #[test]
    fn inside_a_block_only_a_close_prefix_is_held() {
        let mut s = ThinkStripper::default();
        let mut out = String::new();
        s.push("<think>long reasoning </thi", &mut out);
        assert_eq!(s.held, "</thi");
        s.push("s is not it", &mut out);
        assert!(!s.is_holding());
        s.push("</think>\n", &mut out);
        s.push("\nOK", &mut out);
        assert_eq!(out, "OK");
    }
}
