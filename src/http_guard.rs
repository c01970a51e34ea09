//! Who may reach a listener from a browser: the `Host` a request names (a DNS-rebinding page
//! names its own domain) and the site it comes from (`Origin`, `Sec-Fetch-Site`), checked on
//! every listener before anything else. PURE: the request's headers and the listener's address
//! in, a verdict out; each listener words and records its own refusal.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Method, Uri};

pub use crate::config::Browsers as Allowed;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The `Host` is not a name this listener answers to.
    Host(String),
    /// A page on another site sent it: its `Origin`, or `Sec-Fetch-Site: cross-site`.
    CrossSite(String),
}

impl Refusal {
    /// The message a client sees.
    pub fn message(&self) -> String {
        match self {
            Self::Host(host) => format!(
                "Host `{host}` is not a name this smartproxy answers to: only localhost, a loopback \
                 address or a name listed under `server_names:` in the config is accepted (a page \
                 reaching 127.0.0.1 through its own domain is a DNS-rebinding attack)"
            ),
            Self::CrossSite(from) => format!(
                "refused a request sent by a web page on another site ({from}): browsers may only \
                 reach smartproxy from loopback pages or origins listed under `allowed_origins:` \
                 in the config. SDKs and CLIs send no Origin and are not affected"
            ),
        }
    }
}

/// Checks `Host` (and a request-line authority) and then `Origin`/`Sec-Fetch-Site`.
pub fn check(
    allowed: &Allowed,
    local: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let host = headers
        .get(http::header::HOST)
        .map(|v| v.to_str().unwrap_or("?"));
    for authority in host.into_iter().chain(uri.authority().map(|a| a.as_str())) {
        if !host_allowed(allowed, local, authority) {
            return Err(Refusal::Host(authority.chars().take(100).collect()));
        }
    }
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        return if origin_allowed(allowed, origin, host) {
            Ok(())
        } else {
            Err(Refusal::CrossSite(format!(
                "Origin {}",
                origin.chars().take(100).collect::<String>()
            )))
        };
    }
    // No Origin: a link followed or a page loaded. A plain navigation is let in (only the user
    // sees the answer, and it changes nothing); any other cross-site request is not.
    let fetch = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let navigation = matches!(*method, Method::GET | Method::HEAD)
        && fetch("sec-fetch-mode") == Some("navigate");
    if fetch("sec-fetch-site") == Some("cross-site") && !navigation {
        return Err(Refusal::CrossSite("Sec-Fetch-Site: cross-site".to_owned()));
    }
    Ok(())
}

