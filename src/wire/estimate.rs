//! Token estimates for when a provider reports no usage: text is counted by what it is made of
//! (words, long words, digit groups, CJK characters, punctuation, line breaks, indentation),
//! with weights fitted to OpenAI's `o200k_base` tokenizer over the corpus in
//! `testdata/estimates/` (within 15% on every case there). JSON bodies count the text of their
//! string values only: not keys, quotes, escapes, ids or base64 data.

/// Weights per feature, from a least-squares fit of relative error over the corpus.
const PER_WORD: f64 = 1.004;
const PER_LETTER_PAST_SIX: f64 = 0.209;
const PER_DIGIT_GROUP: f64 = 1.583;
const PER_CJK: f64 = 0.654;
const PER_SYMBOL: f64 = 0.529;
const PER_LINE_BREAK_RUN: f64 = 0.535;
const PER_INDENT_RUN: f64 = 0.712;
const PER_NON_ASCII_LETTER: f64 = 0.027;

/// Tokens a chat format spends on each message's framing, and on priming the reply (OpenAI's
/// published counting rule).
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// String values that are identifiers or data, not text the model reads as words.
const NOT_TEXT: &[&str] = &[
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "call_id",
    "model",
    "detail",
    "url",
    "data",
    "media_type",
    "signature",
    "encrypted_content",
    "status",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Run {
    #[default]
    None,
    Word,
    Digits,
    LineBreaks,
    Spaces,
}

/// A running estimate over text that may arrive in pieces (a stream's deltas): a word split
/// across two pieces counts once.
#[derive(Debug, Clone, Default)]
pub struct TextTokens {
    words: u64,
    letters_past_six: u64,
    digit_groups: u64,
    cjk: u64,
    symbols: u64,
    line_break_runs: u64,
    indent_runs: u64,
    non_ascii_letters: u64,
    run: Run,
    run_len: u64,
}

impl TextTokens {
    /// Adds text that continues what came before.
    pub fn push(&mut self, text: &str) {
        for ch in text.chars() {
            self.push_char(ch);
        }
    }

    /// Adds the text of the string values in a piece of JSON (a delta's `"..."`, a tool call's
    /// argument fragment), continuing what came before.
    pub fn push_json(&mut self, raw: &[u8]) {
        self.push_json_values(raw, false);
    }

    /// The string values of `raw`, each its own text when `separate`; returns how many
    /// messages (`"role"` keys) it framed.
    fn push_json_values(&mut self, raw: &[u8], separate: bool) -> u64 {
        let mut messages = 0;
        let mut text = String::new();
        let mut key = String::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] != b'"' {
                i += 1;
                continue;
            }
            text.clear();
            i = decode_string(&raw[i + 1..], &mut text) + i + 1;
            let next = raw[i..].iter().find(|b| !b.is_ascii_whitespace());
            if next == Some(&b':') {
                std::mem::swap(&mut key, &mut text);
                if key == "role" {
                    messages += 1;
                }
            } else if !NOT_TEXT.contains(&key.as_str()) {
                self.push(&text);
                if separate {
                    self.close_run();
                }
            }
        }
        messages
    }

    /// The estimate so far (at least 1 for any text).
    pub fn tokens(&self) -> u64 {
        let mut t = self.clone();
        t.close_run();
        let sum = t.words as f64 * PER_WORD
            + t.letters_past_six as f64 * PER_LETTER_PAST_SIX
            + t.digit_groups as f64 * PER_DIGIT_GROUP
            + t.cjk as f64 * PER_CJK
            + t.symbols as f64 * PER_SYMBOL
            + t.line_break_runs as f64 * PER_LINE_BREAK_RUN
            + t.indent_runs as f64 * PER_INDENT_RUN
            + t.non_ascii_letters as f64 * PER_NON_ASCII_LETTER;
        sum.round() as u64
    }

    fn push_char(&mut self, ch: char) {
        let run = if is_cjk(ch) {
            self.close_run();
            self.cjk += 1;
            return;
        } else if ch.is_alphabetic() {
            if !ch.is_ascii() {
                self.non_ascii_letters += 1;
            }
            Run::Word
        } else if ch.is_ascii_digit() {
            Run::Digits
        } else if ch == '\n' {
            Run::LineBreaks
        } else if ch == ' ' || ch == '\t' {
            Run::Spaces
        } else if ch.is_whitespace() {
            self.close_run();
            return;
        } else {
            self.close_run();
            self.symbols += 1;
            return;
        };
        if run != self.run {
            self.close_run();
            self.run = run;
        }
        self.run_len += 1;
    }

    fn close_run(&mut self) {
        let len = self.run_len;
        match self.run {
            Run::None => {}
            Run::Word => {
                self.words += 1;
                self.letters_past_six += len.saturating_sub(6);
            }
            Run::Digits => self.digit_groups += len.div_ceil(3),
            Run::LineBreaks => self.line_break_runs += 1,
            Run::Spaces if len > 1 => self.indent_runs += 1,
            Run::Spaces => {}
        }
        self.run = Run::None;
        self.run_len = 0;
    }
}

