//! OpenAI Chat Completions wire types: the parts of requests, responses and stream chunks that the
//! proxy reads, and the error body every failure is rendered in. Bodies are otherwise forwarded
//! as they came, so unknown fields survive untouched.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use super::openai_rewrite::{Rewrite, rewrite_request};

/// What the proxy needs to know about a chat request. Everything else stays in the raw bytes.
#[derive(Debug, Deserialize)]
pub struct ChatRequestView<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub messages: RawJson<'a>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, borrow)]
    pub tools: Option<RawJson<'a>>,
    #[serde(default, borrow)]
    pub response_format: Option<ResponseFormatView<'a>>,
}

/// A JSON value's text, as it is in the body (what a borrowed `RawValue` holds, but also made
/// from text `wire::skim` has already checked, without checking it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// `text` must be one JSON value, already checked (by `wire::skim`).
    pub(super) fn checked(text: &'a str) -> Self {
        Self(text)
    }

    pub fn get(&self) -> &'a str {
        self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawJson<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(deserializer).map(|raw| RawJson(raw.get()))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseFormatView<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

impl ChatRequestView<'_> {
    /// Parses and checks the few fields every chat request must have.
    pub fn parse(body: &[u8]) -> Result<ChatRequestView<'_>, RequestError> {
        // The quick pass takes a well-formed request; for anything else serde_json decides, and
        // its error is the client's.
        let view = match super::skim::members(body).and_then(|m| Self::from_members(&m)) {
            Some(view) => view,
            None => parse_slowly(body, "chat completion")?,
        };
        require_model(&view.model)?;
        if !view.messages.get().trim_start().starts_with('[') {
            return Err(RequestError::new("`messages` must be an array", "messages"));
        }
        if view.messages.get().trim_start()[1..]
            .trim_start()
            .starts_with(']')
        {
            return Err(RequestError::new(
                "`messages` must not be empty",
                "messages",
            ));
        }
        Ok(view)
    }

    /// The view from the body's members (`wire::skim`), as serde_json would make it; `None`
    /// where serde_json would refuse the body (a field of the wrong type, a duplicate, a missing
    /// `model` or `messages`), so that it is parsed again there and refused with its message.
    fn from_members<'a>(members: &[(&'a str, &'a str)]) -> Option<ChatRequestView<'a>> {
        use super::skim::{field, once};
        let (mut model, mut messages, mut stream, mut stream_options) = (None, None, None, None);
        let (mut max_tokens, mut max_completion_tokens, mut tools, mut response_format) =
            (None, None, None, None);
        for &(key, text) in members {
            match key {
                "model" => once(&mut model, field(text))?,
                "messages" => once(&mut messages, Some(RawJson(text)))?,
                "stream" => once(&mut stream, field(text))?,
                "stream_options" => once(&mut stream_options, field(text))?,
                "max_tokens" => once(&mut max_tokens, field(text))?,
                "max_completion_tokens" => once(&mut max_completion_tokens, field(text))?,
                "tools" => once(&mut tools, Some((text != "null").then_some(RawJson(text))))?,
                "response_format" => once(&mut response_format, field(text))?,
                _ => {}
            }
        }
        Some(ChatRequestView {
            model: model?,
            messages: messages?,
            stream: stream.flatten(),
            stream_options: stream_options.flatten(),
            max_tokens: max_tokens.flatten(),
            max_completion_tokens: max_completion_tokens.flatten(),
            tools: tools.flatten(),
            response_format: response_format.flatten(),
        })
    }

    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the client itself asked for the final usage chunk of a stream.
    pub fn wants_stream_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// Whether the request offers tools (an empty list offers none).
    pub fn has_tools(&self) -> bool {
        self.tools.is_some_and(|t| is_non_empty_array(t.get()))
    }

    /// Whether any message carries an image part.
    pub fn has_images(&self) -> bool {
        memchr::memmem::find(self.messages.get().as_bytes(), b"\"image_url\"").is_some()
    }

    /// Whether the request asks for JSON output (`json_object` or `json_schema`).
    pub fn wants_json(&self) -> bool {
        self.response_format
            .as_ref()
            .and_then(|f| f.kind.as_deref())
            .is_some_and(|k| k == "json_object" || k == "json_schema")
    }

    /// The output cap the client set, under either of its names.
    pub fn output_cap(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// What the proxy needs to know about a legacy `/v1/completions` request.
#[derive(Debug, Deserialize)]
pub struct CompletionsView<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub prompt: &'a RawValue,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
}

impl CompletionsView<'_> {
    pub fn parse(body: &[u8]) -> Result<CompletionsView<'_>, RequestError> {
        let view: CompletionsView<'_> =
            serde_json::from_slice(body).map_err(|e| RequestError::from_json(&e, "completions"))?;
        require_model(&view.model)?;
        Ok(view)
    }
}

