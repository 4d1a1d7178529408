use super::*;

fn stored(id: &str, body: &[u8], at: i64) -> Stored {
    Stored {
        request_id: id.into(),
        route: "status".into(),
        method: "POST".into(),
        target: "/base/hooks/x?y=1".into(),
        headers: vec![
            ("x-request-id".into(), Bytes::from(id.to_owned())),
            (
                "content-type".into(),
                Bytes::from_static(b"application/json"),
            ),
            ("x-binary".into(), Bytes::from_static(b"\x00\xff")),
        ],
        body: Bytes::copy_from_slice(body),
        received_at: at,
        dedup: None,
    }
}

#[test]
fn headers_round_trip_and_a_torn_tail_is_dropped() {
    let s = stored("a", b"", 0);
    let raw = db::encode_for_test(&s.headers);
    assert_eq!(db::decode_headers(&raw), s.headers);
    assert_eq!(
        db::decode_headers(&raw[..raw.len() - 1]),
        s.headers[..2].to_vec()
    );
    assert!(db::decode_headers(&[]).is_empty());
}

#[tokio::test]
async fn a_stored_request_is_leased_delivered_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store");
    let store = Store::open(&path, 1 << 20).expect("open");
    store
        .put(stored("one", b"{\"a\":1}", 1_000))
        .await
        .expect("put");
    store.put(stored("two", b"{}", 2_000)).await.expect("put");
    // A second process cannot take the store.
    assert!(matches!(
        Store::open(&path, 1 << 20),
        Err(StoreError::Open { .. })
    ));
    let due = store
        .lease(5_000, Duration::from_secs(60), 10)
        .await
        .expect("lease");
    let ids: Vec<_> = due.iter().map(|d| d.stored.request_id.as_str()).collect();
    assert_eq!(ids, ["one", "two"], "oldest first");
    assert_eq!(due[0].stored.body, Bytes::from_static(b"{\"a\":1}"));
    assert_eq!(due[0].stored.headers, stored("one", b"", 0).headers);
    assert_eq!(due[0].attempts, 0);
    // Leased: not handed out twice.
    assert!(store
        .lease(5_001, Duration::from_secs(60), 10)
        .await
        .expect("lease")
        .is_empty());
    store
        .finish(Finish::Retry {
            id: "one".into(),
            next_at: 9_000,
            error: "502".into(),
        })
        .await
        .expect("finish");
    store
        .finish(Finish::Delivered {
            id: "two".into(),
            at: 6_000,
        })
        .await
        .expect("finish");
    assert!(store
        .lease(8_999, Duration::from_secs(60), 10)
        .await
        .expect("lease")
        .is_empty());
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.delivered, counts.dead), (1, 1, 0));
    assert_eq!(counts.oldest_pending, Some(1_000));
    drop(store);
    // Reopened (the thread ends with the last handle): everything is still there.
    let store = loop {
        match Store::open(&path, 1 << 20) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let due = store
        .lease(9_000, Duration::from_secs(60), 10)
        .await
        .expect("lease");
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].stored.request_id.as_str(), due[0].attempts),
        ("one", 1)
    );
    store
        .finish(Finish::Dead {
            id: "one".into(),
            at: 9_500,
            error: "410".into(),
        })
        .await
        .expect("finish");
    store.expire(7_000);
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 0, 1));
    assert_eq!(counts.oldest_pending, None);
}

#[tokio::test]
async fn a_full_store_refuses_without_writing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(&dir.path().join("s"), 2_000).expect("open");
    store
        .put(stored("a", &[b'x'; 1_000], 1))
        .await
        .expect("fits");
    let err = store
        .put(stored("b", &[b'x'; 1_000], 2))
        .await
        .expect_err("full");
    assert!(matches!(err, StoreError::Full { max: 2_000 }), "{err}");
    store.set_max_bytes(10_000);
    store
        .put(stored("b", &[b'x'; 1_000], 2))
        .await
        .expect("room after a reload");
    assert_eq!(store.counts().await.expect("counts").pending, 2);
}

