//! Frames drawn on ratatui's `TestBackend` at 80x24, wide and tiny, with and without colour.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use super::*;
use crate::dash::state::{Action, Breaker, Daemon, SessionView};
use crate::ledger::live::{DayTotals, GroupTotals};
use crate::ledger::query::SessionRow;
use crate::ledger::request_view::{Attempt, RequestDetail, RequestRow};

fn request(id: &str, model: &str, status: i64, cost: Option<f64>) -> RequestRow {
    RequestRow {
        id: id.to_owned(),
        session_id: Some("5e55e55e5e55".to_owned()),
        tag: Some("nightly".to_owned()),
        started_ms: 1_764_000_000_000,
        endpoint: "chat.completions".to_owned(),
        provider: Some("openai".to_owned()),
        requested_model: Some(model.to_owned()),
        served_model: Some(model.to_owned()),
        status,
        outcome: if status < 400 { "ok" } else { "upstream_error" }.to_owned(),
        prompt_tokens: Some(1200),
        completion_tokens: Some(345),
        cost_usd: cost,
        latency_ms: 812.0,
        attempts: 1,
        cache_status: "miss".to_owned(),
        billing: "api".to_owned(),
        ..RequestRow::default()
    }
}

fn group(key: &str, requests: u64, errors: u64, cost: f64) -> GroupTotals {
    GroupTotals {
        key: key.to_owned(),
        requests,
        errors,
        cost_usd: cost,
        ..GroupTotals::default()
    }
}

fn populated(no_color: bool) -> State {
    let mut state = State::new(no_color);
    state.update(Action::Requests(vec![
        request("req_3", "gpt-4o", 200, Some(0.0123)),
        request("req_2", "gpt-4o-mini", 429, None),
        request("req_1", "claude-sonnet-4", 200, Some(0.5)),
    ]));
    state.update(Action::Sessions(vec![SessionView {
        session: SessionRow {
            id: "5e55e55e5e55".to_owned(),
            kind: "run".to_owned(),
            tag: Some("nightly".to_owned()),
            program: Some("python".to_owned()),
            started_ms: 1_764_000_000_000,
            budget_usd: Some(2.0),
            ..SessionRow::default()
        },
        requests: 3,
        spent_usd: 1.5,
    }]));
    state.update(Action::Totals(DayTotals {
        all: group("total", 3, 1, 0.5123),
        by_session: vec![group("5e55e55e5e55", 3, 1, 0.5123)],
        by_model: vec![
            group("claude-sonnet-4", 1, 0, 0.5),
            group("gpt-4o", 1, 0, 0.0123),
            group("gpt-4o-mini", 1, 1, 0.0),
        ],
        by_provider: vec![group("openai", 3, 1, 0.5123)],
    }));
    state.update(Action::Daemon(Daemon::Up(vec![Breaker {
        provider: "openai".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        state: "open".to_owned(),
    }])));
    state
}

fn render(state: &State, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, state)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The line holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
}

fn colourless(buffer: &Buffer) -> bool {
    buffer
        .content()
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
}

#[test]
fn fits_80x24_without_colour() {
    let buffer = render(&populated(true), 80, 24);
    let screen = text(&buffer);
    assert!(colourless(&buffer), "NO_COLOR: no colour at all\n{screen}");
    assert!(screen.contains("today $0.5123 · 3 req · 1 err"), "{screen}");
    assert!(screen.contains("daemon up, 1 breaker(s) open"), "{screen}");
    let session = line_with(&screen, "nightly        ");
    assert!(
        session.contains("$1.5000 [########--]  75% of $2.0000"),
        "{session}"
    );
    assert!(line_with(&screen, "models").contains("claude-sonnet-4 $0.5000 (1)"));
    assert!(line_with(&screen, "breakers").contains("! openai/gpt-4o-mini open"));
    let failed = line_with(&screen, "gpt-4o-mini     ");
    assert!(failed.starts_with('!'), "an error is marked: {failed}");
    assert!(failed.contains("429"), "{failed}");
    let ok = line_with(&screen, "gpt-4o          ");
    assert!(
        ok.starts_with(' ') && ok.contains("1200/345") && ok.contains("812"),
        "{ok}"
    );
    assert!(line_with(&screen, "q quit").contains("/ filter"));
    assert_eq!(screen.lines().count(), 24);
}

