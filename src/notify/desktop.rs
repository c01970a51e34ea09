//! A desktop notification: `notify-send` on Linux and the BSDs, `osascript` on macOS; a
//! machine without either is told once in the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Event;

/// How long a notification command may take before it is given up on (and killed).
const TIMEOUT: Duration = Duration::from_secs(5);

static MISSING_SAID: AtomicBool = AtomicBool::new(false);

pub(super) async fn show(event: &Event) {
    let message = event.message();
    let mut command = if cfg!(target_os = "macos") {
        let mut c = tokio::process::Command::new("osascript");
        c.arg("-e").arg(format!(
            "display notification \"{}\" with title \"smartproxy\"",
            message.replace('\\', "\\\\").replace('"', "\\\"")
        ));
        c
    } else {
        let mut c = tokio::process::Command::new("notify-send");
        c.args(["--app-name=smartproxy", "smartproxy"])
            .arg(&message);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    match command.spawn() {
        Ok(mut child) => match tokio::time::timeout(TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                tracing::debug!(%status, "the desktop notification command failed");
            }
            Ok(_) => {}
            Err(_) => tracing::warn!("the desktop notification command hung; killed"),
        },
        Err(err) => {
            if !MISSING_SAID.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "desktop notifications are on (notify: desktop) but cannot be shown: {err}"
                );
            }
        }
    }
}
