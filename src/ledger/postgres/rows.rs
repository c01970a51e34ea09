//! Request rows as PostgreSQL stores them: ids, digests, nano-dollars and microseconds, the
//! shape of a request, the monthly partitions, and the batch insert that also keeps the daily
//! roll-up (counting only the rows it really inserted).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{Datelike, TimeZone, Utc};
use deadpool_postgres::Transaction;
use sha2::{Digest, Sha256};

use super::super::RequestRecord;

/// The ids the writer interned, by text and by shape digest.
pub(super) struct Ids<'a> {
    pub strings: &'a HashMap<String, i64>,
    pub shapes: &'a HashMap<Vec<u8>, i64>,
}

/// A request id as stored: the proxy's `req_<even number of lowercase hex digits>` as 0x01 and
/// the bytes, any other id as 0x00 and its UTF-8 (the tag keeps the two apart).
pub fn stored_id(id: &str) -> Vec<u8> {
    match id.strip_prefix("req_").and_then(lowercase_hex) {
        Some(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(1);
            out.extend(bytes);
            out
        }
        None => {
            let mut out = Vec::with_capacity(id.len() + 1);
            out.push(0);
            out.extend(id.as_bytes());
            out
        }
    }
}

/// The request id as users see it, from its stored bytes.
pub fn shown_id(stored: &[u8]) -> String {
    match stored.split_first() {
        Some((1, hex)) => format!("req_{}", hex::encode(hex)),
        Some((_, text)) => String::from_utf8_lossy(text).into_owned(),
        None => String::new(),
    }
}

/// Text as PostgreSQL can store it: a NUL (which a client can put in a model name, and which
/// `text` refuses) becomes U+FFFD, so one odd request cannot fail its whole batch.
pub fn clean(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A digest as stored: its bytes when it is lowercase hex, else its UTF-8.
fn stored_hex(text: &str) -> Vec<u8> {
    lowercase_hex(text).unwrap_or_else(|| text.as_bytes().to_vec())
}

fn lowercase_hex(text: &str) -> Option<Vec<u8>> {
    let valid = !text.is_empty()
        && text.len().is_multiple_of(2)
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| hex::decode(text).ok()).flatten()
}

/// Dollars as stored: integer nano-dollars (SQLite's `narrow::nanos`).
pub fn nanos(value: f64) -> i64 {
    (value * 1e9).round() as i64
}

/// Milliseconds as stored: integer microseconds.
pub fn micros(value: f64) -> i64 {
    (value * 1e3).round() as i64
}

/// The first millisecond (UTC) of the month `ms` falls in.
pub fn month_start(ms: i64) -> i64 {
    let Some(at) = Utc.timestamp_millis_opt(ms).single() else {
        return 0;
    };
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |d| d.timestamp_millis())
}

/// The partition of the month starting at `month_start_ms`: its name and its bounds.
pub fn partition(month_start_ms: i64) -> (String, i64, i64) {
    let start = Utc
        .timestamp_millis_opt(month_start_ms)
        .single()
        .unwrap_or_default();
    let (year, month) = (start.year(), start.month());
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let end = Utc
        .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
        .single()
        .map_or(i64::MAX, |d| d.timestamp_millis());
    // Before 1970 the year is negative: no name may carry a minus sign.
    let name = format!("requests_y{:04}m{month:02}", year.max(0));
    (name, month_start_ms, end)
}

/// The shape columns, in the order of `request_shapes` (SQLite's `shape_columns!`).
pub fn shape_of(r: &RequestRecord) -> [Option<&str>; 11] {
    [
        Some(r.endpoint),
        r.route.as_deref(),
        r.provider.as_deref(),
        r.requested_model.as_deref(),
        r.served_model.as_deref(),
        Some(r.outcome.as_str()),
        r.error_code.as_deref(),
        Some(r.cache_status),
        Some(r.billing.as_str()),
        r.price_period,
        r.user_agent.as_deref(),
    ]
}

/// SHA-256 of the shape, each column length-prefixed and NULL told apart from empty.
pub fn shape_digest(shape: &[Option<&str>; 11]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for column in shape {
        match column {
            None => hash.update([0u8]),
            Some(text) => {
                hash.update([1u8]);
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
            }
        }
    }
    hash.finalize().to_vec()
}

