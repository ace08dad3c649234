//! The store's watch guarantees, checked over recorded streams of real
//! replicas with `watch_check`: every committed event of the watched range
//! from the start revision arrives once, in revision order, with all events of
//! one revision in one response; progress notifications come when the watcher
//! is idle and never go backwards. Also: a watch survives a leader kill on its
//! follower, resumes on another replica without gaps or duplicates, keeps going
//! on a follower that catches up by snapshot, is told in-band when its start
//! revision was compacted (at the start, or because it fell behind the history
//! window), starts at a future revision, carries previous values on request,
//! and filters by key and prefix.
//!
//! References: in a healthy cluster every write is acknowledged with its
//! revision, so the acknowledged writes are the committed history. Where a
//! leader dies, some writes end unknown; then the reference is a full watch
//! from revision 2 on a surviving replica, itself cross-checked against every
//! acknowledged write and against the final contents of the keys.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_e2e::cluster::{Cluster, Options};
use rkube_e2e::kvclient::not_applied;
use rkube_e2e::watch_check::{
    check_resumed, check_stream, resume_revision, EventKind, WatchBatch, WatchedEvent,
};
use rkube_proto::store as pb;
use rkube_proto::store::kv_client::KvClient;
use tonic::transport::Channel;

const T: Duration = Duration::from_secs(30);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The smallest key after every key with this prefix.
fn prefix_end(prefix: &str) -> Bytes {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    end.into()
}

async fn with_timeout(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(240), f)
        .await
        .expect("test timed out");
}

// ---------------------------------------------------------------------------
// Recording watch streams.

