//! The helper processes of `benches/instructions.sh` (see its header for how to run it):
//!
//! - `rig upstream`: the proxy_overhead bench's mock upstream (the same canned completion);
//! - `rig hop UPSTREAM`: the bench's bare hop, the floor any proxy pays;
//! - `rig load ADDR KEY REQUESTS CONNECTIONS`: that many non-streaming chat completions (the
//!   bench's ~300-byte body) over keep-alive connections, failing on any non-200 answer.
//!
//! `upstream` and `hop` print `ADDR` on one line and serve until their stdin closes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[allow(
    dead_code,
    reason = "the bench reads the hop's thread id; the rig does not"
)]
#[path = "../proxy_overhead/bare_hop.rs"]
mod bare_hop;
#[allow(
    dead_code,
    reason = "the bench's whole mock; the rig needs its start only"
)]
#[path = "../proxy_overhead/mock_upstream.rs"]
mod mock_upstream;

use std::io::Read as _;
use std::net::SocketAddr;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The key the mock upstream takes (and the bare hop passes on).
const UPSTREAM_KEY: &str = "sk-bench-upstream-0123456789abcdef";

/// The bench's request body (`load.rs`'s `BODIES[0]`).
const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant for network engineers. Answer in plain English."},{"role":"user","content":"Explain the main differences between TCP and UDP in two sentences, with one typical use of each."}],"temperature":0.2,"max_tokens":256}"#;

/// The bare hop pins itself through this; the rig leaves placement to the script.
fn pin_this_thread_to(_cpu: usize) -> Result<(), std::convert::Infallible> {
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["upstream"] => {
            let addr = runtime.block_on(mock_upstream::start_mock())?;
            println!("{addr}");
            // The mock's tasks run while the runtime is driven.
            runtime.block_on(async {
                let _ = tokio::task::spawn_blocking(wait_for_stdin_eof).await;
            });
        }
        ["hop", upstream] => {
            let hop = bare_hop::BareHop::start(upstream.parse()?, 0)?;
            println!("{}", hop.addr);
            wait_for_stdin_eof();
            drop(hop);
        }
        ["load", addr, key, requests, connections] => {
            let addr: SocketAddr = addr.parse()?;
            let requests: usize = requests.parse()?;
            let connections: usize = connections.parse()?;
            runtime.block_on(load(addr, key, requests, connections.max(1)))?;
        }
        _ => {
            bail!("usage: rig upstream | rig hop UPSTREAM | rig load ADDR KEY REQUESTS CONNECTIONS")
        }
    }
    Ok(())
}

fn wait_for_stdin_eof() {
    let mut sink = [0u8; 64];
    while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
}

/// `requests` round trips shared out over `connections` keep-alive connections.
async fn load(
    addr: SocketAddr,
    key: &str,
    requests: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    let auth = HeaderValue::from_str(&format!("Bearer {key}"))?;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let share = requests / connections + usize::from(c < requests % connections);
        let (host, auth) = (host.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            for _ in 0..share {
                let mut req = Request::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                *req.method_mut() = Method::POST;
                *req.uri_mut() = http::Uri::from_static("/v1/chat/completions");
                let h = req.headers_mut();
                h.insert(HOST, host.clone());
                h.insert(AUTHORIZATION, auth.clone());
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(ACCEPT, HeaderValue::from_static("application/json"));
                h.insert(USER_AGENT, HeaderValue::from_static("smartproxy-bench/1"));
                sender.ready().await?;
                let response = sender.send_request(req).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                ensure!(
                    status == StatusCode::OK,
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a load connection panicked")??;
    }
    Ok(())
}
