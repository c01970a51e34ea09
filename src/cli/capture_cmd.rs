//! `smartproxy capture show|stats|clear`: read the opt-in body capture without the web UI, and
//! opening the capture store for the commands that serve requests.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::format;
use crate::capture::{self, CaptureHandle, Kind};
use crate::config::{CaptureStoreKind, Config};
use crate::printer;

#[derive(Debug, clap::Subcommand)]
pub enum CaptureCommand {
    /// Print a request's captured bodies: both, each under a heading, or one of them as it was
    /// (for piping to `jq`). Sealed bodies need SMARTPROXY_CAPTURE_KEY.
    #[command(
        after_help = "Request ids are in the x-smartproxy-request-id header of each reply and in the ledger (requests.id).\n\nExamples:\n  smartproxy capture show req_0190c3a1...\n  smartproxy capture show req_0190c3a1... --response | jq ."
    )]
    Show {
        /// The request id (`req_...`).
        #[arg(value_name = "REQUEST_ID")]
        id: String,
        /// Only the request body, exactly as captured.
        #[arg(long, conflicts_with = "response")]
        request: bool,
        /// Only the response body, exactly as captured.
        #[arg(long)]
        response: bool,
    },
    /// Where the captures are, how many and how large.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete every captured body.
    Clear,
}

/// The capture store for a serving command, when `capture.enabled` (or `force`, from
/// `run --capture`); a malformed or weak SMARTPROXY_CAPTURE_KEY stops start-up rather than
/// capture in the clear.
pub(crate) fn open_for_serving(config: &Config) -> anyhow::Result<Option<Arc<CaptureHandle>>> {
    if !config.capture.enabled {
        return Ok(None);
    }
    let cipher = capture::cipher_from_env()?;
    let handle = CaptureHandle::open(&config.capture, cipher.clone()).with_context(|| {
        format!(
            "cannot open the capture store {}",
            config.capture.path.display()
        )
    })?;
    let place = match config.capture.store {
        CaptureStoreKind::File => config.capture.path.display().to_string(),
        CaptureStoreKind::Memory => "memory".to_owned(),
    };
    let sealing = if cipher.is_some() {
        "encrypted with SMARTPROXY_CAPTURE_KEY"
    } else {
        "NOT encrypted (set SMARTPROXY_CAPTURE_KEY to encrypt)"
    };
    tracing::info!("capturing request and response bodies to {place}, {sealing}");
    Ok(Some(Arc::new(handle)))
}

pub fn capture(cmd: &CaptureCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let c = &config.capture;
    match cmd {
        CaptureCommand::Show {
            id,
            request,
            response,
        } => {
            let Some(found) = capture::load(c, id)? else {
                printer::error(&format!(
                    "nothing captured for {id} (capture is {}; bodies over the caps are not kept)",
                    if c.enabled { "on" } else { "off" }
                ));
                return Ok(super::EXIT_FAILURE);
            };
            let only = match (request, response) {
                (true, _) => Some(Kind::Request),
                (_, true) => Some(Kind::Response),
                _ => None,
            };
            if let Some(kind) = only {
                let Some(body) = found.get(kind) else {
                    printer::error(&format!("no {} body was captured for {id}", kind.label()));
                    return Ok(super::EXIT_FAILURE);
                };
                printer::out_raw(body);
                return Ok(0);
            }
            for kind in [Kind::Request, Kind::Response] {
                match found.get(kind) {
                    Some(body) => {
                        printer::out(&format!("== {} ({} bytes) ==", kind.label(), body.len()));
                        printer::out(&String::from_utf8_lossy(body));
                    }
                    None => printer::out(&format!("== {} (not captured) ==", kind.label())),
                }
            }
        }
        CaptureCommand::Stats { json } => {
            let stats = capture::stats(c)?.unwrap_or_default();
            let encryption = if capture::cipher_from_env().ok().flatten().is_some() {
                "new blobs encrypted (SMARTPROXY_CAPTURE_KEY is set)"
            } else {
                "new blobs NOT encrypted (SMARTPROXY_CAPTURE_KEY is not set)"
            };
            if *json {
                printer::out(
                    &json!({"enabled": c.enabled, "path": c.path.display().to_string(),
                        "requests": stats.requests, "blobs": stats.blobs, "bytes": stats.bytes,
                        "encrypted_blobs": stats.encrypted_blobs,
                        "max_blob_bytes": c.max_blob_bytes, "max_total_bytes": c.max_total_bytes})
                    .to_string(),
                );
            } else {
                printer::out(&format!(
                    "capture {} ({})\n  store:    {}\n  requests: {}, {} bodies, {} of {} bytes\n  encrypted bodies: {}; {encryption}\n  per-body cap: {} bytes",
                    if c.enabled { "on" } else { "off" },
                    if c.enabled {
                        "capture.enabled"
                    } else {
                        "turn on with capture.enabled or `run --capture`"
                    },
                    c.path.display(),
                    format::count(stats.requests),
                    format::count(stats.blobs),
                    format::count(stats.bytes),
                    format::count(c.max_total_bytes),
                    format::count(stats.encrypted_blobs),
                    format::count(c.max_blob_bytes),
                ));
            }
        }
        CaptureCommand::Clear => {
            let removed = capture::clear(c)?;
            printer::out(&format!(
                "removed {removed} captured bod{}",
                if removed == 1 { "y" } else { "ies" }
            ));
        }
    }
    Ok(0)
}
