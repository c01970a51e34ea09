//! `smartproxy request --file req.json`: one request through the configured routing, with the
//! same proxy, retries and ledger as any other; the reply on stdout, routing headers on stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;

use crate::budget::SessionBudget;
use crate::ledger::{Ledger, SessionEnd, SessionStart, now_ms};
use crate::printer;
use crate::proxy::{AppState, Server, SessionInfo};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  smartproxy request --file testdata/openai_chat.json")]
pub struct RequestArgs {
    /// A Chat Completions request body (JSON); `stream: true` prints events as they arrive.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Serve it from the built-in mock provider.
    #[arg(long)]
    pub mock: bool,
}

pub fn request(args: &RequestArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let body = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut config = super::load_config(config_path)?;
    if args.mock {
        config = config.mock_only();
    }
    let ledger = Ledger::open_at(&config.database).context("cannot open the ledger")?;
    let session_id = super::serving::random_hex(8);
    ledger.session_started(SessionStart {
        id: session_id.clone(),
        parent_id: None,
        kind: "request",
        tag: Some("request".to_owned()),
        program: Some(args.file.display().to_string()),
        cwd: std::env::current_dir()
            .ok()
            .map(|d| d.display().to_string()),
        pid: Some(std::process::id()),
        started_ms: now_ms(),
        budget_usd: config.budget.session_usd,
        attribution: Default::default(),
    });
    let budget = SessionBudget::new(config.budget.session_usd);
    let session = SessionInfo {
        id: Some(session_id.clone()),
        tag: Some("request".to_owned()),
    };
    let state = AppState::builder(Arc::new(config), ledger.clone())
        .session(session, budget)
        .build()?;
    let state = Arc::new(state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let ok = runtime.block_on(async {
        let server = Server::bind(([127, 0, 0, 1], 0).into(), state).await?;
        let url = format!("http://{}/v1/chat/completions", server.local_addr());
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let mut notes = format!("status: {status}\n");
        for (name, value) in response.headers() {
            if name.as_str().starts_with("x-smartproxy-") || name == "retry-after" {
                notes.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
        }
        printer::note(&notes);
        let mut stream = response.bytes_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            printer::out_raw(&chunk);
            out.extend_from_slice(&chunk);
        }
        if !out.ends_with(b"\n") {
            printer::out_raw(b"\n");
        }
        server.shutdown(Duration::from_secs(5)).await;
        anyhow::Ok(status.is_success())
    })?;
    drop(runtime);
    ledger.session_ended(SessionEnd {
        id: session_id,
        ended_ms: now_ms(),
        exit_code: Some(if ok { 0 } else { 1 }),
        end_branch: None,
        end_head: None,
    });
    ledger.flush(Duration::from_secs(10))?;
    Ok(if ok { 0 } else { super::EXIT_FAILURE })
}
