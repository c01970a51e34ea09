//! Pure translation between OpenAI's Responses API and Chat Completions (the hub), both ways,
//! streaming included, for Responses clients (Codex CLI, the `openai` SDKs' `responses.create`)
//! routed to providers that only speak chat: Anthropic, Ollama, the mock, OpenAI-compatible
//! servers with `responses_api: false`. OpenAI's own API gets Responses requests untouched.
//!
//! What has no chat equivalent is refused with an error naming the field (`input[2].type`,
//! `tools[0].type`), except what a chat provider can simply go without: reasoning items
//! (encrypted, readable only by OpenAI) and the hosted web search tool, which are left out.

mod request;
mod response;
mod stream;

pub use request::{Conversion, ToolKinds, request_to_chat};
pub use response::response_from_chat;
pub use stream::StreamToResponses;

/// A Responses request that cannot be written as a chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsesError {
    pub message: String,
    /// The offending field, e.g. `input[2].type`.
    pub field: String,
}

impl std::fmt::Display for ResponsesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ResponsesError {}

/// The id of the response smartproxy writes for request `request_id` (`req_…` → `resp_…`).
pub fn response_id(request_id: &str) -> String {
    format!("resp_{}", request_id.trim_start_matches("req_"))
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> ResponsesError {
    ResponsesError {
        field: field.into(),
        message: message.into(),
    }
}
