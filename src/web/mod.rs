//! The web dashboard: server-rendered pages over the ledger (`/`, `/sessions/{id}`,
//! `/performance`, `/request/{id}`, `/team`), their JSON (`/api/...`), a login form, and the
//! stylesheet and chart script embedded in the binary (no CDN, no build step). Mounted on the
//! daemon's admin listener and served alone by `smartproxy ui`.
//!
//! - `security` decides who may look (`WEBUI_SECURITY`, JWTs signed with `JWT_SECRET`);
//!   `login` is the form that turns a key or token into a cookie;
//! - `pages` renders HTML from the ledger's read interface (`ledger::reader::LedgerReader`:
//!   SQLite or PostgreSQL, the same answers); `html` escapes and lays out.
//! - `serve` is the listener `smartproxy ui` runs.
//!
//! Every ledger read runs on a blocking thread, on a read-only connection kept between pages
//! (`readers`), and a page waits for it at most `PAGE_DEADLINE`: a ledger that cannot be
//! reached (PostgreSQL down or silent) is a 503 page that says so, never a hang.

mod assets;
mod download;
pub mod html;
mod login;
pub mod pages;
mod range;
mod readers;
mod routes;
pub mod security;
pub mod serve;
mod team_routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::json;

pub use security::{Mode, Security, SecurityError};

use crate::config::LedgerLocation;
use crate::ledger::LedgerError;
use crate::ledger::pages as queries;
use crate::ledger::reader::{LedgerReader, ReadError};

/// How long the cookie `/login` sets is valid.
pub const LOGIN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Days in the spend chart.
const CHART_DAYS: u64 = 30;
/// The longest a page waits for the ledger: past PostgreSQL's connect timeout (10 s) and one
/// query's (10 s), so a slow answer still shows, and a silent server is a 503 after this.
const PAGE_DEADLINE: Duration = Duration::from_secs(25);
/// What every HTML page may load: its own stylesheet and script, nothing remote, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the dashboard needs: where the ledger is and who may look.
#[derive(Debug)]
pub struct Web {
    /// The ledger, and connections to it kept between pages.
    pub readers: readers::Readers,
    pub security: Security,
    /// Where the request page finds captured bodies.
    pub bodies: Bodies,
    /// `server_names:` and `allowed_origins:`, for `smartproxy ui`'s own listener (the daemon's
    /// admin listener checks its requests before they get here).
    pub browsers: crate::config::Browsers,
    /// The limits `/budgets` shows (from the config when the dashboard started).
    pub budgets: BudgetLimits,
    login_throttle: crate::key_throttle::KeyThrottle,
}

impl Web {
    pub fn new(ledger: LedgerLocation, security: Security, bodies: Bodies) -> Self {
        Self {
            readers: readers::Readers::new(ledger),
            security,
            bodies,
            browsers: crate::config::Browsers::default(),
            budgets: BudgetLimits::default(),
            login_throttle: crate::key_throttle::KeyThrottle::default(),
        }
    }
}

/// The config's budget limits: `budget:` and the client keys' daily budgets (name, USD).
#[derive(Debug, Clone, Default)]
pub struct BudgetLimits {
    pub budget: crate::config::BudgetConfig,
    pub key_budgets: Vec<(String, crate::config::ProjectBudget)>,
}

/// The store of captured bodies (`capture:`), when there is one.
#[derive(Clone)]
pub enum Bodies {
    None,
    /// The daemon's own store (a memory store is readable only this way).
    Live(Arc<crate::capture::CaptureHandle>),
    /// A file store read from outside the proxy (`smartproxy ui`).
    Files(crate::config::CaptureConfig),
}

impl std::fmt::Debug for Bodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "Bodies::None",
            Self::Live(_) => "Bodies::Live",
            Self::Files(_) => "Bodies::Files",
        })
    }
}

