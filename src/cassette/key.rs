//! A recorded request's identity: its canonical form (what decides the answer, with what changes
//! from run to run left out), the key hashed from it, and where two requests first differ.
//! Pure: no I/O, no clock.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Top-level fields that change run to run without changing the answer: OpenAI's `user`,
/// `safety_identifier` and `prompt_cache_key`, Anthropic's `metadata.user_id` (Claude Code puts
/// its session id there), `stream_options`, request ids, Ollama's `keep_alive`.
const VOLATILE_FIELDS: &[&str] = &[
    "user",
    "metadata",
    "stream_options",
    "request_id",
    "safety_identifier",
    "prompt_cache_key",
    "store",
    "keep_alive",
];

/// Fields holding ids a client or provider makes up (tool call ids and what refers to them):
/// each distinct value becomes its order of first appearance, so the links between a tool call
/// and its result still count but the random ids do not.
const ID_FIELDS: &[&str] = &["id", "tool_call_id", "tool_use_id", "call_id"];

/// What replaces a redaction pattern's match, in requests and replies alike.
pub const REDACTED: &str = "[REDACTED]";

/// The request as the cassette stores it: the client's JSON body with `patterns` replaced in
/// every string (so secrets and machine-specific text never reach the file and two machines'
/// requests still match). A body that is not JSON is kept as a string.
pub fn redact_request(body: &[u8], patterns: &[Regex]) -> Value {
    let mut value = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    redact_strings(&mut value, patterns);
    value
}

/// `text` with every match of `patterns` replaced by [`REDACTED`].
pub fn redact_text(text: &str, patterns: &[Regex]) -> String {
    let mut out = text.to_owned();
    for pattern in patterns {
        if pattern.is_match(&out) {
            out = pattern.replace_all(&out, REDACTED).into_owned();
        }
    }
    out
}

fn redact_strings(value: &mut Value, patterns: &[Regex]) {
    match value {
        Value::String(s) if patterns.iter().any(|p| p.is_match(s)) => {
            *s = redact_text(s, patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_strings(v, patterns)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_strings(v, patterns)),
        _ => {}
    }
}

/// The canonical form of a stored (redacted) request on `endpoint`: volatile fields dropped and
/// ids numbered. `stream` stays: a streamed and a whole reply are different bytes.
pub fn canonical(endpoint: &str, request: &Value) -> Value {
    canonical_owned(endpoint, request.clone())
}

/// [`canonical`] of a request the caller no longer needs (no copy of a large body).
pub fn canonical_owned(endpoint: &str, request: Value) -> Value {
    let mut body = request;
    if let Value::Object(map) = &mut body {
        for field in VOLATILE_FIELDS {
            map.remove(*field);
        }
        map.retain(|_, v| !v.is_null());
    }
    let mut ids = HashMap::new();
    number_ids(&mut body, &mut ids);
    let mut doc = Map::new();
    doc.insert("endpoint".to_owned(), Value::from(endpoint));
    doc.insert("body".to_owned(), body);
    Value::Object(doc)
}

fn number_ids(value: &mut Value, ids: &mut HashMap<String, usize>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| number_ids(v, ids)),
        Value::Object(map) => {
            for (name, v) in map.iter_mut() {
                if let (true, Value::String(id)) = (ID_FIELDS.contains(&name.as_str()), &*v) {
                    let next = ids.len();
                    let n = *ids.entry(id.clone()).or_insert(next);
                    *v = Value::from(format!("#{n}"));
                } else {
                    number_ids(v, ids);
                }
            }
        }
        _ => {}
    }
}

