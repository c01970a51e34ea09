//! Keys and people on a team ledger (issue 20, item 5): `smartproxy keys` on PostgreSQL, every
//! daemon on the ledger honouring its keys, a revoke or a new key reaching every daemon within
//! 5 s over `LISTEN`/`NOTIFY` (also after the listening connection was cut), and the rows
//! rolled up under the key's user and team. Each test in a database of its own (`TestDb`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::postgres::TestDb;
use support::{TestEnv, run_to_end, text};

const MOCK_CONFIG: &str = "providers:\n  - name: m\n    kind: mock\n";

/// How soon every daemon must honour a key change.
const WITHIN: Duration = Duration::from_secs(5);

fn keys(env: &TestEnv, db: &TestDb, args: &[&str]) -> Output {
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &db.url).arg("keys").args(args);
    run_to_end(cmd)
}

/// `keys create ARGS --json`: the new key.
fn create(env: &TestEnv, db: &TestDb, args: &[&str]) -> String {
    let out = keys(env, db, &[&["create", "--json"][..], args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    made["key"].as_str().unwrap().to_owned()
}

fn start_daemon(env: &TestEnv, db: &TestDb) -> Daemon {
    let config = env.write("sp.yaml", MOCK_CONFIG);
    Daemon::start(env, &config, &[], &[("SMARTPROXY_DB", &db.url)])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The status of one chat request to `daemon` with `key`.
fn status(rt: &tokio::runtime::Runtime, daemon: &Daemon, key: Option<&str>) -> u16 {
    let base = format!("{}/v1", daemon.listen);
    let body = support::chat_body("gpt-4o-mini", false, "hi");
    rt.block_on(support::post_chat(&base, key, body)).status
}

/// Polls every daemon until each answers `key` with `want`; the time the slowest took.
fn until_all(
    rt: &tokio::runtime::Runtime,
    daemons: &[&Daemon],
    key: &str,
    want: u16,
    since: Instant,
) -> Duration {
    let mut pending: Vec<&Daemon> = daemons.to_vec();
    let mut slowest = Duration::ZERO;
    let deadline = since + Duration::from_secs(20);
    while !pending.is_empty() {
        pending.retain(|d| status(rt, d, Some(key)) != want);
        slowest = since.elapsed();
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} daemon(s) never answered {want}; stderr of one:\n{}",
            pending.len(),
            pending[0].stderr()
        );
        support::pause(Duration::from_millis(25));
    }
    slowest
}

/// A key made with a user, team and limits is listed (never with its digest), used through a
/// daemon (200; a wrong key 401), and its rows are rolled up under its user and team.
#[test]
fn a_team_key_is_listed_used_and_its_rows_carry_its_user_and_team() {
    let Some(db) = TestDb::create("keysuse") else {
        return;
    };
    let env = TestEnv::new();
    let key = create(
        &env,
        &db,
        &[
            "--user",
            "ana@example.com",
            "--team",
            "search",
            "--daily",
            "5",
            "--monthly",
            "50.5",
            "ana-laptop",
        ],
    );
    assert!(key.starts_with("sk-sp-"), "{key}");
    // Without a name the key is named after its user.
    let out = keys(&env, &db, &["create", "--user", "bo", "--team", "infra"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("key `bo-"),
        "{}",
        text(&out.stderr)
    );

    let out = keys(&env, &db, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let digest_hex = hex::encode(smartproxy::proxy::keys::digest(&key));
    assert!(!listed.contains(key.trim_start_matches("sk-sp-")) && !listed.contains(&digest_hex));
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let ana = &rows[0];
    assert_eq!(ana["name"], "ana-laptop");
    assert_eq!(ana["user"], "ana@example.com");
    assert_eq!(ana["team"], "search");
    assert_eq!(ana["daily_usd"], 5.0);
    assert_eq!(ana["monthly_usd"], 50.5);
    assert!(ana["revoked_ms"].is_null());
    assert!(rows[1]["daily_usd"].is_null());
    let out = keys(&env, &db, &["list"]);
    let table = text(&out.stdout);
    for column in [
        "user",
        "team",
        "monthly",
        "ana@example.com",
        "search",
        "$50.50",
    ] {
        assert!(table.contains(column), "{column}: {table}");
    }
    // The ledger keeps the digest, never the key; people and teams are recorded once.
    assert_eq!(
        db.scalar("SELECT encode(digest, 'hex') FROM client_keys WHERE name = 'ana-laptop'"),
        digest_hex
    );
    assert_eq!(db.count("SELECT count(*) FROM people"), 2);
    assert_eq!(db.count("SELECT count(*) FROM teams"), 2);

    // Refusals: one clear line each, exit 1, no key printed.
    for (args, want) in [
        (
            &["create", "--user", "ana", "--team", "search", "ana-laptop"][..],
            "already exists",
        ),
        (
            &[
                "create", "--user", "ana", "--team", "search", "--daily", "-1", "x",
            ],
            "--daily must be a non-negative amount",
        ),
        (
            &[
                "create",
                "--user",
                "ana",
                "--team",
                "search",
                "--monthly",
                "inf",
                "x",
            ],
            "--monthly must be a non-negative amount",
        ),
        (
            &["create", "--user", "a b", "--team", "search", "x"],
            "not a valid user name",
        ),
        (
            &["create", "--user", "ana", "--team", "s;t", "x"],
            "not a valid team name",
        ),
        (
            &["create", "--user", "ana", "--team", "search", "default"],
            "reserved",
        ),
        (
            &["create", "--team", "search", "x"],
            "add --user NAME --team NAME",
        ),
        (&["revoke", "nobody"], "no key named `nobody`"),
    ] {
        let out = keys(&env, &db, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A SQLite ledger says what --user and --team need.
    let mut cmd = env.command();
    cmd.args(["keys", "create", "--user", "ana", "--team", "search", "x"]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("need a team ledger"),
        "{}",
        text(&out.stderr)
    );

    let daemon = start_daemon(&env, &db);
    let rt = runtime();
    let n = 3;
    for _ in 0..n {
        assert_eq!(status(&rt, &daemon, Some(&key)), 200);
    }
    assert_eq!(status(&rt, &daemon, Some("sk-sp-wrong")), 401);
    assert_eq!(status(&rt, &daemon, None), 401);
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        db.count(
            "SELECT COALESCE(sum(requests), 0) FROM usage_daily
             WHERE key = 'ana-laptop' AND user_name = 'ana@example.com' AND team = 'search'"
        ),
        n
    );
    // The refused requests are rows too, under no key's user.
    assert_eq!(
        db.count("SELECT count(*) FROM usage_daily WHERE user_name = 'ana@example.com' AND key <> 'ana-laptop'"),
        0
    );
}

/// Three daemons on one ledger: a key created after they started works on all three, and a
/// key revoked with `smartproxy keys revoke` is refused by all three, each within 5 s.
#[test]
fn three_daemons_follow_a_created_and_a_revoked_key_within_five_seconds() {
    let Some(db) = TestDb::create("keys3") else {
        return;
    };
    let envs: Vec<TestEnv> = (0..3).map(|_| TestEnv::new()).collect();
    let first = create(
        &envs[0],
        &db,
        &["--user", "ana", "--team", "search", "ana-1"],
    );
    let daemons: Vec<Daemon> = envs.iter().map(|env| start_daemon(env, &db)).collect();
    let all: Vec<&Daemon> = daemons.iter().collect();
    let rt = runtime();
    for daemon in &all {
        assert_eq!(status(&rt, daemon, Some(&first)), 200);
    }

    let created_at = Instant::now();
    let second = create(&envs[0], &db, &["--user", "bo", "--team", "infra", "bo-1"]);
    let took = until_all(&rt, &all, &second, 200, created_at);
    assert!(
        took < WITHIN,
        "a new key took {took:?} to reach every daemon"
    );

    let revoked_at = Instant::now();
    let out = keys(&envs[0], &db, &["revoke", "ana-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("revoked"));
    let took = until_all(&rt, &all, &first, 401, revoked_at);
    assert!(
        took < WITHIN,
        "a revoke took {took:?} to reach every daemon"
    );
    // The other key is untouched.
    for daemon in &all {
        assert_eq!(status(&rt, daemon, Some(&second)), 200);
    }
    let out = keys(&envs[0], &db, &["revoke", "ana-1"]);
    assert!(
        text(&out.stdout).contains("already revoked"),
        "{}",
        text(&out.stdout)
    );
    for daemon in daemons {
        let out = daemon.stop();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// The daemon's listening connection is cut (`pg_terminate_backend`) and a key revoked right
/// away, while it reconnects: the daemon re-reads the whole set once it listens again, so the
/// revoke still arrives within 5 s.
#[test]
fn a_revoke_arrives_after_the_listening_connection_was_cut() {
    let Some(db) = TestDb::create("keyscut") else {
        return;
    };
    let env = TestEnv::new();
    let key = create(&env, &db, &["--user", "ana", "--team", "search", "ana-1"]);
    let daemon = start_daemon(&env, &db);
    let rt = runtime();
    assert_eq!(status(&rt, &daemon, Some(&key)), 200);
    let listeners = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
         AND application_name = '{}'",
        smartproxy::ledger::postgres::keys::LISTENER_NAME
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.count(&listeners) != 1 {
        assert!(Instant::now() < deadline, "the daemon never listened");
        support::pause(Duration::from_millis(20));
    }
    assert_eq!(
        db.scalar(&listeners.replace("count(*)", "pg_terminate_backend(pid)")),
        "t"
    );
    let revoked_at = Instant::now();
    let out = keys(&env, &db, &["revoke", "ana-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let took = until_all(&rt, &[&daemon], &key, 401, revoked_at);
    assert!(took < WITHIN, "the revoke took {took:?} after the cut");
    daemon.wait_for_log(
        "the PostgreSQL connection that watches client keys dropped",
        1,
    );
    daemon.wait_for_log("listening for client key changes again", 1);
    // It listens again: a later change arrives by notification too.
    let later_at = Instant::now();
    let later = create(&env, &db, &["--user", "bo", "--team", "infra", "bo-1"]);
    let took = until_all(&rt, &[&daemon], &later, 200, later_at);
    assert!(took < WITHIN, "a new key took {took:?} after the reconnect");
    assert_eq!(db.count(&listeners), 1);
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out.stderr));
}
