//! The Ollama adapter: POST `{base_url}/api/chat` in Ollama's native format, translated from and
//! back to OpenAI's (`translate::ollama`); streams are NDJSON lines turned into OpenAI events,
//! usage from `prompt_eval_count` and `eval_count`.

use bytes::Bytes;

use super::http::{self, HttpClient, StreamConverter};
use super::{
    BoxFuture, Endpoint, Provider, ProviderError, UpstreamRequest, UpstreamResponse, WireFormat,
};
use crate::config::ProviderConfig;
use crate::translate::ollama::{self as translate, LineDecoder, SseFromNdjson};

pub struct OllamaProvider {
    http: HttpClient,
    url: http::UpstreamUrl,
}

impl OllamaProvider {
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        // A hosted Ollama behind a gateway may want a bearer key; a local one needs none.
        let auth = config
            .api_key
            .iter()
            .map(|key| {
                (
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {}", key.expose()),
                )
            })
            .collect();
        let base = config
            .base_url
            .trim_end_matches("/v1")
            .trim_end_matches("/api");
        Ok(Self {
            http: HttpClient::new(config, auth)?,
            url: http::parse_url(&config.name, &format!("{base}/api/chat"))?,
        })
    }
}

impl Provider for OllamaProvider {
    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        Box::pin(async move {
            if request.endpoint != Endpoint::Chat || request.format != WireFormat::OpenAi {
                return Err(ProviderError::Rejected(
                    "this request needs an OpenAI-compatible target, not Ollama's native API"
                        .to_owned(),
                ));
            }
            let body = translate::request_to_ollama(&request.body, &request.model)
                .map_err(|e| ProviderError::Rejected(e.to_string()))?;
            let response = self
                .http
                .post(&self.url, Bytes::from(body), request.stream, &[])
                .await?;
            let created = http::unix_now();
            let id = format!("chatcmpl-{}", request.request_id.trim_start_matches("req_"));
            let translation = http::Translation {
                error: translate::error_from_ollama,
                stream: OllamaLines {
                    lines: LineDecoder::new(),
                    inner: SseFromNdjson::new(&request.model, true, created, id.clone()),
                },
                whole: |body: &[u8]| {
                    translate::response_from_ollama(body, created, &id)
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

/// Ollama's NDJSON lines in, OpenAI chunks out.
struct OllamaLines {
    lines: LineDecoder,
    inner: SseFromNdjson,
}

impl StreamConverter for OllamaLines {
    fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.lines.push(chunk);
        let mut out = Vec::new();
        while let Some(line) = self.lines.next_line() {
            out.extend(self.inner.push_line(&line));
        }
        out
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Some(line) = self.lines.finish() {
            out.extend(self.inner.push_line(&line));
        }
        out.extend(self.inner.finish());
        out
    }
}
