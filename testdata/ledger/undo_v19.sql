-- Migration 19 (narrow request rows) undone: the wide tables of version 18, filled from the
-- views. Tests use it to make a version-18 ledger from one today's binary wrote.
CREATE TABLE requests_v18 (
    id TEXT PRIMARY KEY, session_id TEXT, started_ms INTEGER NOT NULL, endpoint TEXT NOT NULL,
    route TEXT, provider TEXT, requested_model TEXT, served_model TEXT,
    status INTEGER NOT NULL, outcome TEXT NOT NULL, error_code TEXT, stream INTEGER NOT NULL,
    prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER,
    tokens_estimated INTEGER NOT NULL DEFAULT 0, cost_usd REAL, latency_ms REAL NOT NULL,
    ttfb_ms REAL, attempts INTEGER NOT NULL, cache_status TEXT NOT NULL, client_hash TEXT,
    fingerprint TEXT, user_agent TEXT, client_session TEXT, saved_usd REAL,
    cache_write_tokens INTEGER, billing TEXT NOT NULL DEFAULT 'api', budget_action TEXT,
    skipped TEXT, price_period TEXT
) WITHOUT ROWID;
INSERT INTO requests_v18 SELECT id, session_id, started_ms, endpoint, route, provider,
    requested_model, served_model, status, outcome, error_code, stream, prompt_tokens,
    completion_tokens, cached_tokens, tokens_estimated, cost_usd, latency_ms, ttfb_ms,
    attempts, cache_status, client_hash, fingerprint, user_agent, client_session, saved_usd,
    cache_write_tokens, billing, budget_action, skipped, price_period FROM requests;
CREATE TABLE attempts_v18 (
    request_id TEXT NOT NULL, n INTEGER NOT NULL, provider TEXT, model TEXT, status INTEGER,
    error_class TEXT, latency_ms REAL, waited_ms REAL, PRIMARY KEY (request_id, n)
) WITHOUT ROWID;
INSERT INTO attempts_v18 SELECT request_id, n, provider, model, status, error_class,
    latency_ms, waited_ms FROM attempts;
DROP VIEW requests;
DROP VIEW attempts;
DROP TABLE attempt_rows;
DROP TABLE request_rows;
DROP TABLE request_shapes;
DROP TABLE strings;
ALTER TABLE requests_v18 RENAME TO requests;
ALTER TABLE attempts_v18 RENAME TO attempts;
CREATE INDEX requests_session ON requests(session_id);
CREATE INDEX requests_started ON requests(started_ms);
PRAGMA user_version = 18;
