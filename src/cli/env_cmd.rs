//! `smartproxy env`: the variables that point a tool started outside `run` (an editor, a shell
//! session, a service) at the daemon, printed for `eval`.

use std::path::Path;

use serde_json::json;

use crate::printer;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  eval \"$(smartproxy env)\"            # bash, zsh\n  \
smartproxy env --shell fish | source  # fish\n  smartproxy env --json\n\n\
The address is the running daemon's (from its pid file), else the configured listen address. \
The key is $SMARTPROXY_API_KEY when set; a daemon without client keys accepts any key."
)]
pub struct EnvArgs {
    /// The syntax to print: `sh` (bash, zsh, sh) or `fish`.
    #[arg(long, value_enum, default_value = "sh")]
    pub shell: EnvShell,
    /// Print the variables as one JSON object instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EnvShell {
    Sh,
    Fish,
}

/// What a client key variable is set to when the daemon needs none: SDKs refuse an empty key.
const NO_KEY: &str = "smartproxy-local";

pub fn env(args: &EnvArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let listen = match super::pid_file::running_daemon() {
        Some(running) => running.listen,
        None => {
            let config = super::load_config(config_path)?;
            printer::note(&format!(
                "no daemon is running; pointing at the configured address {} (start it with `smartproxy daemon --detach`)",
                config.listen
            ));
            config.listen.to_string()
        }
    };
    let key = std::env::var("SMARTPROXY_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    if key.is_none() {
        printer::note(
            "SMARTPROXY_API_KEY is not set, so the key variables hold a placeholder: right for a \
             daemon without client keys; otherwise use a key from `smartproxy keys create --name NAME`",
        );
    }
    let key = key.as_deref().unwrap_or(NO_KEY);
    let base = format!("http://{listen}");
    let vars = [
        ("OPENAI_BASE_URL", format!("{base}/v1")),
        ("OPENAI_API_BASE", format!("{base}/v1")),
        ("OPENAI_API_KEY", key.to_owned()),
        ("ANTHROPIC_BASE_URL", base.clone()),
        ("ANTHROPIC_API_KEY", key.to_owned()),
        ("OLLAMA_HOST", base),
    ];
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        printer::out(&serde_json::Value::Object(map).to_string());
        return Ok(0);
    }
    let lines: Vec<String> = vars
        .iter()
        .map(|(name, value)| match args.shell {
            EnvShell::Sh => format!("export {name}={}", sh_quote(value)),
            EnvShell::Fish => format!("set -gx {name} {}", sh_quote(value)),
        })
        .collect();
    printer::out(&lines.join("\n"));
    Ok(0)
}

/// `value` in single quotes, safe for sh and fish alike.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_the_shell() {
        assert_eq!(sh_quote("a'b c"), r"'a'\''b c'");
    }
}
