//! `server_names:` and `allowed_origins:`, checked and lower-cased: the names and web origins
//! the listeners accept besides loopback ones (`crate::http_guard` applies them).

use super::Validator;
use crate::config::raw::RawConfig;

/// The names and origins the listeners accept besides loopback ones (`server_names:` and
/// `allowed_origins:`), lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Browsers {
    /// Host names the listeners may be reached by (a reverse proxy's public name).
    pub server_names: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose pages and apps may send requests.
    pub origins: Vec<String>,
}

impl Validator<'_> {
    pub(super) fn browsers(&mut self, raw: &RawConfig) -> Browsers {
        let mut allowed = Browsers::default();
        for (i, name) in raw.server_names.iter().enumerate() {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if valid {
                allowed.server_names.push(name);
            } else {
                self.error(
                    &format!("server_names[{i}]"),
                    format!(
                        "`{name}` is not a host name: write the name alone, e.g. `proxy.example.com` (no scheme, port or path)"
                    ),
                );
            }
        }
        for (i, origin) in raw.allowed_origins.iter().enumerate() {
            let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
            let valid = origin.split_once("://").is_some_and(|(scheme, host)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !host.is_empty()
                    && !host.contains(['/', '*', '@', '?', '#', ' '])
            });
            if valid {
                allowed.origins.push(origin);
            } else {
                self.error(
                    &format!("allowed_origins[{i}]"),
                    format!(
                        "`{origin}` is not an origin: write `scheme://host[:port]` exactly as the browser sends it, e.g. `https://app.example.com` or `chrome-extension://<id>` (no path, no wildcard)"
                    ),
                );
            }
        }
        allowed
    }
}
