//! Who may see the dashboard (SmolRouter's model): `WEBUI_SECURITY` = `NONE` |
//! `AUTH_WHEN_PROXIED` (default) | `ALWAYS_AUTH`, HS256 JWTs signed with `JWT_SECRET` (32+
//! characters, weak ones refused), reverse-proxy detection, and off loopback always auth.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie that holds a browser's token after `/login`.
pub const COOKIE: &str = "smartproxy_ui";
/// The shortest `JWT_SECRET` accepted.
pub const MIN_SECRET_LEN: usize = 32;
/// The example secret the docs show; refused like any other published value.
pub const DOCS_EXAMPLE_SECRET: &str = "replace-me-with-32-or-more-random-characters";

/// When the dashboard asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Never (loopback listeners only; requests from other hosts still need a token).
    None,
    /// When the request came through a reverse proxy or from another host.
    AuthWhenProxied,
    /// Always.
    AlwaysAuth,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Self, SecurityError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "NONE" => Ok(Self::None),
            "" | "AUTH_WHEN_PROXIED" => Ok(Self::AuthWhenProxied),
            "ALWAYS_AUTH" => Ok(Self::AlwaysAuth),
            _ => Err(SecurityError::Mode(text.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::AuthWhenProxied => "AUTH_WHEN_PROXIED",
            Self::AlwaysAuth => "ALWAYS_AUTH",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecurityError {
    #[error("WEBUI_SECURITY={0:?} is not one of NONE, AUTH_WHEN_PROXIED, ALWAYS_AUTH")]
    Mode(String),
    #[error(
        "JWT_SECRET is too short ({0} characters): use {MIN_SECRET_LEN} or more random characters, e.g. `export JWT_SECRET=$(openssl rand -hex 32)`"
    )]
    ShortSecret(usize),
    #[error(
        "JWT_SECRET is a well-known or guessable value ({0}): anyone could sign dashboard tokens with it. Use `export JWT_SECRET=$(openssl rand -hex 32)`"
    )]
    WeakSecret(&'static str),
    #[error(
        "WEBUI_SECURITY=NONE is refused on {0}: off loopback the dashboard always requires a token. Use AUTH_WHEN_PROXIED or ALWAYS_AUTH with JWT_SECRET set, or listen on 127.0.0.1"
    )]
    NoneOffLoopback(SocketAddr),
    #[error(
        "JWT_SECRET is not set: `smartproxy ui token` signs with it, and the dashboard must know it to accept the token. Set it (e.g. `export JWT_SECRET=$(openssl rand -hex 32)`) for both"
    )]
    NoSecret,
}

/// Refuses a `JWT_SECRET` that is short or guessable.
pub fn check_secret(secret: &str) -> Result<(), SecurityError> {
    let chars = secret.chars().count();
    if chars < MIN_SECRET_LEN {
        return Err(SecurityError::ShortSecret(chars));
    }
    let lower = secret.to_ascii_lowercase();
    if lower == DOCS_EXAMPLE_SECRET {
        return Err(SecurityError::WeakSecret("the example from the docs"));
    }
    let mut distinct: Vec<char> = secret.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 6 {
        return Err(SecurityError::WeakSecret("too few different characters"));
    }
    const WEAK: &[&str] = &[
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "default",
        "jwt",
        "jwtsecret",
        "jwt_secret",
        "jwt-secret",
        "your-secret",
        "yoursecret",
        "mysecret",
        "supersecret",
        "smartproxy",
        "smolrouter",
        "admin",
        "test",
        "example",
        "12345678",
        "qwerty",
        "letmein",
    ];
    // A known word repeated or padded with digits is as weak as the word.
    let letters: String = lower.chars().filter(char::is_ascii_alphabetic).collect();
    for weak in WEAK {
        let stripped = letters.replace(&weak.replace(['-', '_'], ""), "");
        if stripped.is_empty()
            || lower
                .replace(weak, "")
                .chars()
                .all(|c| c.is_ascii_digit() || "-_.!".contains(c))
        {
            return Err(SecurityError::WeakSecret("a common default"));
        }
    }
    // One short run repeated (`abcabcabc...`).
    let bytes = secret.as_bytes();
    for period in 1..=8 {
        if bytes.len() > period
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| *b == bytes[i % period])
        {
            return Err(SecurityError::WeakSecret("a short pattern repeated"));
        }
    }
    Ok(())
}

