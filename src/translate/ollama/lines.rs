//! Incremental NDJSON framing: bytes in as they arrive, complete lines out, whatever the chunking.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into lines. Lines come out without their `\n` (or `\r\n`); blank lines
/// are skipped, as NDJSON gives them no meaning.
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: BytesMut,
    /// How far `buf` was already searched for a newline, so each byte is scanned once.
    scanned: usize,
}

impl LineDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrived.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, if the buffered bytes hold one.
    pub fn next_line(&mut self) -> Option<Bytes> {
        while let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            let line = self.buf.split_to(self.scanned + pos + 1).freeze();
            self.scanned = 0;
            if let Some(line) = non_blank(line) {
                return Some(line);
            }
        }
        self.scanned = self.buf.len();
        None
    }

    /// The last line when the stream ended without a final `\n`; None when nothing is left.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        non_blank(self.buf.split().freeze())
    }

    /// Bytes held waiting for a newline, for callers that cap line length.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// The line without its line ending, or None when only whitespace is left.
fn non_blank(line: Bytes) -> Option<Bytes> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    Some(line.slice(..end))
}
