#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]
//! End-to-end speed of `smartproxy run`: the same mock upstream is hit directly, through a bare
//! forwarding hop, and through smartproxy in one run; the figures are printed as a markdown table
//! and written as JSON to `<target dir>/bench/proxy_overhead.json`.
//!
//! Run with `cargo bench --bench proxy_overhead` (add `-- --quick` for a short smoke run that
//! checks the bench works; its figures mean nothing). Without `--bench` (as `cargo test
//! --all-targets` runs it) it does nothing.
//!
//! Setup: this process runs the mock upstream (hyper 1 server) and the load generator (hyper 1
//! client connections, keep-alive) on one current-thread tokio runtime pinned to CPU 1; the proxy
//! runs as `taskset -c 0 smartproxy run ...` pinned to CPU 0. The bare hop (a minimal hyper
//! forwarder on a thread of this process, also pinned to CPU 0) pays the same extra loopback hop
//! and cross-CPU wake-ups as smartproxy and nothing else: `smartproxy − bare hop` is the cost of
//! smartproxy's own work, while `smartproxy − direct` (what the targets judge) also holds the
//! machine's cost of any hop. CPU time per request is read from /proc/…/schedstat, so it holds
//! up on a noisy machine better than wall-clock figures do.
//!
//! All traffic stays on 127.0.0.1; every phase is bounded in count and time; the proxy is stopped
//! by a guard even on panic.

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// The key the proxy's provider sends upstream; the mock refuses any other.
const UPSTREAM_KEY: &str = "sk-bench-upstream-0123456789abcdef";
const MODEL: &str = "gpt-4o-mini";
/// Latency and streaming samples are taken in alternating direct/proxy blocks, so that
/// background noise hits both sides alike.
const ROUNDS: usize = 10;

/// How much work each phase does.
struct Plan {
    latency_warmup: usize,
    latency_requests: usize,
    connections: usize,
    throughput_warmup: Duration,
    throughput_run: Duration,
    stream_warmup: usize,
    stream_requests: usize,
    startup_warmup: usize,
    startup_runs: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            latency_warmup: 2_000,
            latency_requests: 20_000,
            connections: 32,
            throughput_warmup: Duration::from_secs(1),
            throughput_run: Duration::from_secs(5),
            stream_warmup: 200,
            stream_requests: 2_000,
            startup_warmup: 3,
            startup_runs: 30,
        }
    }

    fn quick() -> Self {
        Self {
            latency_warmup: 200,
            latency_requests: 1_000,
            connections: 32,
            throughput_warmup: Duration::from_millis(200),
            throughput_run: Duration::from_millis(500),
            stream_warmup: 20,
            stream_requests: 200,
            startup_warmup: 1,
            startup_runs: 5,
        }
    }
}

