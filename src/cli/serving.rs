//! What the subcommands that serve a proxy (`run`, `daemon`, `request`) set up alike: the
//! stores a config enables and the random ids and keys of a session.

use std::sync::Arc;

use rand::RngCore;

use crate::cache::CacheHandle;
use crate::capture::CaptureHandle;
use crate::config::Config;

/// The response cache and body capture, each opened when the config enables it.
pub(super) fn open_stores(
    config: &Config,
) -> anyhow::Result<(Option<CacheHandle>, Option<Arc<CaptureHandle>>)> {
    let cache = super::cache_cmd::open_for_serving(config)?;
    let capture = super::capture_cmd::open_for_serving(config)?;
    Ok((cache, capture))
}

/// `bytes` random bytes in hex: session ids and keys.
pub(super) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
