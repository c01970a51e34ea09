//! Builds the bench's ledger once, through the library's own writer: `rows` requests over the
//! 90 days before now, in 3,000 sessions (every tenth nested in the one before), six models
//! over four providers, 3% errors, one attempt each, and a busiest session for `--session`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use smartproxy::ledger::{AttemptRow, Ledger, Outcome, RequestRecord, SessionEnd, SessionStart};

const DAYS: i64 = 90;
const SESSIONS: u64 = 3_000;
const MODELS: [(&str, &str, f64, f64); 6] = [
    ("openai", "gpt-4o", 2.5, 10.0),
    ("openai", "gpt-4o-mini", 0.15, 0.6),
    ("anthropic", "claude-sonnet-4-5", 3.0, 15.0),
    ("anthropic", "claude-haiku-4-5", 1.0, 5.0),
    ("ollama", "llama3.1:8b", 0.0, 0.0),
    ("deepseek", "deepseek-chat", 0.27, 1.1),
];

pub struct BenchLedger {
    pub path: PathBuf,
    pub rows: u64,
    pub sessions: u64,
    /// The session with the most requests (the long-lived one every 100th request goes to).
    pub busiest_session: String,
    /// A time after which a tenth of the requests started.
    pub tenth_since: i64,
}

pub fn ledger(dir: &Path, rows: u64) -> anyhow::Result<BenchLedger> {
    let schema = schema_version();
    let path = dir.join(format!("ledger-{rows}-v{schema}.db"));
    let marker = path.with_extension("json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let meta: serde_json::Value = serde_json::from_str(&text)?;
        eprintln!("ledger_scale: reusing {}", path.display());
        return Ok(BenchLedger {
            path,
            rows,
            sessions: meta["sessions"].as_u64().unwrap_or(SESSIONS),
            busiest_session: meta["busiest"].as_str().unwrap_or_default().to_owned(),
            tenth_since: meta["tenth_since"].as_i64().unwrap_or_default(),
        });
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    eprintln!(
        "ledger_scale: writing {rows} requests to {} (once)",
        path.display()
    );
    let started = Instant::now();
    let ledger = Ledger::open(&path).context("open the bench ledger")?;
    let now = smartproxy::ledger::now_ms();
    let t0 = now - DAYS * 86_400_000;
    let span = (DAYS * 86_400_000) as f64;
    let busiest = "busiest-daemon-session".to_owned();
    ledger.session_started(session(&busiest, None, "daemon", t0));
    let ids: Vec<String> = (0..SESSIONS)
        .map(|i| format!("{:016x}", 0x5e55_0000_0000u64 + i))
        .collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut current = usize::MAX;
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
            let parent = (s % 10 == 5).then(|| ids[s - 1].clone());
            ledger.session_started(session(&ids[s], parent, "run", at));
            current = s;
        }
        let session_id: Arc<str> = if i % 100 == 0 {
            Arc::from(busiest.as_str())
        } else {
            Arc::from(ids[s].as_str())
        };
        let (provider, model, input, output) = MODELS[(next() % MODELS.len() as u64) as usize];
        let ok = next() % 100 >= 3;
        let prompt = 100 + next() % 20_000;
        let completion = 10 + next() % 2_000;
        // Ids, hashes and the user agent as the proxy writes them (`new_request_id`,
        // `salted_hash`), so the bench pays for the bytes a real row costs.
        let id = format!("req_{:012x}{:08x}{:08x}", at, 0x5eed_0001u32, i as u32);
        let mut r = RequestRecord::new(id, Some(session_id), at, "chat");
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
        // Latencies as measured: fractions of a millisecond.
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
        ledger.record(r);
        // The queue never waits: keep it short of full.
        if i % 8_192 == 8_191 {
            ledger.flush(Duration::from_secs(120))?;
        }
    }
    ledger.session_ended(SessionEnd {
        id: ids[current.min(ids.len() - 1)].clone(),
        ended_ms: now,
        exit_code: Some(0),
        end_branch: None,
        end_head: None,
    });
    ledger.flush(Duration::from_secs(120))?;
    let dropped = ledger.dropped();
    anyhow::ensure!(
        dropped == 0,
        "{dropped} rows dropped while building the bench ledger"
    );
    drop(ledger);
    let tenth_since = t0 + (span * 0.9) as i64;
    std::fs::write(
        &marker,
        serde_json::json!({"sessions": SESSIONS, "busiest": busiest, "tenth_since": tenth_since})
            .to_string(),
    )?;
    eprintln!(
        "ledger_scale: built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(BenchLedger {
        path,
        rows,
        sessions: SESSIONS,
        busiest_session: busiest,
        tenth_since,
    })
}

fn session(id: &str, parent: Option<String>, kind: &'static str, at: i64) -> SessionStart {
    SessionStart {
        id: id.to_owned(),
        parent_id: parent,
        kind,
        tag: Some(
            ["claude", "codex", "aider"][usize::from(id.bytes().last().unwrap_or(0) % 3)]
                .to_owned(),
        ),
        program: Some("bench".to_owned()),
        cwd: None,
        pid: None,
        started_ms: at,
        budget_usd: Some(5.0),
        attribution: Default::default(),
    }
}

/// The schema this build writes, so a ledger from an older build is rebuilt, not reused.
fn schema_version() -> i64 {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("v.db");
    drop(Ledger::open(&path).expect("open a scratch ledger"));
    rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .unwrap_or(0)
}
