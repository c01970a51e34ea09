//! The one place that writes to stdout and stderr: command output on stdout, everything a person
//! reads about the tool itself (errors, warnings, summaries) on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

/// Where notes, warnings, errors and logs go instead of stderr while a full-screen view owns
/// the terminal (`dash`, `run --dash`, `daemon --dash`).
static REDIRECT: Mutex<Option<File>> = Mutex::new(None);

/// Sends what would go to stderr, logs included, to `path` (appended) until the guard is
/// dropped.
pub fn redirect_stderr(path: &Path) -> std::io::Result<Redirect> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    *REDIRECT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(file);
    Ok(Redirect)
}

/// stderr is stderr again when this is dropped.
pub struct Redirect;

impl Drop for Redirect {
    fn drop(&mut self) {
        *REDIRECT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// stderr, or the redirect file while there is one: the writer of the logs (`telemetry`).
pub struct StderrWriter;

impl Write for StderrWriter {
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

/// Writes `text` to the redirect file; false when there is none.
fn redirected(text: &str) -> bool {
    let mut redirect = REDIRECT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match redirect.as_mut() {
        Some(file) => {
            let _ = file.write_all(text.as_bytes());
            true
        }
        None => false,
    }
}

/// Writes command output (tables, JSON) to stdout. A closed pipe (`| head`) is not an error.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    let _ = stdout.flush();
}

/// Writes bytes to stdout as they come (a streamed reply), flushing at once.
pub fn out_raw(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// Writes a block of text meant for the person at the terminal (a `run` summary) to stderr.
pub fn note(text: &str) {
    let line = if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    };
    if redirected(&line) {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stderr.write_all(b"\n");
    }
}

/// Reports a fatal error of the command.
pub fn error(message: &str) {
    if redirected(&format!("error: {message}\n")) {
        return;
    }
    let prefix = if std::io::stderr().is_terminal() {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    eprintln!("{prefix} {message}");
}

/// Reports something the user should know that does not stop the command.
pub fn warn(message: &str) {
    if redirected(&format!("warning: {message}\n")) {
        return;
    }
    let prefix = if std::io::stderr().is_terminal() {
        "\x1b[1;33mwarning:\x1b[0m"
    } else {
        "warning:"
    };
    eprintln!("{prefix} {message}");
}

/// Stdout for bulk output written a piece at a time (an export), buffered.
pub fn stdout_writer() -> impl Write {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// A progress bar on stderr drawn with indicatif `template` (its `{pos}`, `{len}`, `{bar}`,
/// ...); hidden when stderr is not a terminal, so logs and pipes stay clean.
pub fn progress(total: Option<u64>, template: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}
