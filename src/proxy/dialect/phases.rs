//! The questions the pipeline's phases ask of a client's format, each in the phase's own terms:
//! who may send it (admit), which targets can take it (route), whether it is cached (cache),
//! how it is written for a target (attempt) and how the reply comes back to it (reply). The
//! phases never name a format; these answers are where the formats differ.

use bytes::Bytes;
use http::HeaderMap;

use super::Dialect;
use crate::config::{ProviderConfig, ProviderKind};
use crate::providers::{Endpoint, WireFormat};
use crate::proxy::auth::{Access, authorize, authorize_anthropic, authorize_ollama};
use crate::proxy::context::Peer;
use crate::proxy::error::ApiError;
use crate::proxy::state::AppState;
use crate::translate::responses;

impl Dialect {
    /// Admit: who may send a request in this format. Anthropic clients may bring their own
    /// credential (pass-through); Ollama clients may come keyless where the proxy allows it.
    pub(in crate::proxy) fn access(
        self,
        state: &AppState,
        passthrough: bool,
        peer: &Peer,
        headers: &HeaderMap,
    ) -> Result<Access, ApiError> {
        let key = match self {
            Self::Anthropic => return authorize_anthropic(state, passthrough, peer, headers),
            Self::OllamaChat | Self::OllamaGenerate => authorize_ollama(state, peer, headers)?,
            _ => authorize(state, peer, headers)?,
        };
        Ok(Access {
            key,
            credential: None,
        })
    }

    /// Route and attempt: whether a target takes the client's own body as it came (Anthropic's
    /// API takes Messages, a provider with `responses_api` takes Responses); every other target
    /// gets the chat translation.
    pub fn native_passthrough(self, provider_format: WireFormat, config: &ProviderConfig) -> bool {
        match self {
            Self::Anthropic => provider_format == WireFormat::Anthropic,
            Self::Responses => config.responses_api,
            _ => false,
        }
    }

