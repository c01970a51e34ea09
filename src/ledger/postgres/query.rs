//! The read commands' questions (`stats`, `sessions`, `status`, `export`'s selection) asked of a
//! PostgreSQL ledger, answered in the same types as SQLite's `ledger::query`. Totals over whole
//! UTC days read the `usage_daily` roll-up; a session's figures, a `--session` filter and the
//! part of a `--since` before the first whole day read `requests`.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::periods;
use super::super::query::{
    Filter, GroupBy, Resolved, SessionRow, SessionSpan, TagAndBudget, Totals,
};
use super::migrations;
use crate::config::PgUrl;

/// A connection for one command's reads, on a runtime of its own (the read commands are
/// synchronous and run outside any runtime).
/// How long one read may take, and wait for a lock, before it fails (PostgreSQL's units).
const READ_TIMEOUTS: &str = "SET statement_timeout = '10s'; SET lock_timeout = '5s'";

pub struct Reader {
    // Field order matters: the client is dropped before the runtime that drives its connection.
    pub(super) client: Client,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) url: String,
}

impl Reader {
    /// Connects and brings the schema up to this build's (refusing a newer one), as opening a
    /// SQLite ledger for reading does.
    pub fn connect(url: &PgUrl) -> Result<Self, LedgerError> {
        Self::connect_within(url, None)
    }

    /// [`Self::connect`], giving up on the connection and on each read after `limit` at most
    /// (a shell prompt's status line must not hang on a silent server).
    pub fn connect_within(url: &PgUrl, limit: Option<Duration>) -> Result<Self, LedgerError> {
        let redacted = url.redacted().to_owned();
        let fail = |detail: String| LedgerError::Postgres {
            url: redacted.clone(),
            detail,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let (mut config, tls) = super::tls::connect_config(url).map_err(fail)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(super::CONNECT_TIMEOUT);
        }
        config.application_name("smartproxy");
        // The driver's connect timeout covers the TCP connect only: a server that accepts and
        // then says nothing (stopped, overloaded) is given up on after the same time here.
        let mut timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(super::CONNECT_TIMEOUT);
        if let Some(limit) = limit {
            timeout = timeout.min(limit);
        }
        let (mut client, connection) = runtime
            // The timer is made inside `block_on`, on this runtime (outside it there is none).
            .block_on(async { tokio::time::timeout(timeout, config.connect(tls)).await })
            .map_err(|_| fail(format!("no answer within {} s", timeout.as_secs_f64())))?
            .map_err(|e| fail(super::describe(&e)))?;
        // The connection's I/O runs while a read blocks on this runtime; the task ends when the
        // client is dropped, and the runtime (dropped with the reader) takes it with it.
        drop(runtime.spawn(async move {
            let _ = connection.await;
        }));
        runtime.block_on(async {
            // A server that took the connection may still say nothing after it.
            let found = tokio::time::timeout(timeout, migrations::version(&client))
                .await
                .map_err(|_| fail(format!("no answer within {} s", timeout.as_secs_f64())))?
                .map_err(|e| super::db_error(&redacted, &e))?;
            if found > migrations::CURRENT {
                return Err(LedgerError::PostgresTooNew {
                    url: redacted.clone(),
                    found,
                    known: migrations::CURRENT,
                });
            }
            if found < migrations::CURRENT {
                migrations::migrate(&mut client)
                    .await
                    .map_err(|e| match e {
                        migrations::MigrateError::TooNew { found } => LedgerError::PostgresTooNew {
                            url: redacted.clone(),
                            found,
                            known: migrations::CURRENT,
                        },
                        migrations::MigrateError::Db(e) => super::db_error(&redacted, &e),
                    })?;
            }
            // A read never hangs a command or a web page: a query stuck behind a lock (a
            // partition being dropped) or one that runs away is given up on with an error.
            // Set after migrating, which may rightly take longer. Export pages are separate
            // statements, so a long export is bounded per page, not in all.
            let timeouts = match limit {
                Some(limit) => format!(
                    "SET statement_timeout = {}; SET lock_timeout = {}",
                    limit.as_millis(),
                    limit.as_millis() / 2
                ),
                None => READ_TIMEOUTS.to_owned(),
            };
            client
                .batch_execute(&timeouts)
                .await
                .map_err(|e| super::db_error(&redacted, &e))?;
            Ok(())
        })?;
        Ok(Self {
            client,
            runtime,
            url: redacted,
        })
    }

    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, LedgerError> {
        self.runtime
            .block_on(self.client.query(sql, params))
            .map_err(|e| super::db_error(&self.url, &e))
    }

