//! A JSON array's elements, newest first, found by scanning back from its end: the loop breaker
//! reads only a conversation's newest turn (a message or three), and finding it this way costs
//! what those messages weigh, not what the whole history does (an agent's is 100 KiB to 1 MiB,
//! which a forward pass walks every byte of).
//!
//! The text must be a value serde_json or `wire::skim` has already taken: going backwards, a
//! quote is told from an escaped one by the backslashes before it, which holds only in valid
//! JSON. On text that is not such an array the scan says so ([`Malformed`]) instead of guessing.

/// The scan found text that is not a checked JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The elements of a checked JSON array's text, last first.
pub struct NewestFirst<'a> {
    text: &'a str,
    state: State,
}

#[derive(Clone, Copy)]
enum State {
    /// The next element ends at or before this index; `after_comma`: one must come.
    Reading {
        end: usize,
        after_comma: bool,
    },
    /// The text is no array: said once, then nothing.
    NoArray,
    Done,
}

/// The elements of `array`, newest first.
pub fn newest_first(array: &str) -> NewestFirst<'_> {
    let b = array.as_bytes();
    let end = skip_ws_back(b, b.len());
    let state = if end > 0 && b[end - 1] == b']' {
        State::Reading {
            end: end - 1,
            after_comma: false,
        }
    } else {
        State::NoArray
    };
    NewestFirst { text: array, state }
}

impl<'a> Iterator for NewestFirst<'a> {
    type Item = Result<&'a str, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let (end, after_comma) = match self.state {
            State::Reading { end, after_comma } => (end, after_comma),
            State::NoArray => {
                self.state = State::Done;
                return Some(Err(Malformed));
            }
            State::Done => return None,
        };
        // Whatever follows, this call ends the scan unless it finds an element and its comma.
        self.state = State::Done;
        let b = self.text.as_bytes();
        let end = skip_ws_back(b, end);
        if end > 0 && b[end - 1] == b'[' {
            // The opening bracket: nothing before it, and no comma just after it.
            let clean = skip_ws_back(b, end - 1) == 0 && !after_comma;
            return (!clean).then_some(Err(Malformed));
        }
        let Some(start) = value_start(b, end) else {
            return Some(Err(Malformed));
        };
        let before = skip_ws_back(b, start);
        match before.checked_sub(1).map(|i| b[i]) {
            Some(b',') => {
                self.state = State::Reading {
                    end: before - 1,
                    after_comma: true,
                }
            }
            Some(b'[') => {
                self.state = State::Reading {
                    end: before,
                    after_comma: false,
                }
            }
            _ => return Some(Err(Malformed)),
        }
        // Only ASCII structural characters end or start a value, so both are char boundaries;
        // checked all the same rather than trusted.
        match self.text.get(start..end) {
            Some(element) => Some(Ok(element)),
            None => {
                self.state = State::Done;
                Some(Err(Malformed))
            }
        }
    }
}

/// Back over JSON whitespace from `end` (exclusive).
fn skip_ws_back(b: &[u8], mut end: usize) -> usize {
    while end > 0 && matches!(b[end - 1], b' ' | b'\n' | b'\t' | b'\r') {
        end -= 1;
    }
    end
}

/// Where the value ending just before `end` starts.
fn value_start(b: &[u8], end: usize) -> Option<usize> {
    let last = end.checked_sub(1)?;
    match b[last] {
        b'"' => string_start(b, last),
        b'}' | b']' => container_start(b, last),
        // A number or a literal: back to what precedes it.
        _ => {
            let start = b[..end]
                .iter()
                .rposition(|c| matches!(c, b',' | b'[' | b':' | b' ' | b'\n' | b'\t' | b'\r'))
                .map_or(0, |i| i + 1);
            (start < end).then_some(start)
        }
    }
}

/// The opening quote of the string whose closing quote is at `close`: the nearest quote before
/// it that an even number of backslashes precedes (an odd number escapes it).
fn string_start(b: &[u8], close: usize) -> Option<usize> {
    let mut j = close;
    loop {
        let quote = memchr::memrchr(b'"', &b[..j])?;
        let backslashes = b[..quote].iter().rev().take_while(|&&c| c == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(quote);
        }
        j = quote;
    }
}

/// The opening bracket of the array or object whose closing bracket is at `close`, strings
/// stepped over whole.
fn container_start(b: &[u8], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = close;
    loop {
        match b[i] {
            b'"' => i = string_start(b, i)?,
            b'}' | b']' => depth += 1,
            b'{' | b'[' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i = i.checked_sub(1)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{Malformed, newest_first};

    fn back(array: &str) -> Result<Vec<&str>, Malformed> {
        let mut out: Vec<&str> = newest_first(array).collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    #[test]
    fn reads_what_a_forward_pass_reads() {
        let arrays = [
            "[]",
            " [ ] ",
            "[1]",
            "[1,-2.5e3 , true,null,false]",
            r#"["a\"b", "c\\", "\\\"", "", "]", "[", "{"]"#,
            r#"[{"role":"user","content":"say \"hi\\\" [x] {y}"},{"a":[1,[2,{"b":"}"}]]}]"#,
            "[\n  {\"k\": \"\\u00e9\\\\\"} ,\n  [ ] ,{} \n]\n",
        ];
        for array in arrays {
            let forward: Vec<&serde_json::value::RawValue> = serde_json::from_str(array)
                .unwrap_or_else(|e| panic!("not an array ({e}): {array}"));
            let forward: Vec<&str> = forward.iter().map(|v| v.get()).collect();
            assert_eq!(back(array), Ok(forward), "{array}");
        }
    }

    #[test]
    fn says_so_on_what_is_no_array() {
        for text in ["", "{}", "[1", "1]", "x[1]", "[,1]", "[1,]", "[1 2]"] {
            assert_eq!(back(text), Err(Malformed), "{text:?}");
        }
    }

    #[test]
    fn stops_where_it_is_asked_to() {
        let array = r#"[{"role":"user","content":"old"},{"role":"assistant"},{"role":"user","content":"new"}]"#;
        let mut newest = newest_first(array);
        assert_eq!(
            newest.next(),
            Some(Ok(r#"{"role":"user","content":"new"}"#))
        );
        assert_eq!(newest.next(), Some(Ok(r#"{"role":"assistant"}"#)));
    }
}
