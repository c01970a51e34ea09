//! The read side of the ledger: session summaries, grouped stats and session lists, for `run`,
//! `stats` and `sessions`. Each read opens its own connection, so it never waits on the writer.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::Serialize;

use super::LedgerError;

/// Totals for a group of requests (one model, one provider, one session, or everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub key: String,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// None when no request of the group has a known cost.
    pub cost_usd: Option<f64>,
    /// Successful requests whose model has no known price.
    pub unpriced: u64,
    /// Requests whose token counts are estimates.
    pub estimated: u64,
    /// The part of `cost_usd` that is notional: list-price cost of requests billed to a
    /// subscription (pass-through), not money spent. None when there are none.
    pub subscription_usd: Option<f64>,
    /// List-price cost of requests the mock provider served: never spent, so not in
    /// `cost_usd`. None when there are none.
    pub simulated_usd: Option<f64>,
}

impl Totals {
    /// What the group cost: nothing is `$0` (no requests, or only failures, which cost
    /// nothing), unknown only when a successful request has no price and nothing else does.
    pub fn known_cost(&self) -> Option<f64> {
        self.cost_usd.or((self.unpriced == 0).then_some(0.0))
    }

    /// The totals of several groups together, under `key`.
    pub fn sum(key: &str, groups: &[Totals]) -> Totals {
        let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        groups.iter().fold(
            Totals {
                key: key.to_owned(),
                ..Totals::default()
            },
            |t, g| Totals {
                key: t.key,
                requests: t.requests + g.requests,
                ok: t.ok + g.ok,
                failed: t.failed + g.failed,
                prompt_tokens: t.prompt_tokens + g.prompt_tokens,
                completion_tokens: t.completion_tokens + g.completion_tokens,
                cached_tokens: t.cached_tokens + g.cached_tokens,
                cache_write_tokens: t.cache_write_tokens + g.cache_write_tokens,
                cost_usd: add(t.cost_usd, g.cost_usd),
                unpriced: t.unpriced + g.unpriced,
                estimated: t.estimated + g.estimated,
                subscription_usd: add(t.subscription_usd, g.subscription_usd),
                simulated_usd: add(t.simulated_usd, g.simulated_usd),
            },
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub tag: Option<String>,
    pub program: Option<String>,
    pub cwd: Option<String>,
    pub pid: Option<i64>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub budget_usd: Option<f64>,
    pub requests: u64,
    /// What the session spent: simulated (mock) costs are apart, unpriced requests not in it.
    pub cost_usd: Option<f64>,
    /// Successful requests to models with no known price (the cost leaves them out).
    pub unpriced: u64,
    /// List-price cost of the requests the mock provider served (nothing spent).
    pub simulated_usd: Option<f64>,
    /// No end was recorded and the process that owned the session is gone (killed, crashed):
    /// it ended, when is unknown. Shown as `ended (lost)`.
    pub lost: bool,
    /// The session's project (`run --project`, the config's `project:`, or the repository's
    /// folder name).
    pub project: Option<String>,
    /// The git working tree the session ran in, and its branch and HEAD at the start and end.
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub head: Option<String>,
    pub end_branch: Option<String>,
    pub end_head: Option<String>,
}

impl SessionRow {
    /// No end recorded, and its process still lives (or cannot be checked from this host).
    pub fn running(&self) -> bool {
        self.ended_ms.is_none() && !self.lost
    }

    /// How the session stands, in words every view shows alike: `running`, `ended (lost)`,
    /// `exit N`, or `ended` (a daemon's session, which has no exit code).
    pub fn status_text(&self) -> String {
        match (self.ended_ms, self.exit_code) {
            (None, _) if self.lost => "ended (lost)".to_owned(),
            (None, _) => "running".to_owned(),
            (Some(_), Some(code)) => format!("exit {code}"),
            (Some(_), None) => "ended".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// The model that answered (else the one asked for).
    Model,
    Provider,
    /// The `run` or daemon session (nested runs apart).
    Session,
    /// The session's tag.
    Tag,
    /// The client key: a daemon session's tag; `-` for requests of `run` sessions.
    Key,
    /// The key's user (team mode); `-` where none is known, as always on a SQLite ledger.
    User,
    /// The key's team (team mode); `-` where none is known, as always on a SQLite ledger.
    Team,
    /// The session's project (`run --project`, the config's `project:`, else the git
    /// repository's folder name); `-` where none is known.
    Project,
    /// The git branch the session started on (`(detached)` for a detached HEAD); `-` outside
    /// a repository. A session whose HEAD moved counts under where it started.
    Branch,
    /// The commit HEAD was on when the session started; `-` outside a repository. A session
    /// that committed counts under the commit it started from (`cost --commit` counts it
    /// under both).
    Commit,
    /// The local hour a request started in (`2026-12-07 10:00`), oldest first.
    Hour,
    /// The local day, oldest first.
    Day,
    /// The local week, named by its Monday, oldest first.
    Week,
    /// The local month, oldest first.
    Month,
}

impl GroupBy {
    /// Whether the groups are periods of local time (keyed by hour while read).
    pub fn is_time(self) -> bool {
        matches!(self, Self::Hour | Self::Day | Self::Week | Self::Month)
    }
}

/// The session's branch at its start (`s`), as every reader names it.
pub(crate) const BRANCH_OF_SESSION: &str =
    "COALESCE(s.branch, CASE WHEN s.head IS NOT NULL THEN '(detached)' END, '-')";

/// A daemon session's tag names the client key it serves (as PostgreSQL's roll-up keys it).
const KEY_OF_SESSION: &str =
    "COALESCE(CASE WHEN s.kind = 'daemon' THEN NULLIF(s.tag, '') END, '-')";

impl GroupBy {
    /// The group's key in the `usage` rollup (`u`, sessions joined as `s`).
    fn usage_sql(self) -> &'static str {
        match self {
            Self::Model => "u.model",
            Self::Provider => "u.provider",
            Self::Session => "CASE u.session_id WHEN '' THEN '(none)' ELSE u.session_id END",
            Self::Tag => "COALESCE(s.tag, '(untagged)')",
            Self::Key => KEY_OF_SESSION,
            // A SQLite ledger knows no users or teams (keys with people are team mode's):
            // every request is in the one group `-`.
            Self::User | Self::Team => "'-'",
            Self::Project => "COALESCE(s.project, '-')",
            Self::Branch => BRANCH_OF_SESSION,
            Self::Commit => "COALESCE(s.head, '-')",
            // Time groups are read by hour and made periods by `periods::regroup`.
            Self::Hour | Self::Day | Self::Week | Self::Month => "CAST(u.hour_ms AS TEXT)",
        }
    }

    /// The group's key for a request row (`r`, sessions joined as `s`).
    fn sql(self) -> &'static str {
        match self {
            Self::Model => "COALESCE(r.served_model, r.requested_model, '(none)')",
            Self::Provider => "COALESCE(r.provider, '(none)')",
            Self::Session => "COALESCE(r.session_id, '(none)')",
            Self::Tag => "COALESCE(s.tag, '(untagged)')",
            Self::Key => KEY_OF_SESSION,
            Self::User | Self::Team => "'-'",
            Self::Project => "COALESCE(s.project, '-')",
            Self::Branch => BRANCH_OF_SESSION,
            Self::Commit => "COALESCE(s.head, '-')",
            Self::Hour | Self::Day | Self::Week | Self::Month => {
                "CAST(r.started_ms - r.started_ms % 3600000 AS TEXT)"
            }
        }
    }
}

/// Which requests to count.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub session_id: Option<String>,
    pub since_ms: Option<i64>,
    /// Only requests that started before this.
    pub until_ms: Option<i64>,
}

/// Opens the ledger for reading; a missing file is an error that says nothing was recorded yet.
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Missing {
            path: path.to_path_buf(),
        });
    }
    let conn = super::open_connection(path)?;
    super::migrations::migrate(&conn, path)?;
    Ok(conn)
}

