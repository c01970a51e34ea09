//! `smartproxy providers check`: asks each configured provider for its model list, to show which
//! ones are reachable and accept their key, how fast they answer and how many models they list.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::config::{ProviderConfig, ProviderKind};
use crate::printer;
use crate::providers::anthropic::ANTHROPIC_VERSION;

/// How long one provider may take to list its models.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Subcommand)]
pub enum ProvidersCommand {
    /// Ask each provider for its models: does it answer, does it take its key, how fast?
    ///
    /// Requests, 10 s timeout each, all at once: OpenAI kind GET {base_url}/models with the
    /// bearer key; anthropic GET {base}/v1/models with x-api-key and anthropic-version; ollama
    /// GET {base}/api/tags; mock: no call. Prints provider, status (ok, http <status>, error,
    /// no key, disabled), latency and model count ("?" when the reply lists none). Keys are
    /// sent, never printed, and the provider's error text is not shown (some echo the key).
    /// Exits 1 when an enabled provider fails.
    #[command(
        after_help = "Examples:\n  smartproxy providers check\n  smartproxy providers check --json | jq '.[] | select(.ok | not)'\n  \
smartproxy --config work.yaml providers check"
    )]
    Check {
        /// Print a JSON array, one object per provider.
        #[arg(long)]
        json: bool,
    },
}

/// What one provider answered.
#[derive(Debug, Serialize)]
struct Probe {
    provider: String,
    kind: &'static str,
    /// `ok`, `http <status>`, `error`, `no key` or `disabled`.
    status: String,
    /// False when an enabled provider could not be used.
    ok: bool,
    url: Option<String>,
    latency_ms: Option<u64>,
    models: Option<usize>,
    /// What went wrong and what to do, when something did.
    note: Option<String>,
}

impl Probe {
    fn new(p: &ProviderConfig, status: &str, ok: bool) -> Self {
        Self {
            provider: p.name.clone(),
            kind: p.kind.as_str(),
            status: status.to_owned(),
            ok,
            url: None,
            latency_ms: None,
            models: None,
            note: None,
        }
    }

    fn note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }
}

