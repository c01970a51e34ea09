//! `smartproxy prune` on a PostgreSQL ledger (issue 20): the same rows over three months are
//! written through the `Ledger` handle into a SQLite file and into a PostgreSQL database of the
//! test's own; a dry run changes nothing; `prune --older-than` a cutoff in the middle of the
//! second month drops the first month's partition whole, deletes the second month's rows before
//! the cutoff, keeps the rest, and leaves `stats`, `sessions` and `export` printing the same
//! bytes from both backends.
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

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// 2026-09-01T00:00:00Z: the first of the three months.
const SEP1: i64 = 1_788_220_800_000;
/// 2026-10-15T00:00:00Z: the cutoff's day.
const OCT15: i64 = 1_792_022_400_000;
/// The cutoff given, mid-hour: prune cuts exactly there on both backends.
const CUTOFF: &str = "2026-10-15T10:30:00Z";
const CUTOFF_MS: i64 = OCT15 + 10 * HOUR_MS + 30 * 60_000;

/// id, kind, tag, started, ended.
type Session = (
    &'static str,
    &'static str,
    Option<&'static str>,
    i64,
    Option<i64>,
);

const SESSIONS: [Session; 4] = [
    // Ended in September with only September's requests: goes.
    (
        "run-sep",
        "run",
        Some("sep"),
        SEP1,
        Some(SEP1 + 20 * DAY_MS),
    ),
    // Spans the cutoff with requests after it: stays.
    (
        "run-long",
        "run",
        Some("long"),
        SEP1 + DAY_MS,
        Some(SEP1 + 80 * DAY_MS),
    ),
    (
        "daemon-ci",
        "daemon",
        Some("ci-key"),
        SEP1 + 2 * DAY_MS,
        None,
    ),
    // Ended on the cutoff's day before the cutoff, its requests all before it: goes.
    ("run-early", "run", None, OCT15, Some(OCT15 + 2 * HOUR_MS)),
];

