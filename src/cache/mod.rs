//! The exact-match response cache: a canonical request hash (`key`), a SQLite store of gzipped and
//! optionally AES-256-GCM-sealed replies (`store`, `crypto`), and the pure stream helpers that let
//! a streamed reply be stored (`assemble`) and a stored reply be streamed (`replay`).
//!
//! Off by default: the caller decides whether a request may use it (`key::cacheable`,
//! `key::bypass_requested`), looks it up before planning, stores only complete successful replies
//! (`assemble::is_complete`, `StreamAssembler::finish`) and records hits with the saved cost.

pub mod assemble;
mod crypto;
pub mod key;
pub mod replay;
mod store;
mod writer;

use std::path::PathBuf;

pub use assemble::{StreamAssembler, is_complete};
pub use crypto::{CacheCipher, KEY_ENV};
pub use key::{bypass_requested, cache_key, cacheable};
pub use replay::replay_as_sse;
pub use store::{CacheSettings, CacheStats, CacheStore, CachedReply, ModelStats};
pub use writer::CacheHandle;

/// Everything that can go wrong opening or using the cache, or reading its key.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create the cache folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the response cache {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("response cache {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the response cache {path} has schema version {found}, newer than this smartproxy knows ({known}); upgrade smartproxy or point the cache at another file"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("response cache {path}: cannot compress an entry: {source}")]
    Compress {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The encryption key is missing, malformed or weak; the message says how to make one.
    #[error(
        "{problem}; cache encryption needs {KEY_ENV} set to 32 random bytes as 64 hex characters (or base64); make one with `openssl rand -hex 32`"
    )]
    Key { problem: String },
    /// Sealing failed (only for absurdly large entries) or a sealed entry did not authenticate.
    #[error("cache entry {0}")]
    Crypto(&'static str),
}
