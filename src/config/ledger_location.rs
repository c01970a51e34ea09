//! Where the ledger lives: a SQLite file (the embedded default) or a PostgreSQL URL (team mode,
//! in progress: only `run` and `daemon` write there so far). The URL's password never leaves
//! this type in a message: `Display` and `Debug` show it redacted.

use std::fmt;
use std::path::{Path, PathBuf};

/// The `database` key (or `SMARTPROXY_DB`) once validated.
#[derive(Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A `postgres://` or `postgresql://` URL, checked by the driver's own parser.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// The URL as written: it may hold a password, so it is only handed to the driver.
    url: String,
    redacted: String,
    /// `sslmode` and `sslrootcert`, taken out of the URL.
    tls: super::pg_tls::PgTls,
    /// The URL without them: what the driver parses (it knows neither `verify-*` nor
    /// `sslrootcert`). Holds the password too.
    driver_url: String,
}

/// A path that only a SQLite ledger has was asked of a PostgreSQL one.
#[derive(Debug, thiserror::Error)]
#[error(
    "`smartproxy {command}` needs a SQLite ledger file (the ledger is {url}): point \
     SMARTPROXY_DB (or `database:`) at a SQLite file for this command"
)]
pub struct NotSqlite {
    pub command: &'static str,
    pub url: String,
}

impl LedgerLocation {
    /// A URL with a PostgreSQL scheme is a PostgreSQL ledger; anything else is a path.
    pub fn is_postgres_text(text: &str) -> bool {
        let lower = text.trim().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// The SQLite file, for the commands that read only SQLite; a clear error otherwise.
    pub fn sqlite(&self, command: &'static str) -> Result<&Path, NotSqlite> {
        match self {
            Self::Sqlite(path) => Ok(path),
            Self::Postgres(url) => Err(NotSqlite {
                command,
                url: url.redacted().to_owned(),
            }),
        }
    }

    /// The SQLite file, when the ledger is one.
    pub fn as_sqlite(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }

    pub fn as_postgres(&self) -> Option<&PgUrl> {
        match self {
            Self::Postgres(url) => Some(url),
            Self::Sqlite(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl fmt::Display for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(url.redacted()),
        }
    }
}

impl fmt::Debug for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&url.redacted).finish(),
        }
    }
}

impl PgUrl {
    /// Checks `text` with the driver's parser; the error says what is wrong without the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = text.trim().to_owned();
        let redacted = redact(&url);
        let (tls, driver_url) = super::pg_tls::split(&url).map_err(|why| {
            format!("`{redacted}`: {why}; write e.g. ?sslmode=verify-full&sslrootcert=/path/ca.pem")
        })?;
        let parsed: tokio_postgres::Config = driver_url.parse().map_err(|e: tokio_postgres::Error| {
            // The driver's message (and its cause) names the part it could not read, never the
            // password.
            let mut why = e.to_string();
            if let Some(cause) = std::error::Error::source(&e) {
                why.push_str(&format!(": {cause}"));
            }
            format!(
                "`{redacted}` is not a PostgreSQL URL ({why}); write it as postgres://USER@HOST:PORT/DATABASE"
            )
        })?;
        if parsed.get_hosts().is_empty() {
            return Err(format!(
                "`{redacted}` names no host; write it as postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        if parsed.get_dbname().is_none_or(str::is_empty) {
            return Err(format!(
                "`{redacted}` names no database; write it as postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        Ok(Self {
            url,
            redacted,
            tls,
            driver_url,
        })
    }

    /// The URL with any password replaced by `***`: the only form that may be shown or logged.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL as written, password included: never shown.
    pub fn secret(&self) -> &str {
        &self.url
    }

    /// What the URL asks of TLS.
    pub fn tls(&self) -> &super::pg_tls::PgTls {
        &self.tls
    }

    /// The driver's settings: the URL less its TLS options, TLS on or off as they ask (the
    /// certificate checks are the connector's, `ledger::postgres::tls`).
    pub fn driver_config(&self) -> Result<tokio_postgres::Config, tokio_postgres::Error> {
        let mut config: tokio_postgres::Config = self.driver_url.parse()?;
        config.ssl_mode(match self.tls.mode {
            super::pg_tls::SslMode::Plain => tokio_postgres::config::SslMode::Disable,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(config)
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgUrl").field(&self.redacted).finish()
    }
}

/// `postgres://user:secret@host/db?password=x` -> `postgres://user:***@host/db?password=***`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{user}:***{}", &authority[at..])
            } else {
                authority.to_owned()
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://bob:s3cret@db:5432/team",
                "postgres://bob:***@db:5432/team",
            ),
            ("postgres://bob@db/team", "postgres://bob@db/team"),
            (
                "postgresql://db/team?user=bob&password=s3cret",
                "postgresql://db/team?user=bob&password=***",
            ),
        ] {
            assert_eq!(redact(url), shown);
            let parsed = PgUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert!(!format!("{parsed:?}").contains("s3cret"));
        }
    }

    #[test]
    fn an_at_sign_in_the_password_stays_hidden() {
        assert_eq!(
            redact("postgres://bob:p@ss:w@db/team"),
            "postgres://bob:***@db/team"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for url in [
            "postgres://bob:s3cret@db:notaport/team",
            "postgres://bob:s3cret@db:5432",
        ] {
            let err = PgUrl::parse(url).unwrap_err();
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(LedgerLocation::is_postgres_text("PostgreSQL://x/y"));
        assert!(!LedgerLocation::is_postgres_text(
            "/var/lib/postgres/ledger.db"
        ));
    }
}
