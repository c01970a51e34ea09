//! What the proxy reads of an Anthropic Messages request before routing it: the model, the
//! stream flag, the output cap and what the request needs (tools, images). The body goes to
//! Anthropic targets as the client sent it, so nothing else of it is parsed unless routing
//! picks a target that needs its chat translation (`translate::anthropic`).

use std::borrow::Cow;

use serde::Deserialize;

use super::openai::{RawJson, RequestError, is_non_empty_array, parse_slowly, require_model};
use super::skim::{self, field, once};

/// The few fields of a Messages request that routing and the budget read.
#[derive(Debug, Deserialize)]
pub struct MessagesView<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub messages: RawJson<'a>,
    #[serde(default, borrow)]
    pub system: Option<RawJson<'a>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default, borrow)]
    pub tools: Option<RawJson<'a>>,
}

impl MessagesView<'_> {
    /// Parses and checks what every Messages request must have: a model and at least one
    /// message. The rest is Anthropic's to judge, or the translation's.
    pub fn parse(body: &[u8]) -> Result<MessagesView<'_>, RequestError> {
        // As for chat: the quick pass takes a well-formed request; serde_json reads anything
        // else, and its error is the client's.
        let view = match skim::members(body).and_then(|m| Self::from_members(&m)) {
            Some(view) => view,
            None => parse_slowly(body, "Messages")?,
        };
        require_model(&view.model)?;
        if !view.messages.get().trim_start().starts_with('[') {
            return Err(RequestError::new("`messages` must be an array", "messages"));
        }
        // As Anthropic's API: at least one message (a system prompt alone is no request).
        if !is_non_empty_array(view.messages.get()) {
            return Err(RequestError::new(
                "`messages` must not be empty",
                "messages",
            ));
        }
        Ok(view)
    }

    fn from_members<'a>(members: &[(&'a str, &'a str)]) -> Option<MessagesView<'a>> {
        let (mut model, mut messages, mut system) = (None, None, None);
        let (mut stream, mut max_tokens, mut tools) = (None, None, None);
        for &(key, text) in members {
            let raw = || Some((text != "null").then_some(RawJson::checked(text)));
            match key {
                "model" => once(&mut model, field(text))?,
                "messages" => once(&mut messages, Some(RawJson::checked(text)))?,
                "system" => once(&mut system, raw())?,
                "stream" => once(&mut stream, field(text))?,
                "max_tokens" => once(&mut max_tokens, field(text))?,
                "tools" => once(&mut tools, raw())?,
                _ => {}
            }
        }
        Some(MessagesView {
            model: model?,
            messages: messages?,
            system: system.flatten(),
            stream: stream.flatten(),
            max_tokens: max_tokens.flatten(),
            tools: tools.flatten(),
        })
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the request offers tools (an empty list offers none).
    pub fn has_tools(&self) -> bool {
        self.tools.is_some_and(|t| is_non_empty_array(t.get()))
    }

    /// Whether any message carries an image block (`"type": "image"`, in a message or a tool
    /// result): a search, not a parse, that only a `type` member whose value is `"image"`
    /// matches, never text that reads so (its quotes would be escaped).
    pub fn has_images(&self) -> bool {
        let text = self.messages.get().as_bytes();
        memchr::memmem::find_iter(text, b"\"image\"").any(|at| {
            let Some(key_end) = text[..at].trim_ascii_end().strip_suffix(b":") else {
                return false;
            };
            key_end
                .trim_ascii_end()
                .strip_suffix(b"\"type\"")
                .is_some_and(|before| !before.ends_with(b"\\"))
        })
    }

    /// Bytes of what the model reads (the system prompt and the messages), for a quick bound
    /// on its tokens.
    pub fn prompt_bytes(&self) -> usize {
        self.messages.get().len() + self.system.map_or(0, |s| s.get().len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::MessagesView;

    #[test]
    fn the_quick_pass_and_serde_json_read_the_same_view() {
        let bodies = [
            r#"{"model":"claude-x","max_tokens":64,"stream":true,"system":"Be terse.","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"ls","input_schema":{}}]}"#,
            r#"{"model":"claude-x","messages":[{}],"tools":[],"system":null,"max_tokens":null}"#,
        ];
        for body in bodies {
            let quick = MessagesView::parse(body.as_bytes()).unwrap();
            let slow: MessagesView<'_> = serde_json::from_str(body).unwrap();
            assert_eq!(quick.model, slow.model, "{body}");
            assert_eq!(quick.messages, slow.messages, "{body}");
            assert_eq!(quick.system, slow.system, "{body}");
            assert_eq!(quick.stream, slow.stream, "{body}");
            assert_eq!(quick.max_tokens, slow.max_tokens, "{body}");
            assert_eq!(quick.tools, slow.tools, "{body}");
        }
        let view = MessagesView::parse(bodies[0].as_bytes()).unwrap();
        assert!(view.is_stream() && view.has_tools());
        assert_eq!(view.max_tokens, Some(64));
        assert_eq!(
            view.prompt_bytes(),
            r#""Be terse.""#.len() + r#"[{"role":"user","content":"hi"}]"#.len()
        );
        assert!(
            !MessagesView::parse(bodies[1].as_bytes())
                .unwrap()
                .has_tools()
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_field_at_fault() {
        let cases = [
            (r#"{"model":"","messages":[{}]}"#, Some("model")),
            (r#"{"model":"m","messages":"hi"}"#, Some("messages")),
            (r#"{"model":"m","messages":[ ]}"#, Some("messages")),
            (r#"{"messages":[]}"#, None),
            (r#"{"model":"m","messages":[],"max_tokens":"many"}"#, None),
            (r#"{"model":"m","#, None),
        ];
        for (body, param) in cases {
            let err = MessagesView::parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.param, param, "{body}: {}", err.message);
        }
        let not_json = MessagesView::parse(b"{\"model\":").unwrap_err();
        assert!(not_json.not_json, "{}", not_json.message);
        let missing = MessagesView::parse(br#"{"messages":[]}"#).unwrap_err();
        assert!(
            missing.message.contains("missing field `model`"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn images_are_image_blocks_only() {
        let view = |messages: &str| format!(r#"{{"model":"m","messages":{messages}}}"#);
        let with = [
            r#"[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"x"}}]}]"#,
            r#"[{"role":"user","content":[{"type" : "image","source":{}}]}]"#,
            r#"[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"source":{},"type":"image"}]}]}]"#,
        ];
        let without = [
            r#"[{"role":"user","content":"the \"type\": \"image\" member"}]"#,
            r#"[{"role":"user","content":[{"type":"text","text":"image"}]}]"#,
            r#"[{"role":"user","content":"\"type\":"},{"role":"user","content":"image"}]"#,
            r#"[{"role":"user","content":[{"x\"type":"image"}]}]"#,
        ];
        for messages in with {
            let body = view(messages);
            assert!(
                MessagesView::parse(body.as_bytes()).unwrap().has_images(),
                "{body}"
            );
        }
        for messages in without {
            let body = view(messages);
            assert!(
                !MessagesView::parse(body.as_bytes()).unwrap().has_images(),
                "{body}"
            );
        }
    }
}
