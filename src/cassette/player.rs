//! Serves a cassette's recorded replies: each request is found by its canonical key, and
//! identical requests get their replies in the order they were recorded. A request with no
//! reply left is a miss that says where it differs from the nearest recorded request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use super::CassetteError;
use super::format::{self, Entry};
use super::key::{canonical, first_difference, key_of};

pub struct Player {
    path: PathBuf,
    /// Each key's recorded pairs, in recorded order.
    by_key: HashMap<String, Vec<Arc<Entry>>>,
    /// Every recorded request's canonical form and its position in the file (1-based), for
    /// naming the nearest one on a miss.
    recorded: Vec<(Value, usize)>,
    /// How many of each key's pairs were served.
    served: Mutex<HashMap<String, usize>>,
}

/// A request the cassette has no reply for, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub message: String,
}

impl Player {
    /// Reads the cassette at `path`: every line checked, an error naming the file and line.
    pub fn load(path: &Path) -> Result<Self, CassetteError> {
        let text = std::fs::read_to_string(path).map_err(|source| CassetteError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (entries, cut) = format::parse(&text).map_err(|e| CassetteError::Line {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        if cut {
            tracing::warn!(
                "cassette {}: its last line was cut short (the recording was killed) and is skipped",
                path.display()
            );
        }
        let mut by_key: HashMap<String, Vec<Arc<Entry>>> = HashMap::new();
        let mut recorded = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let canon = canonical(&entry.endpoint, &entry.request);
            by_key
                .entry(key_of(&canon))
                .or_default()
                .push(Arc::new(entry));
            recorded.push((canon, i + 1));
        }
        Ok(Self {
            path: path.to_path_buf(),
            by_key,
            recorded,
            served: Mutex::new(HashMap::new()),
        })
    }

    /// How many pairs the cassette holds.
    pub fn len(&self) -> usize {
        self.recorded.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recorded.is_empty()
    }

    /// The next recorded reply to the request whose canonical form is `canon`.
    pub fn take(&self, canon: &Value) -> Result<Arc<Entry>, Miss> {
        let key = key_of(canon);
        let recorded = self.by_key.get(&key);
        let served = {
            let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            let n = served.entry(key).or_default();
            let this = *n;
            if recorded.is_some_and(|r| this < r.len()) {
                *n += 1;
            }
            this
        };
        match recorded {
            Some(pairs) => pairs.get(served).cloned().ok_or_else(|| Miss {
                message: format!(
                    "cassette {}: this request was recorded {} time(s) and has been replayed as often; \
                     it was not asked again when the cassette was recorded (record again, or replay with \
                     --replay-miss passthrough)",
                    self.path.display(),
                    pairs.len()
                ),
            }),
            None => Err(self.nearest_miss(canon)),
        }
    }

    /// A miss naming where the request differs from the recorded one that matches it longest.
    fn nearest_miss(&self, canon: &Value) -> Miss {
        let endpoint = canon.get("endpoint").and_then(Value::as_str).unwrap_or("");
        let nearest = self
            .recorded
            .iter()
            .filter(|(r, _)| r.get("endpoint").and_then(Value::as_str) == Some(endpoint))
            .filter_map(|(r, line)| first_difference(canon, r).map(|(path, m)| (path, m, *line)))
            .max_by_key(|(_, matched, line)| (*matched, std::cmp::Reverse(*line)));
        let message = match nearest {
            Some((path, _, n)) => format!(
                "cassette {}: no recorded request matches this one; it differs from the nearest \
                 (recorded request {n}) at `{path}` (record again, or replay with --replay-miss passthrough)",
                self.path.display()
            ),
            None => format!(
                "cassette {}: no request to {endpoint} was recorded (record again, or replay with \
                 --replay-miss passthrough)",
                self.path.display()
            ),
        };
        Miss { message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::format::{Reply, entry_line, header_line};
    use serde_json::json;

    fn pair(content: &str, answer: &str) -> String {
        entry_line(&Entry {
            endpoint: "/v1/chat/completions".to_owned(),
            request: json!({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":content}]}),
            status: 200,
            content_type: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            reply: Reply::Text {
                text: answer.to_owned(),
            },
        })
        .unwrap_or_default()
    }

    #[test]
    fn repeats_replay_in_order_and_misses_name_the_field() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.jsonl");
        let text = format!(
            "{}{}{}{}",
            header_line(),
            pair("a", "1"),
            pair("a", "2"),
            pair("b", "3")
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let player = Player::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let ask = |content: &str| {
            canonical(
                "/v1/chat/completions",
                &json!({"model":"m","user":"x","messages":[{"role":"system","content":"s"},{"role":"user","content":content}]}),
            )
        };
        let text_of = |e: Arc<Entry>| String::from_utf8(e.reply.bytes()).unwrap_or_default();
        assert_eq!(player.take(&ask("a")).map(text_of), Ok("1".to_owned()));
        assert_eq!(player.take(&ask("b")).map(text_of), Ok("3".to_owned()));
        assert_eq!(player.take(&ask("a")).map(text_of), Ok("2".to_owned()));
        let again = player.take(&ask("a")).err().map(|m| m.message);
        let again = again.unwrap_or_default();
        assert!(again.contains("recorded 2 time(s)"), "{again}");
        let miss = player.take(&ask("c")).err().map(|m| m.message);
        let miss = miss.unwrap_or_default();
        assert!(miss.contains("`messages[1].content`"), "{miss}");
    }
}