#[tokio::test]
async fn concurrent_puts_share_commits_and_all_land() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(&dir.path().join("s"), 1 << 30).expect("open"));
    let puts: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put(stored(&format!("r{i}"), b"{}", i)).await })
        })
        .collect();
    for p in puts {
        p.await.expect("task").expect("put");
    }
    assert_eq!(store.counts().await.expect("counts").pending, 200);
}

#[test]
fn probe_refuses_a_directory_it_cannot_write() {
    let dir = tempfile::tempdir().expect("dir");
    assert!(Store::probe(&dir.path().join("new")).is_ok());
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    assert!(Store::probe(&file.join("under")).is_err());
}

#[tokio::test]
async fn a_dedup_key_stored_within_its_window_makes_a_duplicate() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(&dir.path().join("s"), 1 << 20).expect("open"));
    let keyed = |id: &str, at: i64, key: &str| Stored {
        dedup: Some((key.to_owned(), at + 1_000)),
        ..stored(id, b"{}", at)
    };
    assert_eq!(
        store.put(keyed("a", 100, "k")).await.expect("put"),
        Put::Stored
    );
    assert_eq!(
        store.put(keyed("b", 500, "k")).await.expect("put"),
        Put::Duplicate { of: "a".into() }
    );
    assert_eq!(
        store.put(keyed("c", 500, "other")).await.expect("put"),
        Put::Stored
    );
    // After the window the key is free again.
    assert_eq!(
        store.put(keyed("d", 1_200, "k")).await.expect("put"),
        Put::Stored
    );
    // Two with one key in one batch (one commit): the second is the duplicate.
    let (x, y) = tokio::join!(
        store.put(keyed("x", 5_000, "z")),
        store.put(keyed("y", 5_000, "z"))
    );
    let mut outcomes = [x.expect("x"), y.expect("y")];
    outcomes.sort_by_key(|p| matches!(p, Put::Duplicate { .. }));
    assert_eq!(outcomes[0], Put::Stored);
    assert!(matches!(&outcomes[1], Put::Duplicate { .. }));
    assert_eq!(store.counts().await.expect("counts").pending, 4);
}

/// The counts the store thread keeps with each commit agree with a count of the rows (made
/// when the store is opened) after every kind of change.
#[tokio::test]
async fn kept_counts_match_the_rows() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store");
    let store = Store::open(&path, 1 << 20).expect("open");
    for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        let body = vec![b'x'; 100 * (i + 1)];
        store
            .put(stored(id, &body, 1_000 + i as i64))
            .await
            .expect("put");
    }
    let due = store
        .lease(5_000, Duration::from_secs(60), 10)
        .await
        .expect("lease");
    assert_eq!(due.len(), 5);
    for f in [
        Finish::Delivered {
            id: "a".into(),
            at: 6_000,
        },
        Finish::Delivered {
            id: "b".into(),
            at: 9_000,
        },
        Finish::Dead {
            id: "c".into(),
            at: 6_000,
            error: "410".into(),
        },
        Finish::Retry {
            id: "d".into(),
            next_at: 7_000,
            error: "503".into(),
        },
        // Removed meanwhile: its result changes nothing.
        Finish::Delivered {
            id: "gone".into(),
            at: 6_000,
        },
    ] {
        store.finish(f).await.expect("finish");
    }
    assert_eq!(store.retry("c").await.expect("retry"), Changed::Done);
    assert_eq!(store.retry("d").await.expect("retry"), Changed::Pending);
    assert_eq!(store.delete("e").await.expect("delete"), Changed::Done);
    assert_eq!(store.delete("e").await.expect("delete"), Changed::NotFound);
    store.expire(7_000); // removes "a" only
    let kept = store.counts().await.expect("counts");
    assert_eq!((kept.pending, kept.delivered, kept.dead), (2, 1, 0));
    assert_eq!(kept.oldest_pending, Some(1_002), "c was stored before d");
    drop(store);
    let store = loop {
        match Store::open(&path, 1 << 20) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    assert_eq!(store.counts().await.expect("counts"), kept);
}
