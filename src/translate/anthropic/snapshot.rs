//! Test helper: runs every fixture of a directory under `testdata/anthropic/` through a
//! translation and compares the result, as JSON values, with the checked-in expected file.
//! With `SMARTPROXY_UPDATE_SNAPSHOTS=1` the expected files are written instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/anthropic")).join(name)
}

fn updating() -> bool {
    std::env::var_os("SMARTPROXY_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

/// For each `<case><input_suffix>` file in `testdata/anthropic/<dir_name>`, calls `translate`
/// with its bytes; it returns the expected file's suffix and the actual value, compared with
/// `<case><suffix>`. Fails listing every case that differs.
pub fn each_case(
    dir_name: &str,
    input_suffix: &str,
    mut translate: impl FnMut(&[u8]) -> (&'static str, Value),
) {
    each_named_case(dir_name, input_suffix, |_, input| translate(input));
}

/// Like [`each_case`], also passing the case name (to vary options by name).
pub fn each_named_case(
    dir_name: &str,
    input_suffix: &str,
    mut translate: impl FnMut(&str, &[u8]) -> (&'static str, Value),
) {
    let dir = dir(dir_name);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(input_suffix))
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "no *{input_suffix} cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for input in &inputs {
        let file_name = input.file_name().unwrap().to_string_lossy();
        let case = file_name.strip_suffix(input_suffix).unwrap().to_owned();
        let bytes = std::fs::read(input).unwrap();
        let (suffix, actual) = translate(&case, &bytes);
        let expected_path = dir.join(format!("{case}{suffix}"));
        if let Err(failure) = compare(&expected_path, &actual) {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} snapshots differ (rerun with SMARTPROXY_UPDATE_SNAPSHOTS=1 to accept):\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

/// Compares `actual` with the JSON in `path`, or writes it there when updating.
pub fn compare(path: &Path, actual: &Value) -> Result<(), String> {
    if updating() {
        let mut text = serde_json::to_string_pretty(actual).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
        return Ok(());
    }
    let expected = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        Err(e) => return Err(format!("--- {}: {e}", path.display())),
    };
    if &expected == actual {
        Ok(())
    } else {
        Err(format!(
            "--- {}\nexpected:\n{}\nactual:\n{}",
            path.display(),
            serde_json::to_string_pretty(&expected).unwrap(),
            serde_json::to_string_pretty(actual).unwrap()
        ))
    }
}

/// Parses translated JSON bytes for comparison.
pub fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// Splits SSE text into `(event name, data)` pairs with the crate's own decoder.
pub fn sse_events(text: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let mut decoder = crate::wire::sse::Decoder::new();
    decoder.push(text);
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event() {
        events.push(event);
    }
    events.extend(decoder.take_rest());
    events
        .into_iter()
        .map(|event| (event.name().map(str::to_owned), event.data.to_vec()))
        .collect()
}

/// Turns encoded output events into JSON for a snapshot: `{"event": name, "data": payload}`
/// per event, `data` parsed as JSON when it is JSON (`[DONE]` stays a string).
pub fn encoded_events(events: &[bytes::Bytes]) -> Value {
    let mut joined = Vec::new();
    for event in events {
        assert!(event.ends_with(b"\n\n"), "event not terminated: {event:?}");
        joined.extend_from_slice(event);
    }
    Value::Array(
        sse_events(&joined)
            .into_iter()
            .map(|(name, data)| {
                let data = serde_json::from_slice(&data)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into()));
                match name {
                    Some(name) => serde_json::json!({"event": name, "data": data}),
                    None => serde_json::json!({"data": data}),
                }
            })
            .collect(),
    )
}
