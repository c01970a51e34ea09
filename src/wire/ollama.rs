//! Ollama native API wire types: `/api/chat`, `/api/generate`, `/api/tags`, `/api/show`,
//! `/api/version` and the `{"error": "..."}` body. Request objects keep unknown fields in a
//! flattened `extra` map so a newer client's fields survive a parse and re-serialization.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A `/api/chat` request. `stream` is absent-means-true in Ollama, see [`ChatRequest::is_stream`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    #[serde(default, deserialize_with = "nullable")]
    pub messages: Vec<Message>,
    /// Same shape as OpenAI's: `{"type":"function","function":{name, description, parameters}}`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// A duration string ("5m") or a number of seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// Ollama streams unless told not to.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// One chat message, in a request or a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default, deserialize_with = "nullable")]
    pub content: String,
    /// Base64 without a `data:` prefix.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// On `tool` messages: which function produced this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Newer Ollama versions pair tool results with calls by id; older ones only by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A tool call. Unlike OpenAI, `arguments` is a JSON object and there is usually no id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub function: ToolCallFunction,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub arguments: Map<String, Value>,
}

/// `format`: the string `"json"`, or a JSON schema object. Ollama treats `""` as no format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Format {
    Named(String),
    Schema(Map<String, Value>),
}

/// `think`: on/off, or a level ("low", "medium", "high") for models that take one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Think {
    Enabled(bool),
    Level(String),
}

/// Model options. The ones the proxy maps are typed; the rest (`num_ctx`, `mirostat`, ...)
/// stay in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Output cap; -1 means unlimited and -2 "fill the context" in Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Options {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Timing and token counts on a final (`done: true`) response line. Durations are nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
}

/// A `/api/chat` response, and each line of its NDJSON stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub message: Message,
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// A `/api/generate` request: one prompt, no message list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub model: String,
    #[serde(default, deserialize_with = "nullable")]
    pub prompt: String,
    /// Text after the insertion point, for fill-in-the-middle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
    /// Token ids returned by an earlier call, Ollama's short conversational memory.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub context: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GenerateRequest {
    /// Ollama streams unless told not to.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

/// A `/api/generate` response, and each line of its NDJSON stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<i64>,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `/api/tags`: the installed (here: routable) models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsResponse {
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    #[serde(default)]
    pub parent_model: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub families: Vec<String>,
    #[serde(default)]
    pub parameter_size: String,
    #[serde(default)]
    pub quantization_level: String,
}

/// `/api/show` request. Older clients send `name` instead of `model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ShowRequest {
    /// The model asked about, under either field name.
    pub fn model_name(&self) -> &str {
        match &self.name {
            Some(name) if self.model.is_empty() => name,
            _ => &self.model,
        }
    }
}

/// `/api/show` response: the fields clients probe for templates, context length and capabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowResponse {
    #[serde(default)]
    pub modelfile: String,
    #[serde(default)]
    pub parameters: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub details: ModelDetails,
    /// Keys like `general.architecture` and `<architecture>.context_length`.
    #[serde(default)]
    pub model_info: Map<String, Value>,
    /// "completion", "tools", "vision", "insert", "thinking", "embedding".
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `/api/version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionResponse {
    pub version: String,
}

/// Ollama's error body, also sent as a line inside a broken NDJSON stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Treats `null` as the empty value, as Ollama (Go) does for strings, lists and maps.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_keeps_unknown_fields_and_defaults_to_streaming() {
        let body = r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi","x":1}],
            "format":"json","think":"high","options":{"num_ctx":8192,"mirostat":1},"truncate":true}"#;
        let req: ChatRequest = serde_json::from_str(body).unwrap();
        assert!(req.is_stream());
        assert_eq!(req.format, Some(Format::Named("json".into())));
        assert_eq!(req.think, Some(Think::Level("high".into())));
        let options = req.options.as_ref().unwrap();
        assert_eq!(options.num_ctx, Some(8192));
        assert_eq!(options.extra["mirostat"], 1);
        assert_eq!(req.extra["truncate"], true);
        assert_eq!(req.messages[0].extra["x"], 1);
        let again: Value = serde_json::to_value(&req).unwrap();
        assert_eq!(again["truncate"], true);
        assert_eq!(again["options"]["mirostat"], 1);
        assert!(again.get("tools").is_none());
    }

    #[test]
    fn null_means_empty_as_in_go() {
        let req: ChatRequest = serde_json::from_str(
            r#"{"model":"m","tools":null,"messages":[{"role":"assistant","content":null,"images":null,
                "tool_calls":[{"function":{"name":"f","arguments":null}}]}]}"#,
        )
        .unwrap();
        assert!(req.tools.is_empty());
        assert_eq!(req.messages[0].content, "");
        assert!(req.messages[0].tool_calls[0].function.arguments.is_empty());
        let req: GenerateRequest =
            serde_json::from_str(r#"{"model":"m","prompt":null,"context":null}"#).unwrap();
        assert!(req.prompt.is_empty() && req.context.is_empty());
    }

    #[test]
    fn format_may_be_a_schema() {
        let req: GenerateRequest = serde_json::from_str(
            r#"{"model":"m","prompt":"p","format":{"type":"object"},"stream":false}"#,
        )
        .unwrap();
        assert!(!req.is_stream());
        assert!(matches!(req.format, Some(Format::Schema(ref s)) if s["type"] == "object"));
    }

    #[test]
    fn final_line_reads_metrics() {
        let line = r#"{"model":"m","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":""},
            "done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":5,"eval_duration":100}"#;
        let resp: ChatResponse = serde_json::from_str(line).unwrap();
        assert!(resp.done);
        assert_eq!(resp.metrics.prompt_eval_count, Some(12));
        assert_eq!(resp.metrics.eval_count, Some(5));
        let out = serde_json::to_value(&resp).unwrap();
        assert_eq!(out["eval_duration"], 100);
        assert!(out.get("load_duration").is_none());
    }

    #[test]
    fn show_request_accepts_the_old_name_field() {
        let req: ShowRequest = serde_json::from_str(r#"{"name":"llama3"}"#).unwrap();
        assert_eq!(req.model_name(), "llama3");
        let req: ShowRequest = serde_json::from_str(r#"{"model":"a","name":"b"}"#).unwrap();
        assert_eq!(req.model_name(), "a");
    }
}
