//! Bad input to the store's client API is refused with a clear error (the
//! right gRPC code, a message that names the problem) and nothing of it is
//! applied: after every refusal the store's revision and content hash are
//! what they were before, on every replica. Requests go to a follower (which
//! validates before forwarding to the leader) and to the leader.

use std::time::Duration;

use bytes::Bytes;
use rkube_e2e::cluster::Cluster;
use rkube_proto::store::kv_client::KvClient;
use rkube_proto::store::watch_client::WatchClient;
use rkube_proto::store::{
    compare, request_op, CompactRequest, Compare, DeleteRangeRequest, HashRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest, WatchRequest,
};
use tonic::transport::Channel;
use tonic::Code;

const T: Duration = Duration::from_secs(30);
/// The largest value (and the largest total of keys and values in one
/// transaction branch) the store accepts.
const LIMIT: usize = 1536 * 1024;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put_op(key: &str, value: impl Into<Bytes>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: b(key),
            value: value.into(),
            prev_kv: false,
        })),
    }
}

fn range_op(key: &str, range_end: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: b(key),
            range_end: b(range_end),
            ..Default::default()
        })),
    }
}

fn delete_op(key: &str, range_end: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: b(key),
                range_end: b(range_end),
                prev_kv: false,
            },
        )),
    }
}

/// Asserts `res` is an error with `code` whose message contains every one of `words`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    what: &str,
    res: Result<T, tonic::Status>,
    code: Code,
    words: &[&str],
) {
    match res {
        Ok(v) => panic!("{what}: expected {code:?}, the request succeeded: {v:?}"),
        Err(s) => {
            assert_eq!(
                s.code(),
                code,
                "{what}: wrong code; message {:?}",
                s.message()
            );
            let m = s.message().to_ascii_lowercase();
            for w in words {
                assert!(
                    m.contains(&w.to_ascii_lowercase()),
                    "{what}: the message {:?} does not mention {w:?}",
                    s.message()
                );
            }
        }
    }
}

/// A 3-replica cluster with a leader and a follower to talk to, and some data.
struct Fixture {
    cluster: Cluster,
    leader: usize,
    follower: usize,
}

impl Fixture {
    async fn start() -> Fixture {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let f = Fixture {
            cluster,
            leader,
            follower,
        };
        let mut kv = f.kv(f.leader).await;
        for i in 0..5 {
            kv.put(PutRequest {
                key: b(&format!("/base/{i}")),
                value: b(&format!("v{i}")),
                prev_kv: false,
            })
            .await
            .expect("seed write");
        }
        f
    }

    async fn kv(&self, i: usize) -> KvClient<Channel> {
        self.cluster
            .kv(i)
            .await
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }

    /// Both replicas the tests talk to: the follower first.
    fn targets(&self) -> [(usize, &'static str); 2] {
        [(self.follower, "follower"), (self.leader, "leader")]
    }

    /// (revision, content hash) once every replica agrees on them.
    async fn state(&mut self) -> (i64, String) {
        self.cluster.wait_converged(T).await
    }

    /// Asserts that no replica moved from `before` (and that they all agree).
    async fn assert_unchanged(&mut self, before: &(i64, String), after_what: &str) {
        // A refused write that reached the log would be applied on the
        // leader first; a linearizable read on a follower sees it as well.
        let mut kv = self.kv(self.follower).await;
        let r = kv
            .range(RangeRequest {
                key: b("/"),
                range_end: Bytes::from_static(&[0]),
                count_only: true,
                ..Default::default()
            })
            .await
            .expect("linearizable range")
            .into_inner();
        assert_eq!(
            r.header.unwrap().revision,
            before.0,
            "the revision moved after {after_what}"
        );
        let now = self.state().await;
        assert_eq!(&now, before, "the store changed after {after_what}");
        for i in 0..3 {
            let mut m = self.cluster.maintenance(i).await;
            let h = m
                .hash(HashRequest { revision: 0 })
                .await
                .expect("hash")
                .into_inner();
            assert_eq!(
                (h.header.unwrap().revision, h.hash),
                before.clone(),
                "replica {i} changed after {after_what}"
            );
        }
    }

    /// A linearizable read on replica `i`. A read that timed out waiting for the replica
    /// to catch up (a busy machine, megabytes of log to apply) is asked again: reads are
    /// safe to repeat, and the answer still has to be the right one.
    async fn get(&self, i: usize, key: &str) -> Option<Bytes> {
        let mut kv = self.kv(i).await;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match kv
                .range(RangeRequest {
                    key: b(key),
                    ..Default::default()
                })
                .await
            {
                Ok(r) => return r.into_inner().kvs.into_iter().next().map(|kv| kv.value),
                Err(e) if e.code() == tonic::Code::DeadlineExceeded && attempts < 4 => continue,
                Err(e) => panic!("get: {e:?}"),
            }
        }
    }
}