pub fn providers(cmd: &ProvidersCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let ProvidersCommand::Check { json } = cmd;
    let config = super::load_config(config_path)?;
    if config.providers.is_empty() {
        anyhow::bail!(
            "no providers configured ({}): export OPENAI_API_KEY or ANTHROPIC_API_KEY, or add \
             `providers:` to a config file",
            config.source_display()
        );
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .context("cannot set up the HTTP client")?;
    // A provider with `tls.ca_file` gets a client that trusts its CA, as the proxy does.
    let clients = config
        .providers
        .iter()
        .map(|p| client_for(&client, p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spinner = spinner(config.providers.len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let probes: Vec<Probe> = runtime.block_on(futures_util::future::join_all(
        config.providers.iter().zip(clients).map(|(p, client)| {
            let spinner = spinner.clone();
            async move {
                let probe = probe(&client, p).await;
                spinner.inc(1);
                probe
            }
        }),
    ));
    spinner.finish_and_clear();
    if *json {
        printer::out(&serde_json::to_string(&probes)?);
    } else {
        printer::out(&table(&probes));
    }
    let failed = probes.iter().any(|p| !p.ok);
    Ok(if failed { super::EXIT_FAILURE } else { 0 })
}

/// A spinner on stderr while the providers answer; hidden when stderr is not a terminal.
fn spinner(total: usize) -> ProgressBar {
    printer::progress(
        Some(total as u64),
        "{spinner} asking providers for their models ({pos}/{len})",
    )
}

/// The shared client, or one that also trusts the provider's `tls.ca_file`.
fn client_for(shared: &reqwest::Client, p: &ProviderConfig) -> anyhow::Result<reqwest::Client> {
    let Some(bundle) = &p.ca_bundle else {
        return Ok(shared.clone());
    };
    let certs = crate::config::tls::ca_certificates(&bundle.pem).map_err(|problem| {
        anyhow::anyhow!(
            "provider {}: tls.ca_file {}: {problem}",
            p.name,
            bundle.path.display()
        )
    })?;
    let mut builder = reqwest::Client::builder().timeout(TIMEOUT);
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().context("cannot set up the HTTP client")
}

/// The models endpoint of `p` and the headers it needs (keys included; never shown).
fn request(client: &reqwest::Client, p: &ProviderConfig) -> Option<reqwest::RequestBuilder> {
    let key = p.api_key.as_ref().map(|k| k.expose());
    let base = p.base_url.trim_end_matches('/');
    let req = match p.kind {
        ProviderKind::Mock => return None,
        ProviderKind::OpenAi => {
            let req = client.get(format!("{base}/models"));
            match key {
                Some(key) => req.bearer_auth(key),
                None => req,
            }
        }
        ProviderKind::Anthropic => {
            let base = base.trim_end_matches("/v1");
            let req = client
                .get(format!("{base}/v1/models"))
                .header("anthropic-version", ANTHROPIC_VERSION);
            match key {
                Some(key) => req.header("x-api-key", key),
                None => req,
            }
        }
        ProviderKind::Ollama => {
            let base = base.trim_end_matches("/v1").trim_end_matches("/api");
            client.get(format!("{base}/api/tags"))
        }
    };
    Some(req)
}

async fn probe(client: &reqwest::Client, p: &ProviderConfig) -> Probe {
    if !p.enabled {
        return Probe::new(p, "disabled", true);
    }
    if p.missing_credential() {
        let var = p.api_key_env.as_deref().unwrap_or("its key variable");
        return Probe::new(p, "no key", false).note(format!("{var} is unset: export it"));
    }
    let Some(req) = request(client, p) else {
        let mut probe = Probe::new(p, "ok", true);
        probe.note = Some("built-in, offline".to_owned());
        return probe;
    };
    let url = req
        .try_clone()
        .and_then(|r| r.build().ok())
        .map(|r| crate::format::redact_url(r.url().as_str()).into_owned());
    let started = Instant::now();
    let result = req.send().await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).ok();
    let mut probe = match result {
        Err(err) => Probe::new(p, "error", false).note(describe(&err)),
        Ok(resp) if !resp.status().is_success() => {
            let status = resp.status().as_u16();
            Probe::new(p, &format!("http {status}"), false).note(hint(p, status))
        }
        Ok(resp) => {
            let bytes = resp.bytes().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let list = if p.kind == ProviderKind::Ollama {
                &body["models"]
            } else {
                &body["data"]
            };
            let mut probe = Probe::new(p, "ok", true);
            probe.models = list.as_array().map(Vec::len);
            probe
        }
    };
    probe.url = url;
    probe.latency_ms = latency_ms;
    probe
}

/// A short reason for a failed request: the innermost cause, without the URL.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("no answer within {}s", TIMEOUT.as_secs());
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let what = if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {cause}")
}

/// What an error status usually means. The provider's own message is not shown: some echo part
/// of the key back.
fn hint(p: &ProviderConfig, status: u16) -> String {
    let var = p.api_key_env.as_deref().unwrap_or("the key");
    match status {
        401 | 403 => format!("the key was refused: check {var}"),
        404 => "no models endpoint there: check base_url".to_owned(),
        429 => "rate limited: try again later".to_owned(),
        500..=599 => "the provider is failing: try again later".to_owned(),
        _ => "unexpected status".to_owned(),
    }
}

fn table(probes: &[Probe]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "provider", "kind", "status", "latency", "models", "note",
        ]);
    for p in probes {
        let latency = p
            .latency_ms
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        let models = match (p.models, p.status.as_str()) {
            (Some(n), _) => n.to_string(),
            (None, "ok") if p.kind != "mock" => "?".to_owned(),
            _ => "-".to_owned(),
        };
        table.add_row(vec![
            Cell::new(&p.provider),
            Cell::new(p.kind),
            Cell::new(&p.status),
            Cell::new(latency).set_alignment(CellAlignment::Right),
            Cell::new(models).set_alignment(CellAlignment::Right),
            Cell::new(p.note.as_deref().unwrap_or("")),
        ]);
    }
    table.to_string()
}