/// The targets the figures are judged against.
mod target {
    pub const ADDED_P50_US: f64 = 200.0;
    pub const ADDED_P99_US: f64 = 600.0;
    pub const THROUGHPUT_RPS: f64 = 30_000.0;
    pub const STREAM_ADDED_P50_US: f64 = 200.0;
    pub const STARTUP_OVERHEAD_MS: f64 = 20.0;
    pub const RSS_IDLE_MB: f64 = 20.0;
    pub const RSS_LOADED_MB: f64 = 40.0;
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` / `--all-targets` runs bench binaries without `--bench`.
        println!("proxy_overhead: skipped (run it with `cargo bench --bench proxy_overhead`)");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let plan = if quick { Plan::quick() } else { Plan::full() };
    let started = Instant::now();

    // Pin before the runtime exists, so every thread of this process inherits CPU 1.
    let pinned = pin_this_thread_to(1);
    if let Err(err) = &pinned {
        eprintln!("warning: cannot pin the bench to CPU 1 ({err}); figures will be noisier");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::Builder::new()
        .prefix("smartproxy-bench-")
        .tempdir()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_smartproxy"));

    let mock_addr = runtime.block_on(start_mock())?;
    let config_path = tmp.path().join("bench.yaml");
    std::fs::write(
        &config_path,
        format!(
            "providers:\n  - name: bench\n    kind: openai\n    base_url: http://{mock_addr}/v1\n    api_key_env: \
             BENCH_UPSTREAM_KEY\n    models: [{MODEL}]\n"
        ),
    )?;

    eprintln!("proxy_overhead: mock upstream on {mock_addr}; starting the proxy (CPU 0)");
    let mut process = ProxyProcess::start(&bin, &config_path, tmp.path())?;
    let info = process.wait_for_info(Duration::from_secs(20))?;
    eprintln!(
        "proxy_overhead: smartproxy pid {} listening on {}",
        info.pid, info.addr
    );
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle_kb = proc_status_kb(info.pid, "VmRSS")?;

    let hop = BareHop::start(mock_addr, 0)?;
    let direct = Target::new(mock_addr, UPSTREAM_KEY)?;
    let bare_hop = Target::new(hop.addr, UPSTREAM_KEY)?;
    let proxied = Target::new(info.addr, &info.key)?;
    let sides = [
        Side {
            name: "direct",
            target: &direct,
            cpu: None,
        },
        Side {
            name: "bare hop",
            target: &bare_hop,
            cpu: Some(CpuProbe::Thread(std::process::id().try_into()?, hop.tid)),
        },
        Side {
            name: "smartproxy",
            target: &proxied,
            cpu: Some(CpuProbe::Process(info.pid)),
        },
    ];
    let mut load = runtime.block_on(run_load(&plan, &sides))?.into_iter();
    let (Some(direct), Some(bare_hop), Some(proxy)) = (load.next(), load.next(), load.next())
    else {
        bail!("missing figures");
    };
    drop(hop);

    let rss_loaded_kb = proc_status_kb(info.pid, "VmRSS")?;
    let rss_peak_kb = proc_status_kb(info.pid, "VmHWM")?;
    let stop_started = Instant::now();
    let proxy_status = process.stop(Duration::from_secs(30))?;
    let shutdown_ms = stop_started.elapsed().as_secs_f64() * 1e3;
    let ledger_rows = count_ledger_rows(&tmp.path().join("ledger.db")).unwrap_or(-1);

    eprintln!("proxy_overhead: start-up runs");
    let startup = measure_startup(&plan, &bin, &config_path, tmp.path())?;
    drop(runtime);

    let report = Report {
        quick,
        connections: plan.connections,
        throughput_warmup: plan.throughput_warmup,
        throughput_run: plan.throughput_run,
        pinned: pinned.is_ok() && process.pinned,
        mock_addr,
        direct,
        bare_hop,
        proxy,
        rss_idle_kb,
        rss_loaded_kb,
        rss_peak_kb,
        shutdown_ms,
        proxy_status,
        ledger_rows,
        startup,
        elapsed: started.elapsed(),
    };
    println!("{}", report.markdown());
    let json_path = json_path();
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report.json())?)?;
    println!("figures written to {}", json_path.display());
    Ok(())
}

/// Pins the calling thread (threads it starts later inherit the mask).
fn pin_this_thread_to(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// `<target dir>/bench/proxy_overhead.json`, honouring CARGO_TARGET_DIR.
fn json_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let target = if target.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    } else {
        target
    };
    target.join("bench").join("proxy_overhead.json")
}

// ---------------------------------------------------------------------------------------------
// The proxy process
// ---------------------------------------------------------------------------------------------

struct ProxyInfo {
    addr: SocketAddr,
    key: String,
    pid: i32,
}

/// `taskset -c 0 smartproxy run ... -- sh -c '...; exec sleep 600'`, stopped on drop (SIGTERM,
/// then SIGKILL of smartproxy and the sleep if it does not exit), so nothing outlives the bench.
struct ProxyProcess {
    child: Child,
    info_path: PathBuf,
    /// The sleep's pid ($$ of the sh that exec'd it), for the SIGKILL path only.
    sleep_pid: Option<i32>,
    pinned: bool,
    exited: bool,
}

impl ProxyProcess {
    fn start(bin: &Path, config: &Path, tmp: &Path) -> anyhow::Result<Self> {
        let info_path = tmp.join("info");
        let script = r#"echo "$SMARTPROXY_URL $OPENAI_API_KEY $PPID $$" > "$1"; exec sleep 600"#;
        let build = |pinned: bool| {
            let mut cmd = if pinned {
                let mut c = Command::new("taskset");
                c.args(["-c", "0"]).arg(bin);
                c
            } else {
                Command::new(bin)
            };
            cmd.args(["run", "--summary", "none", "--config"])
                .arg(config)
                .args(["--", "sh", "-c", script, "sh"])
                .arg(&info_path)
                .env("SMARTPROXY_DB", tmp.join("ledger.db"))
                .env("SMARTPROXY_LOG_LEVEL", "error")
                .env("BENCH_UPSTREAM_KEY", UPSTREAM_KEY)
                .current_dir(tmp)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            cmd
        };
        let (child, pinned) = match build(true).spawn() {
            Ok(child) => (child, true),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                eprintln!("warning: taskset not found; the proxy runs unpinned");
                (
                    build(false).spawn().context("cannot start smartproxy")?,
                    false,
                )
            }
            Err(err) => return Err(err).context("cannot start taskset"),
        };
        Ok(Self {
            child,
            info_path,
            sleep_pid: None,
            pinned,
            exited: false,
        })
    }

    fn wait_for_info(&mut self, timeout: Duration) -> anyhow::Result<ProxyInfo> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                bail!("smartproxy exited during start-up: {status}");
            }
            if let Ok(text) = std::fs::read_to_string(&self.info_path)
                && text.ends_with('\n')
            {
                let fields: Vec<&str> = text.split_whitespace().collect();
                ensure!(fields.len() == 4, "unexpected info file: {text:?}");
                let addr: SocketAddr = fields[0]
                    .strip_prefix("http://")
                    .context("SMARTPROXY_URL is not http://")?
                    .trim_end_matches('/')
                    .parse()?;
                ensure!(
                    addr.ip().is_loopback(),
                    "the proxy is not on loopback: {addr}"
                );
                let pid: i32 = fields[2].parse()?;
                self.sleep_pid = fields[3].parse().ok();
                ensure!(
                    u32::try_from(pid).ok() == Some(self.child.id()),
                    "the sh's parent ({pid}) is not the smartproxy we started ({})",
                    self.child.id()
                );
                return Ok(ProxyInfo {
                    addr,
                    key: fields[1].to_owned(),
                    pid,
                });
            }
            ensure!(
                Instant::now() < deadline,
                "smartproxy did not start within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM (smartproxy forwards it to the sleep and exits); SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        if let Some(status) = self.child.try_wait()? {
            self.exited = true;
            return Ok(status);
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill_all();
        bail!("smartproxy did not exit within {grace:?} of SIGTERM; killed it")
    }

    fn kill_all(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
        // smartproxy was killed, so the sleep (if it still runs) is an orphan now: kill it too,
        // after checking that its pid still names a `sleep`.
        let sleep = self.sleep_pid.take().or_else(|| {
            let info = std::fs::read_to_string(&self.info_path).ok()?;
            info.split_whitespace().nth(3)?.parse().ok()
        });
        if let Some(sleep) = sleep
            && std::fs::read_to_string(format!("/proc/{sleep}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        {
            let _ = kill(Pid::from_raw(sleep), Signal::SIGKILL);
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // `stop` already kills on a timeout; killing again is harmless (a reaped child is not
        // signalled, the sleep's pid is taken).
        if !self.exited && self.stop(Duration::from_secs(10)).is_err() {
            self.kill_all();
        }
    }
}

/// A field of /proc/PID/status, in kB.
fn proc_status_kb(pid: i32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn count_ledger_rows(path: &Path) -> anyhow::Result<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?)
}

// ---------------------------------------------------------------------------------------------
// The mock upstream
// ---------------------------------------------------------------------------------------------

const COMPLETION_ID: &str = "chatcmpl-BHm4Kz2XtVnq8bQx1yLwR7uS0fPaE";
const CREATED: u64 = 1_743_500_000;
const SERVED_MODEL: &str = "gpt-4o-mini-2024-07-18";
const FINGERPRINT: &str = "fp_b376dfbbd5";

static COMPLETION: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        json!({
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": SERVED_MODEL,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "TCP is connection-oriented and guarantees ordered, reliable delivery with \
                                retransmission and flow control. UDP sends independent datagrams with no \
                                delivery or ordering guarantees, trading reliability for lower latency.",
                    "refusal": null,
                    "annotations": []
                },
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": usage_json(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT
        })
        .to_string(),
    )
});

fn usage_json() -> serde_json::Value {
    json!({
        "prompt_tokens": 41,
        "completion_tokens": 38,
        "total_tokens": 79,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// The SSE events of one streamed reply: 10 chunks, then (when asked for) the usage chunk, then
/// `[DONE]`. Index 0: without usage; index 1: with `include_usage`.
static STREAMS: LazyLock<[Vec<Bytes>; 2]> = LazyLock::new(|| [sse_events(false), sse_events(true)]);

fn sse_events(include_usage: bool) -> Vec<Bytes> {
    let words = [
        "TCP",
        " is",
        " connection-oriented",
        " and",
        " reliable;",
        " UDP",
        " is",
        " connectionless",
        " and",
    ];
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let mut c = json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": SERVED_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = serde_json::Value::Null;
        }
        c
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    chunks.extend(words.iter().map(|w| chunk(json!({"content": w}), None)));
    chunks.push(chunk(json!({}), Some("stop")));
    if include_usage {
        chunks.push(json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": SERVED_MODEL,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": usage_json()
        }));
    }
    let mut events: Vec<Bytes> = chunks
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

#[derive(Default, serde::Deserialize)]
struct MockRequest {
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<MockStreamOptions>,
}

#[derive(Default, serde::Deserialize)]
struct MockStreamOptions {
    #[serde(default)]
    include_usage: bool,
}

type SseBody =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;
type MockBody = Either<Full<Bytes>, SseBody>;

async fn start_mock() -> anyhow::Result<SocketAddr> {
    LazyLock::force(&COMPLETION);
    LazyLock::force(&STREAMS);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(mock_reply))
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn mock_reply(req: Request<Incoming>) -> Result<Response<MockBody>, Infallible> {
    let respond = |status: StatusCode, content_type: &'static str, body: MockBody| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Ok(response)
    };
    let error = |status: StatusCode, message: &str| {
        let body =
            json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string();
        respond(
            status,
            "application/json",
            Either::Left(Full::new(Bytes::from(body))),
        )
    };
    if req.method() != Method::POST || req.uri().path() != "/v1/chat/completions" {
        return error(StatusCode::NOT_FOUND, "unknown URL");
    }
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(UPSTREAM_KEY);
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "bad key");
    }
    let Ok(body) = req.into_body().collect().await.map(|c| c.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let Ok(parsed) = serde_json::from_slice::<MockRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad JSON");
    };
    if parsed.stream {
        let with_usage = parsed.stream_options.is_some_and(|o| o.include_usage);
        let frames: Vec<_> = STREAMS[usize::from(with_usage)]
            .iter()
            .map(|event| Ok(Frame::data(event.clone())))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        respond(
            StatusCode::OK,
            "text/event-stream; charset=utf-8",
            Either::Right(body),
        )
    } else {
        respond(
            StatusCode::OK,
            "application/json",
            Either::Left(Full::new(COMPLETION.clone())),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------------

/// The request bodies: ~300 bytes, model gpt-4o-mini, a system and a user message.
static BODIES: LazyLock<[Bytes; 2]> = LazyLock::new(|| {
    let body = |stream: bool| {
        let mut b = json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a concise assistant for network engineers. Answer in plain English."},
                {"role": "user", "content": "Explain the main differences between TCP and UDP in two sentences, with one typical use of each."}
            ],
            "temperature": 0.2,
            "max_tokens": 256
        });
        if stream {
            b["stream"] = json!(true);
        }
        Bytes::from(serde_json::to_vec(&b).unwrap())
    };
    [body(false), body(true)]
});

struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Target {
    fn new(addr: SocketAddr, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: HeaderValue::from_str(&format!("Bearer {key}"))?,
        })
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(&self, stream: bool) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(BODIES[usize::from(stream)].clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = http::Uri::from_static("/v1/chat/completions");
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(AUTHORIZATION, self.auth.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        h.insert(USER_AGENT, HeaderValue::from_static("smartproxy-bench/1"));
        req
    }
}

/// One whole request; Ok(false) for a non-200 answer.
async fn round_trip(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
) -> anyhow::Result<bool> {
    sender.ready().await?;
    let response = sender.send_request(target.request(false)).await?;
    let ok = response.status() == StatusCode::OK;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(ok && body.len() > 100)
}

struct StreamSample {
    first_event: Duration,
    complete: Duration,
    events: usize,
}

/// One streaming request: time to the first body bytes holding `data:`, and to the end.
async fn stream_trip(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
) -> anyhow::Result<StreamSample> {
    sender.ready().await?;
    let started = Instant::now();
    let response = sender.send_request(target.request(true)).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "stream answered {}",
        response.status()
    );
    let mut body = response.into_body();
    let mut first_event = None;
    let mut all = Vec::with_capacity(4096);
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if first_event.is_none() && memchr::memmem::find(data, b"data:").is_some() {
                first_event = Some(started.elapsed());
            }
            all.extend_from_slice(data);
        }
    }
    let complete = started.elapsed();
    ensure!(
        all.ends_with(b"data: [DONE]\n\n"),
        "the stream did not end with [DONE]"
    );
    Ok(StreamSample {
        first_event: first_event.context("no data: event")?,
        complete,
        events: memchr::memmem::find_iter(&all, b"data:").count(),
    })
}

/// One side of the comparison: where its requests go, and whose CPU time serves them.
struct Side<'a> {
    name: &'a str,
    target: &'a Target,
    cpu: Option<CpuProbe>,
}

/// What was measured on one side.
#[derive(Default)]
struct SideFigures {
    latency: Vec<f64>,
    stream: Vec<StreamSample>,
    rps: Throughput,
    /// Every request sent to this side, warm-up included.
    requests: u64,
    /// CPU time the side spent on the measured latency requests, streams, and throughput run
    /// (warm-up included there).
    cpu_latency: CpuTime,
    cpu_stream: CpuTime,
    cpu_throughput: CpuTime,
    has_cpu: bool,
}

/// Whose CPU time to read: a whole process (all its threads) or one thread.
#[derive(Clone, Copy)]
enum CpuProbe {
    Process(i32),
    Thread(i32, i32),
}

/// CPU time from /proc/…/schedstat (nanoseconds), split out for the ledger writer thread.
#[derive(Clone, Copy, Default)]
struct CpuTime {
    total_ns: u64,
    ledger_ns: u64,
}

impl CpuTime {
    fn since(self, earlier: Self) -> Self {
        Self {
            total_ns: self.total_ns.saturating_sub(earlier.total_ns),
            ledger_ns: self.ledger_ns.saturating_sub(earlier.ledger_ns),
        }
    }

    /// Microseconds per request: (total, ledger writer).
    fn per_request_us(self, requests: usize) -> (f64, f64) {
        let n = requests.max(1) as f64;
        (
            self.total_ns as f64 / n / 1e3,
            self.ledger_ns as f64 / n / 1e3,
        )
    }
}

impl CpuProbe {
    /// Best effort: zero when /proc cannot be read.
    fn read(self) -> CpuTime {
        let on_cpu = |task: &Path| -> u64 {
            std::fs::read_to_string(task.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        match self {
            Self::Thread(pid, tid) => CpuTime {
                total_ns: on_cpu(Path::new(&format!("/proc/{pid}/task/{tid}"))),
                ledger_ns: 0,
            },
            Self::Process(pid) => {
                let mut time = CpuTime::default();
                let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                    return time;
                };
                for task in tasks.flatten() {
                    let ns = on_cpu(&task.path());
                    time.total_ns += ns;
                    if std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "ledger-writer")
                    {
                        time.ledger_ns += ns;
                    }
                }
                time
            }
        }
    }
}

/// Reads every side's CPU time, after giving asynchronous work (the ledger writer) a moment to
/// catch up.
async fn cpu_snapshot(sides: &[Side<'_>]) -> Vec<CpuTime> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    sides
        .iter()
        .map(|s| s.cpu.map(CpuProbe::read).unwrap_or_default())
        .collect()
}

/// Latency, streaming and throughput for every side. Sequential phases alternate between the
/// sides in `ROUNDS` blocks.
async fn run_load(plan: &Plan, sides: &[Side<'_>]) -> anyhow::Result<Vec<SideFigures>> {
    let mut figures: Vec<SideFigures> = sides
        .iter()
        .map(|side| SideFigures {
            has_cpu: side.cpu.is_some(),
            ..SideFigures::default()
        })
        .collect();
    let mut senders = Vec::with_capacity(sides.len());
    for side in sides {
        senders.push(side.target.connect().await?);
    }

    eprintln!("proxy_overhead: latency at 1 connection");
    for ((side, sender), fig) in sides.iter().zip(&mut senders).zip(&mut figures) {
        for _ in 0..plan.latency_warmup {
            ensure!(
                round_trip(sender, side.target).await?,
                "{} refused a request",
                side.name
            );
        }
        fig.requests += plan.latency_warmup as u64;
    }
    let before = cpu_snapshot(sides).await;
    for _ in 0..ROUNDS {
        for ((side, sender), fig) in sides.iter().zip(&mut senders).zip(&mut figures) {
            for _ in 0..plan.latency_requests / ROUNDS {
                let t = Instant::now();
                ensure!(
                    round_trip(sender, side.target).await?,
                    "{} refused a request",
                    side.name
                );
                fig.latency.push(t.elapsed().as_secs_f64() * 1e6);
            }
            fig.requests += (plan.latency_requests / ROUNDS) as u64;
        }
    }
    let after = cpu_snapshot(sides).await;
    for ((fig, a), b) in figures.iter_mut().zip(&after).zip(&before) {
        fig.cpu_latency = a.since(*b);
    }

    eprintln!("proxy_overhead: streaming, time to first event");
    for ((side, sender), fig) in sides.iter().zip(&mut senders).zip(&mut figures) {
        for _ in 0..plan.stream_warmup {
            stream_trip(sender, side.target).await?;
        }
        fig.requests += plan.stream_warmup as u64;
    }
    let before = cpu_snapshot(sides).await;
    for _ in 0..ROUNDS {
        for ((side, sender), fig) in sides.iter().zip(&mut senders).zip(&mut figures) {
            for _ in 0..plan.stream_requests / ROUNDS {
                fig.stream.push(stream_trip(sender, side.target).await?);
            }
            fig.requests += (plan.stream_requests / ROUNDS) as u64;
        }
    }
    let after = cpu_snapshot(sides).await;
    for ((fig, a), b) in figures.iter_mut().zip(&after).zip(&before) {
        fig.cpu_stream = a.since(*b);
    }
    drop(senders);

    for (side, fig) in sides.iter().zip(&mut figures) {
        eprintln!(
            "proxy_overhead: throughput at {} connections, {}",
            plan.connections, side.name
        );
        let before = side.cpu.map(CpuProbe::read).unwrap_or_default();
        fig.rps = throughput(plan, side.target).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        fig.cpu_throughput = side
            .cpu
            .map(CpuProbe::read)
            .unwrap_or_default()
            .since(before);
        fig.requests += fig.rps.total;
    }

    // Let the client connection tasks see their senders dropped and close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(figures)
}

#[derive(Default)]
struct Throughput {
    rps: f64,
    /// Requests completed inside the measured window.
    measured: u64,
    /// All requests sent, warm-up included.
    total: u64,
    failed: u64,
}

/// `plan.connections` keep-alive connections, each sending requests back to back; requests
/// finishing inside the window after the warm-up are counted.
async fn throughput(plan: &Plan, target: &Target) -> anyhow::Result<Throughput> {
    let mut senders = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        senders.push(target.connect().await?);
    }
    let start = Instant::now();
    let window_start = start + plan.throughput_warmup;
    let window_end = window_start + plan.throughput_run;
    let workers = senders.into_iter().map(|mut sender| async move {
        let (mut measured, mut total, mut failed) = (0u64, 0u64, 0u64);
        while Instant::now() < window_end {
            let ok = round_trip(&mut sender, target).await?;
            let done = Instant::now();
            total += 1;
            if !ok {
                failed += 1;
            } else if done >= window_start && done < window_end {
                measured += 1;
            }
        }
        anyhow::Ok((measured, total, failed))
    });
    let counts = futures_util::future::try_join_all(workers).await?;
    let measured = counts.iter().map(|c| c.0).sum();
    Ok(Throughput {
        rps: measured as f64 / plan.throughput_run.as_secs_f64(),
        measured,
        total: counts.iter().map(|c| c.1).sum(),
        failed: counts.iter().map(|c| c.2).sum(),
    })
}

// ---------------------------------------------------------------------------------------------
// The bare hop: the floor for any proxy on this machine
// ---------------------------------------------------------------------------------------------

/// A minimal HTTP/1 forwarder (hyper server in, one hyper client connection out per client
/// connection, bodies passed through untouched) on its own thread pinned to CPU 0, like the
/// proxy. It pays the same extra loopback hop and cross-CPU wake-ups as smartproxy and nothing
/// else, so `smartproxy − bare hop` is what smartproxy's own work costs.
struct BareHop {
    addr: SocketAddr,
    /// The forwarding thread, for its CPU time.
    tid: i32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareHop {
    fn start(upstream: SocketAddr, cpu: usize) -> anyhow::Result<Self> {
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

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

struct Startup {
    true_ms: Vec<f64>,
    run_ms: Vec<f64>,
    failure: Option<String>,
}

/// `smartproxy run --summary none --mock -- true` against `true`, alternating, after warm-up.
fn measure_startup(plan: &Plan, bin: &Path, config: &Path, tmp: &Path) -> anyhow::Result<Startup> {
    let run = || {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--summary", "none", "--mock", "--config"])
            .arg(config)
            .args(["--", "true"])
            .env("SMARTPROXY_DB", tmp.join("startup.db"))
            .env("SMARTPROXY_LOG_LEVEL", "error")
            .env("BENCH_UPSTREAM_KEY", UPSTREAM_KEY)
            .current_dir(tmp)
            .stdin(Stdio::null());
        cmd
    };
    let plain = || {
        let mut cmd = Command::new("true");
        cmd.current_dir(tmp).stdin(Stdio::null());
        cmd
    };
    let time = |mut cmd: Command| -> anyhow::Result<(f64, Option<String>)> {
        let t = Instant::now();
        let output = cmd.output()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let failure = (!output.status.success()).then(|| {
            format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
        });
        Ok((ms, failure))
    };
    let mut startup = Startup {
        true_ms: Vec::new(),
        run_ms: Vec::new(),
        failure: None,
    };
    for i in 0..plan.startup_warmup + plan.startup_runs {
        let (t_true, _) = time(plain())?;
        let (t_run, failure) = time(run())?;
        if let Some(f) = failure {
            startup.failure.get_or_insert(f);
        }
        if i >= plan.startup_warmup {
            startup.true_ms.push(t_true);
            startup.run_ms.push(t_run);
        }
    }
    Ok(startup)
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Pct {
    p50: f64,
    p90: f64,
    p99: f64,
    mean: f64,
}

/// Nearest-rank percentiles and the mean.
fn pct(samples: &[f64]) -> Pct {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = (p * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    Pct {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn verdict(pass: bool) -> &'static str {
    if pass { "pass" } else { "**FAIL**" }
}

/// What the table shows of one side.
struct SideStats {
    latency: Pct,
    first_event: Pct,
    complete: Pct,
    rps: f64,
    failed: u64,
    /// SSE events per reply, when every reply had the same number.
    events: Option<usize>,
    /// CPU µs per request (total, ledger writer), when the side's CPU time is known.
    cpu_latency: Option<(f64, f64)>,
    cpu_stream: Option<(f64, f64)>,
    cpu_throughput: Option<(f64, f64)>,
}

impl SideStats {
    fn of(side: &SideFigures) -> Self {
        let us = |f: fn(&StreamSample) -> Duration| {
            pct(&side
                .stream
                .iter()
                .map(|s| f(s).as_secs_f64() * 1e6)
                .collect::<Vec<_>>())
        };
        let first = side.stream.first().map(|s| s.events);
        Self {
            latency: pct(&side.latency),
            first_event: us(|s| s.first_event),
            complete: us(|s| s.complete),
            rps: side.rps.rps,
            failed: side.rps.failed,
            events: first.filter(|n| side.stream.iter().all(|s| s.events == *n)),
            cpu_latency: side
                .has_cpu
                .then(|| side.cpu_latency.per_request_us(side.latency.len())),
            cpu_stream: side
                .has_cpu
                .then(|| side.cpu_stream.per_request_us(side.stream.len())),
            cpu_throughput: side
                .has_cpu
                .then(|| side.cpu_throughput.per_request_us(side.rps.total as usize)),
        }
    }

    fn json(&self, side: &SideFigures) -> serde_json::Value {
        let p = |p: Pct| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "mean": p.mean});
        json!({
            "latency_us": p(self.latency),
            "latency_samples": side.latency.len(),
            "stream_first_event_us": p(self.first_event),
            "stream_complete_us": p(self.complete),
            "stream_samples": side.stream.len(),
            "stream_events_per_reply": self.events,
            "cpu_us_per_request_1conn": self.cpu_latency.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_stream": self.cpu_stream.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "cpu_us_per_request_throughput": self.cpu_throughput.map(|c| json!({"total": c.0, "ledger_writer": c.1})),
            "throughput_rps": self.rps,
            "throughput_measured_requests": side.rps.measured,
            "throughput_failed": self.failed,
            "requests_sent": side.requests,
        })
    }
}

struct Report {
    quick: bool,
    connections: usize,
    throughput_warmup: Duration,
    throughput_run: Duration,
    pinned: bool,
    mock_addr: SocketAddr,
    direct: SideFigures,
    bare_hop: SideFigures,
    proxy: SideFigures,
    rss_idle_kb: u64,
    rss_loaded_kb: u64,
    rss_peak_kb: u64,
    shutdown_ms: f64,
    proxy_status: ExitStatus,
    ledger_rows: i64,
    startup: Startup,
    elapsed: Duration,
}

/// Each figure judged against its target.
struct Verdicts {
    added_p50: bool,
    added_p99: bool,
    throughput: bool,
    stream_added_p50: bool,
    startup: bool,
    rss_idle: bool,
    rss_loaded: bool,
}

impl Report {
    fn stats(&self) -> (SideStats, SideStats, SideStats) {
        (
            SideStats::of(&self.direct),
            SideStats::of(&self.bare_hop),
            SideStats::of(&self.proxy),
        )
    }

    fn startup_medians(&self) -> (f64, f64) {
        (
            pct(&self.startup.true_ms).p50,
            pct(&self.startup.run_ms).p50,
        )
    }

    fn verdicts(&self) -> Verdicts {
        let (d, _, p) = self.stats();
        let (t_true, t_run) = self.startup_medians();
        Verdicts {
            added_p50: p.latency.p50 - d.latency.p50 <= target::ADDED_P50_US,
            added_p99: p.latency.p99 - d.latency.p99 <= target::ADDED_P99_US,
            throughput: p.rps >= target::THROUGHPUT_RPS && p.failed == 0,
            stream_added_p50: p.first_event.p50 - d.first_event.p50 <= target::STREAM_ADDED_P50_US,
            startup: t_run - t_true <= target::STARTUP_OVERHEAD_MS
                && self.startup.failure.is_none(),
            rss_idle: mb(self.rss_idle_kb) <= target::RSS_IDLE_MB,
            rss_loaded: mb(self.rss_loaded_kb) <= target::RSS_LOADED_MB,
        }
    }

    fn markdown(&self) -> String {
        let (d, h, p) = self.stats();
        let v = self.verdicts();
        let mut rows: Vec<[String; 8]> = Vec::new();
        let mut row = |cells: [&str; 8]| rows.push(cells.map(str::to_owned));
        let us = |x: f64| format!("{x:.1}");
        let added = |base: f64, x: f64| format!("{:+.1} µs (×{:.2})", x - base, x / base);
        let latency_row = |name: &str, f: fn(&Pct) -> f64, d: &Pct, h: &Pct, p: &Pct| {
            [
                name.to_owned(),
                us(f(d)),
                us(f(h)),
                us(f(p)),
                added(f(d), f(p)),
                added(f(h), f(p)),
            ]
        };
        let mut push = |cells: [String; 6], target: &str, result: &str| {
            let [a, b, c, e, f, g] = cells;
            row([&a, &b, &c, &e, &f, &g, target, result]);
        };
        push(
            latency_row(
                "latency p50, 1 conn (µs)",
                |p| p.p50,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            "added ≤ 200 µs",
            verdict(v.added_p50),
        );
        push(
            latency_row(
                "latency p90, 1 conn (µs)",
                |p| p.p90,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            "",
            "",
        );
        push(
            latency_row(
                "latency p99, 1 conn (µs)",
                |p| p.p99,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            "added ≤ 600 µs",
            verdict(v.added_p99),
        );
        push(
            latency_row(
                "latency mean, 1 conn (µs)",
                |p| p.mean,
                &d.latency,
                &h.latency,
                &p.latency,
            ),
            "",
            "",
        );
        let failed = if d.failed + h.failed + p.failed > 0 {
            format!(" ({} / {} / {} failed)", d.failed, h.failed, p.failed)
        } else {
            String::new()
        };
        push(
            [
                format!("throughput, {} conns (req/s)", self.connections),
                format!("{:.0}", d.rps),
                format!("{:.0}", h.rps),
                format!("{:.0}", p.rps),
                format!("×{:.2}{failed}", p.rps / d.rps),
                format!("×{:.2}", p.rps / h.rps),
            ],
            "≥ 30,000 req/s",
            verdict(v.throughput),
        );
        push(
            latency_row(
                "stream first event p50 (µs)",
                |p| p.p50,
                &d.first_event,
                &h.first_event,
                &p.first_event,
            ),
            "added ≤ 200 µs",
            verdict(v.stream_added_p50),
        );
        push(
            latency_row(
                "stream first event p99 (µs)",
                |p| p.p99,
                &d.first_event,
                &h.first_event,
                &p.first_event,
            ),
            "",
            "",
        );
        push(
            latency_row(
                "stream complete p50 (µs)",
                |p| p.p50,
                &d.complete,
                &h.complete,
                &p.complete,
            ),
            "",
            "",
        );
        let events = |e: Option<usize>| e.map_or_else(|| "varies".to_owned(), |n| n.to_string());
        push(
            [
                "stream events per reply".to_owned(),
                events(d.events),
                events(h.events),
                events(p.events),
                String::new(),
                String::new(),
            ],
            "same",
            verdict(d.events.is_some() && d.events == p.events && d.events == h.events),
        );
        let cpu = |c: Option<(f64, f64)>, ledger: bool| match c {
            Some((total, writer)) if ledger => format!("{total:.1} (ledger {writer:.1})"),
            Some((total, _)) => format!("{total:.1}"),
            None => "–".to_owned(),
        };
        let cpu_diff = |h: Option<(f64, f64)>, p: Option<(f64, f64)>| match (h, p) {
            (Some((h, _)), Some((p, _))) => format!("{:+.1} µs (×{:.2})", p - h, p / h),
            _ => String::new(),
        };
        for (name, h_cpu, p_cpu) in [
            ("CPU per request, 1 conn (µs)", h.cpu_latency, p.cpu_latency),
            ("CPU per stream, 1 conn (µs)", h.cpu_stream, p.cpu_stream),
            (
                &*format!("CPU per request, {} conns (µs)", self.connections),
                h.cpu_throughput,
                p.cpu_throughput,
            ),
        ] {
            push(
                [
                    name.to_owned(),
                    "–".to_owned(),
                    cpu(h_cpu, false),
                    cpu(p_cpu, true),
                    String::new(),
                    cpu_diff(h_cpu, p_cpu),
                ],
                "",
                "",
            );
        }
        let (t_true, t_run) = self.startup_medians();
        push(
            [
                format!("start-up, median of {} (ms)", self.startup.run_ms.len()),
                format!("{t_true:.2} (`true`)"),
                "–".to_owned(),
                format!("{t_run:.2} (`run --mock -- true`)"),
                format!("{:+.2} ms", t_run - t_true),
                String::new(),
            ],
            "≤ 20 ms",
            verdict(v.startup),
        );
        push(
            [
                "RSS idle (MB)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{:.1}", mb(self.rss_idle_kb)),
                String::new(),
                String::new(),
            ],
            "≤ 20 MB",
            verdict(v.rss_idle),
        );
        push(
            [
                "RSS after load (MB)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!(
                    "{:.1} (peak {:.1})",
                    mb(self.rss_loaded_kb),
                    mb(self.rss_peak_kb)
                ),
                format!(
                    "{:+.1} MB vs idle",
                    mb(self.rss_loaded_kb) - mb(self.rss_idle_kb)
                ),
                String::new(),
            ],
            "≤ 40 MB",
            verdict(v.rss_loaded),
        );
        push(
            [
                "ledger rows / requests sent".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{} / {}", self.ledger_rows, self.proxy.requests),
                String::new(),
                String::new(),
            ],
            "equal",
            verdict(u64::try_from(self.ledger_rows).ok() == Some(self.proxy.requests)),
        );
        push(
            [
                "exit after SIGTERM (ms)".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                format!("{:.1} ({})", self.shutdown_ms, self.proxy_status),
                String::new(),
                String::new(),
            ],
            "",
            "",
        );

        let mut out = format!(
            "\n## smartproxy proxy overhead{}\n\n",
            if self.quick {
                " (QUICK smoke run: figures not meaningful)"
            } else {
                ""
            }
        );
        out.push_str(&format!(
            "Load generator + mock upstream on CPU 1; smartproxy and the bare hop on CPU 0 ({}). \
             Mock on {}; request body {} bytes ({} streaming). {} sequential requests and {} streams \
             per side at 1 connection, in {ROUNDS} alternating blocks; throughput over {} s after {} s \
             warm-up. Bare hop = a minimal hyper HTTP/1 forwarder (no parsing, no ledger): the floor \
             for any proxy hop on this machine. Differences are between percentiles. Bench time {:.1} s.\n\n",
            if self.pinned { "pinned" } else { "NOT pinned" },
            self.mock_addr,
            BODIES[0].len(),
            BODIES[1].len(),
            self.direct.latency.len(),
            self.direct.stream.len(),
            self.throughput_run.as_secs_f64(),
            self.throughput_warmup.as_secs_f64(),
            self.elapsed.as_secs_f64(),
        ));
        out.push_str(
            "| figure | direct | bare hop | smartproxy | smartproxy − direct | smartproxy − bare hop | target | result |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---|---|\n");
        for r in &rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        if let Some(f) = &self.startup.failure {
            out.push_str(&format!(
                "\nwarning: `smartproxy run --mock -- true` failed: {f}\n"
            ));
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let (d, h, p) = self.stats();
        let v = self.verdicts();
        let (t_true, t_run) = self.startup_medians();
        json!({
            "quick": self.quick,
            "pinned": self.pinned,
            "connections": self.connections,
            "request_body_bytes": BODIES[0].len(),
            "direct": d.json(&self.direct),
            "bare_hop": h.json(&self.bare_hop),
            "smartproxy": p.json(&self.proxy),
            "added_us": {
                "latency_p50": p.latency.p50 - d.latency.p50,
                "latency_p90": p.latency.p90 - d.latency.p90,
                "latency_p99": p.latency.p99 - d.latency.p99,
                "latency_p50_vs_bare_hop": p.latency.p50 - h.latency.p50,
                "latency_p99_vs_bare_hop": p.latency.p99 - h.latency.p99,
                "stream_first_event_p50": p.first_event.p50 - d.first_event.p50,
                "stream_first_event_p99": p.first_event.p99 - d.first_event.p99,
                "stream_first_event_p50_vs_bare_hop": p.first_event.p50 - h.first_event.p50,
            },
            "throughput_ratio": p.rps / d.rps,
            "throughput_ratio_vs_bare_hop": p.rps / h.rps,
            "rss_kb": {"idle": self.rss_idle_kb, "after_load": self.rss_loaded_kb, "peak": self.rss_peak_kb},
            "startup_ms": {
                "runs": self.startup.run_ms.len(),
                "true_median": t_true,
                "run_median": t_run,
                "overhead": t_run - t_true,
                "failure": self.startup.failure,
            },
            "ledger_rows": self.ledger_rows,
            "shutdown_ms": self.shutdown_ms,
            "bench_seconds": self.elapsed.as_secs_f64(),
            "targets": {
                "added_p50_us": target::ADDED_P50_US,
                "added_p99_us": target::ADDED_P99_US,
                "throughput_rps": target::THROUGHPUT_RPS,
                "stream_added_p50_us": target::STREAM_ADDED_P50_US,
                "startup_overhead_ms": target::STARTUP_OVERHEAD_MS,
                "rss_idle_mb": target::RSS_IDLE_MB,
                "rss_loaded_mb": target::RSS_LOADED_MB,
            },
            "pass": {
                "added_p50": v.added_p50,
                "added_p99": v.added_p99,
                "throughput": v.throughput,
                "stream_added_p50": v.stream_added_p50,
                "startup": v.startup,
                "rss_idle": v.rss_idle,
                "rss_loaded": v.rss_loaded,
            },
        })
    }
}
