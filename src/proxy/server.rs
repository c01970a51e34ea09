//! The proxy's listeners: bind, serve (`http_server`'s accept loop) and a graceful shutdown
//! that lets requests in flight finish within a grace period.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::admin;
use super::context::Peer;
use super::router::handle;
use super::state::AppState;

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The model API (OpenAI, Anthropic, Ollama) and health checks.
    Public,
    /// Reload, stats, budget, metrics and debug views (the daemon's admin address).
    Admin,
}

/// How long streams cut at shutdown get to send their error event and close.
const CUT_FLUSH: Duration = Duration::from_secs(1);

pub struct Server {
    addr: SocketAddr,
    kind: Listener,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    state: Arc<AppState>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn bind(addr: SocketAddr, state: Arc<AppState>) -> io::Result<Self> {
        Self::bind_as(addr, state, Listener::Public).await
    }

    /// Binds a listener of the given kind.
    pub async fn bind_as(
        addr: SocketAddr,
        state: Arc<AppState>,
        kind: Listener,
    ) -> io::Result<Self> {
        let listener = crate::http_server::bind(addr)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), stopped, kind));
        Ok(Self {
            addr,
            kind,
            stop,
            task,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits up to `grace` for open requests to finish, then ends the streams
    /// still open with an error event each and drops what remains.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            tracing::warn!(
                grace_s = grace.as_secs_f64(),
                "requests still open after the grace period; closing them"
            );
            // What is still open is cut by smartproxy, not by its clients: the rows say so.
            if self.kind == Listener::Admin {
                self.state.mark_stopped();
                return;
            }
            // Streams end with an error event (rather than a connection cut mid-event), which
            // takes a moment to reach their clients.
            self.state.cut_streams();
            let _ = tokio::time::timeout(CUT_FLUSH, &mut self.task).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    stopped: watch::Receiver<bool>,
    kind: Listener,
) {
    // The address the listener is on, for the `Host` check (`http_guard`).
    let Ok(local) = listener.local_addr() else {
        return;
    };
    // Read once: a reload does not rebind the listeners, so it does not change these either.
    let clients = state.runtime().config.clients;
    let limits = crate::http_server::ConnLimits {
        header_timeout: clients.header_timeout,
        max_connections: clients.max_connections,
    };
    crate::http_server::accept_loop(listener, stopped, limits, move |peer| {
        let state = Arc::clone(&state);
        let peer = Peer::new(peer, state.ledger.salt());
        service_fn(move |req| {
            let state = Arc::clone(&state);
            let peer = peer.clone();
            async move {
                Ok::<_, Infallible>(match kind {
                    Listener::Public => handle(state, peer, local, req).await,
                    Listener::Admin => admin::handle(state, peer.addr, local, req).await,
                })
            }
        })
    })
    .await;
}
