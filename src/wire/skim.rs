//! A JSON object's members in one quick pass: keys and the raw text of their values, the whole
//! body checked as serde_json checks it.
//!
//! A request view needs a few small fields (`model`, `stream`, caps), but serde_json reaches
//! them only by walking every token of the large ones (`messages`: an agent sends 100 KiB to
//! 1 MiB a turn), which was a third of the CPU of such a request. This pass only finds where
//! each value ends, skipping strings many bytes at a time, so the view parses only the small
//! fields.
//!
//! The contract: it accepts only bodies serde_json accepts, with the same values. Anything it
//! does not take (not an object, not valid JSON or UTF-8, a key with an escape, nesting deeper
//! than `MAX_DEPTH`) is `None`, and the caller parses with serde_json, which then says what is
//! wrong exactly as before. The fuzz target `wire_openai` holds it to that.

/// Nesting this pass follows; deeper bodies go to serde_json (whose own limit is 128). Within
/// what requests may nest (`depth::MAX_DEPTH`), so a body this pass takes needs no count.
const MAX_DEPTH: usize = 100;
const _: () = assert!(MAX_DEPTH <= super::depth::MAX_DEPTH);

/// The members of `body`, a JSON object, in order, as (key, value's JSON text). Duplicate keys
/// are all kept: the caller decides, as serde would, whether that is an error.
pub fn members(body: &[u8]) -> Option<Vec<(&str, &str)>> {
    let text = std::str::from_utf8(body).ok()?;
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key_end = string_end(b, i)?;
            let key = &text[i + 1..key_end - 1];
            if key.contains('\\') {
                return None;
            }
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_ws(b, i + 1);
            i = value_end(b, start, 1)?;
            out.push((key, &text[start..i]));
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(out)
}

/// For a view built from [`members`]: puts `value` in `slot`. `None`, so that the body goes to
/// serde_json, for a second value (serde refuses a duplicate field) or a missing one (a value
/// the field's type does not take).
pub fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value?);
            Some(())
        }
    }
}

/// A member's value as `T`; `None` where serde_json does not take it as one.
pub fn field<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Option<T> {
    serde_json::from_str(text).ok()
}

/// JSON whitespace, as serde_json takes it.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The end (one past) of the JSON value starting at `i`, which lies `depth` arrays or objects
/// deep.
fn value_end(b: &[u8], i: usize, depth: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' => container_end(b, i, depth, b'}', true),
        b'[' => container_end(b, i, depth, b']', false),
        b't' => literal_end(b, i, b"true"),
        b'f' => literal_end(b, i, b"false"),
        b'n' => literal_end(b, i, b"null"),
        b'-' | b'0'..=b'9' => number_end(b, i),
        _ => None,
    }
}

/// An object (`keyed`) or array opening at `i`, to one past its closing bracket.
fn container_end(b: &[u8], i: usize, depth: usize, close: u8, keyed: bool) -> Option<usize> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&close) {
        return Some(i + 1);
    }
    loop {
        if keyed {
            i = skip_ws(b, string_end(b, i)?);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
        }
        i = skip_ws(b, value_end(b, i, depth + 1)?);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            c if c == close => return Some(i + 1),
            _ => return None,
        }
    }
}

/// A string opening at `i` (which must be a quote), to one past its closing quote. As serde_json:
/// no control characters, and only the escapes JSON has (`\u` with four hex digits; which code
/// points they name is checked only where a string is read, not where it is skipped).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        let at = next_special(b, j)?;
        j = match b[at] {
            b'"' => return Some(at + 1),
            b'\\' => match *b.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at + 2,
                b'u' if b.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => at + 6,
                _ => return None,
            },
            // A control character.
            _ => return None,
        };
    }
}

