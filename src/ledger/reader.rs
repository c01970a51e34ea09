//! One read interface over either backend for `stats`, `sessions`, `status` and `export`: the
//! same questions and the same answer types (`query::Totals`, `SessionRow`, ...), so the
//! commands' printing is shared. SQLite answers with `query` and `export` unchanged;
//! PostgreSQL with `postgres::query` and `postgres::export`.

use std::io::Write;

use rusqlite::Connection;

use super::LedgerError;
use super::export::{self, ExportError, Format};
use super::postgres::query::Reader;
use super::query::{self, Filter, GroupBy, Resolved, SessionRow, TagAndBudget, Totals};
use crate::config::LedgerLocation;

/// A read failed: SQLite's error, or the PostgreSQL ledger's (its URL redacted).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading the ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// An open ledger, for reading.
pub enum LedgerReader {
    Sqlite(Connection),
    Postgres(Box<Reader>),
}

impl LedgerReader {
    /// Opens the ledger at `location` for reading: a missing SQLite file is `Missing` (nothing
    /// recorded yet); a PostgreSQL ledger is connected to and its schema brought up to date.
    pub fn open(location: &LedgerLocation) -> Result<Self, LedgerError> {
        match location {
            LedgerLocation::Sqlite(path) => query::open(path).map(Self::Sqlite),
            LedgerLocation::Postgres(url) => Reader::connect(url).map(|r| Self::Postgres(r.into())),
        }
    }

    /// Totals over every request that matches `filter`.
    pub fn totals(&self, filter: &Filter) -> Result<Totals, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::totals(conn, filter)?),
            Self::Postgres(pg) => Ok(pg.totals(filter)?),
        }
    }

    /// Totals per group, most expensive first.
    pub fn grouped(&self, filter: &Filter, by: GroupBy) -> Result<Vec<Totals>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::grouped(conn, filter, by)?),
            Self::Postgres(pg) => Ok(pg.grouped(filter, by)?),
        }
    }

    /// The most recent sessions, newest first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<SessionRow>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::sessions(conn, limit)?),
            Self::Postgres(pg) => Ok(pg.sessions(limit)?),
        }
    }

    /// The id of the newest session.
    pub fn last_session(&self) -> Result<Option<String>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::last_session(conn)?),
            Self::Postgres(pg) => Ok(pg.last_session()?),
        }
    }

    /// Resolves a full session id or an unambiguous prefix of one.
    pub fn resolve_session(&self, reference: &str) -> Result<Resolved, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::resolve_session(conn, reference)?),
            Self::Postgres(pg) => Ok(pg.resolve_session(reference)?),
        }
    }

    /// A session's tag and budget, without adding up its requests.
    pub fn session_tag_and_budget(&self, id: &str) -> Result<Option<TagAndBudget>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::session_tag_and_budget(conn, id)?),
            Self::Postgres(pg) => Ok(pg.session_tag_and_budget(id)?),
        }
    }

    /// How many requests an export of `filter` writes.
    pub fn export_count(&self, filter: &Filter) -> Result<u64, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(export::count(conn, filter)?),
            Self::Postgres(pg) => Ok(pg.export_count(filter)?),
        }
    }

    /// Writes the requests `filter` selects to `out`, oldest first, in one consistent snapshot,
    /// and returns how many it wrote.
    pub fn export(
        &mut self,
        filter: &Filter,
        format: Format,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, ExportError> {
        match self {
            Self::Sqlite(conn) => export::export(conn, filter, format, out, progress),
            Self::Postgres(pg) => pg.export(filter, format, out, progress),
        }
    }
}
