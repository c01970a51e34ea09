//! The rows the ledger stores. Every field is metadata; nothing here can hold content.

use std::sync::Arc;

/// A session opening: one `run`, or one day of one daemon client key.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStart {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: &'static str,
    pub tag: Option<String>,
    pub program: Option<String>,
    pub cwd: Option<String>,
    pub pid: Option<u32>,
    pub started_ms: i64,
    pub budget_usd: Option<f64>,
    /// Its project and where HEAD stood when it started.
    pub attribution: Attribution,
}

/// What a session's work belongs to: a project, and the git repository, branch and commit
/// its folder was on (a `run` in a repository). Names and commit ids only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub project: Option<String>,
    /// The working tree's top folder.
    pub repo: Option<String>,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    pub head: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionEnd {
    pub id: String,
    pub ended_ms: i64,
    pub exit_code: Option<i32>,
    /// The branch and commit HEAD was on when the session ended (a `run` in a repository).
    pub end_branch: Option<String>,
    pub end_head: Option<String>,
}

/// How a request ended, in one word for filtering and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The provider answered with an error status.
    UpstreamError,
    /// The provider could not be reached, timed out or broke a stream.
    TransportError,
    /// Refused by smartproxy before anything was sent (bad request, auth, no route).
    Rejected,
    BudgetExceeded,
    /// Refused by the loop breaker: the session's agent repeated itself.
    LoopDetected,
    /// The client went away before the reply was complete.
    ClientClosed,
    /// smartproxy itself stopped before the reply was complete (its drain grace ran out).
    ProxyStopped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UpstreamError => "upstream_error",
            Self::TransportError => "transport_error",
            Self::Rejected => "rejected",
            Self::BudgetExceeded => "budget_exceeded",
            Self::LoopDetected => "loop_detected",
            Self::ClientClosed => "client_closed",
            Self::ProxyStopped => "proxy_stopped",
        }
    }
}

/// Who pays for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// A provider key (smartproxy's, or a client's own API key passed through).
    Api,
    /// A client's subscription (Claude Pro/Max OAuth token passed through): the cost recorded
    /// is what the tokens would cost at list price, not money spent.
    Subscription,
    /// Served by the built-in mock provider: the cost recorded is what the request would have
    /// cost at list price; nothing was spent, so no shared budget or real total counts it.
    Simulated,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Subscription => "subscription",
            Self::Simulated => "simulated",
        }
    }
}

/// One request through the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: String,
    /// Shared with every other request of the session.
    pub session_id: Option<Arc<str>>,
    pub started_ms: i64,
    pub endpoint: &'static str,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub requested_model: Option<String>,
    pub served_model: Option<String>,
    pub status: u16,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    pub stream: bool,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic), included in
    /// `prompt_tokens`.
    pub cache_write_tokens: Option<u64>,
    /// True when token counts are smartproxy's estimate rather than the provider's figures.
    pub tokens_estimated: bool,
    pub cost_usd: Option<f64>,
    /// Which time-of-day price `cost_usd` is at (`standard`, `off_peak`), for models priced
    /// by the hour; `None` for the others.
    pub price_period: Option<&'static str>,
    /// What a cache hit saved: the original reply's cost.
    pub saved_usd: Option<f64>,
    pub latency_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub attempts: u32,
    /// Every attempt, in order (retries and failovers included).
    pub attempt_log: Vec<AttemptRow>,
    pub cache_status: &'static str,
    /// Shared with every other request of the connection.
    pub client_hash: Option<Arc<str>>,
    pub fingerprint: Option<String>,
    pub user_agent: Option<String>,
    /// The client's own session id (Claude Code's `x-claude-code-session-id`).
    pub client_session: Option<String>,
    /// The shared-budget reservation this row settles (removed in the same transaction).
    pub reservation_id: Option<String>,
    pub billing: Billing,
    /// What a budget did to the request (its output cap lowered, its model downgraded, or it
    /// was refused); `None` when it fitted as it was.
    pub budget_action: Option<String>,
    /// The targets routing passed over, and why (`routing::plan::describe_skips`).
    pub skipped: Option<String>,
    /// Whether the cost counts against the shared budgets (not for subscription rows unless
    /// `budget.count_subscription`, never for simulated ones).
    pub budgeted: bool,
}

impl RequestRecord {
    pub fn new(
        id: String,
        session_id: Option<Arc<str>>,
        started_ms: i64,
        endpoint: &'static str,
    ) -> Self {
        Self {
            id,
            session_id,
            started_ms,
            endpoint,
            route: None,
            provider: None,
            requested_model: None,
            served_model: None,
            status: 0,
            outcome: Outcome::Ok,
            error_code: None,
            stream: false,
            prompt_tokens: None,
            completion_tokens: None,
            cached_tokens: None,
            cache_write_tokens: None,
            tokens_estimated: false,
            cost_usd: None,
            price_period: None,
            saved_usd: None,
            latency_ms: 0.0,
            ttfb_ms: None,
            attempts: 0,
            attempt_log: Vec::new(),
            cache_status: "none",
            client_hash: None,
            fingerprint: None,
            user_agent: None,
            client_session: None,
            reservation_id: None,
            billing: Billing::Api,
            budget_action: None,
            skipped: None,
            budgeted: true,
        }
    }
}

/// One try of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub provider: String,
    pub model: String,
    /// The provider's status, when it answered.
    pub status: Option<u16>,
    /// Why it failed (`upstream_429`, `upstream_timeout`, ...), None when it succeeded.
    pub error_class: Option<String>,
    pub latency_ms: f64,
    /// Time spent waiting (backoff or `Retry-After`) before this attempt.
    pub waited_ms: f64,
}

/// Something unusual about a target: a circuit opening or closing.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub at_ms: i64,
    pub session_id: Option<String>,
    pub kind: &'static str,
    pub provider: String,
    pub model: String,
    pub detail: String,
}
