//! The dashboard's panels in a real terminal (tmux, NO_COLOR): the model column, latency per
//! model, budgets, the scrolling sessions panel and the attempts' times, at 80x24 and at
//! 160x48 (where the layout uses the width).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::TestEnv;
use support::tmux::Tmux;

/// Requests through real `run`s (one per tag), one per model, against the mock provider;
/// returns the config's path. `extra` is appended to the config.
fn ledger_with(env: &TestEnv, runs: &[(&str, &[&str])], extra: &str) -> String {
    ledger_with_body(env, runs, extra, "")
}

/// The same with `more` added to each request's JSON (`,"stream":true`).
fn ledger_with_body(env: &TestEnv, runs: &[(&str, &[&str])], extra: &str, more: &str) -> String {
    let config = env.write(
        "sp.yaml",
        &format!(
            "providers:\n  - name: offline\n    kind: mock\nresilience:\n  max_attempts: 1\n{extra}"
        ),
    );
    let config = config.to_str().unwrap().to_owned();
    for (tag, models) in runs {
        let script = format!(
            r#"for m in {}; do curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d "{{\"model\":\"$m\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]{more}}}"; done"#,
            models.join(" ")
        );
        let out = env
            .command()
            .args([
                "run", "--config", &config, "--tag", tag, "--", "sh", "-c", &script,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    config
}

/// `smartproxy dash` in a pane of `width`x`height`, without colour.
fn dash<'a>(env: &'a TestEnv, config: &str, width: u16, height: u16) -> Tmux<'a> {
    let shell = format!(
        "NO_COLOR=1 '{bin}' dash --config '{config}'; exec sleep 600",
        bin = support::BIN
    );
    Tmux::start_sized(env, &shell, width, height)
}

/// The screen's line that holds `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{screen}"))
}

#[test]
fn the_model_column_tells_versions_apart_at_80_columns() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let config = ledger_with(
        &env,
        &[("models", &["claude-sonnet-4-5-20250929", "claude-sonnet-4"])],
        "",
    );
    let tmux = dash(&env, &config, 80, 24);
    let screen = tmux.wait_for("the requests", |s| {
        s.contains("requests (2)") && s.contains("ms")
    });
    assert!(
        screen.contains("claude-sonne…-5-20250929"),
        "the long name keeps its version:\n{screen}"
    );
    assert!(
        screen.lines().any(|l| l.contains(" claude-sonnet-4 ")),
        "the short one whole:\n{screen}"
    );
    let header = line_with(&screen, "tokens");
    assert!(!header.contains("provider"), "no room for it: {header}");

    let wide = dash(&env, &config, 160, 48);
    let screen = wide.wait_for("the requests", |s| s.contains("requests (2)"));
    assert!(
        screen.contains("claude-sonnet-4-5-20250929"),
        "whole when there is room:\n{screen}"
    );
    assert!(
        line_with(&screen, "tokens").contains("provider"),
        "{screen}"
    );
}

#[test]
fn latency_per_model_shows_at_80_and_as_a_table_when_wide() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let config = ledger_with(&env, &[("lat", &["gpt-4o", "gpt-4o", "gpt-4o-mini"])], "");
    let tmux = dash(&env, &config, 80, 24);
    let screen = tmux.wait_for("the latency line", |s| s.contains("p50/p95 ms:"));
    let line = line_with(&screen, "p50/p95 ms:");
    assert!(line.starts_with("│latency"), "{line}");
    assert!(
        line.contains("gpt-4o ") && line.contains("gpt-4o-mini "),
        "{line}"
    );

    let wide = dash(&env, &config, 160, 48);
    let screen = wide.wait_for("the latency table", |s| {
        s.contains("requests (3)") && boxed(s, "latency ms").len() > 2
    });
    let table = boxed(&screen, "latency ms");
    assert!(
        table[0].contains("p50") && table[0].contains("p95"),
        "{screen}"
    );
    let row = table
        .iter()
        .find(|l| l.starts_with("gpt-4o "))
        .unwrap_or_else(|| panic!("no latency row:\n{screen}"));
    let numbers: Vec<&str> = row.split_whitespace().skip(1).collect();
    assert_eq!(numbers.first(), Some(&"2"), "two requests of gpt-4o: {row}");
    assert_eq!(numbers.len(), 3, "req, p50, p95: {row}");
}

