//! Per-request bookkeeping: the request id, the ledger row being filled in, the budget
//! reservation, and the guarantee that the row is written exactly once, even when the client
//! goes away and the request's future is dropped half-way.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::keys::KeyMemo;
use super::state::AppState;
use crate::budget::Reservation;
use crate::ledger::{Outcome, RequestRecord, now_ms};
use crate::pricing::{Period, ServiceTier, TokenCounts, UsageDetail};
use crate::translate::anthropic::TokenUsage;
use crate::wire::estimate::{
    AskedPremiums, asked_premiums, json_text_tokens, json_text_tokens_upper,
};
use crate::wire::openai::Usage;

/// A fresh request id: `req_`, the time in milliseconds (48 bits), a random number fixed for
/// this process (32 bits) and a counter (32 bits), in hex. Time-ordered ids land at the end of
/// the ledger's primary-key index instead of on random pages, which keeps inserts cheap however
/// large the ledger grows; within a process they also sort in the order requests arrived.
pub fn new_request_id() -> String {
    static PROCESS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let process = *PROCESS.get_or_init(|| rand::rng().next_u32());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ms = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    // Written digit by digit: the formatter's padding machinery cost more than the rest.
    let mut id = String::with_capacity(32);
    id.push_str("req_");
    for (value, digits) in [(ms, 12), (u64::from(process), 8), (u64::from(n), 8)] {
        for shift in (0..digits).rev() {
            let nibble = (value >> (shift * 4)) & 0xf;
            id.push(char::from(b"0123456789abcdef"[nibble as usize]));
        }
    }
    id
}

/// A request body's fingerprint: 64 bits of XXH3 seeded from the ledger's salt, in hex. It
/// matches equal bodies within one ledger (another ledger's salt gives other fingerprints) and,
/// like any 64-bit digest of a body, cannot give the body back.
///
/// XXH3, not SHA-256: an agent sends 100 KiB to 1 MiB a turn, and hashing is done before the
/// request is forwarded. SHA-256, even with the CPU's SHA instructions (~1.3 GB/s here), took
/// ~0.2 ms of a 256 KiB request; XXH3 reads tens of GB/s.
pub fn request_fingerprint(salt: &str, body: &[u8]) -> String {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
    let seed = xxh3_64(salt.as_bytes());
    hex::encode(xxh3_64_with_seed(body, seed).to_be_bytes())
}

/// A salted, truncated SHA-256: enough to match equal inputs, useless for recovering them.
pub fn salted_hash(salt: &str, data: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0u8]);
    hasher.update(data);
    hex::encode(&hasher.finalize()[..8])
}

/// The client end of a connection, with its salted hash computed once per connection and the
/// client key it presented last.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    pub hash: Arc<str>,
    pub keys: Arc<KeyMemo>,
}

impl Peer {
    pub fn new(addr: std::net::SocketAddr, salt: &str) -> Self {
        Self {
            addr,
            hash: Arc::from(salted_hash(salt, addr.ip().to_string().as_bytes())),
            keys: Arc::default(),
        }
    }
}

/// Facts about the trip for the response headers.
#[derive(Debug, Default)]
pub struct Trip {
    pub failover: bool,
    /// What is left of the tightest budget after this request's reservation.
    pub budget_remaining: Option<f64>,
    /// Time spent waiting on providers (attempts and backoff), to tell smartproxy's own share.
    pub upstream: std::time::Duration,
    /// The output cap a budget lowered the request to (`budget.on_exceed: fit`).
    pub output_cap: Option<u64>,
    /// A budget is mostly used: which, and how much.
    pub budget_warning: Option<String>,
    /// The loop breaker's warning: the session is close to being stopped.
    pub loop_warning: Option<String>,
}

/// A request's prompt tokens, estimated from the text of its body when first asked for: a
/// budget's reservation, a reply without usage, a translated stream's start. Requests that need
/// none never pay for the scan.
#[derive(Clone)]
pub struct PromptEstimate(Arc<(Bytes, std::sync::OnceLock<u64>)>);