/// The dashboard's security settings for one listener.
#[derive(Clone)]
pub struct Security {
    pub mode: Mode,
    key: Vec<u8>,
    /// Whether `JWT_SECRET` was set (otherwise a random per-process key signs login cookies).
    pub secret_configured: bool,
    /// SHA-256 of `SMARTPROXY_ADMIN_KEY`, which `/login` exchanges for a cookie.
    admin_key: Option<[u8; 32]>,
    /// Whether the listener is on loopback.
    loopback_listener: bool,
    /// Whether the server has keys (an admin key, or a daemon's client keys): the dashboard then
    /// asks for one whatever the mode, as `/admin/stats` with the same totals does.
    pub keys_set: bool,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("mode", &self.mode)
            .field("secret_configured", &self.secret_configured)
            .field("login", &self.admin_key.is_some())
            .field("keys_set", &self.keys_set)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Reads `WEBUI_SECURITY`, `JWT_SECRET` and `SMARTPROXY_ADMIN_KEY` for a listener on `listen`.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        listen: SocketAddr,
    ) -> Result<Self, SecurityError> {
        let mode = Mode::parse(&env("WEBUI_SECURITY").unwrap_or_default())?;
        let loopback_listener = listen.ip().is_loopback();
        if mode == Mode::None && !loopback_listener {
            return Err(SecurityError::NoneOffLoopback(listen));
        }
        let secret = env("JWT_SECRET").filter(|s| !s.is_empty());
        let (key, secret_configured) = match secret {
            Some(secret) => {
                check_secret(&secret)?;
                (secret.into_bytes(), true)
            }
            None => {
                let mut key = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
                (key, false)
            }
        };
        let admin_key = env("SMARTPROXY_ADMIN_KEY")
            .filter(|k| !k.trim().is_empty())
            .map(|k| Sha256::digest(k.as_bytes()).into());
        Ok(Self {
            mode,
            key,
            secret_configured,
            keys_set: admin_key.is_some(),
            admin_key,
            loopback_listener,
        })
    }

    /// Settings with a given secret, for tests and `ui token`.
    pub fn with_secret(mode: Mode, secret: &str, loopback_listener: bool) -> Self {
        Self {
            mode,
            key: secret.as_bytes().to_vec(),
            secret_configured: true,
            admin_key: None,
            loopback_listener,
            keys_set: false,
        }
    }

    /// Whether `/login` can exchange an admin key for a cookie.
    pub fn login_with_admin_key(&self) -> bool {
        self.admin_key.is_some()
    }

    /// Whether this request must present a token (or the admin key).
    pub fn requires_token(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if self.keys_set {
            return true;
        }
        let remote = !peer.is_loopback() || !self.loopback_listener;
        match self.mode {
            Mode::AlwaysAuth => true,
            Mode::AuthWhenProxied => remote || proxied(headers),
            Mode::None => remote,
        }
    }

    /// Whether the request may see the dashboard: no token needed, or a valid token, or the
    /// admin key (as `/admin/stats` takes it).
    pub fn allows(&self, peer: IpAddr, headers: &HeaderMap, now_s: i64) -> bool {
        !self.requires_token(peer, headers)
            || presented_token(headers)
                .is_some_and(|t| self.verify(t, now_s) || self.is_admin_key(t.trim()))
    }

    /// Whether `key` is the admin key (constant time).
    pub fn is_admin_key(&self, key: &str) -> bool {
        self.admin_key.is_some_and(|digest| {
            let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            bool::from(presented.ct_eq(&digest))
        })
    }

    /// A token valid for `ttl` from `now_s` (seconds since the epoch).
    pub fn issue(&self, now_s: i64, ttl: Duration) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let exp = now_s.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let claims = serde_json::json!({"sub": "smartproxy-ui", "iat": now_s, "exp": exp});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.sign(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(input);
                mac.finalize().into_bytes().to_vec()
            }
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => Vec::new(),
        }
    }

    /// Checks a token's algorithm, signature (constant time) and expiry.
    pub fn verify(&self, token: &str, now_s: i64) -> bool {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let expected = self.sign(format!("{header}.{payload}").as_bytes());
        if expected.is_empty() || !bool::from(expected.as_slice().ct_eq(signature.as_slice())) {
            return false;
        }
        let json = |part: &str| -> Option<serde_json::Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        let (Some(header), Some(claims)) = (json(header), json(payload)) else {
            return false;
        };
        header["alg"] == "HS256" && claims["exp"].as_i64().is_some_and(|exp| exp > now_s)
    }
}

