//! Tests of the capture stores: caps refuse whole bodies, writes are atomic, sealed blobs open
//! only with their key and under their own name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::capture::{CaptureHandle, KEY_ENV};

const KEY: &str = "8f3a1c0e5b7d294688a1f0c3e2d4b6a79c8e1f2a3b4c5d6e7f8091a2b3c4d5e6";
const ID: &str = "req_0001";

fn cipher(key: &str) -> Cipher {
    Cipher::from_value(KEY_ENV, key).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn stores_and_loads_both_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("captures");
    let mut store = FileStore::open(&path, None, 1024, 4096).unwrap();
    assert_eq!(store.load(ID).unwrap(), None);
    assert_eq!(
        store.put(ID, Kind::Request, b"{\"q\":1}").unwrap(),
        PutOutcome::Stored
    );
    let found = store.load(ID).unwrap().unwrap();
    assert_eq!(found.request.as_deref(), Some(&b"{\"q\":1}"[..]));
    assert_eq!(found.response, None);
    store.put(ID, Kind::Response, b"answer").unwrap();
    let found = store.load(ID).unwrap().unwrap();
    assert_eq!(found.get(Kind::Response), Some(&b"answer"[..]));
    assert_eq!(files(&path), ["req_0001.request", "req_0001.response"]);
    // Plain blobs hold the body as is after the header.
    let raw = std::fs::read(path.join("req_0001.response")).unwrap();
    assert_eq!(raw, b"SPCAP1panswer");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(path.join("req_0001.request"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Reopening counts what is there.
    let reopened = FileStore::open(&path, None, 1024, 4096).unwrap();
    assert_eq!(reopened.total, store.total);
    assert_eq!(store.total, 7 + 7 + 7 + 6);
    let stats = reopened.stats().unwrap();
    assert_eq!((stats.requests, stats.blobs, stats.bytes), (1, 2, 27));
}

#[test]
fn over_cap_blobs_are_refused_whole_and_nothing_partial_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), None, 10, 40).unwrap();
    assert_eq!(
        store.put(ID, Kind::Request, &[b'x'; 11]).unwrap(),
        PutOutcome::TooLarge
    );
    assert!(files(dir.path()).is_empty(), "nothing written");
    // Exactly at the blob cap is fine: 10 bytes + 7 of header.
    assert_eq!(
        store.put("req_a", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put("req_b", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(store.total, 34);
    // A third would take the store to 51 > 40.
    assert_eq!(
        store.put("req_c", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::StoreFull
    );
    assert_eq!(files(dir.path()), ["req_a.request", "req_b.request"]);
    // Replacing a blob counts only the difference.
    assert_eq!(
        store.put("req_a", Kind::Request, b"short").unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(store.total, 12 + 17);
    // Removing frees room.
    assert_eq!(store.remove(&["req_a", "req_b", "../etc"]).unwrap(), 2);
    assert_eq!(store.total, 0);
    assert_eq!(
        store.put("req_c", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
}

#[test]
fn a_failed_write_leaves_no_blob_and_stale_temp_files_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), None, 100, 1000).unwrap();
    // A directory where the blob's file should go makes the rename fail.
    std::fs::create_dir(dir.path().join("req_x.response")).unwrap();
    std::fs::write(dir.path().join("req_x.response").join("keep"), b"").unwrap();
    assert!(store.put("req_x", Kind::Response, b"body").is_err());
    let names = files(dir.path());
    assert_eq!(names, ["req_x.response"], "the temp file was removed");
    assert_eq!(store.total, 0);
    // An old temp file (a crash mid-write) is removed at open; a young one is left alone.
    let old = dir.path().join(".tmp-req_y.request.00");
    let young = dir.path().join(".tmp-req_z.request.00");
    std::fs::write(&old, b"SPCAP1ppart").unwrap();
    std::fs::write(&young, b"SPCAP1ppart").unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let reopened = FileStore::open(dir.path(), None, 100, 1000).unwrap();
    assert!(!old.exists());
    assert!(young.exists());
    assert_eq!(reopened.total, 0, "temp files are not blobs");
    assert_eq!(reopened.load("req_y").unwrap(), None);
}

#[test]
fn sealed_blobs_open_with_their_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), Some(cipher(KEY)), 1024, 4096).unwrap();
    let secret = b"the prompt CANARY-unit";
    store.put(ID, Kind::Request, secret).unwrap();
    let raw = std::fs::read(dir.path().join("req_0001.request")).unwrap();
    assert!(raw.starts_with(b"SPCAP1s"));
    assert_eq!(raw.len(), 7 + 12 + secret.len() + 16);
    assert!(!raw.windows(secret.len()).any(|w| w == secret));
    assert_eq!(
        store.load(ID).unwrap().unwrap().request.as_deref(),
        Some(&secret[..])
    );
    assert_eq!(store.stats().unwrap().encrypted_blobs, 1);

    let keyless = FileStore::open(dir.path(), None, 1024, 4096).unwrap();
    let err = keyless.load(ID).unwrap_err().to_string();
    assert!(err.contains(KEY_ENV), "{err}");
    let other = KEY.replace('8', "9");
    let wrong = FileStore::open(dir.path(), Some(cipher(&other)), 1024, 4096).unwrap();
    let err = wrong.load(ID).unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    // A sealed blob copied under another request's name does not open.
    std::fs::copy(
        dir.path().join("req_0001.request"),
        dir.path().join("req_0002.request"),
    )
    .unwrap();
    assert!(store.load("req_0002").is_err());
}

