//! What every HTTP provider shares: a pooled rustls client with the provider's auth headers,
//! connect / first-byte / idle timeouts, and errors classified by where they came from.

use crate::config::tls::error_chain;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use http_body_util::BodyExt;
use reqwest::header::{
    ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION,
    RETRY_AFTER, USER_AGENT,
};

use super::plain_http::{self, PlainClient};
use super::{BodyStream, ProviderError, WireFormat};
use crate::config::{ProviderConfig, Timeouts};

const USER_AGENT_VALUE: &str = concat!("smartproxy/", env!("CARGO_PKG_VERSION"));

pub struct HttpClient {
    pub name: String,
    transport: Transport,
    /// The provider's key headers, added per request so that a pass-through request can send
    /// the client's credential instead.
    auth: HeaderMap,
    timeouts: Timeouts,
}

/// How requests reach the provider.
enum Transport {
    /// Plain HTTP with no proxy in the environment: hyper-util's client directly.
    Plain(Box<PlainClient>),
    /// HTTPS, or any upstream when a proxy variable is set.
    Reqwest(reqwest::Client),
}

/// A provider URL, parsed once at start-up in the forms both transports take.
#[derive(Debug, Clone)]
pub struct UpstreamUrl {
    url: reqwest::Url,
    uri: http::Uri,
}

impl UpstreamUrl {
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }
}

/// A reply's status line and headers, with its body still streaming.
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// `x-should-retry: false` (OpenAI's header, which smartproxy's own refusals send).
    pub final_refusal: bool,
    pub body: BodyStream,
    /// The body is gzip-compressed (`Content-Encoding: gzip`); `send` decodes it.
    gzip: bool,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn into_upstream(self, format: WireFormat) -> super::UpstreamResponse {
        super::UpstreamResponse {
            status: self.status,
            content_type: self.content_type,
            retry_after: self.retry_after,
            final_refusal: self.final_refusal,
            format,
            body: self.body,
        }
    }

    /// The reply of `provider`; a redirect is an error, never followed.
    fn new(
        provider: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: BodyStream,
    ) -> Result<Self, ProviderError> {
        let header = |name: HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if status.is_redirection() {
            return Err(ProviderError::Redirected {
                provider: provider.to_owned(),
                status: status.as_u16(),
                location: header(LOCATION).map_or_else(
                    || "nowhere (no Location)".to_owned(),
                    |l| crate::format::redact_url(&l).into_owned(),
                ),
            });
        }
        let gzip = header(CONTENT_ENCODING).is_some_and(|coding| {
            let coding = coding.trim();
            coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")
        });
        Ok(Self {
            status: status.as_u16(),
            content_type: header(CONTENT_TYPE),
            retry_after: retry_after(headers),
            final_refusal: header(HeaderName::from_static("x-should-retry"))
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            body,
            gzip,
        })
    }
}

/// The wait a provider asks for, as a `Retry-After` value: OpenAI's `retry-after-ms` when it
/// holds a number of milliseconds (OpenAI's SDKs read it first, and so do we), else
/// `Retry-After` as sent. Milliseconds become fractional seconds (`250` -> `0.25`), which the
/// retry loop and the SDKs reading a forwarded `Retry-After` both parse.
fn retry_after(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ms = text("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    match ms {
        Some(ms) => Some((ms / 1000.0).to_string()),
        None => text(RETRY_AFTER.as_str()).map(str::to_owned),
    }
}

