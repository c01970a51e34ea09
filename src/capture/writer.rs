//! The proxy's handle on the capture store: bodies go to one writer thread through a bounded
//! queue (`try_send`; a full queue drops the body and counts it), so no request waits for a
//! write. Refusals by the caps are counted and warned about once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use bytes::Bytes;

use super::{CaptureError, Captured, FileStore, Kind, MemoryStore, PutOutcome, Stats, Store};
use crate::config::{CaptureConfig, CaptureStoreKind};
use crate::seal::Cipher;

/// Bodies waiting to be written; more are dropped and counted.
const QUEUE: usize = 256;

/// A body on its way to the store.
struct Job {
    id: String,
    kind: Kind,
    body: Bytes,
}

/// What happened to captured bodies since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureCounters {
    pub stored: u64,
    /// Over `max_blob_bytes` or `max_total_bytes`: not kept.
    pub refused: u64,
    /// The writer fell behind (the queue was full): not kept.
    pub dropped: u64,
    /// The store could not write them (a full disk, say).
    pub failed: u64,
    /// Older requests whose bodies a full store deleted to keep new ones (`drop_oldest`).
    pub evicted: u64,
    /// Bytes the store holds, as the total cap counts them.
    pub bytes: u64,
}

struct Shared {
    store: Mutex<Store>,
    stored: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    evicted: AtomicU64,
    /// The store's total after its last change, so `/metrics` never waits for a write.
    bytes: AtomicU64,
    warned_refused: AtomicBool,
    warned_dropped: AtomicBool,
    max_blob: u64,
}

impl Shared {
    fn refused(&self, id: &str, kind: Kind, why: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if !self.warned_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                request = id,
                body = kind.label(),
                "a body was not captured: {why}; later refusals are only counted (smartproxy_capture_refused_total)"
            );
        }
    }

    fn write(&self, job: &Job) {
        let outcome = {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let outcome = store.put(&job.id, job.kind, &job.body);
            self.bytes.store(store.total_bytes(), Ordering::Relaxed);
            outcome
        };
        match outcome {
            Ok(PutOutcome::Stored) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(PutOutcome::StoredDroppingOldest(requests)) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
                self.evicted.fetch_add(requests, Ordering::Relaxed);
            }
            Ok(PutOutcome::TooLarge) => {
                self.refused(&job.id, job.kind, "it is larger than capture.max_blob_bytes");
            }
            Ok(PutOutcome::StoreFull) => self.refused(
                &job.id,
                job.kind,
                "the store would pass capture.max_total_bytes (`smartproxy capture clear` empties it)",
            ),
            Err(err) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%err, "a body could not be captured");
            }
        }
    }
}

/// The capture store as the proxy uses it.
pub struct CaptureHandle {
    shared: Arc<Shared>,
    tx: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl CaptureHandle {
    /// Opens the store `config` names (creating a file store's folder) and starts its writer.
    pub fn open(config: &CaptureConfig, cipher: Option<Cipher>) -> Result<Self, CaptureError> {
        let store = match config.store {
            CaptureStoreKind::File => Store::File(Box::new(
                FileStore::open(
                    &config.path,
                    cipher,
                    config.max_blob_bytes,
                    config.max_total_bytes,
                )?
                .when_full(config.when_full),
            )),
            CaptureStoreKind::Memory => Store::Memory(
                MemoryStore::new(config.max_blob_bytes, config.max_total_bytes)
                    .when_full(config.when_full),
            ),
        };
        Self::with_store(store, config.max_blob_bytes)
    }

    /// A handle on `store`, whose blobs are at most `max_blob` bytes.
    pub fn with_store(store: Store, max_blob: u64) -> Result<Self, CaptureError> {
        let shared = Arc::new(Shared {
            bytes: AtomicU64::new(store.total_bytes()),
            store: Mutex::new(store),
            stored: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            warned_refused: AtomicBool::new(false),
            warned_dropped: AtomicBool::new(false),
            max_blob,
        });
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("capture-writer".to_owned())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    writer.write(&job);
                }
            })
            .map_err(|source| CaptureError::Io {
                path: std::path::PathBuf::from("capture-writer thread"),
                source,
            })?;
        Ok(Self {
            shared,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a body for the store; never blocks. A body over `max_blob_bytes` is refused here
    /// without being queued.
    pub fn put(&self, id: &str, kind: Kind, body: Bytes) {
        if body.len() as u64 > self.shared.max_blob {
            self.shared
                .refused(id, kind, "it is larger than capture.max_blob_bytes");
            return;
        }
        let job = Job {
            id: id.to_owned(),
            kind,
            body,
        };
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else {
            return;
        };
        if tx.try_send(job).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.shared.warned_dropped.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the capture writer fell behind; bodies are dropped and counted (smartproxy_capture_dropped_total)"
                );
            }
        }
    }

    /// An accumulator for a streamed response of request `id`: it copies the bytes forwarded
    /// up to the blob cap; `finish` hands them to the store.
    pub fn stream(self: &Arc<Self>, id: &str) -> StreamCapture {
        StreamCapture {
            handle: Arc::clone(self),
            id: id.to_owned(),
            buf: Vec::new(),
            over: false,
        }
    }

    /// A request's captured bodies (a memory store's too).
    pub fn load(&self, id: &str) -> Result<Option<Captured>, CaptureError> {
        self.shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .load(id)
    }

    /// Deletes the bodies of these requests (pruning with the ledger rows, in a proxy that
    /// captures: the store's running total goes down with them). Returns how many went.
    pub fn remove(&self, ids: &[&str]) -> Result<u64, CaptureError> {
        let mut store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = store.remove(ids);
        self.shared
            .bytes
            .store(store.total_bytes(), Ordering::Relaxed);
        removed
    }

    /// Deletes the bodies written before `cutoff` (the daemon's daily retention); a memory
    /// store keeps no times and is left alone. Returns how many went.
    pub fn remove_older_than(&self, cutoff: std::time::SystemTime) -> Result<u64, CaptureError> {
        let mut store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = match &mut *store {
            Store::File(files) => files.remove_older_than(cutoff),
            Store::Memory(_) => Ok(0),
        };
        self.shared
            .bytes
            .store(store.total_bytes(), Ordering::Relaxed);
        removed
    }

    /// Counts and sizes of the store.
    pub fn stats(&self) -> Result<Stats, CaptureError> {
        match &*self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Store::File(store) => store.stats(),
            Store::Memory(store) => Ok(store.stats()),
        }
    }

    pub fn counters(&self) -> CaptureCounters {
        let s = &self.shared;
        CaptureCounters {
            stored: s.stored.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            evicted: s.evicted.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
        }
    }

    /// Writes what is queued and stops the writer; later bodies are ignored. Idempotent.
    pub fn close(&self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// A streamed response being copied as it passes, up to the blob cap: past it the copy is
/// dropped and the body refused at the end (never stored truncated).
pub struct StreamCapture {
    handle: Arc<CaptureHandle>,
    id: String,
    buf: Vec<u8>,
    over: bool,
}

impl StreamCapture {
    /// Copies bytes on their way to the client.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.over {
            return;
        }
        if (self.buf.len() + bytes.len()) as u64 > self.handle.shared.max_blob {
            self.over = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The stream ended (or the client left): what was forwarded goes to the store, or is
    /// counted as refused when it passed the cap.
    pub fn finish(self) {
        if self.over {
            self.handle.shared.refused(
                &self.id,
                Kind::Response,
                "it is larger than capture.max_blob_bytes",
            );
            return;
        }
        self.handle
            .put(&self.id, Kind::Response, Bytes::from(self.buf));
    }
}
