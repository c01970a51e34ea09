//! `smartproxy prune` and the daemon's daily clean-up on a PostgreSQL ledger: the monthly
//! partitions of `requests` that end at or before the cutoff are dropped whole, only the
//! requests of the one month the cutoff falls in are deleted row by row (in batches, each its
//! own short transaction, so daemons keep writing), and the same figures as SQLite's
//! `ledger::retention` are reported.
//!
//! The daily roll-up is trimmed as SQLite's hourly one is: the days before the cutoff's day go,
//! and the requests deleted from the cutoff's own day are subtracted from it in the statement
//! that deletes them, so every total afterwards counts exactly the requests left. (Subtracted
//! under the session's tag and key as they are now: a request rolled up before its session
//! row arrived is taken from a different group than it was added to; the writer sends sessions
//! first, so this takes a session recorded out of order.) Shared budgets
//! (`budget_counters`) are never touched: pruning never gives a budget its money back.

use chrono::{Datelike, TimeZone, Utc};
use tokio_postgres::Client;

use super::super::LedgerError;
use super::super::retention::Pruned;
use super::query::Reader;
use super::rows;

/// Requests (or attempts, anomalies, sessions) deleted per transaction.
const BATCH: i64 = 2_000;

/// An arbitrary constant: the advisory lock a prune holds, so two (a daemon's and a user's)
/// never work on one ledger at once.
const PRUNE_LOCK: i64 = 0x5350_5052_554e_4521; // "SPPRUNE!"

/// How long dropping a partition may wait for writers' short transactions before it gives up
/// (and is retried): it needs the parent table to itself for a moment.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// Attempts to drop one partition before the prune gives up with an error.
const DROP_TRIES: u32 = 5;

/// Sessions that ended before the cutoff ($1) and keep nothing: SQLite's `OLD_SESSIONS`. $2
/// are the sessions without an end whose process is gone (checked in Rust).
const OLD_SESSIONS: &str = "WITH RECURSIVE
     seed(id) AS (SELECT id FROM sessions
                  WHERE (ended_ms IS NULL AND (started_ms >= $1 OR NOT (id = ANY($2::text[]))))
                        OR ended_ms >= $1
                  UNION SELECT text FROM strings WHERE id IN (SELECT session FROM requests
                        WHERE started_ms >= $1 AND session IS NOT NULL)),
     keep(id) AS (SELECT id FROM seed
                  UNION SELECT s.parent_id FROM sessions s JOIN keep ON s.id = keep.id
                        WHERE s.parent_id IS NOT NULL)
     SELECT s.id FROM sessions s WHERE s.id NOT IN (SELECT id FROM keep)";

