//! `smartproxy dash` in a real terminal: tmux at 80x24 with NO_COLOR, driven by keys, read back
//! with `capture-pane`. A private tmux socket per test, killed however the test ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::TestEnv;
use support::tmux::Tmux;

/// The pid a pane's shell wrote (`echo $$ > FILE` before `exec`ing dash).
fn read_pid(file: &std::path::Path) -> i32 {
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn dash_shows_filters_and_details_requests_in_a_real_terminal() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    env.write(
        "replies.yaml",
        "- First reply.\n- {status: 500, message: boom}\n- Third reply.\n",
    );
    let config = env.write(
        "sp.yaml",
        "providers:\n  - name: offline\n    kind: mock\nmock:\n  script: replies.yaml\nresilience:\n  max_attempts: 1\n",
    );
    let config = config.to_str().unwrap();
    // Three requests through a real `run`: gpt-4o ok, gpt-4o-mini failing with 500, gpt-4o ok.
    let script = r#"for m in gpt-4o gpt-4o-mini gpt-4o; do curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d "{\"model\":\"$m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; done"#;
    let out = env
        .command()
        .args([
            "run", "--config", config, "--tag", "dashtest", "--", "sh", "-c", script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = env.requests();
    assert_eq!(rows.len(), 3);
    let failed = rows.iter().find(|r| r["status"] == "500").unwrap();

    // After dash exits, the shell reports its status and whether the terminal is back in
    // canonical mode, then keeps the pane open for the capture.
    let shell = format!(
        "NO_COLOR=1 '{bin}' dash --config '{config}'; echo \"dash-exit=$?\"; stty -a | tr ' ' '\\n' | grep -x -- '-*icanon'; echo checked; exec sleep 600",
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);

    // Waits for the rows too: a capture can fall between the writes of one frame.
    let screen = tmux.wait_for("the requests", |s| {
        s.contains("requests (3)")
            && s.lines().filter(|l| l.contains("dashtest")).count() >= 4
            && s.contains("no daemon")
    });
    assert!(screen.contains("dashtest"), "{screen}");
    assert!(screen.contains("no daemon"), "{screen}");
    let error_row = screen
        .lines()
        .find(|l| l.starts_with('!'))
        .unwrap_or_else(|| panic!("no error row:\n{screen}"));
    assert!(
        error_row.contains("gpt-4o-mini") && error_row.contains("500"),
        "{error_row}"
    );
    let ok_row = screen
        .lines()
        .find(|l| l.contains(" gpt-4o ") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("no ok row:\n{screen}"));
    assert!(ok_row.contains("$0.0000"), "a sub-cent cost: {ok_row}");
    assert!(screen.contains("q quit"), "the key bar: {screen}");

    tmux.keys(&["/"]);
    tmux.wait_for("the filter prompt", |s| s.contains("filter: _"));
    tmux.keys(&["-l", "mini"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filtered list", |s| {
        s.contains("requests matching \"mini\" (1)") && s.lines().any(|l| l.starts_with('!'))
    });
    assert!(
        !screen
            .lines()
            .any(|l| l.contains(" gpt-4o ") && l.contains(" 200 ")),
        "other models are filtered out:\n{screen}"
    );

    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the detail", |s| {
        s.contains("error code") && s.contains("attempts")
    });
    assert!(screen.contains(&failed["id"]), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("error code") && l.contains(&failed["error_code"])),
        "{screen}"
    );

    // Escape and q sent together read as Alt-q: q waits until the detail is gone (its
    // `error code` field; the list's footer shows under the detail too).
    tmux.keys(&["Escape"]);
    tmux.wait_for("the list again", |s| {
        s.contains("q quit") && !s.contains("error code")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("dash to exit", |s| s.contains("checked"));
    assert!(screen.contains("dash-exit=0"), "{screen}");
    assert!(
        screen.lines().any(|l| l.trim() == "icanon"),
        "the terminal is back in canonical mode:\n{screen}"
    );
    assert!(
        !screen.contains("q quit"),
        "the alternate screen is gone:\n{screen}"
    );
    let alternate = tmux.cmd(&["display-message", "-p", "-t", "dash", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alternate.stdout).trim(), "0");
}

#[test]
fn dash_refuses_to_draw_without_a_terminal() {
    let env = TestEnv::new();
    let out = env.command().arg("dash").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a terminal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_dash_shows_the_session_and_its_output_goes_to_a_log() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let stop = env.path().join("stop");
    // The command makes one request, writes to stdout, and waits for the test to let it exit.
    let child = format!(
        r#"echo child-output; curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d '{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]}}'; while [ ! -f '{stop}' ]; do sleep 0.05; done; exit 3"#,
        stop = stop.display()
    );
    let child_file = env.write("child.sh", &child);
    let run = |stdin: &str| {
        format!(
            "NO_COLOR=1 '{bin}' run --dash --mock --tag wrapped -- sh '{child}' {stdin}; echo \"run-exit=$?\"; exec sleep 600",
            bin = support::BIN,
            child = child_file.display()
        )
    };

    // With the terminal on stdin: the dashboard stays after the command until q.
    let tmux = Tmux::start(&env, &run(""));
    let screen = tmux.wait_for("the session's request", |s| {
        s.contains("requests (1)")
            && s.contains("command running")
            && s.lines()
                .any(|l| l.contains("wrapped") && l.contains("gpt-4o-mini"))
    });
    assert!(screen.contains("wrapped"), "{screen}");
    assert!(
        !screen.contains("child-output"),
        "output goes to the log:\n{screen}"
    );
    std::fs::write(&stop, "").unwrap();
    tmux.wait_for("the command's end", |s| {
        s.contains("command exited 3 (q quits)")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("run to exit", |s| s.contains("run-exit="));
    assert!(
        screen.contains("run-exit=3"),
        "the command's status: {screen}"
    );
    let joined: String = screen.lines().collect();
    let log = joined
        .split("the command's output is in ")
        .nth(1)
        .and_then(|rest| rest.split(".log").next())
        .map(|p| format!("{p}.log"))
        .unwrap_or_else(|| panic!("no log path:\n{screen}"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("child-output"), "{log}: {text}");
    drop(tmux);

    // Without a terminal on stdin nobody may be there to press q: it ends with the command.
    std::fs::remove_file(&stop).unwrap();
    let tmux = Tmux::start(&env, &run("< /dev/null"));
    tmux.wait_for("the dashboard", |s| s.contains("command running"));
    std::fs::write(&stop, "").unwrap();
    let screen = tmux.wait_for("run to exit by itself", |s| s.contains("run-exit="));
    assert!(screen.contains("run-exit=3"), "{screen}");
}

#[test]
fn a_signal_ends_dash_with_the_terminal_restored() {
    if !support::require_tools(&["tmux"]) {
        return;
    }
    let env = TestEnv::new();
    let pid_file = env.path().join("dash.pid");
    let shell = format!(
        "sh -c 'echo $$ > \"{pid}\"; exec \"{bin}\" dash'; echo \"dash-exit=$?\"; stty -a | tr ' ' '\\n' | grep -x -- '-*icanon'; echo checked; exec sleep 600",
        pid = pid_file.display(),
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);
    tmux.wait_for("the first frame", |s| s.contains("q quit"));
    let pid = read_pid(&pid_file);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let screen = tmux.wait_for("dash to exit", |s| s.contains("checked"));
    assert!(screen.contains("dash-exit=0"), "{screen}");
    assert!(
        screen.lines().any(|l| l.trim() == "icanon"),
        "the terminal is back in canonical mode:\n{screen}"
    );
}

/// Starts dash in a tmux pane (in a session of its own with `detached`), closes the terminal
/// by killing tmux, and says whether dash was still running 10 s later (then it is killed).
fn outlives_its_terminal(detached: bool) -> bool {
    let env = TestEnv::new();
    let pid_file = env.path().join("dash.pid");
    // `setsid` puts dash in a session of its own: closing the terminal hangs it up, but the
    // SIGHUP goes to the terminal's session only. (setsid runs as the pane shell's child, no
    // group leader, so it needs no fork: the inner shell, then dash, keep its pid.)
    let shell = format!(
        "{setsid} sh -c 'echo $$ > \"{pid}\"; exec \"{bin}\" dash'; sleep 600",
        setsid = if detached { "setsid" } else { "" },
        pid = pid_file.display(),
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);
    tmux.wait_for("the first frame", |s| s.contains("q quit"));
    let pid = read_pid(&pid_file);
    drop(tmux);
    // Gone, or a zombie nobody reaps: either way it no longer runs.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.starts_with(" Z"))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() && Instant::now() < deadline {
        support::pause(Duration::from_millis(50));
    }
    let still_running = running();
    if still_running {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    still_running
}

/// crossterm 0.29 spins inside `event::poll` once its tty is hung up (issue #793), so a
/// dashboard whose window or SSH connection closed used to stay, at full CPU, even after the
/// SIGHUP asked it to quit.
#[test]
fn dash_exits_when_its_terminal_is_gone() {
    if !support::require_tools(&["tmux", "setsid"]) {
        return;
    }
    assert!(
        !outlives_its_terminal(false),
        "dash kept running after its terminal hung up (with a SIGHUP)"
    );
    assert!(
        !outlives_its_terminal(true),
        "dash kept running after its terminal hung up (no SIGHUP: a session of its own)"
    );
}

#[test]
fn daemon_dash_serves_and_shows_its_traffic_until_q() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let env = TestEnv::new();
    let config = env.write("sp.yaml", "providers:\n  - name: offline\n    kind: mock\n");
    let run_dir = env.path().join("run");
    let shell = format!(
        "SMARTPROXY_RUNTIME_DIR='{run}' NO_COLOR=1 '{bin}' daemon --dash --config '{config}' --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0; echo \"daemon-exit=$?\"; exec sleep 600",
        run = run_dir.display(),
        bin = support::BIN,
        config = config.display()
    );
    let tmux = Tmux::start(&env, &shell);
    tmux.wait_for("the daemon's breakers", |s| s.contains("daemon up"));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("smartproxy.pid")).unwrap())
            .unwrap();
    let listen = info["listen"].as_str().unwrap();
    // Isolated: curl would send the request to a developer's `http_proxy`.
    let out = support::isolated_command("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{listen}/v1/chat/completions"))
        .args(["-H", "content-type: application/json", "-d"])
        .arg(r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    // The breaker appears at the prober's next look (every two seconds).
    let screen = tmux.wait_for("the request and its breaker", |s| {
        s.contains("requests (1)") && s.contains("offline/gpt-4o-mini closed")
    });
    assert!(
        screen
            .lines()
            .any(|l| l.contains("gpt-4o-mini") && l.contains(" 200 ")),
        "{screen}"
    );
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the daemon to stop", |s| s.contains("daemon-exit="));
    assert!(screen.contains("daemon-exit=0"), "{screen}");
    assert!(screen.contains("logs are in"), "{screen}");
    // Stopping by q closes the daemon's session as a SIGTERM does: it does not stay running.
    let ended: Option<i64> = env
        .ledger()
        .query_row(
            "SELECT ended_ms FROM sessions WHERE kind = 'daemon'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        ended.is_some(),
        "the daemon's session is still open after q"
    );
}

/// Team mode: `dash` on a PostgreSQL ledger draws the requests written there (model and cost
/// in the first frame), and `q` quits.
#[test]
fn dash_reads_a_postgres_ledger() {
    if !support::require_tools(&["tmux"]) {
        return;
    }
    let Some(db) = support::postgres::TestDb::create("dash") else {
        return;
    };
    let env = TestEnv::new();
    let url = smartproxy::config::PgUrl::parse(&db.url).unwrap();
    let ledger =
        smartproxy::ledger::Ledger::open_at(&smartproxy::config::LedgerLocation::Postgres(url))
            .unwrap();
    let now = smartproxy::ledger::now_ms();
    ledger.session_started(smartproxy::ledger::SessionStart {
        id: "run-pgdash".to_owned(),
        parent_id: None,
        kind: "run",
        tag: Some("pgdash".to_owned()),
        program: Some("sh".to_owned()),
        cwd: None,
        pid: None,
        started_ms: now - 60_000,
        budget_usd: None,
        attribution: Default::default(),
    });
    ledger.flush(Duration::from_secs(30)).unwrap();
    for (i, (model, cost)) in [("pg-model-one", 0.375), ("pg-model-two", 1.25)]
        .into_iter()
        .enumerate()
    {
        let mut r = smartproxy::ledger::RequestRecord::new(
            format!("req_{i:028x}"),
            Some(std::sync::Arc::from("run-pgdash")),
            now - 30_000 + i as i64,
            "chat",
        );
        r.provider = Some("openai".to_owned());
        r.requested_model = Some(model.to_owned());
        r.served_model = Some(model.to_owned());
        r.status = 200;
        r.prompt_tokens = Some(10);
        r.completion_tokens = Some(5);
        r.cost_usd = Some(cost);
        r.latency_ms = 12.0;
        r.attempt_log = vec![smartproxy::ledger::AttemptRow {
            provider: "openai".to_owned(),
            model: model.to_owned(),
            status: Some(200),
            error_class: None,
            latency_ms: 11.0,
            waited_ms: 0.0,
        }];
        ledger.record(r);
    }
    ledger.flush(Duration::from_secs(30)).unwrap();
    drop(ledger);

    let shell = format!(
        "NO_COLOR=1 SMARTPROXY_DB='{url}' '{bin}' dash; echo \"dash-exit=$?\"; exec sleep 600",
        url = db.url,
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);
    let screen = tmux.wait_for("the requests", |s| {
        s.contains("requests (2)") && s.contains("pg-model-two") && s.contains("pg-model-one")
    });
    let row = |model: &str| {
        screen
            .lines()
            .find(|l| l.contains(model) && l.contains(" 200 "))
            .unwrap_or_else(|| panic!("no row of {model}:\n{screen}"))
            .to_owned()
    };
    assert!(row("pg-model-one").contains("$0.3750"), "{screen}");
    assert!(row("pg-model-two").contains("$1.2500"), "{screen}");
    assert!(screen.contains("pgdash"), "{screen}");
    // Enter: the newest request's every field and its attempt, read from PostgreSQL.
    tmux.keys(&["Enter"]);
    let id = format!("req_{:028x}", 1);
    let screen = tmux.wait_for("the detail", |s| s.contains(&id) && s.contains("attempts"));
    assert!(screen.contains("pg-model-two"), "{screen}");
    // Escape and q sent together read as Alt-q: q waits until the detail is gone (its
    // `error code` field; the list's footer shows under the detail too).
    tmux.keys(&["Escape"]);
    tmux.wait_for("the list again", |s| {
        s.contains("q quit") && !s.contains("error code")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("dash to exit", |s| s.contains("dash-exit="));
    assert!(screen.contains("dash-exit=0"), "{screen}");
}

/// An unreachable PostgreSQL ledger: the dashboard comes up, says so in its header (password
/// redacted), keeps answering keys, and quits on `q`.
#[test]
fn dash_on_an_unreachable_postgres_says_so_and_still_quits() {
    if !support::require_tools(&["tmux"]) {
        return;
    }
    let env = TestEnv::new();
    let shell = format!(
        "NO_COLOR=1 SMARTPROXY_DB='postgres://bob:hunter2@127.0.0.1:1/team?connect_timeout=1' '{bin}' dash; echo \"dash-exit=$?\"; exec sleep 600",
        bin = support::BIN
    );
    let tmux = Tmux::start(&env, &shell);
    let screen = tmux.wait_for("the error in the header", |s| {
        s.contains("PostgreSQL ledger") && s.contains("q quit")
    });
    assert!(!screen.contains("hunter2"), "{screen}");
    tmux.keys(&["?"]);
    tmux.wait_for("the help", |s| s.contains("this help"));
    // Escape and q sent together read as Alt-q: q waits until the help is gone.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the list again", |s| !s.contains("this help"));
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("dash to exit", |s| s.contains("dash-exit="));
    assert!(screen.contains("dash-exit=0"), "{screen}");
}

/// Team mode: `run --dash` on a PostgreSQL ledger shows the child's request (model and cost)
/// in its first frames, read back from PostgreSQL; `q` closes the dashboard while the command
/// runs, and run exits with the command's status once it ends.
#[test]
fn run_dash_reads_a_postgres_ledger() {
    if !support::require_tools(&["tmux", "curl"]) {
        return;
    }
    let Some(db) = support::postgres::TestDb::create("rundash") else {
        return;
    };
    let env = TestEnv::new();
    let stop = env.path().join("stop");
    let child = format!(
        r#"curl -s -o /dev/null "$OPENAI_BASE_URL/chat/completions" -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d '{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]}}'; while [ ! -f '{stop}' ]; do sleep 0.05; done; exit 3"#,
        stop = stop.display()
    );
    let child_file = env.write("child.sh", &child);
    let shell = format!(
        "NO_COLOR=1 SMARTPROXY_DB='{url}' '{bin}' run --dash --mock --tag pgwrapped -- sh '{child}'; echo \"run-exit=$?\"; exec sleep 600",
        url = db.url,
        bin = support::BIN,
        child = child_file.display()
    );
    let tmux = Tmux::start(&env, &shell);
    let screen = tmux.wait_for("the child's request", |s| {
        s.contains("requests (1)")
            && s.contains("command running")
            && s.lines()
                .any(|l| l.contains("pgwrapped") && l.contains("gpt-4o-mini"))
    });
    // The cost PostgreSQL holds for the request is the one drawn.
    let cost: f64 = db
        .scalar("SELECT cost_nusd::text FROM requests")
        .parse::<f64>()
        .unwrap()
        / 1e9;
    let row = screen
        .lines()
        .find(|l| l.contains("gpt-4o-mini") && l.contains(" 200 "))
        .unwrap_or_else(|| panic!("no row of the request:\n{screen}"));
    assert!(row.contains(&format!("${cost:.4}")), "{cost}:\n{screen}");
    // q closes the dashboard at once, though the command still runs.
    tmux.keys(&["q"]);
    tmux.wait_for("the dashboard to close", |s| {
        !s.contains("command running") && s.contains("the command's output goes to")
    });
    std::fs::write(&stop, "").unwrap();
    let screen = tmux.wait_for("run to exit", |s| s.contains("run-exit="));
    assert!(
        screen.contains("run-exit=3"),
        "the command's status: {screen}"
    );
}
