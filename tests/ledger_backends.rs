//! The read commands answer the same on both backends (issue 20): the same sessions and
//! requests are written through the `Ledger` handle into a SQLite file and into a PostgreSQL
//! database of the test's own, then the real binary's `stats` (several `--by`, `--since`,
//! `--session`, `--json`), `sessions`, `status` and `export` (CSV and JSON Lines) must print
//! the same bytes against each.
//!
//! Costs are multiples of 1/512 dollar: exact both as binary fractions (SQLite adds up the
//! writer's `f64`s) and as nano-dollars (PostgreSQL adds up integers), so the sums agree to
//! the last bit and `--json` can be compared byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use smartproxy::config::{LedgerLocation, PgUrl};
use smartproxy::ledger::{
    AttemptRow, Billing, Ledger, Outcome, RequestRecord, SessionEnd, SessionStart,
};
use support::TestEnv;
use support::postgres::TestDb;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2026-11-02T00:00:00Z: the first of the three past days the rows span.
const DAY0: i64 = 1_793_577_600_000;

/// id, parent, kind, tag, started_ms, ended.
type Session = (
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    i64,
    bool,
);

const SESSIONS: [Session; 5] = [
    ("run-alpha", None, "run", Some("alpha"), DAY0 + 1_000, true),
    (
        "run-nested",
        Some("run-alpha"),
        "run",
        None,
        DAY0 + 2_000,
        true,
    ),
    (
        "daemon-ci",
        None,
        "daemon",
        Some("ci-key"),
        DAY0 + 3_000,
        false,
    ),
    (
        "run-beta",
        None,
        "run",
        Some("beta"),
        DAY0 + DAY_MS + 4_000,
        true,
    ),
    (
        "daemon-plain",
        None,
        "daemon",
        None,
        DAY0 + 2 * DAY_MS + 5_000,
        false,
    ),
];

fn sessions(ledger: &Ledger, today_ms: i64) {
    for (id, parent, kind, tag, started_ms, _) in SESSIONS {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: parent.map(str::to_owned),
            kind,
            tag: tag.map(str::to_owned),
            program: Some("sh".to_owned()),
            cwd: Some("/tmp".to_owned()),
            pid: Some(4242),
            started_ms,
            budget_usd: (id == "run-alpha").then_some(2.5),
            attribution: Default::default(),
        });
    }
    // A session of today, for `status`.
    ledger.session_started(SessionStart {
        id: "run-today".to_owned(),
        parent_id: None,
        kind: "run",
        tag: Some("today".to_owned()),
        program: None,
        cwd: None,
        pid: None,
        started_ms: today_ms,
        budget_usd: Some(1.0),
        attribution: Default::default(),
    });
    for (id, .., started_ms, ended) in SESSIONS {
        if ended {
            ledger.session_ended(SessionEnd {
                id: id.to_owned(),
                ended_ms: started_ms + 10 * HOUR_MS,
                exit_code: Some(if id == "run-beta" { 3 } else { 0 }),
                end_branch: None,
                end_head: None,
            });
        }
    }
}

