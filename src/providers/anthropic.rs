//! The Anthropic adapter: POST `{base_url}/v1/messages` with `x-api-key` (or, passed through,
//! the client's own credential) and `anthropic-version`. OpenAI-format requests are translated (`translate::anthropic`) and the
//! reply translated back, streams event by event; Anthropic-format requests from Anthropic
//! clients pass through untouched, thinking blocks and signatures included.

use bytes::Bytes;
use reqwest::header::HeaderName;

use super::http::{self, HttpClient, StreamConverter};
use super::{
    BoxFuture, Endpoint, Provider, ProviderError, UpstreamRequest, UpstreamResponse, WireFormat,
};
use crate::config::ProviderConfig;
use crate::translate::anthropic::{self as translate, StreamFromAnthropic};
use crate::wire::sse;

/// The API version sent when the client named none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    http: HttpClient,
    url: http::UpstreamUrl,
    default_max_tokens: u32,
}

impl AnthropicProvider {
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let auth = config
            .api_key
            .iter()
            .map(|key| {
                (
                    HeaderName::from_static("x-api-key"),
                    key.expose().to_owned(),
                )
            })
            .collect();
        let base = config.base_url.trim_end_matches("/v1");
        Ok(Self {
            http: HttpClient::new(config, auth)?,
            url: http::parse_url(&config.name, &format!("{base}/v1/messages"))?,
            default_max_tokens: config.default_max_tokens,
        })
    }
}

impl Provider for AnthropicProvider {
    fn native_format(&self) -> WireFormat {
        WireFormat::Anthropic
    }

    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        Box::pin(async move {
            if request.endpoint != Endpoint::Chat {
                return Err(ProviderError::Rejected(
                    "legacy /v1/completions needs an OpenAI-compatible target".to_owned(),
                ));
            }
            // A name that is no valid header name is left out, as before.
            let mut headers: Vec<(HeaderName, &str)> = request
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((
                        HeaderName::from_bytes(name.as_bytes()).ok()?,
                        value.as_str(),
                    ))
                })
                .collect();
            if !headers
                .iter()
                .any(|(n, _)| n.as_str().eq_ignore_ascii_case("anthropic-version"))
            {
                headers.push((
                    HeaderName::from_static("anthropic-version"),
                    ANTHROPIC_VERSION,
                ));
            }
            if request.format == WireFormat::Anthropic {
                let response = self
                    .http
                    .post_as(
                        &self.url,
                        request.body,
                        request.stream,
                        &headers,
                        request.credential.as_ref(),
                    )
                    .await?;
                return Ok(response.into_upstream(WireFormat::Anthropic));
            }
            let body = translate::request_to_anthropic(
                &request.body,
                &request.model,
                self.default_max_tokens,
            )
            .map_err(|e| ProviderError::Rejected(e.to_string()))?;
            let response = self
                .http
                .post_as(
                    &self.url,
                    Bytes::from(body),
                    request.stream,
                    &headers,
                    request.credential.as_ref(),
                )
                .await?;
            let created = http::unix_now();
            let translation = http::Translation {
                error: translate::error_from_anthropic,
                stream: AnthropicEvents {
                    decoder: sse::Decoder::new(),
                    inner: StreamFromAnthropic::new(true, created),
                },
                whole: |body: &[u8]| {
                    translate::response_from_anthropic(body, created)
                        .map(|t| t.body)
                        .map_err(|e| e.to_string())
                },
            };
            http::into_openai(
                response,
                request.stream,
                request.max_reply_bytes,
                &self.http.name,
                translation,
            )
            .await
        })
    }
}

/// Anthropic's named SSE events in, OpenAI chunks out.
struct AnthropicEvents {
    decoder: sse::Decoder,
    inner: StreamFromAnthropic,
}

impl StreamConverter for AnthropicEvents {
    fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.decoder.push(chunk);
        let mut out = Vec::new();
        while let Some(event) = self.decoder.next_event() {
            out.extend(self.inner.push(event.name(), &event.data));
        }
        out
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(event) = self.decoder.take_rest() {
            out.extend(self.inner.push(event.name(), &event.data));
        }
        out.extend(self.inner.finish());
        out
    }
}
