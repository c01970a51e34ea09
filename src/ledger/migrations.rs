//! The ledger schema, versioned by SQLite's `user_version`. Migrations are numbered and
//! append-only: an existing step is never edited, a change is a new step.

use std::path::Path;

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};

use super::LedgerError;

const MIGRATIONS: &[&str] = &[
    // 1: sessions, requests, attempts, and a meta table for the fingerprint salt.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE sessions (
         id TEXT PRIMARY KEY,
         parent_id TEXT,
         kind TEXT NOT NULL,
         tag TEXT,
         program TEXT,
         cwd TEXT,
         pid INTEGER,
         started_ms INTEGER NOT NULL,
         ended_ms INTEGER,
         exit_code INTEGER,
         budget_usd REAL,
         spent_usd REAL
     );
     CREATE INDEX sessions_started ON sessions(started_ms);
     CREATE TABLE requests (
         id TEXT PRIMARY KEY,
         session_id TEXT,
         started_ms INTEGER NOT NULL,
         endpoint TEXT NOT NULL,
         route TEXT,
         provider TEXT,
         requested_model TEXT,
         served_model TEXT,
         status INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error_code TEXT,
         stream INTEGER NOT NULL,
         prompt_tokens INTEGER,
         completion_tokens INTEGER,
         cached_tokens INTEGER,
         tokens_estimated INTEGER NOT NULL DEFAULT 0,
         cost_usd REAL,
         latency_ms REAL NOT NULL,
         ttfb_ms REAL,
         attempts INTEGER NOT NULL,
         cache_status TEXT NOT NULL,
         client_hash TEXT,
         fingerprint TEXT,
         user_agent TEXT
     );
     CREATE INDEX requests_session ON requests(session_id);
     CREATE INDEX requests_started ON requests(started_ms);
     CREATE TABLE attempts (
         request_id TEXT NOT NULL,
         n INTEGER NOT NULL,
         provider TEXT,
         model TEXT,
         status INTEGER,
         error_class TEXT,
         latency_ms REAL,
         waited_ms REAL,
         PRIMARY KEY (request_id, n)
     );",
    // 2: circuit breaker openings and closings, and other anomalies.
    "CREATE TABLE anomalies (
         id INTEGER PRIMARY KEY,
         at_ms INTEGER NOT NULL,
         session_id TEXT,
         kind TEXT NOT NULL,
         provider TEXT,
         model TEXT,
         detail TEXT
     );
     CREATE INDEX anomalies_at ON anomalies(at_ms);",
    // 3: the client's own session id (Claude Code sends one with every request).
    "ALTER TABLE requests ADD COLUMN client_session TEXT;",
    // 4: client keys made with `smartproxy keys create`, stored only as SHA-256 digests.
    "CREATE TABLE client_keys (
         name TEXT PRIMARY KEY,
         digest BLOB NOT NULL,
         created_ms INTEGER NOT NULL,
         revoked_ms INTEGER,
         budget_daily_usd REAL
     );",
    // 5: what a response-cache hit saved.
    "ALTER TABLE requests ADD COLUMN saved_usd REAL;",
    // 6: budget reservations of requests in flight, shared by every process; a request's row
    // and the removal of its reservation are committed together.
    "CREATE TABLE reservations (
         id TEXT PRIMARY KEY,
         amount_usd REAL NOT NULL,
         created_ms INTEGER NOT NULL,
         expires_ms INTEGER NOT NULL
     );",
    // 7: the client key a reservation was made for, for per-key daily budgets.
    "ALTER TABLE reservations ADD COLUMN tag TEXT;",
    // 8: requests and attempts keyed by their (time-ordered) ids without a separate rowid
    // b-tree: one b-tree insert less per row, which is most of what the writer does.
    "CREATE TABLE requests_v8 (
         id TEXT PRIMARY KEY,
         session_id TEXT,
         started_ms INTEGER NOT NULL,
         endpoint TEXT NOT NULL,
         route TEXT,
         provider TEXT,
         requested_model TEXT,
         served_model TEXT,
         status INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error_code TEXT,
         stream INTEGER NOT NULL,
         prompt_tokens INTEGER,
         completion_tokens INTEGER,
         cached_tokens INTEGER,
         tokens_estimated INTEGER NOT NULL DEFAULT 0,
         cost_usd REAL,
         latency_ms REAL NOT NULL,
         ttfb_ms REAL,
         attempts INTEGER NOT NULL,
         cache_status TEXT NOT NULL,
         client_hash TEXT,
         fingerprint TEXT,
         user_agent TEXT,
         client_session TEXT,
         saved_usd REAL
     ) WITHOUT ROWID;
     INSERT INTO requests_v8 SELECT id, session_id, started_ms, endpoint, route, provider, requested_model,
         served_model, status, outcome, error_code, stream, prompt_tokens, completion_tokens, cached_tokens,
         tokens_estimated, cost_usd, latency_ms, ttfb_ms, attempts, cache_status, client_hash, fingerprint,
         user_agent, client_session, saved_usd FROM requests;
     DROP TABLE requests;
     ALTER TABLE requests_v8 RENAME TO requests;
     CREATE INDEX requests_session ON requests(session_id);
     CREATE INDEX requests_started ON requests(started_ms);
     CREATE TABLE attempts_v8 (
         request_id TEXT NOT NULL,
         n INTEGER NOT NULL,
         provider TEXT,
         model TEXT,
         status INTEGER,
         error_class TEXT,
         latency_ms REAL,
         waited_ms REAL,
         PRIMARY KEY (request_id, n)
     ) WITHOUT ROWID;
     INSERT INTO attempts_v8 SELECT request_id, n, provider, model, status, error_class, latency_ms, waited_ms
         FROM attempts;
     DROP TABLE attempts;
     ALTER TABLE attempts_v8 RENAME TO attempts;",
    // 9: prompt tokens written to the provider's prompt cache, priced apart from other input.
    "ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER;",
    // 10: spend per quarter hour and daemon client key ('' for all other traffic), kept by the
    // writer in the transaction that inserts the requests, so a budget check adds up a few
    // thousand rows at most instead of every request of the month.
    "CREATE TABLE spend (
         bucket_ms INTEGER NOT NULL,
         key TEXT NOT NULL,
         cost_usd REAL NOT NULL,
         PRIMARY KEY (bucket_ms, key)
     ) WITHOUT ROWID;
     INSERT INTO spend (bucket_ms, key, cost_usd)
         SELECT r.started_ms - r.started_ms % 900000,
                COALESCE(CASE WHEN s.kind = 'daemon' THEN s.tag END, ''),
                SUM(r.cost_usd)
         FROM requests r LEFT JOIN sessions s ON s.id = r.session_id
         WHERE r.cost_usd IS NOT NULL
         GROUP BY 1, 2;",
    // 11: who pays for a request: `api` (a provider key) or `subscription` (a client's own
    // subscription credential passed through; its cost is the notional list price).
    "ALTER TABLE requests ADD COLUMN billing TEXT NOT NULL DEFAULT 'api';",
    // 12: what a budget did to the request: `fit: max_tokens 4096 -> 812`,
    // `downgrade: gpt-4o -> gpt-4o-mini`, `refused: session budget`; NULL when it fitted.
    "ALTER TABLE requests ADD COLUMN budget_action TEXT;",
    // 13: usage per hour, session, model and provider, kept by the writer in the transaction
    // that inserts the requests: `stats`, `status` and the dashboards add up a few thousand
    // rows instead of scanning a million requests (see `query::totals`).
    concat!(
        "CREATE TABLE usage (
         hour_ms INTEGER NOT NULL,
         session_id TEXT NOT NULL,
         model TEXT NOT NULL,
         provider TEXT NOT NULL,
         requests INTEGER NOT NULL,
         ok INTEGER NOT NULL,
         prompt_tokens INTEGER NOT NULL,
         completion_tokens INTEGER NOT NULL,
         cached_tokens INTEGER NOT NULL,
         cache_write_tokens INTEGER NOT NULL,
         cost_usd REAL,
         unpriced INTEGER NOT NULL,
         estimated INTEGER NOT NULL,
         subscription_usd REAL,
         PRIMARY KEY (hour_ms, session_id, model, provider)
     ) WITHOUT ROWID;
     CREATE INDEX usage_session ON usage(session_id);
     ",
        super::usage::usage_from_requests!()
    ),
    // 14: a session's nested runs, for the session trees of `stats --session`, `status` and
    // the dashboards (SQLite otherwise builds a temporary index for every such query).
    "CREATE INDEX IF NOT EXISTS sessions_parent ON sessions(parent_id);",
    // 15: the targets routing passed over, and why (`a/gpt-4o: circuit open; ...`), so a
    // request's routing trail shows them beside its attempts; NULL when none was.
    "ALTER TABLE requests ADD COLUMN skipped TEXT;",
    // 16: requests served by the mock provider are billed `simulated`: their list-price cost was
    // never spent, so the shared budgets (`spend`) and real totals leave it out and the rollup
    // keeps it apart. Rows from before are recognised by the built-in mock's name.
    concat!(
        "ALTER TABLE usage ADD COLUMN simulated_usd REAL;
         UPDATE requests SET billing = 'simulated' WHERE provider = 'mock' AND billing = 'api';
         UPDATE spend SET cost_usd = cost_usd - sim.cost
         FROM (SELECT r.started_ms - r.started_ms % 900000 AS bucket,
                   COALESCE(CASE WHEN s.kind = 'daemon' THEN s.tag END, '') AS key,
                   SUM(r.cost_usd) AS cost
               FROM requests r LEFT JOIN sessions s ON s.id = r.session_id
               WHERE r.billing = 'simulated' AND r.cost_usd IS NOT NULL GROUP BY 1, 2) AS sim
         WHERE spend.bucket_ms = sim.bucket AND spend.key = sim.key;
         ",
        super::usage::simulated_from_requests!()
    ),
    // 17: which time-of-day price a request paid
    // (`standard` or `off_peak`, DeepSeek's off-peak hours), NULL for models with one price.
    "ALTER TABLE requests ADD COLUMN price_period TEXT;",
    // 18: the process that owns a session (host, pid, start time; see
    // `crate::process`), so readers show a session whose process died without recording its
    // end as `ended (lost)` instead of running forever.
    "ALTER TABLE sessions ADD COLUMN host TEXT;
     ALTER TABLE sessions ADD COLUMN owner_pid INTEGER;
     ALTER TABLE sessions ADD COLUMN owner_start TEXT;",
    // 19: narrow request rows (about 430 bytes a request before): integer keys, interned
    // strings, integer nano-dollars; `requests` and `attempts` become views over them. See
    // `narrow`.
    super::narrow::MIGRATION,
    // attrib: what a session's work belongs to (`record::Attribution`): its project, and the
    // git repository, branch and HEAD at its start and end; indexed by commit for `cost`.
    "ALTER TABLE sessions ADD COLUMN project TEXT;
     ALTER TABLE sessions ADD COLUMN repo TEXT;
     ALTER TABLE sessions ADD COLUMN branch TEXT;
     ALTER TABLE sessions ADD COLUMN head TEXT;
     ALTER TABLE sessions ADD COLUMN end_branch TEXT;
     ALTER TABLE sessions ADD COLUMN end_head TEXT;
     CREATE INDEX sessions_head ON sessions(head) WHERE head IS NOT NULL;
     CREATE INDEX sessions_end_head ON sessions(end_head) WHERE end_head IS NOT NULL;
     CREATE INDEX sessions_project ON sessions(project) WHERE project IS NOT NULL;
     ALTER TABLE reservations ADD COLUMN project TEXT;",
    // webviews: `/sessions` pages newest first by (started_ms, id) without sorting every
    // session (keyset paging reads from the cursor on).
    "CREATE INDEX IF NOT EXISTS sessions_started_id ON sessions(started_ms, id);",
];

