//! The OpenAI Chat Completions shapes the translation reads in full (the proxy's own
//! `wire::openai` only views the few fields routing needs). Messages and content parts are
//! parsed one at a time so errors can name the exact element.

use serde::Deserialize;
use serde_json::Value;

use super::TranslateError;

#[derive(Debug, Deserialize)]
pub(super) struct ChatRequest {
    /// Parsed one by one later, see [`ChatMessage::parse`].
    pub messages: Vec<Value>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Not OpenAI's, but several OpenAI-compatible clients send it.
    #[serde(default)]
    pub top_k: Option<u64>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub n: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchema },
}

#[derive(Debug, Deserialize)]
pub(super) struct JsonSchema {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub(super) enum ChatMessage {
    System {
        #[serde(default)]
        content: Option<Value>,
    },
    Developer {
        #[serde(default)]
        content: Option<Value>,
    },
    User {
        #[serde(default)]
        content: Option<Value>,
    },
    Assistant {
        #[serde(default)]
        content: Option<Value>,
        #[serde(default)]
        tool_calls: Option<Vec<ToolCall>>,
    },
    Tool {
        tool_call_id: String,
        #[serde(default)]
        content: Option<Value>,
    },
    /// The deprecated predecessor of `tool`; recognised only to refuse it clearly.
    Function {},
}

impl ChatMessage {
    pub fn parse(value: Value, path: &str) -> Result<Self, TranslateError> {
        Self::deserialize(value).map_err(|e| TranslateError::invalid(path, e))
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCall {
    pub id: String,
    #[serde(default)]
    pub function: Option<FunctionCall>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// One element of an array `content`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    InputAudio {},
    File { file: FileRef },
    Refusal { refusal: String },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ImageUrl {
    Object {
        url: String,
    },
    /// Some clients send the URL bare.
    Bare(String),
}

impl ImageUrl {
    pub fn url(&self) -> &str {
        match self {
            Self::Object { url } | Self::Bare(url) => url,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct FileRef {
    #[serde(default)]
    pub file_data: Option<String>,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

/// The parts of a `content` that may be a string, an array of parts, or null.
pub(super) fn parts(content: Option<Value>, path: &str) -> Result<Vec<Part>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![Part::Text { text }]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Part::deserialize(item)
                    .map_err(|e| TranslateError::invalid(format!("{path}.content[{i}]"), e))
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(
            format!("{path}.content"),
            "must be a string, an array of content parts or null",
        )),
    }
}

/// The text of a content that may only hold text (system messages), parts joined by newlines.
pub(super) fn text_only(content: Option<Value>, path: &str) -> Result<String, TranslateError> {
    let mut texts = Vec::new();
    for (i, part) in parts(content, path)?.into_iter().enumerate() {
        match part {
            Part::Text { text } => texts.push(text),
            _ => {
                return Err(TranslateError::unsupported(
                    format!("{path}.content[{i}]"),
                    "only text parts are allowed here",
                ));
            }
        }
    }
    Ok(texts.join("\n"))
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolDef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub function: Option<FunctionDef>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// A `data:` URL split into its media type and base64 payload.
pub(super) struct DataUrl<'a> {
    pub media_type: &'a str,
    pub data: &'a str,
}

/// Splits `data:<media type>[;params];base64,<data>`; None when it is not a base64 data URL.
pub(super) fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mut fields = meta.split(';');
    let media_type = fields.next()?;
    if !fields.any(|f| f.eq_ignore_ascii_case("base64")) || media_type.is_empty() {
        return None;
    }
    Some(DataUrl { media_type, data })
}

pub(super) fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_media_type_and_data() {
        let url = parse_data_url("data:image/png;base64,iVBOR").unwrap();
        assert_eq!((url.media_type, url.data), ("image/png", "iVBOR"));
        let url = parse_data_url("data:application/pdf;name=a.pdf;base64,JVBE").unwrap();
        assert_eq!((url.media_type, url.data), ("application/pdf", "JVBE"));
        assert!(parse_data_url("data:image/svg+xml,<svg/>").is_none());
        assert!(parse_data_url("data:;base64,xx").is_none());
        assert!(parse_data_url("https://x/y.png").is_none());
        assert!(is_http_url("HTTPS://x"));
        assert!(is_http_url("http://x"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("http"));
    }

    #[test]
    fn parts_name_the_element_at_fault() {
        let err = parts(
            Some(serde_json::json!([{"type":"text","text":"a"},{"type":"video"}])),
            "messages[3]",
        )
        .unwrap_err();
        assert_eq!(err.param(), Some("messages"));
        assert!(
            err.to_string()
                .starts_with("messages[3].content[1]: unknown variant `video`"),
            "{err}"
        );
        let err = parts(Some(serde_json::json!(5)), "messages[0]").unwrap_err();
        assert!(
            err.to_string().starts_with("messages[0].content: must be"),
            "{err}"
        );
    }
}