/// Request `i` of the fixed set: spread over the sessions (and none), three days and their
/// hours, models, providers, outcomes, billings and costs (some unknown).
fn request(i: i64, today_ms: i64) -> RequestRecord {
    let session = match i % 6 {
        0 => Some("run-alpha"),
        1 => Some("run-nested"),
        2 => Some("daemon-ci"),
        3 => Some("run-beta"),
        4 => Some("daemon-plain"),
        _ => None,
    };
    // Days 0..3, at hours and minutes that put some rows either side of the `--since` cuts.
    let started_ms = if i % 17 == 16 {
        today_ms + i
    } else {
        DAY0 + (i % 3) * DAY_MS + (i * 7 % 24) * HOUR_MS + (i * 13 % 60) * 60_000 + i
    };
    let mut r = RequestRecord::new(
        format!("req_{i:028x}"),
        session.map(Arc::from),
        started_ms,
        "chat",
    );
    let model = ["gpt-4o", "claude-sonnet", "llama3"][(i % 3) as usize];
    r.provider = (i % 11 != 10).then(|| ["openai", "anthropic"][(i % 2) as usize].to_owned());
    r.requested_model = Some(model.to_owned());
    r.served_model = (i % 4 != 3).then(|| model.to_owned());
    r.route = Some("default".to_owned());
    r.outcome = if i % 7 == 6 {
        Outcome::UpstreamError
    } else {
        Outcome::Ok
    };
    r.status = if r.outcome == Outcome::Ok { 200 } else { 502 };
    r.error_code = (r.outcome != Outcome::Ok).then(|| "upstream_5xx".to_owned());
    r.stream = i % 2 == 0;
    r.prompt_tokens = Some(100 + i as u64);
    r.completion_tokens = (i % 5 != 4).then_some(10 + i as u64);
    r.cached_tokens = Some(i as u64 % 9);
    r.cache_write_tokens = (i % 6 == 1).then_some(7);
    r.tokens_estimated = i % 8 == 5;
    r.cost_usd = (r.outcome == Outcome::Ok && i % 10 != 9).then(|| (i % 13) as f64 / 512.0);
    r.saved_usd = (i % 9 == 2).then_some(1.0 / 256.0);
    r.billing = match i % 12 {
        5 => Billing::Subscription,
        8 => Billing::Simulated,
        _ => Billing::Api,
    };
    r.budget_action = (i % 15 == 7).then(|| "fit: max_tokens 512".to_owned());
    r.latency_ms = 10.0 + (i % 20) as f64 * 0.5;
    r.ttfb_ms = r.stream.then_some(4.25);
    r.attempts = 1 + (i % 2) as u32;
    r.fingerprint = (i % 3 == 0).then(|| format!("{:016x}", i * 977));
    r.user_agent = Some("curl/8".to_owned());
    r.attempt_log = vec![AttemptRow {
        provider: r.provider.clone().unwrap_or_default(),
        model: model.to_owned(),
        status: Some(r.status),
        error_class: None,
        latency_ms: 9.5,
        waited_ms: 0.0,
    }];
    r
}

/// Writes the sessions and requests into the ledger at `location` and waits until they are in.
fn fill(location: &LedgerLocation, today_ms: i64) {
    let ledger = Ledger::open_at(location).unwrap();
    sessions(&ledger, today_ms);
    // Sessions first: PostgreSQL's roll-up takes a request's tag and key from its session.
    ledger.flush(Duration::from_secs(60)).unwrap();
    for i in 0..240 {
        ledger.record(request(i, today_ms));
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
}

/// Runs `smartproxy ARGS` against the ledger at `db` (a path or a URL); its stdout, or for
/// `export` the file it wrote (an export is larger than a pipe holds while `run_to_end` waits).
fn output(env: &TestEnv, db: &str, args: &[&str]) -> String {
    let file = env.path().join("export.out");
    let mut cmd = env.command();
    // `TZ=...` first: the command runs in that time zone (the time groups are local).
    let args = match args.split_first() {
        Some((zone, rest)) if zone.starts_with("TZ=") => {
            cmd.env("TZ", &zone[3..]);
            rest
        }
        _ => args,
    };
    cmd.env("SMARTPROXY_DB", db).args(args);
    if args[0] == "export" {
        cmd.arg("-o").arg(&file);
    }
    let out = support::run_to_end(cmd);
    let stderr = support::text(&out.stderr);
    assert!(out.status.success(), "{args:?} on {db}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if args[0] == "export" {
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        return text;
    }
    let text = support::text(&out.stdout);
    // `status --json` names where the ledger is; the rest must be the same.
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(mut fields)) if fields.contains_key("backend") => {
            assert!(fields.remove("ledger").is_some(), "{text}");
            fields.remove("backend");
            serde_json::Value::Object(fields).to_string()
        }
        _ => text,
    }
}

