//! `smartproxy doctor`: checks the config, the ledger, the daemon and the default listeners, and
//! says for each whether it is ok, worth a look (warn) or broken (fail), with a one-line fix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{daemon, pid_file};
use crate::config::{Config, LedgerLocation, PgUrl, paths};
use crate::printer;

/// How long the daemon's `/healthz` may take to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy doctor\n  smartproxy doctor --json | jq '.checks[] | select(.status != \"ok\")'\n\n\
Checks: the config (which file, does it load, which providers are usable and which lack their key\n\
variable), the ledger (path, writable, WAL journal, schema version, size), the price table\n\
(version, and the overlay of `prices update` if any), the daemon (pid file,\n\
GET /healthz on its public listener) and whether the listeners it would use are free.\n\
Exit status: 0 when nothing failed (warnings allowed), 1 otherwise."
)]
pub struct DoctorArgs {
    /// Print `{"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Status,
    detail: String,
    /// What to do about it; `None` when nothing needs doing.
    fix: Option<String>,
}

fn check(name: &str, status: Status, detail: String, fix: Option<&str>) -> Check {
    Check {
        name: name.to_owned(),
        status,
        detail,
        fix: fix.map(str::to_owned),
    }
}

pub fn doctor(args: &DoctorArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let mut checks = Vec::new();
    let config = config_checks(config_path, &mut checks);
    let database = config
        .as_ref()
        .map_or_else(fallback_database, |c| c.database.clone());
    match &database {
        LedgerLocation::Sqlite(path) => checks.push(ledger_check(path)),
        LedgerLocation::Postgres(url) => checks.extend(postgres_checks(url)),
    }
    if let Some(config) = &config {
        checks.push(capture_check(&config.capture));
    }
    checks.push(prices_check());
    let running = pid_file::read_pid_file().filter(|f| pid_file::alive(f.pid));
    checks.push(daemon_check(running.as_ref()));
    let listen = config
        .as_ref()
        .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4100)), |c| c.listen);
    let mut addrs = vec![("listener", Ok(listen))];
    addrs.push(("admin listener", daemon::admin_listen_from_env()));
    for (name, addr) in addrs {
        checks.push(match addr {
            Ok(addr) => listener_check(name, addr, running.as_ref()),
            Err(err) => check(
                name,
                Status::Fail,
                format!("{err:#}"),
                Some("set SMARTPROXY_ADMIN_LISTEN to IP:PORT, e.g. 127.0.0.1:4101, or unset it"),
            ),
        });
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        printer::out(&json!({"ok": !failed, "checks": checks}).to_string());
    } else {
        printer::out(&render(&checks));
    }
    Ok(if failed { super::EXIT_FAILURE } else { 0 })
}

fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let mut lines = c.detail.lines();
        out.push_str(&format!(
            "{tag}  {:width$}  {}\n",
            c.name,
            lines.next().unwrap_or_default()
        ));
        for line in lines {
            out.push_str(&format!("      {:width$}  {line}\n", ""));
        }
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:width$}  fix: {fix}\n", ""));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} failed",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

/// The config check, and the providers check when it loads.
fn config_checks(explicit: Option<&Path>, checks: &mut Vec<Check>) -> Option<Config> {
    let config = match super::load_config(explicit) {
        Ok(config) => config,
        Err(err) => {
            checks.push(check(
                "config",
                Status::Fail,
                format!("{err:#}"),
                Some("edit the file at the line shown; `smartproxy config validate` re-checks it"),
            ));
            return None;
        }
    };
    let enabled: Vec<_> = config.providers.iter().filter(|p| p.enabled).collect();
    let unkeyed: Vec<_> = enabled.iter().filter(|p| p.missing_credential()).collect();
    let usable = enabled.len() - unkeyed.len();
    checks.push(check(
        "config",
        Status::Ok,
        format!(
            "{}: {} provider(s), {usable} usable",
            config.source_display(),
            config.providers.len()
        ),
        None,
    ));
    if !unkeyed.is_empty() {
        let names: Vec<String> = unkeyed
            .iter()
            .map(|p| {
                format!(
                    "{} ({} is unset)",
                    p.name,
                    p.api_key_env.as_deref().unwrap_or("key variable")
                )
            })
            .collect();
        checks.push(check(
            "providers",
            Status::Warn,
            format!("no key for {}", names.join(", ")),
            Some(
                "export the variable (or keep keys in an EnvironmentFile), or set `enabled: false`",
            ),
        ));
    } else if usable == 0 {
        checks.push(check(
            "providers",
            Status::Warn,
            "no usable provider: requests can only fail".to_owned(),
            Some(
                "export OPENAI_API_KEY or ANTHROPIC_API_KEY, add a provider to the config, or try `smartproxy run --mock`",
            ),
        ));
    }
    Some(config)
}

