//! What a `run` session's cost belongs to: its project, and the git repository, branch and
//! HEAD of the folder the command runs in, at the start and again at the end (the command may
//! commit or switch branches). Read from git's files (`session::git`), no `git` process.

use crate::ledger::Attribution;
use crate::session::git;

/// The session's attribution at its start. Project: `--project`, else the config's
/// `project:`, else the repository's folder name, else none.
pub(super) fn at_start(flag: Option<&str>, config: Option<&str>) -> Attribution {
    let state = std::env::current_dir().ok().and_then(|d| git::read(&d));
    let folder = state
        .as_ref()
        .and_then(|s| s.root.file_name().map(|n| n.to_string_lossy().into_owned()));
    Attribution {
        project: flag
            .map(|p| p.trim().to_owned())
            .or_else(|| config.map(str::to_owned))
            .or(folder),
        repo: state.as_ref().map(|s| s.root.display().to_string()),
        branch: state.as_ref().and_then(|s| s.branch.clone()),
        head: state.and_then(|s| s.head),
    }
}

/// The branch and HEAD at the session's end, in the repository it started in; nothing for a
/// session that started outside any.
pub(super) fn at_end(start: &Attribution) -> (Option<String>, Option<String>) {
    let Some(repo) = &start.repo else {
        return (None, None);
    };
    match git::read(std::path::Path::new(repo)) {
        Some(state) => (state.branch, state.head),
        None => (None, None),
    }
}
