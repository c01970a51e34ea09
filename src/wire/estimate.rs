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
    /// Adds text that continues what came before. ASCII is taken a run at a time (this runs
    /// on every request's prompt); other characters one by one.
    pub fn push(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !b.is_ascii() {
                let Some(ch) = text.get(i..).and_then(|rest| rest.chars().next()) else {
                    break;
                };
                self.push_char(ch);
                i += ch.len_utf8();
                continue;
            }
            let Some(run) = ascii_run(b) else {
                self.push_char(char::from(b));
                i += 1;
                continue;
            };
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii() && ascii_run(bytes[i]) == Some(run) {
                i += 1;
            }
            self.extend_run(run, (i - start) as u64);
        }
    }

    /// Adds the text of the string values in a piece of JSON (a delta's `"..."`, a tool call's
    /// argument fragment), continuing what came before.
    pub fn push_json(&mut self, raw: &str) {
        self.push_json_values(raw, false);
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

    /// The string values of `raw`, each its own text when `separate`; returns how many
    /// messages (`"role"` keys) it framed. Slices of `raw` are counted in place: only strings
    /// with escapes are decoded into a buffer.
    fn push_json_values(&mut self, raw: &str, separate: bool) -> u64 {
        let bytes = raw.as_bytes();
        let mut messages = 0;
        let mut key = "";
        let mut decoded = String::new();
        let mut i = 0;
        while let Some(quote) = memchr::memchr(b'"', bytes.get(i..).unwrap_or_default()) {
            let start = i + quote + 1;
            let (end, escaped) = string_end(bytes, start);
            i = (end + 1).min(bytes.len());
            let Some(content) = raw.get(start..end) else {
                continue;
            };
            let next = bytes[i..].iter().find(|b| !b.is_ascii_whitespace());
            if next == Some(&b':') {
                key = content;
                if key == "role" {
                    messages += 1;
                }
            } else if !NOT_TEXT.contains(&key) {
                if escaped {
                    decoded.clear();
                    decode_escapes(content, &mut decoded);
                    self.push(&decoded);
                } else {
                    self.push(content);
                }
                if separate {
                    self.close_run();
                }
            }
        }
        messages
    }

    fn push_char(&mut self, ch: char) {
        let run = match ch {
            'a'..='z' | 'A'..='Z' => Run::Word,
            '0'..='9' => Run::Digits,
            '\n' => Run::LineBreaks,
            ' ' | '\t' => Run::Spaces,
            _ if ch.is_ascii() => {
                self.close_run();
                if !ch.is_ascii_whitespace() {
                    self.symbols += 1;
                }
                return;
            }
            _ if is_cjk(ch) => {
                self.close_run();
                self.cjk += 1;
                return;
            }
            _ if ch.is_alphabetic() => {
                self.non_ascii_letters += 1;
                Run::Word
            }
            _ => {
                self.close_run();
                if !ch.is_whitespace() {
                    self.symbols += 1;
                }
                return;
            }
        };
        self.extend_run(run, 1);
    }

    fn extend_run(&mut self, run: Run, len: u64) {
        if run != self.run {
            self.close_run();
            self.run = run;
        }
        self.run_len += len;
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

/// The run an ASCII byte belongs to; `None` for symbols and other whitespace.
fn ascii_run(b: u8) -> Option<Run> {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Some(Run::Word),
        b'0'..=b'9' => Some(Run::Digits),
        b'\n' => Some(Run::LineBreaks),
        b' ' | b'\t' => Some(Run::Spaces),
        _ => None,
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
/// text, no tree built.
pub fn json_text_tokens(raw: &str) -> u64 {
    let mut counter = TextTokens::default();
    let messages = counter.push_json_values(raw, true);
    let framing = if messages > 0 {
        messages * PER_MESSAGE + REPLY_PRIMING
    } else {
        0
    };
    counter.tokens() + framing
}

/// Weight of a CJK character in a budget's reservation. The fitted weight (`PER_CJK`) runs
/// about 15% low on Chinese prose, and other tokenizers (Anthropic's, Llama's) spend about a
/// token a character: a reservation must not be short of what is then billed.
const RESERVE_PER_CJK: f64 = 1.0;

/// Margin on everything else in a reservation: the fit is within 15% on every case of the
/// corpus, so a prompt is rarely billed more than this over the estimate.
const RESERVE_MARGIN: f64 = 1.15;

/// An upper bound on the prompt tokens of a JSON request body, for a budget's reservation:
/// [`json_text_tokens`] with each script's estimate corrected upwards, so that a budget
/// fitted to its last cent is not overspent by a prompt billed above its estimate.
pub fn json_text_tokens_upper(raw: &str) -> u64 {
    let mut counter = TextTokens::default();
    let messages = counter.push_json_values(raw, true);
    let framing = if messages > 0 {
        messages * PER_MESSAGE + REPLY_PRIMING
    } else {
        0
    };
    let cjk = counter.cjk as f64;
    let rest = counter.tokens() as f64 - cjk * PER_CJK;
    (rest.max(0.0) * RESERVE_MARGIN + cjk * RESERVE_PER_CJK).ceil() as u64 + framing
}

/// What a request body asks for that is billed above its plain token prices: a budget
/// reserves at these prices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AskedPremiums {
    /// The top-level `service_tier` (`priority`, `flex`, ...), when there is one.
    pub service_tier: Option<String>,
    /// Prompt-cache breakpoints (`cache_control`): the prompt may be written to the cache.
    pub cache_writes: bool,
    /// Some breakpoint asks for a 1-hour lifetime (`"ttl": "1h"`), billed at the 1-hour price.
    pub cache_1h: bool,
}

/// Reads [`AskedPremiums`] from a request body. A search, not a parse: a stray match only
/// makes the reservation larger, and the reservation settles to the real cost.
pub fn asked_premiums(raw: &[u8]) -> AskedPremiums {
    let find = |needle: &[u8]| memchr::memmem::find(raw, needle).is_some();
    let cache_writes = find(b"\"cache_control\"");
    #[derive(serde::Deserialize)]
    struct Tier<'a> {
        #[serde(borrow, default)]
        service_tier: Option<std::borrow::Cow<'a, str>>,
    }
    let service_tier = find(b"\"service_tier\"")
        .then(|| serde_json::from_slice::<Tier<'_>>(raw).ok())
        .flatten()
        .and_then(|t| t.service_tier.map(|s| s.into_owned()));
    AskedPremiums {
        service_tier,
        cache_writes,
        cache_1h: cache_writes && find(b"\"1h\""),
    }
}

/// Where the JSON string starting at `start` (after its opening quote) ends (the index of its
/// closing quote, or the end of the input), and whether it has escapes.
fn string_end(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut escaped = false;
    let mut j = start;
    while let Some(k) = memchr::memchr2(b'"', b'\\', bytes.get(j..).unwrap_or_default()) {
        if bytes[j + k] == b'"' {
            return (j + k, escaped);
        }
        escaped = true;
        j += k + 2;
    }
    (bytes.len(), escaped)
}

/// A JSON string's content with its escapes decoded (bad escapes kept as they are: this only
/// estimates).
fn decode_escapes(content: &str, out: &mut String) {
    let mut chars = content.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(unicode_escape(&hex));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
}

/// The character of a `\uXXXX` escape's hex digits (a lone surrogate half counts as one
/// unknown character, which estimates the same).
fn unicode_escape(hex: &str) -> char {
    u32::from_str_radix(hex, 16)
        .ok()
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
    #[test]
    fn the_reservation_bound_covers_what_each_script_is_billed() {
        // 400 Chinese characters: the fit says about 260 tokens, tokenizers bill up to ~400.
        let chinese = "\u{4eca}\u{5929}\u{5929}\u{6c14}\u{5f88}\u{597d}".repeat(67);
        let body = format!(r#"{{"messages":[{{"role":"user","content":"{chinese}"}}]}}"#);
        let plain = json_text_tokens(&body);
        let upper = json_text_tokens_upper(&body);
        assert!(upper >= 402 && upper > plain, "{plain} -> {upper}");
        // English gets the fit's margin, not more.
        let english = r#"{"messages":[{"role":"user","content":"The quick brown fox jumps over the lazy dog."}]}"#;
        let (plain, upper) = (json_text_tokens(english), json_text_tokens_upper(english));
        assert!(
            upper >= plain && upper as f64 <= plain as f64 * 1.2 + 1.0,
            "{plain} -> {upper}"
        );
    }

    #[test]
    fn premiums_are_read_from_the_body() {
        let none = asked_premiums(br#"{"model":"gpt-4o","messages":[]}"#);
        assert_eq!(none, AskedPremiums::default());
        let priority =
            asked_premiums(br#"{"model":"gpt-4o","service_tier":"priority","messages":[]}"#);
        assert_eq!(priority.service_tier.as_deref(), Some("priority"));
        let cached = asked_premiums(
            br#"{"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}"#,
        );
        assert!(cached.cache_writes && cached.cache_1h);
        let five = asked_premiums(
            br#"{"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}"#,
        );
        assert!(five.cache_writes && !five.cache_1h);
    }

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
                let json = serde_json::to_string(text).unwrap();
                let name = format!("{} as JSON", case.name);
                check(&name, json_text_tokens(&json), case.tokens, &mut failures);
            }
            if let Some(messages) = &case.messages {
                let raw = serde_json::to_string(messages).unwrap();
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
        let with_image = r#"[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}]}]"#;
        // Four words and a question mark, one message's framing, the reply's priming.
        assert_eq!(
            json_text_tokens(with_image),
            text_tokens("What is this?") + 6
        );
        assert_eq!(
            json_text_tokens(r#""a \"quoted\" word\n""#),
            text_tokens("a \"quoted\" word\n")
        );
        assert_eq!(json_text_tokens(r#""\u4e2d\u6587""#), text_tokens("中文"));
    }
}
