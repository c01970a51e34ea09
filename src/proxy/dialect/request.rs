//! Requests in each client format, read: what they say (model, stream, size, needs) and their
//! body in the hub format (OpenAI's) that every provider takes.

use std::hash::RandomState;

use bytes::Bytes;
use http::HeaderMap;

use super::Dialect;
use crate::proxy::error::ApiError;
use crate::translate::{anthropic, ollama, responses};
use crate::wire::anthropic_view::MessagesView;
use crate::wire::depth;
use crate::wire::openai::{
    ChatRequestView, CompletionsView, EmbeddingsView, RequestError, ResponsesView,
};
use crate::wire::turn::{self, Turn};

/// A request, read.
pub struct Inbound {
    /// The body in OpenAI's format (for `Completions`, the completions body).
    pub hub: Bytes,
    /// The body as an Anthropic or Responses API client sent it, for targets that speak that
    /// format natively; `hub` is its chat completions translation for the others, empty until
    /// routing finds a target that needs it ([`Inbound::translate_for_chat`]).
    pub native: Option<Bytes>,
    /// The model the client named.
    pub model: String,
    pub stream: bool,
    /// An OpenAI client asked for the usage chunk itself (others never see OpenAI chunks).
    pub client_wants_usage: bool,
    pub output_cap: Option<u64>,
    pub tools: bool,
    pub images: bool,
    pub json: bool,
    /// Size of what the model reads, for a quick bound on its tokens (routing by size).
    pub prompt_bytes: usize,
    /// Client headers the provider's API depends on.
    pub passthrough_headers: Vec<(String, String)>,
    /// Claude Code's session id, to tag the ledger row with.
    pub client_session: Option<String>,
    /// The newest turn's signature, for the loop breaker (read only while it is on; `None`
    /// for requests that are no conversation: completions, embeddings).
    pub turn: Option<Turn>,
}

impl Inbound {
    /// Writes the chat completions translation of an Anthropic or Responses API request into
    /// `hub`, for targets that do not take the client's format. Done only when routing finds
    /// one, so requests passed to their own API untouched are never translated. The error
    /// names the field chat cannot carry.
    pub fn translate_for_chat(&mut self, dialect: Dialect) -> Result<(), ApiError> {
        let Some(body) = self.native.as_ref().filter(|_| self.hub.is_empty()) else {
            return Ok(());
        };
        self.hub = match dialect {
            Dialect::Responses => responses_to_chat(body)?,
            Dialect::Anthropic => anthropic::request_from_anthropic(body, &self.model)
                .map(Bytes::from)
                .map_err(|e| translation_error(e.to_string(), e.param()))?,
            _ => return Ok(()),
        };
        Ok(())
    }
}

fn responses_to_chat(body: &[u8]) -> Result<Bytes, ApiError> {
    let conversion = responses::request_to_chat(body).map_err(|refusal| {
        translation_error(
            format!(
                "{}: {} (the model's provider takes chat completions, so smartproxy translates \
                 Responses API requests for it)",
                refusal.field, refusal.message
            ),
            Some(&refusal.field),
        )
    })?;
    if !conversion.dropped_tools.is_empty() {
        tracing::debug!(tools = ?conversion.dropped_tools, "hosted tools left out of the chat translation");
    }
    Ok(Bytes::from(conversion.body))
}

fn translation_error(message: String, param: Option<&str>) -> ApiError {
    ApiError::bad_request(RequestError {
        message,
        param: param.and_then(static_param),
        not_json: false,
    })
}

/// Error bodies name a top-level field; these are the ones translations point at.
fn static_param(name: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "max_tokens",
        "stop",
        "stop_sequences",
        "response_format",
        "temperature",
        "top_p",
        "n",
        "prompt",
        "images",
        "format",
        "options",
        "suffix",
        "input",
        "instructions",
        "text",
        "previous_response_id",
        "conversation",
        "background",
    ];
    let top = name.split(['.', '[']).next().unwrap_or(name);
    KNOWN.iter().find(|k| **k == top).copied()
}

/// What the loop breaker asks `read` for: the newest turn's signature under its hasher, of
/// requests that declare tools only (no tool call can repeat without them) unless `all`.
#[derive(Clone, Copy)]
pub struct TurnReading<'a> {
    pub hasher: &'a RandomState,
    pub all: bool,
}

impl TurnReading<'_> {
    fn wanted(self, tools: bool) -> Option<Self> {
        (tools || self.all).then_some(self)
    }
}

/// Reads a request; `turns` (the loop breaker's, when it is on) asks for the newest turn's
/// signature as well, taken from the views parsed here anyway.
pub fn read(
    dialect: Dialect,
    body: Bytes,
    headers: &HeaderMap,
    turns: Option<TurnReading<'_>>,
) -> Result<Inbound, ApiError> {
    // Before any parse: the views below skip nested values without a depth limit, so such a
    // body would otherwise fail only when a translation or rewrite parses it, as a 500. Chat
    // and Messages views count it themselves, only for bodies their quick pass leaves to
    // serde_json (it takes none nested that deep): counting costs a walk of the whole body,
    // which for an agent's request was a quarter of its CPU.
    if !matches!(dialect, Dialect::OpenAi | Dialect::Anthropic)
        && depth::nests_deeper_than(&body, depth::MAX_DEPTH)
    {
        return Err(ApiError::bad_request(RequestError::too_deep()));
    }
    let (hub, native, passthrough_headers) = to_hub(dialect, body, headers)?;
    let client_session = headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(100).collect());
    let Said {
        model,
        stream,
        client_wants_usage,
        output_cap,
        tools,
        images,
        json,
        prompt_bytes,
        turn,
    } = said(dialect, &hub, native.as_ref(), turns)?;
    Ok(Inbound {
        hub,
        native,
        model,
        stream,
        client_wants_usage,
        output_cap,
        tools,
        images,
        json,
        prompt_bytes,
        passthrough_headers,
        client_session,
        turn,
    })
}