/// Whether bodies are captured, where, and whether they are encrypted at rest.
fn capture_check(c: &crate::config::CaptureConfig) -> Check {
    const MAKE_KEY: &str = "export SMARTPROXY_CAPTURE_KEY=$(openssl rand -hex 32)";
    let key = crate::capture::cipher_from_env();
    if !c.enabled {
        return check(
            "capture",
            Status::Ok,
            "off: no request or response body is stored".to_owned(),
            None,
        );
    }
    let place = match c.store {
        crate::config::CaptureStoreKind::File => c.path.display().to_string(),
        crate::config::CaptureStoreKind::Memory => "memory".to_owned(),
    };
    match key {
        Err(err) => check(
            "capture",
            Status::Fail,
            format!("on ({place}), but {err:#}"),
            Some(MAKE_KEY),
        ),
        Ok(Some(_)) => check(
            "capture",
            Status::Ok,
            format!("on: bodies kept in {place}, encrypted with SMARTPROXY_CAPTURE_KEY"),
            None,
        ),
        Ok(None) if c.store == crate::config::CaptureStoreKind::Memory => check(
            "capture",
            Status::Ok,
            "on: bodies kept in the proxy's memory only".to_owned(),
            None,
        ),
        Ok(None) => check(
            "capture",
            Status::Warn,
            format!("on: prompts and replies are stored in {place} UNENCRYPTED"),
            Some(MAKE_KEY),
        ),
    }
}

/// The built-in price table's version, and the overlay of `prices update` if one is installed.
fn prices_check() -> Check {
    match crate::pricing::Overlay::load(&paths::price_overlay()) {
        Ok(overlay) => check(
            "prices",
            Status::Ok,
            super::prices::header(overlay.as_ref()),
            None,
        ),
        Err(err) => check(
            "prices",
            Status::Warn,
            format!(
                "price table: {}; the overlay is ignored: {err}",
                crate::pricing::table_label()
            ),
            Some(
                "install a valid file with `smartproxy prices update --file PATH`, or remove it with `smartproxy prices reset`",
            ),
        ),
    }
}

/// The ledger when the config does not load: `SMARTPROXY_DB` or the platform default (a bad
/// URL there is already reported among the config's errors).
fn fallback_database() -> LedgerLocation {
    match std::env::var("SMARTPROXY_DB")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(text) if LedgerLocation::is_postgres_text(&text) => PgUrl::parse(&text).map_or_else(
            |_| LedgerLocation::Sqlite(paths::default_database()),
            LedgerLocation::Postgres,
        ),
        Some(text) => LedgerLocation::Sqlite(paths::expand_home(&text)),
        None => LedgerLocation::Sqlite(paths::default_database()),
    }
}

/// The clock difference past which the server's and this machine's times disagree enough to
/// put rows in the wrong day.
const MAX_SKEW_MS: i64 = 5_000;

