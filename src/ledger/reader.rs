//! One read interface over either backend for `stats`, `sessions`, `status`, `export` and the
//! web pages: the same questions and the same answer types (`query::Totals`, `SessionRow`,
//! `pages::Overview`, ...), so the printing and the rendering are shared. SQLite answers with
//! `query`, `export`, `pages` and `request_view` unchanged; PostgreSQL with `postgres::query`,
//! `postgres::export` and `postgres::pages`.

use std::io::Write;
use std::time::Duration;

use rusqlite::Connection;

use super::LedgerError;
use super::attribution::{self, AttributedSession, Selection};
use super::export::{self, ExportError, Format};
use super::pages::{self, Bounds, Overview, SessionPage, TeamUsage};
use super::postgres::query::Reader;
use super::query::{
    self, Filter, GroupBy, Resolved, SessionRow, SessionSpan, TagAndBudget, Totals,
};
use super::request_list::{self, RequestList, RequestQuery};
use super::request_view::{self, RequestDetail, RequestRow};
use super::session_list::{self, SessionList, SessionQuery};
use super::session_parts::{self, HistoryQuery, PastSession};
use super::time_groups;
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

    /// [`Self::open`], giving up on a PostgreSQL ledger's connection and each read after
    /// `limit` (a SQLite file opens at once or not at all).
    pub fn open_within(location: &LedgerLocation, limit: Duration) -> Result<Self, LedgerError> {
        match location {
            LedgerLocation::Sqlite(path) => query::open(path).map(Self::Sqlite),
            LedgerLocation::Postgres(url) => {
                Reader::connect_within(url, Some(limit)).map(|r| Self::Postgres(r.into()))
            }
        }
    }

    /// Totals over every request that matches `filter`.
    pub fn totals(&self, filter: &Filter) -> Result<Totals, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::totals(conn, filter)?),
            Self::Postgres(pg) => Ok(pg.totals(filter)?),
        }
    }

    /// Totals per group, most expensive first; periods of time oldest first.
    pub fn grouped(&self, filter: &Filter, by: GroupBy) -> Result<Vec<Totals>, ReadError> {
        let rows = match self {
            Self::Sqlite(conn) => query::grouped(conn, filter, by)?,
            Self::Postgres(pg) => pg.grouped(filter, by)?,
        };
        // Both read time groups by hour; the local periods are made here, alike.
        Ok(if by.is_time() {
            time_groups::regroup(rows, by)
        } else {
            rows
        })
    }

    /// Totals per UTC hour (the start of the hour, ms), oldest first: what `report blocks`
    /// cuts into 5-hour windows.
    pub fn hourly(&self, filter: &Filter) -> Result<Vec<(i64, Totals)>, ReadError> {
        let rows = match self {
            Self::Sqlite(conn) => query::grouped(conn, filter, GroupBy::Hour)?,
            Self::Postgres(pg) => pg.grouped(filter, GroupBy::Hour)?,
        };
        let mut hours: Vec<(i64, Totals)> = rows
            .into_iter()
            .filter_map(|t| Some((t.key.parse().ok()?, t)))
            .collect();
        hours.sort_by_key(|(hour, _)| *hour);
        Ok(hours)
    }

    /// The sessions attributed to some commits or a branch (`smartproxy cost`), oldest first,
    /// each with its own requests' totals.
    pub fn attributed(&self, sel: &Selection) -> Result<Vec<AttributedSession>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(attribution::sessions(conn, sel)?),
            Self::Postgres(pg) => Ok(pg.attributed(sel)?),
        }
    }

    /// The most recent sessions, newest first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<SessionRow>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::sessions(conn, limit)?),
            Self::Postgres(pg) => Ok(pg.sessions(limit)?),
        }
    }

    /// A page of sessions: filtered, sorted, after a cursor (`/sessions`).
    pub fn session_list(&self, query: &SessionQuery) -> Result<SessionList, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(session_list::session_list(conn, query)?),
            Self::Postgres(pg) => Ok(pg.session_list(query)?),
        }
    }

    /// A page of requests: a range's or a session's, filtered, from a cursor (`/requests`).
    pub fn request_list(&self, query: &RequestQuery) -> Result<RequestList, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(request_list::request_list(conn, query)?),
            Self::Postgres(pg) => Ok(pg.request_list(query)?),
        }
    }

    /// The most recent finished `run` sessions `q` selects, newest first, each with what it
    /// and the runs inside it spent (simulated list prices included) and how long it ran:
    /// what `quote` reads.
    pub fn session_history(&self, q: &HistoryQuery) -> Result<Vec<PastSession>, ReadError> {
        let found = match self {
            Self::Sqlite(conn) => session_parts::finished_sessions(conn, q)?,
            Self::Postgres(pg) => pg.finished_sessions(q)?,
        };
        let mut out = Vec::with_capacity(found.len());
        for (id, started_ms, ended_ms) in found {
            let total = self.totals(&Filter {
                session_id: Some(id.clone()),
                since_ms: None,
                until_ms: None,
            })?;
            out.push(PastSession {
                id,
                duration_ms: (ended_ms - started_ms).max(0),
                spent_usd: total.cost_usd.unwrap_or(0.0) + total.simulated_usd.unwrap_or(0.0),
            });
        }
        Ok(out)
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

    /// Whether `session` was started inside `parent` (a nested `run`).
    pub fn is_child_of(&self, session: &str, parent: &str) -> Result<bool, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::is_child_of(conn, session, parent)?),
            Self::Postgres(pg) => Ok(pg.is_child_of(session, parent)?),
        }
    }

    /// A session's tag and budget, without adding up its requests.
    pub fn session_tag_and_budget(&self, id: &str) -> Result<Option<TagAndBudget>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::session_tag_and_budget(conn, id)?),
            Self::Postgres(pg) => Ok(pg.session_tag_and_budget(id)?),
        }
    }

    /// The model of the newest request `filter` selects: the model in use.
    pub fn last_model(&self, filter: &Filter) -> Result<Option<String>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::last_model(conn, filter)?),
            Self::Postgres(pg) => Ok(pg.last_model(filter)?),
        }
    }

    /// When a session ran, its tag and program.
    pub fn session_span(&self, id: &str) -> Result<Option<SessionSpan>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(query::session_span(conn, id)?),
            Self::Postgres(pg) => Ok(pg.session_span(id)?),
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

    /// The web overview: today, this month, daily spend, recent sessions.
    pub fn overview(
        &self,
        bounds: Bounds,
        day_of: impl Fn(i64) -> String,
    ) -> Result<Overview, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(pages::overview(conn, bounds, day_of)?),
            Self::Postgres(pg) => Ok(pg.overview(bounds, day_of)?),
        }
    }

    /// Start and latency (ms) of up to `limit` requests in `filter`'s time bounds, newest
    /// first: what `/trends` takes its percentiles from.
    pub fn latencies(&self, filter: &Filter, limit: usize) -> Result<Vec<(i64, f64)>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(pages::latencies(conn, filter, limit)?),
            Self::Postgres(pg) => Ok(pg.latencies(filter, limit)?),
        }
    }

    /// The most recent requests, newest first.
    pub fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRow>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(pages::recent_requests(conn, limit)?),
            Self::Postgres(pg) => Ok(pg.recent_requests(limit)?),
        }
    }

    /// A session's page: its tree, totals and requests older than `before`.
    pub fn session_page(
        &self,
        id: &str,
        before: Option<&str>,
    ) -> Result<Option<SessionPage>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(pages::session_page(conn, id, before)?),
            Self::Postgres(pg) => Ok(pg.session_page(id, before)?),
        }
    }

    /// One request with its attempts and its session.
    pub fn request_detail(&self, id: &str) -> Result<Option<RequestDetail>, ReadError> {
        match self {
            Self::Sqlite(conn) => Ok(request_view::request_detail(conn, id)?),
            Self::Postgres(pg) => Ok(pg.request_detail(id)?),
        }
    }

    /// Cost per team and user over the UTC days `from..=to` (`2026-11-01`). A SQLite ledger
    /// has no team keys: nothing to show.
    pub fn team_usage(&self, from: &str, to: &str) -> Result<TeamUsage, ReadError> {
        match self {
            Self::Sqlite(_) => Ok(TeamUsage {
                from: from.to_owned(),
                to: to.to_owned(),
                ..TeamUsage::default()
            }),
            Self::Postgres(pg) => Ok(pg.team_usage(from, to)?),
        }
    }
}
