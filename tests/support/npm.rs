//! The agent CLIs of the tests (Claude Code, ...), installed from the registry at the exact
//! versions of `testdata/npm-clients/package.json` into one project-local folder,
//! `target/npm-clients`, with every package beneath them as `package-lock.json` beside it
//! records (`npm ci`: versions and integrity hashes, so next month's run installs this one's;
//! after editing package.json, run `npm install --package-lock-only` in testdata/npm-clients).
//! Like the Python virtualenv, the first test binary that needs it installs it while holding a
//! file lock, and it is reinstalled when package.json or the lock change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/npm-clients/package.json"
);
const LOCK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/npm-clients/package-lock.json"
);

/// The path of the installed command `name` (`claude`, ...), or why it cannot be had here
/// (no npm on this machine).
pub fn client(name: &str) -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| ensure_installed(&clients_dir()))
        .clone()?;
    let bin = dir.join("node_modules/.bin").join(name);
    assert!(
        bin.exists(),
        "{} is not installed by {PACKAGE}",
        bin.display()
    );
    Ok(bin)
}

/// The installed packages' `node_modules` (for `NODE_PATH`), or why they cannot be had here.
pub fn node_modules() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR
        .get_or_init(|| ensure_installed(&clients_dir()))
        .clone()?;
    Ok(dir.join("node_modules"))
}

/// `target/npm-clients`, wherever `CARGO_TARGET_DIR` puts `target/`.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("npm-clients")
}

fn ensure_installed(dir: &Path) -> Result<PathBuf, String> {
    if super::find_on_path("npm").is_none() {
        return Err("needs npm on PATH (Debian/Ubuntu: apt-get install npm)".to_owned());
    }
    let package = std::fs::read_to_string(PACKAGE).unwrap();
    let lock_file = std::fs::read_to_string(LOCK).unwrap();
    let wanted = format!("{package}\n{lock_file}");
    std::fs::create_dir_all(dir).unwrap();
    let lock = File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap(); // released when `lock` is dropped
    let stamp = dir.join("installed-package.json");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(dir.to_path_buf());
    }
    eprintln!("installing the test agent CLIs into {} ...", dir.display());
    std::fs::write(dir.join("package.json"), &package).unwrap();
    std::fs::write(dir.join("package-lock.json"), &lock_file).unwrap();
    // npm keeps the developer's environment (proxies, registry settings): it installs the test
    // tools, it is not the program under test. Install scripts run: Claude Code's puts its
    // native binary in place of a stub.
    // `ci`: exactly the lock, failing (instead of re-resolving) if it no longer matches
    // package.json.
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm could not install {LOCK} into {} (it needs the npm registry; after editing \
         package.json, refresh the lock):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, wanted).unwrap();
    Ok(dir.to_path_buf())
}