impl HttpClient {
    /// `auth` are the headers that carry the provider's key; they are marked sensitive so they
    /// never show up in debug output.
    pub fn new(
        config: &ProviderConfig,
        auth: Vec<(HeaderName, String)>,
    ) -> Result<Self, ProviderError> {
        let mut auth_headers = HeaderMap::new();
        for (name, value) in auth {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                ProviderError::Internal(format!(
                    "the key of provider {} is not a valid header value",
                    config.name
                ))
            })?;
            value.set_sensitive(true);
            auth_headers.insert(name, value);
        }
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        let base = parse_url(&config.name, &config.base_url)?.url;
        let transport = match PlainClient::for_url(&base, config.timeouts.connect, &headers) {
            Some(plain) => Transport::Plain(Box::new(plain)),
            None => {
                let mut builder = reqwest::Client::builder()
                    .default_headers(headers)
                    .connect_timeout(config.timeouts.connect)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .tcp_nodelay(true)
                    // Like the direct client: a redirect is reported, not followed with the key.
                    .redirect(reqwest::redirect::Policy::none());
                if plain_http::is_loopback(&base) {
                    builder = builder.no_proxy();
                }
                if let Some(bundle) = &config.ca_bundle {
                    let certs =
                        crate::config::tls::ca_certificates(&bundle.pem).map_err(|problem| {
                            ProviderError::Internal(format!(
                                "provider {}: tls.ca_file {}: {problem}",
                                config.name,
                                bundle.path.display()
                            ))
                        })?;
                    for cert in certs {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                Transport::Reqwest(builder.build().map_err(|e| {
                    ProviderError::Internal(format!("cannot build the HTTP client: {e}"))
                })?)
            }
        };
        Ok(Self {
            name: config.name.clone(),
            transport,
            auth: auth_headers,
            timeouts: config.timeouts,
        })
    }

    /// POSTs a JSON body with the provider's key; resolves when the status and headers arrive
    /// (the first byte).
    pub async fn post(
        &self,
        url: &UpstreamUrl,
        body: Bytes,
        stream: bool,
        extra: &[(HeaderName, &str)],
    ) -> Result<RawResponse, ProviderError> {
        self.send(http::Method::POST, url, body, stream, extra, None)
            .await
    }

    /// `post`, with `credential` (the client's own, passed through) in place of the provider's
    /// key when given.
    pub async fn post_as(
        &self,
        url: &UpstreamUrl,
        body: Bytes,
        stream: bool,
        extra: &[(HeaderName, &str)],
        credential: Option<&super::ClientCredential>,
    ) -> Result<RawResponse, ProviderError> {
        self.send(http::Method::POST, url, body, stream, extra, credential)
            .await
    }

    /// GETs a JSON resource (a stored response).
    pub async fn get(
        &self,
        url: &UpstreamUrl,
        extra: &[(HeaderName, &str)],
    ) -> Result<RawResponse, ProviderError> {
        self.send(http::Method::GET, url, Bytes::new(), false, extra, None)
            .await
    }

    async fn send(
        &self,
        method: http::Method,
        url: &UpstreamUrl,
        body: Bytes,
        stream: bool,
        extra: &[(HeaderName, &str)],
        credential: Option<&super::ClientCredential>,
    ) -> Result<RawResponse, ProviderError> {
        let mut headers = HeaderMap::with_capacity(6 + extra.len());
        match credential {
            Some(credential) => {
                let (name, value) = credential.header().ok_or_else(|| {
                    ProviderError::Rejected(
                        "the client's credential is not a valid header value".to_owned(),
                    )
                })?;
                headers.insert(name, value);
            }
            None => headers.extend(self.auth.clone()),
        }
        if method == http::Method::POST {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        for (name, value) in extra {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
        let sent = match &self.transport {
            Transport::Plain(client) => tokio::time::timeout(
                self.timeouts.first_byte,
                client.send(method.clone(), &url.uri, body, headers),
            )
            .await
            .map(|reply| match reply {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body_stream(&self.name, body.into_data_stream());
                    RawResponse::new(&self.name, parts.status, &parts.headers, body)
                }
                // reqwest names the URL in its message; say it here too.
                Err(err) => Err(self.classify(
                    format!("{method} {}: {}", url.uri, error_chain(&err)),
                    err.is_connect(),
                )),
            }),
            Transport::Reqwest(client) => {
                let request = client
                    .request(method.clone(), url.url.clone())
                    .headers(headers)
                    .body(body);
                tokio::time::timeout(self.timeouts.first_byte, request.send())
                    .await
                    .map(|reply| match reply {
                        Ok(response) => {
                            let mut raw = RawResponse::new(
                                &self.name,
                                response.status(),
                                response.headers(),
                                futures_util::stream::empty().boxed(),
                            )?;
                            raw.body = body_stream(&self.name, response.bytes_stream());
                            Ok(raw)
                        }
                        Err(err) => Err(self.classify(error_chain(&err), err.is_connect())),
                    })
            }
        };
        let mut response = sent.map_err(|_| ProviderError::FirstByteTimeout {
            provider: self.name.clone(),
            seconds: self.timeouts.first_byte.as_secs_f64(),
        })??;
        // Clients get the reply without its `Content-Encoding`, and smartproxy reads its usage:
        // a compressed body is decoded as it streams.
        if response.gzip {
            response.gzip = false;
            let body = std::mem::replace(&mut response.body, futures_util::stream::empty().boxed());
            response.body = gunzip(body, self.name.clone());
        }
        response.body = with_idle_timeout(response.body, self.timeouts.idle, self.name.clone());
        Ok(response)
    }

    fn classify(&self, detail: String, connect: bool) -> ProviderError {
        let provider = self.name.clone();
        // Clients read this: a password or key in the provider's URL must not be in it.
        let mut detail = crate::format::redact_url(&detail).into_owned();
        if detail.contains("certificate") {
            detail.push_str(
                " (a provider behind a private or corporate CA: trust that CA with `tls: {ca_file: ca.pem}` in the provider's config)",
            );
        }
        if connect {
            ProviderError::Connect { provider, detail }
        } else {
            ProviderError::Broken { provider, detail }
        }
    }
}

/// A transport's body chunks as a `BodyStream`, errors naming the provider.
fn body_stream<E: std::error::Error>(
    provider: &str,
    chunks: impl futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
) -> BodyStream {
    let provider = provider.to_owned();
    chunks
        .map(move |chunk| {
            chunk.map_err(|e| ProviderError::Broken {
                provider: provider.clone(),
                detail: error_chain(&e),
            })
        })
        .boxed()
}

/// Decodes a gzip body chunk by chunk, so a compressed stream still reaches the client event by
/// event; a body that is not gzip, or ends mid-member, breaks the stream.
fn gunzip(body: BodyStream, provider: String) -> BodyStream {
    use std::io::Write;
    let broken = move |e: std::io::Error| ProviderError::Broken {
        provider: provider.clone(),
        detail: format!("the gzip-encoded reply could not be decoded: {e}"),
    };
    let decoder = flate2::write::GzDecoder::new(Vec::new());
    futures_util::stream::unfold(Some((body, decoder, broken)), |state| async move {
        let (mut body, mut decoder, broken) = state?;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = decoder.write_all(&chunk).and_then(|()| decoder.flush()) {
                        return Some((Err(broken(e)), None));
                    }
                    let out = std::mem::take(decoder.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((body, decoder, broken))));
                    }
                }
                Some(Err(err)) => return Some((Err(err), None)),
                None => {
                    return match decoder.finish() {
                        Ok(rest) if rest.is_empty() => None,
                        Ok(rest) => Some((Ok(Bytes::from(rest)), None)),
                        Err(e) => Some((Err(broken(e)), None)),
                    };
                }
            }
        }
    })
    .boxed()
}