impl Bodies {
    /// A request's captured bodies; an unreadable store is logged and shown as not captured.
    fn load(&self, id: &str) -> Option<crate::capture::Captured> {
        let loaded = match self {
            Self::None => return None,
            Self::Live(handle) => handle.load(id),
            Self::Files(config) => crate::capture::load(config, id),
        };
        loaded
            .inspect_err(|err| tracing::warn!(%err, "captured bodies could not be read"))
            .ok()
            .flatten()
    }
}

/// Whether the dashboard answers `path` (the admin listener sends it these).
pub fn is_web_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/performance"
            | "/team"
            | "/budgets"
            | "/breakdown"
            | "/trends"
            | "/sessions"
            | "/requests"
            | "/login"
            | "/logout"
    ) || ["/sessions/", "/request/", "/assets/", "/api/"]
        .iter()
        .any(|p| path.starts_with(p))
}

fn now_s() -> i64 {
    crate::ledger::now_ms() / 1000
}

/// Answers one dashboard request.
pub async fn handle<B>(web: Arc<Web>, peer: SocketAddr, req: Request<B>) -> Response<Bytes>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    if let Some(name) = path.strip_prefix("/assets/") {
        return assets::serve(name, req.headers());
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/login") => {
            return login::login_page(&web, None, StatusCode::OK, &query_param(&query, "next"));
        }
        (&Method::POST, "/login") => return login::login(&web, peer.ip(), req).await,
        (&Method::POST, "/logout") => return login::logout(),
        _ => {}
    }
    if !web.security.allows(peer.ip(), req.headers(), now_s()) {
        if path.starts_with("/api/") {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "a dashboard token is required: `Authorization: Bearer <token from smartproxy ui token>`",
                "invalid_ui_token",
            );
        }
        let next = match req.uri().path_and_query() {
            Some(pq) => pq.as_str().to_owned(),
            None => "/".to_owned(),
        };
        return login::login_page(&web, None, StatusCode::UNAUTHORIZED, &next);
    }
    if method != Method::GET && method != Method::HEAD {
        return html_response(
            StatusCode::METHOD_NOT_ALLOWED,
            html::not_found("Only GET works here."),
        );
    }
    route(web, &path, &query).await
}

/// The pages and their JSON, once access is granted.
async fn route(web: Arc<Web>, path: &str, query: &str) -> Response<Bytes> {
    let (api, page_path) = match path.strip_prefix("/api") {
        Some(rest) => (true, rest.to_owned()),
        None => (false, path.to_owned()),
    };
    let query = query.to_owned();
    let read = tokio::task::spawn_blocking(move || render(&web, &page_path, api, &query));
    let result = match tokio::time::timeout(PAGE_DEADLINE, read).await {
        Ok(joined) => joined.unwrap_or_else(|e| Err(RenderError::Join(e))),
        // The blocking read finishes (or times out) on its own; the page does not wait.
        Err(_) => Err(RenderError::Timeout),
    };
    match result {
        Ok(Some(Rendered::Html(body))) => html_response(StatusCode::OK, body),
        Ok(Some(Rendered::Json(value))) => json_response(StatusCode::OK, value.to_string()),
        Ok(Some(Rendered::Redirect(to))) => redirect(&to),
        Ok(Some(Rendered::File(file))) => file_response(&file),
        Ok(Some(Rendered::BadRequest(message))) if api => {
            json_error(StatusCode::BAD_REQUEST, &message, "invalid_request")
        }
        Ok(Some(Rendered::BadRequest(message))) => {
            html_response(StatusCode::BAD_REQUEST, html::bad_request(&message, path))
        }
        Ok(None) if api => json_error(
            StatusCode::NOT_FOUND,
            &format!("nothing at {path}"),
            "not_found",
        ),
        Ok(None) => html_response(
            StatusCode::NOT_FOUND,
            html::not_found(&format!("Nothing is recorded at {path}.")),
        ),
        Err(err) if err.unavailable() => {
            tracing::warn!(%err, "dashboard: the ledger cannot be reached");
            let message = format!(
                "{err}. Check that the ledger's database is running and reachable \
                 (`smartproxy doctor`), then reload."
            );
            let mut response = if api {
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &message,
                    "ledger_unavailable",
                )
            } else {
                html_response(StatusCode::SERVICE_UNAVAILABLE, html::failure(&message))
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        Err(err) if api => {
            tracing::warn!(%err, "dashboard query failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &err.to_string(),
                "ledger_error",
            )
        }
        Err(err) => {
            tracing::warn!(%err, "dashboard query failed");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                html::failure(&err.to_string()),
            )
        }
    }
}

