//! Narrow request rows (migration 19): a request costs about a third of the bytes it used to
//! (`benches/ledger_scale`'s 1M-row ledger, after VACUUM: 424 bytes a request at version 18,
//! 161 once migrated; 169 as written fresh by the writer).
//!
//! - `request_rows` is a rowid table keyed by `seq` (assigned in commit order); the user-visible
//!   id is kept once, in a unique index, as a 14-byte blob for the proxy's own
//!   `req_<28 hex digits>` ids (any other id stays text). The session and start-time indexes and
//!   the attempts carry the small integer `seq` instead of the id.
//! - The strings a request shares with many others (endpoint, route, provider, models, outcome,
//!   error code, cache status, billing, price period, user agent) form one `request_shapes`
//!   row, referenced by integer; session ids, client hashes, client sessions, skip notes and the
//!   attempts' providers, models and error classes are interned in `strings`.
//! - Costs are integer nano-dollars, latencies integer microseconds, hex digests blobs.
//!
//! The `requests` and `attempts` views present the old columns over these tables, so readers
//! keep their SQL; `LEGACY_WRITES` (TEMP triggers, per connection) lets tests insert and delete
//! in the old shape. The writer interns itself (with a cache) and writes `request_rows` directly.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{OptionalExtension, Transaction};

/// `$x` (a request id) as stored: a blob for `req_` + an even number of lowercase hex digits.
macro_rules! encode_id {
    ($x:literal) => {
        concat!(
            "(CASE WHEN ",
            $x,
            " GLOB 'req_?*' AND length(",
            $x,
            ") % 2 = 0 AND substr(",
            $x,
            ", 5) NOT GLOB '*[^0-9a-f]*' THEN unhex(substr(",
            $x,
            ", 5)) ELSE ",
            $x,
            " END)"
        )
    };
}
pub(crate) use encode_id;

/// `$x` (a hex digest) as stored: a blob when it is an even number of lowercase hex digits.
macro_rules! encode_hex {
    ($x:literal) => {
        concat!(
            "(CASE WHEN ",
            $x,
            " GLOB '?*' AND length(",
            $x,
            ") % 2 = 0 AND ",
            $x,
            " NOT GLOB '*[^0-9a-f]*' THEN unhex(",
            $x,
            ") ELSE ",
            $x,
            " END)"
        )
    };
}

/// The request id as users see it, from `request_rows.id` (`$x`).
macro_rules! decode_id {
    ($x:literal) => {
        concat!(
            "(CASE WHEN typeof(",
            $x,
            ") = 'blob' THEN 'req_' || lower(hex(",
            $x,
            ")) ELSE ",
            $x,
            " END)"
        )
    };
}

/// A stored digest as hex text.
macro_rules! decode_hex {
    ($x:literal) => {
        concat!(
            "(CASE WHEN typeof(",
            $x,
            ") = 'blob' THEN lower(hex(",
            $x,
            ")) ELSE ",
            $x,
            " END)"
        )
    };
}

/// Dollars as stored: integer nano-dollars (every cost is kept within 1e-9 USD, the accounting
/// corpus's tolerance; micro-dollars would not be).
macro_rules! nanos {
    ($x:literal) => {
        concat!("CAST(round(", $x, " * 1e9) AS INTEGER)")
    };
}
/// Milliseconds as stored: integer microseconds.
macro_rules! thousandths {
    ($x:literal) => {
        concat!("CAST(round(", $x, " * 1e3) AS INTEGER)")
    };
}

/// The shape columns, in order, as the shape table, the writer and the triggers list them.
macro_rules! shape_columns {
    () => {
        "endpoint, route, provider, requested_model, served_model, outcome, error_code,
         cache_status, billing, price_period, user_agent"
    };
}

