//! Tests of the watch cache without a store: the window, selector transitions, the
//! watcher index, and a resource cache fed synthetic store batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_api::registry::ResourceInfo;
use rkube_api::selectors::{FieldSelector, LabelSelector};
use rkube_store::{Event, EventKind, KeyValue, WatchBatch};
use serde_json::json;
use tokio_stream::StreamExt as _;

use super::dispatch::{Watcher, Watchers};
use super::window::{Revisioned, Window};
use super::*;

fn pods() -> &'static ResourceInfo {
    rkube_api::registry::lookup("", "v1", "pods").expect("pods are registered")
}

fn key(ns: &str, name: &str) -> Bytes {
    Bytes::from(pods().key(ns, name))
}

/// A pod in `ns` with labels `app=<app>` (none when empty) bound to `node` ("" unbound).
fn pod_json(ns: &str, name: &str, app: &str, node: &str) -> serde_json::Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    });
    if !app.is_empty() {
        p["metadata"]["labels"] = json!({ "app": app });
    }
    if !node.is_empty() {
        p["spec"]["nodeName"] = json!(node);
    }
    p
}

fn pod(ns: &str, name: &str, app: &str, node: &str, rev: i64) -> Object {
    let stored = serde_json::to_vec(&pod_json(ns, name, app, node)).unwrap();
    Object::from_stored(pods(), key(ns, name), &stored, rev).unwrap()
}

fn filter(ns: Option<&str>, labels: &str, fields: &str) -> Filter {
    Filter::new(
        pods(),
        ns,
        LabelSelector::parse(labels).unwrap(),
        FieldSelector::parse(fields)
            .unwrap()
            .for_resource(pods())
            .unwrap(),
    )
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the test finished in time")
}

// The window.

struct Ev(i64);

impl Revisioned for Ev {
    fn revision(&self) -> i64 {
        self.0
    }
}

#[test]
fn the_window_serves_watches_from_its_floor_on_and_refuses_older_ones() {
    /// (capacity, floor, pushed revisions, watch after, expected revisions or None)
    type Case = (usize, i64, &'static [i64], i64, Option<&'static [i64]>);
    let cases: &[Case] = &[
        (4, 10, &[], 10, Some(&[])),
        (4, 10, &[], 9, None),
        (4, 10, &[11, 12, 13], 10, Some(&[11, 12, 13])),
        (4, 10, &[11, 12, 13], 12, Some(&[13])),
        (4, 10, &[11, 12, 13], 13, Some(&[])),
        // Full: 11 and 12 pushed out, the floor is 12.
        (
            4,
            10,
            &[11, 12, 13, 14, 15, 16],
            12,
            Some(&[13, 14, 15, 16]),
        ),
        (4, 10, &[11, 12, 13, 14, 15, 16], 11, None),
        // Two events of revision 12: while both are held a watch after 11 is served;
        // once the first is pushed out the floor is 12, so a watch after 11 (which
        // needs both) is refused and one after 12 skips the other.
        (3, 10, &[11, 12, 12, 13], 11, Some(&[12, 12, 13])),
        (2, 10, &[11, 12, 12, 13], 11, None),
        (2, 10, &[11, 12, 12, 13], 12, Some(&[13])),
        // A watch in the future gets nothing yet.
        (4, 10, &[11], 20, Some(&[])),
    ];
    for (capacity, floor, pushed, after, expected) in cases {
        let mut w = Window::new(*capacity, *floor);
        for r in *pushed {
            w.push(Ev(*r));
        }
        let got = w
            .since(*after)
            .map(|it| it.map(|e| e.0).collect::<Vec<_>>());
        assert_eq!(
            got.as_deref(),
            *expected,
            "capacity {capacity}, floor {floor}, pushed {pushed:?}, after {after}"
        );
    }
}

// Selector transitions.