    /// Route: why a target that needs the chat translation is passed over when the request does
    /// not translate (an Anthropic server tool, a Responses API built-in).
    pub fn untranslatable(self) -> &'static str {
        match self {
            Self::Anthropic => "not Anthropic's API, and this request does not translate to chat",
            _ => "no Responses API, and this request does not translate to chat",
        }
    }

    /// Attempt: the wire format and endpoint of the client's own body, sent to a target that
    /// takes it natively (`native_passthrough`).
    pub fn native_wire(self) -> (WireFormat, Endpoint) {
        match self {
            Self::Responses => (WireFormat::OpenAi, Endpoint::Responses),
            Self::Anthropic => (WireFormat::Anthropic, Endpoint::Chat),
            _ => (WireFormat::OpenAi, self.endpoint()),
        }
    }

    /// Route: whether a provider of `kind` serves this endpoint at all. Legacy completions and
    /// embeddings exist only on OpenAI-compatible APIs (the mock makes up embeddings, for
    /// offline runs); Responses API requests go anywhere, translated to chat for providers
    /// without that API; chat goes anywhere.
    pub fn serves_on(self, kind: ProviderKind) -> bool {
        match self {
            Self::Completions => kind == ProviderKind::OpenAi,
            Self::Embeddings => matches!(kind, ProviderKind::OpenAi | ProviderKind::Mock),
            _ => true,
        }
    }

    /// Cache: whether replies to this format may be cached (chat conversations, in any format).
    pub fn cacheable(self) -> bool {
        self.is_chat()
    }

    /// Attempt and reply: whether the configured transforms apply (to chat conversations only).
    pub fn takes_transforms(self) -> bool {
        self.is_chat()
    }

    /// Attempt: whether a stream must ask the upstream for its usage chunk (the proxy counts it
    /// and converters need it) although the client did not (`client_wants_usage`): always,
    /// except for an OpenAI client that asked itself. A Responses client wants usage, but in
    /// `response.completed`, which smartproxy writes.
    pub fn asks_stream_usage(self, client_wants_usage: bool) -> bool {
        !client_wants_usage || self == Self::Responses
    }

    /// Attempt: whether the chat body sent upstream is smartproxy's translation (whose output
    /// cap goes under the name the target takes) rather than an OpenAI client's own body.
    pub fn hub_is_translation(self) -> bool {
        !self.is_openai()
    }

    /// Reply: what converting a chat reply for this client needs from its own request (the
    /// tool kinds a Responses API client declared); `None` when the plain OpenAI conversion
    /// does.
    pub fn chat_reply_tools(self, native_request: Option<&Bytes>) -> Option<responses::ToolKinds> {
        match (self, native_request) {
            (Self::Responses, Some(body)) => Some(responses::ToolKinds::of_request(body)),
            _ => None,
        }
    }

    /// Reply: a whole chat reply (OpenAI's format) converted for this client; `request_id`
    /// names a Responses API reply.
    pub fn reply_from_chat(
        self,
        body: Bytes,
        model: &str,
        request_id: &str,
        native_request: Option<&Bytes>,
    ) -> Result<Bytes, String> {
        match self.chat_reply_tools(native_request) {
            Some(kinds) => {
                responses::response_from_chat(&body, &responses::response_id(request_id), &kinds)
                    .map(Bytes::from)
            }
            None => self.reply_from_openai(body, model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Dialect; 7] = [
        Dialect::OpenAi,
        Dialect::Completions,
        Dialect::Embeddings,
        Dialect::Responses,
        Dialect::Anthropic,
        Dialect::OllamaChat,
        Dialect::OllamaGenerate,
    ];

    #[test]
    fn only_openai_compatible_apis_serve_completions_and_embeddings() {
        for dialect in ALL {
            let on_anthropic = dialect.serves_on(ProviderKind::Anthropic);
            let on_mock = dialect.serves_on(ProviderKind::Mock);
            assert!(dialect.serves_on(ProviderKind::OpenAi), "{dialect:?}");
            match dialect {
                Dialect::Completions => assert!(!on_anthropic && !on_mock),
                Dialect::Embeddings => assert!(!on_anthropic && on_mock),
                _ => assert!(on_anthropic && on_mock, "{dialect:?}"),
            }
        }
    }

    #[test]
    fn only_chat_is_cached_and_transformed() {
        for dialect in ALL {
            let chat = !matches!(
                dialect,
                Dialect::Completions | Dialect::Embeddings | Dialect::Responses
            );
            assert_eq!(dialect.cacheable(), chat, "{dialect:?}");
            assert_eq!(dialect.takes_transforms(), chat, "{dialect:?}");
        }
    }

    #[test]
    fn streams_ask_for_usage_unless_an_openai_client_did() {
        assert!(!Dialect::OpenAi.asks_stream_usage(true));
        assert!(Dialect::OpenAi.asks_stream_usage(false));
        assert!(Dialect::Responses.asks_stream_usage(true));
        assert!(Dialect::Anthropic.asks_stream_usage(false));
    }

    #[test]
    fn native_bodies_go_out_in_their_own_format() {
        assert_eq!(
            Dialect::Anthropic.native_wire(),
            (WireFormat::Anthropic, Endpoint::Chat)
        );
        assert_eq!(
            Dialect::Responses.native_wire(),
            (WireFormat::OpenAi, Endpoint::Responses)
        );
    }

    #[test]
    fn only_responses_clients_convert_chat_replies_with_their_tools() {
        let body = Bytes::from_static(br#"{"model":"m","input":"hi"}"#);
        for dialect in ALL {
            assert_eq!(
                dialect.chat_reply_tools(Some(&body)).is_some(),
                dialect == Dialect::Responses,
                "{dialect:?}"
            );
        }
        assert!(Dialect::Responses.chat_reply_tools(None).is_none());
    }
}