/// Ends a body stream with an error when no chunk arrives for `idle`.
pub fn with_idle_timeout(body: BodyStream, idle: Duration, provider: String) -> BodyStream {
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

/// How a translating provider turns its native reply into OpenAI's format.
pub struct Translation<C, W> {
    /// The native error body -> an OpenAI error body.
    pub error: fn(u16, &[u8]) -> Vec<u8>,
    /// Native stream -> OpenAI events.
    pub stream: C,
    /// Native whole reply -> an OpenAI `chat.completion`.
    pub whole: W,
}

/// Turns a native reply into an OpenAI-format `UpstreamResponse`: errors translated whole, a
/// stream converted as it arrives, a whole reply read and converted.
pub async fn into_openai<C, W>(
    response: RawResponse,
    stream: bool,
    max_reply_bytes: usize,
    provider: &str,
    translation: Translation<C, W>,
) -> Result<super::UpstreamResponse, ProviderError>
where
    C: StreamConverter,
    W: FnOnce(&[u8]) -> Result<Vec<u8>, String>,
{
    let final_refusal = response.final_refusal;
    let openai = |status, content_type: &str, retry_after, body| super::UpstreamResponse {
        status,
        content_type: Some(content_type.to_owned()),
        retry_after,
        final_refusal,
        format: WireFormat::OpenAi,
        body,
    };
    if !response.is_success() {
        let (status, retry_after) = (response.status, response.retry_after.clone());
        let body = super::collect(response.body, max_reply_bytes, provider).await?;
        let translated = Bytes::from((translation.error)(status, &body));
        return Ok(openai(
            status,
            "application/json",
            retry_after,
            once(translated),
        ));
    }
    if stream {
        let body = convert_stream(response.body, translation.stream);
        return Ok(openai(response.status, "text/event-stream", None, body));
    }
    let body = super::collect(response.body, max_reply_bytes, provider).await?;
    let translated = (translation.whole)(&body).map_err(|detail| ProviderError::Broken {
        provider: provider.to_owned(),
        detail: format!("unreadable reply: {detail}"),
    })?;
    Ok(openai(
        response.status,
        "application/json",
        None,
        once(Bytes::from(translated)),
    ))
}

/// Parses a provider URL once, at start-up, instead of on every request.
pub fn parse_url(provider: &str, url: &str) -> Result<UpstreamUrl, ProviderError> {
    let bad = |e: &dyn std::fmt::Display| {
        ProviderError::Internal(format!(
            "provider {provider}: bad URL `{}`: {e}",
            crate::format::redact_url(url)
        ))
    };
    let url = reqwest::Url::parse(url).map_err(|e| bad(&e))?;
    let uri = url.as_str().parse::<http::Uri>().map_err(|e| bad(&e))?;
    Ok(UpstreamUrl { url, uri })
}

/// A reply body made of one chunk.
pub fn once(bytes: Bytes) -> BodyStream {
    futures_util::stream::once(async move { Ok(bytes) }).boxed()
}

/// Converts a streamed body chunk by chunk (a provider's native stream into OpenAI events).
pub trait StreamConverter: Send + 'static {
    fn push(&mut self, chunk: &[u8]) -> Vec<Bytes>;
    fn finish(&mut self) -> Vec<Bytes>;
}

