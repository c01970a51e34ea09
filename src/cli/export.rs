//! `smartproxy export`: the ledger's requests as CSV or JSON Lines, for spreadsheets, notebooks
//! and billing checks. Streams a row at a time; `-o FILE` appears whole or not at all.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::stats::{parse_since, parse_time, select_session};
use crate::ledger::export::{ExportError, Format};
use crate::ledger::query::Filter;
use crate::ledger::reader::LedgerReader;
use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy export --format csv -o requests.csv\n  \
smartproxy export --format jsonl --since 7d | jq .cost_usd\n  \
smartproxy export --format csv --session 3f2a -o session.csv\n\n\
Columns: started_at (RFC 3339, UTC), every column of the ledger's requests table (ids, times in \
ms since the epoch, route, provider, models, status, outcome, tokens, cost_usd, latency_ms, ...) \
and session_tag. Never prompts or replies: the ledger has none."
)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,

    /// Only requests since DATE: `2026-11-01`, an RFC 3339 time, or an age such as `24h`, `7d`.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only requests before DATE (same forms as --since).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    /// Only this session and the runs nested in it (a full id or a unique prefix).
    #[arg(long, value_name = "ID", conflicts_with = "last")]
    pub session: Option<String>,

    /// Only the most recent session.
    #[arg(long)]
    pub last: bool,

    /// Write to FILE instead of stdout (written beside it first, renamed when complete); `-` is
    /// stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn export(args: &ExportArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let config = super::load_config(config_path)?;
    let mut reader = LedgerReader::open(&config.database)?;
    let filter = Filter {
        session_id: select_session(&reader, args.last, args.session.as_deref())?,
        since_ms: args.since.as_deref().map(parse_since).transpose()?,
        until_ms: args
            .until
            .as_deref()
            .map(|text| parse_time("--until", text))
            .transpose()?,
    };
    let total = reader.export_count(&filter)?;
    let bar = printer::progress(
        Some(total),
        "{bar:30} {human_pos}/{human_len} rows  {per_sec}  eta {eta}",
    );
    let mut progress = |n: u64| bar.set_position(n);
    // `-o -` is standard output, as in every Unix tool (`./-` names a file called `-`).
    let output = args.output.as_ref().filter(|path| path.as_os_str() != "-");
    let written = match output {
        Some(path) => to_file(path, |out| {
            reader.export(&filter, args.format, out, &mut progress)
        })?,
        None => {
            let mut out = printer::stdout_writer();
            match reader.export(&filter, args.format, &mut out, &mut progress) {
                Ok(n) => n,
                // `| head` closed the pipe: the reader has what it wanted.
                Err(ExportError::Io(e)) if e.kind() == ErrorKind::BrokenPipe => return Ok(0),
                Err(ExportError::Csv(e)) if is_broken_pipe(&e) => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
    };
    bar.finish_and_clear();
    if let Some(path) = output {
        printer::note(&format!(
            "exported {written} request{} to {}",
            if written == 1 { "" } else { "s" },
            path.display()
        ));
    }
    Ok(0)
}

fn is_broken_pipe(err: &csv::Error) -> bool {
    matches!(err.kind(), csv::ErrorKind::Io(e) if e.kind() == ErrorKind::BrokenPipe)
}

/// Writes through a temporary file beside `path` and renames it into place once complete, so
/// an interrupted export never leaves a truncated file that looks whole.
fn to_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<u64, ExportError>,
) -> anyhow::Result<u64> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".smartproxy-export-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let written = {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, temp.as_file_mut());
        let n = write(&mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        n
    };
    temp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(written)
}
