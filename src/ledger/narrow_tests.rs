//! Tests for `narrow`: ids and fingerprints as stored, a version-18 ledger upgraded to the same
//! rows and answers, a request written again replacing its row.
#![allow(clippy::unwrap_used)]

use rusqlite::Connection;
use rusqlite::ToSql;
use rusqlite::types::ToSqlOutput;

use super::{stored_hex, stored_id};

/// What a binding gives SQLite, as a value to compare.
fn owned(output: ToSqlOutput<'_>) -> rusqlite::types::Value {
    match output {
        ToSqlOutput::Owned(value) => value,
        ToSqlOutput::Borrowed(value) => value.into(),
        other => panic!("unexpected binding {other:?}"),
    }
}

#[test]
fn ids_and_digests_round_trip_through_their_stored_forms() {
    let conn = Connection::open_in_memory().unwrap();
    for (id, blob) in [
        ("req_019a2b3c4d5e12345678000000ff", true),
        ("req_abc", false),
        ("req_ABCD", false),
        ("req_ab12", true),
        ("req_ab1", false),
        ("req_abzz", false),
        ("req_é1", false),
        ("req_", false),
        ("r1", false),
    ] {
        let (kind, back): (String, String) = conn
            .query_row(
                &format!(
                    "SELECT typeof(x), {} FROM (SELECT {} AS x)",
                    decode_id!("x"),
                    encode_id!("?1")
                ),
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(back, id);
        assert_eq!(kind == "blob", blob, "{id}");
        let sql: rusqlite::types::Value = conn
            .query_row(&format!("SELECT {}", encode_id!("?1")), params![id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(stored_id(id).to_sql().map(owned).unwrap(), sql, "{id}");
    }
    for (hex, blob) in [
        ("00ff17a0", true),
        ("abc", false),
        ("", false),
        ("f1", true),
        ("ABCD", false),
        ("0g", false),
    ] {
        let (kind, back): (String, String) = conn
            .query_row(
                &format!(
                    "SELECT typeof(x), {} FROM (SELECT {} AS x)",
                    decode_hex!("x"),
                    encode_hex!("?1")
                ),
                params![hex],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(back, hex);
        assert_eq!(kind == "blob", blob, "{hex}");
        let sql: rusqlite::types::Value = conn
            .query_row(
                &format!("SELECT {}", encode_hex!("?1")),
                params![hex],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored_hex(hex).to_sql().map(owned).unwrap(), sql, "{hex}");
    }
}

use rusqlite::params;

use std::sync::Arc;
use std::time::Duration;

use crate::ledger::{AttemptRow, Billing, Ledger, Outcome, RequestRecord, SessionStart};
use crate::ledger::{export, live, pages, query, request_view, retention};

/// Every old column of every request and attempt, with its SQLite type, in id order.
fn rows(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT * FROM (SELECT id, session_id, started_ms, endpoint, route, provider,
             requested_model, served_model, status, outcome, error_code, stream, prompt_tokens,
             completion_tokens, cached_tokens, tokens_estimated, cost_usd, latency_ms, ttfb_ms,
             attempts, cache_status, client_hash, fingerprint, user_agent, client_session,
             saved_usd, cache_write_tokens, billing, budget_action, skipped, price_period
             FROM requests) ORDER BY id",
        "SELECT * FROM (SELECT request_id, n, provider, model, status, error_class, latency_ms,
             waited_ms FROM attempts) ORDER BY request_id, n",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(row) = q.next().unwrap() {
            let values: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            out.push(values.join("|"));
        }
    }
    out
}

/// What every reader answers, as text.
fn answers(conn: &mut Connection, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(format!(
            "{:?}",
            request_view::request_detail(conn, id).unwrap()
        ));
    }
    out.push(format!(
        "{:?}",
        request_view::request_detail(conn, "req_0000").unwrap()
    ));
    for session in ["s-run", "s-daemon", "nope"] {
        out.push(format!(
            "{:?}",
            pages::session_page(conn, session, None).unwrap()
        ));
        out.push(format!(
            "{:?}",
            pages::session_page(conn, session, Some(&ids[7])).unwrap()
        ));
        let filter = query::Filter {
            session_id: Some(session.to_owned()),
            since_ms: None,
            until_ms: None,
        };
        out.push(format!("{:?}", query::totals(conn, &filter).unwrap()));
        let live_filter = live::LiveFilter {
            session_id: Some(session.to_owned()),
            ..Default::default()
        };
        out.push(format!(
            "{:?}",
            live::recent_requests(conn, &live_filter, 5).unwrap()
        ));
    }
    let all = query::Filter::default();
    for by in [
        query::GroupBy::Model,
        query::GroupBy::Tag,
        query::GroupBy::Session,
    ] {
        out.push(format!("{:?}", query::grouped(conn, &all, by).unwrap()));
    }
    out.push(format!("{:?}", query::budget_actions(conn, &all).unwrap()));
    out.push(format!(
        "{:?}",
        live::recent_requests(conn, &Default::default(), 50).unwrap()
    ));
    out.push(format!("{:?}", live::totals_since(conn, 0).unwrap()));
    out.push(format!("{:?}", pages::recent_requests(conn, 50).unwrap()));
    out.push(format!(
        "{:?}",
        retention::plan(conn, 1_700_000_030_000).unwrap()
    ));
    for format in [export::Format::Csv, export::Format::Jsonl] {
        let mut bytes = Vec::new();
        export::export(conn, &all, format, &mut bytes, &mut |_| {}).unwrap();
        out.push(String::from_utf8(bytes).unwrap());
    }
    out
}