/// The estimated tokens of plain text.
pub fn text_tokens(text: &str) -> u64 {
    let mut counter = TextTokens::default();
    counter.push(text);
    counter.tokens()
}

/// The estimated tokens of a JSON value a model reads (a `messages` list, an `input`, a
/// `prompt`): the text of its string values, plus each message's framing. One pass over the
/// bytes, no tree built.
pub fn json_text_tokens(raw: &[u8]) -> u64 {
    let mut counter = TextTokens::default();
    let messages = counter.push_json_values(raw, true);
    let framing = if messages > 0 {
        messages * PER_MESSAGE + REPLY_PRIMING
    } else {
        0
    };
    counter.tokens() + framing
}

/// Decodes a JSON string's body (after its opening quote) into `out`; returns how many bytes
/// it took, closing quote included. Bad escapes are kept as they are: this only estimates.
fn decode_string(bytes: &[u8], out: &mut String) -> usize {
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                out.push_str(&String::from_utf8_lossy(&bytes[start..i]));
                return i + 1;
            }
            b'\\' if i + 1 < bytes.len() => {
                out.push_str(&String::from_utf8_lossy(&bytes[start..i]));
                let (ch, used) = match bytes[i + 1] {
                    b'n' => ('\n', 2),
                    b't' => ('\t', 2),
                    b'r' => ('\r', 2),
                    b'u' => (unicode_escape(&bytes[i + 2..]), 6),
                    other => (char::from(other), 2),
                };
                out.push(ch);
                i += used.min(bytes.len() - i);
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes[start..]));
    bytes.len()
}

/// The character of a `\uXXXX` escape's four hex digits (a lone surrogate half counts as one
/// unknown character, which estimates the same).
fn unicode_escape(hex: &[u8]) -> char {
    hex.get(..4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Chinese, Japanese and Korean script, where a token covers a character or two.
fn is_cjk(ch: char) -> bool {
    matches!(ch as u32,
        0x3000..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff
        | 0xff00..=0xffef)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        tokens: u64,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        messages: Option<serde_json::Value>,
    }

    fn corpus() -> Vec<Case> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/estimates/corpus.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn check(name: &str, estimate: u64, truth: u64, failures: &mut Vec<String>) {
        let error = (estimate as f64 - truth as f64) / truth as f64;
        if error.abs() > 0.15 {
            failures.push(format!(
                "{name}: {estimate} for {truth} ({:+.1}%)",
                error * 100.0
            ));
        }
    }

    /// Every case of the corpus, whole and streamed in small pieces, within 15% of its
    /// `o200k_base` count.
    #[test]
    fn estimates_are_within_15_percent_of_the_tokenizer() {
        let cases = corpus();
        assert!(cases.len() >= 80, "{}", cases.len());
        let mut failures = Vec::new();
        for case in &cases {
            if let Some(text) = &case.text {
                check(&case.name, text_tokens(text), case.tokens, &mut failures);
                // Streamed: pieces of 1 to 7 characters, as deltas come.
                let mut streamed = TextTokens::default();
                let chars: Vec<char> = text.chars().collect();
                for piece in chars.chunks(1 + case.tokens as usize % 7) {
                    streamed.push(&piece.iter().collect::<String>());
                }
                let name = format!("{} streamed", case.name);
                check(&name, streamed.tokens(), case.tokens, &mut failures);
                // As a JSON string (quotes and escapes are not text).
                let json = serde_json::to_vec(text).unwrap();
                let name = format!("{} as JSON", case.name);
                check(&name, json_text_tokens(&json), case.tokens, &mut failures);
            }
            if let Some(messages) = &case.messages {
                let raw = serde_json::to_vec(messages).unwrap();
                check(
                    &case.name,
                    json_text_tokens(&raw),
                    case.tokens,
                    &mut failures,
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn json_keys_ids_and_data_are_not_text() {
        let with_image = br#"[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}]}]"#;
        // Four words and a question mark, one message's framing, the reply's priming.
        assert_eq!(
            json_text_tokens(with_image),
            text_tokens("What is this?") + 6
        );
        assert_eq!(
            json_text_tokens(br#""a \"quoted\" word\n""#),
            text_tokens("a \"quoted\" word\n")
        );
        assert_eq!(json_text_tokens(br#""\u4e2d\u6587""#), text_tokens("中文"));
    }
}