#[test]
fn errors_are_red_and_the_selection_reversed_with_colour() {
    let buffer = render(&populated(false), 80, 24);
    let screen = text(&buffer);
    let y = screen.lines().position(|l| l.starts_with('!')).unwrap() as u16;
    assert_eq!(buffer[(0, y)].fg, Color::Red);
    let top = screen
        .lines()
        .position(|l| l.contains("$0.0123") && l.contains("1200/345"))
        .unwrap() as u16;
    assert!(
        buffer[(3, top)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED),
        "the newest request is selected"
    );
}

#[test]
fn a_wide_terminal_gets_a_side_column() {
    let buffer = render(&populated(true), 140, 40);
    let screen = text(&buffer);
    assert!(colourless(&buffer));
    assert!(screen.contains("today by model"), "{screen}");
    assert!(screen.contains("today by provider"), "{screen}");
    assert!(
        line_with(&screen, "nightly        ").contains("python"),
        "program shown"
    );
    assert!(line_with(&screen, "claude-sonnet-4  ").contains("$0.5000"));
}

#[test]
fn a_tiny_terminal_says_so_instead_of_panicking() {
    for (w, h) in [(40, 10), (1, 1), (79, 11), (0, 0)] {
        let screen = text(&render(&populated(true), w, h));
        if w >= 20 {
            assert!(screen.contains("too small"), "{w}x{h}: {screen}");
        }
    }
}

#[test]
fn the_detail_shows_every_field_and_the_attempts() {
    let mut state = populated(true);
    state.update(Action::Down);
    state.update(Action::OpenDetail);
    let mut detail = RequestDetail {
        request: request("req_2", "gpt-4o-mini", 429, None),
        attempts: vec![Attempt {
            n: 1,
            provider: Some("openai".to_owned()),
            model: Some("gpt-4o-mini".to_owned()),
            status: Some(429),
            error_class: Some("rate_limited".to_owned()),
            latency_ms: Some(40.0),
            waited_ms: None,
        }],
        session: None,
    };
    detail.request.error_code = Some("upstream_429".to_owned());
    state.update(Action::Detail(Some(Box::new(detail))));
    let wide = text(&render(&state, 140, 40));
    assert!(wide.contains("request req_2 ! failed"), "{wide}");
    assert!(line_with(&wide, "error code").contains("upstream_429"));
    assert!(wide.contains("fingerprint"));
    assert!(
        line_with(&wide, "#1 openai/gpt-4o-mini")
            .contains("│! #1 openai/gpt-4o-mini status 429 upstream 40ms rate_limited"),
        "{wide}"
    );
    let narrow = text(&render(&state, 80, 24));
    assert!(line_with(&narrow, "status ").contains("429"), "{narrow}");
    assert!(narrow.contains("Esc/q back"));
    assert!(
        narrow.contains("! #1 openai/gpt-4o-mini status 429"),
        "80x24 shows the attempts without scrolling:\n{narrow}"
    );
}

#[test]
fn the_filter_being_typed_shows_in_the_key_bar() {
    let mut state = populated(true);
    state.update(Action::StartFilter);
    for c in "mini".chars() {
        state.update(Action::FilterChar(c));
    }
    let screen = text(&render(&state, 80, 24));
    assert!(line_with(&screen, "filter:").contains("mini_"), "{screen}");
}

#[test]
fn a_session_whose_process_is_gone_reads_lost_not_running() {
    let mut state = populated(true);
    let view = |id: &str, lost: bool| SessionView {
        session: SessionRow {
            id: id.to_owned(),
            kind: "run".to_owned(),
            tag: Some(id.to_owned()),
            started_ms: 1_764_000_000_000,
            lost,
            ..SessionRow::default()
        },
        requests: 1,
        spent_usd: 0.0,
    };
    state.update(Action::Sessions(vec![
        view("alive", false),
        view("killed", true),
    ]));
    let screen = text(&render(&state, 80, 24));
    let alive = line_with(&screen, "alive");
    assert!(
        alive.contains("● alive") && !alive.contains("ended"),
        "{alive}"
    );
    let killed = line_with(&screen, "killed");
    assert!(
        !killed.contains('●') && killed.contains("1 req ended (lost)"),
        "{killed}"
    );
}

#[test]
fn an_empty_ledger_and_a_wrapped_command_read_plainly() {
    let mut state = State::new(true);
    state.log_path = Some("/tmp/run.log".to_owned());
    let screen = text(&render(&state, 80, 24));
    assert!(screen.contains("reading the ledger"), "{screen}");
    assert!(screen.contains("command running · output: /tmp/run.log"));
    state.update(Action::Requests(Vec::new()));
    state.update(Action::ChildExited(3));
    let screen = text(&render(&state, 80, 24));
    assert!(screen.contains("no requests yet"), "{screen}");
    assert!(screen.contains("command exited 3 (q quits)"));
}