enum Rendered {
    Redirect(String),
    Html(String),
    Json(serde_json::Value),
    /// A download (`?format=csv|jsonl`).
    File(download::File),
    /// A query string the page cannot use; the message says how to fix it.
    BadRequest(String),
}

#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error("{0}")]
    Read(#[from] ReadError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the ledger did not answer within {} s", PAGE_DEADLINE.as_secs())]
    Timeout,
}

impl From<rusqlite::Error> for RenderError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Read(e.into())
    }
}

impl RenderError {
    /// The ledger could not be reached (a 503: try again), rather than failed to answer.
    fn unavailable(&self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Read(ReadError::Ledger(LedgerError::Postgres { .. }))
        )
    }
}

/// Runs the page's queries (on a blocking thread) and renders it; `None` is a 404.
fn render(web: &Web, path: &str, api: bool, query: &str) -> Result<Option<Rendered>, RenderError> {
    let reader = web.readers.take()?;
    let rendered = render_with(web, reader.as_ref().map(|r| &r.ledger), path, api, query);
    if let Some(reader) = reader {
        web.readers.give_back(reader);
    }
    rendered
}

fn render_with(
    web: &Web,
    conn: Option<&LedgerReader>,
    path: &str,
    api: bool,
    query: &str,
) -> Result<Option<Rendered>, RenderError> {
    let before = Some(query_param(query, "before")).filter(|b| !b.is_empty());
    let id = |prefix: &str| {
        path.strip_prefix(prefix)
            .map(percent_decode)
            .filter(|id| !id.is_empty() && !id.contains('/'))
    };
    if path == "/" {
        let (overview, latest) = match &conn {
            Some(conn) => {
                let mut overview = conn.overview(bounds(), day_label)?;
                overview.days = every_day(&overview.days);
                (overview, conn.recent_requests(20)?)
            }
            None => (empty_overview(), Vec::new()),
        };
        return Ok(Some(if api {
            Rendered::Json(json!({"overview": overview, "latest": latest}))
        } else {
            Rendered::Html(pages::overview::render(&overview, &latest))
        }));
    }
    if path == "/performance" {
        let rows = match &conn {
            Some(conn) => conn.recent_requests(queries::PERFORMANCE_SAMPLE)?,
            None => Vec::new(),
        };
        return Ok(Some(if api {
            Rendered::Json(serde_json::to_value(&rows)?)
        } else {
            Rendered::Html(pages::performance::render(&rows))
        }));
    }
    if path == "/team" {
        return team_routes::team(conn, api, query).map(Some);
    }
    if path == "/trends" {
        return routes::trends(conn, api, query).map(Some);
    }
    if path == "/breakdown" {
        return routes::breakdown(conn, api, query).map(Some);
    }
    if path == "/sessions" {
        return routes::sessions(conn, api, query).map(Some);
    }
    if path == "/requests" {
        return routes::requests(conn, api, query).map(Some);
    }
    if path == "/budgets" {
        return team_routes::budgets(web, conn, api, query).map(Some);
    }
    let Some(conn) = conn else {
        return Ok(None);
    };
    if let Some(id) = id("/sessions/") {
        return Ok(match conn.session_page(&id, before.as_deref())? {
            Some(page) if api => Some(Rendered::Json(serde_json::to_value(&page)?)),
            Some(page) => Some(Rendered::Html(pages::session::render(&page))),
            // A unique prefix of an id (as `smartproxy stats --session` takes) leads to it.
            None if !api && id.len() >= 4 => match conn.resolve_session(&id)? {
                crate::ledger::query::Resolved::Found(full) => Some(Rendered::Redirect(format!(
                    "/sessions/{}",
                    html::url_segment(&full)
                ))),
                _ => None,
            },
            None => None,
        });
    }
    if let Some(id) = id("/request/") {
        return Ok(match conn.request_detail(&id)? {
            Some(detail) if api => Some(Rendered::Json(serde_json::to_value(&detail)?)),
            Some(detail) => {
                let bodies = web.bodies.load(&id);
                let (request, response) = bodies
                    .as_ref()
                    .map_or((None, None), |c| (c.request.as_ref(), c.response.as_ref()));
                Some(Rendered::Html(pages::request::render(
                    &detail,
                    request.map(|b| pages::request::Payload { bytes: b }),
                    response.map(|b| pages::request::Payload { bytes: b }),
                )))
            }
            None => None,
        });
    }
    Ok(None)
}

