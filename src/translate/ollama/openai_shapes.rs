//! The parts of OpenAI responses and stream chunks the Ollama translators read. Lenient on
//! purpose: providers send `null` where OpenAI omits a field, and extra fields are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::wire::openai::Usage;

/// A `chat.completion` or one `chat.completion.chunk`: `message` in the first, `delta` in the
/// second.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Completion {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Some providers put an error object in a 200 body or inside a stream.
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub message: Option<AssistantMessage>,
    #[serde(default)]
    pub delta: Option<AssistantMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssistantMessage {
    /// A string, null, or (rarely, in responses) an array of text parts.
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default)]
    pub refusal: Option<String>,
    /// DeepSeek, vLLM and most OpenAI-compatible servers.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Ollama's and OpenRouter's OpenAI-compatible endpoints.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tool_calls: Vec<ToolCall>,
}

impl AssistantMessage {
    /// The text of `content` (string or text parts), else the refusal, else "".
    pub fn text(&self) -> String {
        let text = match &self.content {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        };
        match &self.refusal {
            Some(refusal) if text.is_empty() => refusal.clone(),
            _ => text,
        }
    }

    /// The reasoning text under either name, if not empty.
    pub fn thinking(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .or(self.reasoning.as_deref())
            .filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolCall {
    /// Present in stream deltas, where one call arrives in pieces.
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub function: Function,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Function {
    #[serde(default)]
    pub name: Option<String>,
    /// A JSON string per the spec; kept as a value so an object can be accepted too.
    #[serde(default)]
    pub arguments: Option<Value>,
}

impl Completion {
    /// The first choice (index 0): Ollama has room for one answer.
    pub fn first_choice(&self) -> Option<&Choice> {
        self.choices
            .iter()
            .find(|c| c.index.unwrap_or(0) == 0)
            .or(self.choices.first())
    }

    /// The message of an `error` field, however the provider shaped it.
    pub fn error_message(&self) -> Option<String> {
        self.error.as_ref().and_then(error_message)
    }
}

/// The human message of an error value: `{"message": ...}`, a string, or its JSON text.
pub(crate) fn error_message(error: &Value) -> Option<String> {
    match error {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Object(map) => Some(
            map.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned),
        ),
        other => Some(other.to_string()),
    }
}

/// Treats an explicit `null` like an absent field.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}
