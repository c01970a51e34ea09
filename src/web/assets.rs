//! The stylesheet, the chart script and the live-update script, compiled into the binary and served with an ETag and a
//! cache lifetime (no CDN, no build step).

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use sha2::{Digest, Sha256};

const STYLE: &str = include_str!("assets/style.css");
const CHART: &str = include_str!("assets/chart.js");
const LIVE: &str = include_str!("assets/live.js");

/// How long a browser may reuse an asset before asking again (with its ETag).
const CACHE: &str = "public, max-age=3600, must-revalidate";

fn etag(text: &str) -> String {
    format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(text.as_bytes()))[..16]
    )
}

fn etags() -> &'static [String; 3] {
    static TAGS: OnceLock<[String; 3]> = OnceLock::new();
    TAGS.get_or_init(|| [etag(STYLE), etag(CHART), etag(LIVE)])
}

/// Answers `/assets/{name}`.
pub fn serve(name: &str, headers: &HeaderMap) -> Response<Bytes> {
    let [style_tag, chart_tag, live_tag] = etags();
    let (body, kind, tag) = match name {
        "style.css" => (STYLE, "text/css; charset=utf-8", style_tag),
        "chart.js" => (CHART, "text/javascript; charset=utf-8", chart_tag),
        "live.js" => (LIVE, "text/javascript; charset=utf-8", live_tag),
        _ => {
            let mut response = Response::new(Bytes::from_static(b"not found"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes());
    let mut response = if fresh {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Bytes::from_static(body.as_bytes()))
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, value);
    }
    response
}