/// The non-empty lines inside the box titled `title` (wherever it is), trimmed.
fn boxed(screen: &str, title: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(top) = lines.iter().position(|l| l.contains(title)) else {
        return Vec::new();
    };
    let column = lines[top].chars().position(|c| c == '┌').unwrap_or(0);
    lines[top + 1..]
        .iter()
        .map(|l| l.chars().skip(column).collect::<String>())
        .take_while(|l| !l.starts_with('└'))
        .map(|l| {
            l.trim_matches(|c: char| c == '│' || c.is_whitespace())
                .to_owned()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_budgets_panel_shows_what_is_left_of_each_scope() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let config = ledger_with(
        &env,
        &[("spend", &["gpt-4o", "gpt-4o"])],
        "budget:\n  daily_usd: 5\n  monthly_usd: 100\nclient_keys:\n  - name: editor\n    key_env: SMARTPROXY_EDITOR_KEY\n    budget_daily_usd: 3\n",
    );
    let left = budget_left(&env, &config, None);
    let day = format!("day {}/$5", left("all", "day"));
    let month = format!("month {}/$100", left("all", "month"));
    let key = format!("key:editor day {}/$3", left("key:editor", "day"));

    let tmux = dash(&env, &config, 80, 24);
    let screen = tmux.wait_for("the budgets line", |s| s.contains("budgets   left "));
    let line = line_with(&screen, "budgets   left ");
    assert!(
        line.contains(&format!("left {day} · {month} · {key}")),
        "process-wide first, then the key: {line}"
    );

    let wide = dash(&env, &config, 160, 48);
    let screen = wide.wait_for("the budgets box", |s| boxed(s, "budgets left").len() >= 3);
    assert_eq!(boxed(&screen, "budgets left"), vec![day, key, month]);
}

#[test]
fn the_sessions_panel_scrolls_and_says_where_it_is() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let runs: Vec<(String, [&str; 1])> = (1..=6).map(|i| (format!("tag{i}"), ["gpt-4o"])).collect();
    let runs: Vec<(&str, &[&str])> = runs.iter().map(|(t, m)| (t.as_str(), &m[..])).collect();
    let config = ledger_with(&env, &runs, "");
    let tags = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("tag")))
            .map(str::to_owned)
            .collect()
    };

    let tmux = dash(&env, &config, 80, 24);
    let screen = tmux.wait_for("the sessions", |s| s.contains("1-4 of 6"));
    assert!(
        screen.contains("[ ] sessions"),
        "the key bar names the keys:\n{screen}"
    );
    let first = tags(&boxed(&screen, "sessions today"));
    assert_eq!(first.len(), 4, "{screen}");
    tmux.keys(&["]", "]", "]"]);
    let screen = tmux.wait_for("the scrolled panel", |s| s.contains("3-6 of 6"));
    let last = tags(&boxed(&screen, "sessions today"));
    assert_eq!(last.len(), 4, "a full last page:\n{screen}");
    assert_eq!(last[..2], first[2..], "moved by two:\n{screen}");
    assert!(!last.contains(&first[0]), "{screen}");
    tmux.keys(&["["]);
    tmux.wait_for("one back up", |s| s.contains("2-5 of 6"));

    let wide = dash(&env, &config, 160, 48);
    let screen = wide.wait_for("every session", |s| {
        tags(&boxed(s, "sessions today")).len() == 6
    });
    assert!(
        !screen.contains("of 6"),
        "no scrolling when all fit:\n{screen}"
    );
    assert!(screen.contains("[ ] scroll sessions"), "{screen}");
}

#[test]
fn attempt_times_are_labelled_apart_from_the_total() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    ledger_with(&env, &[("whole", &["gpt-4o"])], "");
    let config = ledger_with_body(
        &env,
        &[("streamed", &["gpt-4o-mini"])],
        "",
        r#",\"stream\":true"#,
    );
    for (width, height) in [(80, 24), (160, 48)] {
        let tmux = dash(&env, &config, width, height);
        tmux.wait_for("the requests", |s| s.contains("requests (2)"));
        // The newest, streamed, is selected first.
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("the streamed detail", |s| s.contains("#1 offline/"));
        let attempt = line_with(&screen, "#1 offline/");
        assert!(attempt.contains("status 200 upstream "), "{attempt}");
        assert!(line_with(&screen, "total time").contains("ms"), "{screen}");
        assert!(screen.contains("a stream's too"), "{screen}");
        tmux.keys(&["Escape"]);
        tmux.wait_for("the list", |s| {
            s.contains("requests (2)") && !s.contains("#1 offline/")
        });
        tmux.keys(&["Down", "Enter"]);
        let screen = tmux.wait_for("the whole reply's detail", |s| {
            s.contains("#1 offline/")
                && s.lines()
                    .any(|l| l.contains("stream ") && l.contains("false"))
        });
        assert!(
            line_with(&screen, "#1 offline/").contains("status 200 upstream "),
            "{screen}"
        );
    }
}

/// What `smartproxy budget --json` says is left of `scope`'s `period` cap, as the dashboard
/// writes it; on the PostgreSQL ledger at `db` when given.
fn budget_left(env: &TestEnv, config: &str, db: Option<&str>) -> impl Fn(&str, &str) -> String {
    let mut command = env.command();
    command.args(["budget", "--config", config, "--json"]);
    if let Some(db) = db {
        command.env("SMARTPROXY_DB", db);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    move |scope: &str, period: &str| {
        let line = json["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["scope"] == scope && l["period"] == period)
            .unwrap_or_else(|| panic!("no {scope} {period} in {json}"));
        let usd = line["left_usd"].as_f64().unwrap();
        if usd.fract() == 0.0 {
            format!("${usd:.0}")
        } else {
            format!("${usd:.2}")
        }
    }
}

#[test]
fn the_budgets_panel_reads_a_postgres_ledger() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let Some(db) = support::postgres::TestDb::create("dashbudgets") else {
        return;
    };
    let env = TestEnv::new();
    let config = ledger_with(&env, &[], "budget:\n  daily_usd: 10\n  monthly_usd: 50\n");
    let script = r#"curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'"#;
    let out = env
        .command()
        .env("SMARTPROXY_DB", &db.url)
        .args([
            "run", "--config", &config, "--tag", "pgspend", "--", "sh", "-c", script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = budget_left(&env, &config, Some(&db.url));
    let expected = format!(
        "left day {}/$10 · month {}/$50",
        left("all", "day"),
        left("all", "month")
    );

    let shell = format!(
        "NO_COLOR=1 SMARTPROXY_DB='{url}' '{bin}' dash --config '{config}'; exec sleep 600",
        url = db.url,
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);
    let screen = tmux.wait_for("the budgets line", |s| {
        s.contains("requests (1)") && s.contains("budgets   left ")
    });
    assert!(
        line_with(&screen, "budgets   left ").contains(&expected),
        "{expected}:\n{screen}"
    );
}
