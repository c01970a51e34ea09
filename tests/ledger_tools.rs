//! The ledger's own commands end to end: `status` (live cost for prompts), `export` (CSV and
//! JSON Lines, streamed) and `prune` (dry run, execute, and the daemon's daily retention).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::daemon::Daemon;
use support::{TestEnv, chat_body, post_chat, run_to_end, text};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Real rows: a `run --mock` session with `n` requests, the last one refused (malformed JSON).
async fn session_with_requests(env: &TestEnv, n: usize, budget: &str) -> String {
    let session = env.start_run(
        &["run", "--mock", "--budget", budget, "--tag", "tools"],
        &[],
    );
    for i in 0..n {
        let body = if i + 1 == n {
            "{not json".to_owned()
        } else {
            chat_body("gpt-4o-mini", false, "hi")
        };
        post_chat(&session.base_url, Some(&session.key), body).await;
    }
    let id = session.env["SMARTPROXY_SESSION_ID"].clone();
    let out = session.finish(0);
    assert!(out.status.success(), "{}", text(&out.stderr));
    id
}

/// Synthetic rows `age_ms` old, in a session of their own that ended then.
fn old_rows(env: &TestEnv, session: &str, count: usize, age_ms: i64) {
    let mut conn = env.ledger();
    conn.execute_batch(smartproxy::ledger::LEGACY_WRITES)
        .unwrap();
    let tx = conn.transaction().unwrap();
    let at = now_ms() - age_ms;
    tx.execute(
        "INSERT INTO sessions (id, kind, tag, started_ms, ended_ms) VALUES (?1, 'run', 'old', ?2, ?3)",
        (session, at - 1000, at + 1000),
    )
    .unwrap();
    for i in 0..count {
        let id = format!("{session}-{i:07}");
        tx.execute(
            "INSERT INTO requests (id, session_id, started_ms, endpoint, provider, served_model,
             status, outcome, stream, prompt_tokens, completion_tokens, cost_usd, latency_ms,
             attempts, cache_status) VALUES (?1, ?2, ?3, 'chat', 'mock', 'gpt-4o', 200, 'ok', 0,
             10, 20, 0.0001, 5.0, 1, 'miss')",
            (&id, session, at + i as i64 % 1000),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO attempts (request_id, n, provider, status) VALUES (?1, 1, 'mock', 200)",
            [&id],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn count(env: &TestEnv, sql: &str) -> i64 {
    env.ledger().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_session_of_the_run_it_is_in_or_today() {
    let env = TestEnv::new();
    let id = session_with_requests(&env, 3, "1").await;

    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["status", "--json"])
            .env("SMARTPROXY_SESSION_ID", &id);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["scope"], "session");
    assert_eq!(status["session_id"], id.as_str());
    assert_eq!(status["tag"], "tools");
    assert_eq!(status["requests"], 3);
    assert_eq!(status["failed"], 1);
    // A mock session spent nothing; its simulated cost still counts against its own budget.
    assert_eq!(status["spent_usd"].as_f64(), Some(0.0), "{status}");
    let simulated = status["simulated_usd"].as_f64().unwrap();
    assert!(simulated > 0.0, "{status}");
    let left = status["left_usd"].as_f64().unwrap();
    assert!((simulated + left - 1.0).abs() < 1e-9, "{status}");

    let line = run_to_end({
        let mut cmd = env.command();
        cmd.args(["status"]).env("SMARTPROXY_SESSION_ID", &id);
        cmd
    });
    let line = text(&line.stdout);
    assert_eq!(line.lines().count(), 1, "one line for a prompt: {line}");
    assert!(
        line.starts_with(&format!("smartproxy {} (tools): $", &id[..8])),
        "{line}"
    );
    assert!(
        line.contains("3 req, 1 failed") && line.contains("of $1.0000 left"),
        "{line}"
    );

    let short = run_to_end({
        let mut cmd = env.command();
        cmd.args(["status", "--short", "--session", &id[..6]]);
        cmd
    });
    assert!(
        text(&short.stdout).trim_end().ends_with(" left)"),
        "{}",
        text(&short.stdout)
    );

    let today = run_to_end({
        let mut cmd = env.command();
        cmd.arg("status");
        cmd
    });
    assert!(
        text(&today.stdout).starts_with("smartproxy today: $"),
        "{}",
        text(&today.stdout)
    );
    assert!(
        text(&today.stdout).contains("3 req"),
        "{}",
        text(&today.stdout)
    );

    // A fresh machine: nothing recorded is nothing spent, not an error.
    let empty = TestEnv::new();
    let out = run_to_end({
        let mut cmd = empty.command();
        cmd.arg("status");
        cmd
    });
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), "smartproxy today: $0 · 0 req");
    assert!(!empty.db.exists(), "status creates no ledger");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_streams_every_row_as_csv_or_jsonl_and_filters_by_session() {
    let env = TestEnv::new();
    let id = session_with_requests(&env, 2, "5").await;
    old_rows(&env, "old-session", 10_000, 3 * DAY_MS);

    // CSV to a file: a header, every row, the file whole.
    let file = env.path().join("out/requests.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["export", "--format", "csv", "-o", file.to_str().unwrap()]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exported 10002 requests"),
        "{}",
        text(&out.stderr)
    );
    let csv = std::fs::read_to_string(&file).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "started_at");
    for column in [
        "id",
        "session_id",
        "served_model",
        "status",
        "cost_usd",
        "session_tag",
    ] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    assert_eq!(lines.count(), 10_002);
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    // JSON Lines on stdout for one session: its rows only, typed.
    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["export", "--format", "jsonl", "--session", &id]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["session_id"] == id.as_str()));
    assert_eq!(rows[0]["status"], 200);
    assert_eq!(rows[1]["status"], 400);
    assert!(rows[0]["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[0]["session_tag"], "tools");

    // `--since` keeps the recent rows; a reader that stops early is not an error.
    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["export", "--format", "jsonl", "--since", "1d"]);
        cmd
    });
    assert_eq!(text(&out.stdout).lines().count(), 2);
    let out = run_to_end({
        let mut cmd = env.command_for("bash");
        let bin = env!("CARGO_BIN_EXE_smartproxy");
        cmd.args([
            "-c",
            &format!("set -o pipefail; '{bin}' export --format csv | head -1"),
        ]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("error"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_says_what_it_would_delete_and_deletes_only_with_execute() {
    let env = TestEnv::new();
    let id = session_with_requests(&env, 2, "5").await;
    old_rows(&env, "old-session", 4_500, 40 * DAY_MS);

    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["prune", "--older-than", "30d"]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("would delete 4,500 requests"), "{said}");
    assert!(
        said.contains("1 sessions") && said.contains("--execute"),
        "{said}"
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM requests"),
        4_502,
        "a dry run deletes nothing"
    );

    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args([
            "prune",
            "--older-than",
            "30d",
            "--execute",
            "--vacuum",
            "--json",
        ]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["deleted"]["requests"], 4_500);
    assert_eq!(done["deleted"]["attempts"], 4_500);
    assert_eq!(done["deleted"]["sessions"], 1);
    assert_eq!(done["free_bytes"], 0, "vacuumed");
    assert_eq!(count(&env, "SELECT COUNT(*) FROM requests"), 2);
    assert_eq!(
        count(
            &env,
            &format!("SELECT COUNT(*) FROM sessions WHERE id = '{id}'")
        ),
        1,
        "the recent session stays"
    );

    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["prune"]);
        cmd
    });
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--older-than 30d"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_daemon_applies_max_log_age_days_by_itself() {
    let env = TestEnv::new();
    let created = run_to_end({
        let mut cmd = env.command();
        cmd.args(["run", "--mock", "--", "true"]);
        cmd
    });
    assert!(created.status.success(), "{}", text(&created.stderr));
    old_rows(&env, "ancient", 50, 10 * DAY_MS);
    old_rows(&env, "recent", 5, DAY_MS / 2);
    let config = env.write("smartproxy.yaml", "retention:\n  max_age_days: 30\n");
    // The environment wins over the file, under SmolRouter's name.
    let daemon = Daemon::start(&env, &config, &[], &[("MAX_LOG_AGE_DAYS", "7")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The prune deletes requests, then (in a later transaction) the sessions left empty: wait
    // for its end, not its first step.
    while count(
        &env,
        "SELECT COUNT(*) FROM requests WHERE session_id IN ('ancient', 'recent')",
    ) != 5
        || count(&env, "SELECT COUNT(*) FROM sessions WHERE id = 'ancient'") != 0
    {
        assert!(
            Instant::now() < deadline,
            "the daemon never pruned: {}",
            daemon.stderr()
        );
        support::pause(Duration::from_millis(50));
    }
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM sessions WHERE id = 'ancient'"),
        0
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM sessions WHERE id = 'recent'"),
        1
    );

    let bad = env.write("bad.yaml", "retention:\n  max_age_dayz: 30\n");
    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["config", "validate", "--config", bad.to_str().unwrap()]);
        cmd
    });
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("max_age_dayz"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_captured_bodies_with_their_rows() {
    let env = TestEnv::new();
    let session = env.start_run(&["run", "--mock", "--capture"], &[]);
    let reply = post_chat(
        &session.base_url,
        Some(&session.key),
        chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(session.finish(0).status.success());
    let dir = env.path().join("captures");
    let blobs = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count()
    };
    assert_eq!(blobs(), 2, "the request and its reply");
    // Age the bodies as if they were written 40 days ago.
    let aged = run_to_end({
        let mut cmd = env.command_for("sh");
        cmd.args([
            "-c",
            &format!("touch -d '40 days ago' '{}'/*", dir.display()),
        ]);
        cmd
    });
    assert!(aged.status.success(), "{}", text(&aged.stderr));
    let out = run_to_end({
        let mut cmd = env.command();
        cmd.args(["prune", "--older-than", "30d", "--execute"]);
        cmd
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("deleted 2 captured bodies"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(blobs(), 0);
}

/// Writes requests started at `times` through the ledger writer (so the roll-ups are the
/// writer's own), on either backend.
fn write_requests(location: &smartproxy::config::LedgerLocation, times: &[i64]) {
    use smartproxy::ledger::{Ledger, Outcome, RequestRecord};
    let ledger = Ledger::open_at(location).unwrap();
    for (i, &at) in times.iter().enumerate() {
        let mut r = RequestRecord::new(format!("req_{:028x}", i + 1), None, at, "chat");
        r.provider = Some("openai".to_owned());
        r.served_model = Some("gpt-4o".to_owned());
        r.outcome = Outcome::Ok;
        r.status = 200;
        r.prompt_tokens = Some(10);
        r.completion_tokens = Some(5);
        r.cost_usd = Some(1.0 / 512.0);
        r.attempts = 1;
        ledger.record(r);
    }
    ledger.flush(Duration::from_secs(60)).unwrap();
    assert_eq!(ledger.dropped(), 0);
}

/// `prune --older-than 5m` cuts exactly five minutes ago (not at the hour before), on both
/// backends, and the totals afterwards count exactly the requests left.
#[test]
fn prune_cuts_at_the_exact_age_on_both_backends() {
    use smartproxy::config::{LedgerLocation, PgUrl};
    let env = TestEnv::new();
    let pg = support::postgres::TestDb::create("prune_exact");
    let mut ledgers = vec![(
        env.db.to_string_lossy().into_owned(),
        LedgerLocation::Sqlite(env.db.clone()),
    )];
    if let Some(db) = &pg {
        ledgers.push((
            db.url.clone(),
            LedgerLocation::Postgres(PgUrl::parse(&db.url).unwrap()),
        ));
    }
    let cutoff = now_ms() - 5 * 60_000;
    let hour = cutoff - cutoff.rem_euclid(3_600_000);
    // Before the cutoff (one of them in its hour, unless it is the hour's first 30 s), and
    // after it: the binary's own cutoff is a moment later than this one.
    let times = [hour - 1_000, cutoff - 30_000, cutoff + 60_000];
    for (db, location) in &ledgers {
        write_requests(location, &times);
        let prune = |execute: bool| {
            let mut cmd = env.command();
            cmd.env("SMARTPROXY_DB", db)
                .args(["prune", "--older-than", "5m", "--json"]);
            if execute {
                cmd.arg("--execute");
            }
            let out = run_to_end(cmd);
            assert!(out.status.success(), "{db}: {}", text(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let plan = prune(false);
        assert_eq!(plan["would_delete"]["requests"], 2, "{db}: {plan}");
        let at = plan["would_delete"]["cutoff_ms"].as_i64().unwrap();
        assert!((cutoff..cutoff + 60_000).contains(&at), "{db}: {plan}");
        let done = prune(true);
        assert_eq!(done["deleted"]["requests"], 2, "{db}: {done}");

        let mut cmd = env.command();
        cmd.env("SMARTPROXY_DB", db).args(["stats", "--json"]);
        let stats: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
        assert_eq!(stats["total"]["requests"], 1, "{db}: {stats}");
        assert_eq!(stats["total"]["prompt_tokens"], 10, "{db}: {stats}");
    }
}

/// A bad `--older-than` is named as `--older-than`, not as another flag.
#[test]
fn prune_names_its_own_flag_in_errors() {
    let env = TestEnv::new();
    let mut cmd = env.command();
    cmd.args(["prune", "--older-than", "banana"]);
    let out = run_to_end(cmd);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--older-than `banana`"), "{stderr}");
    assert!(!stderr.contains("--since"), "{stderr}");
}

/// `status --session` names a session that must exist; `export -o -` is standard output;
/// `sessions --limit 0` lists them all, in a table that fits 80 columns.
#[tokio::test(flavor = "multi_thread")]
async fn read_commands_take_their_arguments_at_their_word() {
    let env = TestEnv::new();
    let first = session_with_requests(&env, 2, "1").await;
    let second = session_with_requests(&env, 2, "1").await;

    let mut cmd = env.command();
    cmd.args(["status", "--session", "nope"]);
    let out = run_to_end(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no session matches `nope`"),
        "{}",
        text(&out.stderr)
    );

    let mut cmd = env.command();
    cmd.current_dir(env.path())
        .args(["export", "--format", "jsonl", "-o", "-"]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4);
    assert!(!env.path().join("-").exists(), "`-` is stdout, not a file");

    let mut cmd = env.command();
    cmd.args(["sessions", "--limit", "0", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&run_to_end(cmd).stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");

    let mut cmd = env.command();
    cmd.env("COLUMNS", "80").args(["sessions", "--limit", "0"]);
    let table = text(&run_to_end(cmd).stdout);
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than 80:\n{table}");
    }
    for id in [&first, &second] {
        assert!(table.contains(&id[..8]), "{id} on one line:\n{table}");
    }
}

/// `status` adds the burn rate, the model in use and how long the tightest budget lasts;
/// `--line` is one short uncoloured line off a terminal, and JSON on stdin (Claude Code's) is
/// read and ignored without waiting on a writer that never closes.
#[tokio::test(flavor = "multi_thread")]
async fn status_shows_burn_rate_model_and_time_left() {
    let env = TestEnv::new();
    let id = session_with_requests(&env, 3, "1").await;

    let mut cmd = env.command();
    cmd.args(["status", "--json", "--session", &id]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A mock session's simulated costs count against its own budget, so they burn it.
    let burn = status["burn_usd_per_hour"].as_f64().unwrap();
    assert!(burn > 0.0, "{status}");
    assert_eq!(status["model"], "gpt-4o-mini", "{status}");
    assert_eq!(status["tightest"]["budget"], "session", "{status}");
    let left = status["tightest"]["left_usd"].as_f64().unwrap();
    let hours = status["tightest"]["hours_left"].as_f64().unwrap();
    assert!((hours * burn - left).abs() < 1e-9, "{status}");

    let mut cmd = env.command();
    cmd.args(["status", "--line", "--session", &id])
        .stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A writer that sends its JSON and keeps the pipe open: `status` must not wait for EOF.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, br#"{"session_id":"x","model":{"id":"m"}}"#).unwrap();
    let started = Instant::now();
    let out = support::wait_output(child, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stdin);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(!line.contains('\x1b'), "no colour off a terminal: {line:?}");
    assert!(line.starts_with("$0 (+$"), "{line}");
    assert!(
        line.contains("/h · gpt-4o-mini · ") && line.trim_end().ends_with(" left"),
        "{line}"
    );
}

/// A shell prompt's `status --line` on a team ledger whose server took the connection and says
/// nothing: a line that says so within the prompt's wait (one second, and the connect), never a
/// prompt hung for the ten seconds other commands wait.
#[test]
fn status_line_on_a_silent_postgres_answers_at_once() {
    let env = TestEnv::new();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://bob:hunter2@127.0.0.1:{}/team",
        silent.local_addr().unwrap().port()
    );
    let mut cmd = env.command();
    cmd.env("SMARTPROXY_DB", &url).args(["status", "--line"]);
    let started = Instant::now();
    let out = run_to_end(cmd);
    let took = started.elapsed();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("unreachable"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(silent);
}
