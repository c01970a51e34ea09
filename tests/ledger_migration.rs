//! A ledger written by an early smartproxy (schema version 1, before client sessions, saved
//! cost, WITHOUT ROWID tables, prompt-cache writes and the spend rollup) is migrated in place by
//! today's binary: old rows are kept and readable through `stats` and `sessions`, new rows are
//! added beside them, and `user_version` ends at the version a fresh ledger gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rusqlite::Connection;
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

/// Migration 1 of `src/ledger/migrations.rs`: the schema the first release created.
const SCHEMA_V1: &str = include_str!("../testdata/ledger/schema_v1.sql");

/// id, status, prompt_tokens, cost_usd, client_session, saved_usd, cache_write_tokens
type OldRow = (
    String,
    i64,
    Option<i64>,
    Option<f64>,
    Option<String>,
    Option<f64>,
    Option<i64>,
);

const OLD_SESSION: &str = "0a1b2c3d4e5f6071";
/// 2026-01-15T10:00:00Z
const OLD_START_MS: i64 = 1_768_471_200_000;

fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A version-1 ledger with one ended session, three requests (two priced successes on two
/// models, one failure) and their attempts.
fn write_v1_ledger(env: &TestEnv) {
    let conn = Connection::open(&env.db).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA user_version = 1;
         INSERT INTO meta VALUES ('salt', '00112233445566778899aabbccddeeff');
         INSERT INTO sessions VALUES ('{OLD_SESSION}', NULL, 'run', 'legacy', 'python3', '/tmp', 4242,
             {OLD_START_MS}, {end}, 0, 2.0, NULL);
         INSERT INTO requests VALUES
           ('r1', '{OLD_SESSION}', {t1}, '/v1/chat/completions', 'pattern', 'openai', 'gpt-4o-mini',
            'gpt-4o-mini', 200, 'ok', NULL, 0, 100, 20, 0, 0, 0.000027, 812.5, 300.0, 1, 'off',
            'h1', 'f1', 'openai-python/1.0'),
           ('r2', '{OLD_SESSION}', {t2}, '/v1/chat/completions', 'pattern', 'openai', 'gpt-4o',
            'gpt-4o', 200, 'ok', NULL, 1, 1000, 200, 0, 0, 0.0045, 1500.0, 250.0, 2, 'off',
            'h1', 'f2', 'openai-python/1.0'),
           ('r3', '{OLD_SESSION}', {t3}, '/v1/chat/completions', 'pattern', 'openai', 'gpt-4o',
            NULL, 502, 'error', 'upstream_unreachable', 0, NULL, NULL, NULL, 0, NULL, 30.0, NULL, 2,
            'off', 'h1', 'f3', 'openai-python/1.0');
         INSERT INTO attempts VALUES
           ('r1', 1, 'openai', 'gpt-4o-mini', 200, NULL, 812.5, 0),
           ('r2', 1, 'openai', 'gpt-4o', 503, 'status', 100.0, 0),
           ('r2', 2, 'openai', 'gpt-4o', 200, NULL, 1400.0, 250.0),
           ('r3', 1, 'openai', 'gpt-4o', NULL, 'connect', 10.0, 0),
           ('r3', 2, 'openai', 'gpt-4o', NULL, 'connect', 10.0, 20.0);",
        end = OLD_START_MS + 60_000,
        t1 = OLD_START_MS + 1_000,
        t2 = OLD_START_MS + 2_000,
        t3 = OLD_START_MS + 3_000,
    ))
    .unwrap();
}

