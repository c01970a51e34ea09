//! The web dashboard's pages over the bench ledger: `smartproxy ui` on a free loopback port,
//! each page fetched whole (one plain HTTP/1.1 GET per sample, `Connection: close`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::die_with_bench::die_with_bench;

/// Stops `smartproxy ui` however the bench ends.
struct Ui(Child);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a page of rows must answer within (a list's next page, not a total).
const ROWS_TARGET_MS: f64 = 50.0;

/// Median milliseconds per page, named by path, and the page's target.
pub fn measure(
    bin: &Path,
    ledger: &Path,
    home: &Path,
    busiest_session: &str,
    repeat: usize,
) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let conn = rusqlite::Connection::open(ledger)?;
    let (request, session): (String, String) = conn.query_row(
        "SELECT id, session_id FROM requests WHERE session_id != ?1 ORDER BY started_ms DESC LIMIT 1",
        [busiest_session],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _ui = Ui(die_with_bench(&mut Command::new(bin))
        .args(["ui", "--port", &port.to_string()])
        .env_clear()
        .env("HOME", home)
        .env("SMARTPROXY_DB", ledger)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start smartproxy ui")?);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("smartproxy ui did not listen on {port}");
        }
        #[allow(
            clippy::disallowed_methods,
            reason = "the bench's own thread polls the process it measures"
        )]
        std::thread::sleep(Duration::from_millis(20));
    }
    let totals = super::TARGET_MS;
    let pages = [
        ("web: / (overview)".to_owned(), "/".to_owned(), totals),
        (
            "web: /performance".to_owned(),
            "/performance".to_owned(),
            totals,
        ),
        (
            "web: /sessions/{id} (a run)".to_owned(),
            format!("/sessions/{session}"),
            totals,
        ),
        (
            "web: /sessions/{id} (the busiest)".to_owned(),
            format!("/sessions/{busiest_session}"),
            totals,
        ),
        (
            "web: /request/{id}".to_owned(),
            format!("/request/{request}"),
            totals,
        ),
        // Where the money went: totals over 30 days and a year, per model and per tag.
        page("/breakdown?by=model&range=30d", totals),
        page("/breakdown?by=tag&range=30d", totals),
        page(
            "/breakdown?by=provider&from=2020-01-01&to=2020-12-31",
            totals,
        ),
        // Pages of sessions: the newest (keyset, from the start index), then by cost and
        // requests (every session's figures added up to sort them), filtered.
        page("/sessions", ROWS_TARGET_MS),
        page("/sessions?range=7d&status=ok", ROWS_TARGET_MS),
        page("/sessions?sort=cost", totals),
        page("/sessions?sort=requests&min_cost=0.01", totals),
        // Requests searched: the busiest session's first page and one model's today.
        page(
            &format!("/requests?session={busiest_session}"),
            ROWS_TARGET_MS,
        ),
        page("/requests?model=gpt-4o&outcome=failed", ROWS_TARGET_MS),
        // Over time (totals per period; latency percentiles from a capped sample).
        page("/trends?every=day&range=30d", totals),
        page("/trends?every=hour&range=7d", totals),
        page("/trends?every=month&from=2020-01-01&to=2020-12-31", totals),
        page("/budgets", totals),
    ];
    let mut out = Vec::new();
    for (name, path, target) in pages {
        let ms = super::median_ms(repeat, || {
            let status = get(port, &path).expect("the page answers");
            assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
        });
        out.push((name, ms, target));
    }
    Ok(out)
}

/// A page named by its path.
fn page(path: &str, target: f64) -> (String, String, f64) {
    (format!("web: {path}"), path.to_owned(), target)
}

/// Fetches `path` whole and returns the status line.
fn get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