    /// Totals over every request that matches `filter`.
    pub fn totals(&self, filter: &Filter) -> Result<Totals, LedgerError> {
        let rows = self.sums(filter, "'total'", "'total'", false)?;
        Ok(rows.into_iter().next().unwrap_or(Totals {
            key: "total".to_owned(),
            ..Totals::default()
        }))
    }

    /// Totals per group, most expensive first (ties: more requests, then the key's bytes).
    pub fn grouped(&self, filter: &Filter, by: GroupBy) -> Result<Vec<Totals>, LedgerError> {
        self.sums(
            filter,
            daily_key(by),
            request_key(by),
            // The roll-up has no session, branch or commit, and its days are UTC days: those
            // groups, and the local periods, are read from the requests.
            matches!(by, GroupBy::Session | GroupBy::Branch | GroupBy::Commit) || by.is_time(),
        )
    }

    /// Adds up the roll-up's whole days and the requests outside them, grouped by key.
    fn sums(
        &self,
        filter: &Filter,
        daily_key: &str,
        request_key: &str,
        per_request: bool,
    ) -> Result<Vec<Totals>, LedgerError> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut request_where = Vec::new();
        let mut parts = Vec::new();
        if let Some(id) = &filter.session_id {
            params.push(Box::new(id.clone()));
            request_where.push(in_tree(params.len()));
        }
        // The roll-up has no session (nor local hours): a session's figures, and anything per
        // session or per period, are read from its requests.
        if filter.session_id.is_some() || per_request {
            if let Some(since) = filter.since_ms {
                params.push(Box::new(since));
                request_where.push(format!("r.started_ms >= ${}", params.len()));
            }
            if let Some(until) = filter.until_ms {
                params.push(Box::new(until));
                request_where.push(format!("r.started_ms < ${}", params.len()));
            }
            parts.push(request_rows(request_key, &request_where));
        } else {
            let split = periods::split(filter.since_ms, filter.until_ms, DAY_MS);
            let mut bound = |column: &str, op: &str, ms: Option<i64>| {
                ms.map(|ms| {
                    params.push(Box::new(ms));
                    let n = params.len();
                    match column {
                        "u.day" => format!(
                            "u.day {op} (to_timestamp(${n}::bigint / 1000.0) AT TIME ZONE 'UTC')::date"
                        ),
                        _ => format!("{column} {op} ${n}"),
                    }
                })
            };
            let daily_where: Vec<String> = bound("u.day", ">=", split.whole_from)
                .into_iter()
                .chain(bound("u.day", "<", split.whole_to))
                .collect();
            if let Some(ranges) = periods::partial_clause(&split.partial, &mut bound) {
                request_where.push(ranges);
                parts.push(request_rows(request_key, &request_where));
            }
            parts.push(format!(
                "SELECT {daily_key} AS key, u.requests AS n, u.ok, u.prompt_tokens AS prompt,
                     u.completion_tokens AS completion, u.cached_tokens AS cached,
                     u.cost_nusd AS cost, u.unpriced, u.estimated,
                     u.cache_write_tokens AS cache_write, u.subscription_nusd AS sub,
                     u.simulated_nusd AS sim, u.priced, u.subscribed, u.simulated
                 FROM usage_daily u {}",
                clause(&daily_where)
            ));
        }
        let sql = format!(
            "SELECT key, {SUMS} FROM ({}) x GROUP BY key
             ORDER BY COALESCE(sum(cost), 0) DESC, sum(n) DESC, key COLLATE \"C\"",
            parts.join(" UNION ALL ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        Ok(self
            .query(&sql, &refs)?
            .iter()
            .map(totals_from_row)
            .collect())
    }