/// A version-18 ledger (the wide rows) upgraded in place reads exactly as the same rows
/// written by today's writer: every column of every row, and every reader's answers.
#[test]
fn a_version_18_ledger_upgrades_to_the_same_rows_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(&path).unwrap();
    for (id, kind, tag) in [("s-run", "run", "alpha"), ("s-daemon", "daemon", "ci")] {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: None,
            kind,
            tag: Some(tag.to_owned()),
            program: Some("sh".to_owned()),
            cwd: None,
            pid: Some(7),
            started_ms: 1_700_000_000_000,
            budget_usd: Some(2.5),
        });
    }
    let mut ids = Vec::new();
    for i in 0..40_u32 {
        // Real ids, and the odd ones tests and old builds wrote.
        let id = match i % 10 {
            3 => format!("r{i}"),
            5 => format!("req_{i:03}"),
            _ => format!(
                "req_{:012x}5eed0001{i:08x}",
                1_700_000_000_000_u64 + u64::from(i)
            ),
        };
        let session: Option<Arc<str>> = match i % 3 {
            0 => Some(Arc::from("s-run")),
            1 => Some(Arc::from("s-daemon")),
            _ => None,
        };
        let mut r = RequestRecord::new(
            id.clone(),
            session,
            1_700_000_000_000 + i64::from(i) * 1_000,
            "chat",
        );
        r.route = (i % 4 != 0).then(|| "default".to_owned());
        r.provider = Some(["openai", "mock", "anthropic"][i as usize % 3].to_owned());
        r.requested_model = Some("gpt-4o".to_owned());
        r.served_model = (i % 5 != 0).then(|| ["gpt-4o", "gpt-4o-mini"][i as usize % 2].to_owned());
        r.status = if i % 6 == 0 { 502 } else { 200 };
        r.outcome = if i % 6 == 0 {
            Outcome::UpstreamError
        } else {
            Outcome::Ok
        };
        r.error_code = (i % 6 == 0).then(|| "upstream_unreachable".to_owned());
        r.stream = i % 2 == 0;
        r.prompt_tokens = (i % 6 != 0).then_some(100 + u64::from(i));
        r.completion_tokens = (i % 6 != 0).then_some(20);
        r.cached_tokens = (i % 4 == 1).then_some(7);
        r.cache_write_tokens = (i % 8 == 1).then_some(3);
        r.tokens_estimated = i % 9 == 0;
        // Costs to the nano-dollar and latencies to the microsecond, as the rows keep them.
        r.cost_usd = (i % 6 != 0).then(|| f64::from(i) * 0.000_127 + 0.000_001);
        r.saved_usd = (i % 11 == 2).then_some(0.0045);
        r.latency_ms = 812.5 + f64::from(i) * 0.125;
        r.ttfb_ms = (i % 6 != 0).then_some(300.001);
        r.attempts = 1 + i % 2;
        r.attempt_log = (0..r.attempts)
            .map(|n| AttemptRow {
                provider: "openai".to_owned(),
                model: "gpt-4o".to_owned(),
                status: (n == 0 && i % 2 == 1).then_some(503).or(Some(r.status)),
                error_class: (n == 0 && i % 2 == 1).then(|| "status".to_owned()),
                latency_ms: 100.25,
                waited_ms: f64::from(n) * 250.0,
            })
            .collect();
        r.cache_status = ["miss", "hit", "off"][i as usize % 3];
        r.client_hash = Some(Arc::from(["0011223344556677", "h1"][i as usize % 2]));
        r.fingerprint = Some(
            [format!("{:016x}", u64::from(i) * 7919), "f1x".to_owned()][i as usize % 2].clone(),
        );
        r.user_agent = (i % 7 != 0).then(|| "claude-cli/2.0.14 (external, cli)".to_owned());
        r.client_session = (i % 2 == 0).then(|| "c-session".to_owned());
        r.billing = [Billing::Api, Billing::Subscription, Billing::Simulated][i as usize % 3];
        r.budget_action = (i % 13 == 4).then(|| "fit: max_tokens 4096 -> 812".to_owned());
        r.skipped = (i % 5 == 1).then(|| "a/gpt-4o: circuit open".to_owned());
        r.price_period = (i % 4 == 2).then_some("off_peak");
        ledger.record(r);
        ids.push(id);
    }
    ledger.flush(Duration::from_secs(10)).unwrap();
    drop(ledger);

    let mut conn = crate::ledger::open_connection(&path).unwrap();
    let written = rows(&conn);
    assert_eq!(written.len(), 40 + 60);
    let read = answers(&mut conn, &ids);
    let stored: (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*) FILTER (WHERE typeof(id) = 'blob'), COUNT(*) FROM request_rows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        stored,
        (32, 40),
        "real ids are stored as blobs, others as text"
    );

    conn.execute_batch(super::UNDO).unwrap();
    assert_eq!(rows(&conn), written, "version 18 holds the same rows");
    drop(conn);
    drop(Ledger::open(&path).unwrap()); // opening migrates
    let mut conn = crate::ledger::open_connection(&path).unwrap();
    assert_eq!(
        crate::db::schema_version(&conn).unwrap(),
        crate::ledger::migrations::known_version()
    );
    assert_eq!(rows(&conn), written, "the upgrade keeps every column");
    assert_eq!(
        answers(&mut conn, &ids),
        read,
        "every reader answers the same"
    );

    // Rows written after the upgrade reuse the migrated strings and shapes.
    let shapes: i64 = conn
        .query_row("SELECT COUNT(*) FROM request_shapes", [], |r| r.get(0))
        .unwrap();
    assert!(shapes < 40, "{shapes} shapes for 40 rows");
}

