//! The cache key: a SHA-256 of a canonical JSON of everything that decides the answer, scoped to
//! a tenant. Pure: no I/O, no clock.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Bumped whenever what goes into the key changes, so old entries simply stop matching.
const KEY_VERSION: u64 = 1;

/// The fields of an OpenAI chat body that decide the answer. Everything else (`stream`,
/// `stream_options`, `user`, `metadata`, `store`, `service_tier`, unknown fields) is left out, so a
/// streamed and a non-streamed request share an entry.
const ANSWER_FIELDS: &[&str] = &[
    "messages",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
];

/// Canonical cache key: SHA-256 hex of a canonical JSON (sorted keys, no whitespace, numbers
/// normalized so that `1` and `1.0` hash the same) of the namespace (the tenant: client key name
/// or another session-independent id), the served model and the answer-deciding fields of the
/// OpenAI chat body. A field set to `null` counts as absent. Fails when the body is not a JSON
/// object.
pub fn cache_key(
    namespace: &str,
    served_model: &str,
    openai_body: &[u8],
) -> Result<String, serde_json::Error> {
    let body: Map<String, Value> = serde_json::from_slice(openai_body)?;
    let mut selected = Map::new();
    for field in ANSWER_FIELDS {
        if let Some(value) = body.get(*field).filter(|v| !v.is_null()) {
            selected.insert((*field).to_owned(), value.clone());
        }
    }
    let mut document = Map::new();
    document.insert("v".to_owned(), Value::from(KEY_VERSION));
    document.insert("namespace".to_owned(), Value::from(namespace));
    document.insert("model".to_owned(), Value::from(served_model));
    document.insert("body".to_owned(), Value::Object(selected));
    let canonical = canonical_json(&Value::Object(document));
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// Whether a request may use the cache at all: only single-choice requests (`n` absent, null or
/// 1) are, so a cached reply always answers exactly what was asked. Unparsable bodies are not.
pub fn cacheable(openai_body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct View {
        #[serde(default)]
        n: Option<serde_json::Number>,
    }
    match serde_json::from_slice::<View>(openai_body) {
        Ok(View { n: None }) => true,
        Ok(View { n: Some(n) }) => n.as_f64() == Some(1.0),
        Err(_) => false,
    }
}

/// Whether the client asked to skip the cache, from its (name, value) header pairs:
/// `x-smartproxy-cache: bypass` (or `off`), or `Cache-Control` with `no-cache` or `no-store`.
/// Names, values and directives compare case-insensitively.
pub fn bypass_requested<'a>(header_values: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    header_values.into_iter().any(|(name, value)| {
        if name.eq_ignore_ascii_case("x-smartproxy-cache") {
            let value = value.trim();
            value.eq_ignore_ascii_case("bypass") || value.eq_ignore_ascii_case("off")
        } else if name.eq_ignore_ascii_case("cache-control") {
            value.split(',').any(|directive| {
                // `no-cache="field"` is still a no-cache directive.
                let name = directive.split('=').next().unwrap_or("").trim();
                name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store")
            })
        } else {
            false
        }
    })
}

