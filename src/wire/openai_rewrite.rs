//! Changing an OpenAI-format request body for one target, in place: the model a route serves,
//! `stream_options.include_usage` the proxy needs, the output-cap field a provider wants and a
//! lower cap a budget set. Everything else in the body stays as it came.

/// What a request body needs changed for one target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rewrite<'a> {
    /// Another model name, when the route serves one.
    pub model: Option<&'a str>,
    /// Ask for `stream_options.include_usage`: the proxy needs a stream's usage that the client
    /// did not ask for.
    pub add_stream_usage: bool,
    /// Send the output cap as `max_completion_tokens` (OpenAI's own API; see
    /// `ProviderConfig::wants_max_completion_tokens`).
    pub max_completion_tokens: bool,
    /// A lower output cap a budget set: every cap field the body has is lowered to it, and
    /// when it has none, the given field (`max_tokens`, `max_completion_tokens`, or the
    /// Responses API's `max_output_tokens`) is added.
    pub output_cap: Option<(&'static str, u64)>,
}

/// Rewrites a request body for its provider; other fields are kept as they were. Returns None
/// when nothing needs changing.
pub fn rewrite_request(
    body: &[u8],
    rewrite: Rewrite<'_>,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let Rewrite {
        model,
        add_stream_usage,
        max_completion_tokens,
        output_cap,
    } = rewrite;
    let rename_cap = max_completion_tokens
        && (output_cap.is_some_and(|(field, _)| field == "max_tokens")
            || memchr::memmem::find(body, b"\"max_tokens\"").is_some());
    if model.is_none() && !add_stream_usage && !rename_cap && output_cap.is_none() {
        return Ok(None);
    }
    if model.is_none()
        && !rename_cap
        && output_cap.is_none()
        && let Some(spliced) = splice_stream_usage(body)
    {
        return Ok(Some(spliced));
    }
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)?;
    if let Some((field, cap)) = output_cap {
        const CAPS: [&str; 3] = ["max_tokens", "max_completion_tokens", "max_output_tokens"];
        let present: Vec<&str> = CAPS
            .into_iter()
            .filter(|c| value.contains_key(*c))
            .collect();
        for name in if present.is_empty() {
            vec![field]
        } else {
            present
        } {
            value.insert(name.to_owned(), serde_json::Value::from(cap));
        }
    }
    if rename_cap
        && !value.contains_key("max_completion_tokens")
        && let Some(cap) = value.shift_remove("max_tokens")
    {
        value.insert("max_completion_tokens".to_owned(), cap);
    }
    if let Some(model) = model {
        value.insert(
            "model".to_owned(),
            serde_json::Value::String(model.to_owned()),
        );
    }
    if add_stream_usage {
        let options = value
            .entry("stream_options")
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if !options.is_object() {
            *options = serde_json::Value::Object(serde_json::Map::new());
        }
        if let Some(map) = options.as_object_mut() {
            map.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
        }
    }
    serde_json::to_vec(&value).map(Some)
}

/// The fast path for the common case, a body without `stream_options`: the option is written in
/// front of the first key, a copy instead of a parse and re-serialization of the whole
/// conversation. None when the body has the key (or does not start like an object).
fn splice_stream_usage(body: &[u8]) -> Option<Vec<u8>> {
    const OPTION: &[u8] = br#""stream_options":{"include_usage":true},"#;
    if memchr::memmem::find(body, b"\"stream_options\"").is_some() {
        return None;
    }
    let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[open] != b'{' {
        return None;
    }
    // An empty object has no first key to write the option in front of (the comma would trail).
    let first = body[open + 1..].iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'}') {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + OPTION.len());
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(OPTION);
    out.extend_from_slice(&body[open + 1..]);
    Some(out)
}
