//! Appends `/no_think` to the last user message of a chat request, the switch that Qwen3-style
//! models honour to skip their reasoning. The text is spliced into the raw body, so the rest of
//! the request (often a long conversation) is neither parsed into values nor re-serialized.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{decode_str, span_in};

const SWITCH: &str = "/no_think";

#[derive(Deserialize)]
struct RequestPeek<'a> {
    #[serde(borrow)]
    messages: Vec<MessagePeek<'a>>,
}

#[derive(Deserialize)]
struct MessagePeek<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PartPeek<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
}

/// Appends " /no_think" to the text of the last user message: its string content, or the last
/// text part of array content. None when the body is not a chat request, the last user message
/// has no text, or the text already ends with `/no_think`.
pub fn append_no_think(body: &[u8]) -> Option<Vec<u8>> {
    let request: RequestPeek<'_> = serde_json::from_slice(body).ok()?;
    let content = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"))?
        .content?;
    let text = match content.get().as_bytes().first() {
        Some(b'"') => content,
        Some(b'[') => {
            let parts: Vec<PartPeek<'_>> = serde_json::from_str(content.get()).ok()?;
            parts
                .iter()
                .rev()
                .find(|p| p.kind.as_deref() == Some("text"))?
                .text?
        }
        _ => return None,
    };
    if decode_str(text)?.trim_end().ends_with(SWITCH) {
        return None;
    }
    // The raw string ends with its closing quote: the switch goes right before it.
    let close = span_in(body, text)?.end - 1;
    let mut out = Vec::with_capacity(body.len() + SWITCH.len() + 1);
    out.extend_from_slice(&body[..close]);
    out.push(b' ');
    out.extend_from_slice(SWITCH.as_bytes());
    out.extend_from_slice(&body[close..]);
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn appends_to_the_last_user_text() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"model":"q","messages":[{"role":"user","content":"hi"}]}"#,
                Some(r#"{"model":"q","messages":[{"role":"user","content":"hi /no_think"}]}"#),
            ),
            (
                r#"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"say \"x\"\n"},{"role":"tool","content":"t"}]}"#,
                Some(
                    r#"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":"say \"x\"\n /no_think"},{"role":"tool","content":"t"}]}"#,
                ),
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"日本"},{"type":"image_url","image_url":{"url":"v"}}]}]}"#,
                Some(
                    r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"日本 /no_think"},{"type":"image_url","image_url":{"url":"v"}}]}]}"#,
                ),
            ),
            (
                r#"{"messages":[{"role":"user","content":"done /no_think"}]}"#,
                None,
            ),
            (
                r#"{"messages":[{"role":"user","content":"done /no_think \n"}]}"#,
                None,
            ),
            (
                r#"{"messages":[{"role":"user","content":"done \/no_think"}]}"#,
                None,
            ),
            (r#"{"messages":[{"role":"system","content":"s"}]}"#, None),
            (r#"{"messages":[{"role":"user","content":null}]}"#, None),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#,
                None,
            ),
            (r#"{"messages":[{"role":"user"}]}"#, None),
            (r#"{"messages":"nope"}"#, None),
            ("not json", None),
        ];
        for (body, want) in cases {
            let got = append_no_think(body.as_bytes());
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{body}");
            if let Some(got) = got {
                serde_json::from_slice::<serde_json::Value>(&got).unwrap();
            }
        }
    }
}
