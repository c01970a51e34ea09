//! Notifications: a budget passing its warning mark, a loop tripping. Sent to the desktop
//! (`notify-send`, macOS `osascript`) and webhooks (`notify:` in the config) by one thread
//! of their own behind a bounded queue, so a slow or hung receiver never holds a request up:
//! `send` only queues, and a full queue drops the event and counts it.

mod desktop;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::config::NotifyConfig;

/// Events waiting to be delivered; more are dropped (and counted).
const QUEUE: usize = 64;

/// Something worth interrupting a person for. Metadata only: never a prompt or a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A budget passed its warning mark (`budget::policy::WARN_AT` of its limit).
    BudgetWarning {
        /// `session`, `daily`, `monthly`, ...
        scope: String,
        session: Option<String>,
        spent_usd: f64,
        limit_usd: f64,
    },
    /// The loop breaker stopped a session that repeats itself.
    LoopDetected {
        session: String,
        /// The repeated request's signature (a hash, never its text).
        signature: String,
    },
}

impl Event {
    /// One line for a person.
    pub fn message(&self) -> String {
        match self {
            Self::BudgetWarning {
                scope,
                session,
                spent_usd,
                limit_usd,
            } => format!(
                "{scope} budget {:.0}% spent (${spent_usd:.4} of ${limit_usd:.4}){}",
                spent_usd / limit_usd * 100.0,
                session
                    .as_deref()
                    .map(|s| format!(", session {}", s.get(..8).unwrap_or(s)))
                    .unwrap_or_default()
            ),
            Self::LoopDetected { session, signature } => format!(
                "session {short} stopped by the loop breaker: {signature}; `smartproxy resume {short}` lets it go on",
                short = session.get(..8).unwrap_or(session)
            ),
        }
    }

    /// The webhook's JSON body.
    pub fn json(&self, at_ms: i64) -> serde_json::Value {
        match self {
            Self::BudgetWarning {
                scope,
                session,
                spent_usd,
                limit_usd,
            } => json!({
                "source": "smartproxy",
                "event": "budget_warning",
                "at_ms": at_ms,
                "scope": scope,
                "session_id": session,
                "spent_usd": spent_usd,
                "limit_usd": limit_usd,
                "message": self.message(),
            }),
            Self::LoopDetected { session, signature } => json!({
                "source": "smartproxy",
                "event": "loop_detected",
                "at_ms": at_ms,
                "session_id": session,
                "signature": signature,
                "message": self.message(),
            }),
        }
    }
}

/// The sending end: cheap to call from a request, never waits.
#[derive(Debug)]
pub struct Notifier {
    queue: Mutex<Option<SyncSender<Event>>>,
    /// Told when the delivery thread has sent everything queued before `close`.
    finished: Mutex<Option<Receiver<()>>>,
    dropped: AtomicU64,
}

impl Notifier {
    /// Starts the delivery thread when `config` sends notifications anywhere.
    pub fn start(config: &NotifyConfig) -> Option<Arc<Self>> {
        if !config.any() {
            return None;
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (done_tx, done_rx) = mpsc::channel();
        let config = config.clone();
        let spawned = std::thread::Builder::new()
            .name("smartproxy-notify".to_owned())
            .spawn(move || {
                deliver_all(&config, &rx);
                let _ = done_tx.send(());
            });
        if let Err(err) = spawned {
            tracing::warn!("notifications are off: cannot start their thread: {err}");
            return None;
        }
        Some(Arc::new(Self {
            queue: Mutex::new(Some(tx)),
            finished: Mutex::new(Some(done_rx)),
            dropped: AtomicU64::new(0),
        }))
    }

    /// Queues `event`; a full queue (a receiver far behind) drops it and counts it.
    pub fn send(&self, event: Event) {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(tx) = queue.as_ref() else {
            return;
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(dropped = n, "a notification was dropped: the queue is full");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops taking events and waits up to `wait` for those queued to be delivered (a hung
    /// webhook is given up on: its thread ends with the process).
    pub fn close(&self, wait: Duration) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let finished = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(finished) = finished
            && finished.recv_timeout(wait).is_err()
        {
            tracing::warn!("notifications still undelivered after {wait:?} were given up");
        }
    }
}

/// The delivery thread: every event to the desktop and every webhook, until the queue closes.
fn deliver_all(config: &NotifyConfig, rx: &Receiver<Event>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::warn!("notifications are off: cannot start their runtime: {err}");
            return;
        }
    };
    let client = webhook::client();
    while let Ok(event) = rx.recv() {
        runtime.block_on(async {
            if config.desktop {
                desktop::show(&event).await;
            }
            for url in &config.webhooks {
                webhook::post(&client, url, &event).await;
            }
        });
    }
}
