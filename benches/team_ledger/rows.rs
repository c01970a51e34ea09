//! Ingestion: `rows` requests (90 days, 3,000 sessions, six models, 3% errors, one attempt
//! each, ids and hashes as the proxy writes them) recorded through the real `Ledger` handle,
//! each `record` call timed (the request path's share), the whole run timed to the last commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use smartproxy::ledger::{AttemptRow, Ledger, Outcome, RequestRecord, SessionEnd, SessionStart};

const DAYS: i64 = 90;
const SESSIONS: u64 = 3_000;
/// Above this many queued messages the bench (not the request path) lets the writer catch up,
/// so no row is dropped at the queue's bound (16,384).
const HIGH_WATER: u64 = 12_000;
const MODELS: [(&str, &str, f64, f64); 6] = [
    ("openai", "gpt-4o", 2.5, 10.0),
    ("openai", "gpt-4o-mini", 0.15, 0.6),
    ("anthropic", "claude-sonnet-4-5", 3.0, 15.0),
    ("anthropic", "claude-haiku-4-5", 1.0, 5.0),
    ("ollama", "llama3.1:8b", 0.0, 0.0),
    ("deepseek", "deepseek-chat", 0.27, 1.1),
];

pub struct Ingest {
    pub rows: u64,
    /// From the first `record` to the last row committed.
    pub seconds: f64,
    /// Each `record` call, nanoseconds: p50, p99, max.
    pub enqueue_ns: [u64; 3],
    /// Times the bench paused for the writer to catch up (the queue is bounded).
    pub paces: u64,
    pub dropped: u64,
}

impl Ingest {
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

/// Records `rows` requests into `ledger` and waits until they are committed.
pub fn ingest(ledger: &Ledger, rows: u64) -> anyhow::Result<Ingest> {
    let now = smartproxy::ledger::now_ms();
    let t0 = now - DAYS * 86_400_000;
    let span = (DAYS * 86_400_000) as f64;
    let ids: Vec<String> = (0..SESSIONS)
        .map(|i| format!("{:016x}", 0x7ea3_0000_0000u64 + i))
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut enqueue: Vec<u32> = Vec::with_capacity(rows as usize);
    let mut paces = 0;
    let mut current = usize::MAX;
    let started = Instant::now();
    for i in 0..rows {
        let at = t0 + (i as f64 / rows as f64 * span) as i64;
        let s = ((i * SESSIONS) / rows) as usize;
        if s != current {
            if current != usize::MAX {
                ledger.session_ended(SessionEnd {
                    id: ids[current].clone(),
                    ended_ms: at,
                    exit_code: Some(0),
                    end_branch: None,
                    end_head: None,
                });
            }
            ledger.session_started(SessionStart {
                id: ids[s].clone(),
                parent_id: None,
                kind: "daemon",
                tag: Some(["claude", "codex", "aider"][s % 3].to_owned()),
                program: Some("bench".to_owned()),
                cwd: None,
                pid: None,
                started_ms: at,
                budget_usd: None,
                attribution: Default::default(),
            });
            current = s;
        }
        let (provider, model, input, output) = MODELS[(next() % MODELS.len() as u64) as usize];
        let ok = next() % 100 >= 3;
        let prompt = 100 + next() % 20_000;
        let completion = 10 + next() % 2_000;
        let id = format!("req_{:012x}{:08x}{:08x}", at, 0x7ea3_0001u32, i as u32);
        let mut r = RequestRecord::new(id, Some(Arc::from(ids[s].as_str())), at, "chat");
        r.route = Some("default".to_owned());
        r.user_agent = Some("claude-cli/2.0.14 (external, cli)".to_owned());
        r.client_hash = Some(Arc::from(format!(
            "{:016x}",
            0xc11e_0000_0000u64 + s as u64
        )));
        r.fingerprint = Some(format!("{:016x}", next()));
        r.provider = Some(provider.to_owned());
        r.requested_model = Some(model.to_owned());
        r.served_model = Some(model.to_owned());
        r.status = if ok { 200 } else { 429 };
        r.outcome = if ok {
            Outcome::Ok
        } else {
            Outcome::UpstreamError
        };
        r.error_code = (!ok).then(|| "rate_limited".to_owned());
        r.stream = i % 3 != 0;
        r.prompt_tokens = ok.then_some(prompt);
        r.completion_tokens = ok.then_some(completion);
        r.cached_tokens = ok.then_some(prompt / 4);
        r.cost_usd = ok.then(|| (prompt as f64 * input + completion as f64 * output) / 1e6);
        r.latency_ms = 200.0 + (next() % 20_000_000) as f64 / 1000.0;
        r.ttfb_ms = Some(50.0 + (next() % 2_000_000) as f64 / 1000.0);
        r.attempts = 1;
        r.cache_status = "miss";
        r.attempt_log = vec![AttemptRow {
            provider: provider.to_owned(),
            model: model.to_owned(),
            status: Some(r.status),
            error_class: (!ok).then(|| "upstream_429".to_owned()),
            latency_ms: r.latency_ms,
            waited_ms: 0.0,
        }];
        // What the request path pays: one `record` (a try_send), never a wait.
        let t = Instant::now();
        ledger.record(r);
        enqueue.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
        while ledger.queued() > HIGH_WATER {
            paces += 1;
            #[allow(
                clippy::disallowed_methods,
                reason = "the bench's producer, not the request path, waits for the writer"
            )]
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    ledger.session_ended(SessionEnd {
        id: ids[current.min(ids.len() - 1)].clone(),
        ended_ms: now,
        exit_code: Some(0),
        end_branch: None,
        end_head: None,
    });
    ledger.flush(Duration::from_secs(600))?;
    let seconds = started.elapsed().as_secs_f64();
    let dropped = ledger.dropped();
    ensure!(dropped == 0, "{dropped} rows dropped at the queue's bound");
    enqueue.sort_unstable();
    let at = |q: f64| u64::from(enqueue[((enqueue.len() - 1) as f64 * q) as usize]);
    Ok(Ingest {
        rows,
        seconds,
        enqueue_ns: [at(0.5), at(0.99), at(1.0)],
        paces,
        dropped,
    })
}
