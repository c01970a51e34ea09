//! The Python of the tests that need more than the standard library (the `openai` and
//! `anthropic` SDKs, `prometheus_client`): one project-local virtualenv at `target/python-venv`,
//! installed from the exact pins of `testdata/python-requirements.txt`, every dependency held to
//! the version `testdata/python-constraints.txt` records. The first test binary
//! that needs it builds it while holding a file lock, since `cargo test` runs several test
//! binaries at once; the others wait, then reuse it. It is rebuilt when either file changes;
//! `rm -rf target/python-venv` resets it by hand.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REQUIREMENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/python-requirements.txt"
);
const CONSTRAINTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/python-constraints.txt"
);

/// The virtualenv's interpreter, built on first use.
pub fn venv_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| ensure_venv(&venv_dir())).clone()
}

/// `target/python-venv`, wherever `CARGO_TARGET_DIR` puts `target/`.
pub fn venv_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("python-venv")
}

/// Returns the interpreter of a virtualenv holding exactly the pinned packages, building it if
/// it is missing or was installed from other pins.
fn ensure_venv(dir: &Path) -> PathBuf {
    let python = dir.join("bin/python");
    let stamp = dir.join("installed-requirements.txt");
    let constraints = std::fs::read_to_string(CONSTRAINTS).unwrap();
    let wanted = format!(
        "{}\n{constraints}",
        std::fs::read_to_string(REQUIREMENTS).unwrap()
    );
    let lock = File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap(); // released when `lock` is dropped
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return python;
    }
    eprintln!("building the test virtualenv {} ...", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    create_venv(dir);
    // pip keeps the developer's environment (proxies, certificates, index settings): it installs
    // the test tools, it is not the program under test.
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "-r", REQUIREMENTS, "-c", CONSTRAINTS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip could not install {REQUIREMENTS} into {} (it needs PyPI or a configured index):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_all_pinned(&python, &constraints);
    std::fs::write(&stamp, wanted).unwrap();
    python
}

/// Fails when the virtualenv holds a package, or a version, that the constraints do not list:
/// a dependency a new release added would otherwise float.
fn assert_all_pinned(python: &Path, constraints: &str) {
    let out = Command::new(python)
        .args(["-m", "pip", "freeze", "--disable-pip-version-check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pinned: Vec<String> = constraints.lines().map(normalized).collect();
    let unpinned: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(normalized)
        .filter(|line| !line.is_empty() && !pinned.contains(line))
        .collect();
    assert!(
        unpinned.is_empty(),
        "pip installed what {CONSTRAINTS} does not pin: {unpinned:?}; regenerate it as its \
         header says"
    );
}

/// A `name==version` line as pip compares names: case and `-`/`_`/`.` runs do not matter.
fn normalized(line: &str) -> String {
    let line = line.split('#').next().unwrap_or("").trim();
    match line.split_once("==") {
        Some((name, version)) => format!(
            "{}=={}",
            name.to_lowercase().replace(['_', '.'], "-"),
            version.trim()
        ),
        None => line.to_owned(),
    }
}

/// `python3 -m venv DIR`, failing with what to install when the machine cannot do it.
fn create_venv(dir: &Path) {
    let out = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot start python3 ({e}): install Python 3 (Debian/Ubuntu: apt-get install python3 python3-venv)")
        });
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(dir);
        panic!(
            "`python3 -m venv {}` failed: the tests need Python's venv module with ensurepip \
             (Debian/Ubuntu: apt-get install python3-venv).\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
