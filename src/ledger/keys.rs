//! Client keys made with `smartproxy keys create`: the `client_keys` table. Only a key's SHA-256
//! digest is stored; the key itself is shown once, when it is made, and never again.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::LedgerError;
use crate::db::write;

/// A client key as `keys list` shows it: never its digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRow {
    pub name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub budget_daily_usd: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "`{0}` is not a valid key name: use letters, digits, `-` and `_` (at most 64), e.g. `cursor` or `ci_bot`"
    )]
    InvalidName(String),
    #[error(
        "a key named `{0}` already exists (revoked keys keep their name, so the ledger's history stays unambiguous); choose another name"
    )]
    Duplicate(String),
    #[error("no key named `{0}`; `smartproxy keys list` shows the names")]
    Unknown(String),
    #[error(
        "`{0}` is reserved for the daemon's own keys (`default`: SMARTPROXY_API_KEY, `anonymous`: no key); choose another name"
    )]
    Reserved(String),
    #[error(
        "`{value}` is not a valid {what} name: use letters, digits, `-`, `_`, `.` and `@` (at most 64), e.g. `ana` or `ana@example.com`"
    )]
    InvalidPerson { what: &'static str, value: String },
    #[error(
        "{flag} must be a non-negative amount of USD below 1,000,000,000, e.g. `{flag} 5`; got {value}"
    )]
    InvalidLimit { flag: &'static str, value: f64 },
    #[error(transparent)]
    Ledger(#[from] super::LedgerError),
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

/// What `revoke` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    /// The key was already revoked, at this time.
    Already(i64),
}

/// Whether `name` may name a key: 1 to 64 ASCII letters, digits, `-` or `_`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Names the daemon gives keys of its own (its sessions are tagged with them), so a key in a
/// team ledger may not take them: the ledger could not tell the two apart.
const RESERVED: [&str; 4] = ["default", "anonymous", "session", "admin"];

/// Whether `name` may name a user or a team: 1 to 64 ASCII letters, digits, `-`, `_`, `.` or
/// `@` (an e-mail address is a fine user name).
pub fn valid_person(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Checks what a team ledger's key is made with: its name (not a reserved one), its user and
/// team, and its limits (`flag` names the option in the message).
pub fn validate_team_key<const N: usize>(
    name: &str,
    user: &str,
    team: &str,
    limits: [(&'static str, Option<f64>); N],
) -> Result<(), KeyError> {
    if !valid_name(name) {
        return Err(KeyError::InvalidName(name.to_owned()));
    }
    if RESERVED.contains(&name) {
        return Err(KeyError::Reserved(name.to_owned()));
    }
    for (what, value) in [("user", user), ("team", team)] {
        if !valid_person(value) {
            return Err(KeyError::InvalidPerson {
                what,
                value: value.to_owned(),
            });
        }
    }
    validate_limits(limits)
}

/// Limits in USD are finite, non-negative and below a billion.
pub fn validate_limits<const N: usize>(
    limits: [(&'static str, Option<f64>); N],
) -> Result<(), KeyError> {
    for (flag, value) in limits {
        if let Some(value) = value
            && !(value.is_finite() && (0.0..1e9).contains(&value))
        {
            return Err(KeyError::InvalidLimit { flag, value });
        }
    }
    Ok(())
}

/// Opens the ledger for key management, creating and migrating it when needed.
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    crate::private_files::prepare(path).map_err(|source| LedgerError::CreateDir {
        path: path.parent().unwrap_or(path).to_path_buf(),
        source,
    })?;
    let conn = super::open_connection(path)?;
    super::migrations::migrate(&conn, path)?;
    Ok(conn)
}

/// The schema version of the ledger behind `conn`, and the version this build knows.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    Ok((
        crate::db::schema_version(conn)?,
        super::migrations::known_version(),
    ))
}

/// Stores a new key's digest under `name`; a name already used (even by a revoked key) is refused.
pub fn create(
    conn: &Connection,
    name: &str,
    digest: &[u8; 32],
    budget_daily_usd: Option<f64>,
    now_ms: i64,
) -> Result<(), KeyError> {
    if !valid_name(name) {
        return Err(KeyError::InvalidName(name.to_owned()));
    }
    let inserted = write(conn, |tx| {
        tx.execute(
            "INSERT OR IGNORE INTO client_keys (name, digest, created_ms, revoked_ms, budget_daily_usd)
             VALUES (?1, ?2, ?3, NULL, ?4)",
            params![name, digest.as_slice(), now_ms, budget_daily_usd],
        )
    })?;
    if inserted == 0 {
        return Err(KeyError::Duplicate(name.to_owned()));
    }
    Ok(())
}

/// Marks the key `name` revoked; the row stays so the ledger's history keeps its name.
pub fn revoke(conn: &Connection, name: &str, now_ms: i64) -> Result<Revoked, KeyError> {
    let found = write(conn, |tx| {
        let state: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_ms FROM client_keys WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if state == Some(None) {
            tx.execute(
                "UPDATE client_keys SET revoked_ms = ?2 WHERE name = ?1",
                params![name, now_ms],
            )?;
        }
        Ok(state)
    })?;
    match found {
        None => Err(KeyError::Unknown(name.to_owned())),
        Some(None) => Ok(Revoked::Now),
        Some(Some(at)) => Ok(Revoked::Already(at)),
    }
}

/// Every key, oldest first, without digests.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<KeyRow>> {
    let mut stmt = conn.prepare(
        "SELECT name, created_ms, revoked_ms, budget_daily_usd FROM client_keys
         ORDER BY created_ms, name",
    )?;
    stmt.query_map([], |r| {
        Ok(KeyRow {
            name: r.get(0)?,
            created_ms: r.get(1)?,
            revoked_ms: r.get(2)?,
            budget_daily_usd: r.get(3)?,
        })
    })?
    .collect()
}

/// The daily budgets of the keys not revoked that have one, by key name.
pub fn active_budgets(conn: &Connection) -> rusqlite::Result<Vec<(String, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT name, budget_daily_usd FROM client_keys WHERE revoked_ms IS NULL AND budget_daily_usd > 0",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The names and digests of the keys not revoked, for the daemon to accept.
pub fn active_digests(conn: &Connection) -> rusqlite::Result<Vec<(String, [u8; 32])>> {
    let mut stmt = conn.prepare(
        "SELECT name, digest FROM client_keys WHERE revoked_ms IS NULL ORDER BY created_ms, name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (name, bytes) = row?;
        match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(digest) => out.push((name, digest)),
            Err(_) => tracing::warn!(name, "client key with a malformed digest ignored"),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ledger() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("ledger.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn names_are_letters_digits_dash_and_underscore() {
        for ok in ["cursor", "ci_bot", "team-2", "A"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "dot.ted",
            "ünï",
            "semi;colon",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn team_keys_are_validated_with_the_option_named() {
        let ok = [("--daily", Some(0.0)), ("--monthly", Some(100.5))];
        validate_team_key("ana-laptop", "ana@example.com", "search", ok).unwrap();
        validate_team_key(
            "ci",
            "ci.bot",
            "infra_2",
            [("--daily", None), ("--monthly", None)],
        )
        .unwrap();
        let none = [("--daily", None), ("--monthly", None)];
        for (name, user, team, limits, want) in [
            ("no good", "ana", "t", none, "not a valid key name"),
            ("default", "ana", "t", none, "reserved"),
            ("k", "", "t", none, "not a valid user name"),
            ("k", "ana", "a b", none, "not a valid team name"),
            (
                "k",
                "ana",
                "t",
                [("--daily", Some(-1.0)), ("--monthly", None)],
                "--daily must be",
            ),
            (
                "k",
                "ana",
                "t",
                [("--daily", None), ("--monthly", Some(f64::NAN))],
                "--monthly must be",
            ),
            (
                "k",
                "ana",
                "t",
                [("--daily", Some(1e12)), ("--monthly", None)],
                "--daily must be",
            ),
        ] {
            let err = validate_team_key(name, user, team, limits)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{name} {user} {team}: {err}");
        }
    }

    #[test]
    fn create_list_revoke() {
        let (_dir, conn) = ledger();
        let (found, known) = schema_version(&conn).unwrap();
        assert_eq!(found, known);
        create(&conn, "cursor", &[7; 32], Some(2.5), 1000).unwrap();
        create(&conn, "ci", &[8; 32], None, 2000).unwrap();
        assert!(matches!(
            create(&conn, "cursor", &[9; 32], None, 3000),
            Err(KeyError::Duplicate(_))
        ));
        assert!(matches!(
            create(&conn, "no good", &[9; 32], None, 3000),
            Err(KeyError::InvalidName(_))
        ));
        let active = active_digests(&conn).unwrap();
        assert_eq!(
            active,
            vec![("cursor".to_owned(), [7; 32]), ("ci".to_owned(), [8; 32])]
        );
        assert_eq!(revoke(&conn, "cursor", 4000).unwrap(), Revoked::Now);
        assert_eq!(
            revoke(&conn, "cursor", 5000).unwrap(),
            Revoked::Already(4000)
        );
        assert!(matches!(
            revoke(&conn, "nobody", 5000),
            Err(KeyError::Unknown(_))
        ));
        assert_eq!(active_digests(&conn).unwrap().len(), 1);
        let rows = list(&conn).unwrap();
        assert_eq!(rows[0].name, "cursor");
        assert_eq!(rows[0].revoked_ms, Some(4000));
        assert_eq!(rows[0].budget_daily_usd, Some(2.5));
        assert_eq!(rows[1].revoked_ms, None);
    }
}
