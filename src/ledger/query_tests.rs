//! Tests for `query`: the hourly roll-up adds up to a scan of every request, and a session
//! whose process is gone reads lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::ledger::usage::HOUR_MS;
use crate::ledger::{Billing, Ledger, Outcome, RequestRecord, SessionStart};

/// The same figures straight from `requests`, the way they were computed before the rollup.
fn scanned(conn: &Connection, filter: &Filter, key: &str) -> Vec<Totals> {
    let (clause, args) = where_clause(filter);
    let sql = format!(
        "SELECT {key}, COUNT(*), TOTAL(r.outcome = 'ok'), TOTAL(r.outcome != 'ok'),
             TOTAL(r.prompt_tokens), TOTAL(r.completion_tokens), TOTAL(r.cached_tokens),
             SUM(r.cost_usd), TOTAL(r.cost_usd IS NULL AND r.outcome = 'ok'),
             TOTAL(r.tokens_estimated), TOTAL(r.cache_write_tokens),
             SUM(CASE WHEN r.billing = 'subscription' THEN r.cost_usd END),
             SUM(CASE WHEN r.billing = 'simulated' THEN r.cost_usd END)
         FROM requests r LEFT JOIN sessions s ON s.id = r.session_id {clause}
         GROUP BY 1 ORDER BY 1"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map(params_from_iter(args), |row| {
        totals_from_row(row.get(0)?, row, 1)
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn close(a: &[Totals], b: &[Totals]) -> bool {
    let cost = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        (x, y) => x == y,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            cost(a.cost_usd, b.cost_usd)
                && cost(a.subscription_usd, b.subscription_usd)
                && cost(a.simulated_usd, b.simulated_usd)
                && Totals {
                    cost_usd: None,
                    subscription_usd: None,
                    simulated_usd: None,
                    ..a.clone()
                } == Totals {
                    cost_usd: None,
                    subscription_usd: None,
                    simulated_usd: None,
                    ..b.clone()
                }
        })
}

#[test]
fn a_session_whose_process_is_gone_reads_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(&path).unwrap();
    for id in ["live", "closed", "dead", "elsewhere", "old"] {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: None,
            kind: "run",
            tag: None,
            program: None,
            cwd: None,
            pid: None,
            started_ms: 1,
            budget_usd: None,
            attribution: Default::default(),
        });
    }
    ledger.session_ended(crate::ledger::SessionEnd {
        id: "closed".to_owned(),
        ended_ms: 2,
        exit_code: Some(0),
        end_branch: None,
        end_head: None,
    });
    ledger.flush(Duration::from_secs(10)).unwrap();
    let conn = open(&path).unwrap();
    // The same pid started at another time (a reused pid), another host, nothing recorded.
    conn.execute_batch(
        "UPDATE sessions SET owner_start = 'another-boot:1' WHERE id = 'dead';
         UPDATE sessions SET host = 'elsewhere.invalid' WHERE id = 'elsewhere';
         UPDATE sessions SET host = NULL, owner_pid = NULL, owner_start = NULL WHERE id = 'old';",
    )
    .unwrap();
    let state = |id: &str| {
        let row = session(&conn, id).unwrap().unwrap();
        (row.running(), row.lost, row.status_text())
    };
    assert_eq!(state("live"), (true, false, "running".to_owned()));
    assert_eq!(state("closed"), (false, false, "exit 0".to_owned()));
    if cfg!(target_os = "linux") {
        assert_eq!(state("dead"), (false, true, "ended (lost)".to_owned()));
    }
    assert_eq!(state("elsewhere"), (true, false, "running".to_owned()));
    assert_eq!(state("old"), (true, false, "running".to_owned()));
}

