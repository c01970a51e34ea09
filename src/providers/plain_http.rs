//! Plain-HTTP upstreams (local servers: Ollama, vLLM, llama.cpp, a box on the LAN) go through
//! hyper-util's pooled client directly. reqwest does per-request work that such a hop does not
//! need: it prints the URL and parses it again for its redirect layer, copies the header map and
//! drives the request through a stack of boxed services; `benches/proxy_overhead` measured that at
//! a tenth of the proxy's CPU per request. HTTPS upstreams, and any upstream when an HTTP proxy is
//! set in the environment, stay on reqwest, which handles TLS and proxies.

use std::time::Duration;

use bytes::Bytes;
use http::header::Entry;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The variables through which reqwest would send a plain-HTTP request via a proxy.
const PROXY_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

pub struct PlainClient {
    client: Client<HttpConnector, Full<Bytes>>,
    /// Sent with every request: the provider's auth headers and the user agent.
    default_headers: HeaderMap,
}

impl PlainClient {
    /// The client for `url`, when it is plain HTTP and no proxy variable is set; `None` means
    /// reqwest should carry it.
    pub fn for_url(
        url: &str,
        connect_timeout: Duration,
        default_headers: &HeaderMap,
    ) -> Option<Self> {
        let plain = url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
        (plain && !proxy_in_environment()).then(|| Self::new(connect_timeout, default_headers))
    }

    fn new(connect_timeout: Duration, default_headers: &HeaderMap) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            default_headers: default_headers.clone(),
        }
    }

    /// POSTs `body` to `uri` with the default headers plus `headers`; resolves with the status
    /// and headers.
    pub async fn post(
        &self,
        uri: &Uri,
        body: Bytes,
        mut headers: HeaderMap,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        // As reqwest does: the request's own headers win. hyper-util adds `Host` from the URI.
        for (name, value) in &self.default_headers {
            if let Entry::Vacant(entry) = headers.entry(name) {
                entry.insert(value.clone());
            }
        }
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

fn proxy_in_environment() -> bool {
    PROXY_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|value| !value.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_get_the_direct_client() {
        let headers = HeaderMap::new();
        let timeout = Duration::from_secs(1);
        // The test process may have a proxy set; then nothing takes the direct path.
        let expect_plain = !proxy_in_environment();
        assert_eq!(
            PlainClient::for_url("http://127.0.0.1:8080/v1", timeout, &headers).is_some(),
            expect_plain
        );
        assert_eq!(
            PlainClient::for_url("HTTP://localhost/v1", timeout, &headers).is_some(),
            expect_plain
        );
        assert!(PlainClient::for_url("https://api.openai.com/v1", timeout, &headers).is_none());
        assert!(PlainClient::for_url("http:/", timeout, &headers).is_none());
    }
}
