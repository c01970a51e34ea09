//! Passes signals on to the child while it runs, and waits for it.
//!
//! Signals the terminal sends to the whole foreground process group (Ctrl-C, Ctrl-\, window
//! resizes) already reached the child, which shares smartproxy's group; sending them again would
//! interrupt it twice (uv's `child.rs` reasoning). Those are forwarded only when smartproxy's
//! group is not the terminal's foreground group, i.e. when someone signalled smartproxy alone.

use std::io;
use std::os::fd::AsFd;
use std::process::ExitStatus;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpgid, getpgrp, tcgetpgrp};
use tokio::signal::unix::{SignalKind, signal};

/// The signal handlers, installed before the child starts so no signal is missed.
pub struct Forwarder {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    winch: tokio::signal::unix::Signal,
}

impl Forwarder {
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
            winch: signal(SignalKind::window_change())?,
        })
    }

    /// Waits for the child to exit, forwarding signals meanwhile.
    pub async fn wait(mut self, child: &mut tokio::process::Child) -> io::Result<ExitStatus> {
        let Some(pid) = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
        else {
            return child.wait().await;
        };
        loop {
            let (sig, from_terminal) = tokio::select! {
                status = child.wait() => return status,
                _ = self.int.recv() => (Signal::SIGINT, true),
                _ = self.quit.recv() => (Signal::SIGQUIT, true),
                _ = self.winch.recv() => (Signal::SIGWINCH, true),
                _ = self.term.recv() => (Signal::SIGTERM, false),
                _ = self.hup.recv() => (Signal::SIGHUP, false),
            };
            if from_terminal && terminal_already_delivered(pid) {
                tracing::debug!(?sig, "child already got the signal from the terminal");
                continue;
            }
            tracing::debug!(?sig, "forwarding signal to child");
            if let Err(err) = kill(pid, sig) {
                tracing::debug!(%err, ?sig, "could not forward signal (child already gone?)");
            }
        }
    }
}

/// True when the child is in smartproxy's process group and that group is the terminal's
/// foreground group: a terminal-generated signal then reached both.
fn terminal_already_delivered(child: Pid) -> bool {
    let ours = getpgrp();
    if !getpgid(Some(child)).is_ok_and(|group| group == ours) {
        return false;
    }
    tcgetpgrp(std::io::stdin().as_fd()).is_ok_and(|foreground| foreground == ours)
}
