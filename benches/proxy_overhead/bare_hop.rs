//! The bare hop: the floor for any proxy on this machine.

use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::pin_this_thread_to;

/// A minimal HTTP/1 forwarder (hyper server in, one hyper client connection out per client
/// connection, bodies passed through untouched) on its own thread pinned to CPU 0, like the
/// proxy. It pays the same extra loopback hop and cross-CPU wake-ups as smartproxy and nothing
/// else, so `smartproxy − bare hop` is what smartproxy's own work costs.
pub struct BareHop {
    pub addr: SocketAddr,
    /// The forwarding thread, for its CPU time.
    pub tid: i32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareHop {
    pub fn start(upstream: SocketAddr, cpu: usize) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bare-hop".into())
            .spawn(move || {
                let _ = tid_tx.send(nix::unistd::gettid().as_raw());
                if let Err(err) = pin_this_thread_to(cpu) {
                    eprintln!("warning: cannot pin the bare hop to CPU {cpu}: {err}");
                }
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stopped => {}
                        () = hop_accept_loop(listener, upstream) => {}
                    }
                });
            })?;
        let tid = tid_rx.recv_timeout(Duration::from_secs(5))?;
        Ok(Self {
            addr,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for BareHop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn hop_accept_loop(listener: TcpListener, upstream: SocketAddr) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(async move {
            let _ = hop_connection(stream, upstream).await;
        });
    }
}

async fn hop_connection(stream: TcpStream, upstream: SocketAddr) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let out = TcpStream::connect(upstream).await?;
    out.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(out)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // HTTP/1 serves one request at a time per connection, so the lock is never contended.
    let sender = std::sync::Arc::new(tokio::sync::Mutex::new(sender));
    let service = service_fn(move |req: Request<Incoming>| {
        let sender = std::sync::Arc::clone(&sender);
        async move {
            let mut sender = sender.lock().await;
            sender.ready().await?;
            sender.send_request(req).await
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}
