//! Attribution by project, branch and commit (issue 21): `run` records the git state of its
//! folder at the start and end of each session; `stats --by branch|commit|project` and
//! `smartproxy cost --commit/--range/--branch` add up exactly the sessions whose HEAD was there.
//! A real git repository in a temp folder; three `run --mock` sessions across two commits and
//! two branches, the second committing while it runs; every figure checked against the sums of
//! the request rows in the ledger, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::TestEnv;
use support::postgres::TestDb;

/// `git` in `repo`, working with no user config at all.
fn git(env: &TestEnv, repo: &Path, args: &[&str]) -> String {
    let out = env
        .command_for("git")
        .current_dir(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        support::text(&out.stderr)
    );
    support::text(&out.stdout).trim().to_owned()
}

/// A shell line that makes `n` chat requests through the session's proxy.
fn requests(n: usize) -> String {
    format!(
        "for i in $(seq {n}); do curl -sf -o /dev/null -H \"authorization: Bearer $OPENAI_API_KEY\" \
         -H 'content-type: application/json' -d '{}' \"$OPENAI_BASE_URL/chat/completions\" || exit 9; done",
        support::chat_body("gpt-4o-mini", false, "hi")
    )
}

/// `smartproxy ARGS` in `dir` on the ledger `db_url` (else the env's SQLite file).
fn smartproxy(
    env: &TestEnv,
    dir: &Path,
    db_url: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd: Command = env.command();
    cmd.current_dir(dir).args(args);
    if let Some(url) = db_url {
        cmd.env("SMARTPROXY_DB", url);
    }
    support::run_to_end(cmd)
}

