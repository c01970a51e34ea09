//! Where captured bodies are kept: `FileStore` (one file per request and direction, written
//! whole to a temporary file and renamed, sealed when there is a key) and `MemoryStore` (in the
//! process), both under a per-blob and a total size cap that refuse rather than truncate.
//!
//! A blob file is `SPCAP1`, `p` (plain) or `s` (sealed), then the body, or the nonce, the
//! sealed body and the tag; a sealed body is bound to its file name (`ID.request`), so a
//! blob copied under another request's name does not open.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rand::RngCore;

use super::{CaptureError, Captured, Kind, io_error, valid_id};
use crate::config::WhenFull;
use crate::seal::Cipher;

const MAGIC: &[u8] = b"SPCAP1";
const PLAIN: u8 = b'p';
const SEALED: u8 = b's';
/// Temporary files, renamed to their blob's name once written whole.
const TMP_PREFIX: &str = ".tmp-";
/// A temporary file this old is left over from a crash; younger ones may be another proxy's
/// write in progress.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// How often a writing store counts the folder again: other processes (`run` sessions, the
/// daemon, `capture clear`, `prune`) write and delete in it too, so the total cap holds for
/// the folder, not per process, within what they write meanwhile.
const RESCAN_EVERY: Duration = Duration::from_secs(2);
/// Before refusing a body for the total cap, the folder is counted again unless it was this
/// recently: room another process made is used at once.
const RESCAN_BEFORE_REFUSING: Duration = Duration::from_millis(200);

/// What became of a body handed to a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// Stored after deleting the bodies of this many older requests (`when_full: drop_oldest`).
    StoredDroppingOldest(u64),
    /// Larger than `max_blob_bytes`: refused.
    TooLarge,
    /// Would take the store past `max_total_bytes`: refused.
    StoreFull,
}

/// Counts and sizes of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub path: Option<PathBuf>,
    /// Requests with at least one body.
    pub requests: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub encrypted_blobs: u64,
}

/// A store of either kind.
pub enum Store {
    /// Boxed: the AES key schedule makes it large.
    File(Box<FileStore>),
    Memory(MemoryStore),
}

impl Store {
    pub fn put(&mut self, id: &str, kind: Kind, body: &[u8]) -> Result<PutOutcome, CaptureError> {
        match self {
            Self::File(store) => store.put(id, kind, body),
            Self::Memory(store) => store.put(id, kind, body),
        }
    }

    pub fn load(&self, id: &str) -> Result<Option<Captured>, CaptureError> {
        match self {
            Self::File(store) => store.load(id),
            Self::Memory(store) => Ok(store.load(id)),
        }
    }

    /// Deletes the bodies of these requests; returns how many went.
    pub fn remove(&mut self, ids: &[&str]) -> Result<u64, CaptureError> {
        match self {
            Self::File(store) => store.remove(ids),
            Self::Memory(store) => Ok(store.remove(ids)),
        }
    }

    /// Bytes held, as the total cap counts them.
    pub fn total_bytes(&self) -> u64 {
        match self {
            Self::File(store) => store.total,
            Self::Memory(store) => store.total,
        }
    }
}

/// Blobs as files in one folder.
pub struct FileStore {
    dir: PathBuf,
    cipher: Option<Cipher>,
    max_blob: u64,
    max_total: u64,
    /// Bytes of the blob files: counted at open and every `RESCAN_EVERY`, kept up to date by
    /// this store's own writes in between.
    total: u64,
    counted_at: Instant,
    when_full: WhenFull,
}

impl FileStore {
    /// Opens (creating, readable by its owner only) the folder; counts what it holds and
    /// removes temporary files left over from a crash.
    pub fn open(
        dir: &Path,
        cipher: Option<Cipher>,
        max_blob: u64,
        max_total: u64,
    ) -> Result<Self, CaptureError> {
        create_private_dir(dir).map_err(io_error(dir))?;
        let total = count_blob_bytes(dir, true).map_err(io_error(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            cipher,
            max_blob,
            max_total,
            total,
            counted_at: Instant::now(),
            when_full: WhenFull::Refuse,
        })
    }

