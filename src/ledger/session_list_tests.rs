//! Tests for `session_list` on SQLite: filters, each sort paged to the end without a row lost
//! or repeated, and the query plans (no scan of the roll-up per page for the default sort).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// 120 sessions: `s000`..`s119`, started one second apart, every third tagged `odd`, a cost
/// of (i % 7) / 8 dollars in `i % 5` requests, exit codes 0, 1 or none.
fn ledger() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(crate::ledger::Ledger::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    for i in 0..120_i64 {
        let (ended, exit) = match i % 3 {
            0 => (Some(i * 1000 + 500), Some(0)),
            1 => (Some(i * 1000 + 500), Some(1)),
            _ => (None, None),
        };
        conn.execute(
            "INSERT INTO sessions (id, kind, tag, program, started_ms, ended_ms, exit_code)
             VALUES (?1, 'run', ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                format!("s{i:03}"),
                (i % 3 == 1).then_some("odd"),
                if i % 2 == 0 { "claude" } else { "aider" },
                i * 1000,
                ended,
                exit
            ],
        )
        .unwrap();
        if i % 5 > 0 {
            conn.execute(
                "INSERT INTO usage (hour_ms, session_id, model, provider, requests, ok,
                     prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
                     cost_usd, unpriced, estimated)
                 VALUES (0, ?1, 'm', 'p', ?2, ?2, 1, 1, 0, 0, ?3, 0, 0)",
                rusqlite::params![format!("s{i:03}"), i % 5, (i % 7) as f64 / 8.0],
            )
            .unwrap();
        }
    }
    (dir, conn)
}

/// Every page of `query`, the ids in order.
fn all_pages(conn: &Connection, mut query: SessionQuery) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let list = session_list(conn, &query).unwrap();
        assert!(list.sessions.len() <= query.limit);
        ids.extend(list.sessions.iter().map(|s| s.id.clone()));
        match list.next_after {
            Some(next) => query.after = Some(Cursor::parse(&next, query.sort).unwrap()),
            None => return ids,
        }
    }
}

#[test]
fn every_sort_pages_through_every_session_once() {
    let (_dir, conn) = ledger();
    for sort in [
        SessionSort::Started,
        SessionSort::Cost,
        SessionSort::Requests,
    ] {
        let query = SessionQuery {
            sort,
            limit: 7,
            ..SessionQuery::default()
        };
        let ids = all_pages(&conn, query.clone());
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 120, "{sort:?}");
        assert_eq!(ids.len(), 120, "{sort:?}");
        let rows = session_list(
            &conn,
            &SessionQuery {
                limit: 200,
                ..query
            },
        )
        .unwrap()
        .sessions;
        let value = |s: &SessionRow| match sort {
            SessionSort::Started => s.started_ms as f64,
            SessionSort::Cost => s.cost_usd.unwrap_or(0.0),
            SessionSort::Requests => s.requests as f64,
        };
        assert!(
            rows.windows(2)
                .all(|w| (value(&w[0]), &w[0].id) >= (value(&w[1]), &w[1].id)),
            "{sort:?}"
        );
    }
    let newest = session_list(
        &conn,
        &SessionQuery {
            limit: 1,
            ..SessionQuery::default()
        },
    )
    .unwrap();
    assert_eq!(newest.sessions[0].id, "s119");
}

#[test]
fn filters_narrow_the_list() {
    let (_dir, conn) = ledger();
    let ids = |query: SessionQuery| all_pages(&conn, SessionQuery { limit: 50, ..query });
    let odd = ids(SessionQuery {
        tag: Some("odd".to_owned()),
        ..SessionQuery::default()
    });
    assert_eq!(odd.len(), 40);
    let running = ids(SessionQuery {
        status: Some(SessionStatus::Running),
        ..SessionQuery::default()
    });
    assert_eq!(running.len(), 40);
    let failed_aider = ids(SessionQuery {
        status: Some(SessionStatus::Failed),
        program: Some("aider".to_owned()),
        ..SessionQuery::default()
    });
    // i % 3 == 1 and odd i: i % 6 == 1.
    assert_eq!(failed_aider.len(), 20);
    let window = ids(SessionQuery {
        since_ms: Some(10_000),
        until_ms: Some(20_000),
        ..SessionQuery::default()
    });
    assert_eq!(window.first().map(String::as_str), Some("s019"));
    assert_eq!(window.len(), 10);
    let dear = session_list(
        &conn,
        &SessionQuery {
            min_cost_usd: Some(0.75),
            limit: 200,
            ..SessionQuery::default()
        },
    )
    .unwrap();
    assert!(!dear.sessions.is_empty());
    assert!(dear.sessions.iter().all(|s| s.cost_usd.unwrap() >= 0.75));
}

/// The default sort reads the start index, not every session; the cost sort adds up the
/// roll-up once (in `usage_session` order) and looks each session's figures up.
#[test]
fn the_plans_use_the_indexes() {
    let (_dir, conn) = ledger();
    let plan = |query: SessionQuery| -> String {
        let (sql, args) = list_sql(&SessionQuery { limit: 50, ..query });
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    };
    let after = Some(Cursor {
        value: "5".to_owned(),
        id: "x".to_owned(),
    });
    let started = plan(SessionQuery {
        after: after.clone(),
        ..SessionQuery::default()
    });
    assert!(started.contains("sessions_started_id"), "{started}");
    // Sessions are read in order from the index; only the page's own rows are sorted again.
    assert!(
        started.contains("SEARCH s USING COVERING INDEX sessions_started_id"),
        "{started}"
    );
    assert!(!started.contains("TEMP B-TREE FOR ORDER BY"), "{started}");
    assert!(!started.contains("fig"), "{started}");
    let cost = plan(SessionQuery {
        sort: SessionSort::Cost,
        after: Some(Cursor {
            value: "0.5".to_owned(),
            id: "x".to_owned(),
        }),
        ..SessionQuery::default()
    });
    assert!(cost.contains("SCAN u USING INDEX usage_session"), "{cost}");
    assert!(
        !cost.contains("SCAN f"),
        "one pass over the roll-up: {cost}"
    );
}
