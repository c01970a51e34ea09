//! The dashboard's ledger poller on a PostgreSQL ledger (team mode): the same actions as
//! `source`'s SQLite poller, read on a thread of its own through `postgres::query::Reader`'s
//! bounded live reads. PostgreSQL has no cheap "anything committed?" probe across processes,
//! so the lists are re-read every second and today's totals at most every few times what they
//! took. While PostgreSQL cannot be reached the header says so (each read times out rather than
//! hangs) and the poller reconnects every few seconds; the keys never wait on it.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::budgets;
use super::source::{Command, SESSION_LIMIT, session_views};
use super::state::{Action, REQUEST_LIMIT};
use crate::config::PgUrl;
use crate::ledger::LedgerError;
use crate::ledger::live::{self, LiveFilter};
use crate::ledger::now_ms;
use crate::ledger::postgres::query::Reader;

/// How often the lists are read again.
const REFRESH: Duration = Duration::from_secs(1);
/// How long to wait before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(3);

/// Starts the poller. It ends when `out`'s receiver is gone.
pub(super) fn spawn(
    url: PgUrl,
    budgets: budgets::Reader,
    filter: LiveFilter,
    commands: Receiver<Command>,
    out: Sender<Action>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dash-ledger".to_owned())
        .spawn(move || {
            Poller {
                url,
                filter,
                out,
                reader: None,
                totals_due: Instant::now(),
                budgets,
            }
            .run(&commands)
        })
}

struct Poller {
    url: PgUrl,
    filter: LiveFilter,
    out: Sender<Action>,
    reader: Option<Reader>,
    totals_due: Instant,
    /// The budgets panel's reading, through a connection of its own.
    budgets: budgets::Reader,
}

impl Poller {
    fn run(mut self, commands: &Receiver<Command>) {
        loop {
            let wait = match self.refresh() {
                Ok(()) => REFRESH,
                Err(err) => {
                    // A broken connection is dropped; the next round connects again.
                    self.reader = None;
                    self.totals_due = Instant::now();
                    let message = format!("{err}; retrying");
                    if !self.send(Action::ReadError(message)) {
                        return;
                    }
                    RETRY
                }
            };
            match commands.recv_timeout(wait) {
                Ok(Command::Filter(filter)) => self.filter = filter,
                Ok(Command::Detail(id)) => {
                    // None (the detail view says so) when the read fails: the header shows
                    // the error at the next refresh.
                    let detail = self
                        .reader
                        .as_ref()
                        .and_then(|r| r.request_detail(&id).ok())
                        .flatten()
                        .map(Box::new);
                    if !self.send(Action::Detail(detail)) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Reads the newest requests, today's sessions and, when due, today's totals.
    fn refresh(&mut self) -> Result<(), LedgerError> {
        if self.reader.is_none() {
            self.reader = Some(Reader::connect(&self.url)?);
        }
        let Some(reader) = &self.reader else {
            return Ok(());
        };
        let now = now_ms();
        let today = live::start_of_today_ms();
        let requests = reader.live_requests(&self.filter, REQUEST_LIMIT, now)?;
        let sessions = reader.live_sessions(today, now, SESSION_LIMIT)?;
        self.send(Action::Requests(requests));
        self.send(Action::Sessions(session_views(sessions)));
        if Instant::now() >= self.totals_due {
            let started = Instant::now();
            let totals = reader.live_totals(today)?;
            // A slow read (a huge day) is repeated less often.
            self.totals_due = Instant::now() + (started.elapsed() * 4).max(Duration::from_secs(2));
            self.send(Action::Totals(totals));
        }
        if let Some(action) = self.budgets.read_if_due(now) {
            self.send(action);
        }
        Ok(())
    }

    fn send(&self, action: Action) -> bool {
        self.out.send(action).is_ok()
    }
}