#[test]
fn selector_transitions_are_added_and_deleted_as_kubernetes_reports_them() {
    use EventType::*;
    let f = filter(Some("a"), "app=web", "");
    // (previous app label or None for a create, new app label, deleted, expected)
    let cases: &[(Option<&str>, &str, bool, Option<EventType>)] = &[
        (None, "web", false, Some(Added)),
        (None, "db", false, None),
        (Some("web"), "web", false, Some(Modified)),
        (Some("db"), "web", false, Some(Added)),
        (Some("web"), "db", false, Some(Deleted)),
        (Some("db"), "db", false, None),
        (None, "web", true, Some(Deleted)),
        (None, "db", true, None),
    ];
    for (prev, now, deleted, expected) in cases {
        let object = pod("a", "p", now, "", 5);
        let prev = prev.map(|app| pod("a", "p", app, "", 4));
        let change = if *deleted {
            Change::Delete { object: &object }
        } else {
            Change::Put {
                object: &object,
                prev: prev.as_ref(),
            }
        };
        assert_eq!(
            transition(&f, &change),
            *expected,
            "prev {prev:?}, now {now}, deleted {deleted}",
            prev = prev.as_ref().map(|p| p.labels().clone())
        );
    }
}

#[test]
fn filters_select_by_namespace_key_labels_and_fields() {
    let o = pod("a", "p", "web", "node-1", 3);
    let cases = [
        (filter(None, "", ""), true),
        (filter(Some("a"), "", ""), true),
        (filter(Some("ab"), "", ""), false),
        (filter(Some("b"), "", ""), false),
        (filter(None, "app=web", ""), true),
        (filter(None, "app!=web", ""), false),
        (filter(None, "", "spec.nodeName=node-1"), true),
        (filter(None, "", "spec.nodeName=node-2"), false),
        (filter(None, "", "spec.nodeName="), false),
        (
            filter(None, "", "metadata.name=p,spec.nodeName!=node-2"),
            true,
        ),
    ];
    for (i, (f, expected)) in cases.into_iter().enumerate() {
        assert_eq!(f.matches(&o), expected, "case {i}: {f:?}");
    }
}

// The watcher index.

fn watcher(
    f: Filter,
    buffer: usize,
) -> (
    Watcher,
    tokio::sync::mpsc::Receiver<Result<WatchEvent, Status>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(buffer);
    (
        Watcher {
            filter: f,
            start: 0,
            bookmarks: true,
            tx,
            ended: Default::default(),
            last_sent: Instant::now(),
        },
        rx,
    )
}

fn drain(rx: &mut tokio::sync::mpsc::Receiver<Result<WatchEvent, Status>>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(match ev {
            Ok(WatchEvent::Bookmark { revision, .. }) => format!("BOOKMARK {revision}"),
            Ok(ev) => {
                let (kind, o) = ev.object().unwrap();
                format!(
                    "{} {}@{}",
                    kind.as_str(),
                    o.name(),
                    o.field(dispatch::NODE_FIELD)
                )
            }
            Err(s) => format!("ERROR {}", s.code),
        });
    }
    out
}

#[test]
fn node_indexed_watchers_see_exactly_their_nodes_pods_including_moves() {
    let mut ws = Watchers::default();
    let specs = [
        ("n1", filter(None, "", "spec.nodeName=node-1")),
        ("n2", filter(None, "", "spec.nodeName=node-2")),
        ("unbound", filter(None, "", "spec.nodeName=")),
        ("ns-a", filter(Some("a"), "", "")),
        ("all", filter(None, "", "")),
        ("web", filter(None, "app=web", "")),
    ];
    let mut rxs = Vec::new();
    for (i, (_, f)) in specs.iter().enumerate() {
        let (w, rx) = watcher(f.clone(), 16);
        ws.insert(i as u64, w);
        rxs.push(rx);
    }
    assert_eq!(ws.buckets(), (2, 1, 3), "(unindexed, namespace, node)");
    // (namespace, previous node or None for a create, new node, app label)
    let changes: &[(&str, Option<&str>, &str, &str)] = &[
        ("a", None, "", "web"),              // created unbound
        ("a", Some(""), "node-1", "web"),    // scheduled to node-1
        ("a", Some("node-1"), "node-2", ""), // moved to node-2, label dropped
        ("b", None, "node-2", ""),           // another namespace, on node-2
    ];
    for (rev, (ns, prev, node, app)) in changes.iter().enumerate() {
        let rev = rev as i64 + 10;
        let name = format!("p{}", if *ns == "b" { 2 } else { 1 });
        let object = Arc::new(pod(ns, &name, app, node, rev));
        let prev_obj = prev.map(|p| pod(ns, &name, "web", p, rev - 1));
        let change = Change::Put {
            object: &object,
            prev: prev_obj.as_ref(),
        };
        ws.dispatch(rev, ns, &change, &object, Instant::now(), |_| {
            unreachable!("no buffer is full")
        });
    }
    let got: Vec<(&str, Vec<String>)> = specs
        .iter()
        .zip(rxs.iter_mut())
        .map(|((name, _), rx)| (*name, drain(rx)))
        .collect();
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("n1", vec!["ADDED p1@node-1", "DELETED p1@node-2"]),
        ("n2", vec!["ADDED p1@node-2", "ADDED p2@node-2"]),
        ("unbound", vec!["ADDED p1@", "DELETED p1@node-1"]),
        (
            "ns-a",
            vec!["ADDED p1@", "MODIFIED p1@node-1", "MODIFIED p1@node-2"],
        ),
        (
            "all",
            vec![
                "ADDED p1@",
                "MODIFIED p1@node-1",
                "MODIFIED p1@node-2",
                "ADDED p2@node-2",
            ],
        ),
        (
            "web",
            vec!["ADDED p1@", "MODIFIED p1@node-1", "DELETED p1@node-2"],
        ),
    ];
    for ((name, got), (_, want)) in got.iter().zip(&expected) {
        assert_eq!(got, want, "watcher {name}");
    }
}