/// Serializes `value` with object keys sorted by their bytes, no whitespace, and numbers in one
/// form per value: integral numbers (up to 2^53, where f64 is exact) as integers, others in the
/// shortest form that round-trips.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn write_number(n: &serde_json::Number, out: &mut String) {
    use std::fmt::Write;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < EXACT {
            // Also folds -0.0 into 0.
            let _ = write!(out, "{}", f as i64);
        } else {
            let _ = write!(out, "{n}");
        }
    } else {
        let _ = write!(out, "{n}");
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's escaping is deterministic, so the same string always gives the same bytes.
    match serde_json::to_string(s) {
        Ok(escaped) => out.push_str(&escaped),
        Err(_) => out.push_str("null"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key(body: &str) -> String {
        cache_key("tenant", "gpt-4o-mini", body.as_bytes()).unwrap()
    }

    #[test]
    fn key_is_sha256_hex() {
        let k = key(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = key(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{"a":1,"b":2}}}]}"#,
        );
        let b = key(
            r#"{ "tools" : [ {"function":{"parameters":{"b":2,"a":1},"name":"f"},"type":"function"} ],
                "temperature": 0.2, "messages": [ {"content":"hi","role":"user"} ], "model": "m" }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn numbers_canonicalize() {
        let cases = [
            (
                r#"{"messages":[],"temperature":1}"#,
                r#"{"messages":[],"temperature":1.0}"#,
            ),
            (
                r#"{"messages":[],"max_tokens":100}"#,
                r#"{"messages":[],"max_tokens":1e2}"#,
            ),
            (
                r#"{"messages":[],"top_p":0.5}"#,
                r#"{"messages":[],"top_p":5e-1}"#,
            ),
            (
                r#"{"messages":[],"seed":0}"#,
                r#"{"messages":[],"seed":-0.0}"#,
            ),
            (
                r#"{"messages":[],"logit_bias":{"50256":-100}}"#,
                r#"{"messages":[],"logit_bias":{"50256":-100.0}}"#,
            ),
        ];
        for (a, b) in cases {
            assert_eq!(key(a), key(b), "{a} vs {b}");
        }
        assert_ne!(
            key(r#"{"messages":[],"temperature":1}"#),
            key(r#"{"messages":[],"temperature":1.5}"#)
        );
        // A number and the string of it are different values.
        assert_ne!(
            key(r#"{"messages":[],"seed":1}"#),
            key(r#"{"messages":[],"seed":"1"}"#)
        );
    }

    #[test]
    fn canonical_json_is_sorted_and_compact() {
        let v: Value =
            serde_json::from_str(r#"{"b":[1.0,2.5,{"z":null,"a":"x\"y"}],"a":true}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":true,"b":[1,2.5,{"a":"x\"y","z":null}]}"#
        );
    }

    #[test]
    fn fields_that_do_not_decide_the_answer_are_ignored() {
        let base = key(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let noisy = key(
            r#"{"model":"other","messages":[{"role":"user","content":"hi"}],"stream":true,
                "stream_options":{"include_usage":true},"user":"u1","metadata":{"a":"b"},
                "store":true,"service_tier":"auto","temperature":null,"unknown_field":1}"#,
        );
        assert_eq!(base, noisy);
    }

    #[test]
    fn every_deciding_field_changes_the_key() {
        let base = key(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        for field in ANSWER_FIELDS.iter().filter(|f| **f != "messages") {
            let body = format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],"{field}":7}}"#);
            assert_ne!(key(&body), base, "{field}");
        }
        assert_ne!(
            key(r#"{"messages":[{"role":"user","content":"hi!"}]}"#),
            base
        );
    }

    #[test]
    fn namespace_and_model_change_the_key() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let a = cache_key("alice", "gpt-4o", body).unwrap();
        assert_ne!(a, cache_key("bob", "gpt-4o", body).unwrap());
        assert_ne!(a, cache_key("alice", "gpt-4o-mini", body).unwrap());
        assert_eq!(a, cache_key("alice", "gpt-4o", body).unwrap());
        // No ambiguity from joining the two strings.
        assert_ne!(
            cache_key("ab", "c", body).unwrap(),
            cache_key("a", "bc", body).unwrap()
        );
    }

    #[test]
    fn refuses_bodies_that_are_not_objects() {
        assert!(cache_key("t", "m", b"[1,2]").is_err());
        assert!(cache_key("t", "m", b"{not json").is_err());
    }

    #[test]
    fn only_single_choice_requests_are_cacheable() {
        for (body, expected) in [
            (r#"{"messages":[]}"#, true),
            (r#"{"messages":[],"n":null}"#, true),
            (r#"{"messages":[],"n":1}"#, true),
            (r#"{"messages":[],"n":1.0}"#, true),
            (r#"{"messages":[],"n":2}"#, false),
            (r#"{"messages":[],"n":0}"#, false),
            (r#"{"messages":[],"n":"1"}"#, false),
            ("not json", false),
        ] {
            assert_eq!(cacheable(body.as_bytes()), expected, "{body}");
        }
    }

    #[test]
    fn bypass_headers() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("X-Smartproxy-Cache", "BYPASS")], true),
            (&[("x-smartproxy-cache", " off ")], true),
            (&[("x-smartproxy-cache", "use")], false),
            (&[("Cache-Control", "No-Cache")], true),
            (&[("cache-control", "max-age=0, no-store")], true),
            (&[("cache-control", "no-cache=\"set-cookie\"")], true),
            (&[("cache-control", "max-age=60")], false),
            (&[("content-type", "no-cache")], false),
            (&[("accept", "*/*"), ("cache-control", "no-cache")], true),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                bypass_requested(headers.iter().copied()),
                *expected,
                "{headers:?}"
            );
        }
    }
}