/// One batch of the cutoff's month: deletes up to $2 requests older than $1 with their
/// attempts, and subtracts those of the cutoff's own day (from $3 on) from the daily roll-up,
/// grouped exactly as `rows::INSERT_REQUESTS` added them. Concurrent writers add to the same
/// roll-up rows; both are `x = x +/- n` under the row's lock, so neither loses the other's.
const DELETE_BATCH: &str = "
WITH doomed AS (
    SELECT id, started_ms FROM requests WHERE started_ms < $1 LIMIT $2
), del AS (
    DELETE FROM requests r USING doomed d WHERE r.id = d.id AND r.started_ms = d.started_ms
    RETURNING r.id, r.session, r.started_ms, r.shape, r.prompt_tokens, r.completion_tokens,
        r.cached_tokens, r.cache_write_tokens, r.tokens_estimated, r.cost_nusd
), att AS (
    DELETE FROM attempts a USING del WHERE a.request_id = del.id RETURNING 1
), gone AS (
    SELECT (to_timestamp(i.started_ms / 1000.0) AT TIME ZONE 'UTC')::date AS day,
        COALESCE(CASE WHEN s.kind = 'daemon' THEN s.tag END, '') AS key,
        COALESCE(ck.user_name, '') AS user_name, COALESCE(ck.team, '') AS team,
        COALESCE(s.project, '') AS project,
        COALESCE(k.served_model, k.requested_model, '(none)') AS model,
        COALESCE(k.provider, '(none)') AS provider, COALESCE(s.tag, '') AS tag,
        count(*) AS requests, count(*) FILTER (WHERE k.outcome = 'ok') AS ok,
        COALESCE(sum(i.prompt_tokens), 0)::bigint AS prompt_tokens,
        COALESCE(sum(i.completion_tokens), 0)::bigint AS completion_tokens,
        COALESCE(sum(i.cached_tokens), 0)::bigint AS cached_tokens,
        COALESCE(sum(i.cache_write_tokens), 0)::bigint AS cache_write_tokens,
        COALESCE(sum(i.cost_nusd), 0)::bigint AS cost_nusd,
        count(*) FILTER (WHERE i.cost_nusd IS NULL AND k.outcome = 'ok') AS unpriced,
        count(*) FILTER (WHERE i.tokens_estimated) AS estimated,
        COALESCE(sum(i.cost_nusd) FILTER (WHERE k.billing = 'subscription'), 0)::bigint
            AS subscription_nusd,
        COALESCE(sum(i.cost_nusd) FILTER (WHERE k.billing = 'simulated'), 0)::bigint
            AS simulated_nusd,
        count(i.cost_nusd) AS priced,
        count(i.cost_nusd) FILTER (WHERE k.billing = 'subscription') AS subscribed,
        count(i.cost_nusd) FILTER (WHERE k.billing = 'simulated') AS simulated
    FROM del i
    JOIN request_shapes k ON k.id = i.shape
    LEFT JOIN strings st ON st.id = i.session
    LEFT JOIN sessions s ON s.id = st.text
    LEFT JOIN client_keys ck ON s.kind = 'daemon' AND ck.name = s.tag
    WHERE i.started_ms >= $3
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), rolled AS (
    UPDATE usage_daily u SET
        requests = u.requests - g.requests,
        ok = u.ok - g.ok,
        prompt_tokens = u.prompt_tokens - g.prompt_tokens,
        completion_tokens = u.completion_tokens - g.completion_tokens,
        cached_tokens = u.cached_tokens - g.cached_tokens,
        cache_write_tokens = u.cache_write_tokens - g.cache_write_tokens,
        cost_nusd = u.cost_nusd - g.cost_nusd,
        unpriced = u.unpriced - g.unpriced,
        estimated = u.estimated - g.estimated,
        subscription_nusd = u.subscription_nusd - g.subscription_nusd,
        simulated_nusd = u.simulated_nusd - g.simulated_nusd,
        priced = u.priced - g.priced,
        subscribed = u.subscribed - g.subscribed,
        simulated = u.simulated - g.simulated
    FROM gone g
    WHERE u.day = g.day AND u.key = g.key AND u.user_name = g.user_name AND u.team = g.team
        AND u.project = g.project AND u.model = g.model AND u.provider = g.provider
        AND u.tag = g.tag
    RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM att),
    (SELECT min(started_ms) FROM del), (SELECT max(started_ms) FROM del),
    (SELECT count(*) FROM rolled)";

/// A monthly partition of `requests`: its table and the end of its month (exclusive).
struct Partition {
    name: String,
    end_ms: i64,
}

impl Reader {
    fn run<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, LedgerError> {
        self.runtime
            .block_on(f(&self.client))
            .map_err(|e| super::db_error(&self.url, &e))
    }

    /// Counts what `prune_execute` would delete, without writing. `partitions` says how many
    /// monthly partitions would be dropped whole.
    pub fn prune_plan(&self, cutoff_ms: i64) -> Result<Pruned, LedgerError> {
        let lost = self.lost_sessions()?;
        let partitions = self.old_partitions(cutoff_ms)?.len() as u64;
        self.run(async |c| {
            let r = c
                .query_one(
                    "SELECT count(*), min(started_ms), max(started_ms) FROM requests
                     WHERE started_ms < $1",
                    &[&cutoff_ms],
                )
                .await?;
            let sessions: i64 = c
                .query_one(
                    &format!("SELECT count(*) FROM ({OLD_SESSIONS}) o"),
                    &[&cutoff_ms, &lost],
                )
                .await?
                .get(0);
            let anomalies: i64 = c
                .query_one(
                    "SELECT count(*) FROM anomalies WHERE at_ms < $1",
                    &[&cutoff_ms],
                )
                .await?
                .get(0);
            Ok(Pruned {
                cutoff_ms,
                requests: r.get::<_, i64>(0) as u64,
                attempts: None,
                sessions: sessions as u64,
                anomalies: anomalies as u64,
                oldest_ms: r.get(1),
                newest_ms: r.get(2),
                partitions: Some(partitions),
            })
        })
    }

