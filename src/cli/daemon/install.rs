//! `smartproxy daemon install`: a systemd user unit (Linux) or a launchd agent (macOS) that runs
//! `smartproxy daemon` at login and restarts it when it fails. Keys are never written into it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::printer;

const UNIT_NAME: &str = "smartproxy.service";
const LAUNCHD_LABEL: &str = "dev.smartproxy.daemon";
/// Variables that belong to one `run` session or one daemon process, not to a service.
const SESSION_VARS: &[&str] = &[
    "SMARTPROXY_SESSION_ID",
    "SMARTPROXY_URL",
    "SMARTPROXY_DAEMON_LOG",
];

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  smartproxy daemon install --print       look before writing\n  \
smartproxy daemon install && systemctl --user enable --now smartproxy\n  \
SMARTPROXY_LISTEN=127.0.0.1:4200 smartproxy daemon install   the service listens on :4200\n\n\
The service runs this executable with `daemon` (and `--config` for the config file in use now).\n\
SMARTPROXY_* variables set now are copied into it, except secrets (names with KEY, TOKEN, SECRET\n\
or PASSWORD). Keys go in an environment file the unit reads, ~/.config/smartproxy/daemon.env\n\
(chmod 600, NAME=value lines), never into the unit."
)]
pub struct InstallArgs {
    /// Print the unit (Linux: systemd; macOS: launchd plist) on stdout instead of writing it.
    #[arg(long)]
    pub print: bool,
}

/// What the service runs and with which environment.
struct Service {
    exe: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub fn install(args: &InstallArgs, config_path: Option<&Path>) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the smartproxy executable")?;
    let (env, skipped) = service_env(std::env::vars());
    let mut service_args = vec!["daemon".to_owned()];
    // The service's working directory is not this one: pin the config file found now.
    match super::super::load_config(config_path) {
        Ok(config) => {
            if let Some(source) = config
                .source
                .filter(|_| !env.iter().any(|(k, _)| k == "SMARTPROXY_CONFIG"))
            {
                let source = std::path::absolute(&source).unwrap_or(source);
                service_args.extend(["--config".to_owned(), source.display().to_string()]);
            }
        }
        Err(err) => printer::warn(&format!(
            "the config does not load now, so the service would not start until it is fixed:\n{err:#}"
        )),
    }
    let service = Service {
        exe,
        args: service_args,
        env,
    };
    let home = directories::BaseDirs::new().context("cannot find the home directory")?;
    let (path, text, enable) = if cfg!(target_os = "macos") {
        let path = home
            .home_dir()
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist"));
        let log = home.home_dir().join("Library/Logs/smartproxy.log");
        let enable = format!("launchctl load -w {}", path.display());
        (path, launchd_plist(&service, &log), enable)
    } else if cfg!(target_os = "linux") {
        let path = home.config_dir().join("systemd/user").join(UNIT_NAME);
        let enable =
            "systemctl --user daemon-reload && systemctl --user enable --now smartproxy".to_owned();
        (path, systemd_unit(&service), enable)
    } else {
        anyhow::bail!(
            "`daemon install` knows systemd (Linux) and launchd (macOS) only; run `smartproxy daemon --detach` from your login scripts instead"
        );
    };
    if args.print {
        printer::out(&text);
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        printer::out(&format!("wrote {}", path.display()));
    }
    let mut advice = format!("enable and start it with:\n  {enable}");
    if !skipped.is_empty() {
        advice.push_str(&format!(
            "\nnot copied into the service (secrets): {}",
            skipped.join(", ")
        ));
    }
    if cfg!(target_os = "macos") {
        advice.push_str("\nkeys: launchd reads no environment file; add them under EnvironmentVariables in the plist yourself and `chmod 600` it");
    } else {
        advice.push_str("\nkeys (SMARTPROXY_API_KEY, OPENAI_API_KEY, ...): put NAME=value lines in ~/.config/smartproxy/daemon.env and `chmod 600` it; the unit reads it as its EnvironmentFile");
    }
    if crate::cli::pid_file::running_daemon().is_some() {
        advice.push_str("\na daemon is running now: `smartproxy daemon stop` first so the service can take its port");
    }
    printer::note(&advice);
    Ok(0)
}

/// Whether a variable's name says it holds a secret.
fn secret(name: &str) -> bool {
    ["KEY", "TOKEN", "SECRET", "PASSWORD"]
        .iter()
        .any(|s| name.contains(s))
}

