//! `smartproxy prices update` and `prices reset`: install or remove the price overlay.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::config::paths;
use crate::pricing::{self, Overlay};
use crate::printer;

/// How long a download of the price file may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy prices update --file model_prices_and_context_window.json\n  \
smartproxy prices update --url https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json\n\n\
The file is checked before anything is stored: an error names the model and key that is wrong.\n\
A running daemon picks the overlay up on its next config reload."
)]
pub struct UpdateArgs {
    /// A LiteLLM price file (model_prices_and_context_window.json).
    #[arg(long, value_name = "PATH", required_unless_present = "url")]
    pub file: Option<PathBuf>,

    /// Download the price file from URL.
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    pub url: Option<String>,
}

pub fn update(args: &UpdateArgs) -> anyhow::Result<u8> {
    let (text, origin) = match (&args.file, &args.url) {
        (Some(file), _) => (
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, Some(url)) => (download(url)?, url.clone()),
        (None, None) => anyhow::bail!("give the price file with --file PATH or --url URL"),
    };
    let overlay = Overlay::from_litellm(&text, &origin)?;
    let path = paths::price_overlay();
    overlay.store(&path)?;
    let c = overlay.compared_to_builtin();
    let mut message = format!(
        "installed {} model price(s) from {origin} in {}: {} added, {} changed, {} unchanged \
         against the built-in table ({})",
        overlay.entries().len(),
        path.display(),
        c.added,
        c.changed,
        c.unchanged,
        pricing::table_label()
    );
    if overlay.skipped > 0 {
        message.push_str(&format!(
            "; {} entries skipped (not chat or completion models, or without input and output prices)",
            overlay.skipped
        ));
    }
    if !overlay.several_thresholds.is_empty() {
        message.push_str(&format!(
            "; left out, for prices above several prompt sizes (smartproxy prices one \
             long-context tier a model): {}",
            overlay.several_thresholds.join(", ")
        ));
    }
    printer::out(&message);
    Ok(0)
}

fn download(url: &str) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(DOWNLOAD_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        let reply = client
            .get(url)
            .send()
            .await
            .with_context(|| format!("cannot download {url}"))?;
        let status = reply.status();
        if !status.is_success() {
            anyhow::bail!("cannot download {url}: the server answered {status}");
        }
        reply
            .text()
            .await
            .with_context(|| format!("cannot download {url}"))
    })
}

pub fn reset() -> anyhow::Result<u8> {
    let path = paths::price_overlay();
    match std::fs::remove_file(&path) {
        Ok(()) => printer::out(&format!(
            "removed the price overlay {}; prices come from the built-in table ({})",
            path.display(),
            pricing::table_label()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => printer::out(&format!(
            "no price overlay installed ({} does not exist)",
            path.display()
        )),
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    Ok(0)
}