/// A PostgreSQL ledger: reachable, its schema version, and its clock against this machine's.
/// The URL is shown without its password.
fn postgres_checks(url: &PgUrl) -> Vec<Check> {
    let info = match crate::ledger::postgres::check(url) {
        Ok(info) => info,
        Err(err) => {
            let text = err.to_string();
            // A TLS refusal says what to change in the URL itself.
            let fix = if text.contains("TLS") || text.contains("sslrootcert") {
                "change the URL's sslmode or sslrootcert as the message says"
            } else {
                "check that PostgreSQL runs and that the URL's user, host, port and database are right"
            };
            return vec![check("ledger", Status::Fail, text, Some(fix))];
        }
    };
    let ledger = if info.schema_version > info.known_version {
        check(
            "ledger",
            Status::Fail,
            format!(
                "{url} (PostgreSQL): schema version {}, newer than this smartproxy knows ({})",
                info.schema_version, info.known_version
            ),
            Some("upgrade smartproxy"),
        )
    } else if info.schema_version == 0 {
        check(
            "ledger",
            Status::Ok,
            format!(
                "{url} (PostgreSQL, reachable; no schema yet: the first run or daemon creates it)"
            ),
            None,
        )
    } else {
        check(
            "ledger",
            Status::Ok,
            format!(
                "{url} (PostgreSQL, schema version {} of {})",
                info.schema_version, info.known_version
            ),
            None,
        )
    };
    let skew = info.clock_skew_ms;
    let clock = if skew.abs() > MAX_SKEW_MS {
        check(
            "ledger clock",
            Status::Warn,
            format!(
                "this machine's clock is {:.1} s {} the PostgreSQL server's",
                skew.abs() as f64 / 1000.0,
                if skew > 0 { "behind" } else { "ahead of" }
            ),
            Some("synchronise the clocks (NTP): rows are dated by the machine that writes them"),
        )
    } else {
        check(
            "ledger clock",
            Status::Ok,
            format!("within {} ms of the PostgreSQL server's", skew.abs()),
            None,
        )
    };
    let tls = url.tls();
    let (status, detail, fix) = match (&info.tls_version, tls.mode) {
        (None, _) => (
            Status::Ok,
            "not encrypted (sslmode=disable)".to_owned(),
            Some("across a network, add ?sslmode=verify-full&sslrootcert=PATH to the URL"),
        ),
        (Some(v), crate::config::SslMode::VerifyFull) => (
            Status::Ok,
            format!("encrypted ({v}); certificate and host name checked (verify-full)"),
            None,
        ),
        (Some(v), _) if tls.verifies_chain() => (
            Status::Ok,
            format!(
                "encrypted ({v}); certificate checked, host name not ({})",
                tls.mode_name()
            ),
            None,
        ),
        (Some(v), _) => (
            Status::Warn,
            format!("encrypted ({v}); the server's certificate is not checked (require)"),
            Some("add sslrootcert=PATH (the CA's PEM) and sslmode=verify-full to the URL"),
        ),
    };
    let transport = check("ledger TLS", status, detail, fix);
    vec![ledger, transport, clock]
}

/// Whether a file can be made in `dir` (the ledger's `-wal` and `-shm` files live beside it).
fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".smartproxy-doctor-{}", std::process::id()));
    let made = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    made
}

fn ledger_check(path: &Path) -> Check {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !path.exists() {
        let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
        return if dir_writable(existing) {
            check(
                "ledger",
                Status::Ok,
                format!(
                    "{} (not created yet; the first command that records creates it)",
                    path.display()
                ),
                None,
            )
        } else {
            check(
                "ledger",
                Status::Fail,
                format!(
                    "{}: cannot create it, {} is not writable",
                    path.display(),
                    existing.display()
                ),
                Some("point SMARTPROXY_DB (or `database:` in the config) at a writable place"),
            )
        };
    }
    match inspect_ledger(path) {
        Err(err) => check(
            "ledger",
            Status::Fail,
            format!("{}: {err}", path.display()),
            Some("check the file's owner and permissions, or move it aside to start a new ledger"),
        ),
        Ok(info) => {
            let writable =
                dir_writable(dir) && std::fs::OpenOptions::new().write(true).open(path).is_ok();
            let (status, fix) = ledger_verdict(writable, &info);
            let detail = format!(
                "{}: schema {}/{}, journal {}, {}{}",
                path.display(),
                info.found,
                info.known,
                info.journal,
                human_bytes(info.bytes),
                if writable { "" } else { "; not writable" }
            );
            check("ledger", status, detail, fix)
        }
    }
}

