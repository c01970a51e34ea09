//! `smartproxy report daily|monthly|blocks`: ledgers written through the ledger writer, read
//! by the real binary; both backends print the same bytes, and the open 5-hour block shows
//! its burn rate and projection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::{Ledger, Outcome, RequestRecord};
use support::TestEnv;
use support::postgres::TestDb;

const HOUR_MS: i64 = 3_600_000;
/// 2026-11-02T00:00:00Z.
const DAY0: i64 = 1_793_577_600_000;

/// Requests at `times`, each costing `1/512` dollar (exact in both backends' sums).
fn write(location: &LedgerLocation, times: &[i64]) {
    let ledger = Ledger::open_at(location).unwrap();
    for (i, &at) in times.iter().enumerate() {
        let mut r = RequestRecord::new(format!("req_{:028x}", i + 1), None, at, "chat");
        r.provider = Some("anthropic".to_owned());
        r.served_model = Some("claude-sonnet".to_owned());
        r.outcome = Outcome::Ok;
        r.status = 200;
        r.prompt_tokens = Some(100);
        r.completion_tokens = Some(20);
        r.cost_usd = Some(1.0 / 512.0);
        r.attempts = 1;
        ledger.record(r);
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
}

fn report(env: &TestEnv, db: &str, args: &[&str]) -> String {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", db).env("TZ", "Asia/Kolkata");
    cmd.arg("report").args(args);
    let out = support::run_to_end(cmd);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        support::text(&out.stderr)
    );
    support::text(&out.stdout)
}

#[test]
fn blocks_daily_and_monthly_read_the_same_from_both_backends() {
    let env = TestEnv::new();
    // Block 10:00-15:00 UTC (three requests, the last at 14:50), then 15:00-20:00 (one at
    // 15:10: after the first block ended), then a day later; and one a month later.
    let times = [
        DAY0 + 10 * HOUR_MS + 20 * 60_000,
        DAY0 + 11 * HOUR_MS,
        DAY0 + 14 * HOUR_MS + 50 * 60_000,
        DAY0 + 15 * HOUR_MS + 10 * 60_000,
        DAY0 + 30 * HOUR_MS,
        DAY0 + 31 * 24 * HOUR_MS,
    ];
    let sqlite = env.db.to_string_lossy().into_owned();
    write(&LedgerLocation::Sqlite(env.db.clone()), &times);
    let blocks: serde_json::Value =
        serde_json::from_str(&report(&env, &sqlite, &["blocks", "--json"])).unwrap();
    let starts: Vec<i64> = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["start_ms"].as_i64().unwrap() - DAY0) / HOUR_MS)
        .collect();
    assert_eq!(starts, [10, 15, 30, 31 * 24], "{blocks}");
    let requests: Vec<u64> = blocks["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["totals"]["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(requests, [3, 1, 1, 1]);
    assert!(
        blocks["blocks"][0]["active"] == false
            && blocks["blocks"][0]["burn_usd_per_hour"].is_null()
    );
    // Labels are local time (here UTC+5:30).
    assert_eq!(
        blocks["blocks"][0]["totals"]["key"],
        "2026-11-02 15:30-20:30"
    );

    let monthly: serde_json::Value =
        serde_json::from_str(&report(&env, &sqlite, &["monthly", "--json"])).unwrap();
    let months: Vec<&str> = monthly["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(months, ["2026-11", "2026-12"]);

    let Some(db) = TestDb::create("report") else {
        return;
    };
    write(
        &LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()),
        &times,
    );
    for args in [
        &["blocks", "--json"][..],
        &["blocks"],
        &[
            "blocks",
            "--since",
            "2026-11-02T14:00:00Z",
            "--until",
            "2026-11-03T12:00:00Z",
        ],
        &["daily"],
        &["daily", "--json", "--since", "2026-11-02T12:34:00Z"],
        &["monthly"],
    ] {
        assert_eq!(
            report(&env, &sqlite, args),
            report(&env, &db.url, args),
            "{args:?}"
        );
    }
}

#[test]
fn the_open_block_shows_its_burn_rate_and_projection() {
    let env = TestEnv::new();
    let now = smartproxy::ledger::now_ms();
    let hour = now - now.rem_euclid(HOUR_MS);
    // Two requests in this hour: the block opened at its start.
    write(&LedgerLocation::Sqlite(env.db.clone()), &[hour, hour + 1]);
    let sqlite = env.db.to_string_lossy().into_owned();
    let blocks: serde_json::Value =
        serde_json::from_str(&report(&env, &sqlite, &["blocks", "--json"])).unwrap();
    let open = &blocks["blocks"][0];
    assert_eq!(open["active"], true, "{blocks}");
    let burn = open["burn_usd_per_hour"].as_f64().unwrap();
    let projected = open["projected_usd"].as_f64().unwrap();
    let spent = 2.0 / 512.0;
    assert!(burn > 0.0 && projected > spent, "{blocks}");
    let text = report(&env, &sqlite, &["blocks"]);
    assert!(
        text.contains("open block ") && text.contains("/h"),
        "{text}"
    );
}
