//! Opt-in capture of request and response bodies (`capture.enabled`, off by default): one blob
//! per request and direction, in a folder beside the ledger (`file`) or in the proxy's memory
//! (`memory`), under a per-blob and a total size cap, sealed with AES-256-GCM when
//! `SMARTPROXY_CAPTURE_KEY` is set.
//!
//! - What is captured: bodies only, never headers, so no client or provider key enters a blob.
//!   The request is the client's body as received (after the key check, before any
//!   translation); the response is the body as sent to the client (after translation and
//!   transforms), a stream's bytes as forwarded, copied as they pass (never held back).
//! - Caps: a body larger than `max_blob_bytes`, or one that would take the store past
//!   `max_total_bytes`, is refused whole and counted, never truncated; a blob is written to a
//!   temporary file and renamed, so no partial blob is ever visible. The total is the size of
//!   the blob files, scanned when a proxy opens the store; proxies running at once each keep
//!   their own count, so together they may pass the cap by what they write meanwhile.
//! - Off the request path: `CaptureHandle` queues blobs to one writer thread with `try_send`;
//!   a full queue drops the blob and counts it (`writer`).
//! - Read side: [`load`] (the CLI, the web UI), [`remove`] and [`remove_older_than`] (pruning
//!   along with ledger rows); `CaptureHandle::load` also reads a memory store.

mod store;
mod writer;

use std::path::{Path, PathBuf};

pub use store::{FileStore, MemoryStore, PutOutcome, Stats, Store};
pub use writer::{CaptureCounters, CaptureHandle, StreamCapture};

use crate::config::{CaptureConfig, CaptureStoreKind};
use crate::seal::Cipher;

/// The environment variable whose key (32 bytes as 64 hex characters, or base64) seals blobs.
pub const KEY_ENV: &str = "SMARTPROXY_CAPTURE_KEY";

/// Which body of a request a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }
}

/// A request's captured bodies; either may be missing (refused, dropped, never sent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Captured {
    pub request: Option<Vec<u8>>,
    pub response: Option<Vec<u8>>,
}

impl Captured {
    pub fn get(&self, kind: Kind) -> Option<&[u8]> {
        match kind {
            Kind::Request => self.request.as_deref(),
            Kind::Response => self.response.as_deref(),
        }
    }

    fn set(&mut self, kind: Kind, body: Vec<u8>) {
        match kind {
            Kind::Request => self.request = Some(body),
            Kind::Response => self.response = Some(body),
        }
    }
}

/// Everything that can go wrong storing or reading captured bodies.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The key is malformed or weak; the message says how to make one.
    #[error(
        "{problem}; capture encryption needs {KEY_ENV} set to 32 random bytes as 64 hex characters (or base64): make one with `openssl rand -hex 32`, or unset it to capture unencrypted"
    )]
    Key { problem: String },
    #[error("{path} is encrypted: set {KEY_ENV} to the key it was captured under")]
    NoKey { path: PathBuf },
    #[error("{path} {problem}")]
    Crypto {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("{path} is not a smartproxy capture blob")]
    Corrupt { path: PathBuf },
    #[error("`{0}` is not a request id (they look like req_0123abcd...)")]
    BadId(String),
    #[error(
        "capture.store is `memory`: the bodies live in the running proxy only; read them from its web UI, or use `store: file`"
    )]
    MemoryStore,
}

/// The capture key from `SMARTPROXY_CAPTURE_KEY`: `None` when it is unset or empty (blobs are
/// then written unencrypted), an error when it is set but not a good key.
pub fn cipher_from_env() -> Result<Option<Cipher>, CaptureError> {
    Cipher::from_var(KEY_ENV).map_err(|problem| CaptureError::Key { problem })
}

/// Request ids are `req_` and hex digits; anything else could name another file.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The file store of `config`, for reading, with the key from the environment; `None` when
/// it was never created (nothing captured yet).
fn file_store(config: &CaptureConfig) -> Result<Option<FileStore>, CaptureError> {
    if config.store == CaptureStoreKind::Memory {
        return Err(CaptureError::MemoryStore);
    }
    if !config.path.is_dir() {
        return Ok(None);
    }
    let cipher = cipher_from_env()?;
    Ok(Some(FileStore::reader(&config.path, cipher)))
}

/// A request's captured bodies from the file store, decrypted with `SMARTPROXY_CAPTURE_KEY`
/// when sealed; `None` when nothing was captured for it.
pub fn load(config: &CaptureConfig, request_id: &str) -> Result<Option<Captured>, CaptureError> {
    match file_store(config)? {
        Some(store) => store.load(request_id),
        None => Ok(None),
    }
}

/// Deletes the blobs of these requests; returns how many files went. From a process that is
/// not capturing (a proxy that is keeps its running total through `CaptureHandle::remove`).
pub fn remove(config: &CaptureConfig, request_ids: &[&str]) -> Result<u64, CaptureError> {
    match file_store_without_key(config)? {
        Some(mut store) => store.remove(request_ids),
        None => Ok(0),
    }
}

/// Deletes the blobs written before `cutoff`; returns how many files went.
pub fn remove_older_than(
    config: &CaptureConfig,
    cutoff: std::time::SystemTime,
) -> Result<u64, CaptureError> {
    match file_store_without_key(config)? {
        Some(mut store) => store.remove_older_than(cutoff),
        None => Ok(0),
    }
}

/// Counts and sizes of the file store (`None`: never created).
pub fn stats(config: &CaptureConfig) -> Result<Option<Stats>, CaptureError> {
    match file_store_without_key(config)? {
        Some(store) => store.stats().map(Some),
        None => Ok(None),
    }
}

/// Deletes every blob of the file store; returns how many files went.
pub fn clear(config: &CaptureConfig) -> Result<u64, CaptureError> {
    match file_store_without_key(config)? {
        Some(mut store) => store.clear(),
        None => Ok(0),
    }
}

/// Removing and counting never read a payload, so they work without the key.
fn file_store_without_key(config: &CaptureConfig) -> Result<Option<FileStore>, CaptureError> {
    if config.store == CaptureStoreKind::Memory {
        return Err(CaptureError::MemoryStore);
    }
    if !config.path.is_dir() {
        return Ok(None);
    }
    Ok(Some(FileStore::reader(&config.path, None)))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CaptureError + '_ {
    move |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod config_tests;
