//! Reads a SQLite ledger's rows back as the writer's messages, in the order they were
//! written, for the PostgreSQL spool's drain and `smartproxy ledger migrate`.
//!
//! The records keep a few fields as `&'static str` (endpoint, cache status, price period,
//! session and anomaly kinds), since the proxy only ever writes its own constants there; text
//! read back is matched against those, and any other value is kept once for the process's
//! life (`static_text`), so a ledger with odd values costs a few bytes, not a leak per row.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::{Connection, params};

use super::{Anomaly, AttemptRow, Billing, Outcome, RequestRecord, SessionEnd, SessionStart};

/// A session as the ledger holds it: its start and, once it ended, its end.
pub(crate) struct StoredSession {
    pub rowid: i64,
    pub start: SessionStart,
    pub end: Option<SessionEnd>,
}

/// Sessions after `after_rowid`, at most `limit`, in rowid order.
pub(crate) fn sessions(
    conn: &Connection,
    after_rowid: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StoredSession>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, id, parent_id, kind, tag, program, cwd, pid, started_ms, budget_usd,
             ended_ms, exit_code, project, repo, branch, head, end_branch, end_head
         FROM sessions WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_rowid, limit as i64], |r| {
        let id: String = r.get(1)?;
        let ended_ms: Option<i64> = r.get(10)?;
        Ok(StoredSession {
            rowid: r.get(0)?,
            start: SessionStart {
                id: id.clone(),
                parent_id: r.get(2)?,
                kind: static_text(r.get(3)?),
                tag: r.get(4)?,
                program: r.get(5)?,
                cwd: r.get(6)?,
                pid: r
                    .get::<_, Option<i64>>(7)?
                    .and_then(|p| u32::try_from(p).ok()),
                started_ms: r.get(8)?,
                budget_usd: r.get(9)?,
                attribution: super::Attribution {
                    project: r.get(12)?,
                    repo: r.get(13)?,
                    branch: r.get(14)?,
                    head: r.get(15)?,
                },
            },
            end: match ended_ms {
                Some(ended_ms) => Some(SessionEnd {
                    id,
                    ended_ms,
                    exit_code: r.get(11)?,
                    end_branch: r.get(16)?,
                    end_head: r.get(17)?,
                }),
                None => None,
            },
        })
    })?;
    rows.collect()
}

/// Requests (with their attempts) after `after_seq`, at most `limit`, in `seq` order.
pub(crate) fn requests(
    conn: &Connection,
    after_seq: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, RequestRecord)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, session_id, started_ms, endpoint, route, provider, requested_model,
             served_model, status, outcome, error_code, stream, prompt_tokens,
             completion_tokens, cached_tokens, tokens_estimated, cost_usd, latency_ms, ttfb_ms,
             attempts, cache_status, client_hash, fingerprint, user_agent, client_session,
             saved_usd, cache_write_tokens, billing, budget_action, skipped, price_period
         FROM requests WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
    let mut out: Vec<(i64, RequestRecord)> = stmt
        .query_map(params![after_seq, limit as i64], |r| {
            let billing = match r.get::<_, Option<String>>(28)?.as_deref() {
                Some("subscription") => Billing::Subscription,
                Some("simulated") => Billing::Simulated,
                _ => Billing::Api,
            };
            let outcome: String = r.get(10)?;
            let record = RequestRecord {
                route: r.get(5)?,
                provider: r.get(6)?,
                requested_model: r.get(7)?,
                served_model: r.get(8)?,
                status: u16::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
                outcome: outcome_of(&outcome),
                error_code: r.get(11)?,
                stream: r.get(12)?,
                prompt_tokens: count(r.get(13)?),
                completion_tokens: count(r.get(14)?),
                cached_tokens: count(r.get(15)?),
                cache_write_tokens: count(r.get(27)?),
                tokens_estimated: r.get(16)?,
                cost_usd: r.get(17)?,
                price_period: r.get::<_, Option<String>>(31)?.map(static_text),
                saved_usd: r.get(26)?,
                latency_ms: r.get(18)?,
                ttfb_ms: r.get(19)?,
                attempts: u32::try_from(r.get::<_, i64>(20)?).unwrap_or(0),
                cache_status: static_text(r.get(21)?),
                client_hash: r.get::<_, Option<String>>(22)?.map(Arc::from),
                fingerprint: r.get(23)?,
                user_agent: r.get(24)?,
                client_session: r.get(25)?,
                billing,
                budget_action: r.get(29)?,
                skipped: r.get(30)?,
                // What the row's cost counted against was settled when it was first written.
                budgeted: false,
                ..RequestRecord::new(
                    r.get(1)?,
                    r.get::<_, Option<String>>(2)?.map(Arc::from),
                    r.get(3)?,
                    static_text(r.get(4)?),
                )
            };
            Ok((r.get(0)?, record))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let (Some(first), Some(last)) = (out.first(), out.last()) else {
        return Ok(out);
    };
    let (first, last) = (first.0, last.0);
    let mut attempts = conn.prepare_cached(
        "SELECT request_seq, provider, model, status, error_class, latency_ms, waited_ms
         FROM attempts WHERE request_seq BETWEEN ?1 AND ?2 ORDER BY request_seq, n",
    )?;
    let mut rows = attempts.query(params![first, last])?;
    let mut i = 0;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        while i < out.len() && out[i].0 < seq {
            i += 1;
        }
        if let Some((s, record)) = out.get_mut(i)
            && *s == seq
        {
            record.attempt_log.push(AttemptRow {
                provider: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                model: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                status: row
                    .get::<_, Option<i64>>(3)?
                    .and_then(|s| u16::try_from(s).ok()),
                error_class: row.get(4)?,
                latency_ms: row.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                waited_ms: row.get::<_, Option<f64>>(6)?.unwrap_or(0.0),
            });
        }
    }
    Ok(out)
}

