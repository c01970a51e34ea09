//! The web dashboard's reads (`ledger::pages` and `request_view`) asked of a PostgreSQL ledger,
//! answered in the same types, so the pages render the same HTML and JSON from either backend,
//! plus the team page's cost per user and team from the `usage_daily` roll-up. Every query is
//! bounded by `READ_TIMEOUT`: a silent server is an error page, never a page that hangs.
//!
//! One difference: a session's requests are listed newest first by start time (PostgreSQL
//! keeps no write order), where SQLite lists them in the order they were written.

use std::time::Duration;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::super::LedgerError;
use super::super::pages::{
    Bounds, DaySpend, OVERVIEW_SESSIONS, Overview, Period, SESSION_PAGE, SessionPage, TeamUsage,
    UserUsage, tree_order,
};
use super::super::query::{Filter, SessionRow};
use super::super::request_view::{Attempt, RequestDetail, RequestRow};
use super::query::{Reader, dollars, session_from_row, totals_from_row};
use super::rows::{shown_id, stored_id};

/// How long one page query may take before the page says the ledger did not answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The width of SQLite's `spend` buckets, which the overview's month and chart add up.
const BUCKET_MS: i64 = super::super::SPEND_BUCKET_MS;
const DAY_MS: i64 = 86_400_000;
/// How deep a session tree is followed (as `ledger::pages`).
const MAX_DEPTH: usize = 16;

/// A request with every column the pages show, in `request_view::COLUMNS`' order.
pub(super) const REQUEST_SELECT: &str =
    "SELECT r.id, st.text, s.tag, r.started_ms, k.endpoint, k.route,
        k.provider, k.requested_model, k.served_model, r.status::bigint, k.outcome, k.error_code,
        r.stream, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,
        r.tokens_estimated, r.cost_nusd, r.saved_nusd, r.latency_us, r.ttfb_us,
        r.attempts::bigint, k.cache_status, ch.text, r.fingerprint, k.user_agent, cs.text,
        k.billing, r.budget_action, sk.text, k.price_period
    FROM requests r JOIN request_shapes k ON k.id = r.shape
    LEFT JOIN strings st ON st.id = r.session
    LEFT JOIN sessions s ON s.id = st.text
    LEFT JOIN strings ch ON ch.id = r.client_hash
    LEFT JOIN strings cs ON cs.id = r.client_session
    LEFT JOIN strings sk ON sk.id = r.skipped";

/// Sessions `$1` (an array of ids) with their own requests' figures, as `query::sessions`.
const SESSIONS_BY_ID: &str = "
    SELECT s.id, s.parent_id, s.kind, s.tag, s.program, s.cwd, s.pid, s.started_ms, s.ended_ms,
        s.exit_code, s.budget_usd, COALESCE(a.n, 0), a.cost, a.sim, COALESCE(a.unpriced, 0),
        s.host, s.owner_pid, s.owner_start, s.project, s.repo, s.branch, s.head, s.end_branch,
        s.end_head
    FROM (SELECT * FROM sessions WHERE id = ANY($1)) s
    LEFT JOIN LATERAL (
        SELECT count(*) AS n, sum(r.cost_nusd)::bigint AS cost,
            (sum(r.cost_nusd) FILTER (WHERE k.billing = 'simulated'))::bigint AS sim,
            count(*) FILTER (WHERE r.cost_nusd IS NULL AND k.outcome = 'ok') AS unpriced
        FROM requests r JOIN request_shapes k ON k.id = r.shape
        WHERE r.session = (SELECT st.id FROM strings st WHERE st.text = s.id)
    ) a ON true
    ORDER BY s.started_ms DESC, s.id COLLATE \"C\" DESC";

impl Reader {
    /// One query, bounded by `READ_TIMEOUT`.
    pub(super) fn page_query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, LedgerError> {
        self.runtime
            // The timer is made inside `block_on`, on this runtime (outside it there is none).
            .block_on(async {
                tokio::time::timeout(READ_TIMEOUT, self.client.query(sql, params)).await
            })
            .map_err(|_| LedgerError::Postgres {
                url: self.url.clone(),
                detail: format!("no answer within {} s", READ_TIMEOUT.as_secs()),
            })?
            .map_err(|e| super::db_error(&self.url, &e))
    }