impl PromptEstimate {
    pub fn new(body: Bytes) -> Self {
        Self(Arc::new((body, std::sync::OnceLock::new())))
    }

    pub fn tokens(&self) -> u64 {
        let (body, tokens) = &*self.0;
        *tokens.get_or_init(|| json_text_tokens(&String::from_utf8_lossy(body)))
    }

    /// An upper bound on the prompt's tokens and what the body asks for that is billed above
    /// plain token prices, for a budget's reservation (read once per request, only when a
    /// budget applies).
    pub fn for_reservation(&self) -> (u64, AskedPremiums) {
        let (body, _) = &*self.0;
        (
            json_text_tokens_upper(&String::from_utf8_lossy(body)),
            asked_premiums(body),
        )
    }
}

/// Tokens known for a request: the provider's usage, or an estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tokens {
    pub counts: TokenCounts,
    /// What else the usage said that sets the price (1-hour cache writes, reasoning tokens,
    /// web searches, service tier).
    pub detail: UsageDetail,
    pub estimated: bool,
}

impl Tokens {
    pub fn from_usage(usage: &Usage) -> Self {
        Self {
            counts: TokenCounts {
                prompt: usage.prompt(),
                completion: usage.completion_tokens,
                cached_prompt: usage.cached_tokens(),
                cache_write: usage.cache_creation_input_tokens.unwrap_or(0),
            },
            detail: UsageDetail {
                cache_write_1h: usage.cache_write_1h(),
                reasoning: usage.reasoning_tokens(),
                web_searches: usage.web_searches(),
                service_tier: ServiceTier::Standard,
                started_ms: None,
            },
            estimated: false,
        }
    }

    /// Usage an Anthropic provider reported (natively or through the translation).
    pub fn from_token_usage(u: &TokenUsage) -> Self {
        let mut tokens = Self::from_counts(u.prompt, u.completion, u.cache_read, u.cache_creation);
        tokens.detail.cache_write_1h = u.cache_creation_1h;
        tokens.detail.web_searches = u.web_searches;
        tokens
    }

    /// The tier the reply says served it (`service_tier`), which sets its price.
    pub fn served_at(mut self, service_tier: Option<&str>) -> Self {
        self.detail.service_tier = service_tier.map_or(ServiceTier::Standard, ServiceTier::parse);
        self
    }

    /// Counts a provider reported in another format (`prompt` includes the cached tokens and
    /// the cache writes).
    pub fn from_counts(prompt: u64, completion: u64, cached_prompt: u64, cache_write: u64) -> Self {
        Self {
            counts: TokenCounts {
                prompt,
                completion,
                cached_prompt,
                cache_write,
            },
            detail: UsageDetail::default(),
            estimated: false,
        }
    }

    pub fn estimated(prompt: u64, completion: u64) -> Self {
        Self {
            counts: TokenCounts {
                prompt,
                completion,
                cached_prompt: 0,
                cache_write: 0,
            },
            detail: UsageDetail::default(),
            estimated: true,
        }
    }
}

/// Owns a request's ledger row until it is written.
pub struct Finalizer {
    state: Arc<AppState>,
    record: Option<RequestRecord>,
    started: Instant,
    /// The budget claims the row settles: the session's, and the offline grace's.
    reservations: Vec<Reservation>,
    /// Served from the cache: it cost nothing, and saved what the tokens would have cost.
    cache_hit: bool,
    /// Forwarded for a nested `run` whose own proxy records the request: this proxy settles
    /// its session budget but writes no second row.
    forwarded: bool,
}