/// Whether a model request's body is declared JSON, or not declared at all (what a script
/// that sets no header sends; a browser always declares a form or text body, and a page's
/// `fetch` without one carries an `Origin`). A web page can send `text/plain`, a form or
/// `multipart/form-data` without a preflight; any other type needs one, never granted.
pub fn json_or_undeclared(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The host part of `host[:port]` or `[v6][:port]`, lower-cased.
fn host_name(authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let name = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    name.to_ascii_lowercase()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Loopback names on any port (an SSH tunnel or a container's port map changes the port, and
/// a rebinding page cannot name loopback), the names in `server_names`, and on a listener
/// that is not on loopback any address: an address cannot be rebound, only a name can.
fn host_allowed(allowed: &Allowed, local: SocketAddr, authority: &str) -> bool {
    if authority.contains('@') || authority.contains('/') {
        return false;
    }
    let name = host_name(authority);
    is_loopback_name(&name)
        || (!local.ip().is_loopback() && name.parse::<IpAddr>().is_ok())
        || allowed.server_names.contains(&name)
}

/// Loopback pages (any scheme's `localhost` or loopback address, any port), the listener's own
/// pages (`Origin` naming the `Host` already checked), and the origins listed in the config.
fn origin_allowed(allowed: &Allowed, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if allowed.origins.contains(&origin) {
        return true;
    }
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if authority.contains(['/', '@']) || authority.is_empty() {
        return false;
    }
    is_loopback_name(&host_name(authority))
        || host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    fn verdict(local: &str, pairs: &[(&'static str, &str)]) -> Result<(), Refusal> {
        let allowed = Allowed {
            server_names: vec!["proxy.example.com".to_owned()],
            origins: vec!["chrome-extension://abcdef".to_owned()],
        };
        let uri: Uri = "/v1/chat/completions".parse().unwrap();
        check(
            &allowed,
            local.parse().unwrap(),
            &Method::POST,
            &uri,
            &headers(pairs),
        )
    }

    #[test]
    fn hosts() {
        let lo = "127.0.0.1:4100";
        for ok in [
            "127.0.0.1:4100",
            "127.0.0.1",
            "localhost",
            "LOCALHOST:4100",
            "localhost:8080",
            "[::1]:4100",
            "[::1]",
            "127.0.0.2:4100",
            "proxy.example.com",
            "Proxy.Example.com:443",
        ] {
            assert_eq!(verdict(lo, &[("host", ok)]), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:4100",
            "localhost.evil.example:4100",
            "127.0.0.1.nip.io:4100",
            "192.168.1.5:4100",
            "user@127.0.0.1:4100",
            "",
        ] {
            assert!(
                matches!(verdict(lo, &[("host", bad)]), Err(Refusal::Host(_))),
                "{bad}"
            );
        }
        // Off loopback, an address is fine; a name still has to be listed.
        assert_eq!(
            verdict("0.0.0.0:4100", &[("host", "192.168.1.5:4100")]),
            Ok(())
        );
        assert!(verdict("0.0.0.0:4100", &[("host", "evil.example")]).is_err());
        // No Host at all is no browser (HTTP/1.0 tools).
        assert_eq!(verdict(lo, &[]), Ok(()));
    }

    #[test]
    fn origins_and_fetch_metadata() {
        let lo = "127.0.0.1:4100";
        let host = ("host", "127.0.0.1:4100");
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:4100",
            "https://[::1]:8443",
            "chrome-extension://abcdef",
        ] {
            assert_eq!(verdict(lo, &[host, ("origin", ok)]), Ok(()), "{ok}");
        }
        // The listener's own pages under a listed name.
        let named = ("host", "proxy.example.com");
        assert_eq!(
            verdict(lo, &[named, ("origin", "https://proxy.example.com")]),
            Ok(())
        );
        for bad in [
            "https://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://",
            "http://127.0.0.1@evil.example",
        ] {
            assert!(
                matches!(
                    verdict(lo, &[host, ("origin", bad)]),
                    Err(Refusal::CrossSite(_))
                ),
                "{bad}"
            );
        }
        // A loopback page on another port is cross-site to the browser, and still let in.
        assert_eq!(
            verdict(
                lo,
                &[
                    host,
                    ("origin", "http://localhost:3000"),
                    ("sec-fetch-site", "cross-site")
                ]
            ),
            Ok(())
        );
        assert!(verdict(lo, &[host, ("sec-fetch-site", "cross-site")]).is_err());
        assert_eq!(
            verdict(lo, &[host, ("sec-fetch-site", "same-origin")]),
            Ok(())
        );
        assert_eq!(verdict(lo, &[host, ("sec-fetch-site", "none")]), Ok(()));
    }

    #[test]
    fn a_link_followed_from_another_site_is_a_navigation() {
        let allowed = Allowed::default();
        let h = headers(&[
            ("host", "127.0.0.1:4101"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
        ]);
        let local = "127.0.0.1:4101".parse().unwrap();
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(check(&allowed, local, &Method::GET, &uri, &h), Ok(()));
        // A form posted from another site navigates too, and is refused.
        assert!(check(&allowed, local, &Method::POST, &uri, &h).is_err());
    }

    #[test]
    fn content_types() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/vnd.api+json"),
        ] {
            let h = ok.map_or_else(HeaderMap::new, |v| headers(&[("content-type", v)]));
            assert!(json_or_undeclared(&h), "{ok:?}");
        }
        for bad in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ] {
            assert!(
                !json_or_undeclared(&headers(&[("content-type", bad)])),
                "{bad}"
            );
        }
    }
}