/// The `SMARTPROXY_*` variables to copy into the service, and the names of those left out as
/// secrets. Session variables and values with line breaks are left out too.
fn service_env(
    vars: impl Iterator<Item = (String, String)>,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut keep, mut skipped) = (Vec::new(), Vec::new());
    for (name, value) in vars {
        if !name.starts_with("SMARTPROXY_")
            || SESSION_VARS.contains(&name.as_str())
            || value.contains(['\n', '\r'])
        {
            continue;
        }
        if secret(&name) {
            skipped.push(name);
        } else {
            keep.push((name, value));
        }
    }
    keep.sort();
    skipped.sort();
    (keep, skipped)
}

/// Quotes a word for a systemd unit: `%` is a specifier, `$` a variable, `"` and `\` escapes.
fn systemd_quote(word: &str) -> String {
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    format!("\"{escaped}\"")
}

fn systemd_unit(s: &Service) -> String {
    let mut exec = systemd_quote(&s.exe.display().to_string()).replace('$', "$$");
    for arg in &s.args {
        exec.push(' ');
        exec.push_str(&systemd_quote(arg).replace('$', "$$"));
    }
    let mut env = String::new();
    for (name, value) in &s.env {
        env.push_str(&format!(
            "Environment={}\n",
            systemd_quote(&format!("{name}={value}"))
        ));
    }
    format!(
        "# Written by `smartproxy daemon install`. Keys never go in this file: put them in\n\
         # ~/.config/smartproxy/daemon.env (chmod 600), one NAME=value per line.\n\
         [Unit]\n\
         Description=smartproxy local LLM proxy daemon\n\
         \n\
         [Service]\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         EnvironmentFile=-%h/.config/smartproxy/daemon.env\n\
         {env}\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    )
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn launchd_plist(s: &Service, log: &Path) -> String {
    let mut program = format!(
        "    <string>{}</string>\n",
        xml(&s.exe.display().to_string())
    );
    for arg in &s.args {
        program.push_str(&format!("    <string>{}</string>\n", xml(arg)));
    }
    let mut env = String::new();
    for (name, value) in &s.env {
        env.push_str(&format!(
            "    <key>{}</key>\n    <string>{}</string>\n",
            xml(name),
            xml(value)
        ));
    }
    let log = xml(&log.display().to_string());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `smartproxy daemon install`. -->\n\
         <plist version=\"1.0\">\n<dict>\n\
         \x20 <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{program}  </array>\n\
         \x20 <key>EnvironmentVariables</key>\n  <dict>\n{env}  </dict>\n\
         \x20 <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>StandardOutPath</key>\n  <string>{log}</string>\n\
         \x20 <key>StandardErrorPath</key>\n  <string>{log}</string>\n\
         </dict>\n</plist>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn only_smartproxy_variables_without_secrets_are_copied() {
        let (keep, skipped) = service_env(vars(&[
            ("SMARTPROXY_LISTEN", "127.0.0.1:4200"),
            ("SMARTPROXY_API_KEY", "sk-secret"),
            ("SMARTPROXY_CACHE_KEY", "abc"),
            ("SMARTPROXY_SESSION_ID", "s1"),
            ("OPENAI_API_KEY", "sk-openai"),
            ("SMARTPROXY_DB", "/tmp/a\nb"),
            ("PATH", "/usr/bin"),
        ]));
        assert_eq!(
            keep,
            [("SMARTPROXY_LISTEN".to_owned(), "127.0.0.1:4200".to_owned())]
        );
        assert_eq!(skipped, ["SMARTPROXY_API_KEY", "SMARTPROXY_CACHE_KEY"]);
    }

    #[test]
    fn units_quote_what_their_formats_treat_specially() {
        let service = Service {
            exe: PathBuf::from("/opt/my tools/smartproxy"),
            args: vec![
                "daemon".to_owned(),
                "--config".to_owned(),
                "/x/50%$HOME.yaml".to_owned(),
            ],
            env: vec![("SMARTPROXY_DB".to_owned(), "/data/\"q\" & <l>".to_owned())],
        };
        let unit = systemd_unit(&service);
        assert!(
            unit.contains(
                r#"ExecStart="/opt/my tools/smartproxy" "daemon" "--config" "/x/50%%$$HOME.yaml""#
            ),
            "{unit}"
        );
        assert!(
            unit.contains(r#"Environment="SMARTPROXY_DB=/data/\"q\" & <l>""#),
            "{unit}"
        );
        assert!(unit.contains("Restart=on-failure"));
        let plist = launchd_plist(&service, Path::new("/Users/me/Library/Logs/smartproxy.log"));
        assert!(
            plist.contains("<string>/data/&quot;q&quot; &amp; &lt;l&gt;</string>"),
            "{plist}"
        );
        assert!(
            plist
                .contains("<string>/opt/my tools/smartproxy</string>\n    <string>daemon</string>"),
            "{plist}"
        );
        assert!(
            plist.contains("<key>Label</key>\n  <string>dev.smartproxy.daemon</string>"),
            "{plist}"
        );
    }
}