#[test]
fn the_first_frame_reads_a_real_ledger() {
    let dir = tempfile::tempdir().unwrap();
    // SMARTPROXY_DASH_LEDGER: time the first frame over an existing (large) ledger instead.
    let path = std::env::var_os("SMARTPROXY_DASH_LEDGER").map_or_else(
        || {
            let path = dir.path().join("l.db");
            drop(crate::ledger::Ledger::open(&path).unwrap());
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(crate::ledger::LEGACY_WRITES).unwrap();
            conn.execute(
                "INSERT INTO sessions (id, kind, tag, started_ms, budget_usd) VALUES ('s1', 'run', 'bench', ?1, 1.0)",
                [crate::ledger::now_ms()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO requests (id, session_id, started_ms, endpoint, provider, served_model, status,
                     outcome, stream, cost_usd, latency_ms, attempts, cache_status)
                 VALUES ('r1', 's1', ?1, 'chat.completions', 'mock', 'gpt-4o', 503, 'upstream_error', 0, NULL, 3, 1, 'miss')",
                [crate::ledger::now_ms()],
            )
            .unwrap();
            path
        },
        std::path::PathBuf::from,
    );
    let started = std::time::Instant::now();
    let mut state = State::new(true);
    for action in crate::dash::source::first_frame(&path, &Default::default()).unwrap() {
        state.update(action);
    }
    let screen = text(&render(&state, 80, 24));
    eprintln!("first frame in {:?}", started.elapsed());
    assert!(screen.contains("requests ("), "{screen}");
    if std::env::var_os("SMARTPROXY_DASH_LEDGER").is_none() {
        assert!(line_with(&screen, "gpt-4o").starts_with('!'), "{screen}");
        assert!(screen.contains("bench"), "{screen}");
    }
}

#[test]
fn a_budget_nearly_used_up_is_marked_in_both_layouts() {
    use crate::budget::policy::Period;
    use crate::budget::standings::ScopeStanding;
    let standing = |scope: &str, period, cap_usd: f64, left_usd: f64| ScopeStanding {
        scope: scope.to_owned(),
        period,
        period_start_ms: 0,
        cap_usd,
        spent_usd: cap_usd - left_usd,
        reserved_usd: 0.0,
        left_usd,
        runs_out_ms: None,
        every_ms: None,
        frees_at_ms: None,
    };
    let mut state = populated(false);
    state.update(Action::Budgets(vec![
        standing("all", Period::Day, 5.0, 0.4),
        standing("key:editor", Period::Day, 3.0, 2.5),
        standing("all", Period::Month, 100.0, 60.0),
    ]));
    let buffer = render(&state, 80, 24);
    let screen = text(&buffer);
    let line = line_with(&screen, "budgets");
    assert!(
        line.contains("left ! day $0.40/$5 · month $60/$100 · key:editor day $2.50/$3"),
        "{line}"
    );
    let y = screen.lines().position(|l| l.contains("budgets")).unwrap() as u16;
    let x = line.chars().position(|c| c == '!').unwrap() as u16;
    assert_eq!(buffer[(x, y)].fg, Color::Red, "nearly used up: {line}");
    let wide = text(&render(&state, 160, 48));
    assert!(line_with(&wide, "budgets left").contains('┌'), "{wide}");
    assert!(wide.contains("! day $0.40/$5"), "{wide}");
    assert!(wide.contains("key:editor day $2.50/$3"), "{wide}");
    assert!(wide.contains("latency ms"), "{wide}");
}

#[test]
fn a_used_up_rolling_window_says_when_it_frees_up() {
    use crate::budget::policy::Period;
    use crate::budget::standings::ScopeStanding;
    let frees_at_ms = 1_796_697_900_000;
    let window = ScopeStanding {
        scope: "all".to_owned(),
        period: Period::Window(5 * 3_600_000),
        period_start_ms: 0,
        cap_usd: 10.0,
        spent_usd: 10.0,
        reserved_usd: 0.0,
        left_usd: 0.0,
        runs_out_ms: None,
        every_ms: Some(5 * 3_600_000),
        frees_at_ms: Some(frees_at_ms),
    };
    let mut state = populated(false);
    state.update(Action::Budgets(vec![window]));
    let wide = text(&render(&state, 160, 48));
    let want = format!(
        "! rolling 5h $0/$10 frees {}",
        crate::format::local_time(frees_at_ms)
    );
    assert!(wide.contains(&want), "{want} in {wide}");
}
