//! Logging setup: tracing to stderr (or a file), never stdout, filtered by `SMARTPROXY_LOG_LEVEL`
//! or `--log-level`. Logs never carry prompts, responses, bodies or keys.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Where logs go instead of stderr while a full-screen view owns the terminal.
static REDIRECT: Mutex<Option<File>> = Mutex::new(None);

/// Keeps the subscriber alive for the life of the process.
pub struct LogGuard;

/// Installs the global subscriber. `level` is a tracing filter such as `warn` or
/// `smartproxy=debug`; an invalid filter falls back to `warn`.
pub fn init(level: Option<String>) -> LogGuard {
    let filter = level
        .or_else(|| std::env::var("SMARTPROXY_LOG_LEVEL").ok())
        .unwrap_or_else(|| "warn".to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        // Colour codes only for a terminal: not in the daemon's log file or a pipe.
        .with_ansi(colors_wanted())
        .with_target(false)
        .try_init();
    LogGuard
}

/// Colours only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn colors_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sends logs to `path` (appended) until the returned guard is dropped, so they do not
/// scribble over a full-screen view (`smartproxy dash`).
pub fn redirect_to(path: &Path) -> std::io::Result<Redirect> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    *REDIRECT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
    Ok(Redirect)
}

/// Logs go back to stderr when this is dropped.
pub struct Redirect;

impl Drop for Redirect {
    fn drop(&mut self) {
        *REDIRECT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Writes a log line to the redirect file when there is one, to stderr otherwise.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut redirect = REDIRECT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match redirect.as_mut() {
            Some(file) => file.write(buf),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut redirect = REDIRECT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match redirect.as_mut() {
            Some(file) => file.flush(),
            None => std::io::stderr().flush(),
        }
    }
}