fn json_of(env: &TestEnv, dir: &Path, db_url: Option<&str>, args: &[&str]) -> Value {
    let out = smartproxy(env, dir, db_url, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        support::text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The three sessions' ids and the two commits.
struct Story {
    repo: PathBuf,
    c1: String,
    c2: String,
    /// On main at c1 (`--project alpha`), one request.
    s1: String,
    /// On main at c1, two requests, commits c2 while it runs.
    s2: String,
    /// On branch feat at c2, three requests.
    s3: String,
}

fn play(env: &TestEnv, db_url: Option<&str>) -> Story {
    let repo = env.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(env, &repo, &["init", "-q"]);
    git(env, &repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
    let c1 = git(env, &repo, &["rev-parse", "HEAD"]);
    let session = |dir: &Path, extra: &[&str], script: &str| -> String {
        let mut args = vec!["run", "--mock", "--summary", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let out = smartproxy(env, dir, db_url, &args);
        assert!(out.status.success(), "{}", support::text(&out.stderr));
        let sessions = json_of(env, dir, db_url, &["sessions", "--json", "--limit", "1"]);
        sessions[0]["id"].as_str().unwrap().to_owned()
    };
    // From a subfolder: the repository is found above it.
    let s1 = session(&repo.join("src"), &["--project", "alpha"], &requests(1));
    let commit = "git -c user.name=Test -c user.email=test@example.com -c commit.gpgsign=false \
                  commit -q --allow-empty -m two";
    let s2 = session(&repo, &[], &format!("{} && {commit}", requests(2)));
    let c2 = git(env, &repo, &["rev-parse", "HEAD"]);
    git(env, &repo, &["checkout", "-q", "-b", "feat"]);
    let s3 = session(&repo, &[], &requests(3));
    Story {
        repo,
        c1,
        c2,
        s1,
        s2,
        s3,
    }
}

/// (requests, cost in USD) of the request rows of `ids`, read straight from the ledger's rows.
type RowSums<'a> = dyn Fn(&[&str]) -> (u64, f64) + 'a;

fn check(env: &TestEnv, db_url: Option<&str>, story: &Story, rows_of: &RowSums<'_>) {
    let repo = story.repo.as_path();
    // What each session recorded.
    let sessions = json_of(env, repo, db_url, &["sessions", "--json"]);
    let find = |id: &str| {
        sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let (s1, s2, s3) = (find(&story.s1), find(&story.s2), find(&story.s3));
    assert_eq!(s1["project"], "alpha");
    assert_eq!(s2["project"], "repo", "the repository's folder name");
    assert_eq!(s1["repo"], repo.display().to_string());
    assert_eq!(
        (&s1["branch"], &s1["head"]),
        (&"main".into(), &story.c1.clone().into())
    );
    assert_eq!(s1["end_head"], story.c1);
    assert_eq!(
        (&s2["head"], &s2["end_head"]),
        (&story.c1.clone().into(), &story.c2.clone().into())
    );
    assert_eq!(
        (&s3["branch"], &s3["head"]),
        (&"feat".into(), &story.c2.clone().into())
    );
    assert_eq!(s3["end_branch"], "feat");

    // Money: mock rows are simulated, so what the rows hold is `cost_usd + simulated_usd`.
    let money = |t: &Value| {
        t["cost_usd"].as_f64().unwrap_or(0.0) + t["simulated_usd"].as_f64().unwrap_or(0.0)
    };
    let same = |t: &Value, ids: &[&str]| {
        let (n, usd) = rows_of(ids);
        assert_eq!(t["requests"].as_u64().unwrap(), n, "{t} vs rows of {ids:?}");
        assert!(
            (money(t) - usd).abs() < 1e-9,
            "{t} vs rows of {ids:?}: {usd}"
        );
        assert!(usd > 0.0);
    };

    // stats --by branch: each session under the branch it started on.
    let by_branch = json_of(env, repo, db_url, &["stats", "--by", "branch", "--json"]);
    let row = |v: &Value, key: &str| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no row {key} in {v}"))
            .clone()
    };
    same(&row(&by_branch, "main"), &[&story.s1, &story.s2]);
    same(&row(&by_branch, "feat"), &[&story.s3]);
    same(&by_branch["total"], &[&story.s1, &story.s2, &story.s3]);
    // stats --by commit: under the commit each started at.
    let by_commit = json_of(env, repo, db_url, &["stats", "--by", "commit", "--json"]);
    same(&row(&by_commit, &story.c1), &[&story.s1, &story.s2]);
    same(&row(&by_commit, &story.c2), &[&story.s3]);
    let by_project = json_of(env, repo, db_url, &["stats", "--by", "project", "--json"]);
    same(&row(&by_project, "alpha"), &[&story.s1]);
    same(&row(&by_project, "repo"), &[&story.s2, &story.s3]);

    // cost: a session counts for the commits its HEAD was on at its start or end.
    let cost = |args: &[&str]| {
        let mut all = vec!["cost", "--json"];
        all.extend_from_slice(args);
        json_of(env, repo, db_url, &all)
    };
    let ids = |v: &Value| -> Vec<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let on_c1 = cost(&["--commit", "HEAD~1"]);
    assert_eq!(ids(&on_c1), [story.s1.as_str(), story.s2.as_str()]);
    same(&on_c1["total"], &[&story.s1, &story.s2]);
    let on_c2 = cost(&["--commit", &story.c2]);
    assert_eq!(ids(&on_c2), [story.s2.as_str(), story.s3.as_str()]);
    same(&on_c2["total"], &[&story.s2, &story.s3]);
    let range = cost(&["--range", &format!("{}..feat", story.c1)]);
    assert_eq!(range["commits"], serde_json::json!([story.c2]));
    assert_eq!(range["total"], on_c2["total"]);
    let feat = cost(&["--branch", "feat"]);
    assert_eq!(ids(&feat), [story.s3.as_str()]);
    same(&feat["total"], &[&story.s3]);

    // Clear errors.
    let out = smartproxy(env, repo, db_url, &["cost", "--commit", "no-such-rev"]);
    assert!(!out.status.success());
    assert!(support::text(&out.stderr).contains("--commit no-such-rev: no such commit"));
    let out = smartproxy(env, env.path(), db_url, &["cost", "--commit", "HEAD"]);
    assert!(!out.status.success());
    assert!(support::text(&out.stderr).contains("not in a git repository"));
}

#[test]
fn three_sessions_two_commits_two_branches_on_sqlite() {
    if !support::require_tools(&["git", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let story = play(&env, None);
    let rows_of = |ids: &[&str]| -> (u64, f64) {
        let conn = env.ledger();
        let marks = vec!["?"; ids.len()].join(",");
        conn.query_row(
            &format!(
                "SELECT COUNT(*), TOTAL(cost_usd) FROM requests WHERE session_id IN ({marks})"
            ),
            rusqlite::params_from_iter(ids),
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
        )
        .unwrap()
    };
    check(&env, None, &story, &rows_of);
}

#[test]
fn three_sessions_two_commits_two_branches_on_postgres() {
    let Some(db) = TestDb::create("attrib") else {
        return;
    };
    if !support::require_tools(&["git", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let story = play(&env, Some(&db.url));
    assert!(
        !env.db.exists(),
        "nothing may be written to the SQLite ledger"
    );
    let rows_of = |ids: &[&str]| -> (u64, f64) {
        let list = ids
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        let from = format!(
            "FROM requests r JOIN strings st ON st.id = r.session WHERE st.text IN ({list})"
        );
        let n = db.count(&format!("SELECT count(*) {from}"));
        let nusd = db.count(&format!(
            "SELECT COALESCE(sum(r.cost_nusd), 0)::bigint {from}"
        ));
        (n as u64, nusd as f64 / 1e9)
    };
    check(&env, Some(&db.url), &story, &rows_of);
    // The daily roll-up carries each session's project.
    assert_eq!(
        db.count("SELECT sum(requests)::bigint FROM usage_daily WHERE project = 'alpha'"),
        1
    );
}

/// `hooks install`: the next commit's message carries the `AI-Cost:` trailer of the sessions on
/// the commit it builds on; a foreign hook is never replaced without --force; a hook whose
/// smartproxy is gone lets the commit through untouched.
#[test]
fn the_commit_hook_adds_the_cost_trailer_and_never_blocks() {
    if !support::require_tools(&["git", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let story = play(&env, None);
    let repo = story.repo.as_path();
    let expected = support::text(
        &smartproxy(&env, repo, None, &["cost", "--commit", "HEAD", "--trailer"]).stdout,
    );
    assert_eq!(expected.trim(), "AI-Cost: $0 (5 requests, 2 sessions)");
    let out = smartproxy(&env, repo, None, &["hooks", "install"]);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    git(
        &env,
        repo,
        &["commit", "-q", "--allow-empty", "-m", "three"],
    );
    let message = git(&env, repo, &["log", "-1", "--format=%B"]);
    assert_eq!(message, format!("three\n\n{}", expected.trim()));

    // Not smartproxy's hook: refused, and left as it was; uninstall leaves it too.
    let hook = repo.join(".git/hooks/prepare-commit-msg");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let out = smartproxy(&env, repo, None, &["hooks", "install"]);
    assert!(!out.status.success());
    assert!(support::text(&out.stderr).contains("is not smartproxy's"));
    assert!(
        !smartproxy(&env, repo, None, &["hooks", "uninstall"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(
        smartproxy(&env, repo, None, &["hooks", "install", "--force"])
            .status
            .success()
    );

    // smartproxy gone (neither at its path nor on PATH): the commit goes through untouched.
    let text = std::fs::read_to_string(&hook).unwrap();
    let bin = env!("CARGO_BIN_EXE_smartproxy");
    std::fs::write(&hook, text.replace(bin, "/nonexistent/smartproxy")).unwrap();
    git(&env, repo, &["commit", "-q", "--allow-empty", "-m", "four"]);
    assert_eq!(git(&env, repo, &["log", "-1", "--format=%B"]), "four");
    assert!(
        smartproxy(&env, repo, None, &["hooks", "uninstall"])
            .status
            .success()
    );
    assert!(!hook.exists());
}

/// The daemon's sessions take the config's `project:`, so `stats --by project` names it.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_sessions_take_the_configs_project() {
    let env = TestEnv::new();
    let config = env.write(
        "sp.yaml",
        "project: acme\nproviders:\n  - name: m\n    kind: mock\n",
    );
    let daemon = support::daemon::Daemon::start(&env, &config, &[], &[]);
    let reply = support::post_chat(
        &format!("{}/v1", daemon.listen),
        None,
        support::chat_body("gpt-4o-mini", false, "hi"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(daemon.stop().status.success());
    let sessions = json_of(&env, env.path(), None, &["sessions", "--json"]);
    assert_eq!(sessions[0]["kind"], "daemon");
    assert_eq!(sessions[0]["project"], "acme");
    assert_eq!(
        sessions[0]["head"],
        Value::Null,
        "a daemon has no folder of its own"
    );
    let by_project = json_of(
        &env,
        env.path(),
        None,
        &["stats", "--by", "project", "--json"],
    );
    assert_eq!(by_project["rows"][0]["key"], "acme");
    assert_eq!(by_project["rows"][0]["requests"], 1);
}