    /// The overview: today, this month, daily spend since `bounds.chart_start_ms`, recent
    /// sessions, as `ledger::pages::overview` reads them from SQLite.
    pub fn overview(
        &self,
        bounds: Bounds,
        day_of: impl Fn(i64) -> String,
    ) -> Result<Overview, LedgerError> {
        let today = self.totals(&Filter {
            session_id: None,
            since_ms: Some(bounds.today_start_ms),
            until_ms: None,
        })?;
        let (month, days) = if [bounds.month_start_ms, bounds.chart_start_ms]
            .iter()
            .all(|ms| ms.rem_euclid(DAY_MS) == 0)
        {
            self.month_and_days_from_rollup(bounds, &day_of)?
        } else {
            self.month_and_days_from_requests(bounds, &day_of)?
        };
        let recent = self.sessions(OVERVIEW_SESSIONS)?;
        let empty = recent.is_empty()
            && self
                .page_query("SELECT NOT EXISTS (SELECT 1 FROM requests)", &[])?
                .first()
                .is_none_or(|r| r.get(0));
        Ok(Overview {
            today,
            month,
            days,
            sessions: tree_order(recent),
            empty,
        })
    }

    /// This month's requests, spend and unpriced requests, and the spend per local day since
    /// the chart's start, added up from the requests: local days that are not UTC days cannot
    /// come from the daily roll-up. SQLite counts the month's requests on its index, its spend
    /// from quarter-hour buckets and its unpriced requests from hourly ones: the same cuts
    /// here. Its spend is what counted toward budgets: API-billed requests (a subscription's
    /// notional cost only with `budget.count_subscription`, which a row here does not record;
    /// never simulated).
    fn month_and_days_from_requests(
        &self,
        bounds: Bounds,
        day_of: &impl Fn(i64) -> String,
    ) -> Result<(Period, Vec<DaySpend>), LedgerError> {
        let month_bucket = bounds.month_start_ms - bounds.month_start_ms.rem_euclid(BUCKET_MS);
        let month_hour = super::super::usage::hour_of(bounds.month_start_ms);
        let month = self.page_query(
            "SELECT count(*) FILTER (WHERE r.started_ms >= $1),
                 COALESCE(sum(r.cost_nusd) FILTER (WHERE r.started_ms >= $2
                     AND k.billing = 'api'), 0)::bigint,
                 count(*) FILTER (WHERE r.started_ms >= $3 AND r.cost_nusd IS NULL
                     AND k.outcome = 'ok')
             FROM requests r JOIN request_shapes k ON k.id = r.shape
             WHERE r.started_ms >= LEAST($1, $2, $3)",
            &[&bounds.month_start_ms, &month_bucket, &month_hour],
        )?;
        let (requests, cost, unpriced) = month.first().map_or((0, 0, 0), |r| {
            (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2))
        });
        let chart_bucket = bounds.chart_start_ms - bounds.chart_start_ms.rem_euclid(BUCKET_MS);
        let buckets = self.page_query(
            "SELECT r.started_ms - r.started_ms % 900000 AS b, sum(r.cost_nusd)::bigint
             FROM requests r JOIN request_shapes k ON k.id = r.shape
             WHERE r.started_ms >= $1 AND r.cost_nusd IS NOT NULL AND k.billing = 'api'
             GROUP BY b ORDER BY b",
            &[&chart_bucket],
        )?;
        let days = per_day(buckets.iter().map(|row| (row.get(0), row.get(1))), day_of);
        Ok((period(requests, cost, unpriced), days))
    }

    /// `month_and_days_from_requests` when the local days are UTC days (a server on UTC, as
    /// a team's often is): from the daily roll-up, a row per day and key however busy.
    fn month_and_days_from_rollup(
        &self,
        bounds: Bounds,
        day_of: &impl Fn(i64) -> String,
    ) -> Result<(Period, Vec<DaySpend>), LedgerError> {
        let first = bounds.month_start_ms.min(bounds.chart_start_ms);
        let rows = self.page_query(
            "SELECT (u.day - DATE '1970-01-01')::bigint * 86400000, sum(u.requests)::bigint,
                 sum(u.cost_nusd - u.subscription_nusd - u.simulated_nusd)::bigint,
                 sum(u.unpriced)::bigint
             FROM usage_daily u
             WHERE u.day >= (to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC')::date
             GROUP BY u.day ORDER BY u.day",
            &[&first],
        )?;
        let (mut requests, mut cost, mut unpriced) = (0, 0, 0);
        for row in rows
            .iter()
            .filter(|r| r.get::<_, i64>(0) >= bounds.month_start_ms)
        {
            requests += row.get::<_, i64>(1);
            cost += row.get::<_, i64>(2);
            unpriced += row.get::<_, i64>(3);
        }
        let days = per_day(
            rows.iter()
                .map(|row| (row.get(0), row.get(2)))
                .filter(|(ms, _)| *ms >= bounds.chart_start_ms),
            day_of,
        );
        Ok((period(requests, cost, unpriced), days))
    }

    /// The most recent requests (at most `limit`), newest first.
    pub fn recent_requests(&self, limit: usize) -> Result<Vec<RequestRow>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("{REQUEST_SELECT} ORDER BY r.started_ms DESC, r.id DESC LIMIT $1");
        Ok(self
            .page_query(&sql, &[&limit])?
            .iter()
            .map(request_from_row)
            .collect())
    }

    /// As SQLite's `pages::latencies`: start and latency (ms) of up to `limit` requests,
    /// newest first.
    pub fn latencies(&self, filter: &Filter, limit: usize) -> Result<Vec<(i64, f64)>, LedgerError> {
        let (since, until) = (
            filter.since_ms.unwrap_or(i64::MIN),
            filter.until_ms.unwrap_or(i64::MAX),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = "SELECT started_ms, latency_us FROM requests WHERE started_ms >= $1
            AND started_ms < $2 ORDER BY started_ms DESC, latency_us DESC LIMIT $3";
        Ok(self
            .page_query(sql, &[&since, &until, &limit])?
            .iter()
            .map(|r| (r.get::<_, i64>(0), millis(r.get(1))))
            .collect())
    }

    fn sessions_by_id(&self, ids: &[String]) -> Result<Vec<SessionRow>, LedgerError> {
        Ok(self
            .page_query(SESSIONS_BY_ID, &[&ids])?
            .iter()
            .map(session_from_row)
            .collect())
    }

    /// A session with its ancestors, its tree and a page of its requests older than `before`
    /// (a request id); `None` for an unknown id.
    pub fn session_page(
        &self,
        id: &str,
        before: Option<&str>,
    ) -> Result<Option<SessionPage>, LedgerError> {
        let Some(session) = self.sessions_by_id(&[id.to_owned()])?.pop() else {
            return Ok(None);
        };
        let mut ancestors = Vec::new();
        let mut parent = session.parent_id.clone();
        while let Some(pid) = parent.take() {
            if ancestors.len() >= MAX_DEPTH {
                break;
            }
            if let Some(row) = self.sessions_by_id(&[pid])?.pop() {
                parent = row.parent_id.clone();
                ancestors.push(row);
            }
        }
        let tree_ids: Vec<String> = self
            .page_query(
                &format!(
                    "WITH RECURSIVE tree(id, depth) AS (SELECT $1::text, 0 UNION ALL
                         SELECT s.id, tree.depth + 1 FROM sessions s
                         JOIN tree ON s.parent_id = tree.id WHERE tree.depth < {MAX_DEPTH})
                     SELECT s.id FROM sessions s WHERE s.id IN (SELECT id FROM tree)
                     ORDER BY s.started_ms DESC, s.id COLLATE \"C\" DESC LIMIT 500"
                ),
                &[&id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let tree = tree_order(self.sessions_by_id(&tree_ids)?);
        let totals = self.totals(&Filter {
            session_id: Some(id.to_owned()),
            since_ms: None,
            until_ms: None,
        })?;
        // Newest first by start time; `before` is a request id, found by its primary key.
        let before_at: Option<(i64, Vec<u8>)> = match before {
            Some(before) => {
                let stored = stored_id(before);
                self.page_query(
                    "SELECT started_ms FROM requests WHERE id = $1 LIMIT 1",
                    &[&stored],
                )?
                .first()
                .map(|r| (r.get(0), stored))
            }
            None => None,
        };
        let limit = i64::try_from(SESSION_PAGE + 1).unwrap_or(i64::MAX);
        let session_of = "r.session = (SELECT id FROM strings WHERE text = $1)";
        let rows = match &before_at {
            Some((at, stored)) => self.page_query(
                &format!(
                    "{REQUEST_SELECT} WHERE {session_of} AND (r.started_ms, r.id) < ($2, $3)
                     ORDER BY r.started_ms DESC, r.id DESC LIMIT $4"
                ),
                &[&id, at, stored, &limit],
            )?,
            None => self.page_query(
                &format!(
                    "{REQUEST_SELECT} WHERE {session_of}
                     ORDER BY r.started_ms DESC, r.id DESC LIMIT $2"
                ),
                &[&id, &limit],
            )?,
        };
        let mut requests: Vec<RequestRow> = rows.iter().map(request_from_row).collect();
        let next_before = if requests.len() > SESSION_PAGE {
            requests.truncate(SESSION_PAGE);
            requests.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(Some(SessionPage {
            session,
            ancestors,
            tree,
            totals,
            requests,
            next_before,
        }))
    }

    /// One request by id with its attempts in order and its session; `None` for an unknown id.
    pub fn request_detail(&self, id: &str) -> Result<Option<RequestDetail>, LedgerError> {
        let stored = stored_id(id);
        let sql = format!("{REQUEST_SELECT} WHERE r.id = $1 LIMIT 1");
        let Some(request) = self
            .page_query(&sql, &[&stored])?
            .first()
            .map(request_from_row)
        else {
            return Ok(None);
        };
        let attempts = self
            .page_query(
                "SELECT a.n::bigint, p.text, m.text, a.status::bigint, e.text, a.latency_us,
                     a.waited_us
                 FROM attempts a LEFT JOIN strings p ON p.id = a.provider
                 LEFT JOIN strings m ON m.id = a.model LEFT JOIN strings e ON e.id = a.error_class
                 WHERE a.request_id = $1 ORDER BY a.n",
                &[&stored],
            )?
            .iter()
            .map(|r| Attempt {
                n: r.get(0),
                provider: r.get(1),
                model: r.get(2),
                status: r.get(3),
                error_class: r.get(4),
                latency_ms: r.get::<_, Option<i64>>(5).map(millis),
                waited_ms: r.get::<_, Option<i64>>(6).map(millis),
            })
            .collect();
        let session = match &request.session_id {
            Some(sid) => self.sessions_by_id(std::slice::from_ref(sid))?.pop(),
            None => None,
        };
        Ok(Some(RequestDetail {
            request,
            attempts,
            session,
        }))
    }

    /// Cost, requests and tokens per team and per user over the UTC days `from..=to`
    /// (`2026-11-01`), from the daily roll-up.
    pub fn team_usage(&self, from: &str, to: &str) -> Result<TeamUsage, LedgerError> {
        let team_keys = self
            .page_query("SELECT EXISTS (SELECT 1 FROM client_keys)", &[])?
            .first()
            .is_some_and(|r| r.get(0));
        // The roll-up's columns in `totals_from_row`'s order, grouped by `key` (and `team`).
        let sums = |key: &str, team: Option<&str>| {
            let (extra, group, order) = match team {
                Some(team) => (
                    format!(", {team}"),
                    ", 16",
                    format!(", {team} COLLATE \"C\""),
                ),
                None => (String::new(), "", String::new()),
            };
            format!(
                "SELECT {key} AS key, sum(u.requests)::bigint, sum(u.ok)::bigint,
                     sum(u.prompt_tokens)::bigint, sum(u.completion_tokens)::bigint,
                     sum(u.cached_tokens)::bigint, sum(u.cost_nusd)::bigint,
                     sum(u.unpriced)::bigint, sum(u.estimated)::bigint,
                     sum(u.cache_write_tokens)::bigint, sum(u.subscription_nusd)::bigint,
                     sum(u.simulated_nusd)::bigint, sum(u.priced)::bigint,
                     sum(u.subscribed)::bigint, sum(u.simulated)::bigint{extra}
                 FROM usage_daily u
                 WHERE u.day BETWEEN $1::text::date AND $2::text::date
                 GROUP BY 1{group}
                 ORDER BY sum(u.cost_nusd) - sum(u.simulated_nusd) DESC, sum(u.requests) DESC,
                     {key} COLLATE \"C\"{order}"
            )
        };
        let team = "CASE u.team WHEN '' THEN '-' ELSE u.team END";
        let teams = self
            .page_query(&sums(team, None), &[&from, &to])?
            .iter()
            .map(totals_from_row)
            .collect();
        let users = self
            .page_query(
                &sums(
                    "CASE u.user_name WHEN '' THEN '-' ELSE u.user_name END",
                    Some(team),
                ),
                &[&from, &to],
            )?
            .iter()
            .map(|r| UserUsage {
                team: r.get(15),
                totals: totals_from_row(r),
            })
            .collect();
        Ok(TeamUsage {
            from: from.to_owned(),
            to: to.to_owned(),
            team_keys,
            teams,
            users,
        })
    }
}

fn period(requests: i64, cost_nusd: i64, unpriced: i64) -> Period {
    Period {
        requests: requests.max(0) as u64,
        cost_usd: dollars(cost_nusd),
        unpriced: unpriced.max(0) as u64,
    }
}

/// Spend per local day from (start ms, nano-dollars) in time order.
fn per_day(
    spend: impl Iterator<Item = (i64, i64)>,
    day_of: impl Fn(i64) -> String,
) -> Vec<DaySpend> {
    let mut days: Vec<DaySpend> = Vec::new();
    for (ms, nanos) in spend {
        let day = day_of(ms);
        let cost = dollars(nanos);
        match days.last_mut() {
            Some(last) if last.day == day => last.cost_usd += cost,
            _ => days.push(DaySpend {
                day,
                cost_usd: cost,
            }),
        }
    }
    days
}

fn millis(us: i64) -> f64 {
    us as f64 / 1e3
}

/// A `REQUEST_SELECT` row, each value as SQLite's `requests` view gives it.
pub(super) fn request_from_row(r: &Row) -> RequestRow {
    RequestRow {
        id: shown_id(r.get::<_, &[u8]>(0)),
        session_id: r.get(1),
        tag: r.get(2),
        started_ms: r.get(3),
        endpoint: r.get(4),
        route: r.get(5),
        provider: r.get(6),
        requested_model: r.get(7),
        served_model: r.get(8),
        status: r.get(9),
        outcome: r.get(10),
        error_code: r.get(11),
        stream: r.get(12),
        prompt_tokens: r.get(13),
        completion_tokens: r.get(14),
        cached_tokens: r.get(15),
        cache_write_tokens: r.get(16),
        tokens_estimated: r.get(17),
        cost_usd: r.get::<_, Option<i64>>(18).map(dollars),
        saved_usd: r.get::<_, Option<i64>>(19).map(dollars),
        latency_ms: millis(r.get(20)),
        ttfb_ms: r.get::<_, Option<i64>>(21).map(millis),
        attempts: r.get(22),
        cache_status: r.get(23),
        client_hash: r.get(24),
        fingerprint: r.get::<_, Option<&[u8]>>(25).map(hex::encode),
        user_agent: r.get(26),
        client_session: r.get(27),
        billing: r.get(28),
        budget_action: r.get(29),
        skipped: r.get(30),
        price_period: r.get(31),
    }
}