/// What a request says, as `Inbound` has it (see there).
struct Said {
    model: String,
    stream: bool,
    client_wants_usage: bool,
    output_cap: Option<u64>,
    tools: bool,
    images: bool,
    json: bool,
    prompt_bytes: usize,
    turn: Option<Turn>,
}

/// The hub body, the client's own body and the client headers that go with it.
type Bodies = (Bytes, Option<Bytes>, Vec<(String, String)>);

/// The body in the hub format (for Anthropic and the Responses API, empty until routing needs
/// it), the client's own body where a target may take it natively, and the client headers
/// that go with it.
fn to_hub(dialect: Dialect, body: Bytes, headers: &HeaderMap) -> Result<Bodies, ApiError> {
    Ok(match dialect {
        Dialect::OpenAi | Dialect::Completions | Dialect::Embeddings => (body, None, Vec::new()),
        // The chat translation waits for routing (`translate_for_chat`).
        Dialect::Responses => (Bytes::new(), Some(body), Vec::new()),
        Dialect::Anthropic => {
            let passed = ["anthropic-version", "anthropic-beta"]
                .iter()
                .filter_map(|name| {
                    let value = headers.get(*name)?.to_str().ok()?;
                    Some(((*name).to_owned(), value.to_owned()))
                })
                .collect();
            (Bytes::new(), Some(body), passed)
        }
        Dialect::OllamaChat | Dialect::OllamaGenerate => {
            let translated = if dialect == Dialect::OllamaChat {
                ollama::chat_request_to_openai(&body)
            } else {
                ollama::generate_request_to_openai(&body)
            }
            .map_err(|e| translation_error(e.to_string(), e.field()))?;
            if !translated.ignored.is_empty() {
                tracing::debug!(fields = ?translated.ignored, "Ollama options with no OpenAI equivalent were dropped");
            }
            (Bytes::from(translated.body), None, Vec::new())
        }
    })
}

/// What the request says (model, stream, size, needs), read from the hub body or, for
/// Anthropic and the Responses API, the client's own.
fn said(
    dialect: Dialect,
    hub: &Bytes,
    native: Option<&Bytes>,
    turns: Option<TurnReading<'_>>,
) -> Result<Said, ApiError> {
    Ok(if dialect == Dialect::Completions {
        let view = CompletionsView::parse(hub).map_err(ApiError::bad_request)?;
        Said {
            model: view.model.to_string(),
            stream: view.stream.unwrap_or(false),
            client_wants_usage: view
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            output_cap: view.max_tokens,
            tools: false,
            images: false,
            json: false,
            prompt_bytes: view.prompt.get().len(),
            turn: None,
        }
    } else if let (Dialect::Responses, Some(native)) = (dialect, native) {
        let view = ResponsesView::parse(native).map_err(ApiError::bad_request)?;
        Said {
            model: view.model.to_string(),
            stream: view.stream.unwrap_or(false),
            // Responses streams always end with their usage (`response.completed`).
            client_wants_usage: true,
            output_cap: view.max_output_tokens,
            tools: view.has_tools(),
            images: false,
            json: false,
            prompt_bytes: view.prompt_bytes(),
            turn: turns
                .and_then(|t| t.wanted(view.has_tools()))
                .zip(view.input)
                .and_then(|(t, input)| turn::of_responses(input.get(), t.hasher)),
        }
    } else if let (Dialect::Anthropic, Some(native)) = (dialect, native) {
        let view = MessagesView::parse(native).map_err(ApiError::bad_request)?;
        Said {
            model: view.model.to_string(),
            stream: view.is_stream(),
            client_wants_usage: false,
            output_cap: view.max_tokens,
            tools: view.has_tools(),
            images: view.has_images(),
            // Messages has no JSON mode that its translation carries.
            json: false,
            prompt_bytes: view.prompt_bytes(),
            turn: turns
                .and_then(|t| t.wanted(view.has_tools()))
                .and_then(|t| turn::of_anthropic(view.messages.get(), t.hasher)),
        }
    } else if dialect == Dialect::Embeddings {
        let view = EmbeddingsView::parse(hub).map_err(ApiError::bad_request)?;
        Said {
            model: view.model.to_string(),
            stream: false,
            client_wants_usage: false,
            // Embeddings have no output tokens: the budget reserves the input alone.
            output_cap: Some(0),
            tools: false,
            images: false,
            json: false,
            prompt_bytes: view.input.get().len(),
            turn: None,
        }
    } else {
        let view = ChatRequestView::parse(hub).map_err(ApiError::bad_request)?;
        Said {
            model: view.model.to_string(),
            stream: view.is_stream(),
            client_wants_usage: dialect == Dialect::OpenAi && view.wants_stream_usage(),
            output_cap: view.output_cap(),
            tools: view.has_tools(),
            images: view.has_images(),
            json: view.wants_json(),
            prompt_bytes: view.messages.get().len(),
            turn: turns
                .and_then(|t| t.wanted(view.has_tools()))
                .and_then(|t| turn::of_chat(view.messages.get(), t.hasher)),
        }
    })
}
