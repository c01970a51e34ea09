//! Terminal input on a thread of its own. crossterm 0.29 spins for ever inside `event::poll`,
//! whatever its timeout, once the terminal is hung up (a closed window or SSH connection): the
//! tty stays readable and every read returns nothing (crossterm issue #793). So this thread
//! first waits on the tty itself and asks crossterm only when the tty is alive; a hangup ends
//! the thread with `Input::Gone`, and the dashboard's loop, which never calls crossterm's input
//! functions, quits.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ratatui::crossterm::event::{self, Event};

/// How long the thread waits on the tty before looking for a resize or a stop.
const WAIT: Duration = Duration::from_millis(50);

pub enum Input {
    Event(Event),
    /// The terminal was hung up.
    Gone,
    Failed(io::Error),
}

/// The input thread's events; the thread stops within `WAIT` once this is dropped.
pub struct Inputs {
    pub events: Receiver<Input>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inputs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The terminal crossterm reads keys from: stdin when it is one, `/dev/tty` otherwise.
enum Tty {
    Stdin(io::Stdin),
    Device(File),
}

impl Tty {
    fn open() -> io::Result<Self> {
        use std::io::IsTerminal;
        let stdin = io::stdin();
        if stdin.is_terminal() {
            Ok(Self::Stdin(stdin))
        } else {
            File::options()
                .read(true)
                .write(true)
                .open("/dev/tty")
                .map(Self::Device)
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Self::Stdin(stdin) => stdin.as_fd(),
            Self::Device(file) => file.as_fd(),
        }
    }
}

/// Starts reading the terminal's keys and resizes.
pub fn spawn() -> io::Result<Inputs> {
    let tty = Tty::open()?;
    let (tx, events) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("dash-keys".to_owned())
        .spawn(move || read_loop(&tty, &tx, &stopped))?;
    Ok(Inputs { events, stop })
}

fn read_loop(tty: &Tty, tx: &Sender<Input>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(tty.fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(WAIT).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => {
                let _ = tx.send(Input::Failed(err.into()));
                return;
            }
        }
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
            let _ = tx.send(Input::Gone);
            return;
        }
        // Keys the tty holds, events crossterm buffered earlier, or a resize (crossterm's
        // SIGWINCH handler): all without waiting.
        loop {
            let next = match event::poll(Duration::ZERO) {
                Ok(true) => event::read().map(Some),
                Ok(false) => Ok(None),
                Err(err) => Err(err),
            };
            let sent = match next {
                Ok(Some(event)) => tx.send(Input::Event(event)),
                Ok(None) => break,
                Err(err) => {
                    let _ = tx.send(Input::Failed(err));
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }
}
