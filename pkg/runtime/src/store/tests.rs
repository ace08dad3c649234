use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::*;

fn pod(ns: &str, name: &str, rv: u64, node: &str, labels: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            resource_version: Some(rv.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .filter(|l| !l.is_empty()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()).filter(|n: &String| !n.is_empty()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A compact view of a change: kind, key, resourceVersion.
fn summary(changes: &[Change<Pod>]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            let kind = match c {
                Change::Added(_) => "added",
                Change::Updated { .. } => "updated",
                Change::Deleted(_) => "deleted",
            };
            format!(
                "{kind} {} @{}",
                c.key(),
                resource_version(c.object().as_ref())
            )
        })
        .collect()
}

fn list(w: &mut Writer<Pod>, pods: Vec<Pod>, rv: &str) -> Vec<String> {
    let mut out = summary(&w.apply(Event::Init));
    for p in pods {
        out.extend(summary(&w.apply(Event::InitApply(p))));
    }
    out.extend(summary(&w.apply(Event::InitDone {
        resource_version: rv.into(),
    })));
    out
}

#[test]
fn a_first_list_adds_everything_and_marks_the_store_synced() {
    let mut w = Writer::new();
    let store = w.store();
    assert!(!store.has_synced());
    let got = list(
        &mut w,
        vec![pod("a", "p2", 5, "", &[]), pod("a", "p1", 4, "", &[])],
        "9",
    );
    assert_eq!(got, ["added a/p1 @4", "added a/p2 @5"]);
    assert!(store.has_synced());
    assert_eq!(store.snapshot().resource_version(), "9");
    assert_eq!(store.len(), 2);
}

#[test]
fn nothing_is_visible_until_a_list_is_complete() {
    let mut w = Writer::new();
    let store = w.store();
    w.apply(Event::Init);
    w.apply(Event::InitApply(pod("a", "p1", 4, "", &[])));
    assert!(store.is_empty());
    assert!(!store.has_synced());
}

#[test]
fn a_relist_reports_only_what_changed() {
    let mut w = Writer::new();
    list(
        &mut w,
        vec![
            pod("a", "same", 1, "", &[]),
            pod("a", "changed", 2, "", &[]),
            pod("a", "gone", 3, "", &[]),
        ],
        "3",
    );
    let got = list(
        &mut w,
        vec![
            pod("a", "same", 1, "", &[]),
            pod("a", "changed", 7, "", &[]),
            pod("a", "new", 8, "", &[]),
        ],
        "8",
    );
    assert_eq!(
        got,
        [
            "deleted a/gone @3",
            "updated a/changed @7",
            "added a/new @8"
        ]
    );
    let keys: Vec<_> = w
        .store()
        .snapshot()
        .keys()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["a/changed", "a/new", "a/same"]);
}

#[test]
fn watch_events_apply_once_and_repeats_are_not_changes() {
    // (event, resulting change summaries)
    let mut w = Writer::new();
    list(&mut w, vec![], "1");
    let cases: Vec<(Event<Pod>, Vec<&str>)> = vec![
        (
            Event::Apply(pod("a", "p", 2, "", &[])),
            vec!["added a/p @2"],
        ),
        (Event::Apply(pod("a", "p", 2, "", &[])), vec![]),
        (
            Event::Apply(pod("a", "p", 3, "", &[])),
            vec!["updated a/p @3"],
        ),
        (
            Event::Bookmark {
                resource_version: "10".into(),
            },
            vec![],
        ),
        (
            Event::Delete(pod("a", "p", 11, "", &[])),
            vec!["deleted a/p @11"],
        ),
        (Event::Delete(pod("a", "p", 11, "", &[])), vec![]),
    ];
    for (i, (ev, want)) in cases.into_iter().enumerate() {
        assert_eq!(summary(&w.apply(ev)), want, "case {i}");
    }
    assert_eq!(w.store().snapshot().resource_version(), "11");
}

#[test]
fn indexes_follow_objects_through_updates_and_deletes() {
    let mut w = Writer::new();
    let store = w.store();
    store.add_index(INDEX_NODE_NAME, index_pod_node_name());
    let names = |v: Vec<Arc<Pod>>| -> Vec<String> {
        v.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    };
    list(
        &mut w,
        vec![
            pod("a", "p1", 1, "n1", &[("app", "web")]),
            pod("a", "p2", 2, "n2", &[("app", "web")]),
            pod("b", "p3", 3, "", &[("app", "db")]),
        ],
        "3",
    );
    assert_eq!(names(store.by_index(INDEX_NODE_NAME, "n1")), ["p1"]);
    assert_eq!(names(store.by_index(INDEX_NODE_NAME, "")), ["p3"]);
    assert_eq!(names(store.by_index(INDEX_LABEL, "app=web")), ["p1", "p2"]);
    assert_eq!(names(store.by_index(INDEX_NAMESPACE, "b")), ["p3"]);

    let before = store.snapshot();
    w.apply(Event::Apply(pod("a", "p1", 4, "n2", &[("app", "db")])));
    assert_eq!(
        names(store.by_index(INDEX_NODE_NAME, "n1")),
        Vec::<String>::new()
    );
    assert_eq!(names(store.by_index(INDEX_NODE_NAME, "n2")), ["p1", "p2"]);
    assert_eq!(names(store.by_index(INDEX_LABEL, "app=web")), ["p2"]);
    assert_eq!(names(store.by_index(INDEX_LABEL, "app=db")), ["p1", "p3"]);
    w.apply(Event::Delete(pod("a", "p2", 5, "n2", &[("app", "web")])));
    assert_eq!(names(store.by_index(INDEX_NODE_NAME, "n2")), ["p1"]);
    assert!(store.by_index(INDEX_LABEL, "app=web").is_empty());
    // The snapshot taken before did not move.
    assert_eq!(names(before.by_index(INDEX_NODE_NAME, "n1")), ["p1"]);
    assert_eq!(before.len(), 3);
    assert!(store.by_index("no-such-index", "x").is_empty());
}

#[test]
fn owner_uid_and_custom_indexes_cover_existing_objects_too() {
    let mut w = Writer::new();
    let store = w.store();
    let mut owned = pod("a", "child", 1, "", &[]);
    owned.metadata.owner_references = Some(vec![OwnerReference {
        uid: "rs-uid".into(),
        ..Default::default()
    }]);
    list(&mut w, vec![owned, pod("a", "loner", 2, "", &[])], "2");
    assert_eq!(store.by_index(INDEX_OWNER, "rs-uid").len(), 1);
    // Added after the objects: computed over them at once.
    store.add_index(
        "name-length",
        Arc::new(|p: &Pod| vec![p.metadata.name.as_ref().unwrap().len().to_string()]),
    );
    assert_eq!(store.by_index("name-length", "5").len(), 2);
    w.apply(Event::Apply(pod("a", "x", 3, "", &[])));
    assert_eq!(store.by_index("name-length", "1").len(), 1);
}

#[tokio::test]
async fn wait_synced_returns_once_a_list_completes() {
    let mut w: Writer<Pod> = Writer::new();
    let store = w.store();
    let waiter = tokio::spawn(async move { store.wait_synced().await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    w.apply(Event::Init);
    w.apply(Event::InitDone {
        resource_version: "1".into(),
    });
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("synced")
        .unwrap();
}