/// Applies `converter` to a body as it streams: each upstream chunk's output goes out at once.
pub fn convert_stream(body: BodyStream, converter: impl StreamConverter) -> BodyStream {
    futures_util::stream::unfold(Some((body, converter)), |state| async move {
        let (mut body, mut converter) = state?;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    let out = join(converter.push(&chunk));
                    if !out.is_empty() {
                        return Some((Ok(out), Some((body, converter))));
                    }
                }
                Some(Err(err)) => return Some((Err(err), None)),
                None => {
                    let out = join(converter.finish());
                    return (!out.is_empty()).then_some((Ok(out), None));
                }
            }
        }
    })
    .boxed()
}

fn join(parts: Vec<Bytes>) -> Bytes {
    match parts.len() {
        0 => Bytes::new(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => Bytes::from(parts.concat()),
    }
}

/// Seconds since the Unix epoch, for the `created` field of translated replies.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        type Headers = &'static [(&'static str, &'static str)];
        let cases: &[(Headers, Option<&str>)] = &[
            (&[("retry-after-ms", "250")], Some("0.25")),
            (
                &[("retry-after-ms", "1500"), ("retry-after", "2")],
                Some("1.5"),
            ),
            (&[("retry-after-ms", "120000")], Some("120")),
            (&[("retry-after", "7")], Some("7")),
            (
                &[("retry-after-ms", "soon"), ("retry-after", "3")],
                Some("3"),
            ),
            (&[("retry-after-ms", "-5")], None),
            (&[], None),
        ];
        for (pairs, want) in cases {
            let mut map = HeaderMap::new();
            for (name, value) in *pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            assert_eq!(retry_after(&map).as_deref(), *want, "{pairs:?}");
        }
    }
}