/// What the proxy needs to know about a `/v1/embeddings` request.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsView<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string, an array of strings, or token arrays.
    #[serde(borrow)]
    pub input: &'a RawValue,
}

impl EmbeddingsView<'_> {
    pub fn parse(body: &[u8]) -> Result<EmbeddingsView<'_>, RequestError> {
        let view: EmbeddingsView<'_> =
            serde_json::from_slice(body).map_err(|e| RequestError::from_json(&e, "embeddings"))?;
        require_model(&view.model)?;
        if !matches!(view.input.get().as_bytes().first(), Some(b'"' | b'[')) {
            return Err(RequestError::new(
                "`input` must be a string, an array of strings or an array of token arrays",
                "input",
            ));
        }
        Ok(view)
    }
}

/// What the proxy needs to know about a Responses API request (`POST /v1/responses`).
#[derive(Debug, Deserialize)]
pub struct ResponsesView<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string or a list of input items.
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub instructions: Option<&'a RawValue>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default, borrow)]
    pub tools: Option<&'a RawValue>,
}

impl ResponsesView<'_> {
    pub fn parse(body: &[u8]) -> Result<ResponsesView<'_>, RequestError> {
        let view: ResponsesView<'_> =
            serde_json::from_slice(body).map_err(|e| RequestError::from_json(&e, "responses"))?;
        require_model(&view.model)?;
        Ok(view)
    }

    /// Size of what the model reads, for a quick bound on its tokens.
    pub fn prompt_bytes(&self) -> usize {
        [self.input, self.instructions]
            .iter()
            .flatten()
            .map(|v| v.get().len())
            .sum()
    }

    pub fn has_tools(&self) -> bool {
        self.tools
            .is_some_and(|t| t.get().trim() != "[]" && t.get() != "null")
    }
}

/// One event of a Responses API stream, read for what the ledger needs: the final response's
/// model and usage, text deltas (for an estimate when usage never comes), and failures.
#[derive(Debug, Default, Deserialize)]
pub struct ResponsesEventView<'a> {
    #[serde(default, rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub delta: Option<&'a RawValue>,
    #[serde(default)]
    pub response: Option<UsageView>,
}

/// Every model request names a model.
/// A body the quick pass (`wire::skim`) did not take, read by serde_json: refused first when it
/// nests deeper than serde_json builds values (the quick pass takes no such body), so that a
/// later parse of it (a rewrite, a translation) cannot fail as a server error.
pub(super) fn parse_slowly<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    what: &str,
) -> Result<T, RequestError> {
    if super::depth::nests_deeper_than(body, super::depth::MAX_DEPTH) {
        return Err(RequestError::too_deep());
    }
    serde_json::from_slice(body).map_err(|e| RequestError::from_json(&e, what))
}

/// Whether a value's JSON text is an array with something in it.
pub(super) fn is_non_empty_array(raw: &str) -> bool {
    let raw = raw.trim_start();
    raw.starts_with('[') && !raw[1..].trim_start().starts_with(']')
}

pub(super) fn require_model(model: &str) -> Result<(), RequestError> {
    if model.trim().is_empty() {
        return Err(RequestError::new(
            "`model` must be a non-empty string",
            "model",
        ));
    }
    Ok(())
}

/// A request the proxy refuses before sending it anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub message: String,
    pub param: Option<&'static str>,
    /// The body is not JSON at all (as opposed to JSON of the wrong shape).
    pub not_json: bool,
}

impl RequestError {
    pub fn new(message: impl Into<String>, param: &'static str) -> Self {
        Self {
            message: message.into(),
            param: Some(param),
            not_json: false,
        }
    }

    /// A body nested deeper than [`super::depth::MAX_DEPTH`].
    pub fn too_deep() -> Self {
        Self {
            message: format!(
                "the request body has arrays and objects nested more than {} levels deep, \
                 which smartproxy does not parse: flatten the deepest value",
                super::depth::MAX_DEPTH
            ),
            param: None,
            not_json: false,
        }
    }

    /// `what`: the kind of request, for the message ("chat completion", "embeddings"...).
    pub(super) fn from_json(err: &serde_json::Error, what: &str) -> Self {
        let not_json = err.is_syntax() || err.is_eof();
        let message = if not_json {
            format!("request body is not valid JSON: {err}")
        } else {
            format!("invalid {what} request: {err}")
        };
        Self {
            message,
            param: None,
            not_json,
        }
    }
}

