//! `smartproxy hooks install|uninstall`: a git `prepare-commit-msg` hook that adds an
//! `AI-Cost:` trailer to each commit message (`smartproxy cost --commit HEAD --trailer`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::printer;

/// The line that marks a hook as ours: only such a hook is replaced or removed without --force.
const MARKER: &str = "# Installed by `smartproxy hooks install`";

#[derive(Debug, clap::Subcommand)]
pub enum HooksCommand {
    /// Write `.git/hooks/prepare-commit-msg` (where git looks for hooks: `core.hooksPath` and
    /// linked worktrees respected) that adds `AI-Cost: $X.XX (N requests, M sessions)` to
    /// each commit message.
    #[command(
        after_help = "The trailer adds up the sessions whose HEAD at their start or end \
is the commit the new one builds on (`smartproxy cost --commit HEAD`): the AI work done since \
the last commit. A session that commits in the middle counts for both commits. Merges and \
squashes get no trailer, nor does a repository's first commit; an amended commit's trailer is \
replaced. The hook never blocks a commit: if smartproxy is missing or fails, the message is left \
as it is.\n\nExamples:\n  smartproxy hooks install\n  smartproxy hooks install --force   # \
replace a hook that is not smartproxy's\n  smartproxy hooks uninstall"
    )]
    Install {
        /// Replace an existing `prepare-commit-msg` hook that smartproxy did not write.
        #[arg(long)]
        force: bool,
    },
    /// Remove the hook `hooks install` wrote (a hook smartproxy did not write is left alone).
    Uninstall,
}

pub fn hooks(cmd: &HooksCommand) -> anyhow::Result<u8> {
    let path = hook_path()?;
    match cmd {
        HooksCommand::Install { force } => install(&path, *force),
        HooksCommand::Uninstall => uninstall(&path),
    }
}

/// Where git runs this repository's `prepare-commit-msg` from.
fn hook_path() -> anyhow::Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks/prepare-commit-msg"])
        .output()
        .context("cannot run git (is it installed and on PATH?)")?;
    anyhow::ensure!(
        out.status.success(),
        "not in a git repository: run `smartproxy hooks` inside the repository to hook"
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(std::env::current_dir()?.join(path))
}

fn ours(text: &str) -> bool {
    text.contains(MARKER)
}

fn install(path: &Path, force: bool) -> anyhow::Result<u8> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        anyhow::ensure!(
            ours(&existing) || force,
            "{} exists and is not smartproxy's: leaving it alone (add the line \
             `smartproxy cost --commit HEAD --trailer` to it yourself, or replace it with --force)",
            path.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find smartproxy's own path")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, script(&exe))
        .with_context(|| format!("cannot write {}", path.display()))?;
    make_executable(path)?;
    printer::note(&format!(
        "installed {}: commit messages get an `AI-Cost:` trailer",
        path.display()
    ));
    Ok(0)
}

fn uninstall(path: &Path) -> anyhow::Result<u8> {
    match std::fs::read_to_string(path) {
        Err(_) => printer::note(&format!("no hook at {}: nothing to remove", path.display())),
        Ok(text) if !ours(&text) => anyhow::bail!(
            "{} is not smartproxy's hook: leaving it alone",
            path.display()
        ),
        Ok(_) => {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            printer::note(&format!("removed {}", path.display()));
        }
    }
    Ok(0)
}

/// The hook: smartproxy at its installed path, else on PATH, else nothing; every failure
/// ends in `exit 0` so the commit goes ahead.
fn script(exe: &Path) -> String {
    let quoted = exe.display().to_string().replace('\'', "'\\''");
    format!(
        "#!/bin/sh\n{MARKER}; `smartproxy hooks uninstall` removes it.\n\
# Adds `AI-Cost: $X.XX (N requests, M sessions)`: the sessions whose HEAD at start or end is\n\
# the commit this one builds on. It never blocks a commit.\n\
case \"$2\" in merge|squash) exit 0 ;; esac\n\
SMARTPROXY='{quoted}'\n\
[ -x \"$SMARTPROXY\" ] || SMARTPROXY=$(command -v smartproxy) || exit 0\n\
trailer=$(\"$SMARTPROXY\" cost --commit HEAD --trailer 2>/dev/null) || exit 0\n\
[ -n \"$trailer\" ] || exit 0\n\
git interpret-trailers --in-place --if-exists replace --trailer \"$trailer\" \"$1\" 2>/dev/null\n\
exit 0\n"
    )
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}
