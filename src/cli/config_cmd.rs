//! `smartproxy config validate` and `config show`.

use std::path::Path;

use serde_json::json;

use crate::printer;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check a config file: every error is shown with its file, line and key. Exits 1 when
    /// the config is invalid.
    Validate {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the configuration in effect (file, listener, ledger, providers, `pricing:`
    /// overrides in USD per million tokens; never keys).
    Show {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn config(cmd: &ConfigCommand, explicit: Option<&Path>) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Validate { json } => {
            let config = match super::load_config(explicit) {
                Ok(config) => config,
                Err(err) if *json => {
                    printer::out(
                        &json!({"valid": false, "errors": format!("{err:#}")}).to_string(),
                    );
                    return Ok(super::EXIT_FAILURE);
                }
                Err(err) => return Err(err),
            };
            if *json {
                printer::out(
                    &json!({"valid": true, "source": config.source_display(), "providers": config.providers.len()})
                        .to_string(),
                );
            } else {
                printer::out(&format!(
                    "ok: {} ({} provider{})",
                    config.source_display(),
                    config.providers.len(),
                    if config.providers.len() == 1 { "" } else { "s" }
                ));
            }
            Ok(0)
        }
        ConfigCommand::Show { json } => {
            let config = super::load_config(explicit)?;
            let providers: Vec<serde_json::Value> = config
                .providers
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "kind": p.kind.as_str(),
                        "base_url": crate::format::redact_url(&p.base_url),
                        "api_key_env": p.api_key_env,
                        "key_present": p.api_key.is_some(),
                        "enabled": p.enabled,
                        "models": p.models.iter().map(|m| match m {
                            crate::config::ModelPattern::Exact(n) => n.clone(),
                            crate::config::ModelPattern::Prefix(p) => format!("{p}*"),
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect();
            // Sorted, so that the output is the same from one run to the next.
            let pricing: std::collections::BTreeMap<&str, &crate::pricing::Price> = config
                .pricing
                .iter()
                .map(|(name, price)| (name.as_str(), price))
                .collect();
            let value = json!({
                "source": config.source_display(),
                "listen": config.listen.to_string(),
                "database": config.database.to_string(),
                "budget": {"session_usd": config.budget.session_usd},
                "retention": {"max_age_days": config.retention_days},
                "providers": providers,
                "pricing": pricing,
                "capture": {
                    "enabled": config.capture.enabled,
                    "store": config.capture.store.label(),
                    "path": config.capture.path.display().to_string(),
                    "max_blob_bytes": config.capture.max_blob_bytes,
                    "max_total_bytes": config.capture.max_total_bytes,
                    "encrypted": std::env::var(crate::capture::KEY_ENV)
                        .is_ok_and(|v| !v.trim().is_empty()),
                },
            });
            let text = if *json {
                value.to_string()
            } else {
                serde_json::to_string_pretty(&value).unwrap_or_default()
            };
            printer::out(&text);
            Ok(0)
        }
    }
}