    /// The most recent sessions, newest first, each with its own requests' figures (not its
    /// nested runs').
    pub fn sessions(&self, limit: usize) -> Result<Vec<SessionRow>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("{SESSION_SELECT} ORDER BY s.started_ms DESC, s.id COLLATE \"C\" DESC");
        Ok(self
            .query(&sql, &[&limit])?
            .iter()
            .map(session_from_row)
            .collect())
    }

    /// The ids, starts and ends of the sessions a quote reads, newest first, as
    /// `session_parts::finished_sessions`.
    pub fn finished_sessions(
        &self,
        q: &crate::ledger::session_parts::HistoryQuery,
    ) -> Result<Vec<(String, i64, i64)>, LedgerError> {
        let (conditions, args) = q.conditions("$");
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT id, started_ms, ended_ms FROM sessions WHERE {conditions}
             ORDER BY started_ms DESC, id COLLATE \"C\" DESC LIMIT {limit}"
        );
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        Ok(self
            .query(&sql, &params)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The id of the newest session.
    pub fn last_session(&self) -> Result<Option<String>, LedgerError> {
        Ok(self
            .query(
                "SELECT id FROM sessions ORDER BY started_ms DESC, id COLLATE \"C\" DESC LIMIT 1",
                &[],
            )?
            .first()
            .map(|r| r.get(0)))
    }

    /// Resolves a full session id or an unambiguous prefix of one.
    pub fn resolve_session(&self, reference: &str) -> Result<Resolved, LedgerError> {
        let escaped = reference
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let ids: Vec<String> = self
            .query(
                "SELECT id FROM sessions WHERE id LIKE $1 ESCAPE '\\'
                 ORDER BY started_ms DESC LIMIT 6",
                &[&format!("{escaped}%")],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(if ids.iter().any(|id| id == reference) {
            Resolved::Found(reference.to_owned())
        } else {
            let mut ids = ids.into_iter();
            match (ids.next(), ids.next()) {
                (None, _) => Resolved::NotFound,
                (Some(id), None) => Resolved::Found(id),
                (Some(a), Some(b)) => Resolved::Ambiguous([a, b].into_iter().chain(ids).collect()),
            }
        })
    }

    /// A session's span, without adding up its requests.
    pub fn session_span(&self, id: &str) -> Result<Option<SessionSpan>, LedgerError> {
        Ok(self
            .query(
                "SELECT started_ms, ended_ms, tag, program FROM sessions WHERE id = $1",
                &[&id],
            )?
            .first()
            .map(|r| SessionSpan {
                started_ms: r.get(0),
                ended_ms: r.get(1),
                tag: r.get(2),
                program: r.get(3),
            }))
    }

    /// Whether `session` was started inside `parent` (a nested `run`).
    pub fn is_child_of(&self, session: &str, parent: &str) -> Result<bool, LedgerError> {
        Ok(!self
            .query(
                "SELECT 1 FROM sessions WHERE id = $1 AND parent_id = $2",
                &[&session, &parent],
            )?
            .is_empty())
    }

    /// A session's tag and budget, without adding up its requests.
    pub fn session_tag_and_budget(&self, id: &str) -> Result<Option<TagAndBudget>, LedgerError> {
        Ok(self
            .query("SELECT tag, budget_usd FROM sessions WHERE id = $1", &[&id])?
            .first()
            .map(|r| (r.get(0), r.get(1))))
    }
}

/// Adds up `request_rows`' (or the roll-up's) columns, in `totals_from_row`'s order after
/// the key.
pub(super) const SUMS: &str = "sum(n)::bigint, sum(ok)::bigint, sum(prompt)::bigint,
    sum(completion)::bigint, sum(cached)::bigint, COALESCE(sum(cost), 0)::bigint,
    sum(unpriced)::bigint, sum(estimated)::bigint, sum(cache_write)::bigint,
    COALESCE(sum(sub), 0)::bigint, COALESCE(sum(sim), 0)::bigint,
    sum(priced)::bigint, sum(subscribed)::bigint, sum(simulated)::bigint";

/// `WHERE ...` of `parts`, or nothing.
pub(super) fn clause(parts: &[String]) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", parts.join(" AND "))
    }
}

