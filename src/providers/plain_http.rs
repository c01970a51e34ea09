//! Plain-HTTP upstreams (local servers: Ollama, vLLM, llama.cpp, a box on the LAN) go through
//! hyper-util's pooled client directly. reqwest does per-request work that such a hop does not
//! need: it prints the URL and parses it again for its redirect layer, copies the header map and
//! drives the request through a stack of boxed services; `benches/proxy_overhead` measured that at
//! a tenth of the proxy's CPU per request. HTTPS upstreams, and other hosts when an HTTP proxy is
//! set in the environment, stay on reqwest, which handles TLS and proxies.
//!
//! Loopback upstreams are never sent through a proxy (as Go's `ProxyFromEnvironment` does): a
//! corporate `HTTP_PROXY` cannot reach the Ollama on this machine.

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
    /// The client for `url`, when it is plain HTTP to loopback or with no proxy variable set;
    /// `None` means reqwest should carry it.
    pub fn for_url(
        url: &reqwest::Url,
        connect_timeout: Duration,
        default_headers: &HeaderMap,
    ) -> Option<Self> {
        let direct = url.scheme() == "http" && (is_loopback(url) || !proxy_in_environment());
        direct.then(|| Self::new(connect_timeout, default_headers))
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
    pub async fn send(
        &self,
        method: Method,
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
        *request.method_mut() = method;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;
        self.client.request(request).await
    }
}

/// `localhost` or a loopback address: a host no proxy should be asked to reach.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn proxy_in_environment() -> bool {
    PROXY_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|value| !value.is_empty()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_goes_direct_and_loopback_always_does() {
        let headers = HeaderMap::new();
        let timeout = Duration::from_secs(1);
        let direct = |url: &str| {
            PlainClient::for_url(&reqwest::Url::parse(url).unwrap(), timeout, &headers).is_some()
        };
        // The test process may have a proxy set; then only loopback takes the direct path.
        let no_proxy = !proxy_in_environment();
        assert_eq!(direct("http://192.168.1.20:8080/v1"), no_proxy);
        assert_eq!(direct("HTTP://gpu-box/v1"), no_proxy);
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:11434",
            "http://[::1]:8000/v1",
            "http://ollama.localhost/v1",
        ] {
            assert!(direct(url), "{url}");
        }
        assert!(!direct("https://api.openai.com/v1"));
        assert!(!direct("https://localhost:8443/v1"), "TLS needs reqwest");
    }
}
