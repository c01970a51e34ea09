//! The OpenAI-compatible adapter: POST `{base_url}/chat/completions` (or `/completions`) with a
//! bearer key. Bodies go out and come back as they are.

use reqwest::header::{AUTHORIZATION, HeaderName};

use super::http::{self, HttpClient};
use super::{
    BoxFuture, Endpoint, Provider, ProviderError, UpstreamRequest, UpstreamResponse, WireFormat,
};
use crate::config::ProviderConfig;

/// Built at compile time rather than parsed on every request.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct OpenAiProvider {
    http: HttpClient,
    chat_url: http::UpstreamUrl,
    completions_url: http::UpstreamUrl,
    embeddings_url: http::UpstreamUrl,
    responses_url: http::UpstreamUrl,
}

impl OpenAiProvider {
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let auth = config
            .api_key
            .iter()
            .map(|key| (AUTHORIZATION, format!("Bearer {}", key.expose())))
            .collect();
        Ok(Self {
            http: HttpClient::new(config, auth)?,
            chat_url: http::parse_url(
                &config.name,
                &format!("{}/chat/completions", config.base_url),
            )?,
            completions_url: http::parse_url(
                &config.name,
                &format!("{}/completions", config.base_url),
            )?,
            embeddings_url: http::parse_url(
                &config.name,
                &format!("{}/embeddings", config.base_url),
            )?,
            responses_url: http::parse_url(
                &config.name,
                &format!("{}/responses", config.base_url),
            )?,
        })
    }
}

impl Provider for OpenAiProvider {
    fn retrieve_response(
        &self,
        path: &str,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        let url = http::parse_url(
            &self.http.name,
            &format!("{}/{path}", self.responses_url.as_str()),
        );
        Box::pin(async move {
            let response = self.http.get(&url?, &[]).await?;
            Ok(response.into_upstream(WireFormat::OpenAi))
        })
    }

    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        Box::pin(async move {
            if request.format != WireFormat::OpenAi {
                return Err(ProviderError::Internal(format!(
                    "{} speaks only OpenAI's format",
                    self.http.name
                )));
            }
            let url = match request.endpoint {
                Endpoint::Chat => &self.chat_url,
                Endpoint::Completions => &self.completions_url,
                Endpoint::Embeddings => &self.embeddings_url,
                Endpoint::Responses => &self.responses_url,
            };
            let id = [(X_REQUEST_ID, request.request_id.as_str())];
            // Extra headers are rare (a nested run's session id, for its parent's proxy): the
            // common request sends from the array above without building a list.
            let extra: Vec<(HeaderName, &str)>;
            let headers: &[(HeaderName, &str)] = if request.headers.is_empty() {
                &id
            } else {
                extra = id
                    .into_iter()
                    .chain(request.headers.iter().filter_map(|(name, value)| {
                        Some((
                            HeaderName::from_bytes(name.as_bytes()).ok()?,
                            value.as_str(),
                        ))
                    }))
                    .collect();
                &extra
            };
            let response = self
                .http
                .post(url, request.body, request.stream, headers)
                .await?;
            Ok(response.into_upstream(WireFormat::OpenAi))
        })
    }
}
