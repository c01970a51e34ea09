//! The listener `smartproxy ui` runs: the dashboard alone, over the ledger, no proxy, on
//! `http_server`'s accept loop; shutdown stops accepting and lets open requests finish.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Web;
use crate::http_server::ConnLimits;

pub struct UiServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl UiServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving the dashboard.
    pub async fn bind(addr: SocketAddr, web: Arc<Web>, limits: ConnLimits) -> io::Result<Self> {
        let listener = crate::http_server::bind(addr)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, web, stopped, limits));
        Ok(Self { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits up to `grace` for open requests.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    web: Arc<Web>,
    stopped: watch::Receiver<bool>,
    limits: ConnLimits,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    crate::http_server::accept_loop(listener, stopped, limits, move |peer| {
        let web = Arc::clone(&web);
        service_fn(move |req| {
            let web = Arc::clone(&web);
            async move {
                // No page on another site, no rebinding name (`http_guard`).
                let checked = crate::http_guard::check(
                    &web.browsers,
                    local,
                    req.method(),
                    req.uri(),
                    req.headers(),
                );
                let response = match checked {
                    Ok(()) => super::handle(web, peer, req).await,
                    Err(refusal) => super::refused(&refusal),
                };
                Ok::<_, Infallible>(response.map(Full::new))
            }
        })
    })
    .await;
}