/// Finds the shape whose columns are `$p.endpoint`, ... (`IS`, so NULLs match).
macro_rules! shape_match {
    ($p:literal) => {
        concat!(
            "endpoint IS ",
            $p,
            "endpoint AND route IS ",
            $p,
            "route AND provider IS ",
            $p,
            "provider AND requested_model IS ",
            $p,
            "requested_model AND served_model IS ",
            $p,
            "served_model AND outcome IS ",
            $p,
            "outcome AND error_code IS ",
            $p,
            "error_code AND cache_status IS ",
            $p,
            "cache_status AND billing IS ",
            $p,
            "billing AND price_period IS ",
            $p,
            "price_period AND user_agent IS ",
            $p,
            "user_agent"
        )
    };
}

/// Migration 19: the narrow tables, filled from the wide ones, and the views over them.
pub(super) const MIGRATION: &str = concat!(
    "CREATE TABLE strings (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
     CREATE TABLE request_shapes (
         id INTEGER PRIMARY KEY,
         endpoint TEXT NOT NULL,
         route TEXT,
         provider TEXT,
         requested_model TEXT,
         served_model TEXT,
         outcome TEXT NOT NULL,
         error_code TEXT,
         cache_status TEXT NOT NULL,
         billing TEXT NOT NULL,
         price_period TEXT,
         user_agent TEXT
     );
     CREATE INDEX request_shapes_all ON request_shapes(",
    shape_columns!(),
    ");
     CREATE TABLE request_rows (
         seq INTEGER PRIMARY KEY,
         id BLOB NOT NULL,
         session INTEGER,
         started_ms INTEGER NOT NULL,
         shape INTEGER NOT NULL,
         status INTEGER NOT NULL,
         stream INTEGER NOT NULL,
         prompt_tokens INTEGER,
         completion_tokens INTEGER,
         cached_tokens INTEGER,
         cache_write_tokens INTEGER,
         tokens_estimated INTEGER NOT NULL DEFAULT 0,
         cost_nusd INTEGER,
         saved_nusd INTEGER,
         latency_us INTEGER NOT NULL,
         ttfb_us INTEGER,
         attempts INTEGER NOT NULL,
         client_hash INTEGER,
         fingerprint BLOB,
         client_session INTEGER,
         budget_action TEXT,
         skipped INTEGER
     );
     CREATE TABLE attempt_rows (
         request INTEGER NOT NULL,
         n INTEGER NOT NULL,
         provider INTEGER,
         model INTEGER,
         status INTEGER,
         error_class INTEGER,
         latency_us INTEGER,
         waited_us INTEGER,
         PRIMARY KEY (request, n)
     ) WITHOUT ROWID;
     INSERT OR IGNORE INTO strings (text)
         SELECT session_id FROM requests WHERE session_id IS NOT NULL
         UNION SELECT client_hash FROM requests WHERE client_hash IS NOT NULL
         UNION SELECT client_session FROM requests WHERE client_session IS NOT NULL
         UNION SELECT skipped FROM requests WHERE skipped IS NOT NULL
         UNION SELECT provider FROM attempts WHERE provider IS NOT NULL
         UNION SELECT model FROM attempts WHERE model IS NOT NULL
         UNION SELECT error_class FROM attempts WHERE error_class IS NOT NULL;
     INSERT INTO request_shapes (",
    shape_columns!(),
    ") SELECT DISTINCT ",
    shape_columns!(),
    " FROM requests;
     INSERT INTO request_rows (id, session, started_ms, shape, status, stream, prompt_tokens,
         completion_tokens, cached_tokens, cache_write_tokens, tokens_estimated, cost_nusd,
         saved_nusd, latency_us, ttfb_us, attempts, client_hash, fingerprint, client_session,
         budget_action, skipped)
     SELECT ",
    encode_id!("r.id"),
    ", (SELECT id FROM strings WHERE text = r.session_id), r.started_ms,
         (SELECT k.id FROM request_shapes k WHERE ",
    shape_match!("r."),
    "), r.status, r.stream, r.prompt_tokens, r.completion_tokens, r.cached_tokens,
         r.cache_write_tokens, r.tokens_estimated, ",
    nanos!("r.cost_usd"),
    ", ",
    nanos!("r.saved_usd"),
    ", ",
    thousandths!("r.latency_ms"),
    ", ",
    thousandths!("r.ttfb_ms"),
    ", r.attempts, (SELECT id FROM strings WHERE text = r.client_hash), ",
    encode_hex!("r.fingerprint"),
    ", (SELECT id FROM strings WHERE text = r.client_session), r.budget_action,
         (SELECT id FROM strings WHERE text = r.skipped)
     FROM requests r ORDER BY r.started_ms, r.id;
     INSERT INTO attempt_rows (request, n, provider, model, status, error_class, latency_us,
         waited_us)
     SELECT q.seq, a.n, (SELECT id FROM strings WHERE text = a.provider),
         (SELECT id FROM strings WHERE text = a.model), a.status,
         (SELECT id FROM strings WHERE text = a.error_class), ",
    thousandths!("a.latency_ms"),
    ", ",
    thousandths!("a.waited_ms"),
    "
     FROM attempts a JOIN request_rows q ON q.id = ",
    encode_id!("a.request_id"),
    ";
     DROP TABLE requests;
     DROP TABLE attempts;
     CREATE UNIQUE INDEX requests_id ON request_rows(id);
     CREATE INDEX requests_session ON request_rows(session);
     CREATE INDEX requests_started ON request_rows(started_ms);
     CREATE VIEW requests AS SELECT
         r.seq AS seq, ",
    decode_id!("r.id"),
    " AS id, ss.text AS session_id, r.started_ms AS started_ms, k.endpoint AS endpoint,
         k.route AS route, k.provider AS provider, k.requested_model AS requested_model,
         k.served_model AS served_model, r.status AS status, k.outcome AS outcome,
         k.error_code AS error_code, r.stream AS stream, r.prompt_tokens AS prompt_tokens,
         r.completion_tokens AS completion_tokens, r.cached_tokens AS cached_tokens,
         r.tokens_estimated AS tokens_estimated, r.cost_nusd / 1e9 AS cost_usd,
         r.latency_us / 1e3 AS latency_ms, r.ttfb_us / 1e3 AS ttfb_ms, r.attempts AS attempts,
         k.cache_status AS cache_status, ch.text AS client_hash, ",
    decode_hex!("r.fingerprint"),
    " AS fingerprint, k.user_agent AS user_agent, cs.text AS client_session,
         r.saved_nusd / 1e9 AS saved_usd, r.cache_write_tokens AS cache_write_tokens,
         k.billing AS billing, r.budget_action AS budget_action, sk.text AS skipped,
         k.price_period AS price_period
     FROM request_rows r
     LEFT JOIN request_shapes k ON k.id = r.shape
     LEFT JOIN strings ss ON ss.id = r.session
     LEFT JOIN strings ch ON ch.id = r.client_hash
     LEFT JOIN strings cs ON cs.id = r.client_session
     LEFT JOIN strings sk ON sk.id = r.skipped;
     CREATE VIEW attempts AS SELECT ",
    decode_id!("r.id"),
    " AS request_id, a.request AS request_seq, a.n AS n, p.text AS provider, m.text AS model, a.status AS status,
         e.text AS error_class, a.latency_us / 1e3 AS latency_ms, a.waited_us / 1e3 AS waited_ms
     FROM attempt_rows a
     JOIN request_rows r ON r.seq = a.request
     LEFT JOIN strings p ON p.id = a.provider
     LEFT JOIN strings m ON m.id = a.model
     LEFT JOIN strings e ON e.id = a.error_class;"
);

/// Inserts and deletes through the `requests` and `attempts` views, in their old wide shape, for
/// tests and tools that write rows by hand (the writer writes the narrow tables itself). TEMP
/// triggers, created on the connection that needs them: kept in the file, every connection that
/// opens it (each `status` in a shell prompt) would parse them, ~30% of an open's cost.
pub const LEGACY_WRITES: &str = concat!(
    "CREATE TEMP TRIGGER IF NOT EXISTS requests_insert INSTEAD OF INSERT ON main.requests BEGIN
         INSERT OR IGNORE INTO strings (text) SELECT v FROM (SELECT NEW.session_id AS v
             UNION ALL SELECT NEW.client_hash UNION ALL SELECT NEW.client_session
             UNION ALL SELECT NEW.skipped) WHERE v IS NOT NULL;
         INSERT INTO request_shapes (",
    shape_columns!(),
    ") SELECT NEW.endpoint, NEW.route, NEW.provider, NEW.requested_model, NEW.served_model,
             NEW.outcome, NEW.error_code, NEW.cache_status, COALESCE(NEW.billing, 'api'),
             NEW.price_period, NEW.user_agent
         WHERE NOT EXISTS (SELECT 1 FROM request_shapes WHERE endpoint IS NEW.endpoint
             AND route IS NEW.route AND provider IS NEW.provider
             AND requested_model IS NEW.requested_model AND served_model IS NEW.served_model
             AND outcome IS NEW.outcome AND error_code IS NEW.error_code
             AND cache_status IS NEW.cache_status AND billing IS COALESCE(NEW.billing, 'api')
             AND price_period IS NEW.price_period AND user_agent IS NEW.user_agent);
         INSERT OR REPLACE INTO request_rows (seq, id, session, started_ms, shape, status, stream,
             prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, tokens_estimated,
             cost_nusd, saved_nusd, latency_us, ttfb_us, attempts, client_hash, fingerprint,
             client_session, budget_action, skipped)
         VALUES ((SELECT seq FROM request_rows WHERE id = ",
    encode_id!("NEW.id"),
    "), ",
    encode_id!("NEW.id"),
    ", (SELECT id FROM strings WHERE text = NEW.session_id), NEW.started_ms,
             (SELECT id FROM request_shapes WHERE endpoint IS NEW.endpoint
              AND route IS NEW.route AND provider IS NEW.provider
              AND requested_model IS NEW.requested_model AND served_model IS NEW.served_model
              AND outcome IS NEW.outcome AND error_code IS NEW.error_code
              AND cache_status IS NEW.cache_status AND billing IS COALESCE(NEW.billing, 'api')
              AND price_period IS NEW.price_period AND user_agent IS NEW.user_agent),
             NEW.status, NEW.stream, NEW.prompt_tokens, NEW.completion_tokens, NEW.cached_tokens,
             NEW.cache_write_tokens, COALESCE(NEW.tokens_estimated, 0), ",
    nanos!("NEW.cost_usd"),
    ", ",
    nanos!("NEW.saved_usd"),
    ", ",
    thousandths!("NEW.latency_ms"),
    ", ",
    thousandths!("NEW.ttfb_ms"),
    ", NEW.attempts, (SELECT id FROM strings WHERE text = NEW.client_hash), ",
    encode_hex!("NEW.fingerprint"),
    ", (SELECT id FROM strings WHERE text = NEW.client_session), NEW.budget_action,
             (SELECT id FROM strings WHERE text = NEW.skipped));
     END;
     CREATE TEMP TRIGGER IF NOT EXISTS requests_delete INSTEAD OF DELETE ON main.requests BEGIN
         DELETE FROM attempt_rows WHERE request = OLD.seq;
         DELETE FROM request_rows WHERE seq = OLD.seq;
     END;
     CREATE TEMP TRIGGER IF NOT EXISTS attempts_insert INSTEAD OF INSERT ON main.attempts BEGIN
         INSERT OR IGNORE INTO strings (text) SELECT v FROM (SELECT NEW.provider AS v
             UNION ALL SELECT NEW.model UNION ALL SELECT NEW.error_class) WHERE v IS NOT NULL;
         INSERT OR REPLACE INTO attempt_rows (request, n, provider, model, status, error_class,
             latency_us, waited_us)
         VALUES ((SELECT seq FROM request_rows WHERE id = ",
    encode_id!("NEW.request_id"),
    "), NEW.n, (SELECT id FROM strings WHERE text = NEW.provider),
             (SELECT id FROM strings WHERE text = NEW.model), NEW.status,
             (SELECT id FROM strings WHERE text = NEW.error_class), ",
    thousandths!("NEW.latency_ms"),
    ", ",
    thousandths!("NEW.waited_ms"),
    ");
     END;
     CREATE TEMP TRIGGER IF NOT EXISTS attempts_delete INSTEAD OF DELETE ON main.attempts BEGIN
         DELETE FROM attempt_rows WHERE n = OLD.n
             AND request = (SELECT seq FROM request_rows WHERE id = ",
    encode_id!("OLD.request_id"),
    ");
     END;"
);

/// Migration 19 undone (for tests of upgrades from version 18): the wide tables, as migration 8
/// and the columns added since left them, filled from the views.
#[cfg(test)]
pub(crate) const UNDO: &str = include_str!("../../testdata/ledger/undo_v19.sql");

/// The statement that inserts one request row, doing nothing when its id is already there (the
/// caller then replaces it with `REPLACE_REQUEST`); ?1 is the id and ?18 the fingerprint, bound
/// as stored (`stored_id`, `stored_hex`). The new row's `seq` is `last_insert_rowid()`: a
/// `RETURNING` clause built a temporary table per row, a third of the writer's instructions.
pub(super) const INSERT_REQUEST: &str =
    "INSERT INTO request_rows (id, session, started_ms, shape, status, stream,
         prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, tokens_estimated,
         cost_nusd, saved_nusd, latency_us, ttfb_us, attempts, client_hash, fingerprint,
         client_session, budget_action, skipped)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
         ?19, ?20, ?21)
     ON CONFLICT (id) DO NOTHING";

/// A request row written again under the same id (rare): replaced, keeping its `seq`.
pub(super) const REPLACE_REQUEST: &str =
    "INSERT OR REPLACE INTO request_rows (seq, id, session, started_ms, shape, status, stream,
         prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, tokens_estimated,
         cost_nusd, saved_nusd, latency_us, ttfb_us, attempts, client_hash, fingerprint,
         client_session, budget_action, skipped)
     VALUES ((SELECT seq FROM request_rows WHERE id = ?1), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
         ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
     RETURNING seq";

/// A request id as stored, for binding (what `encode_id!` does in SQL, where GLOB and unhex
/// were an eighth of the writer's instructions): the proxy's own `req_` + lowercase hex ids as
/// bytes, any other id as it is.
pub(super) fn stored_id(id: &str) -> ToSqlOutput<'_> {
    match id.strip_prefix("req_").and_then(lowercase_hex) {
        Some(bytes) => ToSqlOutput::Owned(Value::Blob(bytes)),
        None => ToSqlOutput::Borrowed(ValueRef::Text(id.as_bytes())),
    }
}

/// A hex digest as stored, for binding (`encode_hex!`): bytes when it is lowercase hex.
pub(super) fn stored_hex(hex: &str) -> ToSqlOutput<'_> {
    match lowercase_hex(hex) {
        Some(bytes) => ToSqlOutput::Owned(Value::Blob(bytes)),
        None => ToSqlOutput::Borrowed(ValueRef::Text(hex.as_bytes())),
    }
}

/// The bytes of a non-empty, even-length run of lowercase hex digits.
fn lowercase_hex(text: &str) -> Option<Vec<u8>> {
    let lowercase = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if text.is_empty() || !text.bytes().all(|b| lowercase(&b)) {
        return None;
    }
    hex::decode(text).ok()
}

/// The statement that inserts one attempt of the request whose `seq` is ?1.
pub(super) const INSERT_ATTEMPT: &str = "INSERT OR REPLACE INTO attempt_rows (request, n, provider,
     model, status, error_class, latency_us, waited_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// SQL for the `seq` of the request whose user-visible id is ?1 (NULL when there is none).
pub(crate) const SEQ_OF_ID: &str = concat!(
    "(SELECT seq FROM request_rows WHERE id = ",
    encode_id!("?1"),
    ")"
);

/// Dollars as stored: integer nano-dollars.
pub(super) fn nanos(value: f64) -> i64 {
    (value * 1e9).round() as i64
}

/// Milliseconds as stored: integer microseconds.
pub(super) fn thousandths(value: f64) -> i64 {
    (value * 1e3).round() as i64
}

/// The most strings or shapes the writer remembers; past it the cache starts again (client
/// hashes are one per connection, so a long-lived daemon would otherwise grow it forever).
const CACHE_LIMIT: usize = 4096;

/// The writer's interned strings and shapes, cached across batches. Interning happens inside
/// the write transaction (SELECT, then INSERT when missing), so writers in other processes,
/// which wait for the same lock, never collide; a batch that fails to commit clears the cache.
/// The cache is only sound because `strings` and `request_shapes` rows are never deleted (not
/// even by `prune`): another process's writer may hold any id.
#[derive(Default)]
pub(super) struct Interner {
    strings: foldhash::HashMap<String, i64>,
    /// By the shape's columns joined (see `shape_key`).
    shapes: foldhash::HashMap<String, i64>,
    /// The key being looked up, reused so a cached shape costs no allocation.
    key: String,
}

/// The columns of one `request_shapes` row, in `shape_columns!` order.
pub(super) type Shape<'a> = [Option<&'a str>; 11];

/// `shape` as one string: each column is `\u{1}` and its text, or `\u{0}` for NULL.
fn shape_key(shape: &Shape<'_>, key: &mut String) {
    key.clear();
    for column in shape {
        match column {
            Some(text) => {
                key.push('\u{1}');
                key.push_str(text);
            }
            None => key.push('\u{0}'),
        }
    }
}

impl Interner {
    pub fn clear(&mut self) {
        self.strings.clear();
        self.shapes.clear();
    }

    /// The id of `text` in `strings`, added when missing.
    pub fn string(
        &mut self,
        tx: &Transaction<'_>,
        text: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        let Some(text) = text else { return Ok(None) };
        if let Some(id) = self.strings.get(text) {
            return Ok(Some(*id));
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM strings WHERE text = ?1")?
            .query_row([text], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO strings (text) VALUES (?1)")?
                    .execute([text])?;
                tx.last_insert_rowid()
            }
        };
        if self.strings.len() >= CACHE_LIMIT {
            self.strings.clear();
        }
        self.strings.insert(text.to_owned(), id);
        Ok(Some(id))
    }

    /// The id of `shape` in `request_shapes`, added when missing.
    pub fn shape(&mut self, tx: &Transaction<'_>, shape: Shape<'_>) -> rusqlite::Result<i64> {
        shape_key(&shape, &mut self.key);
        if let Some(id) = self.shapes.get(self.key.as_str()) {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached(concat!(
                "SELECT id FROM request_shapes WHERE ",
                shape_match!(":"),
            ))?
            .query_row(rusqlite::params_from_iter(shape.iter()), |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached(concat!(
                    "INSERT INTO request_shapes (",
                    shape_columns!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ))?
                .execute(rusqlite::params_from_iter(shape.iter()))?;
                tx.last_insert_rowid()
            }
        };
        if self.shapes.len() >= CACHE_LIMIT {
            self.shapes.clear();
        }
        self.shapes.insert(self.key.clone(), id);
        Ok(id)
    }
}

#[cfg(test)]
#[path = "narrow_tests.rs"]
mod tests;
