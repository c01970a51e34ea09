//! The OpenAI-compatible adapter: POST `{base_url}/chat/completions` with a bearer key, over a
//! pooled rustls client, with connect and first-byte timeouts.

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::{BoxFuture, Provider, ProviderError, UpstreamRequest, UpstreamResponse};
use crate::config::{ProviderConfig, Timeouts};

pub struct OpenAiProvider {
    name: String,
    url: String,
    client: reqwest::Client,
    timeouts: Timeouts,
}

impl OpenAiProvider {
    pub fn new(config: &ProviderConfig) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.api_key {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ProviderError::Internal(format!(
                        "the key of provider {} is not a valid header value",
                        config.name
                    ))
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.timeouts.connect)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("smartproxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            name: config.name.clone(),
            url: format!("{}/chat/completions", config.base_url),
            client,
            timeouts: config.timeouts,
        })
    }

    fn classify(&self, err: &reqwest::Error) -> ProviderError {
        let detail = error_chain(err);
        if err.is_connect() {
            ProviderError::Connect {
                provider: self.name.clone(),
                detail,
            }
        } else {
            ProviderError::Broken {
                provider: self.name.clone(),
                detail,
            }
        }
    }
}

impl Provider for OpenAiProvider {
    fn send(
        &self,
        request: UpstreamRequest,
    ) -> BoxFuture<'_, Result<UpstreamResponse, ProviderError>> {
        Box::pin(async move {
            let accept = if request.stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            let send = self
                .client
                .post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, accept)
                .header("x-request-id", &request.request_id)
                .body(request.body)
                .send();
            let response = match tokio::time::timeout(self.timeouts.first_byte, send).await {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => return Err(self.classify(&err)),
                Err(_) => {
                    return Err(ProviderError::FirstByteTimeout {
                        provider: self.name.clone(),
                        seconds: self.timeouts.first_byte.as_secs_f64(),
                    });
                }
            };
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let name = self.name.clone();
            let body = response
                .bytes_stream()
                .map(move |chunk: Result<Bytes, reqwest::Error>| {
                    chunk.map_err(|e| ProviderError::Broken {
                        provider: name.clone(),
                        detail: error_chain(&e),
                    })
                })
                .boxed();
            Ok(UpstreamResponse {
                status,
                content_type,
                retry_after,
                body: with_idle_timeout(body, self.timeouts.idle, self.name.clone()),
            })
        })
    }
}

/// Ends a body stream with an error when no chunk arrives for `idle`.
pub fn with_idle_timeout(
    body: super::BodyStream,
    idle: std::time::Duration,
    provider: String,
) -> super::BodyStream {
    futures_util::stream::unfold((body, false), move |(mut body, done)| {
        let provider = provider.clone();
        async move {
            if done {
                return None;
            }
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(item)) => Some((item, (body, false))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(ProviderError::IdleTimeout {
                        provider,
                        seconds: idle.as_secs_f64(),
                    }),
                    (body, true),
                )),
            }
        }
    })
    .boxed()
}

/// The error and its causes on one line; reqwest's top-level message alone says little.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