#[test]
fn corrupt_blobs_and_bad_ids_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), None, 1024, 4096).unwrap();
    std::fs::write(dir.path().join("req_bad.response"), b"hello").unwrap();
    let err = store.load("req_bad").unwrap_err().to_string();
    assert!(err.contains("not a smartproxy capture blob"), "{err}");
    for id in ["", "../x", "a/b", "req 1"] {
        assert!(store.put(id, Kind::Request, b"x").is_err(), "{id}");
        assert!(store.load(id).is_err(), "{id}");
    }
}

#[test]
fn remove_older_than_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = FileStore::open(dir.path(), None, 1024, 4096).unwrap();
    store.put("req_old", Kind::Request, b"a").unwrap();
    store.put("req_new", Kind::Request, b"b").unwrap();
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("req_old.request"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
    let cutoff = SystemTime::now() - Duration::from_secs(60);
    assert_eq!(store.remove_older_than(cutoff).unwrap(), 1);
    assert_eq!(store.load("req_old").unwrap(), None);
    assert!(store.load("req_new").unwrap().is_some());
    assert_eq!(store.clear().unwrap(), 1);
    assert_eq!(files(dir.path()), ["unrelated.txt"]);
    assert_eq!(store.total, 0);
}

#[test]
fn memory_store_has_the_same_caps() {
    let mut store = MemoryStore::new(10, 25);
    assert_eq!(
        store.put(ID, Kind::Request, &[1; 11]).unwrap(),
        PutOutcome::TooLarge
    );
    assert_eq!(
        store.put(ID, Kind::Request, &[1; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put(ID, Kind::Response, &[2; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put("req_2", Kind::Request, &[3; 10]).unwrap(),
        PutOutcome::StoreFull
    );
    let found = store.load(ID).unwrap();
    assert_eq!(found.response, Some(vec![2; 10]));
    assert_eq!(store.stats().blobs, 2);
    assert_eq!(store.load("req_2"), None);
    assert_eq!(store.remove(&[ID, "req_2"]), 2);
    assert_eq!(store.stats().bytes, 0);
    assert_eq!(
        store.put("req_2", Kind::Request, &[3; 10]).unwrap(),
        PutOutcome::Stored
    );
}

#[test]
fn the_handle_counts_refusals_and_streams_never_store_truncated() {
    let handle =
        Arc::new(CaptureHandle::with_store(Store::Memory(MemoryStore::new(8, 1000)), 8).unwrap());
    handle.put("req_1", Kind::Request, Bytes::from_static(b"12345678"));
    handle.put("req_2", Kind::Request, Bytes::from_static(b"123456789"));
    let mut ok = handle.stream("req_1");
    ok.push(b"1234");
    ok.push(b"5678");
    ok.finish();
    let mut over = handle.stream("req_2");
    over.push(b"12345");
    over.push(b"6789");
    over.push(b"0");
    over.finish();
    handle.close();
    let counters = handle.counters();
    assert_eq!(counters.stored, 2);
    assert_eq!(counters.refused, 2, "one whole body and one stream");
    assert_eq!(counters.dropped, 0);
    assert_eq!(counters.bytes, 16);
    let one = handle.load("req_1").unwrap().unwrap();
    assert_eq!(one.request.as_deref(), Some(&b"12345678"[..]));
    assert_eq!(one.response.as_deref(), Some(&b"12345678"[..]));
    assert_eq!(handle.load("req_2").unwrap(), None);
    // After close, bodies are ignored, not queued.
    handle.put("req_3", Kind::Request, Bytes::from_static(b"x"));
    assert_eq!(handle.counters().stored, 2);
}

#[test]
fn the_handle_refuses_what_the_file_store_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), None, 100, 30).unwrap();
    let handle = CaptureHandle::with_store(Store::File(Box::new(store)), 100).unwrap();
    handle.put("req_1", Kind::Request, Bytes::from(vec![b'a'; 20]));
    handle.put("req_2", Kind::Request, Bytes::from(vec![b'b'; 20]));
    handle.close();
    let counters = handle.counters();
    assert_eq!((counters.stored, counters.refused), (1, 1));
    assert_eq!(files(dir.path()), ["req_1.request"]);
    // Removing through the handle frees room in its running total.
    assert_eq!(handle.remove(&["req_1"]).unwrap(), 1);
    assert_eq!(handle.counters().bytes, 0);
    // A reader neither creates nor scans; it reads what the writer wrote.
    let reader = FileStore::reader(&dir.path().join("nowhere"), None);
    assert_eq!(reader.load("req_1").unwrap(), None);
    assert!(!dir.path().join("nowhere").exists());
}

/// Other processes write and delete in the same folder: the total cap holds for the folder,
/// and room made elsewhere (`capture clear`, `prune`) is used without a restart.
#[test]
fn the_total_cap_counts_what_other_processes_write_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = FileStore::open(dir.path(), None, 10, 40).unwrap();
    let mut session = FileStore::open(dir.path(), None, 10, 40).unwrap();
    assert_eq!(
        session.put("req_a", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        session.put("req_b", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    // The daemon counted an empty folder at open and counts again every RESCAN_EVERY: until
    // then it does not see the session's blobs (the overshoot the cap allows).
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain test thread waits for the clock to move"
    )]
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        daemon.put("req_c", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(daemon.total, 17);
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain test thread waits for the clock to move"
    )]
    std::thread::sleep(RESCAN_EVERY);
    assert_eq!(
        daemon.put("req_d", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::StoreFull,
        "counted again: the folder holds 51 bytes"
    );
    assert_eq!(daemon.total, 51);
    // `capture clear` in another process: the full store takes bodies again at once.
    FileStore::reader(dir.path(), None).clear().unwrap();
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain test thread waits for the clock to move"
    )]
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        daemon.put("req_d", Kind::Request, &[b'x'; 10]).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(daemon.total, 17);
}

