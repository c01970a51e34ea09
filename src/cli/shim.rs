//! `smartproxy shim install|list|remove TOOL`: small scripts, in a folder the user puts first on
//! PATH, that run the real tool under `smartproxy run --preset TOOL`. The script is
//! `shims/shim.sh` with the tool, preset, folder and smartproxy's own path filled in.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::printer;

const TEMPLATE: &str = include_str!("../../shims/shim.sh");
/// The line every shim carries, by which `list` and `remove` know their own.
const MARK: &str = "# smartproxy shim for";

#[derive(Debug, clap::Subcommand)]
pub enum ShimCommand {
    /// Write a shim for TOOL; put the shim folder first on PATH to use it.
    #[command(after_help = "Example:\n  smartproxy shim install claude\n  \
export PATH=\"$HOME/.local/share/smartproxy/shims:$PATH\"\n  claude   # now runs under `smartproxy run --preset claude`")]
    Install {
        /// The command to wrap, as you type it (`claude`, `codex`, `aider`, `python`...).
        tool: String,
        /// The preset to run it with (default: the tool's name, when a preset has it).
        #[arg(long)]
        preset: Option<String>,
        /// The shim folder (default: the data dir's `shims/`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the installed shims.
    List {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the shim for TOOL (only a file smartproxy wrote).
    Remove {
        tool: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn shim(cmd: &ShimCommand, config_path: Option<&Path>) -> anyhow::Result<u8> {
    match cmd {
        ShimCommand::Install { tool, preset, dir } => install(
            tool,
            preset.as_deref(),
            &shim_dir(dir.as_deref()),
            config_path,
        ),
        ShimCommand::List { dir, json } => list(&shim_dir(dir.as_deref()), *json),
        ShimCommand::Remove { tool, dir } => remove(tool, &shim_dir(dir.as_deref())),
    }
}

fn shim_dir(explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(
        || {
            crate::config::paths::default_database()
                .parent()
                .map_or_else(|| PathBuf::from("shims"), |d| d.join("shims"))
        },
        Path::to_path_buf,
    )
}

fn install(
    tool: &str,
    preset: Option<&str>,
    dir: &Path,
    config_path: Option<&Path>,
) -> anyhow::Result<u8> {
    anyhow::ensure!(
        !tool.is_empty()
            && tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "`{tool}` is not a command name (letters, digits, `-`, `_`, `.`)"
    );
    let config = super::load_config(config_path)?;
    let preset = preset.unwrap_or(tool);
    anyhow::ensure!(
        config.presets.contains_key(preset),
        "no preset `{preset}` (known: {}); name one with --preset or add it under `presets:`",
        config
            .presets
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let path = dir.join(tool);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        anyhow::ensure!(
            existing.contains(MARK),
            "{} exists and is not a smartproxy shim; not overwriting it",
            path.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find smartproxy's own path")?;
    let script = TEMPLATE
        .replace("@TOOL@", tool)
        .replace("@PRESET@", preset)
        .replace("@DIR@", &quote(&dir.display().to_string()))
        .replace("@SMARTPROXY@", &quote(&exe.display().to_string()));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, script).with_context(|| format!("cannot write {}", path.display()))?;
    make_executable(&path)?;
    printer::out(&path.display().to_string());
    let on_path = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .next()
            .is_some_and(|first| first == dir)
    });
    if !on_path {
        printer::note(&format!(
            "put the shim folder first on PATH to use it: export PATH=\"{}:$PATH\"",
            dir.display()
        ));
    }
    Ok(0)
}

fn list(dir: &Path, as_json: bool) -> anyhow::Result<u8> {
    let mut tools: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|text| text.contains(MARK)))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    tools.sort();
    if as_json {
        printer::out(&json!({"dir": dir.display().to_string(), "shims": tools}).to_string());
    } else if tools.is_empty() {
        printer::out(&format!("no shims in {}", dir.display()));
    } else {
        printer::out(&format!("{}\n  {}", dir.display(), tools.join("\n  ")));
    }
    Ok(0)
}

fn remove(tool: &str, dir: &Path) -> anyhow::Result<u8> {
    let path = dir.join(tool);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no shim for `{tool}` in {}", dir.display()))?;
    anyhow::ensure!(
        text.contains(MARK),
        "{} is not a smartproxy shim; not removing it",
        path.display()
    );
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    printer::out(&format!("removed {}", path.display()));
    Ok(0)
}

/// `value` in single quotes for sh.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}