impl Finalizer {
    pub fn new(state: Arc<AppState>, id: String, endpoint: &'static str) -> Self {
        let record = RequestRecord::new(id, state.session_id.clone(), now_ms(), endpoint);
        Self {
            state,
            record: Some(record),
            started: Instant::now(),
            reservations: Vec::new(),
            cache_hit: false,
            forwarded: false,
        }
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn id(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.id.as_str())
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The row being filled in. Always present until `finish` consumes the finalizer.
    pub fn record(&mut self) -> &mut RequestRecord {
        self.record
            .get_or_insert_with(|| RequestRecord::new(String::new(), None, 0, "unknown"))
    }

    pub fn hold(&mut self, reservation: Reservation) {
        self.reservations.push(reservation);
    }

    /// Sets tokens and the cost they imply.
    pub fn set_tokens(&mut self, tokens: Tokens) {
        let cache_hit = self.cache_hit;
        let Some(record) = self.record.as_mut() else {
            return;
        };
        record.prompt_tokens = Some(tokens.counts.prompt);
        record.completion_tokens = Some(tokens.counts.completion);
        record.cached_tokens = Some(tokens.counts.cached_prompt);
        record.cache_write_tokens = Some(tokens.counts.cache_write);
        record.tokens_estimated = tokens.estimated;
        let model = record
            .served_model
            .as_deref()
            .or(record.requested_model.as_deref());
        // Time-of-day prices apply by the moment the request started.
        let detail = UsageDetail {
            started_ms: Some(record.started_ms),
            ..tokens.detail
        };
        let bill = model.and_then(|m| {
            self.state
                .bill(record.provider.as_deref(), m, tokens.counts, detail)
        });
        let cost = bill.map(|b| b.cost_usd);
        record.price_period = bill.and_then(|b| b.period).map(Period::as_str);
        if cache_hit {
            record.saved_usd = cost;
            record.cost_usd = Some(0.0);
        } else {
            record.cost_usd = cost;
        }
    }

    /// Marks the request as one a nested `run` forwarded: it is recorded there, not here.
    pub fn set_forwarded(&mut self) {
        self.forwarded = true;
    }

    pub fn forwarded(&self) -> bool {
        self.forwarded
    }

    /// Marks the request as served from the cache.
    pub fn set_cache_hit(&mut self) {
        self.cache_hit = true;
        self.record().cache_status = "hit";
    }

    pub fn set_ttfb(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let record = self.record();
        if record.ttfb_ms.is_none() {
            record.ttfb_ms = Some(ms);
        }
    }

    /// Writes the row with its final status and settles the budget reservation.
    pub fn finish(mut self, status: u16, outcome: Outcome, error_code: Option<&str>) {
        self.write(status, outcome, error_code);
    }

    /// `finish`, and the ledger writer's word once the row is committed: a stream's end waits
    /// for it (see `ledger::Ledger::committed`). `None` when there is nothing to wait for.
    pub fn finish_committed(
        mut self,
        status: u16,
        outcome: Outcome,
        error_code: Option<&str>,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        if self.write(status, outcome, error_code) {
            self.state.ledger.committed()
        } else {
            None
        }
    }

    /// Writes the row; false when there was none left to write or it is not this proxy's.
    fn write(&mut self, status: u16, outcome: Outcome, error_code: Option<&str>) -> bool {
        let Some(mut record) = self.record.take() else {
            return false;
        };
        record.status = status;
        record.outcome = outcome;
        if let Some(code) = error_code {
            record.error_code = Some(code.to_owned());
        }
        record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        stream_attempt_to_its_end(&mut record);
        for reservation in self.reservations.drain(..) {
            reservation.settle(record.cost_usd);
        }
        self.warn_if_session_budget_mostly_spent();
        if let Some(session) = &record.session_id {
            let tokens = record.prompt_tokens.unwrap_or(0) + record.completion_tokens.unwrap_or(0);
            self.state
                .loops
                .note_tokens(session, tokens, record.started_ms);
        }
        tracing::info!(
            id = %record.id,
            status,
            outcome = outcome.as_str(),
            model = record.served_model.as_deref().unwrap_or("-"),
            latency_ms = format_args!("{:.1}", record.latency_ms),
            "request"
        );
        if self.forwarded {
            return false;
        }
        self.state.metrics.record(&record);
        self.state.ledger.record(record);
        true
    }
}

impl Finalizer {
    /// The request that takes the session budget past its warning mark says so (once, and
    /// notifies) as it settles, not only when the next request is admitted.
    fn warn_if_session_budget_mostly_spent(&self) {
        let Some(limit) = self.state.budget.limit_usd().filter(|l| *l > 0.0) else {
            return;
        };
        let (spent, _) = self.state.budget.spent_and_reserved();
        if let Some(warning) = crate::budget::policy::mostly_spent("session", spent, limit) {
            self.state
                .warn_budget_once("session", &warning, spent, limit);
        }
    }
}

impl Drop for Finalizer {
    fn drop(&mut self) {
        // Reached only when the request's future or body was dropped before it finished: the
        // client went away. The row is still written, so nothing is lost.
        if self.record.is_some() {
            let (status, outcome, code) = self.state.dropped_ending();
            self.write(status, outcome, Some(code));
        }
    }
}

/// A stream's last attempt was timed until its headers; the upstream kept sending until the
/// stream ended. Its time is extended to that end, so an attempt's time means what the
/// request's does (start to last byte) and the attempts with their waits add up to the request.
fn stream_attempt_to_its_end(record: &mut RequestRecord) {
    if !record.stream {
        return;
    }
    let Some((last, earlier)) = record.attempt_log.split_last_mut() else {
        return;
    };
    if !last.status.is_some_and(|s| (200..300).contains(&s)) {
        return;
    }
    let before: f64 = earlier
        .iter()
        .map(|a| a.latency_ms + a.waited_ms)
        .sum::<f64>()
        + last.waited_ms;
    last.latency_ms = last.latency_ms.max(record.latency_ms - before);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_matches_equal_bodies_of_one_ledger_only() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let fp = request_fingerprint("salt-a", body);
        assert_eq!(fp.len(), 16);
        assert!(
            fp.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(fp, request_fingerprint("salt-a", body));
        assert_ne!(fp, request_fingerprint("salt-b", body));
        assert_ne!(fp, request_fingerprint("salt-a", &body[..body.len() - 1]));
    }

    #[test]
    fn a_streams_last_attempt_is_timed_to_the_streams_end() {
        let attempt = |status, latency_ms, waited_ms| crate::ledger::AttemptRow {
            provider: "p".to_owned(),
            model: "m".to_owned(),
            status: Some(status),
            error_class: None,
            latency_ms,
            waited_ms,
        };
        let mut r = RequestRecord::new("req_1".to_owned(), None, 0, "chat");
        r.stream = true;
        r.latency_ms = 500.0;
        r.attempt_log = vec![attempt(503, 10.0, 0.0), attempt(200, 5.0, 100.0)];
        stream_attempt_to_its_end(&mut r);
        assert_eq!(
            r.attempt_log[0].latency_ms, 10.0,
            "earlier attempts keep theirs"
        );
        assert_eq!(
            r.attempt_log[1].latency_ms, 390.0,
            "from its start to the stream's end"
        );
        // A whole reply was read inside its attempt; a failed last attempt never streamed.
        for (stream, status) in [(false, 200), (true, 502)] {
            r.stream = stream;
            r.attempt_log = vec![attempt(status, 5.0, 0.0)];
            stream_attempt_to_its_end(&mut r);
            assert_eq!(r.attempt_log[0].latency_ms, 5.0);
        }
    }

    #[test]
    fn request_ids_are_time_ordered_hex() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32, "{a}");
        assert!(a.starts_with("req_"));
        assert!(
            a[4..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let ms = i64::from_str_radix(&a[4..16], 16).unwrap_or(0);
        assert!((now_ms() - ms).abs() < 5_000, "{a}");
        assert_eq!(a[16..24], b[16..24], "one process, one middle part");
        assert!(a < b, "{a} < {b}");
    }
}
