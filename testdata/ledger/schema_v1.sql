-- Migration 1 of src/ledger/migrations.rs, verbatim: the schema the first release created.
-- A frozen fixture for tests/ledger_migration.rs: never edit it.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
);
