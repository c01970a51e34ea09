//! The `usage` rollup: requests added up per hour, session, model and provider by the writer,
//! in the transaction that inserts them. Reads over long spans (`stats`, dashboards) add up
//! these rows instead of scanning every request.

use rusqlite::{Transaction, params};

use super::RequestRecord;
use super::record::{Billing, Outcome};

/// The width of a `usage` row.
pub const HOUR_MS: i64 = 3_600_000;

/// The start of the rollup hour `ms` falls in.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The first whole rollup hour at or after `ms`.
pub fn hour_at_or_after(ms: i64) -> i64 {
    let start = hour_of(ms);
    if start == ms { ms } else { start + HOUR_MS }
}

#[derive(Debug, Default)]
struct Sums {
    requests: i64,
    ok: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cache_write_tokens: i64,
    cost_usd: Option<f64>,
    unpriced: i64,
    estimated: i64,
    subscription_usd: Option<f64>,
    simulated_usd: Option<f64>,
}

/// One batch's usage, keyed by (hour, session, model, provider): usually a row or two. The
/// keys borrow the batch's rows (no copies per request).
#[derive(Debug, Default)]
pub struct UsageBatch<'a> {
    rows: foldhash::HashMap<(i64, &'a str, &'a str, &'a str), Sums>,
}

impl<'a> UsageBatch<'a> {
    pub fn add(&mut self, r: &'a RequestRecord) {
        let key = (
            hour_of(r.started_ms),
            r.session_id.as_deref().unwrap_or_default(),
            r.served_model
                .as_deref()
                .or(r.requested_model.as_deref())
                .unwrap_or("(none)"),
            r.provider.as_deref().unwrap_or("(none)"),
        );
        let tokens = |v: Option<u64>| v.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let ok = r.outcome == Outcome::Ok;
        let s = self.rows.entry(key).or_default();
        s.requests += 1;
        s.ok += i64::from(ok);
        s.prompt_tokens += tokens(r.prompt_tokens);
        s.completion_tokens += tokens(r.completion_tokens);
        s.cached_tokens += tokens(r.cached_tokens);
        s.cache_write_tokens += tokens(r.cache_write_tokens);
        if let Some(cost) = r.cost_usd {
            s.cost_usd = Some(s.cost_usd.unwrap_or(0.0) + cost);
            match r.billing {
                Billing::Subscription => {
                    s.subscription_usd = Some(s.subscription_usd.unwrap_or(0.0) + cost);
                }
                Billing::Simulated => s.simulated_usd = Some(s.simulated_usd.unwrap_or(0.0) + cost),
                Billing::Api => {}
            }
        } else if ok {
            s.unpriced += 1;
        }
        s.estimated += i64::from(r.tokens_estimated);
    }

    /// Adds the batch to the rollup; a NULL cost stays NULL only while nothing has a cost.
    pub fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO usage (hour_ms, session_id, model, provider, requests, ok, prompt_tokens,
                 completion_tokens, cached_tokens, cache_write_tokens, cost_usd, unpriced, estimated,
                 subscription_usd, simulated_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (hour_ms, session_id, model, provider) DO UPDATE SET
                 requests = requests + excluded.requests, ok = ok + excluded.ok,
                 prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                 completion_tokens = completion_tokens + excluded.completion_tokens,
                 cached_tokens = cached_tokens + excluded.cached_tokens,
                 cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
                 cost_usd = CASE WHEN cost_usd IS NULL THEN excluded.cost_usd
                     ELSE cost_usd + IFNULL(excluded.cost_usd, 0) END,
                 unpriced = unpriced + excluded.unpriced, estimated = estimated + excluded.estimated,
                 subscription_usd = CASE WHEN subscription_usd IS NULL THEN excluded.subscription_usd
                     ELSE subscription_usd + IFNULL(excluded.subscription_usd, 0) END,
                 simulated_usd = CASE WHEN simulated_usd IS NULL THEN excluded.simulated_usd
                     ELSE simulated_usd + IFNULL(excluded.simulated_usd, 0) END",
        )?;
        for ((hour, session, model, provider), s) in self.rows {
            upsert.execute(params![
                hour,
                session,
                model,
                provider,
                s.requests,
                s.ok,
                s.prompt_tokens,
                s.completion_tokens,
                s.cached_tokens,
                s.cache_write_tokens,
                s.cost_usd,
                s.unpriced,
                s.estimated,
                s.subscription_usd,
                s.simulated_usd
            ])?;
        }
        Ok(())
    }
}

/// The SQL that adds every request up into the rollup (a macro so migration 13 can `concat!`
/// it into its text): what `UsageBatch` does batch by batch.
macro_rules! usage_from_requests {
    () => {
        "INSERT INTO usage (hour_ms, session_id, model, provider, requests, ok, prompt_tokens,
             completion_tokens, cached_tokens, cache_write_tokens, cost_usd, unpriced, estimated,
             subscription_usd)
         SELECT started_ms - started_ms % 3600000, COALESCE(session_id, ''),
             COALESCE(served_model, requested_model, '(none)'), COALESCE(provider, '(none)'),
             COUNT(*), TOTAL(outcome = 'ok'), TOTAL(prompt_tokens), TOTAL(completion_tokens),
             TOTAL(cached_tokens), TOTAL(cache_write_tokens), SUM(cost_usd),
             TOTAL(cost_usd IS NULL AND outcome = 'ok'), TOTAL(tokens_estimated),
             SUM(CASE WHEN billing = 'subscription' THEN cost_usd END)
         FROM requests GROUP BY 1, 2, 3, 4;"
    };
}
pub(super) use usage_from_requests;

/// Fills the rollup's `simulated_usd` (migration 16) from the requests billed `simulated` (a
/// macro so the migration can `concat!` it).
macro_rules! simulated_from_requests {
    () => {
        "UPDATE usage SET simulated_usd = sim.cost
     FROM (SELECT started_ms - started_ms % 3600000 AS hour, COALESCE(session_id, '') AS session,
               COALESCE(served_model, requested_model, '(none)') AS model,
               COALESCE(provider, '(none)') AS provider, SUM(cost_usd) AS cost
           FROM requests WHERE billing = 'simulated' GROUP BY 1, 2, 3, 4) AS sim
     WHERE usage.hour_ms = sim.hour AND usage.session_id = sim.session AND usage.model = sim.model
         AND usage.provider = sim.provider;"
    };
}
pub(super) use simulated_from_requests;

/// Builds the rollup afresh from `requests`, as migration 13 does: for tests that write rows
/// straight into `requests`, bypassing the writer.
#[cfg(test)]
pub fn rebuild(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(concat!(
        "DELETE FROM usage; ",
        usage_from_requests!(),
        simulated_from_requests!()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_down_and_up() {
        assert_eq!(hour_of(HOUR_MS + 5), HOUR_MS);
        assert_eq!(hour_of(HOUR_MS), HOUR_MS);
        assert_eq!(hour_at_or_after(HOUR_MS), HOUR_MS);
        assert_eq!(hour_at_or_after(HOUR_MS + 1), 2 * HOUR_MS);
    }
}