/// `r.session` is session `$n` or a run started inside it, however deep (`r` the requests).
pub(super) fn in_tree(n: usize) -> String {
    format!(
        "r.session IN (SELECT st.id FROM strings st WHERE st.text IN (
             WITH RECURSIVE tree(id) AS (SELECT ${n}::text UNION ALL
                 SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id)
             SELECT id FROM tree))"
    )
}

/// The requests `request_where` selects, one row each, in the roll-up's columns.
pub(super) fn request_rows(key: &str, request_where: &[String]) -> String {
    format!(
        "SELECT {key} AS key, 1::bigint AS n, (k.outcome = 'ok')::int::bigint AS ok,
             COALESCE(r.prompt_tokens, 0) AS prompt, COALESCE(r.completion_tokens, 0) AS completion,
             COALESCE(r.cached_tokens, 0) AS cached, r.cost_nusd AS cost,
             (r.cost_nusd IS NULL AND k.outcome = 'ok')::int::bigint AS unpriced,
             r.tokens_estimated::int::bigint AS estimated,
             COALESCE(r.cache_write_tokens, 0) AS cache_write,
             CASE WHEN k.billing = 'subscription' THEN r.cost_nusd END AS sub,
             CASE WHEN k.billing = 'simulated' THEN r.cost_nusd END AS sim,
             (r.cost_nusd IS NOT NULL)::int::bigint AS priced,
             (r.cost_nusd IS NOT NULL AND k.billing = 'subscription')::int::bigint AS subscribed,
             (r.cost_nusd IS NOT NULL AND k.billing = 'simulated')::int::bigint AS simulated
         FROM requests r JOIN request_shapes k ON k.id = r.shape
         LEFT JOIN strings st ON st.id = r.session LEFT JOIN sessions s ON s.id = st.text
         LEFT JOIN strings su ON su.id = r.user_name LEFT JOIN strings stm ON stm.id = r.team {}",
        clause(request_where)
    )
}

/// The group's key in `usage_daily` (`u`), named as SQLite's reads name it.
fn daily_key(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Model => "u.model",
        GroupBy::Provider => "u.provider",
        // Never read from the roll-up (it has no session); here for completeness.
        GroupBy::Session => "'(none)'",
        GroupBy::Tag => "CASE u.tag WHEN '' THEN '(untagged)' ELSE u.tag END",
        GroupBy::Key => "CASE u.key WHEN '' THEN '-' ELSE u.key END",
        GroupBy::User => "CASE u.user_name WHEN '' THEN '-' ELSE u.user_name END",
        GroupBy::Team => "CASE u.team WHEN '' THEN '-' ELSE u.team END",
        GroupBy::Project => "CASE u.project WHEN '' THEN '-' ELSE u.project END",
        // Never read from the roll-up (its days are UTC days, the groups local periods; it has
        // no branch or commit).
        GroupBy::Hour | GroupBy::Day | GroupBy::Week | GroupBy::Month => "'(none)'",
        GroupBy::Branch | GroupBy::Commit => "'-'",
    }
}

/// The group's key for a request row (`r`, its shape `k`, session id `st`, session `s`, the
/// key's user `su` and team `stm`).
fn request_key(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Model => "COALESCE(k.served_model, k.requested_model, '(none)')",
        GroupBy::Provider => "COALESCE(k.provider, '(none)')",
        GroupBy::Session => "COALESCE(st.text, '(none)')",
        GroupBy::Tag => "COALESCE(NULLIF(s.tag, ''), '(untagged)')",
        GroupBy::Key => "COALESCE(CASE WHEN s.kind = 'daemon' THEN NULLIF(s.tag, '') END, '-')",
        GroupBy::User => "COALESCE(NULLIF(su.text, ''), '-')",
        GroupBy::Team => "COALESCE(NULLIF(stm.text, ''), '-')",
        GroupBy::Project => "COALESCE(NULLIF(s.project, ''), '-')",
        GroupBy::Branch => super::super::query::BRANCH_OF_SESSION,
        GroupBy::Commit => "COALESCE(s.head, '-')",
        GroupBy::Hour | GroupBy::Day | GroupBy::Week | GroupBy::Month => {
            "(r.started_ms - r.started_ms % 3600000)::text"
        }
    }
}

