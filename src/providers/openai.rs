//! The OpenAI-compatible adapter: POST `{base_url}/chat/completions` (or `/completions`) with a
//! bearer key. Bodies go out and come back as they are.

use reqwest::header::AUTHORIZATION;

use super::http::HttpClient;
use super::{
    BoxFuture, Endpoint, Provider, ProviderError, UpstreamRequest, UpstreamResponse, WireFormat,
};
use crate::config::ProviderConfig;

pub struct OpenAiProvider {
    http: HttpClient,
    base_url: String,
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
            base_url: config.base_url.clone(),
        })
    }
}

impl Provider for OpenAiProvider {
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
            let path = match request.endpoint {
                Endpoint::Chat => "chat/completions",
                Endpoint::Completions => "completions",
            };
            let url = format!("{}/{path}", self.base_url);
            let headers = [("x-request-id".to_owned(), request.request_id.clone())];
            let response = self
                .http
                .post(&url, request.body, request.stream, &headers)
                .await?;
            Ok(response.into_upstream(WireFormat::OpenAi))
        })
    }
}
