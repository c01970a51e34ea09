//! `smartproxy ledger migrate --to postgres://...`: moving from solo to team by copying a SQLite
//! ledger into PostgreSQL (the copy itself is `ledger::postgres::import`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::config::{LedgerLocation, PgUrl};
use crate::ledger::postgres::import;
use crate::printer;

#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// Copy a SQLite ledger into a PostgreSQL ledger (team mode).
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy ledger migrate --to postgres://me@db.internal/smartproxy\n  \
smartproxy ledger migrate --from ~/old-ledger.db --to postgres://me@db/smartproxy --json\n\n\
Copies sessions, requests (with their attempts) and anomalies, and adds the copied requests to \
PostgreSQL's daily roll-up. Safe to run again, or after it was stopped halfway: rows PostgreSQL \
already holds are skipped, never doubled. Fingerprints and client hashes are copied as they are: \
they were made with the SQLite ledger's salt, so they do not match those PostgreSQL's own salt \
gives new rows. The SQLite ledger is only read (an older one is first brought up to this \
version's schema, as any command does). Then point `database:` (or SMARTPROXY_DB) at \
the URL."
)]
pub struct MigrateArgs {
    /// The PostgreSQL ledger to copy into: postgres://USER@HOST:PORT/DATABASE (created tables
    /// and migrations included).
    #[arg(long, value_name = "URL")]
    pub to: String,

    /// The SQLite ledger to copy [default: the configured SQLite ledger, else the default path].
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,

    /// Print a JSON summary on stdout instead of the final line on stderr.
    #[arg(long)]
    pub json: bool,

    /// Requests per transaction.
    #[arg(long, default_value_t = 2000, hide = true)]
    pub batch: usize,
}

pub fn ledger(cmd: &LedgerCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    match cmd {
        LedgerCommand::Migrate(args) => migrate(args, config_path),
    }
}

fn migrate(args: &MigrateArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    if !LedgerLocation::is_postgres_text(&args.to) {
        anyhow::bail!(
            "--to must be a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE), not `{}`",
            args.to
        );
    }
    let url = PgUrl::parse(&args.to).map_err(anyhow::Error::msg)?;
    let from = match &args.from {
        Some(path) => crate::config::paths::expand_home(&path.to_string_lossy()),
        None => match super::load_config(config_path)?.database {
            LedgerLocation::Sqlite(path) => path,
            LedgerLocation::Postgres(_) => import::default_source(),
        },
    };
    if !from.exists() {
        anyhow::bail!(
            "no SQLite ledger at {}: give the ledger to copy with --from PATH",
            from.display()
        );
    }
    // A test's way to stop a copy halfway, as a kill would.
    let stop_after = std::env::var("SMARTPROXY_TEST_MIGRATE_STOP_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let bar = printer::progress(
        None,
        "{bar:30} {human_pos}/{human_len} requests  {per_sec}  eta {eta}",
    );
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let copied =
        import::copy(&from, &url, args.batch, stop_after, &mut progress).with_context(|| {
            format!(
                "cannot copy {} into {} (once fixed, run it again: what was copied is skipped)",
                from.display(),
                url.redacted()
            )
        })?;
    bar.finish_and_clear();
    if args.json {
        printer::out(
            &json!({
                "from": from.display().to_string(),
                "to": url.redacted(),
                "requests": copied.requests,
                "inserted": copied.inserted,
                "already_there": copied.requests - copied.inserted.min(copied.requests),
                "sessions": copied.sessions,
                "anomalies": copied.anomalies,
                "cost_usd": copied.cost_nusd as f64 / 1e9,
            })
            .to_string(),
        );
    } else {
        printer::note(&format!(
            "copied {} into {}: {} requests ({} new, {} already there), {} sessions, {} anomalies, {}",
            from.display(),
            url.redacted(),
            copied.requests,
            copied.inserted,
            copied.requests - copied.inserted.min(copied.requests),
            copied.sessions,
            copied.anomalies,
            super::format::money(Some(copied.cost_nusd as f64 / 1e9)),
        ));
    }
    Ok(0)
}