/// The key a canonical request is found under: SHA-256 hex of its canonical JSON.
pub fn key_of(canonical: &Value) -> String {
    let text = crate::cache::key::canonical_json(canonical);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Where `asked` first differs from `recorded` (both canonical), as a JSON path into the
/// request body (`messages[1].content`, `model`, `tools`), and how much of it matched before
/// (the leaves compared equal), which ranks the nearest recording. `None` when equal.
pub fn first_difference(asked: &Value, recorded: &Value) -> Option<(String, usize)> {
    let mut matched = 0;
    let path = diff(asked, recorded, String::new(), &mut matched)?;
    let path = path
        .strip_prefix(".body")
        .map(|p| p.trim_start_matches('.').to_owned())
        .unwrap_or_else(|| path.trim_start_matches('.').to_owned());
    Some((
        if path.is_empty() {
            "(body)".to_owned()
        } else {
            path
        },
        matched,
    ))
}

fn diff(a: &Value, b: &Value, path: String, matched: &mut usize) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            // In the order a request reads: model first, then the rest by name.
            let mut names: Vec<&String> = x.keys().chain(y.keys()).collect();
            names.sort_unstable_by_key(|n| (n.as_str() != "model", n.as_str()));
            names.dedup();
            for name in names {
                let here = format!("{path}.{name}");
                match (x.get(name), y.get(name)) {
                    (Some(p), Some(q)) => {
                        if let Some(found) = diff(p, q, here, matched) {
                            return Some(found);
                        }
                    }
                    _ => return Some(here),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if let Some(found) = diff(p, q, format!("{path}[{i}]"), matched) {
                    return Some(found);
                }
            }
            if x.len() != y.len() {
                return Some(format!("{path}[{}]", x.len().min(y.len())));
            }
            None
        }
        _ if a == b => {
            *matched += 1;
            None
        }
        _ => Some(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(body: Value) -> String {
        key_of(&canonical("/v1/chat/completions", &body))
    }

    #[test]
    fn volatile_fields_and_ids_do_not_change_the_key() {
        let a = json!({"model":"m","user":"u1","metadata":{"user_id":"session_1"},
            "messages":[{"role":"assistant","tool_calls":[{"id":"call_abc","function":{"name":"f"}}]},
                        {"role":"tool","tool_call_id":"call_abc","content":"ok"}]});
        let b = json!({"model":"m","user":"u2","metadata":{"user_id":"session_2"},"stream_options":null,
            "messages":[{"role":"assistant","tool_calls":[{"id":"call_xyz","function":{"name":"f"}}]},
                        {"role":"tool","tool_call_id":"call_xyz","content":"ok"}]});
        assert_eq!(key(a), key(b));
    }

    #[test]
    fn what_decides_the_answer_changes_the_key() {
        let base = json!({"model":"m","messages":[{"role":"user","content":"hi"}]});
        let other_text = json!({"model":"m","messages":[{"role":"user","content":"ho"}]});
        let streamed =
            json!({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]});
        let sampled =
            json!({"model":"m","temperature":0.5,"messages":[{"role":"user","content":"hi"}]});
        assert_ne!(key(base.clone()), key(other_text));
        assert_ne!(key(base.clone()), key(streamed));
        assert_ne!(key(base.clone()), key(sampled));
        assert_ne!(
            key_of(&canonical("/v1/chat/completions", &base)),
            key_of(&canonical("/v1/messages", &base))
        );
        // A tool result pointing at a different call is a different conversation.
        let linked =
            json!({"messages":[{"tool_calls":[{"id":"a"},{"id":"b"}]},{"tool_call_id":"a"}]});
        let crossed =
            json!({"messages":[{"tool_calls":[{"id":"a"},{"id":"b"}]},{"tool_call_id":"b"}]});
        assert_ne!(key(linked), key(crossed));
    }

    #[test]
    fn the_first_difference_is_named_as_a_path() {
        let c = |b: Value| canonical("/v1/chat/completions", &b);
        let rec = c(
            json!({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"a"}]}),
        );
        let asked = c(
            json!({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"b"}]}),
        );
        let (path, matched) = first_difference(&asked, &rec).unwrap_or_default();
        assert_eq!(path, "messages[1].content");
        assert!(matched >= 3, "{matched}");
        let longer = c(json!({"model":"m","messages":[{"role":"system","content":"s"}]}));
        assert_eq!(
            first_difference(&rec, &longer).unwrap_or_default().0,
            "messages[1]"
        );
        let model = c(json!({"model":"n","messages":[]}));
        assert_eq!(
            first_difference(&model, &rec).unwrap_or_default().0,
            "model"
        );
        assert_eq!(first_difference(&rec, &rec), None);
    }

    #[test]
    fn redaction_replaces_matches_in_every_string() {
        let patterns = [Regex::new("sk-[A-Za-z0-9]{8,}").unwrap_or_else(|e| panic!("{e}"))];
        let v = redact_request(
            br#"{"messages":[{"content":"key sk-abcdefgh123 here"}],"n":1}"#,
            &patterns,
        );
        assert_eq!(v["messages"][0]["content"], "key [REDACTED] here");
        assert_eq!(v["n"], 1);
    }
}