/// Token usage as OpenAI reports it. `prompt_tokens` includes the cached ones.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
pub struct Usage {
    /// `input_tokens` in the Responses API.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: u64,
    /// `output_tokens` in the Responses API (reasoning tokens included, as they are billed).
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// `output_tokens_details` in the Responses API.
    #[serde(default, alias = "output_tokens_details")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Prompt tokens written to the provider's prompt cache: LiteLLM's extension for Anthropic
    /// models, which smartproxy's own Anthropic translation sends too. Included in
    /// `prompt_tokens`.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// DeepSeek's prompt tokens served from its context cache; with
    /// `prompt_cache_miss_tokens` they make `prompt_tokens`.
    #[serde(default)]
    pub prompt_cache_hit_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_cache_miss_tokens: Option<u64>,
    /// Anthropic's server tools (web search), as LiteLLM and smartproxy's translation carry
    /// them into OpenAI usage.
    #[serde(default)]
    pub server_tool_use: Option<ServerToolUse>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// LiteLLM's split of the cache writes by lifetime (Anthropic's `usage.cache_creation`).
    #[serde(default)]
    pub cache_creation_token_details: Option<CacheCreationDetails>,
}

/// Cache writes by lifetime: Anthropic's `usage.cache_creation`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CacheCreationDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// Anthropic's `usage.server_tool_use`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerToolUse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_requests: Option<u64>,
}

impl Usage {
    /// All prompt tokens; from DeepSeek's hit and miss counts when `prompt_tokens` is missing.
    pub fn prompt(&self) -> u64 {
        match (self.prompt_cache_hit_tokens, self.prompt_cache_miss_tokens) {
            (Some(hit), Some(miss)) if self.prompt_tokens == 0 => hit.saturating_add(miss),
            _ => self.prompt_tokens,
        }
    }

    /// Prompt tokens read from the cache: OpenAI's `cached_tokens`, else DeepSeek's hits.
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0)
    }

    /// Of the cache writes, those with a 1-hour lifetime.
    pub fn cache_write_1h(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cache_creation_token_details)
            .and_then(|d| d.ephemeral_1h_input_tokens)
            .unwrap_or(0)
    }

    pub fn reasoning_tokens(&self) -> u64 {
        self.completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0)
    }

    pub fn web_searches(&self) -> u64 {
        self.server_tool_use
            .and_then(|s| s.web_search_requests)
            .unwrap_or(0)
    }
}

/// The model and usage of a complete response, read without touching its content.
#[derive(Debug, Default, Deserialize)]
pub struct UsageView {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The tier that served the request (`default`, `flex`, `priority`), which sets its price.
    #[serde(default)]
    pub service_tier: Option<String>,
}

/// The parts of a complete (non-streaming) response the ledger needs.
#[derive(Debug, Default, Deserialize)]
pub struct ResponseView {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub service_tier: Option<String>,
    #[serde(default)]
    pub choices: Vec<ChoiceView>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChoiceView {
    #[serde(default)]
    pub message: Option<MessageView>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageView {
    #[serde(default)]
    pub content: Option<Box<RawValue>>,
    #[serde(default)]
    pub tool_calls: Option<Box<RawValue>>,
}

impl ResponseView {
    /// Estimated tokens of the generated content (text and tool calls), for when usage is
    /// missing.
    pub fn content_tokens(&self) -> u64 {
        let mut counter = super::estimate::TextTokens::default();
        for message in self.choices.iter().filter_map(|c| c.message.as_ref()) {
            for raw in [&message.content, &message.tool_calls]
                .into_iter()
                .flatten()
            {
                counter.push_json(raw.get());
            }
        }
        counter.tokens()
    }
}

/// The parts of one streamed chunk the proxy reads.
#[derive(Debug, Default, Deserialize)]
pub struct ChunkView<'a> {
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default, borrow)]
    pub service_tier: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoiceView<'a>>,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChunkChoiceView<'a> {
    #[serde(default, borrow)]
    pub delta: Option<DeltaView<'a>>,
    /// Set on the choice's last chunk: the reply (of this choice) is whole.
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeltaView<'a> {
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<&'a RawValue>,
}

impl ChunkView<'_> {
    /// The extra chunk `stream_options.include_usage` adds: usage and no choices.
    pub fn is_usage_only(&self) -> bool {
        self.usage.is_some() && self.choices.is_empty()
    }

    /// Whether a choice finished in this chunk (a stream that ends after it is whole even
    /// without `[DONE]`, which some providers leave out).
    pub fn has_finish_reason(&self) -> bool {
        self.choices.iter().any(|c| c.finish_reason.is_some())
    }

    /// Adds the chunk's generated text and tool call fragments to a running estimate.
    pub fn count_content(&self, counter: &mut super::estimate::TextTokens) {
        for delta in self.choices.iter().filter_map(|c| c.delta.as_ref()) {
            for raw in [delta.content, delta.tool_calls].into_iter().flatten() {
                counter.push_json(raw.get());
            }
        }
    }
}

/// OpenAI's error body: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(
        message: impl Into<String>,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
    ) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind: kind.to_owned(),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
            },
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail; keep a valid body even if it somehow did.
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec())
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
