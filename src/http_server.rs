//! The HTTP/1 accept loop behind every listener (the proxy's public and admin listeners,
//! `smartproxy ui`): one hyper connection task per client, tracked so that a stop ends
//! accepting and lets the requests in flight finish. Slow and many clients are bounded here:
//! a request head must arrive within the header timeout (which is also how long an idle
//! kept-alive connection waits for its next request), and beyond the listener's cap on open
//! connections a client is answered 503 at once, without a connection task.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How a listener bounds its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// The time a client has to send a request's head, counted from when the connection opens
    /// or goes idle after a reply (hyper's `header_read_timeout`).
    pub header_timeout: Duration,
    /// Open connections served at once; the ones beyond are answered 503 and closed.
    pub max_connections: usize,
}

/// What a client beyond the cap reads: a whole reply, in OpenAI's error shape, that closes.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
connection: close\r\n\
retry-after: 1\r\n\
content-length: 130\r\n\
\r\n\
{\"error\":{\"message\":\"too many open connections to smartproxy; retry shortly\",\"type\":\"server_error\",\"code\":\"too_many_connections\"}}";

/// How long accepting pauses when the process is out of file descriptors (or memory): the
/// pending connections wait in the backlog instead of the loop spinning on the error.
const OUT_OF_FDS_PAUSE: Duration = Duration::from_millis(100);

/// Connections the kernel holds for a listener until they are accepted. The usual 128 is
/// filled by a burst of clients in the moment the accepting task waits for a core, and a
/// client whose connection finds it full waits a second or more to try again. (Linux caps it
/// at `net.core.somaxconn`, 4096 by default.)
const BACKLOG: u32 = 1024;

/// The runtime a long-lived server (the daemon) runs on. On one CPU (its affinity or quota, as
/// `taskset -c 0` or a one-core container gives it) a single thread: the multi-thread
/// scheduler's cross-thread wake-ups and bookkeeping cost CPU there and buy nothing. On more,
/// a worker per CPU. Either way blocking work (SQLite reads off the request path) gets a
/// bounded pool, so a burst does not leave dozens of idle threads behind.
pub fn serving_runtime(name: &str) -> io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(cpus);
        b
    };
    builder
        .enable_all()
        .thread_name(name)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

/// Threads for blocking work at most; tasks beyond wait for one to be free.
const MAX_BLOCKING_THREADS: usize = 16;

/// Binds a listener on `addr` (port 0 picks a free port) with room for a burst of connects.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As the standard library's `bind` does: a restart finds the port free at once, even
    // while connections of the previous process linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `listener` until `stopped` changes, each connection with the service
/// `service_for(peer)` makes; then waits for the open connections to end (the caller bounds
/// the wait with its grace period).
pub async fn accept_loop<S>(
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    limits: ConnLimits,
    service_for: impl Fn(SocketAddr) -> S,
) where
    S: HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as Body>::Data: Send,
    <S::ResBody as Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut errors = AcceptErrors::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    if errors.note(&err) {
                        tokio::time::sleep(OUT_OF_FDS_PAUSE).await;
                    }
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            turn_away(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service_for(peer)));
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a client beyond the cap with `BUSY` and closes, in a few non-blocking calls on the
/// accepting task (a flood must not cost a task each). What the client already sent is read
/// first, so that the close is a FIN its reader sees after the reply, not a reset.
fn turn_away(stream: TcpStream) {
    let Ok(stream) = stream.into_std() else {
        return;
    };
    let mut buf = [0u8; 4096];
    for _ in 0..4 {
        match (&stream).read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = (&stream).write(BUSY);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Accept errors, logged at most once a second (a flood of them would fill the log).
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Logs `err` unless one was logged in the last second; true when accepting should pause
    /// (out of file descriptors or memory), false for a per-connection error (a client that
    /// reset before it was accepted).
    fn note(&mut self, err: &io::Error) -> bool {
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(%err, not_logged = self.unlogged, "accept failed");
            self.last_logged = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        out_of_resources(err)
    }
}

fn out_of_resources(err: &io::Error) -> bool {
    use nix::errno::Errno;
    err.raw_os_error().is_some_and(|code| {
        [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
            .iter()
            .any(|e| *e as i32 == code)
    })
}

/// Raises this process's soft limit on open files to its hard limit: a listener holds a
/// descriptor per client, and the usual soft limit (1024) is what a burst of idle connections
/// exhausts first. Failure leaves the limit as it was. Returns the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // An unlimited hard limit is not a value the kernel takes for the soft one (Linux caps it
    // at `fs.nr_open`, 2^20 by default; macOS at OPEN_MAX): try it, then those.
    let wanted: &[u64] = if hard == RLIM_INFINITY {
        &[RLIM_INFINITY, 1 << 20, 10_240]
    } else {
        &[hard]
    };
    for &limit in wanted {
        if limit <= soft {
            break;
        }
        if setrlimit(Resource::RLIMIT_NOFILE, limit, hard).is_ok() {
            tracing::debug!(from = soft, to = limit, "raised the open files limit");
            return Some(limit);
        }
    }
    Some(soft)
}

/// Keeps the memory of large request bodies in the heap between requests. An agent sends 100
/// KiB to 1 MiB a turn; glibc gives such a buffer fresh pages from the kernel and hands them
/// back when it is freed (its trim threshold follows the largest buffer freed, and two bodies
/// in flight exceed it), so every request faulted in its body's pages again: ~40 page faults
/// and ~15% of the CPU of a 256 KiB request. Buffers up to 1 MiB now come from the heap, and
/// up to 2 MiB of free heap stays mapped for the next request. Idle memory is unchanged; after
/// load a process keeps at most that much more per malloc arena (one per thread that serves
/// requests). Elsewhere than glibc, nothing changes.
pub fn keep_request_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets two of the allocator's parameters, under its own lock; it is
    // called before the runtime that serves requests starts.
    unsafe {
        use nix::libc::{M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, mallopt};
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        mallopt(M_TRIM_THRESHOLD, 2 << 20);
    }
}

/// The descriptors `listeners` listeners, each at `max_connections`, may need at most: a client
/// connection each, as many to upstreams, and some for the ledger, cache and logs.
pub fn descriptors_needed(listeners: u64, max_connections: usize) -> u64 {
    listeners * 2 * max_connections as u64 + 256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_reply_is_whole_http() {
        let text = std::str::from_utf8(BUSY).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["error"]["code"], "too_many_connections");
    }

    #[test]
    fn running_out_of_descriptors_pauses_accepting() {
        assert!(out_of_resources(&io::Error::from_raw_os_error(
            nix::errno::Errno::EMFILE as i32
        )));
        assert!(!out_of_resources(&io::Error::from_raw_os_error(
            nix::errno::Errno::ECONNABORTED as i32
        )));
    }
}
