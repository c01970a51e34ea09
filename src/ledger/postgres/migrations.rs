//! The PostgreSQL ledger's schema: numbered, append-only migrations recorded in
//! `schema_version`, applied under an advisory lock so two processes starting together on an
//! empty database do not race, and a refusal to run against a schema newer than this build's.
//!
//! The schema mirrors SQLite's narrow rows (schema 19, `ledger::narrow`): integer nano-dollars,
//! integer microseconds, repeated strings interned in `strings`, the request's shape columns
//! once in `request_shapes`. Request ids are `bytea`: the proxy's `req_<hex>` ids as their bytes
//! behind a 0x01 tag, any other id as its UTF-8 behind a 0x00 tag (`stored_id`). `requests` is
//! partitioned by month of `started_ms` (the writer creates each month's partition), so its key
//! is (id, started_ms): a request keeps its start time, so a retried row still conflicts.

use tokio_postgres::Client;

/// An arbitrary constant: the advisory lock every smartproxy takes around migrating.
const MIGRATION_LOCK: i64 = 0x5350_4c45_4447_4552; // "SPLEDGER"

/// The migrations, in order; the schema version is how many have been applied.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: the narrow tables, the sessions, the meta row (salt) and the daily roll-up.
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
     CREATE TABLE strings (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         text text NOT NULL UNIQUE);
     CREATE TABLE request_shapes (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         -- SHA-256 of the columns below (NULLs included): one row per distinct shape.
         digest bytea NOT NULL UNIQUE,
         endpoint text NOT NULL,
         route text,
         provider text,
         requested_model text,
         served_model text,
         outcome text NOT NULL,
         error_code text,
         cache_status text NOT NULL,
         billing text NOT NULL,
         price_period text,
         user_agent text
     );
     CREATE TABLE sessions (
         id text PRIMARY KEY,
         parent_id text,
         kind text NOT NULL,
         tag text,
         program text,
         cwd text,
         pid bigint,
         started_ms bigint NOT NULL,
         ended_ms bigint,
         exit_code integer,
         budget_usd double precision,
         spent_usd double precision,
         host text,
         owner_pid bigint,
         owner_start text
     );
     CREATE INDEX sessions_parent ON sessions (parent_id);
     CREATE TABLE requests (
         id bytea NOT NULL,
         session bigint,
         started_ms bigint NOT NULL,
         shape bigint NOT NULL,
         status smallint NOT NULL,
         stream boolean NOT NULL,
         prompt_tokens bigint,
         completion_tokens bigint,
         cached_tokens bigint,
         cache_write_tokens bigint,
         tokens_estimated boolean NOT NULL DEFAULT false,
         cost_nusd bigint,
         saved_nusd bigint,
         latency_us bigint NOT NULL,
         ttfb_us bigint,
         attempts integer NOT NULL,
         client_hash bigint,
         fingerprint bytea,
         client_session bigint,
         budget_action text,
         skipped bigint,
         PRIMARY KEY (id, started_ms)
     ) PARTITION BY RANGE (started_ms);
     CREATE INDEX requests_session ON requests (session, started_ms);
     CREATE TABLE attempts (
         request_id bytea NOT NULL,
         n smallint NOT NULL,
         provider bigint,
         model bigint,
         status smallint,
         error_class bigint,
         latency_us bigint,
         waited_us bigint,
         PRIMARY KEY (request_id, n)
     );
     CREATE TABLE anomalies (
         at_ms bigint NOT NULL,
         session_id text,
         kind text NOT NULL,
         provider text NOT NULL,
         model text NOT NULL,
         detail text NOT NULL
     );
     -- What every total reads: requests added up per UTC day and (client key, user, project,
     -- model, provider, tag). User and project are '' until team keys name them.
     CREATE TABLE usage_daily (
         day date NOT NULL,
         key text NOT NULL,
         user_name text NOT NULL,
         project text NOT NULL,
         model text NOT NULL,
         provider text NOT NULL,
         tag text NOT NULL,
         requests bigint NOT NULL,
         ok bigint NOT NULL,
         prompt_tokens bigint NOT NULL,
         completion_tokens bigint NOT NULL,
         cached_tokens bigint NOT NULL,
         cache_write_tokens bigint NOT NULL,
         cost_nusd bigint NOT NULL,
         unpriced bigint NOT NULL,
         estimated bigint NOT NULL,
         subscription_nusd bigint NOT NULL,
         simulated_nusd bigint NOT NULL,
         PRIMARY KEY (day, key, user_name, project, model, provider, tag)
     );",
    // pgkeys: people, teams and client keys (digests only) for `smartproxy keys`; a NOTIFY on
    // `smartproxy_keys` after any change so every daemon reloads its keys at once; the daily
    // roll-up gains the key's team (user_name and team come from the key that made the row).
    "CREATE TABLE teams (name text PRIMARY KEY, created_ms bigint NOT NULL);
     CREATE TABLE people (name text PRIMARY KEY, created_ms bigint NOT NULL);
     CREATE TABLE client_keys (
         name text PRIMARY KEY,
         -- SHA-256 of the key: the key itself is shown once and never stored.
         digest bytea NOT NULL UNIQUE CHECK (length(digest) = 32),
         user_name text NOT NULL REFERENCES people (name),
         team text NOT NULL REFERENCES teams (name),
         daily_nusd bigint CHECK (daily_nusd >= 0),
         monthly_nusd bigint CHECK (monthly_nusd >= 0),
         created_ms bigint NOT NULL,
         revoked_ms bigint
     );
     CREATE INDEX client_keys_user ON client_keys (user_name);
     CREATE INDEX client_keys_team ON client_keys (team);
     -- Per statement, after commit: one wake-up per change however many rows it touched. The
     -- payload is empty; a daemon re-reads the whole (small) set, so none can be missed.
     CREATE FUNCTION smartproxy_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         PERFORM pg_notify('smartproxy_keys', '');
         RETURN NULL;
     END $$;
     CREATE TRIGGER client_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON client_keys FOR EACH STATEMENT EXECUTE FUNCTION smartproxy_keys_changed();
     ALTER TABLE usage_daily ADD COLUMN team text NOT NULL DEFAULT '';
     ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey;
     ALTER TABLE usage_daily ADD PRIMARY KEY
         (day, key, user_name, team, project, model, provider, tag);",
    // pgread: what `stats` needs from the roll-up to answer as SQLite does: how many rows had a
    // cost (all, subscription, simulated), so a group with none reads "no cost" rather than
    // $0, and the team (`stats --by team`; `IF NOT EXISTS`: the keys step may add it too).
    // Rows already rolled up are counted again from `requests`.
    "ALTER TABLE usage_daily ADD COLUMN IF NOT EXISTS team text NOT NULL DEFAULT '';
     ALTER TABLE usage_daily ADD COLUMN priced bigint NOT NULL DEFAULT 0,
         ADD COLUMN subscribed bigint NOT NULL DEFAULT 0,
         ADD COLUMN simulated bigint NOT NULL DEFAULT 0;
     UPDATE usage_daily u SET priced = c.priced, subscribed = c.subscribed,
         simulated = c.simulated
     FROM (SELECT (to_timestamp(r.started_ms / 1000.0) AT TIME ZONE 'UTC')::date AS day,
             COALESCE(CASE WHEN s.kind = 'daemon' THEN s.tag END, '') AS key,
             COALESCE(k.served_model, k.requested_model, '(none)') AS model,
             COALESCE(k.provider, '(none)') AS provider, COALESCE(s.tag, '') AS tag,
             count(r.cost_nusd) AS priced,
             count(r.cost_nusd) FILTER (WHERE k.billing = 'subscription') AS subscribed,
             count(r.cost_nusd) FILTER (WHERE k.billing = 'simulated') AS simulated
         FROM requests r JOIN request_shapes k ON k.id = r.shape
         LEFT JOIN strings st ON st.id = r.session LEFT JOIN sessions s ON s.id = st.text
         GROUP BY 1, 2, 3, 4, 5) c
     WHERE u.day = c.day AND u.key = c.key AND u.model = c.model AND u.provider = c.provider
         AND u.tag = c.tag AND u.user_name = '' AND u.project = '';",
    // pgbudget: shared budgets, a counter per (scope, period) and the reservations in flight
    // (`postgres::budget`); amounts in nano-dollars, scope a free string (`daily`, `key:ci`).
    "CREATE TABLE budget_counters (
         scope text NOT NULL,
         period_ms bigint NOT NULL,
         cap_nusd bigint NOT NULL,
         spent_nusd bigint NOT NULL DEFAULT 0,
         reserved_nusd bigint NOT NULL DEFAULT 0,
         PRIMARY KEY (scope, period_ms)
     );
     CREATE TABLE budget_reservations (
         id text PRIMARY KEY,
         scopes text[] NOT NULL,
         periods bigint[] NOT NULL,
         amount_nusd bigint NOT NULL,
         expires_ms bigint NOT NULL,
         released boolean NOT NULL DEFAULT false
     );
     CREATE INDEX budget_reservations_expiry ON budget_reservations (released, expires_ms);",
    // pgscopes: per-user and per-team daily/monthly limits (`keys limit`), notified on the keys'
    // channel so daemons reload them with the keys; every user and team name interned in
    // `strings` (a trigger) so request rows carry their key's user and team as string ids.
    "ALTER TABLE people ADD COLUMN daily_nusd bigint CHECK (daily_nusd >= 0),
         ADD COLUMN monthly_nusd bigint CHECK (monthly_nusd >= 0);
     ALTER TABLE teams ADD COLUMN daily_nusd bigint CHECK (daily_nusd >= 0),
         ADD COLUMN monthly_nusd bigint CHECK (monthly_nusd >= 0);
     CREATE TRIGGER people_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON people FOR EACH STATEMENT EXECUTE FUNCTION smartproxy_keys_changed();
     CREATE TRIGGER teams_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON teams FOR EACH STATEMENT EXECUTE FUNCTION smartproxy_keys_changed();
     CREATE FUNCTION smartproxy_intern_name() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         INSERT INTO strings (text) VALUES (NEW.name) ON CONFLICT (text) DO NOTHING;
         RETURN NULL;
     END $$;
     CREATE TRIGGER people_interned AFTER INSERT ON people
         FOR EACH ROW EXECUTE FUNCTION smartproxy_intern_name();
     CREATE TRIGGER teams_interned AFTER INSERT ON teams
         FOR EACH ROW EXECUTE FUNCTION smartproxy_intern_name();
     INSERT INTO strings (text) SELECT name FROM people UNION SELECT name FROM teams
         ON CONFLICT (text) DO NOTHING;
     ALTER TABLE requests ADD COLUMN user_name bigint, ADD COLUMN team bigint;",
    // pgproof: an admission in one statement (`postgres::budget::admit`), so a budget counter's
    // row lock is held for the statement and its commit only, not across round trips to a
    // busy client; under many daemons' load the hot `daily` row otherwise queued admissions
    // past their 2 s deadline (503s with PostgreSQL up). Scopes come sorted (lock order);
    // one row back per scope, `granted` false on the one that refused (nothing reserved).
    "CREATE FUNCTION smartproxy_admit(p_id text, p_scopes text[], p_periods bigint[],
         p_caps bigint[], p_amount bigint, p_now bigint, p_forget_before bigint,
         p_expires bigint)
     RETURNS TABLE (o_ord int, o_granted boolean, o_spent bigint, o_reserved bigint)
     LANGUAGE plpgsql AS $$
     DECLARE
         n int := coalesce(array_length(p_scopes, 1), 0);
         spent bigint[] := '{}';
         reserved bigint[] := '{}';
         v_spent bigint;
         v_reserved bigint;
         refused int := 0;
         ignored bigint;
     BEGIN
         -- The commit need not wait for its WAL flush (a durable commit was most of an
         -- admission's time: ~2.4 ms against a 0.06 ms round trip). A server crash loses at
         -- most the admissions of its last moments, whose requests were in flight anyway;
         -- what they spend is settled durably with their rows.
         SET LOCAL synchronous_commit = off;
         -- Expired reservations come back whatever this admission's fate.
         WITH gone AS (
                 UPDATE budget_reservations r SET released = true
                 WHERE r.id IN (SELECT b.id FROM budget_reservations b
                                WHERE NOT b.released AND b.expires_ms <= p_now
                                ORDER BY b.id FOR UPDATE SKIP LOCKED)
                 RETURNING r.scopes, r.periods, r.amount_nusd),
             d AS (SELECT u.scope, u.period_ms, sum(g.amount_nusd)::bigint AS amount
                   FROM gone g, unnest(g.scopes, g.periods) AS u(scope, period_ms)
                   GROUP BY 1, 2),
             back AS (UPDATE budget_counters c
                      SET reserved_nusd = GREATEST(c.reserved_nusd - d.amount, 0)
                      FROM d WHERE c.scope = d.scope AND c.period_ms = d.period_ms
                      RETURNING 1),
             forgotten AS (DELETE FROM budget_reservations f
                           WHERE f.released AND f.expires_ms <= p_forget_before
                           RETURNING 1)
         SELECT (SELECT count(*) FROM back) + (SELECT count(*) FROM forgotten) INTO ignored;
         BEGIN
             INSERT INTO budget_reservations (id, scopes, periods, amount_nusd, expires_ms)
             VALUES (p_id, p_scopes, p_periods, p_amount, p_expires) ON CONFLICT (id) DO NOTHING;
             IF NOT FOUND THEN
                 -- Reserved already under this id: counting it again would hold twice.
                 RAISE EXCEPTION USING ERRCODE = 'SP001';
             END IF;
             FOR i IN 1..n LOOP
                 INSERT INTO budget_counters AS c
                     (scope, period_ms, cap_nusd, spent_nusd, reserved_nusd)
                 SELECT p_scopes[i], p_periods[i], p_caps[i], 0, p_amount
                 WHERE p_amount <= p_caps[i] AND p_caps[i] > 0
                 ON CONFLICT (scope, period_ms) DO UPDATE
                     SET reserved_nusd = c.reserved_nusd + EXCLUDED.reserved_nusd,
                         cap_nusd = EXCLUDED.cap_nusd
                     WHERE c.spent_nusd + c.reserved_nusd < EXCLUDED.cap_nusd
                       AND c.spent_nusd + c.reserved_nusd + EXCLUDED.reserved_nusd
                           <= EXCLUDED.cap_nusd
                 RETURNING c.spent_nusd, c.reserved_nusd INTO v_spent, v_reserved;
                 IF NOT FOUND THEN
                     refused := i;
                     RAISE EXCEPTION USING ERRCODE = 'SP002';
                 END IF;
                 spent := spent || v_spent;
                 reserved := reserved || v_reserved;
             END LOOP;
         EXCEPTION WHEN SQLSTATE 'SP001' OR SQLSTATE 'SP002' THEN
             -- Nothing of this block stays; every scope reports where it stands.
             spent := '{}';
             reserved := '{}';
             FOR i IN 1..n LOOP
                 SELECT c.spent_nusd, c.reserved_nusd INTO v_spent, v_reserved
                 FROM budget_counters c
                 WHERE c.scope = p_scopes[i] AND c.period_ms = p_periods[i];
                 spent := spent || coalesce(v_spent, 0);
                 reserved := reserved || coalesce(v_reserved, 0);
                 v_spent := NULL;
                 v_reserved := NULL;
             END LOOP;
         END;
         FOR i IN 1..n LOOP
             o_ord := i;
             o_granted := refused <> i;
             o_spent := spent[i];
             o_reserved := reserved[i];
             RETURN NEXT;
         END LOOP;
     END
     $$;",
    // pgprune: a BRIN index on requests' start time (a few pages per partition, next to nothing
    // per insert) so prune's batches in the cutoff's month find their rows without a scan.
    "CREATE INDEX requests_started ON requests USING brin (started_ms);",
    // attrib: what a session's work belongs to (`record::Attribution`): its project, and the
    // git repository, branch and HEAD at its start and end; indexed by commit for `cost`.
    // The daily roll-up's `project` is the session's project from now on.
    "ALTER TABLE sessions ADD COLUMN project text, ADD COLUMN repo text,
         ADD COLUMN branch text, ADD COLUMN head text,
         ADD COLUMN end_branch text, ADD COLUMN end_head text;
     CREATE INDEX sessions_head ON sessions (head) WHERE head IS NOT NULL;
     CREATE INDEX sessions_end_head ON sessions (end_head) WHERE end_head IS NOT NULL;",
    // webviews: `/sessions` pages newest first by (started_ms, id) without sorting every
    // session (keyset paging reads from the cursor on).
    "CREATE INDEX IF NOT EXISTS sessions_started_id ON sessions (started_ms, id COLLATE \"C\");",
    // windows: rolling-window budgets (`budget::window`): a window's spend is kept in
    // bucket counters (`rolling:MS[:project:NAME]`, one per bucket start), and an admission
    // counts the buckets from `p_from` on with the current one. A calendar scope passes its
    // own period as `p_from`: one counter, as before; a window's buckets that have left it are
    // deleted as it admits. The old signature is dropped: one admission function.
    "DROP FUNCTION smartproxy_admit(text, text[], bigint[], bigint[], bigint, bigint, bigint, bigint);
     CREATE FUNCTION smartproxy_admit(p_id text, p_scopes text[], p_periods bigint[],
         p_from bigint[], p_caps bigint[], p_amount bigint, p_now bigint, p_forget_before bigint,
         p_expires bigint)
     RETURNS TABLE (o_ord int, o_granted boolean, o_spent bigint, o_reserved bigint)
     LANGUAGE plpgsql AS $$
     DECLARE
         n int := coalesce(array_length(p_scopes, 1), 0);
         spent bigint[] := '{}';
         reserved bigint[] := '{}';
         v_spent bigint;
         v_reserved bigint;
         o_spent_before bigint;
         o_reserved_before bigint;
         refused int := 0;
         ignored bigint;
     BEGIN
         -- The commit need not wait for its WAL flush (a durable commit was most of an
         -- admission's time: ~2.4 ms against a 0.06 ms round trip). A server crash loses at
         -- most the admissions of its last moments, whose requests were in flight anyway;
         -- what they spend is settled durably with their rows.
         SET LOCAL synchronous_commit = off;
         -- Expired reservations come back whatever this admission's fate.
         WITH gone AS (
                 UPDATE budget_reservations r SET released = true
                 WHERE r.id IN (SELECT b.id FROM budget_reservations b
                                WHERE NOT b.released AND b.expires_ms <= p_now
                                ORDER BY b.id FOR UPDATE SKIP LOCKED)
                 RETURNING r.scopes, r.periods, r.amount_nusd),
             d AS (SELECT u.scope, u.period_ms, sum(g.amount_nusd)::bigint AS amount
                   FROM gone g, unnest(g.scopes, g.periods) AS u(scope, period_ms)
                   GROUP BY 1, 2),
             back AS (UPDATE budget_counters c
                      SET reserved_nusd = GREATEST(c.reserved_nusd - d.amount, 0)
                      FROM d WHERE c.scope = d.scope AND c.period_ms = d.period_ms
                      RETURNING 1),
             forgotten AS (DELETE FROM budget_reservations f
                           WHERE f.released AND f.expires_ms <= p_forget_before
                           RETURNING 1)
         SELECT (SELECT count(*) FROM back) + (SELECT count(*) FROM forgotten) INTO ignored;
         BEGIN
             INSERT INTO budget_reservations (id, scopes, periods, amount_nusd, expires_ms)
             VALUES (p_id, p_scopes, p_periods, p_amount, p_expires) ON CONFLICT (id) DO NOTHING;
             IF NOT FOUND THEN
                 -- Reserved already under this id: counting it again would hold twice.
                 RAISE EXCEPTION USING ERRCODE = 'SP001';
             END IF;
             FOR i IN 1..n LOOP
                 -- A rolling window: its earlier buckets count too. Admissions to one window
                 -- take turns (a lock on its name) so that two on either side of a bucket's
                 -- start cannot both miss the other's reservation.
                 o_spent_before := 0;
                 o_reserved_before := 0;
                 IF p_from[i] < p_periods[i] THEN
                     PERFORM pg_advisory_xact_lock(hashtextextended(p_scopes[i], 0));
                     -- Buckets that left the window count for nothing any more.
                     DELETE FROM budget_counters c
                     WHERE c.scope = p_scopes[i] AND c.period_ms < p_from[i];
                     SELECT coalesce(sum(c.spent_nusd), 0), coalesce(sum(c.reserved_nusd), 0)
                     INTO o_spent_before, o_reserved_before
                     FROM budget_counters c
                     WHERE c.scope = p_scopes[i] AND c.period_ms >= p_from[i]
                       AND c.period_ms < p_periods[i];
                 END IF;
                 INSERT INTO budget_counters AS c
                     (scope, period_ms, cap_nusd, spent_nusd, reserved_nusd)
                 SELECT p_scopes[i], p_periods[i], p_caps[i], 0, p_amount
                 WHERE o_spent_before + o_reserved_before < p_caps[i]
                   AND o_spent_before + o_reserved_before + p_amount <= p_caps[i]
                 ON CONFLICT (scope, period_ms) DO UPDATE
                     SET reserved_nusd = c.reserved_nusd + EXCLUDED.reserved_nusd,
                         cap_nusd = EXCLUDED.cap_nusd
                     WHERE c.spent_nusd + c.reserved_nusd + o_spent_before + o_reserved_before
                           < EXCLUDED.cap_nusd
                       AND c.spent_nusd + c.reserved_nusd + o_spent_before + o_reserved_before
                           + EXCLUDED.reserved_nusd <= EXCLUDED.cap_nusd
                 RETURNING c.spent_nusd, c.reserved_nusd INTO v_spent, v_reserved;
                 IF NOT FOUND THEN
                     refused := i;
                     RAISE EXCEPTION USING ERRCODE = 'SP002';
                 END IF;
                 spent := spent || (v_spent + o_spent_before);
                 reserved := reserved || (v_reserved + o_reserved_before);
             END LOOP;
         EXCEPTION WHEN SQLSTATE 'SP001' OR SQLSTATE 'SP002' THEN
             -- Nothing of this block stays; every scope reports where it stands.
             spent := '{}';
             reserved := '{}';
             FOR i IN 1..n LOOP
                 SELECT sum(c.spent_nusd), sum(c.reserved_nusd) INTO v_spent, v_reserved
                 FROM budget_counters c
                 WHERE c.scope = p_scopes[i] AND c.period_ms >= p_from[i]
                   AND c.period_ms <= p_periods[i];
                 spent := spent || coalesce(v_spent, 0);
                 reserved := reserved || coalesce(v_reserved, 0);
                 v_spent := NULL;
                 v_reserved := NULL;
             END LOOP;
         END;
         FOR i IN 1..n LOOP
             o_ord := i;
             o_granted := refused <> i;
             o_spent := spent[i];
             o_reserved := reserved[i];
             RETURN NEXT;
         END LOOP;
     END
     $$;",
    // teamwin: weekly limits and rolling windows for ledger keys, users and teams (`keys
    // create|limit --weekly --window`); a window list is `EVERY_MS=NANO_USD` pairs joined by
    // commas (`postgres::keys::windows_text`), counted in `rolling:MS:user:NAME` buckets.
    "ALTER TABLE client_keys ADD COLUMN weekly_nusd bigint CHECK (weekly_nusd >= 0),
         ADD COLUMN window_limits text;
     ALTER TABLE people ADD COLUMN weekly_nusd bigint CHECK (weekly_nusd >= 0),
         ADD COLUMN window_limits text;
     ALTER TABLE teams ADD COLUMN weekly_nusd bigint CHECK (weekly_nusd >= 0),
         ADD COLUMN window_limits text;",
];

/// The schema version this build writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// What migrating found: the schema is newer than this build's, or the database failed.
#[derive(Debug)]
pub enum MigrateError {
    TooNew { found: i64 },
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// Brings the schema up to `CURRENT` (one transaction, under the advisory lock) and returns the
/// ledger's salt, created on first use.
pub async fn migrate(client: &mut Client) -> Result<String, MigrateError> {
    let tx = client.transaction().await?;
    // Held to the end of the transaction: a second process starting now waits here, then
    // finds the schema current.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version bigint PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version",
            &[],
        )
        .await?
        .get(0);
    if found > CURRENT {
        return Err(MigrateError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await?;
    }
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('salt', $1) ON CONFLICT (key) DO NOTHING",
        &[&hex::encode(bytes)],
    )
    .await?;
    let salt: String = tx
        .query_one("SELECT value FROM meta WHERE key = 'salt'", &[])
        .await?
        .get(0);
    tx.commit().await?;
    Ok(salt)
}

/// The schema version a database holds (0 when smartproxy never migrated it), for `doctor`.
pub async fn version(client: &Client) -> Result<i64, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_version",
            &[],
        )
        .await?
        .get(0))
}