/// A request recorded again under the same id replaces its row in place: one row, the same
/// `seq` (so its attempts and capture stay attached), the newer figures and attempts.
#[test]
fn a_request_written_again_replaces_its_row_and_keeps_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(&path).unwrap();
    let record = |cost: f64, attempts: u32| {
        let mut r = RequestRecord::new(
            "req_0190c3a1b2c35eed000100000001".to_owned(),
            None,
            1_700_000_000_000,
            "chat",
        );
        r.provider = Some("openai".to_owned());
        r.cost_usd = Some(cost);
        r.attempts = attempts;
        r.attempt_log = (0..attempts)
            .map(|n| AttemptRow {
                provider: "openai".to_owned(),
                model: "gpt-4o".to_owned(),
                status: Some(200),
                error_class: None,
                latency_ms: f64::from(n) + 1.0,
                waited_ms: 0.0,
            })
            .collect();
        r
    };
    ledger.record(record(0.25, 2));
    ledger.flush(Duration::from_secs(10)).unwrap();
    let conn = crate::ledger::open_connection(&path).unwrap();
    let seq = |conn: &Connection| -> i64 {
        conn.query_row("SELECT seq FROM request_rows", [], |r| r.get(0))
            .unwrap()
    };
    let first = seq(&conn);

    ledger.record(record(0.5, 1));
    ledger.flush(Duration::from_secs(10)).unwrap();
    let (rows, cost, attempts): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(cost_nusd), (SELECT COUNT(*) FROM attempt_rows) \
             FROM request_rows",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, cost), (1, 500_000_000), "one row, the newer cost");
    assert_eq!(seq(&conn), first, "the row keeps its seq");
    assert_eq!(attempts, 1, "the newer attempts only");
}
