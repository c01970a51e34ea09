//! The cache's handle for the proxy: lookups run on tokio's blocking pool when a request asks,
//! stores go to one writer thread through a bounded queue, so no request waits for a write.

use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{CacheError, CacheSettings, CacheStore, CachedReply};

/// Replies waiting to be stored; more are dropped (a cache may forget).
const QUEUE: usize = 256;

pub struct CacheHandle {
    store: Arc<CacheStore>,
    tx: Mutex<Option<SyncSender<(String, CachedReply)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl CacheHandle {
    pub fn open(settings: CacheSettings) -> Result<Self, CacheError> {
        let store = Arc::new(CacheStore::open(settings)?);
        let (tx, rx) = mpsc::sync_channel::<(String, CachedReply)>(QUEUE);
        let writer = Arc::clone(&store);
        let thread = std::thread::Builder::new()
            .name("cache-writer".to_owned())
            .spawn(move || {
                while let Ok((key, reply)) = rx.recv() {
                    if let Err(err) = writer.put(&key, &reply, crate::ledger::now_ms()) {
                        tracing::warn!(%err, "cache write failed");
                    }
                }
            })
            .map_err(|source| CacheError::CreateDir {
                path: store.path().to_path_buf(),
                source,
            })?;
        Ok(Self {
            store,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn store(&self) -> &Arc<CacheStore> {
        &self.store
    }

    /// Queues a reply for storing; never blocks.
    pub fn put_later(&self, key: String, reply: CachedReply) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = tx.as_ref()
            && tx.try_send((key, reply)).is_err()
        {
            tracing::debug!("cache queue full; reply not stored");
        }
    }

    /// Looks a key up on the blocking pool.
    pub async fn get(&self, key: String) -> Option<CachedReply> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.get(&key, crate::ledger::now_ms())).await {
            Ok(Ok(found)) => found,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cache read failed; treating it as a miss");
                None
            }
            Err(_) => None,
        }
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        // Dropping the sender ends the writer after it stores what is queued.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut thread) = self.thread.lock()
            && let Some(handle) = thread.take()
        {
            let _ = handle.join();
        }
    }
}