/// `when_full: drop_oldest`: a full store deletes the oldest requests' bodies (both of a
/// request at once) to keep the new one, never the new one's own other body.
#[test]
fn a_full_store_can_drop_the_oldest_requests_instead() {
    use crate::config::WhenFull;
    let dir = tempfile::tempdir().unwrap();
    // Blobs of 10 bytes take 17 with the header; room for three.
    let mut store = FileStore::open(dir.path(), None, 10, 51)
        .unwrap()
        .when_full(WhenFull::DropOldest);
    let body = [b'x'; 10];
    assert_eq!(
        store.put("req_a", Kind::Request, &body).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put("req_a", Kind::Response, &body).unwrap(),
        PutOutcome::Stored
    );
    #[allow(
        clippy::disallowed_methods,
        reason = "a plain test thread waits for the clock to move"
    )]
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        store.put("req_b", Kind::Request, &body).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put("req_c", Kind::Request, &body).unwrap(),
        PutOutcome::StoredDroppingOldest(1)
    );
    assert_eq!(
        files(dir.path()),
        ["req_b.request", "req_c.request"],
        "both of req_a went"
    );
    assert_eq!(store.total, 34);
    assert_eq!(
        store.put("req_c", Kind::Response, &body).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put("req_c", Kind::Response, &[b'y'; 10]).unwrap(),
        PutOutcome::Stored,
        "a replacement fits in its own room"
    );
    assert_eq!(
        store.put("req_d", Kind::Request, &body).unwrap(),
        PutOutcome::StoredDroppingOldest(1)
    );
    assert_eq!(
        files(dir.path()),
        ["req_c.request", "req_c.response", "req_d.request"]
    );

    let mut memory = MemoryStore::new(10, 20).when_full(WhenFull::DropOldest);
    assert_eq!(
        memory.put("req_a", Kind::Request, &body).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        memory.put("req_b", Kind::Request, &body).unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        memory.put("req_b", Kind::Response, &body).unwrap(),
        PutOutcome::StoredDroppingOldest(1)
    );
    assert_eq!(memory.load("req_a"), None);
    assert_eq!(
        memory.put("req_c", Kind::Request, &body).unwrap(),
        PutOutcome::StoredDroppingOldest(1)
    );
    assert_eq!(memory.load("req_b"), None, "both of req_b went");
    assert_eq!(memory.stats().bytes, 10);

    // Counted by the handle and shown in /metrics.
    let handle = CaptureHandle::with_store(
        Store::Memory(MemoryStore::new(10, 10).when_full(WhenFull::DropOldest)),
        10,
    )
    .unwrap();
    handle.put("req_1", Kind::Request, Bytes::from_static(b"one"));
    handle.put("req_2", Kind::Request, Bytes::from_static(b"two-two"));
    handle.put("req_3", Kind::Request, Bytes::from_static(b"three"));
    handle.close();
    let counters = handle.counters();
    assert_eq!(
        (counters.stored, counters.evicted, counters.refused),
        (3, 2, 0)
    );
}
