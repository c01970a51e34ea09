//! Per-project budgets (`budget.projects`): a project's sessions together stop at its daily
//! limit, across processes, with a refusal that names it; another project is not held by it.
//! On SQLite (the ledger file's books) and PostgreSQL (`smartproxy_admit`'s counters).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::postgres::TestDb;
use support::upstream::{Behavior, MockUpstream};
use support::{TestEnv, post_chat, run_to_end};

/// Each request reserves ~$0.00103 (gpt-4o, max_tokens 100): two fit under $0.0025.
const CONFIG: &str = "budget:\n  timezone: utc\n  on_exceed: refuse\n  projects:\n    alpha: {daily_usd: 0.0025}\n    beta: {monthly_usd: 100}\n";

async fn statuses(
    env: &TestEnv,
    config: &str,
    project: &str,
    db: Option<&str>,
    n: usize,
) -> Vec<(u16, String)> {
    let mut envs = vec![("UPSTREAM_KEY", "k")];
    if let Some(url) = db {
        envs.push(("SMARTPROXY_DB", url));
    }
    let run = env.start_run(&["run", "--config", config, "--project", project], &envs);
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let mut out = Vec::new();
    for _ in 0..n {
        let reply = post_chat(&run.base_url, Some(&run.key), body.to_string()).await;
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        out.push((reply.status, message));
    }
    assert!(run.finish(0).status.success());
    out
}

async fn scenario(db: Option<&str>) {
    let upstream = MockUpstream::start();
    // Every reply bills all it may (~$0.001025): what is spent never falls below what was
    // reserved, so the refusals do not depend on when the rows are written.
    upstream.push((0..20).map(|_| Behavior::SpendsAll {
        prompt_tokens: 10,
        usage_extra: serde_json::json!({}),
    }));
    let env = TestEnv::new();
    let config = env.upstream_config(&upstream.base_url(), CONFIG);
    let config = config.to_str().unwrap();
    let first = statuses(&env, config, "alpha", db, 3).await;
    let codes: Vec<u16> = first.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes, [200, 200, 429], "{first:?}");
    assert!(
        first[2].1.starts_with("project daily budget"),
        "{}",
        first[2].1
    );
    // Another process of the same project: its books are shared, so refused at once.
    let again = statuses(&env, config, "alpha", db, 1).await;
    assert_eq!(again[0].0, 429, "{again:?}");
    // Another project is not held by alpha's limit.
    let beta = statuses(&env, config, "beta", db, 3).await;
    assert!(beta.iter().all(|(s, _)| *s == 200), "{beta:?}");
    assert_eq!(upstream.calls(), 5);

    // `budget` shows the project scopes.
    let mut cmd = env.command();
    cmd.args(["budget", "--json", "--config", config]);
    if let Some(url) = db {
        cmd.env("SMARTPROXY_DB", url);
    }
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    let text = support::text(&out.stdout);
    // The same lines from either backend: each project's limits with what its sessions spent.
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap();
    let scope = |name: &str, period: &str| {
        shown["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == name && s["period"] == period)
            .unwrap_or_else(|| panic!("no {name} {period} in {text}"))
            .clone()
    };
    let alpha = scope("project:alpha", "day");
    assert_eq!(alpha["cap_usd"], 0.0025);
    assert!(
        (alpha["spent_usd"].as_f64().unwrap() - 2.0 * 0.001025).abs() < 1e-9,
        "{text}"
    );
    assert!(
        scope("project:beta", "month")["spent_usd"]
            .as_f64()
            .unwrap()
            > 0.003
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_projects_daily_limit_stops_its_sessions_on_sqlite() {
    scenario(None).await;
}

#[test]
fn a_projects_daily_limit_stops_its_sessions_on_postgres() {
    // Made outside any runtime: the helper runs one of its own.
    let Some(db) = TestDb::create("projbudget") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(scenario(Some(&db.url)));
}

/// A bad `budget.projects` entry or `project:` is named by file, line and key.
#[test]
fn bad_project_settings_name_their_line_and_key() {
    let env = TestEnv::new();
    let text = env.invalid_config(
        "smartproxy.yaml",
        "project: \"\"\nbudget:\n  projects:\n    alpha:\n      daily_usd: -1\n",
    );
    assert!(
        text.contains("smartproxy.yaml:5: `budget.projects.alpha.daily_usd`"),
        "{text}"
    );
    assert!(
        text.contains("smartproxy.yaml:1: `project`: a project name cannot be empty"),
        "{text}"
    );
    let mut cmd = env.command();
    cmd.args(["run", "--mock", "--project", " ", "--", "true"]);
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(support::text(&out.stderr).contains("--project: a project name cannot be empty"));
}
