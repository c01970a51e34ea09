//! How deeply a JSON body nests, found without parsing it.
//!
//! serde_json refuses to build values with 128 or more arrays and objects nested, but the request
//! views skip nested values (`RawValue`) without that limit. A deeper body would pass the first
//! parse and fail later, when a translation or a rewrite builds a value from it, as a server
//! error. Checking the depth up front makes it the client's error it is.

/// Deepest nesting of arrays and objects that a request may have: what serde_json parses.
pub const MAX_DEPTH: usize = 127;

/// Whether `body`, read as JSON, opens more than `max` arrays or objects inside one another.
/// Brackets inside strings do not count. Malformed JSON is left to the parser: this only
/// counts.
pub fn nests_deeper_than(body: &[u8], max: usize) -> bool {
    // Cheap bound first: the depth can never exceed the number of opening brackets.
    if memchr::memchr2_iter(b'[', b'{', body).nth(max).is_none() {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                // Jump to the closing quote, stepping over escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[i..]) {
                        Some(at) if body[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at;
                            break;
                        }
                        None => return false,
                    }
                    if i >= body.len() {
                        return false;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("{{\"a\":{}1{}}}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn counts_arrays_and_objects_outside_strings() {
        // The object itself is one level.
        assert!(!nests_deeper_than(nested(126).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(nested(127).as_bytes(), MAX_DEPTH));
        assert!(nests_deeper_than(nested(5000).as_bytes(), MAX_DEPTH));
        let in_string = format!("{{\"a\":\"{}\"}}", "[{".repeat(1000));
        assert!(!nests_deeper_than(in_string.as_bytes(), MAX_DEPTH));
        let escaped = format!("{{\"a\":\"\\\"{}\\\\\"}}", "[".repeat(1000));
        assert!(!nests_deeper_than(escaped.as_bytes(), MAX_DEPTH));
        let after_escape = format!(
            "{{\"a\":\"x\\\\\",\"b\":{}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(nests_deeper_than(after_escape.as_bytes(), MAX_DEPTH));
        assert!(!nests_deeper_than(b"{\"a\":\"unterminated [[[", 2));
        assert!(!nests_deeper_than(b"", 0));
    }

    #[test]
    fn agrees_with_serde_json() {
        for n in [126, 127, 128, 129] {
            let body = nested(n);
            let parsed = serde_json::from_str::<serde_json::Value>(&body);
            assert_eq!(
                nests_deeper_than(body.as_bytes(), MAX_DEPTH),
                parsed.is_err(),
                "{n}: {parsed:?}"
            );
        }
    }
}