#[test]
fn the_read_commands_print_the_same_from_sqlite_and_postgres() {
    let Some(db) = TestDb::create("backends") else {
        return;
    };
    let env = TestEnv::new();
    // Halfway through today (UTC), so `status`'s "today" holds these whatever the hour.
    let now = smartproxy::ledger::now_ms();
    let midnight = now - now.rem_euclid(DAY_MS);
    let today_ms = midnight + (now - midnight) / 2;
    let sqlite = env.db.to_string_lossy().into_owned();
    fill(&LedgerLocation::Sqlite(env.db.clone()), today_ms);
    fill(
        &LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()),
        today_ms,
    );

    let whole_day = "2026-11-03T00:00:00Z";
    let whole_hour = "2026-11-03T07:00:00Z";
    let mid_hour = "2026-11-03T05:31:10.123Z";
    let mut cases: Vec<Vec<&str>> = Vec::new();
    for by in [
        "model", "provider", "session", "tag", "key", "user", "team", "project",
    ] {
        cases.push(vec!["stats", "--by", by]);
        cases.push(vec!["stats", "--by", by, "--json"]);
        cases.push(vec!["stats", "--by", by, "--since", mid_hour, "--json"]);
    }
    for since in [whole_day, whole_hour, mid_hour] {
        cases.push(vec!["stats", "--since", since]);
        cases.push(vec!["stats", "--since", since, "--by", "tag", "--json"]);
        cases.push(vec!["export", "--format", "csv", "--since", since]);
    }
    // Periods of local time, here and half an hour off UTC, and `--until`.
    let until = "2026-11-04T10:20:00Z";
    for by in ["hour", "day", "week", "month"] {
        cases.push(vec!["stats", "--by", by]);
        cases.push(vec!["TZ=Asia/Kolkata", "stats", "--by", by, "--json"]);
        cases.push(vec!["TZ=America/New_York", "stats", "--by", by]);
        cases.push(vec![
            "stats", "--by", by, "--since", mid_hour, "--until", until,
        ]);
    }
    cases.extend([
        vec!["stats", "--until", whole_day, "--json"],
        vec!["stats", "--until", mid_hour, "--by", "tag"],
        vec![
            "stats",
            "--since",
            whole_day,
            "--until",
            "2026-11-04T00:00:00Z",
            "--json",
        ],
        vec![
            "stats",
            "--since",
            mid_hour,
            "--until",
            "2026-11-03T05:59:00Z",
            "--json",
        ],
        vec![
            "stats",
            "--session",
            "run-alpha",
            "--by",
            "day",
            "--until",
            whole_hour,
        ],
        vec!["stats", "--last", "--by", "hour"],
        vec!["export", "--format", "csv", "--until", mid_hour],
    ]);
    cases.extend([
        vec!["stats", "--session", "run-alpha", "--json"],
        vec!["stats", "--session", "run-a", "--by", "session", "--json"],
        vec!["stats", "--session", "daemon-ci", "--since", whole_hour],
        vec!["stats", "--last", "--json"],
        vec!["stats", "--today", "--json"],
        vec!["sessions", "--json"],
        vec!["sessions"],
        vec!["sessions", "--limit", "2", "--json"],
        vec!["status", "--session", "run-alpha", "--json"],
        vec!["status", "--session", "run-today", "--short"],
        vec!["export", "--format", "csv"],
        vec!["export", "--format", "jsonl"],
        vec!["export", "--format", "jsonl", "--session", "run-alpha"],
        // What `sh`'s, a tag's and no one's finished runs cost (nested runs in their parent's).
        vec!["quote", "--json", "--", "sh", "-c", "true"],
        vec!["quote", "--", "sh"],
        vec!["quote", "--tag", "beta", "--json"],
        vec!["quote", "--last", "1", "--", "sh"],
        vec!["quote", "--", "never-ran"],
    ]);
    // Today's burn rate is over the last hour: when today's rows fall in it (the first two
    // hours of the UTC day), it depends on the moment each command runs.
    if now - midnight >= 2 * HOUR_MS {
        cases.extend([vec!["status", "--json"], vec!["status"]]);
    }
    for args in &cases {
        let from_sqlite = output(&env, &sqlite, args);
        let from_postgres = output(&env, &db.url, args);
        assert!(!from_sqlite.trim().is_empty(), "{args:?}");
        assert_eq!(from_sqlite, from_postgres, "{args:?}");
    }

    // The outputs compared are about the rows written, not two empty answers.
    let stats: serde_json::Value =
        serde_json::from_str(&output(&env, &db.url, &["stats", "--json"])).unwrap();
    assert_eq!(stats["total"]["requests"], 240);
    assert_eq!(stats["heading"], "All requests by model");
    let by_day: serde_json::Value = serde_json::from_str(&output(
        &env,
        &db.url,
        &["TZ=America/New_York", "stats", "--by", "day", "--json"],
    ))
    .unwrap();
    let days: Vec<&str> = by_day["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    // Three UTC days of rows (and today's) fall on four New York days, oldest first.
    assert_eq!(
        &days[..4],
        ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    );
    assert_eq!(by_day["total"]["requests"], 240);
    let table = output(&env, &db.url, &["stats", "--last", "--by", "hour"]);
    assert!(
        table.starts_with("Session run-toda (today, started "),
        "{table}"
    );
    let by_key: serde_json::Value =
        serde_json::from_str(&output(&env, &db.url, &["stats", "--by", "key", "--json"])).unwrap();
    let keys: Vec<&str> = by_key["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"ci-key") && keys.contains(&"-"), "{keys:?}");
    let csv = output(&env, &db.url, &["export", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 241);
    let alpha: serde_json::Value = serde_json::from_str(&output(
        &env,
        &db.url,
        &["stats", "--session", "run-alpha", "--json"],
    ))
    .unwrap();
    // run-alpha's figures include the run nested in it.
    assert_eq!(alpha["total"]["requests"], 80);
    // run-alpha (with run-nested's rows), run-nested and run-beta: finished `sh` runs; the
    // daemons and the running run-today are not history.
    let quote: serde_json::Value = serde_json::from_str(&output(
        &env,
        &db.url,
        &["quote", "--json", "--", "/bin/sh"],
    ))
    .unwrap();
    assert_eq!(quote["sessions"], 3, "{quote}");
    assert_eq!(quote["duration_ms"]["p50"], 10 * HOUR_MS, "{quote}");
    let alpha_cost = alpha["total"]["cost_usd"].as_f64().unwrap()
        + alpha["total"]["simulated_usd"].as_f64().unwrap_or(0.0);
    // p90 of three is the costliest, at least run-alpha with its nested run's rows.
    assert!(
        quote["cost_usd"]["p90"].as_f64().unwrap() >= alpha_cost - 1e-9,
        "{quote} {alpha}"
    );
    let none = output(&env, &db.url, &["quote", "--", "never-ran"]);
    assert_eq!(
        none.trim(),
        "quote for `never-ran`: no history (no finished run to quote from)"
    );
    let status: serde_json::Value =
        serde_json::from_str(&output(&env, &db.url, &["status", "--json"])).unwrap();
    assert_eq!(status["scope"], "today");
    assert!(status["requests"].as_u64().unwrap() > 0, "{status}");
}

/// An unreachable PostgreSQL ledger is an error in one line, password redacted, from every
/// read command but `status`, which says so (never a silent zero).
#[test]
fn an_unreachable_postgres_ledger_is_a_clear_error() {
    let env = TestEnv::new();
    let url = "postgres://bob:hunter2@127.0.0.1:1/team?connect_timeout=2";
    for args in [&["stats"][..], &["sessions"], &["export"]] {
        let mut cmd = env.command();
        cmd.env("SMARTPROXY_DB", url).args(args);
        let out = support::run_to_end(cmd);
        let stderr = support::text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("PostgreSQL ledger"), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // `status` sits in shell prompts: it says the ledger is out of reach, with no amount.
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", url).arg("status");
    let out = support::run_to_end(cmd);
    let line = support::text(&out.stdout);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    assert!(line.contains("unreachable"), "{line}");
    assert!(
        line.contains("postgres://bob:***@127.0.0.1:1/team"),
        "{line}"
    );
    assert!(!line.contains('$') && !line.contains("hunter2"), "{line}");
}