/// Request `i`: over the three months, the cutoff's day at hours either side of the cutoff.
fn request(i: i64) -> RequestRecord {
    let (session, started_ms) = match i {
        // The cutoff's day: 02:00..09:59 go, 10:00.. stay.
        0..12 => (
            if i < 4 { "run-early" } else { "daemon-ci" },
            OCT15 + (i * 2) * HOUR_MS + i * 1_013,
        ),
        _ => {
            let at = SEP1 + (i * 7_919_000_007) % (91 * DAY_MS);
            let session = if at < SEP1 + 20 * DAY_MS && i % 2 == 0 {
                "run-sep"
            } else if i % 3 == 0 {
                "daemon-ci"
            } else {
                "run-long"
            };
            (session, at)
        }
    };
    let mut r = RequestRecord::new(
        format!("req_{i:028x}"),
        Some(Arc::from(session)),
        started_ms,
        "chat",
    );
    let model = ["gpt-4o", "claude-sonnet", "llama3"][(i % 3) as usize];
    r.provider = Some(["openai", "anthropic"][(i % 2) as usize].to_owned());
    r.requested_model = Some(model.to_owned());
    r.served_model = Some(model.to_owned());
    r.route = Some("default".to_owned());
    r.outcome = if i % 7 == 6 {
        Outcome::UpstreamError
    } else {
        Outcome::Ok
    };
    r.status = if r.outcome == Outcome::Ok { 200 } else { 502 };
    r.prompt_tokens = Some(100 + i as u64);
    r.completion_tokens = Some(10 + i as u64);
    // Multiples of 1/512 dollar: exact in SQLite's f64 sums and PostgreSQL's nano-dollars.
    r.cost_usd = (r.outcome == Outcome::Ok && i % 10 != 9).then(|| (i % 13) as f64 / 512.0);
    r.billing = if i % 12 == 5 {
        Billing::Subscription
    } else {
        Billing::Api
    };
    r.latency_ms = 10.0 + (i % 20) as f64 * 0.5;
    r.attempts = 1;
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

const REQUESTS: i64 = 300;

fn fill(location: &LedgerLocation) {
    let ledger = Ledger::open_at(location).unwrap();
    for (id, kind, tag, started_ms, _) in SESSIONS {
        ledger.session_started(SessionStart {
            id: id.to_owned(),
            parent_id: None,
            kind,
            tag: tag.map(str::to_owned),
            program: Some("sh".to_owned()),
            cwd: Some("/tmp".to_owned()),
            pid: Some(4242),
            started_ms,
            budget_usd: None,
            attribution: Default::default(),
        });
    }
    for (id, .., ended) in SESSIONS {
        if let Some(ended_ms) = ended {
            ledger.session_ended(SessionEnd {
                id: id.to_owned(),
                ended_ms,
                exit_code: Some(0),
                end_branch: None,
                end_head: None,
            });
        }
    }
    // Sessions first: PostgreSQL's roll-up takes a request's tag and key from its session.
    ledger.flush(Duration::from_secs(60)).unwrap();
    for i in 0..REQUESTS {
        ledger.record(request(i));
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
}

/// `smartproxy ARGS` against the ledger `db` (a path or a URL): its stdout.
fn output(env: &TestEnv, db: &str, args: &[&str]) -> String {
    let file = env.path().join("export.out");
    let mut cmd = env.command();
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
    support::text(&out.stdout)
}

/// What the read commands print, from one backend.
fn views(env: &TestEnv, db: &str) -> Vec<(Vec<&'static str>, String)> {
    let cases: [&[&'static str]; 9] = [
        &["stats", "--json"],
        &["stats", "--by", "model", "--json"],
        &["stats", "--by", "tag"],
        &["stats", "--by", "key", "--json"],
        &["stats", "--since", "2026-10-15T00:00:00Z", "--json"],
        &["stats", "--since", "2026-10-14T12:00:00Z", "--by", "model"],
        &["stats", "--session", "run-long", "--json"],
        &["sessions", "--json"],
        &["export", "--format", "csv"],
    ];
    cases
        .iter()
        .map(|args| (args.to_vec(), output(env, db, args)))
        .collect()
}

fn partitions(db: &TestDb) -> String {
    db.scalar(
        "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'requests'::regclass",
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn prune_drops_old_months_as_partitions_and_totals_match_sqlite() {
    let Some(db) = TestDb::create("prune") else {
        return;
    };
    let env = TestEnv::new();
    let sqlite = env.db.to_string_lossy().into_owned();
    fill(&LedgerLocation::Sqlite(env.db.clone()));
    fill(&LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()));
    assert_eq!(
        partitions(&db),
        "requests_y2026m09,requests_y2026m10,requests_y2026m11"
    );
    let before_pg = views(&env, &db.url);
    let before_sqlite = views(&env, &sqlite);
    assert_eq!(before_pg, before_sqlite, "the same rows before the prune");
    let older = db.count(&format!(
        "SELECT count(*) FROM requests WHERE started_ms < {CUTOFF_MS}"
    ));
    let newer = db.count(&format!(
        "SELECT count(*) FROM requests WHERE started_ms >= {CUTOFF_MS}"
    ));
    assert!(older > 50 && newer > 50, "{older} {newer}");

    // A dry run: the same figures from both, nothing changed.
    let plan_pg = json(&output(
        &env,
        &db.url,
        &["prune", "--older-than", CUTOFF, "--json"],
    ));
    let plan_sqlite = json(&output(
        &env,
        &sqlite,
        &["prune", "--older-than", CUTOFF, "--json"],
    ));
    assert_eq!(plan_pg["dry_run"], true);
    assert_eq!(plan_pg["would_delete"]["partitions"], 1, "{plan_pg}");
    for field in [
        "cutoff_ms",
        "requests",
        "sessions",
        "anomalies",
        "oldest_ms",
        "newest_ms",
    ] {
        assert_eq!(
            plan_pg["would_delete"][field], plan_sqlite["would_delete"][field],
            "{field}: {plan_pg} {plan_sqlite}"
        );
    }
    assert_eq!(plan_pg["would_delete"]["requests"], older);
    assert_eq!(plan_pg["would_delete"]["sessions"], 2, "{plan_pg}");
    let text = output(&env, &db.url, &["prune", "--older-than", CUTOFF]);
    assert!(
        text.contains("would delete") && text.contains("1 whole month"),
        "{text}"
    );
    assert_eq!(
        partitions(&db),
        "requests_y2026m09,requests_y2026m10,requests_y2026m11"
    );
    assert_eq!(db.count("SELECT count(*) FROM requests"), REQUESTS);
    assert_eq!(views(&env, &db.url), before_pg, "a dry run changes nothing");

    // The prune itself, on both.
    let args = ["prune", "--older-than", CUTOFF, "--execute", "--json"];
    let done_pg = json(&output(&env, &db.url, &args));
    let done_sqlite = json(&output(&env, &sqlite, &args));
    for field in [
        "requests",
        "attempts",
        "sessions",
        "anomalies",
        "oldest_ms",
        "newest_ms",
    ] {
        assert_eq!(
            done_pg["deleted"][field], done_sqlite["deleted"][field],
            "{field}: {done_pg} {done_sqlite}"
        );
    }
    assert_eq!(done_pg["deleted"]["requests"], older);
    assert_eq!(done_pg["deleted"]["attempts"], older);
    assert_eq!(done_pg["deleted"]["partitions"], 1);

    // September's partition is gone from the catalog; October's rows before the cutoff are
    // gone, the rest (and their attempts) intact.
    assert_eq!(partitions(&db), "requests_y2026m10,requests_y2026m11");
    assert_eq!(db.count("SELECT count(*) FROM requests"), newer);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM requests WHERE started_ms < {CUTOFF_MS}"
        )),
        0
    );
    assert_eq!(db.count("SELECT count(*) FROM attempts"), newer);
    assert_eq!(
        db.count("SELECT count(*) FROM sessions WHERE id IN ('run-sep', 'run-early')"),
        0
    );
    assert_eq!(
        db.count("SELECT count(*) FROM usage_daily WHERE day < '2026-10-15'"),
        0,
        "the roll-up's days before the cutoff's go"
    );
    assert_eq!(
        db.count("SELECT COALESCE(sum(requests), 0)::bigint FROM usage_daily"),
        newer,
        "the roll-up counts exactly the requests left"
    );

    // Every view prints the same from both backends after the same prune.
    let after_pg = views(&env, &db.url);
    let after_sqlite = views(&env, &sqlite);
    for ((args, pg), (_, lite)) in after_pg.iter().zip(&after_sqlite) {
        assert_eq!(pg, lite, "{args:?}");
    }
    assert_eq!(json(&after_pg[0].1)["total"]["requests"], newer);
    assert_ne!(after_pg, before_pg);

    // Again: nothing left to delete, nothing dropped.
    let again = json(&output(&env, &db.url, &args));
    assert_eq!(again["deleted"]["requests"], 0, "{again}");
    assert_eq!(again["deleted"]["partitions"], 0, "{again}");
}

/// The cutoff's own month is never dropped, even when the cutoff is late in it; a cutoff on a
/// month's first instant drops the month before it and deletes nothing row by row.
#[test]
fn only_months_entirely_before_the_cutoff_are_dropped() {
    let Some(db) = TestDb::create("prunemonth") else {
        return;
    };
    let env = TestEnv::new();
    fill(&LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()));
    let nov1 = "2026-11-01T00:00:00Z";
    let done = json(&output(
        &env,
        &db.url,
        &["prune", "--older-than", nov1, "--execute", "--json"],
    ));
    assert_eq!(done["deleted"]["partitions"], 2, "{done}");
    assert_eq!(partitions(&db), "requests_y2026m11");
    let left = db.count("SELECT count(*) FROM requests");
    assert_eq!(done["deleted"]["requests"], REQUESTS - left);
    let late = json(&output(
        &env,
        &db.url,
        &["prune", "--older-than", "2026-11-30T23:00:00Z", "--json"],
    ));
    assert_eq!(late["would_delete"]["partitions"], 0, "{late}");
}

