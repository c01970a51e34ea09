//! Tests for `pages`: the session tree order, a session page with its tree, totals and pages of
//! requests, a request with its attempts, and the bounds on large days.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ledger::request_view::request_detail;

fn session(id: &str, parent: Option<&str>, started: i64) -> SessionRow {
    SessionRow {
        id: id.to_owned(),
        parent_id: parent.map(str::to_owned),
        kind: "run".to_owned(),
        tag: None,
        program: None,
        cwd: None,
        pid: None,
        started_ms: started,
        ended_ms: None,
        exit_code: None,
        budget_usd: None,
        requests: 0,
        cost_usd: None,
        ..SessionRow::default()
    }
}

#[test]
fn children_follow_their_parent_oldest_first() {
    // Newest first, as the query returns them.
    let rows = vec![
        session("b", None, 40),
        session("a2", Some("a"), 30),
        session("a1x", Some("a1"), 25),
        session("a1", Some("a"), 20),
        session("a", None, 10),
    ];
    let order: Vec<(usize, String)> = tree_order(rows)
        .into_iter()
        .map(|(d, r)| (d, r.id))
        .collect();
    let expect = [(0, "b"), (0, "a"), (1, "a1"), (2, "a1x"), (1, "a2")];
    assert_eq!(order, expect.map(|(d, s)| (d, s.to_owned())));
}

fn ledger() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(crate::ledger::Ledger::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(crate::ledger::LEGACY_WRITES).unwrap();
    conn.execute_batch(
        "INSERT INTO sessions (id, parent_id, kind, tag, started_ms) VALUES
             ('top', NULL, 'run', 't', 1000), ('kid', 'top', 'run', 'k', 2000);",
    )
    .unwrap();
    for i in 0..250 {
        let session = if i % 50 == 49 { "kid" } else { "top" };
        conn.execute(
            "INSERT INTO requests (id, session_id, started_ms, endpoint, status, outcome, stream,
                 latency_ms, attempts, cache_status, cost_usd)
             VALUES (?1, ?2, ?3, 'chat.completions', 200, 'ok', 0, 5.0, 1, 'none', 0.5)",
            params![format!("req_{i:06}"), session, 1000 + i],
        )
        .unwrap();
    }
    // Rows written here bypass the writer.
    crate::ledger::usage::rebuild(&conn).unwrap();
    conn.execute(
        "INSERT INTO attempts (request_id, n, provider, model, status) VALUES ('req_000001', 1, 'p', 'm', 200)",
        [],
    )
    .unwrap();
    (dir, conn)
}

#[test]
fn a_session_page_holds_its_tree_totals_and_pages_of_requests() {
    let (_dir, conn) = ledger();
    let page = session_page(&conn, "top", None).unwrap().unwrap();
    assert_eq!(
        page.tree
            .iter()
            .map(|(d, s)| (*d, s.id.as_str()))
            .collect::<Vec<_>>(),
        [(0, "top"), (1, "kid")]
    );
    assert_eq!(page.totals.requests, 250, "nested runs included");
    assert_eq!(page.requests.len(), SESSION_PAGE);
    assert_eq!(page.requests[0].id, "req_000248", "newest first");
    let mut seen = page.requests.len();
    let mut before = page.next_before.clone();
    while let Some(b) = before {
        let next = session_page(&conn, "top", Some(&b)).unwrap().unwrap();
        assert!(next.requests.iter().all(|r| r.id < b));
        seen += next.requests.len();
        before = next.next_before;
    }
    assert_eq!(seen, 245, "every own request once");
    let kid = session_page(&conn, "kid", None).unwrap().unwrap();
    assert_eq!(kid.ancestors[0].id, "top");
    assert_eq!(kid.requests.len(), 5);
    assert!(session_page(&conn, "nope", None).unwrap().is_none());
}

#[test]
fn a_request_comes_with_its_attempts_and_session() {
    let (_dir, conn) = ledger();
    let d = request_detail(&conn, "req_000001").unwrap().unwrap();
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.session.unwrap().id, "top");
    assert!(request_detail(&conn, "req_x").unwrap().is_none());
    assert_eq!(recent_requests(&conn, 3).unwrap()[0].id, "req_000249");
}

#[test]
fn a_cycle_shows_every_session_once() {
    let rows = vec![session("x", Some("y"), 2), session("y", Some("x"), 1)];
    assert_eq!(tree_order(rows).len(), 2);
}

#[test]
fn todays_and_a_sessions_figures_come_whole_from_the_rollup() {
    let (_dir, conn) = ledger();
    let bounds = Bounds {
        today_start_ms: 0,
        month_start_ms: 0,
        chart_start_ms: 0,
    };
    let overview = overview(&conn, bounds, |_| "d".to_owned()).unwrap();
    assert_eq!((overview.today.requests, overview.today.ok), (250, 250));
    assert_eq!(overview.today.cost_usd, Some(125.0));
    assert_eq!(overview.month.requests, 250);
    let top = overview
        .sessions
        .iter()
        .find(|(_, s)| s.id == "top")
        .unwrap();
    assert_eq!(
        (top.1.requests, top.1.cost_usd),
        (245, Some(122.5)),
        "own requests only"
    );

    let page = session_page(&conn, "top", None).unwrap().unwrap();
    assert_eq!((page.totals.requests, page.totals.ok), (250, 250));
    assert_eq!(page.totals.cost_usd, Some(125.0), "nested runs included");
}
