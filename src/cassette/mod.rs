//! Cassettes: a `run` session's requests and the replies its client got, recorded to a file
//! (`run --record`) and served back from it with no network, no key and no cost
//! (`run --replay`), so an agent's CI run is repeatable.
//!
//! `format` is the file (JSON Lines, versioned), `key` the canonical request a reply is found
//! by and where a missed request first differs (both pure), `recorder` appends pairs off the
//! request path, `player` hands recorded replies out in the order they were recorded. The
//! proxy's `cassette` phase asks them; the stream relay hands a recorded stream's chunks to
//! the recorder when it completes.
//!
//! Recording is an explicit opt-in to storing bodies (like body capture): the file is created
//! 0600, no header is ever written (keys travel in headers), and `cassette.redact` patterns
//! plus the built-in key shapes are replaced in every body.

pub mod format;
pub mod key;
mod player;
mod recorder;

use std::path::PathBuf;

use regex::Regex;

pub use format::{Entry, Reply};
pub use player::{Miss, Player};
pub use recorder::{Recorder, StreamTape};

/// Key shapes replaced in every recording whatever the config says: OpenAI and Anthropic
/// (`sk-...`), AWS access key ids, GitHub tokens, Google API keys, and smartproxy's own
/// session keys.
const BUILT_IN_REDACTIONS: &[&str] = &[
    r"sk-[A-Za-z0-9_\-]{16,}",
    r"AKIA[0-9A-Z]{16}",
    r"gh[pousr]_[A-Za-z0-9]{30,}",
    r"AIza[0-9A-Za-z_\-]{30,}",
];

/// What to do with a request the cassette has no reply for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnMiss {
    /// Refuse it with a `cassette_miss` error naming where it differs from the nearest
    /// recorded request.
    #[default]
    Fail,
    /// Send it to the provider (and, with `--record`, add it to the cassette).
    Passthrough,
}

/// A session's cassettes: the one it replays from, the one it records to, or both.
pub struct Cassette {
    pub player: Option<Player>,
    pub recorder: Option<std::sync::Arc<Recorder>>,
    pub on_miss: OnMiss,
    /// The built-in patterns and `cassette.redact`'s.
    pub redactions: Vec<Regex>,
}

impl Cassette {
    /// The patterns replaced in recorded bodies and requests' keys: the built-in key shapes and
    /// `extra` (already checked to compile by the config).
    pub fn redactions(extra: &[String]) -> Result<Vec<Regex>, CassetteError> {
        BUILT_IN_REDACTIONS
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .map(|p| {
                Regex::new(p).map_err(|e| CassetteError::Pattern {
                    pattern: p.to_owned(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Every recorded pair is on disk.
    pub fn close(&self) {
        if let Some(recorder) = &self.recorder {
            recorder.close();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cassette {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cassette {path}, line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cassette.redact: `{pattern}` is not a regular expression: {message}")]
    Pattern { pattern: String, message: String },
}