#[test]
fn ten_thousand_node_watchers_cost_one_offer_per_change() {
    let mut ws = Watchers::default();
    let mut rxs = Vec::new();
    for i in 0..10_000 {
        let (w, rx) = watcher(filter(None, "", &format!("spec.nodeName=node-{i}")), 4);
        ws.insert(i, w);
        rxs.push(rx);
    }
    let object = Arc::new(pod("a", "p", "", "node-4242", 7));
    let change = Change::Put {
        object: &object,
        prev: None,
    };
    let done = ws.dispatch(7, "a", &change, &object, Instant::now(), |_| unreachable!());
    assert_eq!(done.sent, 1);
    assert_eq!(drain(&mut rxs[4242]), ["ADDED p@node-4242"]);
    assert!(drain(&mut rxs[4243]).is_empty());
}

#[test]
fn a_watcher_with_a_full_buffer_is_ended_with_410_after_what_it_holds() {
    let mut ws = Watchers::default();
    let (slow, mut slow_rx) = watcher(filter(None, "", ""), 2);
    let slow_end = slow.ended.clone();
    let (fast, mut fast_rx) = watcher(filter(None, "", ""), 2);
    ws.insert(1, slow);
    ws.insert(2, fast);
    let mut slow_ended = 0;
    for rev in 1..=3 {
        let object = Arc::new(pod("a", &format!("p{rev}"), "", "", rev));
        let change = Change::Put {
            object: &object,
            prev: None,
        };
        let done = ws.dispatch(rev, "a", &change, &object, Instant::now(), |_| {
            Status::expired("too old resource version: slow")
        });
        slow_ended += done.slow;
        // The fast one keeps reading.
        assert_eq!(drain(&mut fast_rx).len(), 1, "revision {rev}");
    }
    assert_eq!(slow_ended, 1);
    assert_eq!(ws.len(), 1, "the slow watcher is gone");
    assert_eq!(drain(&mut slow_rx), ["ADDED p1@", "ADDED p2@"]);
    assert!(slow_rx.is_closed());
    assert_eq!(slow_end.lock().unwrap().as_ref().map(|s| s.code), Some(410));
}

#[test]
fn bookmarks_go_to_idle_watchers_that_asked_and_never_before_their_start() {
    let mut ws = Watchers::default();
    let now = Instant::now();
    let idle = Duration::from_secs(10);
    // (asked for bookmarks, idle for, start revision, expect a bookmark at 50)
    let cases = [
        (true, 11, 0, true),
        (false, 11, 0, false),
        (true, 5, 0, false),
        (true, 11, 51, true),
        (true, 11, 52, false),
    ];
    let mut rxs = Vec::new();
    for (i, (asked, idle_for, start, _)) in cases.iter().enumerate() {
        let (mut w, rx) = watcher(filter(None, "", ""), 4);
        w.bookmarks = *asked;
        w.start = *start;
        w.last_sent = now - Duration::from_secs(*idle_for);
        ws.insert(i as u64, w);
        rxs.push(rx);
    }
    ws.bookmark_idle(50, idle, now);
    for (i, (case, rx)) in cases.iter().zip(rxs.iter_mut()).enumerate() {
        let expected: &[&str] = if case.3 { &["BOOKMARK 50"] } else { &[] };
        assert_eq!(drain(rx), expected, "case {i}: {case:?}");
    }
}