#[test]
fn the_rollup_adds_up_to_what_a_scan_of_every_request_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::open(&path).unwrap();
    let t0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS;
    for (id, parent, tag) in [
        ("a", None, Some("x")),
        ("b", Some("a"), None),
        ("c", None, Some("y")),
    ] {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: parent.map(str::to_owned),
            kind: "run",
            tag: tag.map(str::to_owned),
            program: None,
            cwd: None,
            pid: None,
            started_ms: t0,
            budget_usd: None,
            attribution: Default::default(),
        });
    }
    let sessions = [Some("a"), Some("b"), Some("c"), None];
    let models = [Some("gpt-4o"), Some("claude"), None];
    for i in 0..600i64 {
        let session = sessions[(i % 4) as usize].map(Arc::from);
        let mut r = RequestRecord::new(format!("r{i:04}"), session, t0 + i * 37_000, "chat");
        r.provider = (i % 5 != 0).then(|| ["openai", "anthropic"][(i % 2) as usize].to_owned());
        r.served_model = models[(i % 3) as usize].map(str::to_owned);
        r.requested_model = Some("asked".to_owned());
        r.outcome = if i % 7 == 0 {
            Outcome::UpstreamError
        } else {
            Outcome::Ok
        };
        r.prompt_tokens = Some(i as u64 * 3);
        r.completion_tokens = (i % 4 != 0).then_some(i as u64);
        r.cached_tokens = Some(i as u64 % 11);
        r.cache_write_tokens = (i % 6 == 0).then_some(5);
        r.tokens_estimated = i % 9 == 0;
        r.cost_usd = (i % 7 != 0 && i % 10 != 3).then_some(i as f64 * 1e-5);
        r.billing = if i % 13 == 0 {
            Billing::Subscription
        } else if i % 17 == 0 {
            Billing::Simulated
        } else {
            Billing::Api
        };
        ledger.record(r);
    }
    ledger.flush(Duration::from_secs(10)).unwrap();
    let conn = open(&path).unwrap();
    let filters = [
        Filter::default(),
        Filter {
            session_id: Some("a".to_owned()),
            since_ms: None,
            until_ms: None,
        },
        Filter {
            session_id: None,
            since_ms: Some(t0 + HOUR_MS),
            until_ms: None,
        },
        Filter {
            session_id: None,
            since_ms: Some(t0 + HOUR_MS + 1_234_567),
            until_ms: None,
        },
        Filter {
            session_id: Some("a".to_owned()),
            since_ms: Some(t0 + 2 * HOUR_MS + 99),
            until_ms: None,
        },
        Filter {
            session_id: Some("c".to_owned()),
            since_ms: Some(t0 + 99 * HOUR_MS),
            until_ms: None,
        },
        // `--until`: off the hour, with `--since` off another, both inside one hour.
        Filter {
            session_id: None,
            since_ms: None,
            until_ms: Some(t0 + 3 * HOUR_MS + 777),
        },
        Filter {
            session_id: None,
            since_ms: Some(t0 + HOUR_MS + 1_234_567),
            until_ms: Some(t0 + 5 * HOUR_MS + 5),
        },
        Filter {
            session_id: None,
            since_ms: Some(t0 + 2 * HOUR_MS + 10),
            until_ms: Some(t0 + 2 * HOUR_MS + 2_000_000),
        },
        Filter {
            session_id: Some("a".to_owned()),
            since_ms: None,
            until_ms: Some(t0 + 4 * HOUR_MS),
        },
    ];
    let mut group_sums = Vec::new();
    for filter in &filters {
        for by in [
            GroupBy::Model,
            GroupBy::Provider,
            GroupBy::Session,
            GroupBy::Tag,
            GroupBy::Hour,
        ] {
            let mut fast = grouped(&conn, filter, by).unwrap();
            fast.sort_by(|a, b| a.key.cmp(&b.key));
            let slow = scanned(&conn, filter, by.sql());
            assert!(
                close(&fast, &slow),
                "{filter:?} by {by:?}:\n{fast:#?}\n{slow:#?}"
            );
            group_sums.push((filter.clone(), Totals::sum("total", &fast)));
        }
        let fast = totals(&conn, filter).unwrap();
        let slow = scanned(&conn, filter, "'total'");
        let slow = slow.into_iter().next().unwrap_or(Totals {
            key: "total".to_owned(),
            ..Totals::default()
        });
        assert!(
            close(std::slice::from_ref(&fast), std::slice::from_ref(&slow)),
            "{filter:?}:\n{fast:#?}\n{slow:#?}"
        );
        for (filter, summed) in group_sums.drain(..) {
            assert!(
                close(std::slice::from_ref(&summed), std::slice::from_ref(&slow)),
                "groups of {filter:?} add up to:\n{summed:#?}\n{slow:#?}"
            );
        }
    }
    // A session row's own count, spend, unpriced count and simulated cost (no nested
    // runs) match its requests.
    for id in ["a", "b", "c"] {
        let row = session(&conn, id).unwrap().unwrap();
        let (n, cost, unpriced, simulated): (i64, Option<f64>, i64, Option<f64>) = conn
            .query_row(
                "SELECT COUNT(*), SUM(CASE WHEN billing != 'simulated' THEN cost_usd END),
                     SUM(cost_usd IS NULL AND outcome = 'ok'),
                     SUM(CASE WHEN billing = 'simulated' THEN cost_usd END)
                 FROM requests WHERE session_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row.requests, n as u64, "session {id}");
        assert!(
            (row.cost_usd.unwrap() - cost.unwrap()).abs() < 1e-9,
            "session {id}: {:?} {cost:?}",
            row.cost_usd
        );
        assert_eq!(row.unpriced, unpriced as u64, "session {id}");
        assert!(
            (row.simulated_usd.unwrap() - simulated.unwrap()).abs() < 1e-9,
            "session {id}"
        );
    }
}
