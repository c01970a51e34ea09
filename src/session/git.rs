//! The git state of a folder (repository root, branch, HEAD) read straight from the files git
//! keeps: `.git/HEAD`, loose refs, `packed-refs`, a worktree's `.git` file and its `commondir`.
//! A few small reads instead of spawning `git` on `run`'s start-up path; `git rev-parse` is the
//! fallback only for a layout the files cannot answer (the reftable ref store).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a folder stands in git.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitState {
    /// The working tree's top folder.
    pub root: PathBuf,
    /// The checked-out branch (`main`, `feature/x`); `None` on a detached HEAD.
    pub branch: Option<String>,
    /// The commit HEAD points at (40 or 64 hex digits); `None` on a branch with no commit yet.
    pub head: Option<String>,
}

/// How many symbolic refs deep a ref may point before we give up (git's own limit is 5).
const MAX_SYMREF_DEPTH: usize = 5;

/// The git state of `dir` or the nearest folder above it that is a working tree; `None`
/// outside any repository (or in one this reader and `git` both cannot read).
pub fn read(dir: &Path) -> Option<GitState> {
    let (root, dot_git) = find_root(dir)?;
    let git_dir = git_dir_of(&dot_git)?;
    let common = common_dir(&git_dir);
    if common.join("reftable").is_dir() {
        return rev_parse(&root);
    }
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let (branch, commit) = match head.strip_prefix("ref:") {
        Some(name) => {
            let name = name.trim();
            let branch = name.strip_prefix("refs/heads/").unwrap_or(name).to_owned();
            (Some(branch), resolve(&git_dir, &common, name, 0))
        }
        None if is_hex_id(head) => (None, Some(head.to_owned())),
        None => return rev_parse(&root),
    };
    Some(GitState {
        root,
        branch,
        head: commit,
    })
}

/// The nearest folder at or above `dir` holding `.git` (a folder, or a worktree's file).
fn find_root(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    dir.ancestors().find_map(|d| {
        let dot_git = d.join(".git");
        dot_git
            .symlink_metadata()
            .is_ok()
            .then(|| (d.to_path_buf(), dot_git))
    })
}

/// The git folder `.git` names: itself, or the `gitdir:` of a worktree's (or submodule's) file.
fn git_dir_of(dot_git: &Path) -> Option<PathBuf> {
    if dot_git.is_dir() {
        return Some(dot_git.to_path_buf());
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let target = text.trim().strip_prefix("gitdir:")?.trim();
    let base = dot_git.parent()?;
    Some(base.join(target))
}

/// Where shared refs live: a linked worktree's `commondir`, else the git folder itself.
fn common_dir(git_dir: &Path) -> PathBuf {
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => git_dir.join(text.trim()),
        Err(_) => git_dir.to_path_buf(),
    }
}

/// The commit ref `name` points at: its loose file (per-worktree first), else `packed-refs`.
fn resolve(git_dir: &Path, common: &Path, name: &str, depth: usize) -> Option<String> {
    if depth > MAX_SYMREF_DEPTH || name.contains("..") {
        return None;
    }
    let loose = [git_dir, common]
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(name)).ok());
    if let Some(text) = loose {
        let text = text.trim();
        return match text.strip_prefix("ref:") {
            Some(next) => resolve(git_dir, common, next.trim(), depth + 1),
            None => is_hex_id(text).then(|| text.to_owned()),
        };
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed_ref(&packed, name)
}

/// A ref's commit in the text of `packed-refs` (comment and peeled `^` lines skipped).
fn packed_ref(packed: &str, name: &str) -> Option<String> {
    packed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('^'))
        .find_map(|l| {
            let (id, refname) = l.split_once(' ')?;
            (refname.trim() == name && is_hex_id(id)).then(|| id.to_owned())
        })
}

fn is_hex_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Asks `git` itself, for a layout the files alone cannot answer.
fn rev_parse(root: &Path) -> Option<GitState> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    Some(GitState {
        root: root.to_path_buf(),
        branch: git(&["symbolic-ref", "--short", "-q", "HEAD"]),
        head: git(&["rev-parse", "-q", "--verify", "HEAD"]),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn branch_with_a_loose_ref_from_a_subfolder() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join(".git/HEAD"), "ref: refs/heads/feature/x\n");
        write(
            &tmp.path().join(".git/refs/heads/feature/x"),
            &format!("{A}\n"),
        );
        let sub = tmp.path().join("src/deep");
        std::fs::create_dir_all(&sub).unwrap();
        let state = read(&sub).unwrap();
        assert_eq!(state.root, tmp.path());
        assert_eq!(state.branch.as_deref(), Some("feature/x"));
        assert_eq!(state.head.as_deref(), Some(A));
    }

    #[test]
    fn detached_head() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join(".git/HEAD"), &format!("{B}\n"));
        let state = read(tmp.path()).unwrap();
        assert_eq!(state.branch, None);
        assert_eq!(state.head.as_deref(), Some(B));
    }

    #[test]
    fn packed_refs_when_no_loose_file() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(
            &tmp.path().join(".git/packed-refs"),
            &format!(
                "# pack-refs with: peeled fully-peeled sorted\n{B} refs/heads/other\n{A} refs/heads/main\n^{B}\n"
            ),
        );
        let state = read(tmp.path()).unwrap();
        assert_eq!(state.branch.as_deref(), Some("main"));
        assert_eq!(state.head.as_deref(), Some(A));
    }

    #[test]
    fn unborn_branch_has_no_head() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        let state = read(tmp.path()).unwrap();
        assert_eq!(state.branch.as_deref(), Some("main"));
        assert_eq!(state.head, None);
    }

    #[test]
    fn linked_worktree_gitfile_and_commondir() {
        let tmp = tempfile::tempdir().unwrap();
        let main_git = tmp.path().join("main/.git");
        write(&main_git.join("refs/heads/wt"), &format!("{B}\n"));
        let wt_git = main_git.join("worktrees/wt");
        write(&wt_git.join("HEAD"), "ref: refs/heads/wt\n");
        write(&wt_git.join("commondir"), "../..\n");
        let wt = tmp.path().join("wt");
        write(&wt.join(".git"), &format!("gitdir: {}\n", wt_git.display()));
        let state = read(&wt).unwrap();
        assert_eq!(state.root, wt);
        assert_eq!(state.branch.as_deref(), Some("wt"));
        assert_eq!(state.head.as_deref(), Some(B));
    }

    #[test]
    fn not_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        // A temp folder may sit under a repository on a developer's machine; its state would
        // then be that repository's, so only the "no .git anywhere" shape is asserted.
        if find_root(tmp.path()).is_none() {
            assert_eq!(read(tmp.path()), None);
        }
        write(&tmp.path().join("x/.git"), "not a gitdir line\n");
        assert_eq!(read(&tmp.path().join("x")), None);
    }
}
