//! `smartproxy resume SESSION`: lets a session the loop breaker stopped continue. The proxy
//! that stopped it (a `run`'s or the daemon's) left a marker file in the runtime folder; this
//! removes it, and that proxy, which looks for the marker on each of the session's requests,
//! starts the session afresh.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::json;

use crate::printer;
use crate::proxy::loop_breaker::{Marker, marker_path};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy resume 1a2b3c4d\n  smartproxy resume --list\n\n\
The session id (or its first characters) is the one the 429 `loop_detected` answer and the \
stderr line name, as `smartproxy sessions` prints it. After a resume the breaker watches the \
session afresh: it can stop it again only after `loop_breaker.repeat` more requests."
)]
pub struct ResumeArgs {
    /// The stopped session: its id or an unambiguous prefix of it.
    #[arg(required_unless_present = "list")]
    pub session: Option<String>,
    /// List the sessions the loop breaker has stopped instead.
    #[arg(long)]
    pub list: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A stopped session's marker, read.
struct Stopped {
    path: PathBuf,
    marker: Marker,
}

pub fn resume(args: &ResumeArgs) -> anyhow::Result<u8> {
    let dir = super::pid_file::loop_markers_dir();
    let (live, gone) = stopped_sessions(&dir);
    // Markers of proxies that ended are of no use: their sessions ended with them.
    for ended in &gone {
        let _ = std::fs::remove_file(&ended.path);
    }
    if args.list {
        if args.json {
            let list: Vec<_> = live
                .iter()
                .map(|s| json!({"session": s.marker.session, "pid": s.marker.pid, "reason": s.marker.reason}))
                .collect();
            printer::out(&serde_json::to_string_pretty(&list)?);
        } else if live.is_empty() {
            printer::note("no session is stopped by the loop breaker");
        } else {
            for s in &live {
                let id = &s.marker.session;
                printer::out(&format!(
                    "{}  {}",
                    id.get(..8).unwrap_or(id),
                    s.marker.reason
                ));
            }
        }
        return Ok(0);
    }
    let wanted = args.session.as_deref().unwrap_or_default().trim();
    if wanted.is_empty() {
        bail!("name the session to resume (`smartproxy resume --list` shows the stopped ones)");
    }
    let matches: Vec<&Stopped> = live
        .iter()
        .filter(|s| s.marker.session.starts_with(wanted))
        .collect();
    let found = match matches.as_slice() {
        [one] => *one,
        [] => {
            let ended = gone.iter().any(|s| s.marker.session.starts_with(wanted));
            if ended {
                bail!(
                    "session {wanted} has ended: the proxy that stopped it is no longer running, so \
                     there is nothing to resume"
                );
            }
            bail!(
                "no running session {wanted} is stopped by the loop breaker: it never was, or \
                 it has ended ({}); `smartproxy resume --list` shows the stopped ones",
                if live.is_empty() {
                    "no session is stopped now".to_owned()
                } else {
                    format!("{} sessions are stopped now", live.len())
                }
            );
        }
        many => bail!(
            "{wanted} names {} stopped sessions ({}): give more of the id",
            many.len(),
            many.iter()
                .map(|s| s.marker.session.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    std::fs::remove_file(&found.path)
        .map_err(|e| anyhow::anyhow!("cannot remove the marker {}: {e}", found.path.display()))?;
    let id = &found.marker.session;
    if args.json {
        printer::out(&serde_json::to_string_pretty(
            &json!({"session": id, "resumed": true, "reason": found.marker.reason}),
        )?);
    } else {
        printer::note(&format!(
            "session {} resumed (it was stopped for: {}); its next request goes through",
            id.get(..8).unwrap_or(id),
            found.marker.reason
        ));
    }
    Ok(0)
}

/// The markers in `dir`: those whose proxy still runs, and those whose proxy ended.
fn stopped_sessions(dir: &std::path::Path) -> (Vec<Stopped>, Vec<Stopped>) {
    let mut live = Vec::new();
    let mut gone = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (live, gone);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(marker) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Marker>(&text).ok())
        else {
            continue;
        };
        if marker_path(dir, &marker.session) != path {
            continue;
        }
        let stopped = Stopped { path, marker };
        if super::pid_file::alive(stopped.marker.pid) {
            live.push(stopped);
        } else {
            gone.push(stopped);
        }
    }
    live.sort_by(|a, b| a.marker.session.cmp(&b.marker.session));
    (live, gone)
}
