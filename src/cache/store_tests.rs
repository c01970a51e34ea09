//! Tests for `store`: entries in and out, expiry, the size cap, stats and the schema check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const KEY_A: &str = "8f3a1c0e5b7d294688a1f0c3e2d4b6a79c8e1f2a3b4c5d6e7f8091a2b3c4d5e6";
const KEY_B: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
const HOUR: Duration = Duration::from_secs(3600);

fn settings(path: &Path, max_bytes: u64, key: Option<&str>) -> CacheSettings {
    CacheSettings {
        path: path.to_path_buf(),
        ttl: HOUR,
        max_bytes,
        cipher: key.map(|k| CacheCipher::from_env_value(k).unwrap()),
    }
}

fn store(path: &Path, key: Option<&str>) -> CacheStore {
    CacheStore::open(settings(path, 1 << 30, key)).unwrap()
}

fn reply(model: &str, content: &str) -> CachedReply {
    let body = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    CachedReply {
        body: serde_json::to_vec(&body).unwrap(),
        model: model.to_owned(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_usd: Some(0.25),
    }
}

/// Content that gzip cannot shrink much, so entry sizes are predictable.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect()
}

fn counter(store: &CacheStore) -> i64 {
    store
        .conn()
        .query_row("SELECT bytes FROM totals", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn stores_and_returns_replies_with_their_cost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/cache.db");
    for key in [None, Some(KEY_A)] {
        let store = store(&path, key);
        store.clear(None).unwrap();
        assert_eq!(store.get("k1", 1_000).unwrap(), None);
        let stored = reply("gpt-4o-mini", "Hello there");
        store.put("k1", &stored, 1_000).unwrap();
        assert_eq!(store.get("k1", 2_000).unwrap(), Some(stored.clone()));
        assert_eq!(store.get("k1", 3_000).unwrap(), Some(stored.clone()));
        assert_eq!(store.get("k2", 3_000).unwrap(), None);
        let stats = store.stats(3_000).unwrap();
        assert_eq!(stats.entries, 1);
        assert_eq!(stats.hits, 2);
        assert!((stats.saved_usd - 0.5).abs() < 1e-9, "{}", stats.saved_usd);
        assert_eq!(stats.encrypted, key.is_some());
        assert_eq!(stats.encrypted_entries, u64::from(key.is_some()));
        // Storing again replaces the entry and starts its hit count over.
        store
            .put("k1", &reply("gpt-4o-mini", "Bye"), 4_000)
            .unwrap();
        assert_eq!(store.stats(4_000).unwrap().hits, 0);
        assert_eq!(
            store.get("k1", 4_001).unwrap().unwrap().body,
            reply("gpt-4o-mini", "Bye").body
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "cache file is private: {mode:o}");
    }
}

#[test]
fn entries_expire_after_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = CacheStore::open(CacheSettings {
        ttl: Duration::from_millis(1_000),
        ..settings(&dir.path().join("c.db"), 1 << 20, None)
    })
    .unwrap();
    store.put("old", &reply("m", "y"), 5_000).unwrap();
    store.put("k", &reply("m", "x"), 10_000).unwrap();
    assert_eq!(
        store.stats(10_000).unwrap().entries,
        1,
        "put purged expired"
    );
    assert!(store.get("k", 10_999).unwrap().is_some());
    let stats = store.stats(11_000).unwrap();
    assert_eq!((stats.entries, stats.expired_entries), (1, 1));
    assert_eq!(store.get("k", 11_000).unwrap(), None);
    assert_eq!(store.stats(11_000).unwrap().entries, 0, "deleted on lookup");
    assert_eq!(counter(&store), 0);
}

#[test]
fn evicts_least_recently_used_entries_to_fit_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let probe = store(&dir.path().join("probe.db"), None);
    probe.put("p", &reply("m", &noise(99, 3000)), 0).unwrap();
    let one = probe.stats(0).unwrap().bytes;
    assert!(one > 2000, "noise should not compress much: {one}");

    let max = one * 3 + one / 2;
    let store = CacheStore::open(settings(&dir.path().join("c.db"), max, None)).unwrap();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        store
            .put(key, &reply("m", &noise(i as u64, 3000)), i as i64 * 10)
            .unwrap();
    }
    // Touch `a`: `b` is now the least recently used.
    assert!(store.get("a", 100).unwrap().is_some());
    store.put("d", &reply("m", &noise(7, 3000)), 200).unwrap();
    assert!(store.get("b", 300).unwrap().is_none(), "b evicted");
    for key in ["a", "c", "d"] {
        assert!(store.get(key, 300).unwrap().is_some(), "{key} kept");
    }
    let stats = store.stats(300).unwrap();
    assert!(stats.bytes <= max, "{} > {max}", stats.bytes);
    assert_eq!(stats.entries, 3);
    assert_eq!(i64::try_from(stats.bytes).unwrap(), counter(&store));

    // A reply larger than the whole cap is not stored and evicts nothing.
    store
        .put("huge", &reply("m", &noise(8, 20_000)), 400)
        .unwrap();
    assert!(store.get("huge", 400).unwrap().is_none());
    assert_eq!(store.stats(400).unwrap().entries, 3);
}