/// A row of a month a prune dropped, arriving later through a process that wrote into that
/// month before (a spool drained after the prune), recreates the partition instead of failing
/// its batch.
#[test]
fn a_late_row_of_a_dropped_month_is_still_written() {
    let Some(db) = TestDb::create("prunelate") else {
        return;
    };
    let env = TestEnv::new();
    let ledger =
        Ledger::open_at(&LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap())).unwrap();
    let at = |i: i64, started_ms: i64| {
        let mut r = request(i);
        r.started_ms = started_ms;
        r
    };
    ledger.record(at(100, SEP1 + DAY_MS));
    ledger.flush(Duration::from_secs(60)).unwrap();
    let done = json(&output(
        &env,
        &db.url,
        &["prune", "--older-than", "2026-10-01", "--execute", "--json"],
    ));
    assert_eq!(done["deleted"]["partitions"], 1, "{done}");
    assert_eq!(partitions(&db), "NULL");
    ledger.record(at(101, SEP1 + 2 * DAY_MS));
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
    assert_eq!(db.count("SELECT count(*) FROM requests"), 1);
    assert_eq!(partitions(&db), "requests_y2026m09");
}

/// A daemon with `retention.max_age_days` on a team ledger prunes it at start as `prune`
/// does: whole months as partitions, the cutoff's month row by row.
#[test]
fn the_daemon_prunes_a_postgres_ledger_by_itself() {
    let Some(db) = TestDb::create("prunedaemon") else {
        return;
    };
    let env = TestEnv::new();
    fill(&LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()));
    let cutoff = smartproxy::ledger::now_ms() - 30 * DAY_MS;
    let config = env.write("smartproxy.yaml", "retention:\n  max_age_days: 30\n");
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[("SMARTPROXY_DB", &db.url)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let old = format!("SELECT count(*) FROM requests WHERE started_ms < {cutoff} - 3600000");
    while db.count(&old) != 0 || partitions(&db).contains("m09") {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never pruned: {}",
            daemon.stderr()
        );
        support::pause(Duration::from_millis(100));
    }
    assert!(
        !partitions(&db).contains("requests_y2026m10"),
        "{}",
        partitions(&db)
    );
    assert!(!daemon.stderr().contains("retention is not applied"));
}
