//! What a PostgreSQL URL asks of TLS (`sslmode`, `sslrootcert`, libpq's names and meanings),
//! read out of the URL so the driver, which knows neither `verify-ca`/`verify-full` nor
//! `sslrootcert`, is handed the rest.

use std::path::PathBuf;

/// How the connection to PostgreSQL is protected, by libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `disable`, `allow`, `prefer` or no `sslmode`: plain TCP. libpq's `prefer` would try TLS
    /// and fall back silently; a team that wants TLS says `require` or better, so an
    /// opportunistic handshake buys nothing but a second failure mode.
    Plain,
    /// `require`: encrypted; the server's certificate is checked only when `sslrootcert` is
    /// given (then as `verify-ca`), as libpq does.
    Require,
    /// `verify-ca`: encrypted, the certificate chains to a trusted root; any host name.
    VerifyCa,
    /// `verify-full`: encrypted, chained to a trusted root and issued for the host connected to.
    VerifyFull,
}

/// The TLS part of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    /// `sslrootcert=PATH`: a PEM file of roots trusted besides the built-in web roots.
    pub root_cert: Option<PathBuf>,
}

impl PgTls {
    /// Whether the server's certificate chain is checked (`verify-*`, or `require` with a root).
    pub fn verifies_chain(&self) -> bool {
        match self.mode {
            SslMode::Plain => false,
            SslMode::Require => self.root_cert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        }
    }

    /// The mode as the URL names it, for messages.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            SslMode::Plain => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Splits `sslmode` and `sslrootcert` out of `url`'s query: the TLS settings, and the URL
/// without them (for the driver). An unknown `sslmode` is an error naming the accepted ones.
pub fn split(url: &str) -> Result<(PgTls, String), String> {
    let mut tls = PgTls {
        mode: SslMode::Plain,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((tls, url.to_owned()));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                tls.mode = match percent_decode(value).as_str() {
                    "disable" | "allow" | "prefer" => SslMode::Plain,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" => {
                let path = percent_decode(value);
                if path.is_empty() || path == "system" {
                    // libpq's `system`: the built-in roots, which are trusted anyway.
                    tls.root_cert = None;
                } else {
                    tls.root_cert = Some(PathBuf::from(path));
                }
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((tls, rest))
}

/// `%2F` -> `/`; a `%` not followed by two hex digits stays as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_roots_come_out_of_the_url() {
        for (url, mode, root, rest) in [
            ("postgres://h/db", SslMode::Plain, None, "postgres://h/db"),
            (
                "postgres://h/db?sslmode=prefer",
                SslMode::Plain,
                None,
                "postgres://h/db",
            ),
            (
                "postgres://h/db?user=a&sslmode=require&connect_timeout=3",
                SslMode::Require,
                None,
                "postgres://h/db?user=a&connect_timeout=3",
            ),
            (
                "postgres://h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
                SslMode::VerifyFull,
                Some("/tmp/ca.pem"),
                "postgres://h/db",
            ),
            (
                "postgres://h/db?sslrootcert=ca.pem&sslmode=verify-ca",
                SslMode::VerifyCa,
                Some("ca.pem"),
                "postgres://h/db",
            ),
        ] {
            let (tls, left) = split(url).unwrap();
            assert_eq!(tls.mode, mode, "{url}");
            assert_eq!(tls.root_cert, root.map(PathBuf::from), "{url}");
            assert_eq!(left, rest, "{url}");
        }
    }

    #[test]
    fn require_with_a_root_verifies_like_libpq() {
        let (tls, _) = split("postgres://h/db?sslmode=require").unwrap();
        assert!(!tls.verifies_chain());
        let (tls, _) = split("postgres://h/db?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert!(tls.verifies_chain());
    }

    #[test]
    fn an_unknown_mode_is_refused_with_the_known_ones() {
        let err = split("postgres://h/db?sslmode=sometimes").unwrap_err();
        assert!(err.contains("verify-full"), "{err}");
    }
}
