//! Tests for the Ollama translators: fixture groups under `testdata/ollama/<group>/`, each case a
//! `<case>.in.<ext>` input and a `<case>.out.json` expected result compared as JSON values.
//! `SMARTPROXY_UPDATE_SNAPSHOTS=1 cargo test` rewrites the expected files from the actual output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod inbound;
mod misc;
mod outbound;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{TokenUsage, TranslateError, Translated};

/// The timestamps and ids every fixture is translated with.
pub(super) const CREATED_AT: &str = "2025-01-02T03:04:05.678Z";
pub(super) const CREATED: u64 = 1_735_787_045;
pub(super) const ID: &str = "chatcmpl-smartproxy-1";

fn fixture_dir(group: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ollama")).join(group)
}

/// Runs `translate` on every `*.in.<ext>` input of a group and checks each against its
/// `*.out.json`, reporting every mismatch at once.
pub(super) fn run_group(group: &str, ext: &str, translate: impl Fn(&[u8]) -> Value) {
    let dir = fixture_dir(group);
    let suffix = format!(".in.{ext}");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "no {suffix} fixtures in {}",
        dir.display()
    );
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|input| {
            let name = input.file_name().unwrap().to_string_lossy();
            let expected = input.with_file_name(name.replace(&suffix, ".out.json"));
            let actual = translate(&fs::read(input).unwrap());
            check_snapshot(&expected, &actual).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Compares `actual` with the JSON in `path`, or writes it there in update mode.
pub(super) fn check_snapshot(path: &Path, actual: &Value) -> Result<(), String> {
    if std::env::var("SMARTPROXY_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        let mut text = serde_json::to_string_pretty(actual).unwrap();
        text.push('\n');
        fs::write(path, text).unwrap();
        return Ok(());
    }
    let text = fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (run with SMARTPROXY_UPDATE_SNAPSHOTS=1 to write it)",
            path.display()
        )
    })?;
    let expected: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    if expected == *actual {
        return Ok(());
    }
    Err(format!(
        "{} differs\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        serde_json::to_string_pretty(&expected).unwrap(),
        serde_json::to_string_pretty(actual).unwrap()
    ))
}

pub(super) fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "output is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

pub(super) fn usage_json(usage: Option<TokenUsage>) -> Value {
    usage.map_or(
        Value::Null,
        |u| json!({"prompt": u.prompt, "completion": u.completion}),
    )
}

pub(super) fn error_json(err: &TranslateError) -> Value {
    json!({"error": err.to_string(), "field": err.field()})
}

pub(super) fn translated_json(result: Result<Translated, TranslateError>) -> Value {
    match result {
        Ok(t) => json!({"body": parse(&t.body), "usage": usage_json(t.usage)}),
        Err(e) => error_json(&e),
    }
}