/// The schema version a brand-new ledger gets from this build.
fn latest_version() -> i64 {
    let fresh = TestEnv::new();
    let mut cmd = fresh.command();
    cmd.args(["run", "--mock", "--summary", "none", "--", "true"]);
    assert!(run_to_end(cmd).status.success());
    user_version(&fresh.ledger())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_1_ledger_is_migrated_in_place_and_keeps_its_rows() {
    let latest = latest_version();
    assert!(latest > 1, "{latest}");
    let env = TestEnv::new();
    write_v1_ledger(&env);
    assert_eq!(user_version(&env.ledger()), 1);

    // Reading it with today's binary migrates it and shows the old figures.
    let mut stats = env.command();
    stats.args(["stats", "--session", OLD_SESSION, "--json"]);
    let out = run_to_end(stats);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = &stats["total"];
    assert_eq!(total["requests"], 3, "{stats}");
    assert_eq!(total["ok"], 2, "{stats}");
    assert_eq!(total["failed"], 1, "{stats}");
    assert_eq!(total["prompt_tokens"], 1100, "{stats}");
    assert_eq!(total["completion_tokens"], 220, "{stats}");
    let cost = total["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.004527).abs() < 1e-9, "{stats}");
    assert_eq!(user_version(&env.ledger()), latest, "migrated in place");

    // New traffic lands beside the old rows.
    let session = env.start_run(&["run", "--mock", "--tag", "today"], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let conn = env.ledger();
    assert_eq!(user_version(&conn), latest);
    let old: Vec<OldRow> = conn
        .prepare(
            "SELECT id, status, prompt_tokens, cost_usd, client_session, saved_usd, cache_write_tokens
             FROM requests WHERE session_id = ?1 ORDER BY started_ms",
        )
        .unwrap()
        .query_map([OLD_SESSION], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        old,
        vec![
            (
                "r1".to_owned(),
                200,
                Some(100),
                Some(0.000027),
                None,
                None,
                None
            ),
            (
                "r2".to_owned(),
                200,
                Some(1000),
                Some(0.0045),
                None,
                None,
                None
            ),
            ("r3".to_owned(), 502, None, None, None, None, None),
        ],
        "old rows kept, new columns empty"
    );
    let attempts: i64 = conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE request_id IN ('r1', 'r2', 'r3')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 5);
    let waited: f64 = conn
        .query_row(
            "SELECT waited_ms FROM attempts WHERE request_id = 'r2' AND n = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(waited, 250.0);
    // The spend rollup (a later migration) was filled from the old requests.
    let spent: f64 = conn
        .query_row(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM spend WHERE bucket_ms <= ?1",
            [OLD_START_MS + 3_000],
            |r| r.get(0),
        )
        .unwrap();
    assert!((spent - 0.004527).abs() < 1e-9, "{spent}");
    let salt: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(salt, "00112233445566778899aabbccddeeff", "the salt is kept");
    let new_rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM requests r JOIN sessions s ON s.id = r.session_id WHERE s.tag = 'today'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        new_rows, 1,
        "the new request is recorded beside the old ones"
    );

    // Both sessions are listed, the old one with its tag and request count.
    let mut sessions = env.command();
    sessions.arg("sessions");
    let out = run_to_end(sessions);
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = listing
        .lines()
        // The table shows ids by their first 8 characters (enough to tell these apart).
        .find(|l| l.contains(&OLD_SESSION[..8]))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("legacy"), "{listing}");
    assert!(listing.contains("today"), "{listing}");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Migration 19 undone: a version-18 ledger (wide rows) from one today's binary wrote.
const UNDO_V19: &str = include_str!("../testdata/ledger/undo_v19.sql");
/// The steps after 19, taken out first.
const UNDO_ATTRIB: &str = include_str!("../testdata/ledger/undo_attrib.sql");

/// Every old column of every request, in id order, as JSON values.
fn v18_rows(conn: &Connection) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut stmt = conn.prepare("SELECT * FROM requests ORDER BY id").unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let mut map = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let value = match row.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                rusqlite::types::ValueRef::Integer(n) => n.into(),
                rusqlite::types::ValueRef::Real(x) => x.into(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                rusqlite::types::ValueRef::Blob(_) => panic!("a blob in the wide table"),
            };
            map.insert(name.clone(), value);
        }
        out.push(map);
    }
    out
}

/// A version-18 ledger (the wide rows, before narrow rows) is upgraded in place by today's
/// binary: `export` gives back every column of every row exactly (ids, digests, costs to the
/// nano-dollar, latencies to the microsecond), and the proxy's ids are stored as blobs.
#[tokio::test(flavor = "multi_thread")]
async fn a_version_18_ledger_is_upgraded_to_narrow_rows_with_the_same_answers() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock", "--tag", "v18"], &[]);
    for model in ["gpt-4o-mini", "gpt-4o"] {
        let reply = post_chat(
            &session.base_url,
            Some(&session.key),
            chat_body(model, false, "hi"),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let latest = user_version(&env.ledger());

    let conn = env.ledger();
    conn.execute_batch(UNDO_ATTRIB).unwrap();
    conn.execute_batch(UNDO_V19).unwrap();
    assert_eq!(user_version(&conn), 18);
    // Beside the proxy's own rows, the odd ones older builds and tools wrote.
    let session_id: String = conn
        .query_row("SELECT id FROM sessions", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "INSERT INTO requests (id, session_id, started_ms, endpoint, provider, served_model,
             status, outcome, stream, prompt_tokens, cost_usd, latency_ms, ttfb_ms, attempts,
             cache_status, client_hash, fingerprint, saved_usd, billing, skipped, price_period)
         VALUES ('legacy-1', ?1, 1768471200000, 'chat', 'deepseek', 'deepseek-chat', 200, 'ok', 1,
             123, 0.000123456789, 812.625, 3.001, 1, 'hit', 'not-hex', 'ABCDEF', 0.0045,
             'subscription', 'a/gpt-4o: circuit open', 'off_peak')",
        [&session_id],
    )
    .unwrap();
    let before = v18_rows(&conn);
    assert_eq!(before.len(), 3);
    let totals = |env: &TestEnv| {
        let mut stats = env.command();
        stats.args(["stats", "--session", &session_id, "--json"]);
        let out = run_to_end(stats);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["total"].clone()
    };
    drop(conn);

    // The export migrates, then gives back every column as it was.
    let mut export = env.command();
    export.args(["export", "--format", "jsonl"]);
    let out = run_to_end(export);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(user_version(&env.ledger()), latest, "migrated in place");
    let mut after: Vec<serde_json::Map<String, serde_json::Value>> = text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    after.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        for (column, value) in old {
            let got = &new[column];
            let same = match (value.as_f64(), got.as_f64()) {
                // Costs are kept to the nano-dollar, latencies to the microsecond.
                (Some(a), Some(b)) if value.is_f64() => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                _ => value == got,
            };
            assert!(same, "{column}: {value} became {got} ({new:?})");
        }
        assert!(!new.contains_key("seq"), "the row number is internal");
    }
    // `stats` reads the hourly rollup, which migration 19 leaves as it was (the row inserted
    // by hand above was never in it): the proxy's two requests.
    let total = totals(&env);
    assert_eq!(total["requests"], 2, "{total}");
    assert_eq!(total["prompt_tokens"], 40, "{total}");

    let conn = env.ledger();
    let (blobs, rows): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*) FILTER (WHERE typeof(id) = 'blob'), COUNT(*) FROM request_rows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((blobs, rows), (2, 3), "the proxy's ids are stored as blobs");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