    /// What a full store does with a new body (refuses it unless told otherwise).
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// Counts the folder again when the last count is older than `max_age`; a failed count
    /// keeps the old figure.
    fn recount(&mut self, max_age: Duration) {
        if self.counted_at.elapsed() >= max_age {
            if let Ok(total) = count_blob_bytes(&self.dir, false) {
                self.total = total;
            }
            self.counted_at = Instant::now();
        }
    }

    /// The folder for reading and removing only: nothing is created or scanned, so a read
    /// costs the same however many blobs there are (the total is not known: do not `put`).
    pub fn reader(dir: &Path, cipher: Option<Cipher>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            cipher,
            max_blob: 0,
            max_total: 0,
            total: 0,
            counted_at: Instant::now(),
            when_full: WhenFull::Refuse,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str, kind: Kind) -> PathBuf {
        self.dir.join(file_name(id, kind))
    }

    /// Writes `body` whole, or refuses it when it is over a cap; never leaves part of a blob.
    pub fn put(&mut self, id: &str, kind: Kind, body: &[u8]) -> Result<PutOutcome, CaptureError> {
        if !valid_id(id) {
            return Err(CaptureError::BadId(id.to_owned()));
        }
        if body.len() as u64 > self.max_blob {
            return Ok(PutOutcome::TooLarge);
        }
        let path = self.path(id, kind);
        let blob = encode(self.cipher.as_ref(), &file_name(id, kind), body, &path)?;
        let replaced = std::fs::metadata(&path).map_or(0, |m| m.len());
        self.recount(RESCAN_EVERY);
        let mut after = self.total.saturating_sub(replaced) + blob.len() as u64;
        let mut dropped = 0;
        if after > self.max_total {
            self.recount(RESCAN_BEFORE_REFUSING);
            after = self.total.saturating_sub(replaced) + blob.len() as u64;
            if after > self.max_total && self.when_full == WhenFull::DropOldest {
                dropped = self.drop_oldest(id, after - self.max_total)?;
                after = self.total.saturating_sub(replaced) + blob.len() as u64;
            }
            if after > self.max_total {
                return Ok(PutOutcome::StoreFull);
            }
        }
        let mut suffix = [0u8; 8];
        rand::rng().fill_bytes(&mut suffix);
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}.{}",
            file_name(id, kind),
            hex::encode(suffix)
        ));
        let written = write_new(&tmp, &blob).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(source) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(CaptureError::Io { path, source });
        }
        self.total = after;
        Ok(if dropped > 0 {
            PutOutcome::StoredDroppingOldest(dropped)
        } else {
            PutOutcome::Stored
        })
    }

    /// Deletes the bodies of the oldest requests (by their newest file's time), never those
    /// of `keep`, until `bytes` are freed or none is left; returns how many requests went.
    fn drop_oldest(&mut self, keep: &str, bytes: u64) -> Result<u64, CaptureError> {
        let mut requests: HashMap<String, (SystemTime, Vec<PathBuf>)> = HashMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name();
            let Some(id) = blob_name(&name.to_string_lossy()).map(|(id, _)| id.to_owned()) else {
                continue;
            };
            if id == keep {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let slot = requests
                .entry(id)
                .or_insert((SystemTime::UNIX_EPOCH, Vec::new()));
            slot.0 = slot.0.max(modified);
            slot.1.push(entry.path());
        }
        let mut oldest_first: Vec<_> = requests.into_iter().collect();
        oldest_first.sort_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| a.0.cmp(&b.0)));
        let target = self.total.saturating_sub(bytes);
        let mut dropped = 0;
        for (_, (_, paths)) in oldest_first {
            if self.total <= target {
                break;
            }
            for path in paths {
                self.remove_file(&path)?;
            }
            dropped += 1;
        }
        Ok(dropped)
    }

    /// The request's bodies, decrypted; `None` when neither was captured.
    pub fn load(&self, id: &str) -> Result<Option<Captured>, CaptureError> {
        if !valid_id(id) {
            return Err(CaptureError::BadId(id.to_owned()));
        }
        let mut found = Captured::default();
        let mut any = false;
        for kind in [Kind::Request, Kind::Response] {
            let path = self.path(id, kind);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CaptureError::Io { path, source }),
            };
            found.set(
                kind,
                decode(self.cipher.as_ref(), &file_name(id, kind), bytes, &path)?,
            );
            any = true;
        }
        Ok(any.then_some(found))
    }

    /// Deletes the blobs of these requests; returns how many files went.
    pub fn remove(&mut self, ids: &[&str]) -> Result<u64, CaptureError> {
        let mut removed = 0;
        for id in ids.iter().filter(|id| valid_id(id)) {
            for kind in [Kind::Request, Kind::Response] {
                removed += u64::from(self.remove_file(&self.path(id, kind))?);
            }
        }
        Ok(removed)
    }

    /// Deletes the blobs last written before `cutoff`.
    pub fn remove_older_than(&mut self, cutoff: SystemTime) -> Result<u64, CaptureError> {
        self.remove_where(|meta| meta.modified().is_ok_and(|m| m < cutoff))
    }

    /// Deletes every blob.
    pub fn clear(&mut self) -> Result<u64, CaptureError> {
        self.remove_where(|_| true)
    }

    fn remove_where(
        &mut self,
        pick: impl Fn(&std::fs::Metadata) -> bool,
    ) -> Result<u64, CaptureError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name();
            if blob_name(&name.to_string_lossy()).is_none() {
                continue;
            }
            if entry.metadata().is_ok_and(|m| m.is_file() && pick(&m)) {
                removed += u64::from(self.remove_file(&entry.path())?);
            }
        }
        Ok(removed)
    }

    /// Removes one blob file; false when it was not there.
    fn remove_file(&mut self, path: &Path) -> Result<bool, CaptureError> {
        let len = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(io_error(path)(source)),
        };
        match std::fs::remove_file(path) {
            Ok(()) => {
                self.total = self.total.saturating_sub(len);
                Ok(true)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(io_error(path)(source)),
        }
    }

    pub fn stats(&self) -> Result<Stats, CaptureError> {
        let mut stats = Stats {
            path: Some(self.dir.clone()),
            ..Stats::default()
        };
        let mut ids = BTreeSet::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let (Some((id, _)), Ok(meta)) = (blob_name(&name), entry.metadata()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            ids.insert(id.to_owned());
            stats.blobs += 1;
            stats.bytes += meta.len();
            if is_sealed(&entry.path()) {
                stats.encrypted_blobs += 1;
            }
        }
        stats.requests = ids.len() as u64;
        Ok(stats)
    }
}

