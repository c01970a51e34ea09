//! The cassette file: JSON Lines, diffable and appendable. The first line says what the file is
//! and its version (`{"smartproxy_cassette":1}`); every other line is one request and the reply
//! the client got. A line is written whole in one append, so a recording that was killed leaves
//! every complete pair readable; only a last line without its newline (cut mid-write) is
//! skipped. Pure: the caller reads and writes the file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format this build writes and reads.
pub const VERSION: u64 = 1;

/// The first line of every cassette.
pub fn header_line() -> String {
    format!("{{\"smartproxy_cassette\":{VERSION}}}\n")
}

/// One request and the reply the client got, in the client's own format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The endpoint the client called (`/v1/chat/completions`, `/v1/messages`, `/api/chat`...).
    pub endpoint: String,
    /// The client's JSON body, redacted.
    pub request: Value,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The model that answered, for the ledger row of a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// The reply: exactly one of a JSON body, a text body or the chunks of a stream.
    #[serde(flatten)]
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    /// A stream's chunks as they were forwarded (their concatenation is the bytes the client
    /// got) and, with `--record-timing`, each chunk's time since the first in milliseconds.
    Stream {
        chunks: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chunk_ms: Option<Vec<u64>>,
    },
    /// A JSON body that serializes back to exactly the bytes sent (readable diffs).
    Json { body: Value },
    /// Any other body, as text.
    Text { text: String },
}

impl Reply {
    /// A whole body, stored as JSON when that gives back the same bytes.
    pub fn whole(bytes: &[u8]) -> Self {
        if let Ok(value) = serde_json::from_slice::<Value>(bytes)
            && serde_json::to_vec(&value).is_ok_and(|again| again == bytes)
        {
            return Self::Json { body: value };
        }
        Self::Text {
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// The bytes the client got, whole.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Stream { chunks, .. } => chunks.concat().into_bytes(),
            Self::Json { body } => serde_json::to_vec(body).unwrap_or_default(),
            Self::Text { text } => text.clone().into_bytes(),
        }
    }
}

/// An entry as one line of the file, newline included.
pub fn entry_line(entry: &Entry) -> Result<String, serde_json::Error> {
    let mut line = serde_json::to_string(entry)?;
    line.push('\n');
    Ok(line)
}

/// What is wrong with a cassette's text, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The entries of a cassette's text, in the order they were recorded, and whether its last
/// line was cut mid-write (and skipped).
pub fn parse(text: &str) -> Result<(Vec<Entry>, bool), ParseError> {
    let mut lines = text.split_inclusive('\n').enumerate();
    let Some((_, first)) = lines.next() else {
        return Err(ParseError {
            line: 1,
            message: "empty file: not a smartproxy cassette".to_owned(),
        });
    };
    check_header(first)?;
    let mut entries = Vec::new();
    let mut cut = false;
    for (i, line) in lines {
        if !line.ends_with('\n') {
            // The recording was killed while writing this line.
            cut = true;
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str::<Entry>(line).map_err(|e| ParseError {
            line: i + 1,
            message: format!("not a cassette entry: {e}"),
        })?;
        entries.push(entry);
    }
    Ok((entries, cut))
}

fn check_header(line: &str) -> Result<(), ParseError> {
    let bad = |message: String| ParseError { line: 1, message };
    let value: Value = serde_json::from_str(line).map_err(|_| {
        bad(
            "not a smartproxy cassette (the first line must be {\"smartproxy_cassette\":1})"
                .to_owned(),
        )
    })?;
    match value.get("smartproxy_cassette").and_then(Value::as_u64) {
        Some(VERSION) => Ok(()),
        Some(other) => Err(bad(format!(
            "cassette version {other} is not supported (this smartproxy reads version {VERSION}; record it again or upgrade)"
        ))),
        None => Err(bad(
            "not a smartproxy cassette (the first line must be {\"smartproxy_cassette\":1})"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(reply: Reply) -> Entry {
        Entry {
            endpoint: "/v1/chat/completions".to_owned(),
            request: json!({"model":"m"}),
            status: 200,
            content_type: Some("application/json".to_owned()),
            model: None,
            prompt_tokens: Some(3),
            completion_tokens: None,
            reply,
        }
    }

    #[test]
    fn entries_round_trip_with_their_exact_bytes() {
        let compact = br#"{"id":"x","choices":[]}"#;
        let spaced = b"{ \"id\": 1 }";
        let stream = Reply::Stream {
            chunks: vec!["data: {}\n\n".to_owned(), "data: [DONE]\n\n".to_owned()],
            chunk_ms: Some(vec![0, 5]),
        };
        assert!(matches!(Reply::whole(compact), Reply::Json { .. }));
        assert!(matches!(Reply::whole(spaced), Reply::Text { .. }));
        let mut text = header_line();
        for reply in [Reply::whole(compact), Reply::whole(spaced), stream] {
            text.push_str(&entry_line(&entry(reply)).unwrap_or_default());
        }
        let (entries, cut) = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!cut);
        assert_eq!(entries[0].reply.bytes(), compact);
        assert_eq!(entries[1].reply.bytes(), spaced);
        assert_eq!(entries[2].reply.bytes(), b"data: {}\n\ndata: [DONE]\n\n");
        assert_eq!(entries[0].prompt_tokens, Some(3));
    }

    #[test]
    fn a_line_cut_mid_write_is_skipped_and_a_bad_line_is_named() {
        let good = entry_line(&entry(Reply::whole(b"{}"))).unwrap_or_default();
        let text = format!("{}{good}{}", header_line(), &good[..good.len() / 2]);
        let (entries, cut) = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((entries.len(), cut), (1, true));
        let broken = format!("{}{good}{{oops\n{good}", header_line());
        assert_eq!(parse(&broken).err().map(|e| e.line), Some(3));
        let future = "{\"smartproxy_cassette\":7}\n";
        let message = parse(future).err().map(|e| e.message).unwrap_or_default();
        assert!(message.contains("version 7"), "{message}");
        assert_eq!(parse("[1,2]\n").err().map(|e| e.line), Some(1));
    }
}
