//! Incremental Server-Sent Events framing: bytes in as they arrive, whole events out, each with
//! its raw bytes (forwarded unchanged) and its joined `data:` payload (read for usage).

use bytes::{Bytes, BytesMut};

/// One complete event as it appeared on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's bytes including the blank line that ended it.
    pub raw: Bytes,
    /// The `data:` lines joined with `\n`; empty for comment-only events.
    pub data: Bytes,
}

impl Event {
    pub fn is_done(&self) -> bool {
        self.data.as_ref() == b"[DONE]"
    }

    /// The `event:` field (Anthropic names every event), if there is one.
    pub fn name(&self) -> Option<&str> {
        self.raw
            .split(|b| *b == b'\n' || *b == b'\r')
            .find_map(|line| line.strip_prefix(b"event:"))
            .map(|rest| rest.strip_prefix(b" ").unwrap_or(rest))
            .and_then(|name| std::str::from_utf8(name).ok())
    }
}

/// Encodes one named event (`event: NAME` then `data: ...`), as Anthropic's API sends them.
pub fn named_event(name: &str, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(name.len() + payload.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Splits a byte stream into events. Handles `\n`, `\r\n` and `\r` line endings and events split
/// across any number of chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    /// How far `buf` was already searched for an event end, so each byte is scanned once.
    scanned: usize,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Option<Event> {
        let end = find_event_end(&self.buf, self.scanned.saturating_sub(3));
        match end {
            Some(end) => {
                let raw = self.buf.split_to(end).freeze();
                self.scanned = 0;
                let data = data_of(&raw);
                Some(Event { raw, data })
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Bytes left over after the stream ended without a closing blank line.
    pub fn take_rest(&mut self) -> Option<Event> {
        if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
            self.buf.clear();
            return None;
        }
        let raw = self.buf.split().freeze();
        self.scanned = 0;
        let data = data_of(&raw);
        Some(Event { raw, data })
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Finds the end (exclusive) of the first event: two line endings in a row.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(pos) = memchr::memchr2(b'\n', b'\r', &buf[i.min(buf.len())..]) {
        let at = i + pos;
        let after_first = line_end_len(buf, at)?;
        let next = at + after_first;
        if next >= buf.len() {
            return None;
        }
        if buf[next] == b'\n' || buf[next] == b'\r' {
            let second = line_end_len(buf, next)?;
            return Some(next + second);
        }
        i = next;
    }
    None
}

/// Length of the line ending at `at` (1 or 2), or None when a `\r` at the very end might still
/// become `\r\n`.
fn line_end_len(buf: &[u8], at: usize) -> Option<usize> {
    if buf[at] == b'\r' {
        match buf.get(at + 1) {
            Some(b'\n') => Some(2),
            Some(_) => Some(1),
            None => None,
        }
    } else {
        Some(1)
    }
}

fn data_of(raw: &Bytes) -> Bytes {
    let mut lines = raw
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(|rest| rest.strip_prefix(b" ").unwrap_or(rest));
    let Some(first) = lines.next() else {
        return Bytes::new();
    };
    match lines.next() {
        // The common case, one data line: share the bytes instead of copying.
        None => raw.slice_ref(first),
        Some(second) => {
            let mut joined = Vec::with_capacity(raw.len());
            joined.extend_from_slice(first);
            joined.push(b'\n');
            joined.extend_from_slice(second);
            for line in lines {
                joined.push(b'\n');
                joined.extend_from_slice(line);
            }
            Bytes::from(joined)
        }
    }
}

/// Encodes one `data:` event.
pub fn data_event(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn events_of(chunks: &[&[u8]]) -> Vec<Event> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event() {
                out.push(event);
            }
        }
        out.extend(decoder.take_rest());
        out
    }

    #[test]
    fn splits_events_whatever_the_chunking() {
        let stream: &[u8] = b"data: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        let whole = events_of(&[stream]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].data.as_ref(), b"{\"a\":1}");
        assert_eq!(whole[1].data.as_ref(), b"");
        assert!(whole[2].is_done());
        for split in 1..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(events_of(&[a, b]), whole, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events_of(&bytewise), whole);
    }

    #[test]
    fn handles_every_line_ending() {
        for stream in [
            &b"data: x\r\n\r\ndata: y\r\n\r\n"[..],
            b"data: x\r\rdata: y\r\r",
            b"data: x\n\ndata: y\n\n",
        ] {
            let events = events_of(&[stream]);
            let data: Vec<&[u8]> = events.iter().map(|e| e.data.as_ref()).collect();
            assert_eq!(data, vec![&b"x"[..], b"y"], "{stream:?}");
        }
        let split = events_of(&[b"data: x\r", b"\n\r\ndata: y\r\n\r\n"]);
        assert_eq!(split.len(), 2);
    }

    #[test]
    fn joins_multi_line_data_and_keeps_raw_bytes() {
        let events = events_of(&[b"event: message\ndata: a\ndata:b\nid: 3\n\n"]);
        assert_eq!(events[0].data.as_ref(), b"a\nb");
        assert_eq!(events[0].name(), Some("message"));
        assert_eq!(events_of(&[b"data: x\n\n"])[0].name(), None);
        assert_eq!(
            events[0].raw.as_ref(),
            b"event: message\ndata: a\ndata:b\nid: 3\n\n"
        );
    }

    #[test]
    fn returns_an_unterminated_tail() {
        let events = events_of(&[b"data: x\n\ndata: partial"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data.as_ref(), b"partial");
        assert!(events_of(&[b"data: x\n\n\n"]).len() == 1);
    }
}
