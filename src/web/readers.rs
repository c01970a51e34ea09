//! Read-only ledger connections kept between page loads. Opening one costs more than most page
//! queries (SQLite reads and parses the whole schema, views included: ~0.3-0.5 ms), so each
//! page borrows a connection and gives it back. A reused connection sees every commit made
//! since (each query starts its own read transaction); one whose file was replaced (deleted
//! and made again) is dropped rather than left reading the old file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;

/// Connections kept idle at most: one per blocking thread a burst of page loads may use.
const KEPT: usize = 4;

#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
}

/// Which file a connection has open: device and inode.
type FileId = (u64, u64);

impl Readers {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection to the ledger, `None` when there is no ledger file yet. Hand it back with
    /// `give_back` when the page is done.
    pub fn take(&self) -> rusqlite::Result<Option<Reader>> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            self.lock().clear();
            return Ok(None);
        };
        let file = (meta.dev(), meta.ino());
        let kept = {
            let mut idle = self.lock();
            idle.retain(|reader| reader.file == file);
            idle.pop()
        };
        if let Some(reader) = kept {
            return Ok(Some(reader));
        }
        Ok(crate::ledger::pages::open(&self.path)?.map(|conn| Reader { conn, file }))
    }

    /// Keeps `reader` for the next page, unless enough are kept already.
    pub fn give_back(&self, reader: Reader) {
        let mut idle = self.lock();
        if idle.len() < KEPT {
            idle.push(reader);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A read-only connection and the file it has open.
#[derive(Debug)]
pub struct Reader {
    pub conn: Connection,
    file: FileId,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ledger(path: &Path, value: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (v INTEGER);
             DELETE FROM t; INSERT INTO t VALUES ({value});"
        ))
        .unwrap();
    }

    fn read(readers: &Readers) -> Option<i64> {
        let reader = readers.take().unwrap()?;
        let value = reader
            .conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        readers.give_back(reader);
        Some(value)
    }

    #[test]
    fn a_kept_connection_sees_new_commits_and_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let readers = Readers::new(path.clone());
        assert_eq!(read(&readers), None, "no file yet");
        ledger(&path, 1);
        assert_eq!(read(&readers), Some(1));
        assert_eq!(readers.lock().len(), 1, "the connection was kept");
        ledger(&path, 2);
        assert_eq!(
            read(&readers),
            Some(2),
            "a kept connection reads new commits"
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        ledger(&path, 3);
        assert_eq!(read(&readers), Some(3), "a replaced file is opened afresh");
    }
}