/// Whether a reverse proxy forwarded the request.
pub fn proxied(headers: &HeaderMap) -> bool {
    [
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-forwarded-host",
        "x-forwarded-proto",
    ]
    .iter()
    .any(|h| headers.contains_key(*h))
}

/// The token a request carries: `Authorization: Bearer <jwt>` or the login cookie.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer.or_else(|| {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value)
    })
}

/// `90s`, `30m`, `12h`, `7d` (or plain seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("a token must live longer than 0s".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SECRET: &str = "0f3c9a71d2b84e6a95c07e1f4b2d8a63";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn weak_secrets_are_refused() {
        for weak in [
            "short",
            "changeme",
            "secretsecretsecretsecretsecretsecret",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abcabcabcabcabcabcabcabcabcabcabcabc",
            DOCS_EXAMPLE_SECRET,
            "changeme-changeme-changeme-changeme",
            "password12345678901234567890123456",
            "01010101010101010101010101010101",
        ] {
            assert!(check_secret(weak).is_err(), "{weak}");
        }
        assert_eq!(check_secret(SECRET), Ok(()));
        assert_eq!(
            check_secret("correct horse battery staple zebra quartz"),
            Ok(())
        );
    }

    #[test]
    fn tokens_verify_until_they_expire() {
        let s = Security::with_secret(Mode::AlwaysAuth, SECRET, true);
        let token = s.issue(1000, Duration::from_secs(60));
        assert!(s.verify(&token, 1000));
        assert!(s.verify(&token, 1059));
        assert!(!s.verify(&token, 1060), "expired");
        let other =
            Security::with_secret(Mode::AlwaysAuth, "9e1b7c44a0d35f28e6b1c9d07a4f3e25", true);
        assert!(!other.verify(&token, 1000), "another key");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":99999999999}"#);
        parts[1] = &forged;
        assert!(!s.verify(&parts.join("."), 1000), "changed claims");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            forged
        );
        assert!(!s.verify(&none, 1000), "alg none");
        assert!(!s.verify("garbage", 1000));
    }

    #[test]
    fn who_needs_a_token() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        let plain = HeaderMap::new();
        let forwarded = headers(&[("forwarded", "for=192.0.2.7")]);
        let xff = headers(&[("x-forwarded-for", "192.0.2.7")]);
        let cases = [
            (Mode::None, local, &plain, false),
            (Mode::None, local, &xff, false),
            (Mode::None, remote, &plain, true),
            (Mode::AuthWhenProxied, local, &plain, false),
            (Mode::AuthWhenProxied, local, &xff, true),
            (Mode::AuthWhenProxied, local, &forwarded, true),
            (Mode::AuthWhenProxied, remote, &plain, true),
            (Mode::AlwaysAuth, local, &plain, true),
        ];
        for (mode, peer, h, expect) in cases {
            let s = Security::with_secret(mode, SECRET, true);
            assert_eq!(s.requires_token(peer, h), expect, "{mode:?} {peer} {h:?}");
        }
    }

    #[test]
    fn none_is_refused_off_loopback() {
        let env = |name: &str| (name == "WEBUI_SECURITY").then(|| "none".to_owned());
        let err = Security::from_env(&env, "0.0.0.0:4101".parse().unwrap()).unwrap_err();
        assert!(matches!(err, SecurityError::NoneOffLoopback(_)));
        assert!(Security::from_env(&env, "127.0.0.1:4101".parse().unwrap()).is_ok());
        let bad = |name: &str| (name == "WEBUI_SECURITY").then(|| "sometimes".to_owned());
        assert!(Security::from_env(&bad, "127.0.0.1:0".parse().unwrap()).is_err());
    }

    #[test]
    fn cookie_and_bearer_tokens_are_found() {
        let h = headers(&[("cookie", "a=b; smartproxy_ui=tok123; c=d")]);
        assert_eq!(presented_token(&h), Some("tok123"));
        let h = headers(&[("authorization", "Bearer xyz")]);
        assert_eq!(presented_token(&h), Some("xyz"));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(43_200)));
        assert!(parse_ttl("12y").is_err());
    }
}
