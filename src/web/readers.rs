//! Read-only ledger connections kept between page loads. Opening one costs more than most page
//! queries (SQLite reads and parses the whole schema, views included: ~0.3-0.5 ms), so each
//! page borrows a connection and gives it back. A reused connection sees every commit made
//! since (each query starts its own read transaction); one whose file was replaced (deleted
//! and made again) is dropped rather than left reading the old file.
//!
//! A PostgreSQL ledger is connected to afresh for each page and the connection closed after:
//! a page then never reads through a connection an outage broke, and the reader's own runtime
//! is never dropped inside the async runtime (which tokio refuses). Connecting costs a few
//! milliseconds on a LAN.

use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};

use crate::config::LedgerLocation;
use crate::ledger::reader::{LedgerReader, ReadError};

/// Connections kept idle at most: one per blocking thread a burst of page loads may use.
const KEPT: usize = 4;

pub struct Readers {
    location: LedgerLocation,
    idle: Mutex<Vec<Reader>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Readers({})", self.location)
    }
}

/// Which file a connection has open: device and inode.
type FileId = (u64, u64);

impl Readers {
    pub fn new(location: LedgerLocation) -> Self {
        Self {
            location,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Where the ledger is (a PostgreSQL URL without its password).
    pub fn location(&self) -> &LedgerLocation {
        &self.location
    }

    /// A connection to the ledger, `None` when there is no SQLite ledger file yet. Hand it back
    /// with `give_back` when the page is done.
    pub fn take(&self) -> Result<Option<Reader>, ReadError> {
        let path = match &self.location {
            LedgerLocation::Sqlite(path) => path,
            LedgerLocation::Postgres(_) => {
                let ledger = LedgerReader::open(&self.location)?;
                return Ok(Some(Reader { ledger, file: None }));
            }
        };
        let Ok(meta) = std::fs::metadata(path) else {
            self.lock().clear();
            return Ok(None);
        };
        let file = (meta.dev(), meta.ino());
        let kept = {
            let mut idle = self.lock();
            idle.retain(|reader| reader.file == Some(file));
            idle.pop()
        };
        if let Some(reader) = kept {
            return Ok(Some(reader));
        }
        Ok(crate::ledger::pages::open(path)?.map(|conn| Reader {
            ledger: LedgerReader::Sqlite(conn),
            file: Some(file),
        }))
    }

    /// Keeps `reader` for the next page, unless enough are kept already (or it is
    /// PostgreSQL's, closed here).
    pub fn give_back(&self, reader: Reader) {
        if reader.file.is_none() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < KEPT {
            idle.push(reader);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A read-only connection and the SQLite file it has open (`None` for PostgreSQL).
pub struct Reader {
    pub ledger: LedgerReader,
    file: Option<FileId>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::path::Path;

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
        let LedgerReader::Sqlite(conn) = &reader.ledger else {
            panic!("a SQLite reader");
        };
        let value = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
        readers.give_back(reader);
        Some(value)
    }

    #[test]
    fn a_kept_connection_sees_new_commits_and_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let readers = Readers::new(LedgerLocation::Sqlite(path.clone()));
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