/// Takes the attribution step back out (its columns and indexes), for tests that rebuild an
/// older ledger from a current one.
#[cfg(test)]
pub(crate) const UNDO_ATTRIB: &str = "DROP INDEX sessions_head; DROP INDEX sessions_end_head;
    DROP INDEX sessions_project;
    ALTER TABLE sessions DROP COLUMN project; ALTER TABLE sessions DROP COLUMN repo;
    ALTER TABLE sessions DROP COLUMN branch; ALTER TABLE sessions DROP COLUMN head;
    ALTER TABLE sessions DROP COLUMN end_branch; ALTER TABLE sessions DROP COLUMN end_head;
    ALTER TABLE reservations DROP COLUMN project;";

/// The schema version this build migrates to.
pub(crate) fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date. Safe to run from many processes at once.
pub fn migrate(conn: &Connection, path: &Path) -> Result<(), LedgerError> {
    let known = known_version();
    match crate::db::migrate(conn, MIGRATIONS) {
        Ok(found) if found > known => Err(LedgerError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        }),
        Ok(_) => Ok(()),
        Err(source) => Err(LedgerError::Sql {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The ledger's random salt, created once on first use.
pub fn salt(conn: &Connection) -> rusqlite::Result<String> {
    let existing: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(salt) = existing {
        return Ok(salt);
    }
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?1)",
        [hex::encode(bytes)],
    )?;
    conn.query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
        r.get(0)
    })
}