async fn with_timeout(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_over_one_and_a_half_mebibytes_is_refused_naming_its_size() {
    with_timeout(async {
        let mut f = Fixture::start().await;
        let before = f.state().await;
        let too_big = Bytes::from(vec![b'x'; LIMIT + 1]);
        for (i, who) in f.targets() {
            let mut kv = f.kv(i).await;
            let res = kv
                .put(PutRequest {
                    key: b("/big/one"),
                    value: too_big.clone(),
                    prev_kv: false,
                })
                .await;
            assert_refused(
                &format!("a put of {} bytes on the {who}", LIMIT + 1),
                res,
                Code::InvalidArgument,
                &[&(LIMIT + 1).to_string(), &LIMIT.to_string()],
            );
            f.assert_unchanged(&before, &format!("an oversized put on the {who}"))
                .await;

            // The same value inside a transaction, next to a small put.
            let res = kv
                .txn(TxnRequest {
                    success: vec![
                        put_op("/big/small", b("s")),
                        put_op("/big/one", too_big.clone()),
                    ],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &format!("a txn with an oversized put on the {who}"),
                res,
                Code::InvalidArgument,
                &[&(LIMIT + 1).to_string()],
            );
            // Two values under the limit whose total is over it.
            let half = Bytes::from(vec![b'y'; LIMIT / 2 + 1]);
            let res = kv
                .txn(TxnRequest {
                    success: vec![
                        put_op("/big/h1", half.clone()),
                        put_op("/big/h2", half.clone()),
                    ],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &format!("a txn whose puts total more than the limit on the {who}"),
                res,
                Code::InvalidArgument,
                &["too large"],
            );
            f.assert_unchanged(&before, &format!("oversized txns on the {who}"))
                .await;
            for k in ["/big/one", "/big/small", "/big/h1", "/big/h2"] {
                assert_eq!(f.get(i, k).await, None, "{k} was written");
            }
        }

        // A large value well under the limit is stored and read back whole.
        let mebibyte = Bytes::from(vec![b'z'; 1024 * 1024]);
        let mut kv = f.kv(f.follower).await;
        let r = kv
            .put(PutRequest {
                key: b("/big/ok"),
                value: mebibyte.clone(),
                prev_kv: false,
            })
            .await
            .expect("a 1 MiB value is accepted")
            .into_inner();
        assert_eq!(r.header.unwrap().revision, before.0 + 1);
        for i in 0..3 {
            assert_eq!(f.get(i, "/big/ok").await.as_ref(), Some(&mebibyte));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_keys_and_backwards_ranges_are_invalid_arguments() {
    with_timeout(async {
        let mut f = Fixture::start().await;
        let before = f.state().await;
        for (i, who) in f.targets() {
            let mut kv = f.kv(i).await;
            let ctx = |what: &str| format!("{what} on the {who}");

            let res = kv
                .put(PutRequest {
                    key: Bytes::new(),
                    value: b("v"),
                    prev_kv: false,
                })
                .await;
            assert_refused(
                &ctx("a put with an empty key"),
                res,
                Code::InvalidArgument,
                &["key", "empty"],
            );
            let res = kv
                .range(RangeRequest {
                    key: Bytes::new(),
                    ..Default::default()
                })
                .await;
            assert_refused(
                &ctx("a range with an empty key"),
                res,
                Code::InvalidArgument,
                &["key", "empty"],
            );
            let res = kv
                .delete_range(DeleteRangeRequest {
                    key: Bytes::new(),
                    ..Default::default()
                })
                .await;
            assert_refused(
                &ctx("a delete with an empty key"),
                res,
                Code::InvalidArgument,
                &["key", "empty"],
            );
            let res = kv
                .txn(TxnRequest {
                    success: vec![put_op("/e/fine", b("v")), put_op("", b("v"))],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &ctx("a txn putting an empty key"),
                res,
                Code::InvalidArgument,
                &["key", "empty"],
            );
            let res = kv
                .txn(TxnRequest {
                    compare: vec![Compare {
                        key: Bytes::new(),
                        ..Default::default()
                    }],
                    success: vec![put_op("/e/fine", b("v"))],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &ctx("a compare on an empty key"),
                res,
                Code::InvalidArgument,
                &["key", "empty"],
            );
            let res = kv
                .put(PutRequest {
                    key: Bytes::from(vec![b'k'; 4097]),
                    value: b("v"),
                    prev_kv: false,
                })
                .await;
            assert_refused(
                &ctx("a put with a 4097-byte key"),
                res,
                Code::InvalidArgument,
                &["4097"],
            );

            // range_end at or below the key.
            for (key, end) in [("/b", "/a"), ("/b", "/b")] {
                let res = kv
                    .range(RangeRequest {
                        key: b(key),
                        range_end: b(end),
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a range [{key}, {end})")),
                    res,
                    Code::InvalidArgument,
                    &["range end"],
                );
                let res = kv
                    .range(RangeRequest {
                        key: b(key),
                        range_end: b(end),
                        serializable: true,
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a serializable range [{key}, {end})")),
                    res,
                    Code::InvalidArgument,
                    &["range end"],
                );
                let res = kv
                    .delete_range(DeleteRangeRequest {
                        key: b(key),
                        range_end: b(end),
                        prev_kv: false,
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a delete [{key}, {end})")),
                    res,
                    Code::InvalidArgument,
                    &["range end"],
                );
                let res = kv
                    .txn(TxnRequest {
                        success: vec![put_op("/e/fine", b("v")), delete_op(key, end)],
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a txn deleting [{key}, {end})")),
                    res,
                    Code::InvalidArgument,
                    &["range end"],
                );
                let res = kv
                    .txn(TxnRequest {
                        success: vec![range_op(key, end)],
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a read-only txn ranging [{key}, {end})")),
                    res,
                    Code::InvalidArgument,
                    &["range end"],
                );
                let mut w = WatchClient::new(f.cluster.channel(i).await);
                let res = w
                    .watch(WatchRequest {
                        key: b(key),
                        range_end: b(end),
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!("a watch on [{key}, {end})")),
                    res.map(|_| ()),
                    Code::InvalidArgument,
                    &["range end"],
                );
            }
            f.assert_unchanged(&before, &ctx("empty keys and backwards ranges"))
                .await;
            assert_eq!(
                f.get(i, "/e/fine").await,
                None,
                "a refused txn wrote /e/fine"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_txn_that_puts_one_key_twice_is_refused_and_applies_nothing() {
    with_timeout(async {
        let mut f = Fixture::start().await;
        let before = f.state().await;
        for (i, who) in f.targets() {
            let mut kv = f.kv(i).await;
            let res = kv
                .txn(TxnRequest {
                    success: vec![
                        put_op("/dup/other", b("o")),
                        put_op("/dup/k", b("1")),
                        put_op("/dup/k", b("2")),
                    ],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &format!("a txn putting /dup/k twice on the {who}"),
                res,
                Code::InvalidArgument,
                &["duplicate key"],
            );
            // The same in the failure branch of a txn whose compare succeeds:
            // both branches are checked whichever runs.
            let res = kv
                .txn(TxnRequest {
                    compare: vec![],
                    success: vec![put_op("/dup/other", b("o"))],
                    failure: vec![put_op("/dup/k", b("1")), put_op("/dup/k", b("2"))],
                })
                .await;
            assert_refused(
                &format!("a txn whose failure branch puts /dup/k twice on the {who}"),
                res,
                Code::InvalidArgument,
                &["duplicate key"],
            );
            f.assert_unchanged(&before, &format!("duplicate-key txns on the {who}"))
                .await;
            for j in 0..3 {
                assert_eq!(
                    f.get(j, "/dup/other").await,
                    None,
                    "replica {j} has /dup/other"
                );
                assert_eq!(f.get(j, "/dup/k").await, None, "replica {j} has /dup/k");
            }
        }
        // Distinct keys in one txn are fine and share one revision.
        let mut kv = f.kv(f.follower).await;
        let r = kv
            .txn(TxnRequest {
                success: vec![put_op("/dup/other", b("o")), put_op("/dup/k", b("1"))],
                ..Default::default()
            })
            .await
            .expect("a txn of distinct keys")
            .into_inner();
        assert!(r.succeeded);
        assert_eq!(r.header.unwrap().revision, before.0 + 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_compactions_outside_the_history_are_out_of_range() {
    with_timeout(async {
        let mut f = Fixture::start().await;
        let mut kv = f.kv(f.leader).await;
        // Revisions 7..=16 on top of the fixture's 2..=6.
        for i in 0..10 {
            kv.put(PutRequest {
                key: b("/c/k"),
                value: b(&format!("v{i}")),
                prev_kv: false,
            })
            .await
            .unwrap();
        }
        let (rev, _) = f.state().await;
        assert_eq!(rev, 16);
        kv.compact(CompactRequest { revision: 10 })
            .await
            .expect("compact at 10");
        let before = f.state().await;
        assert_eq!(before.0, 16, "a compaction must not change the revision");

        for (i, who) in f.targets() {
            let mut kv = f.kv(i).await;
            let ctx = |what: &str| format!("{what} on the {who}");
            for serializable in [false, true] {
                let res = kv
                    .range(RangeRequest {
                        key: b("/c/k"),
                        revision: 17,
                        serializable,
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!(
                        "a range at a future revision (serializable: {serializable})"
                    )),
                    res,
                    Code::OutOfRange,
                    &["future revision"],
                );
                let res = kv
                    .range(RangeRequest {
                        key: b("/c/k"),
                        revision: 9,
                        serializable,
                        ..Default::default()
                    })
                    .await;
                assert_refused(
                    &ctx(&format!(
                        "a range at a compacted revision (serializable: {serializable})"
                    )),
                    res,
                    Code::OutOfRange,
                    &["compacted"],
                );
            }
            // The compaction point itself and later revisions are still readable.
            for (at, want) in [(10, "v3"), (12, "v5"), (16, "v9")] {
                let r = kv
                    .range(RangeRequest {
                        key: b("/c/k"),
                        revision: at,
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|s| panic!("{}: {s:?}", ctx(&format!("a range at {at}"))))
                    .into_inner();
                assert_eq!(
                    &r.kvs[0].value[..],
                    want.as_bytes(),
                    "{}",
                    ctx(&format!("value at {at}"))
                );
            }
            // Compacting at a future revision or below the compaction point fails.
            let res = kv.compact(CompactRequest { revision: 17 }).await;
            let err = res.expect_err("compact at a future revision succeeded");
            assert!(
                matches!(err.code(), Code::OutOfRange | Code::InvalidArgument),
                "{}: {err:?}",
                ctx("compact at a future revision")
            );
            assert!(
                err.message().contains("future revision"),
                "{}: {err:?}",
                ctx("compact at a future revision")
            );
            let res = kv.compact(CompactRequest { revision: 5 }).await;
            let err = res.expect_err("compact below the compaction point succeeded");
            assert!(
                matches!(err.code(), Code::OutOfRange | Code::InvalidArgument),
                "{}: {err:?}",
                ctx("compact below the compaction point")
            );
            assert!(
                err.message().contains("compacted"),
                "{}: {err:?}",
                ctx("compact at a compacted revision")
            );
            f.assert_unchanged(&before, &ctx("out-of-range reads and compactions"))
                .await;
            for j in 0..3 {
                let st = f.cluster.status(j).await.unwrap();
                assert_eq!(
                    st.compact_revision, 10,
                    "replica {j}'s compaction point moved"
                );
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_compare_enums_and_empty_ops_are_invalid_arguments() {
    with_timeout(async {
        let mut f = Fixture::start().await;
        let before = f.state().await;
        for (i, who) in f.targets() {
            let mut kv = f.kv(i).await;
            let good = Compare {
                key: b("/base/0"),
                result: compare::Result::Equal as i32,
                target: compare::Target::Value as i32,
                value: b("v0"),
                ..Default::default()
            };
            let cases = [
                (
                    "an unknown compare result",
                    Compare {
                        result: 7,
                        ..good.clone()
                    },
                    "unknown compare result",
                ),
                (
                    "a negative compare result",
                    Compare {
                        result: -1,
                        ..good.clone()
                    },
                    "unknown compare result",
                ),
                (
                    "an unknown compare target",
                    Compare {
                        target: 9,
                        ..good.clone()
                    },
                    "unknown compare target",
                ),
            ];
            for (what, cmp, words) in cases {
                for ops in [vec![put_op("/u/k", b("v"))], vec![range_op("/u/k", "")]] {
                    let res = kv
                        .txn(TxnRequest {
                            compare: vec![good.clone(), cmp.clone()],
                            success: ops.clone(),
                            failure: vec![put_op("/u/f", b("v"))],
                        })
                        .await;
                    assert_refused(
                        &format!("{what} on the {who}"),
                        res,
                        Code::InvalidArgument,
                        &[words],
                    );
                }
            }
            let res = kv
                .txn(TxnRequest {
                    success: vec![put_op("/u/k", b("v")), RequestOp { request: None }],
                    ..Default::default()
                })
                .await;
            assert_refused(
                &format!("an empty request op on the {who}"),
                res,
                Code::InvalidArgument,
                &["empty request op"],
            );
            f.assert_unchanged(&before, &format!("bad compares on the {who}"))
                .await;
            assert_eq!(f.get(i, "/u/k").await, None);
            assert_eq!(f.get(i, "/u/f").await, None);
        }
        // The good compare alone works (the cases above failed for their bad part).
        let mut kv = f.kv(f.follower).await;
        let r = kv
            .txn(TxnRequest {
                compare: vec![Compare {
                    key: b("/base/0"),
                    result: compare::Result::Equal as i32,
                    target: compare::Target::Value as i32,
                    value: b("v0"),
                    ..Default::default()
                }],
                success: vec![put_op("/u/k", b("v"))],
                failure: vec![],
            })
            .await
            .expect("a valid txn")
            .into_inner();
        assert!(r.succeeded);
        assert_eq!(r.header.unwrap().revision, before.0 + 1);
    })
    .await;
}

/// Not bad input but its neighbour: values at the limit, many at once, sent
/// to a follower. The follower forwards them on one stream to the leader and
/// the leader answers on it; together they are more than the 64 MiB a peer
/// message may hold, so however many of them queue up at once, neither side
/// may put them in one message. Every write is applied, and the second
/// round's answers carry the previous values back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writes_at_the_size_limit_through_a_follower_all_apply() {
    with_timeout(async {
        let f = Fixture::start().await;
        const N: usize = 48; // 48 × 1.5 MiB = 72 MiB
        const SIZE: usize = LIMIT - 16; // the key counts too
        let kv = f.kv(f.follower).await;
        for round in 0..2u8 {
            let writes = (0..N).map(|i| {
                let mut kv = kv.clone();
                tokio::spawn(async move {
                    kv.put(PutRequest {
                        key: b(&format!("/big/{i}")),
                        value: vec![round + 1; SIZE].into(),
                        prev_kv: true,
                    })
                    .await
                    .map(|r| r.into_inner())
                })
            });
            for (i, w) in writes.enumerate() {
                let reply = w
                    .await
                    .unwrap()
                    .unwrap_or_else(|s| panic!("round {round} write {i}: {s}"));
                match (round, reply.prev_kv) {
                    (0, None) => {}
                    (1, Some(prev)) => assert_eq!(prev.value.len(), SIZE),
                    (r, p) => panic!("round {r} write {i}: prev_kv {:?}", p.map(|p| p.key)),
                }
            }
        }
        for i in [0, N / 2, N - 1] {
            let v = f
                .get(f.leader, &format!("/big/{i}"))
                .await
                .expect("applied");
            assert_eq!((v.len(), v[0]), (SIZE, 2));
        }
    })
    .await;
}
