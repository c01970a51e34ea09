//! Tests of the `capture:` config section: defaults, the environment override, and errors that
//! name the file, line and key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::config::{CaptureStoreKind, WhenFull, from_yaml};

fn no_env(_: &str) -> Option<String> {
    None
}

/// (line, key, message) of each error.
fn errors(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(Option<usize>, String, String)> {
    from_yaml(text, Some(Path::new("sp.yaml")), env)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.line, e.key.unwrap_or_default(), e.message))
        .collect()
}

#[test]
fn off_by_default_in_a_folder_beside_the_ledger() {
    let config = from_yaml("database: /data/sp/ledger.db\n", None, &no_env).unwrap();
    let c = &config.capture;
    assert!(!c.enabled);
    assert_eq!(c.store, CaptureStoreKind::File);
    assert_eq!(c.path, Path::new("/data/sp/captures"));
    assert_eq!(c.max_blob_bytes, 1024 * 1024);
    assert_eq!(c.max_total_bytes, 256 * 1024 * 1024);
    assert_eq!(c.when_full, WhenFull::Refuse);
}

#[test]
fn every_setting_and_the_environment_override() {
    let text = "capture:\n  enabled: false\n  store: memory\n  path: caps\n  max_blob_bytes: 10\n  max_total_bytes: 100\n  when_full: drop_oldest\n";
    let config = from_yaml(text, Some(Path::new("/etc/sp/sp.yaml")), &no_env).unwrap();
    let c = &config.capture;
    assert!(!c.enabled);
    assert_eq!(c.store, CaptureStoreKind::Memory);
    assert_eq!(c.path, Path::new("/etc/sp/caps"), "beside the config file");
    assert_eq!((c.max_blob_bytes, c.max_total_bytes), (10, 100));
    assert_eq!(c.when_full, WhenFull::DropOldest);
    let on = |k: &str| (k == "SMARTPROXY_CAPTURE_ENABLED").then(|| "true".to_owned());
    assert!(from_yaml(text, None, &on).unwrap().capture.enabled);
    let off = |k: &str| (k == "SMARTPROXY_CAPTURE_ENABLED").then(|| "0".to_owned());
    let text = "capture:\n  enabled: true\n";
    assert!(!from_yaml(text, None, &off).unwrap().capture.enabled);
    let bad = |k: &str| (k == "SMARTPROXY_CAPTURE_ENABLED").then(|| "maybe".to_owned());
    let errs = errors(text, &bad);
    assert_eq!(errs[0].1, "SMARTPROXY_CAPTURE_ENABLED");
    assert!(
        errs[0].2.contains("`maybe` is not true or false"),
        "{errs:?}"
    );
}

#[test]
fn mistakes_name_the_line_and_key() {
    let errs = errors("capture:\n  enabled: true\n  max_blob: 10\n", &no_env);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, Some(3));
    assert!(errs[0].2.contains("unknown field `max_blob`"), "{errs:?}");

    let text =
        "capture:\n  store: disk\n  max_blob_bytes: 0\n  max_total_bytes: 0\n  when_full: evict\n";
    let errs = errors(text, &no_env);
    let got: Vec<(Option<usize>, &str)> = errs.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "capture.store"),
            (Some(3), "capture.max_blob_bytes"),
            (Some(4), "capture.max_total_bytes"),
            (Some(5), "capture.when_full"),
        ]
    );
    assert!(errs[0].2.contains("`file`"), "{errs:?}");
    assert!(errs[3].2.contains("`drop_oldest`"), "{errs:?}");

    let errs = errors(
        "capture:\n  max_blob_bytes: 100\n  max_total_bytes: 10\n",
        &no_env,
    );
    assert_eq!(errs[0].0, Some(2));
    assert!(errs[0].2.contains("no body that size"), "{errs:?}");
}