#[test]
fn namespaces_come_from_the_key() {
    assert_eq!(
        namespace_of(pods(), b"/registry/pods/kube-system/x"),
        "kube-system"
    );
    assert_eq!(namespace_of(pods(), b"/registry/pods/"), "");
    let ns = rkube_api::registry::lookup("", "v1", "namespaces").unwrap();
    assert_eq!(namespace_of(ns, b"/registry/namespaces/default"), "");
}

// Objects.

#[test]
fn an_object_carries_its_resource_version_and_renders_its_watch_lines_once() {
    let o = pod("a", "p", "web", "node-1", 42);
    let v: serde_json::Value = serde_json::from_slice(o.json()).unwrap();
    assert_eq!(v["metadata"]["resourceVersion"], "42");
    assert_eq!(o.revision(), 42);
    assert_eq!(o.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(o.field("spec.nodeName"), "node-1");
    let line = o.rest_line(EventType::Modified);
    assert!(line.ends_with(b"}\n"));
    let ev: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"], v);
    // The second call shares the first one's bytes.
    assert_eq!(
        o.rest_line(EventType::Modified).as_ptr(),
        line.as_ptr(),
        "rendered once"
    );
    let gone = o.at_revision(pods(), 43);
    assert_eq!(gone.value()["metadata"]["resourceVersion"], "43");
    assert_eq!(gone.labels(), o.labels());
}

// A resource cache fed synthetic store batches.

fn cache(config: CacheConfig, revision: i64, objects: Vec<Object>) -> Arc<ResourceCache> {
    let metrics = CacheMetrics::default();
    let info = *pods();
    Arc::new(ResourceCache {
        info,
        state: std::sync::Mutex::new(State {
            revision,
            objects: objects
                .into_iter()
                .map(|o| (o.key().clone(), Arc::new(o)))
                .collect(),
            window: Window::new(config.window_events, revision),
            watchers: Watchers::default(),
        }),
        metrics: ResourceMetrics::new(&metrics, &info),
        config,
        next_id: std::sync::atomic::AtomicU64::new(1),
    })
}

fn put(ns: &str, name: &str, app: &str, node: &str, rev: i64) -> Event {
    Event {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key(ns, name),
            value: Bytes::from(serde_json::to_vec(&pod_json(ns, name, app, node)).unwrap()),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        },
        prev_kv: None,
    }
}

fn delete(ns: &str, name: &str, rev: i64) -> Event {
    Event {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: key(ns, name),
            value: Bytes::new(),
            create_revision: 0,
            mod_revision: rev,
            version: 0,
        },
        prev_kv: None,
    }
}

fn batch(events: Vec<Event>) -> WatchBatch {
    let revision = events.iter().map(|e| e.kv.mod_revision).max().unwrap_or(0);
    WatchBatch { events, revision }
}

/// The events of a stream so far, rendered short.
async fn take(s: &mut WatchStream, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ev = within(s.next()).await.expect("the stream is open");
        out.push(match ev {
            Ok(WatchEvent::Bookmark {
                revision,
                initial_events_end,
            }) => format!(
                "BOOKMARK {revision}{}",
                if initial_events_end { " end" } else { "" }
            ),
            Ok(ev) => {
                let (kind, o) = ev.object().unwrap();
                format!("{} {}@{}", kind.as_str(), o.name(), o.revision())
            }
            Err(s) => format!("ERROR {} {}", s.code, s.message),
        });
    }
    out
}