#[test]
fn clears_everything_or_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir.path().join("c.db"), None);
    store.put("1", &reply("gpt-4o", "a"), 0).unwrap();
    store.put("2", &reply("gpt-4o", "b"), 0).unwrap();
    store.put("3", &reply("claude", "c"), 0).unwrap();
    store.get("3", 1).unwrap();
    let stats = store.stats(1).unwrap();
    let models: Vec<(&str, u64, u64)> = stats
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.entries, m.hits))
        .collect();
    assert_eq!(models, vec![("claude", 1, 1), ("gpt-4o", 2, 0)]);
    assert_eq!((stats.oldest_ms, stats.newest_ms), (Some(0), Some(0)));
    assert!(stats.file_bytes > 0);
    assert_eq!(store.clear(Some("nope")).unwrap(), 0);
    assert_eq!(store.clear(Some("gpt-4o")).unwrap(), 2);
    assert!(store.get("3", 2).unwrap().is_some());
    assert_eq!(store.clear(None).unwrap(), 1);
    let stats = store.stats(2).unwrap();
    assert_eq!((stats.entries, stats.bytes), (0, 0));
    assert_eq!((stats.oldest_ms, stats.newest_ms), (None, None));
    assert!(stats.models.is_empty());
    assert_eq!(counter(&store), 0);
}

#[test]
fn entries_sealed_differently_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    store(&path, Some(KEY_A))
        .put("sealed", &reply("m", "s"), 0)
        .unwrap();
    store(&path, None)
        .put("plain", &reply("m", "p"), 0)
        .unwrap();
    for (key, readable) in [
        (None, "plain"),
        (Some(KEY_A), "sealed"),
        (Some(KEY_B), "none"),
    ] {
        let store = store(&path, key);
        for entry in ["sealed", "plain"] {
            assert_eq!(
                store.get(entry, 1).unwrap().is_some(),
                entry == readable,
                "{entry} with {key:?}"
            );
        }
    }
    // Misses did not delete anything: the right key still reads its entry.
    assert!(
        store(&path, Some(KEY_A))
            .get("sealed", 2)
            .unwrap()
            .is_some()
    );
}

#[test]
fn encrypted_entries_never_reach_the_disk_in_clear() {
    const CANARY: &str = "CANARY-prompt-9f2c41d7-answer";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let cache = store(&path, Some(KEY_A));
    for i in 0..20 {
        cache
            .put(&format!("k{i}"), &reply("m", &format!("{CANARY} {i}")), i)
            .unwrap();
    }
    let back = cache.get("k3", 30).unwrap().unwrap();
    assert!(String::from_utf8(back.body).unwrap().contains(CANARY));
    let scan = |expect_wal: bool| {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            names.push(entry.file_name().to_string_lossy().into_owned());
            assert!(memchr::memmem::find(&bytes, CANARY.as_bytes()).is_none());
            assert!(memchr::memmem::find(&bytes, b"chat.completion").is_none());
        }
        assert_eq!(
            names.iter().any(|n| n.ends_with("-wal")),
            expect_wal,
            "{names:?}"
        );
    };
    // While open the entries sit in the WAL; after the last close, in the main file.
    scan(true);
    drop(cache);
    scan(false);

    // The same check finds the canary in the clear when it is there: the test can fail.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain_path = plain_dir.path().join("p.db");
    let plain = store(&plain_path, None);
    let mut body = reply("m", "x");
    body.model = CANARY.to_owned();
    plain.put("k", &body, 0).unwrap();
    let wal = std::fs::read(wal_path(&plain_path)).unwrap();
    assert!(memchr::memmem::find(&wal, CANARY.as_bytes()).is_some());
}

#[test]
fn two_handles_write_the_same_file_from_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = CacheStore::open(settings(&path, 200_000, None)).unwrap();
                for i in 0..150_i64 {
                    let key = format!("t{t}-{i}");
                    store
                        .put(&key, &reply("m", &noise(i as u64, 500)), i)
                        .unwrap();
                    assert!(store.get(&key, i).unwrap().is_some());
                    store.get(&format!("t{}-{i}", 1 - t), i).unwrap();
                    if i % 50 == 0 {
                        store.stats(i).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let store = store(&path, None);
    let stats = store.stats(1_000).unwrap();
    assert!(stats.entries > 0 && stats.bytes <= 200_000);
    assert_eq!(i64::try_from(stats.bytes).unwrap(), counter(&store));
}

#[test]
fn refuses_a_newer_schema_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    drop(store(&path, None));
    drop(store(&path, None)); // reopening an up-to-date file is fine
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = CacheStore::open(settings(&path, 1, None)).unwrap_err();
    assert!(matches!(err, CacheError::TooNew { found: 99, .. }));
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");

    let err = CacheStore::open(settings(dir.path(), 1, None)).unwrap_err();
    assert!(
        err.to_string().contains(&*dir.path().to_string_lossy()),
        "{err}"
    );
}