    /// Drops the months before the cutoff's, deletes the rest of what is older than the cutoff
    /// in batches (reporting the requests deleted so far to `progress`), trims the roll-up and
    /// removes the sessions left with nothing. Refused while another prune holds the ledger.
    pub fn prune_execute(
        &self,
        cutoff_ms: i64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Pruned, LedgerError> {
        let locked: bool = self.run(async |c| {
            Ok(
                c.query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK])
                    .await?
                    .get(0),
            )
        })?;
        if !locked {
            return Err(LedgerError::Postgres {
                url: self.url.clone(),
                detail: "another smartproxy is pruning this ledger; try again when it is done"
                    .to_owned(),
            });
        }
        let result = self.prune_locked(cutoff_ms, progress);
        let unlocked = self.run(async |c| {
            c.execute("SELECT pg_advisory_unlock($1)", &[&PRUNE_LOCK])
                .await
                .map(drop)
        });
        let done = result?;
        unlocked?;
        Ok(done)
    }

    fn prune_locked(
        &self,
        cutoff_ms: i64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Pruned, LedgerError> {
        let lost = self.lost_sessions()?;
        let mut done = Pruned {
            cutoff_ms,
            attempts: Some(0),
            partitions: Some(0),
            ..Pruned::default()
        };
        let note_span = |done: &mut Pruned, oldest: Option<i64>, newest: Option<i64>| {
            if let Some(o) = oldest {
                done.oldest_ms = Some(done.oldest_ms.map_or(o, |d| d.min(o)));
            }
            if let Some(n) = newest {
                done.newest_ms = Some(done.newest_ms.map_or(n, |d| d.max(n)));
            }
        };
        for part in self.old_partitions(cutoff_ms)? {
            let (requests, attempts, oldest, newest) = self.drop_partition(&part)?;
            done.requests += requests;
            done.attempts = Some(done.attempts.unwrap_or(0) + attempts);
            done.partitions = Some(done.partitions.unwrap_or(0) + 1);
            note_span(&mut done, oldest, newest);
            progress(done.requests);
        }
        let day_start = day_start(cutoff_ms);
        loop {
            let row = self.run(async |c| {
                c.query_one(DELETE_BATCH, &[&cutoff_ms, &BATCH, &day_start])
                    .await
            })?;
            let requests = row.get::<_, i64>(0) as u64;
            done.requests += requests;
            done.attempts = Some(done.attempts.unwrap_or(0) + row.get::<_, i64>(1) as u64);
            note_span(&mut done, row.get(2), row.get(3));
            progress(done.requests);
            if requests < BATCH as u64 {
                break;
            }
        }
        // The days before the cutoff's day leave the roll-up whole (their requests are gone);
        // after the requests, so a late row of those days written meanwhile leaves no count.
        self.run(async |c| {
            c.execute(
                "DELETE FROM usage_daily
                 WHERE day < (to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC')::date",
                &[&cutoff_ms],
            )
            .await
            .map(drop)
        })?;
        self.run(async |c| {
            // Roll-up rows of the cutoff's day whose every request went, as SQLite's hours go.
            c.execute(
                "DELETE FROM usage_daily WHERE requests <= 0
                 AND day = (to_timestamp($1::bigint / 1000.0) AT TIME ZONE 'UTC')::date",
                &[&cutoff_ms],
            )
            .await
            .map(drop)
        })?;
        done.anomalies = self.loop_delete(
            "DELETE FROM anomalies WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM anomalies WHERE at_ms < $1 LIMIT $2))",
            &cutoff_ms,
            None,
        )?;
        done.sessions = self.loop_delete(
            &format!("DELETE FROM sessions WHERE id IN ({OLD_SESSIONS} LIMIT $3)"),
            &cutoff_ms,
            Some(&lost),
        )?;
        Ok(done)
    }

    /// Runs a batched delete (`$1` the cutoff, the batch `$2`, or `$3` after the lost
    /// sessions in `$2`) until it deletes nothing more.
    fn loop_delete(
        &self,
        sql: &str,
        cutoff_ms: &i64,
        lost: Option<&Vec<String>>,
    ) -> Result<u64, LedgerError> {
        let mut total = 0;
        loop {
            let n = self.run(async |c| match lost {
                Some(lost) => c.execute(sql, &[cutoff_ms, lost, &BATCH]).await,
                None => c.execute(sql, &[cutoff_ms, &BATCH]).await,
            })?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// `VACUUM (ANALYZE)` of the tables a prune deletes from (outside any transaction).
    pub fn vacuum(&self) -> Result<(), LedgerError> {
        self.run(async |c| {
            c.batch_execute("VACUUM (ANALYZE) requests, attempts, usage_daily, sessions, anomalies")
                .await
        })
    }

    /// The sessions without an end whose process is certainly gone (`crate::process::gone`).
    fn lost_sessions(&self) -> Result<Vec<String>, LedgerError> {
        let rows = self.run(async |c| {
            c.query(
                "SELECT id, host, owner_pid, owner_start FROM sessions WHERE ended_ms IS NULL",
                &[],
            )
            .await
        })?;
        Ok(rows
            .iter()
            .filter(|r| {
                crate::process::gone(
                    r.get::<_, Option<&str>>(1),
                    r.get(2),
                    r.get::<_, Option<&str>>(3),
                )
            })
            .map(|r| r.get::<_, String>(0))
            .collect())
    }

    /// The partitions of `requests` whose whole month is before the cutoff, oldest first
    /// (found in the catalog; tables not named as `rows::partition` names them are left alone).
    fn old_partitions(&self, cutoff_ms: i64) -> Result<Vec<Partition>, LedgerError> {
        let names = self.run(async |c| {
            c.query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'requests'::regclass",
                &[],
            )
            .await
        })?;
        let mut old: Vec<Partition> = names
            .iter()
            .filter_map(|r| partition_month(r.get::<_, &str>(0)))
            .map(|(name, start)| Partition {
                end_ms: rows::partition(start).2,
                name,
            })
            .filter(|p| p.end_ms <= cutoff_ms)
            .collect();
        old.sort_by_key(|p| p.end_ms);
        Ok(old)
    }

    /// Counts a partition's requests, deletes their attempts in batches (walking the
    /// partition's ids in order), then drops it. Returns the requests and attempts that went
    /// and the partition's oldest and newest request.
    fn drop_partition(
        &self,
        part: &Partition,
    ) -> Result<(u64, u64, Option<i64>, Option<i64>), LedgerError> {
        // The name came from the catalog and matched `requests_yYYYYmMM`: safe to quote.
        let table = format!("\"{}\"", part.name);
        let row = self.run(async |c| {
            c.query_one(
                &format!("SELECT count(*), min(started_ms), max(started_ms) FROM {table}"),
                &[],
            )
            .await
        })?;
        let (requests, oldest, newest) = (row.get::<_, i64>(0) as u64, row.get(1), row.get(2));
        let mut attempts = 0;
        let mut after: Vec<u8> = Vec::new();
        loop {
            let row = self.run(async |c| {
                c.query_one(
                    &format!(
                        "WITH ids AS (SELECT id FROM {table} WHERE id > $1 ORDER BY id LIMIT $2),
                         att AS (DELETE FROM attempts WHERE request_id IN (SELECT id FROM ids)
                                 RETURNING 1)
                         SELECT (SELECT id FROM ids ORDER BY id DESC LIMIT 1),
                                (SELECT count(*) FROM att)"
                    ),
                    &[&after, &BATCH],
                )
                .await
            })?;
            attempts += row.get::<_, i64>(1) as u64;
            match row.get::<_, Option<Vec<u8>>>(0) {
                Some(last) => after = last,
                None => break,
            }
        }
        let mut tries = 0;
        loop {
            tries += 1;
            // One simple query, one transaction: the lock timeout, the attempts written since
            // the walk above (a late spool drain), the drop.
            let dropped = self.runtime.block_on(self.client.batch_execute(&format!(
                "BEGIN; {LOCK_TIMEOUT}; \
                 DELETE FROM attempts WHERE request_id IN (SELECT id FROM {table}); \
                 DROP TABLE {table}; COMMIT"
            )));
            if dropped.is_err() {
                let _ = self.runtime.block_on(self.client.batch_execute("ROLLBACK"));
            }
            match dropped {
                Ok(()) => break,
                // Writers held the table past the timeout: their transactions are short.
                Err(e) if tries < DROP_TRIES && e.code().is_some_and(|c| c.code() == "55P03") => {}
                Err(e) => return Err(super::db_error(&self.url, &e)),
            }
        }
        Ok((requests, attempts, oldest, newest))
    }
}

/// The month of a partition named as `rows::partition` names them (`requests_y2026m10`): its
/// name and the month's first millisecond.
fn partition_month(name: &str) -> Option<(String, i64)> {
    let rest = name.strip_prefix("requests_y")?;
    let (year, month) = rest.split_once('m')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let start = Utc
        .with_ymd_and_hms(year.parse().ok()?, month.parse().ok()?, 1, 0, 0, 0)
        .single()?;
    Some((name.to_owned(), start.timestamp_millis()))
}

/// The first millisecond (UTC) of the day `ms` falls in.
fn day_start(ms: i64) -> i64 {
    Utc.timestamp_millis_opt(ms)
        .single()
        .and_then(|at| {
            Utc.with_ymd_and_hms(at.year(), at.month(), at.day(), 0, 0, 0)
                .single()
        })
        .map_or(ms, |d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_give_their_month() {
        assert_eq!(
            partition_month("requests_y2026m12"),
            Some(("requests_y2026m12".to_owned(), 1_796_083_200_000))
        );
        assert_eq!(partition_month("requests_y2026m1"), None);
        assert_eq!(partition_month("requests_default"), None);
        assert_eq!(partition_month("requests_y2026m13"), None);
        // 2026-12-07T05:00:00Z starts its day at midnight.
        assert_eq!(day_start(1_796_619_600_000), 1_796_601_600_000);
    }
}