/// Inserts the batch's requests (those already there are skipped) and adds exactly the
/// inserted ones to `usage_daily`, in one statement. Returns how many were inserted.
pub(super) async fn insert_requests(
    tx: &Transaction<'_>,
    ids: Ids<'_>,
    requests: &[&RequestRecord],
) -> Result<i64, tokio_postgres::Error> {
    let string = |s: Option<&str>| s.and_then(|s| ids.strings.get(&*clean(s)).copied());
    let count = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let len = requests.len();
    let mut id = Vec::with_capacity(len);
    let mut session = Vec::with_capacity(len);
    let mut started = Vec::with_capacity(len);
    let mut shape = Vec::with_capacity(len);
    let mut status = Vec::with_capacity(len);
    let mut stream = Vec::with_capacity(len);
    let mut prompt = Vec::with_capacity(len);
    let mut completion = Vec::with_capacity(len);
    let mut cached = Vec::with_capacity(len);
    let mut cache_write = Vec::with_capacity(len);
    let mut estimated = Vec::with_capacity(len);
    let mut cost = Vec::with_capacity(len);
    let mut saved = Vec::with_capacity(len);
    let mut latency = Vec::with_capacity(len);
    let mut ttfb = Vec::with_capacity(len);
    let mut attempts = Vec::with_capacity(len);
    let mut client_hash = Vec::with_capacity(len);
    let mut fingerprint = Vec::with_capacity(len);
    let mut client_session = Vec::with_capacity(len);
    let mut budget_action = Vec::with_capacity(len);
    let mut skipped = Vec::with_capacity(len);
    for r in requests {
        id.push(stored_id(&r.id));
        session.push(string(r.session_id.as_deref()));
        started.push(r.started_ms);
        shape.push(
            ids.shapes
                .get(&shape_digest(&shape_of(r)))
                .copied()
                .unwrap_or_default(),
        );
        status.push(i16::try_from(r.status).unwrap_or(i16::MAX));
        stream.push(r.stream);
        prompt.push(count(r.prompt_tokens));
        completion.push(count(r.completion_tokens));
        cached.push(count(r.cached_tokens));
        cache_write.push(count(r.cache_write_tokens));
        estimated.push(r.tokens_estimated);
        cost.push(r.cost_usd.map(nanos));
        saved.push(r.saved_usd.map(nanos));
        latency.push(micros(r.latency_ms));
        ttfb.push(r.ttfb_ms.map(micros));
        attempts.push(i32::try_from(r.attempts).unwrap_or(i32::MAX));
        client_hash.push(string(r.client_hash.as_deref()));
        fingerprint.push(r.fingerprint.as_deref().map(stored_hex));
        client_session.push(string(r.client_session.as_deref()));
        budget_action.push(r.budget_action.as_deref().map(|s| clean(s).into_owned()));
        skipped.push(string(r.skipped.as_deref()));
    }
    // Prepared once per connection: the statement's plan is not made again each batch.
    let stmt = tx.prepare_cached(INSERT_REQUESTS).await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &id,
                &session,
                &started,
                &shape,
                &status,
                &stream,
                &prompt,
                &completion,
                &cached,
                &cache_write,
                &estimated,
                &cost,
                &saved,
                &latency,
                &ttfb,
                &attempts,
                &client_hash,
                &fingerprint,
                &client_session,
                &budget_action,
                &skipped,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// The batch insert and the roll-up of what it inserted (`RETURNING` feeds the roll-up, so a
/// row already there adds nothing). The roll-up's key is the client key (a daemon session's
/// tag), the user and team of that key when it is one of the ledger's `client_keys` (key names
/// are never reused, so the name finds the key that authenticated the request), the project
/// (the session's: `run`'s `--project` or repository, the daemon's `project:`), model, provider and
/// the session's tag.
const INSERT_REQUESTS: &str = "
WITH ins AS (
    INSERT INTO requests (id, session, started_ms, shape, status, stream, prompt_tokens,
        completion_tokens, cached_tokens, cache_write_tokens, tokens_estimated, cost_nusd,
        saved_nusd, latency_us, ttfb_us, attempts, client_hash, fingerprint, client_session,
        budget_action, skipped, user_name, team)
    SELECT v.*, su.id, stm.id
    FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::smallint[],
        $6::boolean[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::boolean[],
        $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::integer[],
        $17::bigint[], $18::bytea[], $19::bigint[], $20::text[], $21::bigint[])
        AS v(id, session, started_ms, shape, status, stream, prompt_tokens, completion_tokens,
            cached_tokens, cache_write_tokens, tokens_estimated, cost_nusd, saved_nusd,
            latency_us, ttfb_us, attempts, client_hash, fingerprint, client_session,
            budget_action, skipped)
    -- The key's user and team (interned when they were made), found as the roll-up finds them.
    LEFT JOIN strings vs ON vs.id = v.session
    LEFT JOIN sessions vss ON vss.id = vs.text AND vss.kind = 'daemon'
    LEFT JOIN client_keys vk ON vk.name = vss.tag
    LEFT JOIN strings su ON su.text = vk.user_name
    LEFT JOIN strings stm ON stm.text = vk.team
    ON CONFLICT (id, started_ms) DO NOTHING
    RETURNING session, started_ms, shape, prompt_tokens, completion_tokens, cached_tokens,
        cache_write_tokens, tokens_estimated, cost_nusd
), rolled AS (
    INSERT INTO usage_daily AS u (day, key, user_name, team, project, model, provider, tag, requests,
        ok, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cost_nusd,
        unpriced, estimated, subscription_nusd, simulated_nusd, priced, subscribed, simulated)
    SELECT (to_timestamp(i.started_ms / 1000.0) AT TIME ZONE 'UTC')::date,
        COALESCE(CASE WHEN s.kind = 'daemon' THEN s.tag END, ''), COALESCE(ck.user_name, ''),
        COALESCE(ck.team, ''), COALESCE(s.project, ''),
        COALESCE(k.served_model, k.requested_model, '(none)'), COALESCE(k.provider, '(none)'),
        COALESCE(s.tag, ''),
        count(*), count(*) FILTER (WHERE k.outcome = 'ok'),
        COALESCE(sum(i.prompt_tokens), 0)::bigint, COALESCE(sum(i.completion_tokens), 0)::bigint,
        COALESCE(sum(i.cached_tokens), 0)::bigint, COALESCE(sum(i.cache_write_tokens), 0)::bigint,
        COALESCE(sum(i.cost_nusd), 0)::bigint,
        count(*) FILTER (WHERE i.cost_nusd IS NULL AND k.outcome = 'ok'),
        count(*) FILTER (WHERE i.tokens_estimated),
        COALESCE(sum(i.cost_nusd) FILTER (WHERE k.billing = 'subscription'), 0)::bigint,
        COALESCE(sum(i.cost_nusd) FILTER (WHERE k.billing = 'simulated'), 0)::bigint,
        count(i.cost_nusd),
        count(i.cost_nusd) FILTER (WHERE k.billing = 'subscription'),
        count(i.cost_nusd) FILTER (WHERE k.billing = 'simulated')
    FROM ins i
    JOIN request_shapes k ON k.id = i.shape
    LEFT JOIN strings st ON st.id = i.session
    LEFT JOIN sessions s ON s.id = st.text
    LEFT JOIN client_keys ck ON s.kind = 'daemon' AND ck.name = s.tag
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT (day, key, user_name, team, project, model, provider, tag) DO UPDATE SET
        requests = u.requests + excluded.requests,
        ok = u.ok + excluded.ok,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        cached_tokens = u.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = u.cache_write_tokens + excluded.cache_write_tokens,
        cost_nusd = u.cost_nusd + excluded.cost_nusd,
        unpriced = u.unpriced + excluded.unpriced,
        estimated = u.estimated + excluded.estimated,
        subscription_nusd = u.subscription_nusd + excluded.subscription_nusd,
        simulated_nusd = u.simulated_nusd + excluded.simulated_nusd,
        priced = u.priced + excluded.priced,
        subscribed = u.subscribed + excluded.subscribed,
        simulated = u.simulated + excluded.simulated
    RETURNING 1
)
SELECT count(*) FROM ins";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_never_collide() {
        for id in ["req_0123abcd", "req_ABC", "req_abc", "other-id", ""] {
            assert_eq!(shown_id(&stored_id(id)), id);
        }
        assert_ne!(stored_id("req_00"), stored_id("\u{0}"));
    }

    #[test]
    fn nul_never_reaches_postgres() {
        assert_eq!(clean("gpt\0x"), "gpt\u{fffd}x");
        assert!(matches!(clean("gpt-4o"), Cow::Borrowed(_)));
    }

    #[test]
    fn months_and_their_partitions() {
        // 2026-12-07T05:00:00Z and 2027-01-01T00:00:00Z.
        let dec = 1_796_619_600_000;
        let start = month_start(dec);
        let (name, from, to) = partition(start);
        assert_eq!(name, "requests_y2026m12");
        assert_eq!(from, 1_796_083_200_000);
        assert_eq!(to, 1_798_761_600_000);
        assert_eq!(month_start(to), to);
    }
}