pub(super) fn totals_from_row(
    key: String,
    row: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Totals> {
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, f64>(at + i)? as u64) };
    let simulated_usd: Option<f64> = row.get(at + 11)?;
    // What was spent leaves the simulated part out (a group of mock requests alone spent $0).
    let cost_usd = row.get::<_, Option<f64>>(at + 6)?.map(|cost| {
        let real = cost - simulated_usd.unwrap_or(0.0);
        if real.abs() < 1e-12 { 0.0 } else { real }
    });
    Ok(Totals {
        key,
        requests: row.get::<_, i64>(at)? as u64,
        ok: n(1)?,
        failed: n(2)?,
        prompt_tokens: n(3)?,
        completion_tokens: n(4)?,
        cached_tokens: n(5)?,
        cost_usd,
        unpriced: n(7)?,
        estimated: n(8)?,
        cache_write_tokens: n(9)?,
        subscription_usd: row.get(at + 10)?,
        simulated_usd,
    })
}

pub(super) fn where_clause(filter: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    let mut clauses = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(id) = &filter.session_id {
        // A session's figures include the `run`s started inside it, however deep.
        args.push(id.clone().into());
        clauses.push(format!(
            "r.session_id IN (WITH RECURSIVE tree(id) AS (SELECT ?{n} UNION ALL \
             SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id) SELECT id FROM tree)",
            n = args.len()
        ));
    }
    if let Some(since) = filter.since_ms {
        args.push(since.into());
        clauses.push(format!("r.started_ms >= ?{}", args.len()));
    }
    if let Some(until) = filter.until_ms {
        args.push(until.into());
        clauses.push(format!("r.started_ms < ?{}", args.len()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

/// Totals over every request that matches `filter`.
pub fn totals(conn: &Connection, filter: &Filter) -> rusqlite::Result<Totals> {
    let (rows, args) = usage_rows(filter, "'total'", "'total'");
    let sql = format!("SELECT {SUM_COLUMNS} FROM ({rows})");
    conn.query_row(&sql, params_from_iter(args), |row| {
        totals_from_row("total".to_owned(), row, 0)
    })
}

/// Totals per group, most expensive first.
pub fn grouped(conn: &Connection, filter: &Filter, by: GroupBy) -> rusqlite::Result<Vec<Totals>> {
    let (rows, args) = usage_rows(filter, by.usage_sql(), by.sql());
    let sql = format!(
        "SELECT key, {SUM_COLUMNS} FROM ({rows}) GROUP BY 1 ORDER BY TOTAL(cost) DESC, SUM(n) DESC, 1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |row| {
        totals_from_row(row.get(0)?, row, 1)
    })?;
    rows.collect()
}

/// Adds up the per-row columns of `usage_rows` in `Totals` order.
pub(super) const SUM_COLUMNS: &str = "CAST(TOTAL(n) AS INTEGER), TOTAL(ok), TOTAL(n - ok), TOTAL(prompt), TOTAL(completion),
    TOTAL(cached), SUM(cost), TOTAL(unpriced), TOTAL(estimated), TOTAL(cache_write), SUM(subscription),
    SUM(simulated)";

/// The rows `filter` selects, with a grouping key: whole hours from the `usage` rollup, and
/// the requests of partial hours at either end of the range (`--since`/`--until` off the hour)
/// one by one.
fn usage_rows(
    filter: &Filter,
    usage_key: &str,
    request_key: &str,
) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut usage_where = Vec::new();
    let mut request_where = Vec::new();
    if let Some(id) = &filter.session_id {
        // A session's figures include the `run`s started inside it, however deep.
        args.push(id.clone().into());
        let tree = format!(
            "(WITH RECURSIVE tree(id) AS (SELECT ?{n} UNION ALL \
             SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id) SELECT id FROM tree)",
            n = args.len()
        );
        usage_where.push(format!("u.session_id IN {tree}"));
        request_where.push(format!("r.session_id IN {tree}"));
    }
    let split = super::periods::split(filter.since_ms, filter.until_ms, super::usage::HOUR_MS);
    let mut bound = |column: &str, op: &str, ms: Option<i64>| {
        ms.map(|ms| {
            args.push(ms.into());
            format!("{column} {op} ?{}", args.len())
        })
    };
    usage_where.extend(bound("u.hour_ms", ">=", split.whole_from));
    usage_where.extend(bound("u.hour_ms", "<", split.whole_to));
    let ranges = super::periods::partial_clause(&split.partial, &mut bound);
    let partial = ranges.is_some().then_some(());
    request_where.extend(ranges);
    let clause = |parts: &[String]| {
        if parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", parts.join(" AND "))
        }
    };
    // Only the tag needs the session row: a join per rollup row costs more than the sum.
    let join = if usage_key.contains("s.") {
        "LEFT JOIN sessions s ON s.id = u.session_id"
    } else {
        ""
    };
    let mut sql = format!(
        "SELECT {usage_key} AS key, u.requests AS n, u.ok AS ok, u.prompt_tokens AS prompt,
             u.completion_tokens AS completion, u.cached_tokens AS cached, u.cost_usd AS cost,
             u.unpriced AS unpriced, u.estimated AS estimated, u.cache_write_tokens AS cache_write,
             u.subscription_usd AS subscription, u.simulated_usd AS simulated
         FROM usage u {join} {}",
        clause(&usage_where)
    );
    if partial.is_some() {
        sql.push_str(&format!(
            " UNION ALL SELECT {request_key}, 1, r.outcome = 'ok', r.prompt_tokens,
                 r.completion_tokens, r.cached_tokens, r.cost_usd,
                 r.cost_usd IS NULL AND r.outcome = 'ok', r.tokens_estimated, r.cache_write_tokens,
                 CASE WHEN r.billing = 'subscription' THEN r.cost_usd END,
                 CASE WHEN r.billing = 'simulated' THEN r.cost_usd END
             FROM requests r LEFT JOIN sessions s ON s.id = r.session_id {}",
            clause(&request_where)
        ));
    }
    (sql, args)
}

/// A session's own requests and cost come from the rollup: a daemon's session can hold hundreds
/// of thousands of requests, and `status` reads this on every shell prompt.
pub(super) const SESSION_COLUMNS: &str =
    "s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid, s.started_ms, s.ended_ms,
    s.exit_code, s.budget_usd,
    (SELECT IFNULL(SUM(u.requests), 0) FROM usage u WHERE u.session_id = s.id),
    (SELECT ROUND(SUM(u.cost_usd) - TOTAL(u.simulated_usd), 12) FROM usage u WHERE u.session_id = s.id),
    (SELECT TOTAL(u.unpriced) FROM usage u WHERE u.session_id = s.id),
    (SELECT SUM(u.simulated_usd) FROM usage u WHERE u.session_id = s.id),
    s.host, s.owner_pid, s.owner_start, s.project, s.repo, s.branch, s.head, s.end_branch,
    s.end_head";

pub(super) fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        parent_id: row.get(1)?,
        kind: row.get(2)?,
        tag: row.get(3)?,
        program: row.get(4)?,
        cwd: row.get(5)?,
        pid: row.get(6)?,
        started_ms: row.get(7)?,
        ended_ms: row.get(8)?,
        exit_code: row.get(9)?,
        budget_usd: row.get(10)?,
        requests: row.get::<_, i64>(11)? as u64,
        cost_usd: row.get(12)?,
        unpriced: row.get::<_, f64>(13)? as u64,
        simulated_usd: row.get(14)?,
        // Only a session without an end asks whether its process still lives.
        lost: row.get::<_, Option<i64>>(8)?.is_none()
            && crate::process::gone(
                row.get::<_, Option<String>>(15)?.as_deref(),
                row.get(16)?,
                row.get::<_, Option<String>>(17)?.as_deref(),
            ),
        project: row.get(18)?,
        repo: row.get(19)?,
        branch: row.get(20)?,
        head: row.get(21)?,
        end_branch: row.get(22)?,
        end_head: row.get(23)?,
    })
}

