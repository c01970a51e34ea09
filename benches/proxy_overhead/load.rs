//! The load generator: keep-alive hyper 1 client connections sending latency, streaming and
//! throughput requests to each side, with the CPU time each side spent on them.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use crate::cpu::{CpuProbe, CpuTime};
use crate::mock_upstream::{ANTHROPIC_MODEL, PACED_MODEL};
use crate::proxy_process::proc_status_kb;
use crate::{MODEL, Plan, ROUNDS};

/// The request bodies: ~300 bytes, model gpt-4o-mini, a system and a user message; plain,
/// streamed, and streamed at the mock's pace (`PACED_MODEL`).
pub static BODIES: LazyLock<[Bytes; 3]> = LazyLock::new(|| {
    let body = |stream: bool, model: &str| {
        let mut b = json!({
            "model": model,
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
    [
        body(false, MODEL),
        body(true, MODEL),
        body(true, PACED_MODEL),
    ]
});

/// An agent's turn, as coding agents send one: a system prompt and 100 messages of code-like
/// text (quotes, backslashes, newlines), ~256 KiB. The proxy reads, fingerprints and forwards
/// every byte of it; nginx only forwards.
pub static BIG_BODY: LazyLock<Bytes> = LazyLock::new(|| {
    let line = "    if let Some(x) = map.get(\"key\") { println!(\"{x}\\n\"); }\n";
    let mut messages =
        vec![json!({"role": "system", "content": "You are a coding agent. ".repeat(40)})];
    for i in 0..100 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": line.repeat(40)}));
    }
    let body = json!({"model": MODEL, "messages": messages, "max_tokens": 256});
    Bytes::from(serde_json::to_vec(&body).unwrap())
});

/// The same turn as Claude Code sends it to Anthropic's Messages API, ~256 KiB: a system prompt
/// with a cache breakpoint, a dozen tools, and 50 rounds of a `Read` tool call and its result
/// (code). Its tools make the loop breaker read its newest turn, as it does for Claude Code; the
/// newest result differs between the `MESSAGES_TURNS` bodies sent in turn, so that the
/// breaker sees an agent making progress, not one stuck on a step.
pub static BIG_MESSAGES_BODIES: LazyLock<Vec<Bytes>> =
    LazyLock::new(|| (0..MESSAGES_TURNS).map(big_messages_body).collect());

const MESSAGES_TURNS: usize = 10;

fn big_messages_body(turn: usize) -> Bytes {
    let line = "    if let Some(x) = map.get(\"key\") { println!(\"{x}\\n\"); }\n";
    let tools: Vec<_> = (0..12)
        .map(|i| {
            json!({
                "name": format!("Tool{i}"),
                "description": "Reads a file from the local filesystem. ".repeat(20),
                "input_schema": {
                    "type": "object",
                    "properties": {"file_path": {"type": "string", "description": "The absolute path"}},
                    "required": ["file_path"]
                }
            })
        })
        .collect();
    let mut messages = vec![json!({"role": "user", "content": "Fix the failing test."})];
    for i in 0..50 {
        let id = format!("toolu_{i:04}");
        let result = if i == 49 {
            format!("// turn {turn}\n{}", line.repeat(80))
        } else {
            line.repeat(80)
        };
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me read the next file."},
            {"type": "tool_use", "id": id, "name": "Tool0", "input": {"file_path": format!("/src/f{i}.rs")}}
        ]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": result}
        ]}));
    }
    let body = json!({
        "model": ANTHROPIC_MODEL,
        "max_tokens": 32_000,
        "system": [{"type": "text", "text": "You are Claude Code. ".repeat(50), "cache_control": {"type": "ephemeral"}}],
        "tools": tools,
        "messages": messages,
    });
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

/// The API a request is written for.
#[derive(Clone, Copy)]
pub enum Api {
    /// OpenAI's chat completions.
    Chat,
    /// Anthropic's Messages: its path and its key header.
    Messages,
}

pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    auth: HeaderValue,
    key: HeaderValue,
}

