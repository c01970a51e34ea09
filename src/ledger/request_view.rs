//! One recorded request as the dashboards read it: every `requests` column plus its session's
//! tag, its attempts (the routing trail) and its session. Shared by the terminal dashboard
//! (`live`) and the web pages (`pages`).

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::query::{self, SessionRow};

/// One `requests` row with every recorded column, plus its session's tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub session_id: Option<String>,
    /// The tag of the request's session, when it has one.
    pub tag: Option<String>,
    pub started_ms: i64,
    pub endpoint: String,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub requested_model: Option<String>,
    pub served_model: Option<String>,
    pub status: i64,
    pub outcome: String,
    pub error_code: Option<String>,
    pub stream: bool,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub tokens_estimated: bool,
    pub cost_usd: Option<f64>,
    pub saved_usd: Option<f64>,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub attempts: i64,
    pub cache_status: String,
    pub client_hash: Option<String>,
    pub fingerprint: Option<String>,
    pub user_agent: Option<String>,
    pub client_session: Option<String>,
    pub billing: String,
    pub budget_action: Option<String>,
    /// The targets routing passed over, and why.
    pub skipped: Option<String>,
    /// Which time-of-day price it paid (`standard`, `off_peak`), for models with more than one.
    pub price_period: Option<String>,
}

impl RequestRow {
    /// The model that answered, or the one asked for when none did.
    pub fn model(&self) -> &str {
        self.served_model
            .as_deref()
            .or(self.requested_model.as_deref())
            .unwrap_or("(none)")
    }

    /// A failed request: an outcome other than `ok`, or an error status.
    pub fn failed(&self) -> bool {
        self.outcome != "ok" || self.status >= 400
    }
}

/// One attempt of a request at a provider (the routing trail).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attempt {
    pub n: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub status: Option<i64>,
    pub error_class: Option<String>,
    pub latency_ms: Option<f64>,
    pub waited_ms: Option<f64>,
}

/// A request with its attempts and its session.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestDetail {
    pub request: RequestRow,
    pub attempts: Vec<Attempt>,
    pub session: Option<SessionRow>,
}

/// The columns `from_row` reads, from `requests r LEFT JOIN sessions s ON s.id = r.session_id`.
pub(super) const COLUMNS: &str = "r.id, r.session_id, s.tag, r.started_ms, r.endpoint, r.route,
    r.provider, r.requested_model, r.served_model, r.status, r.outcome, r.error_code, r.stream,
    r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,
    r.tokens_estimated, r.cost_usd, r.saved_usd, r.latency_ms, r.ttfb_ms, r.attempts,
    r.cache_status, r.client_hash, r.fingerprint, r.user_agent, r.client_session, r.billing,
    r.budget_action, r.skipped, r.price_period";

/// Requests joined with their sessions, for `COLUMNS`.
pub(super) const FROM: &str = "requests r LEFT JOIN sessions s ON s.id = r.session_id";

pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get(0)?,
        session_id: row.get(1)?,
        tag: row.get(2)?,
        started_ms: row.get(3)?,
        endpoint: row.get(4)?,
        route: row.get(5)?,
        provider: row.get(6)?,
        requested_model: row.get(7)?,
        served_model: row.get(8)?,
        status: row.get(9)?,
        outcome: row.get(10)?,
        error_code: row.get(11)?,
        stream: row.get::<_, i64>(12)? != 0,
        prompt_tokens: row.get(13)?,
        completion_tokens: row.get(14)?,
        cached_tokens: row.get(15)?,
        cache_write_tokens: row.get(16)?,
        tokens_estimated: row.get::<_, i64>(17)? != 0,
        cost_usd: row.get(18)?,
        saved_usd: row.get(19)?,
        latency_ms: row.get(20)?,
        ttfb_ms: row.get(21)?,
        attempts: row.get(22)?,
        cache_status: row.get(23)?,
        client_hash: row.get(24)?,
        fingerprint: row.get(25)?,
        user_agent: row.get(26)?,
        client_session: row.get(27)?,
        billing: row.get(28)?,
        budget_action: row.get(29)?,
        skipped: row.get(30)?,
        price_period: row.get(31)?,
    })
}

/// One request by id with its attempts in order and its session; None for an unknown id.
pub fn request_detail(conn: &Connection, id: &str) -> rusqlite::Result<Option<RequestDetail>> {
    // By `seq`, found through the id's unique index (the view's `id` is computed).
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE r.seq = {}",
        super::narrow::SEQ_OF_ID
    );
    let Some(request) = conn.query_row(&sql, [id], from_row).optional()? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT n, provider, model, status, error_class, latency_ms, waited_ms
         FROM attempts WHERE request_seq = {} ORDER BY n",
        super::narrow::SEQ_OF_ID
    ))?;
    let attempts = stmt
        .query_map([id], |r| {
            Ok(Attempt {
                n: r.get(0)?,
                provider: r.get(1)?,
                model: r.get(2)?,
                status: r.get(3)?,
                error_class: r.get(4)?,
                latency_ms: r.get(5)?,
                waited_ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let session = match &request.session_id {
        Some(sid) => query::session(conn, sid)?,
        None => None,
    };
    Ok(Some(RequestDetail {
        request,
        attempts,
        session,
    }))
}