fn watched(e: &pb::Event) -> WatchedEvent {
    let kv = e.kv.clone().expect("an event without a kv");
    let kind = match pb::event::EventType::try_from(e.r#type) {
        Ok(pb::event::EventType::Put) => EventKind::Put,
        Ok(pb::event::EventType::Delete) => EventKind::Delete,
        Err(_) => panic!("unknown event type {}", e.r#type),
    };
    WatchedEvent {
        revision: kv.mod_revision,
        key: kv.key.to_vec(),
        kind,
        value: kv.value.to_vec(),
    }
}

fn revision_of(r: &pb::WatchResponse) -> i64 {
    r.header
        .as_ref()
        .expect("a response without a header")
        .revision
}

/// The responses after the first (`created`) one as `watch_check` batches: a
/// response without events is a progress notification for its header revision.
/// Asserts the stream's shape: one `created` response first, no compaction,
/// header revisions that never go backwards and cover their events.
fn batches(resps: &[pb::WatchResponse]) -> Vec<WatchBatch> {
    let Some((first, rest)) = resps.split_first() else {
        return vec![];
    };
    assert!(
        first.created,
        "the first response is not `created`: {first:?}"
    );
    assert_eq!(
        first.compact_revision, 0,
        "unexpected compaction: {first:?}"
    );
    assert!(
        first.events.is_empty(),
        "`created` carries events: {first:?}"
    );
    let mut high = 0;
    rest.iter()
        .enumerate()
        .map(|(i, r)| {
            assert!(
                !r.created,
                "response {} is a second `created`: {r:?}",
                i + 1
            );
            assert_eq!(
                r.compact_revision,
                0,
                "response {} is a compaction: {r:?}",
                i + 1
            );
            let rev = revision_of(r);
            assert!(
                rev >= high,
                "response {}: header revision {rev} is below {high} seen before",
                i + 1
            );
            high = rev;
            let events: Vec<WatchedEvent> = r.events.iter().map(watched).collect();
            if let Some(last) = events.iter().map(|e| e.revision).max() {
                assert!(
                    rev >= last,
                    "response {}: header revision {rev} is below its event at {last}",
                    i + 1
                );
            }
            if events.is_empty() {
                WatchBatch::progress(rev)
            } else {
                WatchBatch::events(events)
            }
        })
        .collect()
}

/// The highest revision a recording delivered or announced.
fn seen(batches: &[WatchBatch]) -> i64 {
    resume_revision(0, batches) - 1
}

/// A watch stream read by a task into a shared list, with arrival times.
struct Recording {
    responses: Arc<Mutex<Vec<(Instant, pb::WatchResponse)>>>,
    /// How the stream ended, once it did.
    ended: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_client(cluster: &Cluster, i: usize) -> pb::watch_client::WatchClient<Channel> {
    cluster
        .watch_client(i)
        .await
        .max_decoding_message_size(512 << 20)
}

fn watch_request(key: &str, range_end: Bytes, start: i64, progress_ms: i64) -> pb::WatchRequest {
    pb::WatchRequest {
        key: b(key),
        range_end,
        start_revision: start,
        prev_kv: false,
        progress_interval_ms: progress_ms,
    }
}

impl Recording {
    async fn start(cluster: &Cluster, i: usize, req: pb::WatchRequest) -> Recording {
        let mut client = watch_client(cluster, i).await;
        let stream = client
            .watch(req.clone())
            .await
            .unwrap_or_else(|s| panic!("watch {req:?} on replica {i}: {s:?}"))
            .into_inner();
        Self::of(stream)
    }

    fn of(mut stream: tonic::Streaming<pb::WatchResponse>) -> Recording {
        let responses = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(None));
        let task = {
            let (responses, ended) = (responses.clone(), ended.clone());
            tokio::spawn(async move {
                let how = loop {
                    match stream.message().await {
                        Ok(Some(r)) => responses.lock().unwrap().push((Instant::now(), r)),
                        Ok(None) => break "the stream ended".to_string(),
                        Err(s) => {
                            break format!("the stream failed: {:?}: {}", s.code(), s.message())
                        }
                    }
                };
                *ended.lock().unwrap() = Some(how);
            })
        };
        Recording {
            responses,
            ended,
            task,
        }
    }

    fn responses(&self) -> Vec<pb::WatchResponse> {
        self.responses
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn timed(&self) -> Vec<(Instant, pb::WatchResponse)> {
        self.responses.lock().unwrap().clone()
    }

    fn batches(&self) -> Vec<WatchBatch> {
        batches(&self.responses())
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.responses.lock().unwrap().len()
    }

    /// Waits until the recording delivered or announced `revision`.
    async fn wait_seen(&self, revision: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let batches = self.batches();
            if seen(&batches) >= revision {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the watch did not reach revision {revision} within {timeout:?}: it saw up to {} \
                 in {} responses; ended: {:?}",
                seen(&batches),
                batches.len(),
                self.ended()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the stream ended; returns how.
    async fn wait_ended(&self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(how) = self.ended() {
                return how;
            }
            assert!(
                Instant::now() < deadline,
                "the stream did not end within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Writes whose outcomes are recorded.

#[derive(Debug, Clone)]
enum WriteOp {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Several puts (distinct keys) and optionally a delete, in one revision.
    Txn {
        puts: Vec<(String, String)>,
        delete: Option<String>,
    },
}

#[derive(Debug, Clone)]
#[allow(dead_code)] // the reasons are read through Debug, in failure messages
enum Ack {
    /// Applied at `revision` producing `events` (none for a delete of an absent key).
    Ok {
        revision: i64,
        events: Vec<WatchedEvent>,
    },
    /// Refused or never sent.
    Failed(String),
    /// May or may not have been applied.
    Unknown(String),
}

fn put_event(revision: i64, key: &str, value: &str) -> WatchedEvent {
    WatchedEvent {
        revision,
        key: key.as_bytes().to_vec(),
        kind: EventKind::Put,
        value: value.as_bytes().to_vec(),
    }
}

fn delete_event(revision: i64, key: &str) -> WatchedEvent {
    WatchedEvent {
        revision,
        key: key.as_bytes().to_vec(),
        kind: EventKind::Delete,
        value: vec![],
    }
}

/// Writes through a list of replicas, moving to the next one when a request
/// certainly did not take effect (the way `FailoverKv` does).
struct Writer {
    clients: Vec<KvClient<Channel>>,
    current: usize,
}

impl Writer {
    fn new(endpoints: &[String], start: usize) -> Writer {
        let clients = endpoints
            .iter()
            .map(|e| {
                KvClient::new(
                    tonic::transport::Endpoint::from_shared(e.clone())
                        .unwrap()
                        .connect_timeout(Duration::from_millis(300))
                        .connect_lazy(),
                )
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20)
            })
            .collect();
        Writer {
            clients,
            current: start % endpoints.len(),
        }
    }

    async fn write(&mut self, op: &WriteOp) -> Ack {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut c = self.clients[self.current].clone();
            let left = deadline.saturating_duration_since(Instant::now());
            let call = async {
                match op {
                    WriteOp::Put { key, value } => {
                        let r = c
                            .put(pb::PutRequest {
                                key: b(key),
                                value: b(value),
                                prev_kv: false,
                            })
                            .await?
                            .into_inner();
                        let rev = r.header.unwrap().revision;
                        Ok::<_, tonic::Status>((rev, vec![put_event(rev, key, value)]))
                    }
                    WriteOp::Delete { key } => {
                        let r = c
                            .delete_range(pb::DeleteRangeRequest {
                                key: b(key),
                                range_end: Bytes::new(),
                                prev_kv: false,
                            })
                            .await?
                            .into_inner();
                        let rev = r.header.unwrap().revision;
                        let events = if r.deleted > 0 {
                            vec![delete_event(rev, key)]
                        } else {
                            vec![]
                        };
                        Ok((rev, events))
                    }
                    WriteOp::Txn { puts, delete } => {
                        let mut ops: Vec<pb::RequestOp> = puts
                            .iter()
                            .map(|(k, v)| pb::RequestOp {
                                request: Some(pb::request_op::Request::RequestPut(
                                    pb::PutRequest {
                                        key: b(k),
                                        value: b(v),
                                        prev_kv: false,
                                    },
                                )),
                            })
                            .collect();
                        if let Some(k) = delete {
                            ops.push(pb::RequestOp {
                                request: Some(pb::request_op::Request::RequestDeleteRange(
                                    pb::DeleteRangeRequest {
                                        key: b(k),
                                        range_end: Bytes::new(),
                                        prev_kv: false,
                                    },
                                )),
                            });
                        }
                        let r = c
                            .txn(pb::TxnRequest {
                                compare: vec![],
                                success: ops,
                                failure: vec![],
                            })
                            .await?
                            .into_inner();
                        assert!(r.succeeded, "a txn without compares failed: {r:?}");
                        let rev = r.header.unwrap().revision;
                        let mut events: Vec<WatchedEvent> =
                            puts.iter().map(|(k, v)| put_event(rev, k, v)).collect();
                        if let Some(k) = delete {
                            let deleted = match r.responses.last().and_then(|o| o.response.as_ref())
                            {
                                Some(pb::response_op::Response::ResponseDeleteRange(d)) => {
                                    d.deleted
                                }
                                other => {
                                    panic!("the txn's last response is not a delete: {other:?}")
                                }
                            };
                            if deleted > 0 {
                                events.push(delete_event(rev, k));
                            }
                        }
                        Ok((rev, events))
                    }
                }
            };
            match tokio::time::timeout(left.max(Duration::from_millis(1)), call).await {
                Ok(Ok((revision, events))) => return Ack::Ok { revision, events },
                Ok(Err(s)) if not_applied(&s) => {
                    if s.code() != tonic::Code::Unavailable || Instant::now() >= deadline {
                        return Ack::Failed(format!("{:?}: {}", s.code(), s.message()));
                    }
                    self.current = (self.current + 1) % self.clients.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(s)) => {
                    self.current = (self.current + 1) % self.clients.len();
                    return Ack::Unknown(format!("{:?}: {}", s.code(), s.message()));
                }
                Err(_) => {
                    self.current = (self.current + 1) % self.clients.len();
                    return Ack::Unknown("client timeout".into());
                }
            }
        }
    }
}

/// The `n`th write of writer `w` under `prefix`: mostly puts, some deletes and
/// some transactions that put three keys and delete one in one revision.
fn nth_op(prefix: &str, w: usize, n: usize) -> WriteOp {
    let k = |i: usize| format!("{prefix}w{w}/k{i}");
    if n % 7 == 3 {
        WriteOp::Txn {
            puts: (0..3)
                .map(|j| {
                    (
                        format!("{prefix}w{w}/t{}", (n + j) % 10),
                        format!("w{w}n{n}j{j}"),
                    )
                })
                .collect(),
            delete: Some(k((n + 5) % 20)),
        }
    } else if n % 11 == 5 {
        WriteOp::Delete {
            key: k((n + 3) % 20),
        }
    } else {
        WriteOp::Put {
            key: k(n % 20),
            value: format!("w{w}n{n}"),
        }
    }
}

/// Concurrent writers, writer `w` through `endpoints` starting at `w`.
struct Load {
    acks: Arc<Mutex<Vec<(WriteOp, Ack)>>>,
    ok: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(prefix: &str, endpoints: Vec<String>, writers: usize) -> Load {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let ok = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let (acks, ok, stop, endpoints) =
                    (acks.clone(), ok.clone(), stop.clone(), endpoints.clone());
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    let mut writer = Writer::new(&endpoints, w);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let op = nth_op(&prefix, w, n);
                        let ack = writer.write(&op).await;
                        if matches!(ack, Ack::Ok { .. }) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        acks.lock().unwrap().push((op, ack));
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            acks,
            ok,
            stop,
            tasks,
        }
    }

    fn ok_count(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    async fn wait_ok(&self, at_least: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.ok_count() < at_least {
            assert!(
                Instant::now() < deadline,
                "writes made no progress: {} acknowledged, waiting for {at_least}; last outcomes: \
                 {:?}",
                self.ok_count(),
                self.acks
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<(WriteOp, Ack)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("writer task");
        }
        Arc::try_unwrap(self.acks).unwrap().into_inner().unwrap()
    }
}

fn sorted(mut events: Vec<WatchedEvent>) -> Vec<WatchedEvent> {
    events.sort_by(|a, b| (&a.key, a.kind as u8, &a.value).cmp(&(&b.key, b.kind as u8, &b.value)));
    events
}

fn group_by_revision(events: &[WatchedEvent]) -> BTreeMap<i64, Vec<WatchedEvent>> {
    let mut by: BTreeMap<i64, Vec<WatchedEvent>> = BTreeMap::new();
    for e in events {
        by.entry(e.revision).or_default().push(e.clone());
    }
    by
}

/// The committed history under the load's prefix, from the acknowledgements
/// alone: only valid when every write was acknowledged (asserted).
fn history_from_acks(acks: &[(WriteOp, Ack)]) -> Vec<WatchedEvent> {
    let mut by: BTreeMap<i64, Vec<WatchedEvent>> = BTreeMap::new();
    for (op, ack) in acks {
        match ack {
            Ack::Ok { revision, events } => {
                if events.is_empty() {
                    continue;
                }
                assert!(
                    by.insert(*revision, events.clone()).is_none(),
                    "two writes were acknowledged at revision {revision}"
                );
            }
            other => panic!("a write in a healthy cluster did not succeed: {op:?}: {other:?}"),
        }
    }
    // With every write acknowledged and no other writer, revisions are contiguous.
    let revs: Vec<i64> = by.keys().copied().collect();
    for w in revs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "no acknowledged write has revision {}",
            w[0] + 1
        );
    }
    by.into_values().flatten().collect()
}

/// Checks a reference history (from a full watch) against every write's
/// outcome: each acknowledged write is exactly the events of its revision,
/// and every other revision is one of the writes that ended unknown.
fn cross_check_reference(reference: &[WatchedEvent], acks: &[(WriteOp, Ack)]) {
    let by_rev = group_by_revision(reference);
    let mut claimed = BTreeSet::new();
    for (op, ack) in acks {
        if let Ack::Ok { revision, events } = ack {
            if events.is_empty() {
                continue;
            }
            let got = by_rev.get(revision).cloned().unwrap_or_default();
            assert_eq!(
                sorted(got),
                sorted(events.clone()),
                "the reference disagrees with the write {op:?} acknowledged at revision {revision}"
            );
            assert!(
                claimed.insert(*revision),
                "two writes acknowledged at {revision}"
            );
        }
    }
    let unknown: Vec<&WriteOp> = acks
        .iter()
        .filter(|(_, a)| matches!(a, Ack::Unknown(_)))
        .map(|(op, _)| op)
        .collect();
    for (rev, events) in &by_rev {
        if claimed.contains(rev) {
            continue;
        }
        let puts: BTreeSet<(Vec<u8>, Vec<u8>)> = events
            .iter()
            .filter(|e| e.kind == EventKind::Put)
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let deletes: BTreeSet<Vec<u8>> = events
            .iter()
            .filter(|e| e.kind == EventKind::Delete)
            .map(|e| e.key.clone())
            .collect();
        let explained = unknown.iter().any(|op| match op {
            WriteOp::Put { key, value } => {
                deletes.is_empty()
                    && puts
                        == BTreeSet::from([(key.as_bytes().to_vec(), value.as_bytes().to_vec())])
            }
            WriteOp::Delete { key } => {
                puts.is_empty() && deletes == BTreeSet::from([key.as_bytes().to_vec()])
            }
            WriteOp::Txn { puts: p, delete } => {
                let want: BTreeSet<(Vec<u8>, Vec<u8>)> = p
                    .iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect();
                puts == want
                    && deletes
                        .iter()
                        .all(|d| delete.as_ref().is_some_and(|k| k.as_bytes() == &d[..]))
            }
        });
        assert!(
            explained,
            "revision {rev} of the reference ({events:?}) is no write that was sent"
        );
    }
}

/// Replays `history` and compares the result with the replica's keys under `prefix`.
async fn assert_history_matches_contents(
    cluster: &Cluster,
    i: usize,
    prefix: &str,
    history: &[WatchedEvent],
) {
    let mut state: BTreeMap<Vec<u8>, (Vec<u8>, i64)> = BTreeMap::new();
    for e in history {
        match e.kind {
            EventKind::Put => {
                state.insert(e.key.clone(), (e.value.clone(), e.revision));
            }
            EventKind::Delete => {
                assert!(
                    state.remove(&e.key).is_some(),
                    "delete of an absent key: {e:?}"
                );
            }
        }
    }
    let mut kv = cluster.kv(i).await.max_decoding_message_size(256 << 20);
    let r = kv
        .range(pb::RangeRequest {
            key: b(prefix),
            range_end: prefix_end(prefix),
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    let got: BTreeMap<Vec<u8>, (Vec<u8>, i64)> = r
        .kvs
        .into_iter()
        .map(|kv| (kv.key.to_vec(), (kv.value.to_vec(), kv.mod_revision)))
        .collect();
    assert!(
        got == state,
        "replaying the history does not give replica {i}'s contents under {prefix}: {} keys \
         replayed, {} stored",
        state.len(),
        got.len()
    );
}

/// Every event under `prefix` from revision 2 through `upto`, by a watch on replica `i`.
async fn full_history(cluster: &Cluster, i: usize, prefix: &str, upto: i64) -> Vec<WatchedEvent> {
    let rec = Recording::start(
        cluster,
        i,
        watch_request(prefix, prefix_end(prefix), 2, 100),
    )
    .await;
    rec.wait_seen(upto, T).await;
    let batches = rec.batches();
    let events: Vec<WatchedEvent> = batches.into_iter().flat_map(|b| b.events).collect();
    for w in events.windows(2) {
        assert!(
            w[0].revision <= w[1].revision,
            "the reference watch is out of order"
        );
    }
    events.into_iter().filter(|e| e.revision <= upto).collect()
}

async fn put(cluster: &Cluster, i: usize, key: &str, value: &str) -> i64 {
    cluster
        .kv(i)
        .await
        .put(pb::PutRequest {
            key: b(key),
            value: b(value),
            prev_kv: false,
        })
        .await
        .unwrap_or_else(|s| panic!("put {key} on replica {i}: {s:?}"))
        .into_inner()
        .header
        .unwrap()
        .revision
}

/// A successful write of `op` on replica `i`, with its revision and events.
async fn write(cluster: &Cluster, i: usize, op: &WriteOp) -> (i64, Vec<WatchedEvent>) {
    match Writer::new(&[cluster.endpoint(i)], 0).write(op).await {
        Ack::Ok { revision, events } => (revision, events),
        other => panic!("{op:?} on replica {i}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_delivers_every_revision_whole_once_and_in_order() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let eps: Vec<String> = (0..3).map(|i| cluster.endpoint(i)).collect();
        // Live from the first write, on a follower.
        let live = Recording::start(
            &cluster,
            follower,
            watch_request("/w/", prefix_end("/w/"), 2, 500),
        )
        .await;
        // Every replica takes writes (followers forward them).
        let load = Load::start("/w/", eps, 3);
        load.wait_ok(150, T).await;
        // A transaction of 40 puts is one revision, delivered in one response.
        let big = WriteOp::Txn {
            puts: (0..40)
                .map(|j| (format!("/w/big/{j:02}"), format!("big{j}")))
                .collect(),
            delete: None,
        };
        let (big_rev, big_events) = write(&cluster, follower, &big).await;
        load.wait_ok(400, T).await;
        let mut acks = load.finish().await;
        acks.push((
            big.clone(),
            Ack::Ok {
                revision: big_rev,
                events: big_events,
            },
        ));
        let (last, _) = cluster.wait_converged(T).await;
        assert!(
            last > 300,
            "too few revisions for a replay across batches: {last}"
        );
        let reference = history_from_acks(&acks);
        assert_eq!(reference.last().unwrap().revision, last);

        live.wait_seen(last, T).await;
        let recorded = live.batches();
        check_stream(&reference, 2, &recorded).unwrap_or_else(|v| panic!("live watch: {v}"));
        let with_big = live
            .responses()
            .into_iter()
            .find(|r| {
                r.events
                    .iter()
                    .any(|e| e.kv.as_ref().unwrap().mod_revision == big_rev)
            })
            .unwrap();
        assert_eq!(
            with_big
                .events
                .iter()
                .filter(|e| e.kv.as_ref().unwrap().mod_revision == big_rev)
                .count(),
            40
        );

        // Replaying the whole history, longer than what the server scans at
        // once, from each replica: the same events, revisions never split.
        for i in 0..3 {
            let replay =
                Recording::start(&cluster, i, watch_request("/w/", prefix_end("/w/"), 2, 500))
                    .await;
            replay.wait_seen(last, T).await;
            check_stream(&reference, 2, &replay.batches())
                .unwrap_or_else(|v| panic!("replay on replica {i}: {v}"));
            // And from the middle of a transaction's neighbourhood.
            let mid = Recording::start(
                &cluster,
                i,
                watch_request("/w/", prefix_end("/w/"), big_rev, 500),
            )
            .await;
            mid.wait_seen(last, T).await;
            check_stream(&reference, big_rev, &mid.batches())
                .unwrap_or_else(|v| panic!("watch from {big_rev} on replica {i}: {v}"));
            assert!(live.ended().is_none() && replay.ended().is_none() && mid.ended().is_none());
        }
        assert_history_matches_contents(&cluster, follower, "/w/", &reference).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_notifications_arrive_when_idle_and_never_go_backwards() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let interval = Duration::from_millis(200);
        let rec = Recording::start(
            &cluster,
            follower,
            watch_request("/p/", prefix_end("/p/"), 2, 200),
        )
        .await;
        let mut reference = Vec::new();
        for i in 0..20 {
            let rev = put(&cluster, leader, &format!("/p/{}", i % 4), &format!("v{i}")).await;
            reference.push(put_event(rev, &format!("/p/{}", i % 4), &format!("v{i}")));
        }
        let last = reference.last().unwrap().revision;
        rec.wait_seen(last, T).await;
        let idle_from = Instant::now();
        // Idle now: notifications for `last` keep coming, about every interval.
        let deadline = idle_from + T;
        loop {
            let n = rec
                .timed()
                .iter()
                .filter(|(at, r)| *at >= idle_from && r.events.is_empty() && !r.created)
                .count();
            if n >= 4 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {n} progress notifications while idle"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let idle: Vec<(Instant, pb::WatchResponse)> = rec
            .timed()
            .into_iter()
            .filter(|(at, r)| *at >= idle_from && !r.created)
            .collect();
        for (_, r) in &idle {
            assert!(r.events.is_empty(), "an event while idle: {r:?}");
            assert_eq!(
                revision_of(r),
                last,
                "an idle progress notification is not at {last}"
            );
        }
        let elapsed = idle[3].0.duration_since(idle_from);
        assert!(
            elapsed >= interval * 3 && elapsed < interval * 4 + Duration::from_secs(2),
            "4 notifications took {elapsed:?} at an interval of {interval:?}"
        );

        // A write outside the range moves the notified revision, without an event.
        let other = put(&cluster, leader, "/q/elsewhere", "x").await;
        rec.wait_seen(other, T).await;
        let n = rec.len();
        let more = put(&cluster, leader, "/p/again", "y").await;
        reference.push(put_event(more, "/p/again", "y"));
        rec.wait_seen(more, T).await;
        let after: Vec<pb::WatchResponse> = rec.responses()[n..].to_vec();
        assert!(
            after.iter().any(|r| r.events.len() == 1),
            "the /p/again event: {after:?}"
        );

        // The whole recording: ordered, complete, progress never backwards.
        check_stream(&reference, 2, &rec.batches()).unwrap_or_else(|v| panic!("{v}"));
        assert!(rec.ended().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_notifications_arrive_while_only_other_keys_change() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let rec = Recording::start(
            &cluster,
            follower,
            watch_request("/quiet/", prefix_end("/quiet/"), 0, 200),
        )
        .await;
        // Keys outside the watched range change every 50 ms for 3 s: the watcher
        // gets no events, so it is due a notification every 200 ms.
        let started = Instant::now();
        let mut writes = 0;
        while started.elapsed() < Duration::from_secs(3) {
            put(&cluster, leader, "/busy/k", &format!("v{writes}")).await;
            writes += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let notes: Vec<i64> = rec.responses().iter().skip(1).map(revision_of).collect();
        assert!(
            notes.len() >= 5,
            "{} progress notifications in 3 s at an interval of 200 ms while {writes} writes \
             changed other keys: {notes:?}",
            notes.len()
        );
        check_stream(&[], 2, &rec.batches()).unwrap_or_else(|v| panic!("{v}"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_on_a_follower_continues_while_the_leader_is_killed() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let watcher = (leader + 1) % 3;
        let via = (leader + 2) % 3;
        let rec = Recording::start(
            &cluster,
            watcher,
            watch_request("/a/", prefix_end("/a/"), 2, 100),
        )
        .await;
        // Writes go through the other follower (which forwards them to the leader).
        let load = Load::start("/a/", vec![cluster.endpoint(via)], 4);
        load.wait_ok(150, T).await;
        let term = cluster.status(leader).await.unwrap().term;
        cluster.kill(leader);
        let new = cluster.leader(T).await;
        assert_ne!(new, leader);
        assert!(cluster.status(new).await.unwrap().term > term);
        let n = load.ok_count();
        load.wait_ok(n + 150, T).await;
        let acks = load.finish().await;
        let (last, _) = cluster.wait_converged(T).await;

        let reference = full_history(&cluster, via, "/a/", last).await;
        cross_check_reference(&reference, &acks);
        assert_history_matches_contents(&cluster, via, "/a/", &reference).await;

        rec.wait_seen(last, T).await;
        assert_eq!(
            rec.ended(),
            None,
            "the watch on the surviving follower ended"
        );
        check_stream(&reference, 2, &rec.batches()).unwrap_or_else(|v| panic!("{v}"));
        let unknown = acks
            .iter()
            .filter(|(_, a)| matches!(a, Ack::Unknown(_)))
            .count();
        eprintln!(
            "{} writes acknowledged, {unknown} unknown; {} revisions under /a/; {} responses \
             recorded",
            acks.iter()
                .filter(|(_, a)| matches!(a, Ack::Ok { .. }))
                .count(),
            group_by_revision(&reference).len(),
            rec.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_resumed_on_another_replica_after_its_replica_dies_misses_nothing() {
    with_timeout(async {
        // Snapshots every 100 entries: the killed replica restarts from one.
        let mut cluster = Cluster::start_with(Options {
            snapshot_every: 100,
            ..Default::default()
        })
        .await;
        // The watcher is on the leader, so the kill also forces an election.
        let victim = cluster.leader(T).await;
        let others = [(victim + 1) % 3, (victim + 2) % 3];
        let start = 2;
        let first = Recording::start(
            &cluster,
            victim,
            watch_request("/b/", prefix_end("/b/"), start, 100),
        )
        .await;
        let load = Load::start(
            "/b/",
            others.iter().map(|i| cluster.endpoint(*i)).collect(),
            4,
        );
        load.wait_ok(150, T).await;
        cluster.kill(victim);
        let how = first.wait_ended(T).await;
        let seg1 = first.batches();
        let resume = resume_revision(start, &seg1);
        assert!(
            resume > start + 50,
            "the first watch saw too little: resume at {resume}"
        );

        // Resume on another replica right away, while the cluster elects a leader.
        let second = Recording::start(
            &cluster,
            others[0],
            watch_request("/b/", prefix_end("/b/"), resume, 100),
        )
        .await;
        let n = load.ok_count();
        load.wait_ok(n + 150, T).await;
        let acks = load.finish().await;
        let (last, _) = cluster.wait_converged(T).await;

        let reference = full_history(&cluster, others[1], "/b/", last).await;
        cross_check_reference(&reference, &acks);
        assert_history_matches_contents(&cluster, others[1], "/b/", &reference).await;

        second.wait_seen(last, T).await;
        let seg2 = second.batches();
        check_stream(&reference, start, &seg1).unwrap_or_else(|v| panic!("before the kill: {v}"));
        check_resumed(&reference, start, &[&seg1, &seg2])
            .unwrap_or_else(|v| panic!("resumed at {resume}: {v}"));
        assert!(second.ended().is_none());
        eprintln!(
            "the first watch {how} after revision {}; resumed at {resume}, last {last}",
            resume - 1
        );

        // The killed replica comes back and serves the same history.
        cluster.restart(victim);
        cluster.wait_all_ready(T).await;
        cluster.wait_converged(T).await;
        let st = cluster.status(victim).await.unwrap();
        assert!(
            st.snapshot_index > 0,
            "the restarted replica has no snapshot: {st:?}"
        );
        let third = Recording::start(
            &cluster,
            victim,
            watch_request("/b/", prefix_end("/b/"), resume, 100),
        )
        .await;
        third.wait_seen(last, T).await;
        check_resumed(&reference, start, &[&seg1, &third.batches()])
            .unwrap_or_else(|v| panic!("resumed on the restarted replica: {v}"));
    })
    .await;
}

/// Asserts a watch from `start` is refused in-band: one `created` response with
/// `compact_revision`, no events, then the end of the stream.
async fn assert_compacted_watch(cluster: &Cluster, i: usize, start: i64, compacted: i64) {
    let rec = Recording::start(
        cluster,
        i,
        watch_request("/c/", prefix_end("/c/"), start, 100),
    )
    .await;
    let how = rec.wait_ended(T).await;
    assert_eq!(how, "the stream ended", "replica {i}, watch from {start}");
    let resps = rec.responses();
    assert_eq!(resps.len(), 1, "replica {i}, watch from {start}: {resps:?}");
    let r = &resps[0];
    assert_eq!(
        r.compact_revision, compacted,
        "replica {i}, watch from {start}: {r:?}"
    );
    assert!(
        r.events.is_empty(),
        "replica {i}: events after compaction: {r:?}"
    );
    assert!(r.created, "replica {i}: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_from_a_compacted_revision_is_told_so_in_band() {
    with_timeout(async {
        // The store keeps the newest 20 revisions of history.
        let mut cluster = Cluster::start_with(Options {
            history_revisions: 20,
            ..Default::default()
        })
        .await;
        let leader = cluster.leader(T).await;
        let mut reference = Vec::new();
        for i in 0..40 {
            let (k, v) = (format!("/c/{}", i % 5), format!("v{i}"));
            let rev = put(&cluster, leader, &k, &v).await;
            reference.push(put_event(rev, &k, &v));
        }
        let (last, _) = cluster.wait_converged(T).await;
        assert_eq!(last, 41);
        for i in 0..3 {
            let st = cluster.status(i).await.unwrap();
            assert_eq!(st.compact_revision, 21, "replica {i}: {st:?}");
            for start in [2, 10, 21] {
                assert_compacted_watch(&cluster, i, start, 21).await;
            }
            // The oldest revision still in the window and the newest both work.
            for start in [22, 41] {
                let rec = Recording::start(
                    &cluster,
                    i,
                    watch_request("/c/", prefix_end("/c/"), start, 100),
                )
                .await;
                rec.wait_seen(last, T).await;
                check_stream(&reference, start, &rec.batches())
                    .unwrap_or_else(|v| panic!("replica {i} from {start}: {v}"));
                let first = rec
                    .batches()
                    .into_iter()
                    .find(|b| !b.events.is_empty())
                    .unwrap();
                assert_eq!(first.events[0].revision, start);
            }
        }

        // The Compact RPC moves the window too.
        let r = cluster
            .kv((leader + 1) % 3)
            .await
            .compact(pb::CompactRequest { revision: 35 })
            .await
            .expect("compact")
            .into_inner();
        assert!(r.header.is_some());
        cluster.wait_converged(T).await;
        for i in 0..3 {
            let deadline = Instant::now() + T;
            while cluster.status(i).await.map(|s| s.compact_revision) != Some(35) {
                assert!(
                    Instant::now() < deadline,
                    "replica {i} did not compact to 35"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for start in [22, 30, 35] {
                assert_compacted_watch(&cluster, i, start, 35).await;
            }
            let rec = Recording::start(
                &cluster,
                i,
                watch_request("/c/", prefix_end("/c/"), 36, 100),
            )
            .await;
            rec.wait_seen(last, T).await;
            check_stream(&reference, 36, &rec.batches())
                .unwrap_or_else(|v| panic!("replica {i} from 36: {v}"));
        }
        // A watch of what comes next is unaffected.
        let rec = Recording::start(
            &cluster,
            leader,
            watch_request("/c/", prefix_end("/c/"), 0, 100),
        )
        .await;
        let rev = put(&cluster, leader, "/c/new", "n").await;
        reference.push(put_event(rev, "/c/new", "n"));
        rec.wait_seen(rev, T).await;
        check_stream(&reference, last + 1, &rec.batches()).unwrap_or_else(|v| panic!("{v}"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watcher_that_falls_behind_the_history_window_is_told_in_band() {
    with_timeout(async {
        let mut cluster = Cluster::start_with(Options {
            history_revisions: 20,
            ..Default::default()
        })
        .await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        // A stream nobody reads: flow control stops the server's sender.
        let mut client = watch_client(&cluster, follower).await;
        let mut stream = client
            .watch(watch_request("/s/", prefix_end("/s/"), 2, 100))
            .await
            .unwrap()
            .into_inner();
        let value = "x".repeat(64 * 1024);
        let mut reference = Vec::new();
        for i in 0..300 {
            let k = format!("/s/{}", i % 10);
            let v = format!("{i}:{value}");
            let rev = put(&cluster, leader, &k, &v).await;
            reference.push(put_event(rev, &k, &v));
        }
        let (last, _) = cluster.wait_converged(T).await;
        // Now read: a prefix of the history, then the compaction, then the end.
        let mut resps = Vec::new();
        let how = loop {
            match tokio::time::timeout(T, stream.message())
                .await
                .expect("the stream stalled")
            {
                Ok(Some(r)) => resps.push(r),
                Ok(None) => break "ended".to_string(),
                Err(s) => break format!("failed: {s:?}"),
            }
        };
        assert_eq!(how, "ended");
        let compact = resps.pop().expect("no responses");
        assert!(
            compact.compact_revision >= last - 20,
            "the last response is no compaction: {:?}",
            compact.header
        );
        assert!(compact.events.is_empty());
        let batches = batches(&resps);
        let delivered = seen(&batches);
        assert!(
            delivered < compact.compact_revision,
            "delivered {delivered} yet told compacted at {}",
            compact.compact_revision
        );
        check_stream(&reference, 2, &batches).unwrap_or_else(|v| panic!("{v}"));
        eprintln!(
            "the watcher got revisions up to {delivered} in {} responses, then compact_revision \
             {} (store at {last})",
            batches.len(),
            compact.compact_revision
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_with_prev_kv_carries_previous_values() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let with = Recording::start(
            &cluster,
            follower,
            pb::WatchRequest {
                prev_kv: true,
                ..watch_request("/d/", prefix_end("/d/"), 2, 100)
            },
        )
        .await;
        let without = Recording::start(
            &cluster,
            follower,
            watch_request("/d/", prefix_end("/d/"), 2, 100),
        )
        .await;
        let r1 = put(&cluster, leader, "/d/k", "v1").await;
        let r2 = put(&cluster, leader, "/d/k", "v2").await;
        let (r3, _) = write(
            &cluster,
            leader,
            &WriteOp::Txn {
                puts: vec![("/d/k".into(), "v3".into()), ("/d/j".into(), "j1".into())],
                delete: None,
            },
        )
        .await;
        let (r4, ev4) = write(&cluster, leader, &WriteOp::Delete { key: "/d/k".into() }).await;
        assert_eq!(ev4.len(), 1);
        let (r5, ev5) = write(&cluster, leader, &WriteOp::Delete { key: "/d/k".into() }).await;
        assert!(
            ev5.is_empty() && r5 == r4,
            "deleting an absent key wrote revision {r5}"
        );
        let r6 = put(&cluster, leader, "/d/k", "v4").await;
        with.wait_seen(r6, T).await;
        without.wait_seen(r6, T).await;

        let events: Vec<pb::Event> = with
            .responses()
            .into_iter()
            .flat_map(|r| r.events)
            .collect();
        /// (value, create_revision, mod_revision, version) of a previous value.
        type Prev = (String, i64, i64, i64);
        let summary: Vec<(i64, String, Option<Prev>)> = events
            .iter()
            .map(|e| {
                let kv = e.kv.clone().unwrap();
                (
                    kv.mod_revision,
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    e.prev_kv.as_ref().map(|p| {
                        (
                            String::from_utf8_lossy(&p.value).into_owned(),
                            p.create_revision,
                            p.mod_revision,
                            p.version,
                        )
                    }),
                )
            })
            .collect();
        let s = |v: &str| v.to_string();
        assert_eq!(
            summary,
            vec![
                (r1, s("/d/k"), None),
                (r2, s("/d/k"), Some((s("v1"), r1, r1, 1))),
                (r3, s("/d/k"), Some((s("v2"), r1, r2, 2))),
                (r3, s("/d/j"), None),
                (r4, s("/d/k"), Some((s("v3"), r1, r3, 3))),
                (r6, s("/d/k"), None),
            ]
        );
        for e in &events {
            if let Some(p) = &e.prev_kv {
                assert_eq!(p.key, e.kv.as_ref().unwrap().key);
            }
        }
        // The delete: an empty value at the deleting revision; a new life after it.
        let del = &events[4];
        assert_eq!(del.r#type, pb::event::EventType::Delete as i32);
        assert!(del.kv.as_ref().unwrap().value.is_empty());
        let reborn = events[5].kv.clone().unwrap();
        assert_eq!((reborn.create_revision, reborn.version), (r6, 1));
        // Without prev_kv: the same events, no previous values.
        let plain: Vec<pb::Event> = without
            .responses()
            .into_iter()
            .flat_map(|r| r.events)
            .collect();
        assert_eq!(plain.len(), events.len());
        for (p, e) in plain.iter().zip(&events) {
            assert!(p.prev_kv.is_none(), "prev_kv without asking: {p:?}");
            assert_eq!(p.kv, e.kv);
            assert_eq!(p.r#type, e.r#type);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_on_one_key_or_a_prefix_sees_only_its_keys() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let start = put(&cluster, leader, "/f/before", "x").await + 1;
        let single = Recording::start(
            &cluster,
            follower,
            watch_request("/f/a", Bytes::new(), start, 100),
        )
        .await;
        let prefix = Recording::start(
            &cluster,
            follower,
            watch_request("/f/a", prefix_end("/f/a"), start, 100),
        )
        .await;
        let explicit = Recording::start(
            &cluster,
            leader,
            watch_request("/f/a", b("/f/a/m"), start, 100),
        )
        .await;
        let from_on = Recording::start(
            &cluster,
            leader,
            watch_request("/f/a/m", Bytes::from_static(&[0]), start, 100),
        )
        .await;
        let mut all = Vec::new();
        for (k, v) in [
            ("/f/a", "1"),
            ("/f/ab", "1"),
            ("/f/a/x", "1"),
            ("/f/b", "1"),
            ("/f/", "1"),
            ("/f/a/z", "1"),
            ("/f", "1"),
            ("/f/`", "1"),
            ("/f/a", "2"),
            ("/zz", "1"),
        ] {
            let rev = put(&cluster, leader, k, v).await;
            all.push(put_event(rev, k, v));
        }
        let (r, ev) = write(
            &cluster,
            leader,
            &WriteOp::Txn {
                puts: vec![
                    ("/f/a".into(), "3".into()),
                    ("/f/b".into(), "2".into()),
                    ("/f/a/y".into(), "1".into()),
                ],
                delete: Some("/f/ab".into()),
            },
        )
        .await;
        all.extend(ev);
        let (_, ev) = write(&cluster, leader, &WriteOp::Delete { key: "/f/a".into() }).await;
        all.extend(ev);
        let last = all.last().unwrap().revision;
        assert!(r < last);

        type KeyFilter = Box<dyn Fn(&[u8]) -> bool>;
        let cases: [(&str, &Recording, KeyFilter); 4] = [
            (
                "the single key /f/a",
                &single,
                Box::new(|k: &[u8]| k == b"/f/a"),
            ),
            (
                "the prefix /f/a",
                &prefix,
                Box::new(|k: &[u8]| k.starts_with(b"/f/a")),
            ),
            (
                "the range [/f/a, /f/a/m)",
                &explicit,
                Box::new(|k: &[u8]| k >= &b"/f/a"[..] && k < &b"/f/a/m"[..]),
            ),
            (
                "every key from /f/a/m",
                &from_on,
                Box::new(|k: &[u8]| k >= &b"/f/a/m"[..]),
            ),
        ];
        for (what, rec, contains) in cases {
            let expected: Vec<WatchedEvent> =
                all.iter().filter(|e| contains(&e.key)).cloned().collect();
            assert!(!expected.is_empty());
            rec.wait_seen(last, T).await;
            let got: Vec<WatchedEvent> = rec.batches().into_iter().flat_map(|b| b.events).collect();
            assert_eq!(got, expected, "a watch on {what}");
            check_stream(&expected, start, &rec.batches())
                .unwrap_or_else(|v| panic!("{what}: {v}"));
        }
        // A prefix ending in 0xff bytes: the prefix end is computed over them.
        let high = Recording::start(
            &cluster,
            follower,
            pb::WatchRequest {
                key: Bytes::from_static(b"/g\xff"),
                range_end: Bytes::from_static(b"/h"),
                start_revision: last + 1,
                prev_kv: false,
                progress_interval_ms: 100,
            },
        )
        .await;
        let mut kv = cluster.kv(leader).await;
        let mut high_events = Vec::new();
        for k in [&b"/g\xff\xff"[..], b"/g\xff", b"/g\xfe", b"/h"] {
            let rev = kv
                .put(pb::PutRequest {
                    key: Bytes::copy_from_slice(k),
                    value: b("v"),
                    prev_kv: false,
                })
                .await
                .unwrap()
                .into_inner()
                .header
                .unwrap()
                .revision;
            high_events.push(WatchedEvent {
                revision: rev,
                key: k.to_vec(),
                kind: EventKind::Put,
                value: b"v".to_vec(),
            });
        }
        let end = high_events.last().unwrap().revision;
        high.wait_seen(end, T).await;
        let got: Vec<WatchedEvent> = high.batches().into_iter().flat_map(|b| b.events).collect();
        assert_eq!(got, high_events[..2].to_vec());
    })
    .await;
}

/// The replica's own newest revision (a serializable read, no round trip).
async fn local_revision(cluster: &Cluster, i: usize) -> i64 {
    cluster
        .kv(i)
        .await
        .range(pb::RangeRequest {
            key: b("/"),
            range_end: Bytes::from_static(&[0]),
            serializable: true,
            count_only: true,
            ..Default::default()
        })
        .await
        .expect("serializable range")
        .into_inner()
        .header
        .unwrap()
        .revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_from_a_future_revision_delivers_from_there() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let now = put(&cluster, leader, "/fu/0", "0").await;
        let start = now + 5;
        let rec = Recording::start(
            &cluster,
            follower,
            watch_request("/fu/", prefix_end("/fu/"), start, 100),
        )
        .await;
        let mut reference = Vec::new();
        for i in 1..=10 {
            let (k, v) = (format!("/fu/{}", i % 3), format!("v{i}"));
            let rev = put(&cluster, leader, &k, &v).await;
            reference.push(put_event(rev, &k, &v));
        }
        let last = reference.last().unwrap().revision;
        rec.wait_seen(last, T).await;
        let batches = rec.batches();
        check_stream(&reference, start, &batches).unwrap_or_else(|v| panic!("{v}"));
        let events: Vec<WatchedEvent> = batches.into_iter().flat_map(|b| b.events).collect();
        assert_eq!(events, reference[(start - now - 1) as usize..].to_vec());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_notifications_never_announce_a_revision_the_store_has_not_reached() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let now = put(&cluster, leader, "/fp/0", "0").await;
        // A response header is "the store revision the answer reflects": a
        // notification for a watch that starts ahead must not claim a revision
        // the store has not reached.
        let rec = Recording::start(
            &cluster,
            follower,
            watch_request("/fp/", prefix_end("/fp/"), now + 5, 100),
        )
        .await;
        // While the replica is behind the watch's start, it stays quiet: it
        // cannot say "delivered up to start - 1", and announcing its own lower
        // revision would move a resumed watcher backwards.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(local_revision(&cluster, follower).await, now);
        let early: Vec<i64> = rec.responses().iter().skip(1).map(revision_of).collect();
        assert!(early.is_empty(), "progress notifications at {early:?} before the replica reached the start");
        // Once the store passes the start, notifications come, never above it.
        let mut last = now;
        for i in 1..=6 {
            last = put(&cluster, leader, &format!("/other/{i}"), "x").await;
        }
        let deadline = Instant::now() + T;
        while rec.len() < 3 {
            assert!(Instant::now() < deadline, "no progress notifications");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let notes: Vec<i64> = rec.responses().iter().skip(1).map(revision_of).collect();
        assert!(
            notes.iter().all(|r| *r <= last && *r >= now + 4),
            "progress notifications at revisions {notes:?}; the store reached {last}, the watch starts at {}",
            now + 5
        );
    })
    .await;
}

/// A watch on follower `f` stays open while `f` is cut off from the others and
/// they write past what the leader keeps in its log, so that `f` catches up by
/// installing a snapshot. Returns the recording (after `f` caught up), the
/// reference history and the last revision.
async fn watch_across_a_snapshot_install(
    history_revisions: usize,
) -> (Cluster, usize, Recording, Vec<WatchedEvent>, i64) {
    let mut cluster = Cluster::start_with(Options {
        proxied: true,
        snapshot_every: 50,
        history_revisions,
        ..Default::default()
    })
    .await;
    let leader = cluster.leader(T).await;
    let f = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let rec = Recording::start(&cluster, f, watch_request("/i/", prefix_end("/i/"), 2, 100)).await;
    let mut early = 0;
    let mut acks = Vec::new();
    for i in 0..10 {
        let op = WriteOp::Put {
            key: format!("/i/early/{i}"),
            value: "e".into(),
        };
        let (revision, events) = write(&cluster, other, &op).await;
        acks.push((op, Ack::Ok { revision, events }));
        early = revision;
    }
    rec.wait_seen(early, T).await;

    cluster.isolate(f, true);
    let applied_before = cluster.status(f).await.unwrap().applied_index;
    let load = Load::start(
        "/i/",
        vec![cluster.endpoint(leader), cluster.endpoint(other)],
        2,
    );
    load.wait_ok(300, T).await;
    acks.extend(load.finish().await);
    // The log the cut-off follower would need is gone from the others.
    let deadline = Instant::now() + T;
    loop {
        let mut all_purged = true;
        for i in [leader, other] {
            let st = cluster.status(i).await;
            all_purged &= st.is_some_and(|s| s.purged_index > applied_before);
        }
        if all_purged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the others never purged their logs past {applied_before}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.isolate(f, false);
    let (last, _) = cluster.wait_converged(T).await;
    let log = std::fs::read_to_string(&cluster.replicas[f].log).unwrap_or_default();
    assert!(
        log.contains("installed snapshot"),
        "the cut-off follower caught up without a snapshot: {}",
        cluster.log_tail(f)
    );
    // Nothing failed over: every write was acknowledged, and they are the history.
    let reference = history_from_acks(&acks);
    assert_eq!(reference.last().unwrap().revision, last);
    assert_history_matches_contents(&cluster, f, "/i/", &reference).await;
    (cluster, f, rec, reference, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_on_a_follower_that_catches_up_by_snapshot_misses_nothing() {
    with_timeout(async {
        let (_cluster, _, rec, reference, last) = watch_across_a_snapshot_install(20_000).await;
        rec.wait_seen(last, T).await;
        assert_eq!(rec.ended(), None);
        check_stream(&reference, 2, &rec.batches()).unwrap_or_else(|v| panic!("{v}"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_left_behind_by_a_snapshot_install_is_told_it_was_compacted() {
    with_timeout(async {
        // Only 50 revisions of history: the snapshot's window starts well
        // after what the cut-off follower's watcher had seen.
        let (_cluster, _, rec, reference, last) = watch_across_a_snapshot_install(50).await;
        let how = rec.wait_ended(T).await;
        assert_eq!(how, "the stream ended");
        let mut resps = rec.responses();
        let compact = resps.pop().unwrap();
        assert!(
            compact.compact_revision > 0 && compact.events.is_empty(),
            "the stream ended without a compaction: {compact:?}"
        );
        assert!(compact.compact_revision < last);
        let batches = batches(&resps);
        assert!(seen(&batches) < compact.compact_revision);
        check_stream(&reference, 2, &batches).unwrap_or_else(|v| panic!("{v}"));
    })
    .await;
}
