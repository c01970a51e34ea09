//! Where smartproxy looks for its config and keeps its ledger, per platform (`directories`).

use std::path::{Path, PathBuf};

use directories::{BaseDirs, ProjectDirs};

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "smartproxy")
}

/// Config files tried in order when `--config` is not given: `./smartproxy.yaml`, the user config
/// dir (`~/.config/smartproxy/smartproxy.yaml` on Linux), `~/.smartproxy.yaml`.
pub fn config_candidates(cwd: &Path) -> Vec<PathBuf> {
    let mut out = vec![cwd.join("smartproxy.yaml")];
    if let Some(dirs) = project_dirs() {
        out.push(dirs.config_dir().join("smartproxy.yaml"));
    }
    if let Some(base) = BaseDirs::new() {
        out.push(base.home_dir().join(".smartproxy.yaml"));
    }
    out
}

/// The default ledger path: the platform data dir (`~/.local/share/smartproxy/ledger.db` on Linux).
pub fn default_database() -> PathBuf {
    match project_dirs() {
        Some(dirs) => dirs.data_dir().join("ledger.db"),
        None => PathBuf::from(".smartproxy-ledger.db"),
    }
}

/// The price overlay `smartproxy prices update` installs, in the platform data dir
/// (`~/.local/share/smartproxy/prices-overlay.json` on Linux).
pub fn price_overlay() -> PathBuf {
    match project_dirs() {
        Some(dirs) => dirs.data_dir().join("prices-overlay.json"),
        None => PathBuf::from(".smartproxy-prices-overlay.json"),
    }
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(base) = BaseDirs::new()
    {
        return base.home_dir().join(rest);
    }
    PathBuf::from(path)
}
