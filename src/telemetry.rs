//! Logging setup: tracing to stderr (or a file), never stdout, filtered by `SMARTPROXY_LOG_LEVEL`
//! or `--log-level`. Logs never carry prompts, responses, bodies or keys.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
        // Stderr, or the file `printer::redirect_stderr` names while a full-screen view is up.
        .with_writer(|| crate::printer::StderrWriter)
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