/// Anomalies after `after_id`, at most `limit`, in id order.
pub(crate) fn anomalies(
    conn: &Connection,
    after_id: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, Anomaly)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, session_id, kind, provider, model, detail
         FROM anomalies WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_id, limit as i64], |r| {
        Ok((
            r.get(0)?,
            Anomaly {
                at_ms: r.get(1)?,
                session_id: r.get(2)?,
                kind: static_text(r.get(3)?),
                provider: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                model: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                detail: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            },
        ))
    })?;
    rows.collect()
}

/// How many requests the ledger holds, and their total cost in nano-dollars.
pub(crate) fn request_totals(conn: &Connection) -> rusqlite::Result<(u64, i64)> {
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(cost_nusd), 0) FROM request_rows",
        [],
        |r| Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?)),
    )
}

fn outcome_of(text: &str) -> Outcome {
    match text {
        "upstream_error" => Outcome::UpstreamError,
        "transport_error" => Outcome::TransportError,
        "rejected" => Outcome::Rejected,
        "budget_exceeded" => Outcome::BudgetExceeded,
        "loop_detected" => Outcome::LoopDetected,
        "client_closed" => Outcome::ClientClosed,
        "proxy_stopped" => Outcome::ProxyStopped,
        _ => Outcome::Ok,
    }
}

/// `text` as a `&'static str`: one allocation per distinct value for the process's life (the
/// values are the proxy's own few constants: endpoints, cache statuses, kinds, periods).
fn static_text(text: String) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Mutex::default);
    let mut guard = match seen.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = guard.get(text.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    guard.insert(leaked);
    leaked
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_written_request_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = super::super::Ledger::open(&path).unwrap();
        let mut r = RequestRecord::new("req_00ff".into(), Some(Arc::from("s1")), 1_000, "chat");
        r.cost_usd = Some(0.25);
        r.status = 200;
        r.attempts = 1;
        r.provider = Some("openai".into());
        r.budgeted = false;
        r.attempt_log.push(AttemptRow {
            provider: "openai".into(),
            model: "gpt".into(),
            status: Some(200),
            error_class: None,
            latency_ms: 1.5,
            waited_ms: 0.0,
        });
        ledger.record(r.clone());
        ledger.flush(std::time::Duration::from_secs(10)).unwrap();
        let conn = crate::ledger::open_connection(&path).unwrap();
        let back = requests(&conn, 0, 10).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].1, r);
        assert_eq!(request_totals(&conn).unwrap(), (1, 250_000_000));
        assert_eq!(
            static_text("chat".into()).as_ptr(),
            static_text("chat".into()).as_ptr()
        );
    }
}