fn empty_overview() -> queries::Overview {
    queries::Overview {
        today: crate::ledger::query::Totals::default(),
        month: queries::Period::default(),
        days: Vec::new(),
        sessions: Vec::new(),
        empty: true,
    }
}

/// Local midnight `days_back` days before today, in epoch milliseconds.
fn local_midnight(date: chrono::NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map_or(0, |t| t.timestamp_millis())
}

fn bounds() -> queries::Bounds {
    use chrono::Datelike;
    let today = chrono::Local::now().date_naive();
    let month = today.with_day(1).unwrap_or(today);
    let chart = today - chrono::Days::new(CHART_DAYS - 1);
    queries::Bounds {
        today_start_ms: local_midnight(today),
        month_start_ms: local_midnight(month),
        chart_start_ms: local_midnight(chart),
    }
}

/// The chart's 30 days, oldest first, days without spend as zero.
fn every_day(spent: &[queries::DaySpend]) -> Vec<queries::DaySpend> {
    let today = chrono::Local::now().date_naive();
    (0..CHART_DAYS)
        .rev()
        .map(|back| {
            let day = (today - chrono::Days::new(back))
                .format("%Y-%m-%d")
                .to_string();
            let cost_usd = spent
                .iter()
                .filter(|d| d.day == day)
                .map(|d| d.cost_usd)
                .sum();
            queries::DaySpend { day, cost_usd }
        })
        .collect()
}

fn day_label(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

/// `%41` -> `A`, `+` -> space.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `name` in a query string or form body, decoded; empty when absent.
pub fn query_param(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
        .unwrap_or_default()
}

fn redirect(to: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_response(status: StatusCode, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn file_response(file: &download::File) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(file.body.clone()));
    let headers = response.headers_mut();
    for (name, value) in routes::file_headers(file) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(status: StatusCode, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request `http_guard` refused (`smartproxy ui`'s listener).
pub fn refused(refusal: &crate::http_guard::Refusal) -> Response<Bytes> {
    let code = match refusal {
        crate::http_guard::Refusal::Host(_) => "host_not_allowed",
        crate::http_guard::Refusal::CrossSite(_) => "cross_site_request",
    };
    json_error(StatusCode::FORBIDDEN, &refusal.message(), code)
}

/// The OpenAI error shape, for the JSON endpoints.
fn json_error(status: StatusCode, message: &str, code: &str) -> Response<Bytes> {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json_response(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            .to_string(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_params() {
        assert!(is_web_path("/"));
        assert!(is_web_path("/sessions/abc"));
        assert!(!is_web_path("/admin/stats"));
        assert!(!is_web_path("/metrics"));
        assert_eq!(
            query_param("a=1&next=%2Fsessions%2Fx+y", "next"),
            "/sessions/x y"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(login::safe_next("//evil.example/"), "/");
        assert_eq!(login::safe_next("https://evil.example/"), "/");
        assert_eq!(login::safe_next("/request/r1"), "/request/r1");
    }
}
