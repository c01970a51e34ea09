//! Appends recorded pairs to the cassette from one writer thread: the request path only queues
//! (`try_send`; a full queue drops the pair, counts it and warns), and each pair is one
//! `write` of one line to a file opened for appending, so a recording killed at any moment
//! leaves every complete pair readable.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use regex::Regex;

use super::CassetteError;
use super::format::{self, Entry, Reply};
use super::key::redact_text;

/// Pairs waiting to be written; more are dropped and counted.
const QUEUE: usize = 1024;

pub struct Recorder {
    path: PathBuf,
    /// `--record-timing`: streams keep each chunk's time.
    timing: bool,
    tx: Mutex<Option<SyncSender<Entry>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    written: Arc<AtomicU64>,
    dropped: AtomicU64,
}

impl Recorder {
    /// Opens `path` for appending (created 0600 with the format's first line when new; an
    /// existing cassette must be one, and a last line a killed recording cut short is
    /// removed) and starts the writer, which replaces `redactions` in every reply.
    pub fn open(path: &Path, timing: bool, redactions: Vec<Regex>) -> Result<Self, CassetteError> {
        let io = |source| CassetteError::Io {
            path: path.to_path_buf(),
            source,
        };
        crate::private_files::prepare(path).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        prepare_for_append(path, &mut file)?;
        let (tx, rx) = mpsc::sync_channel::<Entry>(QUEUE);
        let written = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&written);
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("cassette-writer".to_owned())
            .spawn(move || {
                let mut warned = false;
                while let Ok(mut entry) = rx.recv() {
                    redact_reply(&mut entry.reply, &redactions);
                    let written = format::entry_line(&entry)
                        .map_err(std::io::Error::other)
                        .and_then(|line| file.write_all(line.as_bytes()));
                    match written {
                        Ok(()) => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) if !warned => {
                            warned = true;
                            tracing::warn!(%err, "cassette {shown}: a recorded pair could not be written");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            timing,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            written,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues a pair for the file; never blocks.
    pub fn record(&self, entry: Entry) {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else {
            return;
        };
        if tx.try_send(entry).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                "cassette {}: the writer fell behind and a pair was not recorded; the cassette will miss it",
                self.path.display()
            );
        }
    }

    /// A tape for a stream whose pair is `entry` (its reply filled in when the stream
    /// completes).
    pub fn tape(self: &Arc<Self>, entry: Entry) -> StreamTape {
        StreamTape {
            recorder: Arc::clone(self),
            entry,
            chunks: Vec::new(),
            chunk_ms: self.timing.then(Vec::new),
            started: Instant::now(),
        }
    }

    /// Writes what is queued and stops the writer; later pairs are not recorded.
    pub fn close(&self) {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                "cassette {}: {dropped} pairs were not recorded (the writer fell behind)",
                self.path.display()
            );
        }
    }

    /// Pairs written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A new file gets the first line; an existing one must be a cassette of this version, and a
/// last line without its newline (a recording killed mid-write) is cut off so the next line
/// starts clean.
fn prepare_for_append(path: &Path, file: &mut File) -> Result<(), CassetteError> {
    let io = |source| CassetteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    if text.is_empty() {
        return file.write_all(format::header_line().as_bytes()).map_err(io);
    }
    format::parse(&text).map_err(|e| CassetteError::Line {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    if !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        file.set_len(keep as u64).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        tracing::warn!(
            "cassette {}: its last line was cut short (a recording was killed) and is removed",
            path.display()
        );
    }
    Ok(())
}

fn redact_reply(reply: &mut Reply, redactions: &[Regex]) {
    match reply {
        Reply::Stream { chunks, .. } => {
            for chunk in chunks {
                *chunk = redact_text(chunk, redactions);
            }
        }
        Reply::Text { text } => *text = redact_text(text, redactions),
        Reply::Json { body } => {
            let text = body.to_string();
            let redacted = redact_text(&text, redactions);
            if redacted != text {
                *reply = Reply::whole(redacted.as_bytes());
            }
        }
    }
}

/// A stream being recorded: the chunks forwarded to the client, kept until it completes (a
/// stream cut short is not recorded).
pub struct StreamTape {
    recorder: Arc<Recorder>,
    entry: Entry,
    chunks: Vec<String>,
    chunk_ms: Option<Vec<u64>>,
    started: Instant,
}

impl StreamTape {
    pub fn push(&mut self, bytes: &[u8]) {
        if let Some(times) = self.chunk_ms.as_mut() {
            times.push(self.started.elapsed().as_millis() as u64);
        }
        self.chunks
            .push(String::from_utf8_lossy(bytes).into_owned());
    }

    /// The completed stream's pair, with the tokens the relay counted.
    pub fn finish(mut self, model: Option<String>, tokens: (u64, u64)) {
        self.entry.model = model.or(self.entry.model);
        self.entry.prompt_tokens = Some(tokens.0);
        self.entry.completion_tokens = Some(tokens.1);
        self.entry.reply = Reply::Stream {
            chunks: self.chunks,
            chunk_ms: self.chunk_ms,
        };
        self.recorder.record(self.entry);
    }
}