/// The most recent sessions, newest first.
pub fn sessions(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions s ORDER BY s.started_ms DESC, s.rowid DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], session_from_row)?;
    rows.collect()
}

pub fn session(conn: &Connection, id: &str) -> rusqlite::Result<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = ?1");
    conn.query_row(&sql, [id], session_from_row).optional()
}

/// A session's tag and its budget in dollars.
pub type TagAndBudget = (Option<String>, Option<f64>);

/// A session's tag and budget, without adding up its requests: for `status`, which gets the
/// figures from `totals` (nested runs included).
pub fn session_tag_and_budget(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<TagAndBudget>> {
    conn.query_row(
        "SELECT tag, budget_usd FROM sessions WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// When a session ran and what it was: the heading of `stats --session`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSpan {
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub tag: Option<String>,
    pub program: Option<String>,
}

/// A session's span, without adding up its requests.
pub fn session_span(conn: &Connection, id: &str) -> rusqlite::Result<Option<SessionSpan>> {
    conn.query_row(
        "SELECT started_ms, ended_ms, tag, program FROM sessions WHERE id = ?1",
        [id],
        |r| {
            Ok(SessionSpan {
                started_ms: r.get(0)?,
                ended_ms: r.get(1)?,
                tag: r.get(2)?,
                program: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Whether `session` was started inside `parent` (a nested `run`: its row names the parent).
pub fn is_child_of(conn: &Connection, session: &str, parent: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sessions WHERE id = ?1 AND parent_id = ?2",
        [session, parent],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// How a session reference given by a user resolved.
#[derive(Debug, PartialEq)]
pub enum Resolved {
    Found(String),
    NotFound,
    Ambiguous(Vec<String>),
}

/// Resolves a full session id or an unambiguous prefix of one.
pub fn resolve_session(conn: &Connection, reference: &str) -> rusqlite::Result<Resolved> {
    let escaped = reference
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let mut stmt = conn.prepare(
        "SELECT id FROM sessions WHERE id LIKE ?1 ESCAPE '\\' ORDER BY started_ms DESC LIMIT 6",
    )?;
    let ids: Vec<String> = stmt
        .query_map([format!("{escaped}%")], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(if ids.iter().any(|id| id == reference) {
        Resolved::Found(reference.to_owned())
    } else {
        match ids.len() {
            0 => Resolved::NotFound,
            1 => Resolved::Found(ids.into_iter().next().unwrap_or_default()),
            _ => Resolved::Ambiguous(ids),
        }
    })
}

/// What budgets did to the requests `filter` selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BudgetActions {
    /// Refused by a budget (limit reached, unpriced model, budget unavailable).
    pub refused: u64,
    /// Sent with `max_tokens` lowered to what a budget had left.
    pub fitted: u64,
    /// Sent to `budget.downgrade_to` instead.
    pub downgraded: u64,
    /// Refused by the loop breaker (`loop refused: ...`), not by a budget.
    pub loop_refused: u64,
}

impl BudgetActions {
    pub fn any(&self) -> bool {
        self.refused + self.fitted + self.downgraded > 0
    }
}

/// Counts the budget decisions recorded on the rows `filter` selects (`budget_action`). A
/// downgraded request that was then fitted or refused carries both (`downgrade: ...; ...`).
pub fn budget_actions(conn: &Connection, filter: &Filter) -> rusqlite::Result<BudgetActions> {
    let (clause, args) = where_clause(filter);
    let and = if clause.is_empty() { "WHERE" } else { "AND" };
    let sql = format!(
        "SELECT TOTAL(r.budget_action LIKE '%refused:%'
                 AND r.budget_action NOT LIKE 'loop refused:%'),
             TOTAL(r.budget_action LIKE '%fit: max_tokens%'),
             TOTAL(r.budget_action LIKE 'downgrade:%'),
             TOTAL(r.budget_action LIKE 'loop refused:%')
         FROM requests r {clause} {and} r.budget_action IS NOT NULL"
    );
    conn.query_row(&sql, params_from_iter(args), |row| {
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, f64>(i)? as u64) };
        Ok(BudgetActions {
            refused: n(0)?,
            fitted: n(1)?,
            downgraded: n(2)?,
            loop_refused: n(3)?,
        })
    })
}

/// The model of the newest request `filter` selects that names one (the one that answered,
/// else the one asked for): the model in use.
pub fn last_model(conn: &Connection, filter: &Filter) -> rusqlite::Result<Option<String>> {
    let (clause, args) = where_clause(filter);
    let and = if clause.is_empty() { "WHERE" } else { "AND" };
    let sql = format!(
        "SELECT COALESCE(r.served_model, r.requested_model) FROM requests r {clause}
         {and} COALESCE(r.served_model, r.requested_model) IS NOT NULL
         ORDER BY r.started_ms DESC LIMIT 1"
    );
    conn.query_row(&sql, params_from_iter(args), |r| r.get(0))
        .optional()
        .map(Option::flatten)
}

/// The id of the newest session.
pub fn last_session(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT id FROM sessions ORDER BY started_ms DESC, rowid DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
