//! Files only their owner can read: the ledger (sessions, working folders, spend, client-key
//! digests), the response cache and their folders. New ones are created private; ones an older
//! build left readable by others are tightened once, with one warning line.

use std::path::Path;

/// Mode bits for group and others.
#[cfg(unix)]
const SHARED_BITS: u32 = 0o077;

/// Prepares the SQLite file at `path`: its folder created 0700 when missing (a folder named
/// `smartproxy`, ours, tightened to 0700 when others can enter it), the file created 0600 when
/// missing, and the file with its WAL and shared-memory files tightened to 0600 when others
/// can read them. SQLite gives the journal files the database file's mode.
pub fn prepare(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            } else if dir.file_name().is_some_and(|n| n == "smartproxy") {
                tighten(dir, 0o700);
            }
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.as_os_str().to_owned();
                    file.push(suffix);
                    tighten(Path::new(&file), 0o600);
                }
            }
            Err(err) => return Err(err),
        }
    }
    #[cfg(not(unix))]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Sets `path` to `mode` when group or others have any access to it. A file that is not
/// there, or not ours to change, is left as it is (opening it reports what matters).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let current = meta.permissions().mode() & 0o777;
    if current & SHARED_BITS == 0 {
        return;
    }
    if std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).is_ok() {
        tracing::warn!(
            path = %path.display(),
            "others could read this smartproxy file (mode {current:o}); it is now {mode:o}"
        );
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_folders_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/ledger.db");
        prepare(&path).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn files_others_could_read_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("smartproxy");
        std::fs::create_dir(&ours).unwrap();
        std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = ours.join("ledger.db");
        for file in [path.clone(), ours.join("ledger.db-wal")] {
            std::fs::write(&file, b"").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        prepare(&path).unwrap();
        assert_eq!(mode(&ours), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&ours.join("ledger.db-wal")), 0o600);
        // Someone else's folder is left alone.
        let shared = dir.path().join("team");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        prepare(&shared.join("ledger.db")).unwrap();
        assert_eq!(mode(&shared), 0o750);
    }
}