impl Target {
    pub fn new(addr: SocketAddr, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: HeaderValue::from_str(&format!("Bearer {key}"))?,
            key: HeaderValue::from_str(key)?,
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

    fn request_with(&self, stream: bool, body: Bytes) -> Request<Full<Bytes>> {
        self.request_for(Api::Chat, stream, body)
    }

    fn request_for(&self, api: Api, stream: bool, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = http::Uri::from_static(match api {
            Api::Chat => "/v1/chat/completions",
            Api::Messages => "/v1/messages",
        });
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        match api {
            Api::Chat => {
                h.insert(AUTHORIZATION, self.auth.clone());
            }
            Api::Messages => {
                h.insert("x-api-key", self.key.clone());
                h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
            }
        }
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

/// A connection the side closed while the others took their turn (an idle timeout) is
/// opened again.
async fn reconnect_if_closed(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
) -> anyhow::Result<()> {
    if sender.is_closed() {
        *sender = target.connect().await?;
    }
    Ok(())
}

/// One whole request; Ok(false) for a non-200 answer.
async fn round_trip(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    api: Api,
    body: &Bytes,
) -> anyhow::Result<bool> {
    sender.ready().await?;
    let response = sender
        .send_request(target.request_for(api, false, body.clone()))
        .await?;
    let ok = response.status() == StatusCode::OK;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(ok && body.len() > 100)
}

pub struct StreamSample {
    pub first_event: Duration,
    pub complete: Duration,
    pub events: usize,
}

/// One streaming request: time to the first body bytes holding `data:`, and to the end.
async fn stream_trip(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
) -> anyhow::Result<StreamSample> {
    sender.ready().await?;
    let started = Instant::now();
    let response = sender
        .send_request(target.request_with(true, BODIES[1].clone()))
        .await?;
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
pub struct Side<'a> {
    pub name: &'a str,
    pub target: &'a Target,
    pub cpu: Option<CpuProbe>,
}

/// What was measured on one side.
#[derive(Default)]
pub struct SideFigures {
    pub latency: Vec<f64>,
    /// Round-trip µs of each ~256 KiB request (`BIG_BODY`), one connection.
    pub big_latency: Vec<f64>,
    /// The same for the ~256 KiB Messages requests (`BIG_MESSAGES_BODIES`).
    pub messages_latency: Vec<f64>,
    pub stream: Vec<StreamSample>,
    pub rps: Throughput,
    /// Round-trip µs of each request completed in the throughput window (all connections busy).
    pub loaded_latency: Vec<f64>,
    /// Every request sent to this side, warm-up included.
    pub requests: u64,
    /// CPU time the side spent on the measured latency requests, streams, and throughput run
    /// (warm-up included there).
    pub cpu_latency: CpuTime,
    /// CPU time on the timed ~256 KiB chat and Messages requests.
    pub cpu_big: CpuTime,
    pub cpu_messages: CpuTime,
    pub cpu_stream: CpuTime,
    pub cpu_throughput: CpuTime,
    pub has_cpu: bool,
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
pub async fn run_load(plan: &Plan, sides: &[Side<'_>]) -> anyhow::Result<Vec<SideFigures>> {
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

    let phases = [
        (
            "latency at 1 connection",
            Phase {
                api: Api::Chat,
                bodies: std::slice::from_ref(&BODIES[0]),
                warmup: plan.latency_warmup,
                requests: plan.latency_requests,
                samples: |f| &mut f.latency,
                cpu: |f| &mut f.cpu_latency,
            },
        ),
        (
            "latency at 1 connection, ~256 KiB requests",
            Phase {
                api: Api::Chat,
                bodies: std::slice::from_ref(&*BIG_BODY),
                warmup: plan.big_warmup,
                requests: plan.big_requests,
                samples: |f| &mut f.big_latency,
                cpu: |f| &mut f.cpu_big,
            },
        ),
        (
            "latency at 1 connection, ~256 KiB Anthropic Messages requests",
            Phase {
                api: Api::Messages,
                bodies: &BIG_MESSAGES_BODIES,
                warmup: plan.big_warmup,
                requests: plan.big_requests,
                samples: |f| &mut f.messages_latency,
                cpu: |f| &mut f.cpu_messages,
            },
        ),
    ];
    for (title, phase) in &phases {
        eprintln!("proxy_overhead: {title}");
        warm_up(sides, &mut senders, &mut figures, phase).await?;
        let before = cpu_snapshot(sides).await;
        timed_round_trips(sides, &mut senders, &mut figures, phase).await?;
        let after = cpu_snapshot(sides).await;
        for ((fig, a), b) in figures.iter_mut().zip(&after).zip(&before) {
            *(phase.cpu)(fig) = a.since(*b);
        }
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
            reconnect_if_closed(sender, side.target).await?;
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

    // Throughput: the sides take turns in `throughput_blocks` blocks (as the sequential phases
    // do), each on its own keep-alive connections opened once, so that a burst of background
    // load hits every side rather than whichever ran at the time.
    let mut pools = Vec::with_capacity(sides.len());
    for side in sides {
        let mut pool = Vec::with_capacity(plan.connections);
        for _ in 0..plan.connections {
            pool.push(side.target.connect().await?);
        }
        pools.push(pool);
    }
    let blocks = plan.throughput_blocks.max(1);
    let block_run = plan.throughput_run / u32::try_from(blocks)?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for block in 0..blocks {
        for (((side, pool), fig), rates) in sides
            .iter()
            .zip(&mut pools)
            .zip(&mut figures)
            .zip(&mut rates)
        {
            eprintln!(
                "proxy_overhead: throughput at {} connections, {} (block {}/{blocks})",
                plan.connections,
                side.name,
                block + 1
            );
            let warmup = if block == 0 {
                plan.throughput_warmup
            } else {
                plan.throughput_block_warmup
            };
            // Fresh connections each block: the other sides' blocks take longer than a proxy
            // keeps an idle connection (smartproxy's header timeout, 10 s).
            for sender in pool.iter_mut() {
                *sender = side.target.connect().await?;
            }
            let before = side.cpu.map(CpuProbe::read).unwrap_or_default();
            let measured = throughput_block(pool, side.target, warmup, block_run).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let spent = side
                .cpu
                .map(CpuProbe::read)
                .unwrap_or_default()
                .since(before);
            fig.cpu_throughput = fig.cpu_throughput.plus(spent);
            fig.rps.measured += measured.measured;
            fig.rps.total += measured.total;
            fig.rps.failed += measured.failed;
            fig.loaded_latency.extend(measured.latency);
            fig.requests += measured.total;
            rates.extend(measured.rates);
        }
    }
    drop(pools);
    for (fig, mut rates) in figures.iter_mut().zip(rates) {
        rates.sort_by(f64::total_cmp);
        fig.rps.rps = match rates.len() {
            0 => 0.0,
            n if n % 2 == 1 => rates[n / 2],
            n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
        };
        fig.rps.mean_rps = fig.rps.measured as f64 / plan.throughput_run.as_secs_f64();
    }

    // Let the client connection tasks see their senders dropped and close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(figures)
}

/// A phase of whole requests at one connection: its API and bodies, how many requests warm each
/// side up and how many are timed, and where a side's round trips (µs) and CPU time go.
struct Phase<'a> {
    api: Api,
    /// Sent in turn.
    bodies: &'a [Bytes],
    warmup: usize,
    requests: usize,
    samples: fn(&mut SideFigures) -> &mut Vec<f64>,
    cpu: fn(&mut SideFigures) -> &mut CpuTime,
}

impl Phase<'_> {
    /// The body of a side's `n`th request of this round: the bodies go in turn across rounds
    /// too (a round of the `--profile` plan is one request).
    fn body(&self, fig: &SideFigures, n: usize) -> &Bytes {
        let sent = usize::try_from(fig.requests).unwrap_or(0);
        &self.bodies[(sent + n) % self.bodies.len()]
    }
}

/// `phase.warmup` untimed round trips a side.
async fn warm_up(
    sides: &[Side<'_>],
    senders: &mut [SendRequest<Full<Bytes>>],
    figures: &mut [SideFigures],
    phase: &Phase<'_>,
) -> anyhow::Result<()> {
    for ((side, sender), fig) in sides.iter().zip(senders.iter_mut()).zip(figures.iter_mut()) {
        reconnect_if_closed(sender, side.target).await?;
        for n in 0..phase.warmup {
            ensure!(
                round_trip(sender, side.target, phase.api, phase.body(fig, n)).await?,
                "{} refused a request",
                side.name
            );
        }
        fig.requests += phase.warmup as u64;
    }
    Ok(())
}

/// `phase.requests` timed round trips a side, the sides taking turns in `ROUNDS` blocks.
async fn timed_round_trips(
    sides: &[Side<'_>],
    senders: &mut [SendRequest<Full<Bytes>>],
    figures: &mut [SideFigures],
    phase: &Phase<'_>,
) -> anyhow::Result<()> {
    for _ in 0..ROUNDS {
        for ((side, sender), fig) in sides.iter().zip(senders.iter_mut()).zip(figures.iter_mut()) {
            reconnect_if_closed(sender, side.target).await?;
            for n in 0..phase.requests / ROUNDS {
                let t = Instant::now();
                ensure!(
                    round_trip(sender, side.target, phase.api, phase.body(fig, n)).await?,
                    "{} refused a request",
                    side.name
                );
                (phase.samples)(fig).push(t.elapsed().as_secs_f64() * 1e6);
            }
            fig.requests += (phase.requests / ROUNDS) as u64;
        }
    }
    Ok(())
}

#[derive(Default)]
pub struct Throughput {
    /// The median of the per-slot rates (over all blocks): a burst of background noise moves it
    /// less than it moves the mean.
    pub rps: f64,
    /// Requests in the window over its length.
    pub mean_rps: f64,
    /// Requests completed inside the measured window.
    pub measured: u64,
    /// All requests sent, warm-up included.
    pub total: u64,
    pub failed: u64,
}

/// One block of a side's throughput phase.
struct Block {
    /// Requests per second in each slot of the window.
    rates: Vec<f64>,
    /// Round-trip µs of the requests completed in the window.
    latency: Vec<f64>,
    measured: u64,
    total: u64,
    failed: u64,
}

/// Every connection in `pool` sends requests back to back for `warmup + run`; requests finishing
/// inside the window after the warm-up are counted, per one-second slot (a window shorter than
/// two seconds, as in the quick run, is one slot).
async fn throughput_block(
    pool: &mut [SendRequest<Full<Bytes>>],
    target: &Target,
    warmup: Duration,
    run: Duration,
) -> anyhow::Result<Block> {
    let slot = if run >= Duration::from_secs(2) {
        Duration::from_secs(1)
    } else {
        run
    };
    let slots = (run.as_secs_f64() / slot.as_secs_f64()).round().max(1.0) as usize;
    let window_start = Instant::now() + warmup;
    let window_end = window_start + run;
    let workers = pool.iter_mut().map(|sender| async move {
        let (mut per_slot, mut total, mut failed) = (vec![0u64; slots], 0u64, 0u64);
        let mut latency = Vec::new();
        while Instant::now() < window_end {
            let sent = Instant::now();
            let ok = round_trip(sender, target, Api::Chat, &BODIES[0]).await?;
            let done = Instant::now();
            total += 1;
            if !ok {
                failed += 1;
            } else if done >= window_start && done < window_end {
                let i = ((done - window_start).as_secs_f64() / slot.as_secs_f64()) as usize;
                if let Some(count) = per_slot.get_mut(i.min(slots - 1)) {
                    *count += 1;
                }
                latency.push((done - sent).as_secs_f64() * 1e6);
            }
        }
        anyhow::Ok((per_slot, total, failed, latency))
    });
    let counts = futures_util::future::try_join_all(workers).await?;
    let mut per_slot = vec![0u64; slots];
    for (worker, _, _, _) in &counts {
        for (sum, n) in per_slot.iter_mut().zip(worker) {
            *sum += n;
        }
    }
    Ok(Block {
        rates: per_slot
            .iter()
            .map(|n| *n as f64 / slot.as_secs_f64())
            .collect(),
        measured: per_slot.iter().sum(),
        total: counts.iter().map(|c| c.1).sum(),
        failed: counts.iter().map(|c| c.2).sum(),
        latency: counts.into_iter().flat_map(|c| c.3).collect(),
    })
}

/// What `many_streams` saw of one side.
#[derive(Default)]
pub struct ManyStreams {
    /// Milliseconds from the start of each client's connect to its first `data:` event.
    pub first_event_ms: Vec<f64>,
    pub failed: u64,
    /// The highest RSS and thread count of the side's process while the streams were open.
    pub rss_peak_kb: u64,
    pub threads_peak: u64,
}

/// `n` clients connect at once and each reads one stream the mock paces (an event every
/// `PACE`), as editors' agents waiting on a model do; the side's process (`pid`) is sampled
/// meanwhile. Bounded by `limit`: a stream still open then counts as failed.
pub async fn many_streams(
    target: &Target,
    n: usize,
    pid: Option<i32>,
    limit: Duration,
) -> ManyStreams {
    let clients = (0..n).map(|_| async {
        let started = Instant::now();
        let trip = async {
            let mut sender = target.connect().await?;
            sender.ready().await?;
            let response = sender
                .send_request(target.request_with(true, BODIES[2].clone()))
                .await?;
            ensure!(response.status() == StatusCode::OK, "{}", response.status());
            let mut body = response.into_body();
            let mut first = None;
            let mut tail = Vec::new();
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame?.data_ref() {
                    if first.is_none() && memchr::memmem::find(data, b"data:").is_some() {
                        first = Some(started.elapsed());
                    }
                    tail.extend_from_slice(data);
                    let keep = tail.len().saturating_sub(64);
                    tail.drain(..keep);
                }
            }
            ensure!(tail.ends_with(b"data: [DONE]\n\n"), "no [DONE]");
            first.context("no data: event")
        };
        match tokio::time::timeout(limit, trip).await {
            Ok(Ok(first)) => Some(first.as_secs_f64() * 1e3),
            _ => None,
        }
    });
    let all = futures_util::future::join_all(clients);
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = async move {
        let (mut rss, mut threads) = (0, 0);
        let Some(pid) = pid else {
            return (rss, threads);
        };
        loop {
            rss = rss.max(proc_status_kb(pid, "VmRSS").unwrap_or(0));
            threads = threads.max(proc_status_kb(pid, "Threads").unwrap_or(0));
            tokio::select! {
                _ = &mut done_rx => return (rss, threads),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    };
    let (results, (rss_peak_kb, threads_peak)) = tokio::join!(
        async {
            let r = all.await;
            let _ = done_tx.send(());
            r
        },
        sampler
    );
    let mut out = ManyStreams {
        rss_peak_kb,
        threads_peak,
        ..ManyStreams::default()
    };
    for r in results {
        match r {
            Some(ms) => out.first_event_ms.push(ms),
            None => out.failed += 1,
        }
    }
    out
}
