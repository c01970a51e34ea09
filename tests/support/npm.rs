//! The agent CLIs of the tests (Claude Code, ...), installed from the registry at the exact
//! versions of `testdata/npm-clients/package.json` into one project-local folder,
//! `target/npm-clients`. Like the Python virtualenv, the first test binary that needs it installs
//! it while holding a file lock, and it is reinstalled when the pins change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/npm-clients/package.json"
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
    if Command::new("npm").arg("--version").output().is_err() {
        return Err("npm is not installed (Debian/Ubuntu: apt-get install npm)".to_owned());
    }
    let wanted = std::fs::read_to_string(PACKAGE).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let lock = File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap(); // released when `lock` is dropped
    let stamp = dir.join("installed-package.json");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(dir.to_path_buf());
    }
    eprintln!("installing the test agent CLIs into {} ...", dir.display());
    std::fs::write(dir.join("package.json"), &wanted).unwrap();
    // npm keeps the developer's environment (proxies, registry settings): it installs the test
    // tools, it is not the program under test. Install scripts run: Claude Code's puts its
    // native binary in place of a stub.
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund"])
        .args(["--no-package-lock", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "npm could not install {PACKAGE} into {} (it needs the npm registry):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, wanted).unwrap();
    Ok(dir.to_path_buf())
}