/// Blobs in the process's memory, under the same caps.
pub struct MemoryStore {
    blobs: HashMap<String, Captured>,
    /// Request ids, oldest first, for `WhenFull::DropOldest`.
    order: VecDeque<String>,
    max_blob: u64,
    max_total: u64,
    total: u64,
    when_full: WhenFull,
}

impl MemoryStore {
    pub fn new(max_blob: u64, max_total: u64) -> Self {
        Self {
            blobs: HashMap::new(),
            order: VecDeque::new(),
            max_blob,
            max_total,
            total: 0,
            when_full: WhenFull::Refuse,
        }
    }

    /// What a full store does with a new body (refuses it unless told otherwise).
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    pub fn put(&mut self, id: &str, kind: Kind, body: &[u8]) -> Result<PutOutcome, CaptureError> {
        let len = body.len() as u64;
        if len > self.max_blob {
            return Ok(PutOutcome::TooLarge);
        }
        let replaced = self
            .blobs
            .get(id)
            .and_then(|c| c.get(kind))
            .map_or(0, |b| b.len() as u64);
        let mut dropped = 0;
        if self.when_full == WhenFull::DropOldest {
            while self.total.saturating_sub(replaced) + len > self.max_total {
                let Some(oldest) = self.order.iter().find(|o| *o != id).cloned() else {
                    break;
                };
                dropped += u64::from(self.remove(&[oldest.as_str()]) > 0);
            }
        }
        let after = self.total.saturating_sub(replaced) + len;
        if after > self.max_total {
            return Ok(PutOutcome::StoreFull);
        }
        if !self.blobs.contains_key(id) {
            self.order.push_back(id.to_owned());
        }
        self.blobs
            .entry(id.to_owned())
            .or_default()
            .set(kind, body.to_vec());
        self.total = after;
        Ok(if dropped > 0 {
            PutOutcome::StoredDroppingOldest(dropped)
        } else {
            PutOutcome::Stored
        })
    }