#[tokio::test]
async fn a_watch_starts_from_the_current_objects_or_resumes_inside_the_window() {
    within(async {
        let c = cache(
            CacheConfig {
                window_events: 3,
                ..Default::default()
            },
            10,
            vec![pod("a", "x", "web", "", 9), pod("b", "y", "web", "", 10)],
        );
        let hour = Duration::from_secs(3600);
        let mut initial = c
            .watch(Start::InitialState, filter(Some("a"), "", ""), false, hour)
            .unwrap();
        assert_eq!(
            take(&mut initial, 2).await,
            ["ADDED x@9", "BOOKMARK 10 end"]
        );
        c.apply(batch(vec![put("a", "x", "db", "", 11)]));
        c.apply(batch(vec![put("a", "z", "web", "", 12)]));
        c.apply(batch(vec![delete("a", "x", 13)]));
        c.apply(batch(vec![put("b", "y", "db", "", 14)]));
        assert_eq!(
            take(&mut initial, 3).await,
            ["MODIFIED x@11", "ADDED z@12", "DELETED x@13"]
        );
        // The window holds 12, 13, 14: from 11 on it replays, with transitions for
        // the selector app=web.
        let web = filter(None, "app=web", "");
        let mut resumed = c.watch(Start::After(11), web.clone(), false, hour).unwrap();
        assert_eq!(take(&mut resumed, 2).await, ["ADDED z@12", "DELETED y@14"]);
        assert_eq!(
            c.watch(Start::After(10), web.clone(), false, hour).err(),
            Some(TooOld {
                requested: 10,
                floor: 11
            })
        );
        // A watch ahead of the cache gets what comes after its start only.
        let mut ahead = c
            .watch(Start::After(15), filter(None, "", ""), false, hour)
            .unwrap();
        c.apply(batch(vec![put("a", "w", "", "", 15)]));
        c.apply(batch(vec![put("a", "w", "", "", 16)]));
        assert_eq!(take(&mut ahead, 1).await, ["MODIFIED w@16"]);
        // A list at the cache's revision, in key order, with the page's end.
        let (items, rev, next) = c.list(&filter(None, "", ""), 2);
        let names: Vec<&str> = items.iter().map(|o| o.name()).collect();
        assert_eq!((names, rev), (vec!["w", "z"], 16));
        assert_eq!(next.as_deref(), Some(&key("a", "z")[..]));
        let (items, _, next) = c.list(&filter(None, "", ""), 0);
        assert_eq!((items.len(), next), (3, None));
    })
    .await;
}

#[tokio::test]
async fn a_slow_watcher_is_ended_with_410_while_the_others_carry_on() {
    within(async {
        let c = cache(
            CacheConfig {
                watcher_buffer: 2,
                ..Default::default()
            },
            1,
            vec![],
        );
        let hour = Duration::from_secs(3600);
        let mut slow = c
            .watch(Start::After(1), filter(None, "", ""), false, hour)
            .unwrap();
        let mut fast = c
            .watch(Start::After(1), filter(None, "", ""), false, hour)
            .unwrap();
        for rev in 2..=5 {
            c.apply(batch(vec![put("a", &format!("p{rev}"), "", "", rev)]));
            assert_eq!(take(&mut fast, 1).await, [format!("ADDED p{rev}@{rev}")]);
        }
        let got = take(&mut slow, 3).await;
        assert_eq!(&got[..2], ["ADDED p2@2", "ADDED p3@3"]);
        assert!(
            got[2].starts_with("ERROR 410 too old resource version"),
            "{got:?}"
        );
        assert!(within(slow.next()).await.is_none(), "the slow stream ended");
        assert_eq!(c.metrics.slow_watchers_terminated.get(), 1);
        assert_eq!(c.lock().watchers.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_dropped_stream_unregisters_its_watcher_and_a_deadline_ends_a_stream() {
    within(async {
        let c = cache(CacheConfig::default(), 1, vec![]);
        let s = c
            .watch(
                Start::After(1),
                filter(None, "", ""),
                false,
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(c.metrics.watchers.get(), 1);
        drop(s);
        assert_eq!((c.lock().watchers.len(), c.metrics.watchers.get()), (0, 0));
        let mut short = c
            .watch(
                Start::After(1),
                filter(None, "", ""),
                false,
                Duration::from_millis(50),
            )
            .unwrap();
        assert!(short.next().await.is_none(), "the deadline ends the stream");
    })
    .await;
}

#[tokio::test]
async fn prepended_events_go_out_first() {
    within(async {
        let c = cache(CacheConfig::default(), 1, vec![]);
        let mut s = c
            .watch(
                Start::After(5),
                filter(None, "", ""),
                false,
                Duration::from_secs(60),
            )
            .unwrap();
        s.prepend([
            WatchEvent::Added(Arc::new(pod("a", "q", "", "", 5))),
            WatchEvent::Bookmark {
                revision: 5,
                initial_events_end: true,
            },
        ]);
        c.apply(batch(vec![put("a", "r", "", "", 6)]));
        assert_eq!(
            take(&mut s, 3).await,
            ["ADDED q@5", "BOOKMARK 5 end", "ADDED r@6"]
        );
    })
    .await;
}
