use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put(st: &mut KvState, k: &str, v: &str) -> TxnResult {
    match st.apply(&Command::Txn(Txn::put(b(k), b(v)))) {
        CommandResult::Txn(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn del(st: &mut KvState, k: &str) -> TxnResult {
    let txn = Txn {
        success: vec![Op::Delete {
            range: KeyRange::single(b(k)),
            prev_kv: true,
        }],
        ..Default::default()
    };
    match st.apply(&Command::Txn(txn)) {
        CommandResult::Txn(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

fn get(st: &KvState, k: &str, rev: i64) -> Result<Option<KeyValue>> {
    let mut op = RangeOp::get(b(k));
    op.revision = rev;
    Ok(st.range(&op)?.kvs.into_iter().next())
}

#[test]
fn every_write_gets_the_next_revision_and_keeps_create_revision() {
    let mut st = KvState::new(100);
    assert_eq!(put(&mut st, "a", "1").revision, 2);
    assert_eq!(put(&mut st, "b", "1").revision, 3);
    assert_eq!(put(&mut st, "a", "2").revision, 4);
    let a = get(&st, "a", 0).unwrap().unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 4, 2));
}

#[test]
fn a_transaction_whose_compare_fails_runs_failure_ops_without_a_new_revision() {
    let mut st = KvState::new(100);
    put(&mut st, "k", "v1");
    let txn = Txn {
        compare: vec![Compare {
            key: b("k"),
            result: CompareResult::Equal,
            target: CompareTarget::Mod(99),
        }],
        success: vec![Op::Put {
            key: b("k"),
            value: b("v2"),
            prev_kv: false,
        }],
        failure: vec![Op::Range(RangeOp::get(b("k")))],
    };
    let CommandResult::Txn(r) = st.apply(&Command::Txn(txn)) else {
        panic!()
    };
    assert!(!r.succeeded);
    assert_eq!(r.revision, 2);
    let OpResult::Range(rr) = &r.responses[0] else {
        panic!()
    };
    assert_eq!(&rr.kvs[0].value[..], b"v1");
}

#[test]
fn compare_on_mod_revision_zero_means_the_key_is_absent() {
    let mut st = KvState::new(100);
    let create = |st: &mut KvState| {
        let txn = Txn {
            compare: vec![Compare {
                key: b("k"),
                result: CompareResult::Equal,
                target: CompareTarget::Mod(0),
            }],
            success: vec![Op::Put {
                key: b("k"),
                value: b("x"),
                prev_kv: false,
            }],
            failure: vec![],
        };
        match st.apply(&Command::Txn(txn)) {
            CommandResult::Txn(r) => r.succeeded,
            _ => panic!(),
        }
    };
    assert!(create(&mut st));
    assert!(!create(&mut st));
}

#[test]
fn all_puts_of_one_transaction_share_one_revision() {
    let mut st = KvState::new(100);
    let txn = Txn {
        success: vec![
            Op::Put {
                key: b("x"),
                value: b("1"),
                prev_kv: false,
            },
            Op::Put {
                key: b("y"),
                value: b("1"),
                prev_kv: false,
            },
        ],
        ..Default::default()
    };
    st.apply(&Command::Txn(txn));
    // An empty prefix is an invalid key elsewhere, but history filtering accepts it.
    let (evs, _) = st
        .events_since(2, &KeyRange::prefix(b("")), false, ScanLimits::default())
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].revision, 2);
    assert_eq!(evs[0].events.len(), 2);
}

#[test]
fn reading_at_an_old_revision_undoes_later_writes_and_deletes() {
    let mut st = KvState::new(100);
    put(&mut st, "/p/a", "1"); // 2
    put(&mut st, "/p/b", "1"); // 3
    put(&mut st, "/p/a", "2"); // 4
    del(&mut st, "/p/b"); // 5
    put(&mut st, "/p/c", "1"); // 6
    let at = |rev| {
        let op = RangeOp {
            range: KeyRange::prefix(b("/p/")),
            limit: 0,
            revision: rev,
            keys_only: false,
            count_only: false,
        };
        st.range(&op)
            .unwrap()
            .kvs
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&kv.key),
                    String::from_utf8_lossy(&kv.value)
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(at(3), vec!["/p/a=1", "/p/b=1"]);
    assert_eq!(at(4), vec!["/p/a=2", "/p/b=1"]);
    assert_eq!(at(5), vec!["/p/a=2"]);
    assert_eq!(at(0), vec!["/p/a=2", "/p/c=1"]);
}

#[test]
fn paginated_reads_at_one_revision_see_a_consistent_snapshot() {
    let mut st = KvState::new(1000);
    for i in 0..10 {
        put(&mut st, &format!("/k/{i:02}"), "v");
    }
    let rev = st.revision();
    let mut seen = Vec::new();
    let mut start = b("/k/");
    loop {
        let op = RangeOp {
            range: KeyRange {
                key: start.clone(),
                end: prefix_end(b"/k/"),
            },
            limit: 3,
            revision: rev,
            keys_only: true,
            count_only: false,
        };
        let page = st.range(&op).unwrap();
        // Concurrent writes between pages must not show up.
        put(&mut st, "/k/05", "changed");
        put(&mut st, "/k/99", "new");
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        let mut next = page.kvs.last().unwrap().key.to_vec();
        next.push(0);
        start = next.into();
    }
    assert_eq!(seen.len(), 10);
}

#[test]
fn limit_reports_more_and_the_full_count() {
    let mut st = KvState::new(100);
    for k in ["/a", "/b", "/c"] {
        put(&mut st, k, "v");
    }
    let op = RangeOp {
        range: KeyRange::prefix(b("/")),
        limit: 2,
        revision: 0,
        keys_only: false,
        count_only: false,
    };
    let r = st.range(&op).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (2, true, 3));
}

#[test]
fn history_beyond_the_limit_is_compacted_and_old_reads_fail_clearly() {
    let mut st = KvState::new(3);
    for i in 0..6 {
        put(&mut st, "k", &i.to_string()); // revisions 2..=7
    }
    assert_eq!(st.compact_revision(), 4);
    assert!(matches!(
        get(&st, "k", 3),
        Err(Error::Compacted {
            requested: 3,
            compacted: 4
        })
    ));
    assert_eq!(&get(&st, "k", 4).unwrap().unwrap().value[..], b"2");
    assert!(matches!(
        get(&st, "k", 8),
        Err(Error::FutureRevision { .. })
    ));
    assert!(matches!(
        st.events_since(4, &KeyRange::single(b("k")), false, ScanLimits::default()),
        Err(Error::Compacted { .. })
    ));
    assert_eq!(
        st.events_since(5, &KeyRange::single(b("k")), false, ScanLimits::default())
            .unwrap()
            .0
            .len(),
        3
    );
}

#[test]
fn explicit_compaction_refuses_future_and_already_compacted_revisions() {
    let mut st = KvState::new(100);
    for i in 0..4 {
        put(&mut st, "k", &i.to_string());
    }
    assert!(matches!(st.compact(99), Err(Error::FutureRevision { .. })));
    st.compact(3).unwrap();
    assert!(matches!(st.compact(3), Err(Error::Compacted { .. })));
    assert_eq!(st.compact_revision(), 3);
}

#[test]
fn deleting_a_missing_key_changes_nothing() {
    let mut st = KvState::new(100);
    put(&mut st, "a", "1");
    let r = del(&mut st, "zzz");
    assert_eq!(r.revision, 2);
    let OpResult::Delete { deleted, .. } = r.responses[0] else {
        panic!()
    };
    assert_eq!(deleted, 0);
}

#[test]
fn delete_returns_the_old_value() {
    let mut st = KvState::new(100);
    put(&mut st, "a", "old");
    let r = del(&mut st, "a");
    let OpResult::Delete { deleted, prev_kvs } = &r.responses[0] else {
        panic!()
    };
    assert_eq!(*deleted, 1);
    assert_eq!(&prev_kvs[0].value[..], b"old");
}

#[test]
fn bad_input_is_rejected_and_nothing_is_applied() {
    let mut st = KvState::new(100);
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let cases = vec![
        Txn::put(Bytes::new(), b("v")),
        Txn::put(b("k"), big),
        Txn {
            success: vec![
                Op::Put {
                    key: b("k"),
                    value: b("1"),
                    prev_kv: false,
                },
                Op::Put {
                    key: b("ok"),
                    value: b("1"),
                    prev_kv: false,
                },
                Op::Put {
                    key: b("k"),
                    value: b("2"),
                    prev_kv: false,
                },
            ],
            ..Default::default()
        },
    ];
    for txn in cases {
        assert!(matches!(
            st.apply(&Command::Txn(txn)),
            CommandResult::Rejected(_)
        ));
    }
    assert_eq!(st.revision(), INITIAL_REVISION);
    assert!(st.is_empty());
}

#[test]
fn equal_histories_hash_equal_and_different_ones_do_not() {
    let mut a = KvState::new(100);
    let mut b2 = KvState::new(100);
    for st in [&mut a, &mut b2] {
        put(st, "x", "1");
        put(st, "y", "2");
    }
    assert_eq!(a.hash(0).unwrap(), b2.hash(0).unwrap());
    put(&mut b2, "y", "3");
    assert_ne!(a.hash(0).unwrap().0, b2.hash(0).unwrap().0);
    assert_eq!(a.hash(0).unwrap().0, b2.hash(3).unwrap().0);
}

#[test]
fn a_scan_stops_at_its_limits_and_says_where_to_continue() {
    let mut st = KvState::new(100);
    for i in 0..5 {
        put(&mut st, "k", &i.to_string()); // 2..=6
    }
    let all = KeyRange::single(b("k"));
    let lim = |revisions, bytes| ScanLimits { revisions, bytes };
    let (evs, end) = st.events_since(2, &all, false, lim(2, usize::MAX)).unwrap();
    assert_eq!((evs.len(), end), (2, 3));
    let (evs, end) = st
        .events_since(2, &all, false, lim(100, usize::MAX))
        .unwrap();
    assert_eq!((evs.len(), end), (5, 6));
    // Past the byte budget after the first revision: one whole revision goes out.
    let (evs, end) = st.events_since(2, &all, false, lim(100, 1)).unwrap();
    assert_eq!((evs.len(), end), (1, 2));
    let (evs, end) = st
        .events_since(7, &all, false, lim(100, usize::MAX))
        .unwrap();
    assert_eq!((evs.len(), end), (0, 6));
}

#[test]
fn a_put_and_a_delete_of_the_same_key_in_one_txn_are_refused() {
    let mut st = KvState::new(100);
    let txn = Txn {
        success: vec![
            Op::Put {
                key: b("/a/k"),
                value: b("1"),
                prev_kv: false,
            },
            Op::Delete {
                range: KeyRange::prefix(b("/a/")),
                prev_kv: false,
            },
        ],
        ..Default::default()
    };
    assert!(
        matches!(st.apply(&Command::Txn(txn)), CommandResult::Rejected(m) if m.contains("duplicate key"))
    );
    assert_eq!(st.revision(), INITIAL_REVISION);
}

#[test]
fn negative_revisions_are_invalid_arguments() {
    let st = KvState::new(100);
    assert!(matches!(get(&st, "k", -3), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_batch_applies_each_command_at_its_own_revision_in_order() {
    let mut st = KvState::new(100);
    put(&mut st, "a", "0");
    // a CAS that fails, a put, a too-large put (rejected), and a nested batch.
    let cas = Txn {
        compare: vec![Compare {
            key: b("a"),
            result: CompareResult::Equal,
            target: CompareTarget::Mod(99),
        }],
        success: vec![Op::Put {
            key: b("a"),
            value: b("cas"),
            prev_kv: false,
        }],
        failure: vec![],
    };
    let huge = Txn::put(b("h"), vec![0u8; MAX_VALUE_BYTES + 1]);
    let batch = Command::Batch(vec![
        Command::Txn(cas),
        Command::Txn(Txn::put(b("a"), b("1"))),
        Command::Txn(huge),
        Command::Batch(vec![Command::Txn(Txn::put(b("x"), b("1")))]),
        Command::Txn(Txn::put(b("b"), b("1"))),
    ]);
    let CommandResult::Batch(results) = st.apply(&batch) else {
        panic!("a batch yields a batch of results")
    };
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], CommandResult::Txn(r) if !r.succeeded && r.revision == 2));
    assert!(matches!(&results[1], CommandResult::Txn(r) if r.succeeded && r.revision == 3));
    assert!(matches!(&results[2], CommandResult::Rejected(_)));
    assert!(matches!(&results[3], CommandResult::Rejected(m) if m.contains("batch")));
    assert!(matches!(&results[4], CommandResult::Txn(r) if r.succeeded && r.revision == 4));
    assert_eq!(get(&st, "a", 0).unwrap().unwrap().value, b("1"));
    assert!(get(&st, "x", 0).unwrap().is_none());
    assert!(get(&st, "h", 0).unwrap().is_none());
    // The history holds one revision per applied write.
    assert_eq!(get(&st, "a", 2).unwrap().unwrap().value, b("0"));
}