    pub fn load(&self, id: &str) -> Option<Captured> {
        self.blobs.get(id).cloned()
    }

    /// Deletes the bodies of these requests; returns how many went.
    pub fn remove(&mut self, ids: &[&str]) -> u64 {
        let mut removed = 0;
        self.order.retain(|o| !ids.contains(&o.as_str()));
        for id in ids {
            if let Some(c) = self.blobs.remove(*id) {
                for body in [c.request, c.response].into_iter().flatten() {
                    self.total = self.total.saturating_sub(body.len() as u64);
                    removed += 1;
                }
            }
        }
        removed
    }

    pub fn stats(&self) -> Stats {
        Stats {
            path: None,
            requests: self.blobs.len() as u64,
            blobs: self
                .blobs
                .values()
                .map(|c| u64::from(c.request.is_some()) + u64::from(c.response.is_some()))
                .sum(),
            bytes: self.total,
            encrypted_blobs: 0,
        }
    }
}

/// The bytes of the blob files in `dir`; with `clean_up`, also removes temporary files left
/// over from a crash (`STALE_TMP` old).
fn count_blob_bytes(dir: &Path, clean_up: bool) -> std::io::Result<u64> {
    let stale_before = SystemTime::now()
        .checked_sub(STALE_TMP)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TMP_PREFIX) {
            if clean_up && meta.modified().is_ok_and(|m| m < stale_before) {
                let _ = std::fs::remove_file(entry.path());
            }
        } else if meta.is_file() && blob_name(&name).is_some() {
            total += meta.len();
        }
    }
    Ok(total)
}

fn file_name(id: &str, kind: Kind) -> String {
    format!("{id}.{}", kind.label())
}

/// `ID.request` or `ID.response` -> (ID, kind).
fn blob_name(name: &str) -> Option<(&str, Kind)> {
    let (id, suffix) = name.rsplit_once('.')?;
    let kind = match suffix {
        "request" => Kind::Request,
        "response" => Kind::Response,
        _ => return None,
    };
    valid_id(id).then_some((id, kind))
}

fn encode(
    cipher: Option<&Cipher>,
    name: &str,
    body: &[u8],
    path: &Path,
) -> Result<Vec<u8>, CaptureError> {
    let mut blob = Vec::with_capacity(MAGIC.len() + 1 + body.len() + 28);
    blob.extend_from_slice(MAGIC);
    match cipher {
        Some(cipher) => {
            blob.push(SEALED);
            let sealed =
                cipher
                    .seal(body, name.as_bytes())
                    .map_err(|problem| CaptureError::Crypto {
                        path: path.to_path_buf(),
                        problem,
                    })?;
            blob.extend_from_slice(&sealed);
        }
        None => {
            blob.push(PLAIN);
            blob.extend_from_slice(body);
        }
    }
    Ok(blob)
}

fn decode(
    cipher: Option<&Cipher>,
    name: &str,
    mut blob: Vec<u8>,
    path: &Path,
) -> Result<Vec<u8>, CaptureError> {
    let corrupt = || CaptureError::Corrupt {
        path: path.to_path_buf(),
    };
    let mode = blob
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.first().copied())
        .ok_or_else(corrupt)?;
    let start = MAGIC.len() + 1;
    match mode {
        PLAIN => {
            blob.drain(..start);
            Ok(blob)
        }
        SEALED => {
            let cipher = cipher.ok_or_else(|| CaptureError::NoKey {
                path: path.to_path_buf(),
            })?;
            cipher
                .open(&blob[start..], name.as_bytes())
                .map_err(|problem| CaptureError::Crypto {
                    path: path.to_path_buf(),
                    problem,
                })
        }
        _ => Err(corrupt()),
    }
}

fn is_sealed(path: &Path) -> bool {
    let mut head = [0u8; 7];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head[..MAGIC.len()] == *MAGIC && head[MAGIC.len()] == SEALED)
}

/// Creates `path` (which must not exist), readable by its owner only, holding `bytes`, flushed
/// to disk before it is renamed into place.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