/// The first quote, backslash or control character at or after `j`.
///
/// Code and tool output, most of what an agent sends, have an escape every few bytes, where a
/// `memchr` call per escape cost more than serde_json's whole walk: the first words are looked
/// at eight bytes at a time, a few instructions each with nothing to set up. Past them the
/// string is likely prose, and `memchr` (32 bytes at a time) finds its end faster.
fn next_special(b: &[u8], mut j: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    const WORDS_FIRST: usize = 4;
    // The high bit of every byte of `x` below `n` (n <= 128). A flag can spill into the bytes
    // above a flagged one, never below, so the lowest flag is exact.
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    for _ in 0..WORDS_FIRST {
        let Some(word) = b.get(j..j + 8) else {
            let at = b.get(j..)?.iter().position(|&c| is_special(c))?;
            return Some(j + at);
        };
        let x = u64::from_le_bytes(word.try_into().ok()?);
        let flags = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if flags != 0 {
            return Some(j + (flags.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    let end = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
    let run = &b[j..end];
    // No early exit, so that the compiler checks many bytes at a time.
    if run.iter().fold(false, |bad, &c| bad | (c < 0x20)) {
        return run.iter().position(|&c| c < 0x20).map(|at| j + at);
    }
    Some(end)
}

fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b.get(i..)?.starts_with(word).then_some(i + word.len())
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::members;

    fn agrees(body: &str) {
        let fast = members(body.as_bytes());
        let slow = serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok()
            && body.trim_start().starts_with('{');
        // Refusing is always allowed: serde_json then decides.
        if let Some(m) = fast {
            assert!(slow, "skim took what serde_json refuses: {body}");
            for (_, value) in m {
                serde_json::from_str::<&serde_json::value::RawValue>(value)
                    .unwrap_or_else(|e| panic!("{value:?} is not a value ({e}): {body}"));
            }
        }
    }

    #[test]
    fn takes_what_serde_json_takes() {
        for body in [
            r#"{}"#,
            r#" { "a" : 1 } "#,
            r#"{"model":"m","messages":[{"role":"user","content":"a \"b\" \\ c\n"}],"stream":true}"#,
            r#"{"a":[1,-2,3.5,-0.25e+10,0E3,true,false,null,{},[],{"b":[[]]}]}"#,
            r#"{"a":"\u00e9\ud83d\ude00 \/ \b\f\r\t"}"#,
            "{\"a\":\"caf\u{e9} \u{1f600}\"}",
            r#"{"a":1,"a":2}"#,
        ] {
            assert!(members(body.as_bytes()).is_some(), "{body}");
            agrees(body);
        }
        let m = members(br#"{"model":"m", "n": [1, {"x":"]"}] ,"s":"}"}"#);
        assert_eq!(
            m,
            Some(vec![
                ("model", r#""m""#),
                ("n", r#"[1, {"x":"]"}]"#),
                ("s", r#""}""#)
            ])
        );
    }

    #[test]
    fn finds_a_strings_end_wherever_it_falls() {
        // Every length up to past the word-at-a-time start, with an escape, a control character
        // or nothing at every place: the word checks, the `memchr` run and the tail all agree
        // with serde_json.
        for len in 0..90 {
            for at in 0..=len {
                for special in ["", "\\n", "\\\"", "\u{1}", "\u{1f}", "\u{7f}", "\u{e9}"] {
                    let mut text = "a".repeat(len);
                    text.insert_str(at, special);
                    let body = format!("{{\"k\":\"{text}\",\"n\":1}}");
                    agrees(&body);
                    let takes = serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok();
                    assert_eq!(members(body.as_bytes()).is_some(), takes, "{body:?}");
                }
            }
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for body in [
            "",
            "[]",
            "1",
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"x\q"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}}"#,
            r#"{"a":[1}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":1"b":2}"#,
        ] {
            assert!(members(body.as_bytes()).is_none(), "{body}");
            agrees(body);
        }
        // Not UTF-8.
        assert!(members(b"{\"a\":\"\xff\"}").is_none());
        // A key with an escape is left to serde_json, which decodes it.
        assert!(members(br#"{"mod\u0065l":"m"}"#).is_none());
        // Deeper than this pass follows.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(120), "]".repeat(120));
        assert!(members(deep.as_bytes()).is_none());
    }
}