fn ledger_verdict(writable: bool, info: &LedgerInfo) -> (Status, Option<&'static str>) {
    let wal = info.journal.eq_ignore_ascii_case("wal");
    let (status, fix) = match () {
        () if !writable => (Status::Fail, "make the file and its folder writable by you"),
        () if info.found > info.known => (Status::Fail, "a newer smartproxy wrote it: upgrade"),
        () if !wal => (
            Status::Warn,
            "smartproxy switches it to WAL when it next opens it",
        ),
        () if info.found < info.known => {
            (Status::Warn, "smartproxy migrates it when it next opens it")
        }
        () => return (Status::Ok, None),
    };
    (status, Some(fix))
}

struct LedgerInfo {
    found: i64,
    known: i64,
    journal: String,
    bytes: u64,
}

/// Reads the ledger's state without changing it (no migration, no journal switch).
fn inspect_ledger(path: &Path) -> rusqlite::Result<LedgerInfo> {
    let conn = crate::db::open_read_only(path)?;
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let (found, known) = crate::ledger::keys::schema_version(&conn)?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(LedgerInfo {
        found,
        known,
        journal,
        bytes: size(path) + size(Path::new(&wal)),
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn daemon_check(running: Option<&pid_file::PidFile>) -> Check {
    let Some(file) = running else {
        let pid_path = pid_file::pid_path();
        return if pid_path.exists() {
            check(
                "daemon",
                Status::Warn,
                format!("not running, but {} is left behind", pid_path.display()),
                Some("`smartproxy daemon stop` clears it, or delete the file"),
            )
        } else {
            check(
                "daemon",
                Status::Ok,
                "not running (only editors and IDEs need it; `run` starts its own proxy)"
                    .to_owned(),
                None,
            )
        };
    };
    match health(&file.listen) {
        Ok(()) => check(
            "daemon",
            Status::Ok,
            format!(
                "running (pid {}), http://{}/healthz answers",
                file.pid, file.listen
            ),
            None,
        ),
        Err(err) => check(
            "daemon",
            Status::Fail,
            format!(
                "running (pid {}) but http://{}/healthz failed: {err}",
                file.pid, file.listen
            ),
            Some(
                "see its log (`smartproxy daemon status`), then `smartproxy daemon stop` and start it again",
            ),
        ),
    }
}

/// GET /healthz on the daemon's public listener (on loopback when it listens on every address).
fn health(listen: &str) -> anyhow::Result<()> {
    let mut addr: SocketAddr = listen.parse()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(HEALTH_TIMEOUT)
            .build()?;
        let resp = client.get(format!("http://{addr}/healthz")).send().await?;
        anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
        Ok(())
    })
}

fn listener_check(name: &str, addr: SocketAddr, running: Option<&pid_file::PidFile>) -> Check {
    let owned = running.is_some_and(|f| [&f.listen, &f.admin_listen].contains(&&addr.to_string()));
    if owned {
        return check(
            name,
            Status::Ok,
            format!("{addr}: held by the daemon"),
            None,
        );
    }
    match std::net::TcpListener::bind(addr) {
        Ok(_) => check(name, Status::Ok, format!("{addr}: free"), None),
        Err(err) => check(
            name,
            Status::Warn,
            format!("{addr}: cannot bind it: {err}"),
            Some(
                "another program holds it: stop it, or give the daemon --listen / --admin-listen (SMARTPROXY_LISTEN / SMARTPROXY_ADMIN_LISTEN)",
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
    }

    #[test]
    fn the_report_lines_up_and_counts() {
        let text = render(&[
            check(
                "config",
                Status::Ok,
                "a.yaml: 1 provider(s), 1 usable".to_owned(),
                None,
            ),
            check("ledger", Status::Fail, "x".to_owned(), Some("do y")),
        ]);
        assert!(text.contains("ok    config  a.yaml"), "{text}");
        assert!(
            text.contains("FAIL  ledger  x\n              fix: do y"),
            "{text}"
        );
        assert!(text.ends_with("1 ok, 0 warning(s), 1 failed"), "{text}");
    }
}