/// The roll-up's days are UTC days.
const DAY_MS: i64 = 86_400_000;

/// Nano-dollars as dollars, the way SQLite's `requests` view divides them.
pub(super) fn dollars(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

pub(super) fn totals_from_row(row: &tokio_postgres::Row) -> Totals {
    let n = |i: usize| row.get::<_, Option<i64>>(i).unwrap_or(0).max(0) as u64;
    let some_if = |count: usize, value: usize| (n(count) > 0).then(|| dollars(row.get(value)));
    let simulated_usd = some_if(14, 11);
    // What was spent leaves the simulated part out, as SQLite's `query::totals` does.
    let cost_usd = some_if(12, 6).map(|cost| {
        let real = cost - simulated_usd.unwrap_or(0.0);
        if real.abs() < 1e-12 { 0.0 } else { real }
    });
    let requests = n(1);
    let ok = n(2);
    Totals {
        key: row.get(0),
        requests,
        ok,
        failed: requests - ok,
        prompt_tokens: n(3),
        completion_tokens: n(4),
        cached_tokens: n(5),
        cost_usd,
        unpriced: n(7),
        estimated: n(8),
        cache_write_tokens: n(9),
        subscription_usd: some_if(13, 10),
        simulated_usd,
    }
}

/// A session and its own requests' figures.
pub(super) const SESSION_SELECT: &str = "
    SELECT s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid, s.started_ms, s.ended_ms,
        s.exit_code, s.budget_usd, COALESCE(a.n, 0), a.cost, a.sim, COALESCE(a.unpriced, 0),
        s.host, s.owner_pid, s.owner_start, s.project, s.repo, s.branch, s.head, s.end_branch,
        s.end_head
    -- The newest first, then their figures: only the sessions shown add up their requests.
    FROM (SELECT * FROM sessions ORDER BY started_ms DESC, id COLLATE \"C\" DESC LIMIT $1) s
    LEFT JOIN LATERAL (
        SELECT count(*) AS n, sum(r.cost_nusd)::bigint AS cost,
            (sum(r.cost_nusd) FILTER (WHERE k.billing = 'simulated'))::bigint AS sim,
            count(*) FILTER (WHERE r.cost_nusd IS NULL AND k.outcome = 'ok') AS unpriced
        FROM requests r JOIN request_shapes k ON k.id = r.shape
        WHERE r.session = (SELECT st.id FROM strings st WHERE st.text = s.id)
    ) a ON true";

pub(super) fn session_from_row(row: &tokio_postgres::Row) -> SessionRow {
    let simulated_usd = row.get::<_, Option<i64>>(13).map(dollars);
    // As SQLite's `ROUND(SUM(cost) - TOTAL(simulated), 12)`: to 12 decimals through text.
    let cost_usd = row.get::<_, Option<i64>>(12).map(|cost| {
        let real = dollars(cost) - simulated_usd.unwrap_or(0.0);
        format!("{real:.12}").parse().unwrap_or(real)
    });
    let ended_ms: Option<i64> = row.get(8);
    SessionRow {
        id: row.get(0),
        parent_id: row.get(1),
        kind: row.get(2),
        tag: row.get(3),
        program: row.get(4),
        cwd: row.get(5),
        pid: row.get(6),
        started_ms: row.get(7),
        ended_ms,
        exit_code: row.get::<_, Option<i32>>(9).map(i64::from),
        budget_usd: row.get(10),
        requests: row.get::<_, i64>(11).max(0) as u64,
        cost_usd,
        unpriced: row.get::<_, i64>(14).max(0) as u64,
        simulated_usd,
        // Only a session without an end asks whether its process still lives.
        lost: ended_ms.is_none()
            && crate::process::gone(
                row.get::<_, Option<String>>(15).as_deref(),
                row.get(16),
                row.get::<_, Option<String>>(17).as_deref(),
            ),
        project: row.get(18),
        repo: row.get(19),
        branch: row.get(20),
        head: row.get(21),
        end_branch: row.get(22),
        end_head: row.get(23),
    }
}
