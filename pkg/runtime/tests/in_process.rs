//! The runtime against a real apiserver replica running in the test process: watcher and
//! reflector across a compaction, shared informers, the controller loop, events, leases.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event as KubeEvent, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{Api, DeleteParams, ListParams, WriteParams};
use rkube_runtime::store::{Change, Writer};
use rkube_runtime::watcher::{self, Watcher};
use rkube_runtime::{
    Action, Controller, EventType, InformerFactory, LeaderElector, LeaseConfig, ObjectKey,
    Recorder, Reporter, Selection,
};
use support::{eventually, TestApi};
use tokio_util::sync::CancellationToken;

fn cm(name: &str, data: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), data.to_string())])),
        ..Default::default()
    }
}

/// What the server holds now: name → resourceVersion.
async fn server_state(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap(),
                c.metadata.resource_version.unwrap(),
            )
        })
        .collect()
}

/// Records every change a writer reports, and checks each is new: per object,
/// resourceVersions strictly increase and none is delivered twice.
#[derive(Default)]
struct Ledger {
    seen: HashMap<String, Vec<(char, u64)>>,
    inits: usize,
}

impl Ledger {
    fn record(&mut self, changes: &[Change<ConfigMap>]) {
        for c in changes {
            let kind = match c {
                Change::Added(_) => 'A',
                Change::Updated { .. } => 'U',
                Change::Deleted(_) => 'D',
            };
            let obj = c.object();
            let name = obj.metadata.name.clone().unwrap();
            let rv: u64 = obj
                .metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse()
                .unwrap();
            let history = self.seen.entry(name.clone()).or_default();
            if let Some(&(last_kind, last_rv)) = history.last() {
                assert!(
                    rv > last_rv || (kind == 'D' && last_kind != 'D'),
                    "{name}: {kind}@{rv} after {last_kind}@{last_rv} (delivered twice or out of order)"
                );
                assert!(
                    !(kind == 'A' && last_kind != 'D'),
                    "{name}: added twice: {history:?}"
                );
            }
            history.push((kind, rv));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_delivers_every_change_once_across_a_compaction_and_relist() {
    let api_server = TestApi::start(50).await;
    let client = api_server.client();
    let api: Api<ConfigMap> = Api::namespaced(&client, "default");
    for i in 0..10 {
        api.create(&cm(&format!("cm-{i}"), "0"), &WriteParams::default())
            .await
            .unwrap();
    }

    // The watcher runs on its own task and hands each event over a channel of one: when
    // the test stops taking events, the watch stops being read and falls behind.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let mut w: Watcher<ConfigMap> = Watcher::new(
        client.clone(),
        watcher::Config {
            namespace: "default".into(),
            page_size: 4,
            ..watcher::Config::new()
        },
    );
    let pump = tokio::spawn(async move {
        loop {
            match w.step().await {
                Ok(ev) => {
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let mut writer = Writer::<ConfigMap>::new();
    let store = writer.store();
    let mut ledger = Ledger::default();
    let apply = |ev: watcher::Event<ConfigMap>, writer: &mut Writer<ConfigMap>, l: &mut Ledger| {
        if ev == watcher::Event::Init {
            l.inits += 1;
        }
        let changes = writer.apply(ev);
        l.record(&changes);
    };
    let take_until_in_sync = |want: BTreeMap<String, String>| {
        let store = store.clone();
        move || {
            let mut have: BTreeMap<String, String> = BTreeMap::new();
            for o in store.list() {
                have.insert(
                    o.metadata.name.clone().unwrap(),
                    o.metadata.resource_version.clone().unwrap(),
                );
            }
            have == want
        }
    };

    // Phase 1: the first list (paged), then live changes.
    let want = server_state(&api).await;
    let in_sync = take_until_in_sync(want);
    while !in_sync() {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        apply(ev, &mut writer, &mut ledger);
    }
    assert!(store.has_synced());
    api.patch(
        "cm-1",
        rkube_client::PatchType::Merge,
        &serde_json::json!({"data": {"v": "1"}}),
        &WriteParams::default(),
    )
    .await
    .unwrap();
    let want = server_state(&api).await;
    let in_sync = take_until_in_sync(want);
    while !in_sync() {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        apply(ev, &mut writer, &mut ledger);
    }
    assert_eq!(ledger.inits, 1);

    // Phase 2: nobody reads while far more than the 50-revision window is written.
    let big = "x".repeat(4096);
    let mut writes = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let (api, big) = (api.clone(), big.clone());
        writes.spawn(async move {
            for i in 0..150 {
                api.create(
                    &cm(&format!("bulk-{chunk}-{i}"), &big),
                    &WriteParams::default(),
                )
                .await
                .unwrap();
            }
        });
    }
    while writes.join_next().await.is_some() {}
    for i in 0..10 {
        api.patch(
            &format!("cm-{i}"),
            rkube_client::PatchType::Merge,
            &serde_json::json!({"data": {"v": "2"}}),
            &WriteParams::default(),
        )
        .await
        .unwrap();
    }
    api.delete("cm-5", &DeleteParams::default()).await.unwrap();

    // Phase 3: reading again finds the watch expired, relists, and catches up.
    let want = server_state(&api).await;
    let in_sync = take_until_in_sync(want.clone());
    while !in_sync() {
        let ev = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        apply(ev, &mut writer, &mut ledger);
    }
    assert!(
        ledger.inits >= 2,
        "the watch fell out of the window, so the watcher relisted"
    );
    for i in 0..10 {
        let name = format!("cm-{i}");
        let h = &ledger.seen[&name];
        assert_eq!(h.first().unwrap().0, 'A', "{name}: {h:?}");
        if i == 5 {
            assert_eq!(h.last().unwrap().0, 'D', "{name}: {h:?}");
            assert_eq!(h.iter().filter(|e| e.0 == 'D').count(), 1);
        } else {
            // Its newest version was delivered (once, by the ledger's own checks).
            assert_eq!(
                h.last().unwrap().1,
                want[&name].parse::<u64>().unwrap(),
                "{name}: {h:?}"
            );
        }
    }
    assert_eq!(
        ledger
            .seen
            .keys()
            .filter(|k| k.starts_with("bulk-"))
            .count(),
        1200
    );
    pump.abort();
    api_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn informers_are_shared_per_selection_and_late_handlers_miss_nothing() {
    let api_server = TestApi::start(10_000).await;
    let client = api_server.client();
    let api: Api<ConfigMap> = Api::namespaced(&client, "default");
    for i in 0..3 {
        let mut c = cm(&format!("c{i}"), "0");
        c.metadata.labels = Some(BTreeMap::from([(
            "tier".into(),
            if i == 0 { "a" } else { "b" }.into(),
        )]));
        api.create(&c, &WriteParams::default()).await.unwrap();
    }
    let factory = InformerFactory::new(client.clone());
    let all1 = factory.informer::<ConfigMap>(Selection::all());
    let all2 = factory.informer::<ConfigMap>(Selection::all());
    let tier_a = factory.informer::<ConfigMap>(Selection::all().labels("tier=a"));
    assert!(
        all1.ptr_eq(&all2),
        "one informer per resource and selection"
    );
    assert!(!all1.ptr_eq(&tier_a));
    let early = Arc::new(Mutex::new(Vec::new()));
    let e = early.clone();
    all1.add_handler(move |c| e.lock().unwrap().push(c.key().name));
    let shutdown = CancellationToken::new();
    factory.start(shutdown.clone());
    tokio::time::timeout(Duration::from_secs(20), factory.wait_for_sync())
        .await
        .unwrap();
    assert!(factory.has_synced());
    assert_eq!(
        tier_a.store().len(),
        1,
        "the label selector is applied by the server"
    );
    // An informer requested after start starts at once.
    let late_informer = factory.informer::<Secret>(Selection::all().namespace("default"));
    tokio::time::timeout(Duration::from_secs(20), late_informer.wait_synced())
        .await
        .unwrap();

    // A handler added now first hears of every cached object, then of changes.
    let late = Arc::new(Mutex::new(Vec::new()));
    let l = late.clone();
    all2.add_handler(move |c| l.lock().unwrap().push(c.key().name));
    let mut names: Vec<String> = late.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["c0", "c1", "c2"]);
    api.create(&cm("c3", "0"), &WriteParams::default())
        .await
        .unwrap();
    eventually("both handlers hear of c3", Duration::from_secs(10), || {
        let (e, l) = (early.clone(), late.clone());
        async move {
            e.lock().unwrap().iter().filter(|n| *n == "c3").count() == 1
                && l.lock().unwrap().iter().filter(|n| *n == "c3").count() == 1
        }
    })
    .await;
    assert_eq!(all1.lists(), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), factory.join())
        .await
        .unwrap();
    api_server.stop().await;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TestError(String);

#[derive(Default)]
struct Probe {
    running: Mutex<HashSet<ObjectKey>>,
    overlaps: Mutex<Vec<ObjectKey>>,
    runs: Mutex<HashMap<ObjectKey, usize>>,
    failed_once: Mutex<HashSet<ObjectKey>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_reconciles_changes_never_twice_at_once_and_retries_errors() {
    let api_server = TestApi::start(10_000).await;
    let client = api_server.client();
    let cms: Api<ConfigMap> = Api::namespaced(&client, "default");
    let secrets: Api<Secret> = Api::namespaced(&client, "default");
    let factory = InformerFactory::new(client.clone());
    let primary = factory.informer::<ConfigMap>(Selection::all().namespace("default"));
    let owned = factory.informer::<Secret>(Selection::all().namespace("default"));
    let controller = Controller::new("test-controller", &primary)
        .owns(&owned)
        .workers(4);
    let shutdown = CancellationToken::new();
    factory.start(shutdown.clone());
    let probe = Arc::new(Probe::default());
    let run = tokio::spawn(controller.run(
        |key: ObjectKey, p: Arc<Probe>| async move {
            if !p.running.lock().unwrap().insert(key.clone()) {
                p.overlaps.lock().unwrap().push(key.clone());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            p.running.lock().unwrap().remove(&key);
            *p.runs.lock().unwrap().entry(key.clone()).or_default() += 1;
            if key.name.starts_with("flaky") && p.failed_once.lock().unwrap().insert(key.clone()) {
                return Err(TestError("first attempt fails".into()));
            }
            if key.name.starts_with("panicky") && p.failed_once.lock().unwrap().insert(key.clone())
            {
                panic!("first attempt panics");
            }
            Ok(Action::await_change())
        },
        rkube_runtime::controller::retry_with_backoff,
        probe.clone(),
        shutdown.clone(),
    ));
    for i in 0..10 {
        cms.create(&cm(&format!("c{i}"), "0"), &WriteParams::default())
            .await
            .unwrap();
    }
    let owner = cms
        .create(&cm("flaky-owner", "0"), &WriteParams::default())
        .await
        .unwrap();
    cms.create(&cm("panicky", "0"), &WriteParams::default())
        .await
        .unwrap();
    // Rapid updates of one key while it may be reconciling.
    for v in 1..6 {
        cms.patch(
            "c0",
            rkube_client::PatchType::Merge,
            &serde_json::json!({"data": {"v": v.to_string()}}),
            &WriteParams::default(),
        )
        .await
        .unwrap();
    }
    eventually(
        "every object reconciled, the flaky and the panicking one twice",
        Duration::from_secs(20),
        || {
            let p = probe.clone();
            async move {
                let runs = p.runs.lock().unwrap();
                (0..10).all(|i| runs.contains_key(&ObjectKey::new("default", format!("c{i}"))))
                    && runs
                        .get(&ObjectKey::new("default", "flaky-owner"))
                        .copied()
                        .unwrap_or(0)
                        >= 2
                    && runs
                        .get(&ObjectKey::new("default", "panicky"))
                        .copied()
                        .unwrap_or(0)
                        >= 2
            }
        },
    )
    .await;
    // A change of an owned Secret wakes its owner.
    let before = probe.runs.lock().unwrap()[&ObjectKey::new("default", "flaky-owner")];
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("child".into()),
            namespace: Some("default".into()),
            owner_references: Some(vec![rkube_runtime::object::controller_reference(&owner)]),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets
        .create(&secret, &WriteParams::default())
        .await
        .unwrap();
    eventually("the owner is reconciled for its child's change", Duration::from_secs(10), || {
        let p = probe.clone();
        async move { p.runs.lock().unwrap()[&ObjectKey::new("default", "flaky-owner")] > before }
    })
    .await;
    assert!(
        probe.overlaps.lock().unwrap().is_empty(),
        "a key ran twice at once: {:?}",
        probe.overlaps.lock().unwrap()
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returns after shutdown")
        .unwrap();
    api_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_writes_events_and_counts_repeats_on_one_object() {
    let api_server = TestApi::start(10_000).await;
    let client = api_server.client();
    let cms: Api<ConfigMap> = Api::namespaced(&client, "default");
    let subject = cms
        .create(&cm("subject", "0"), &WriteParams::default())
        .await
        .unwrap();
    let (recorder, writer) = Recorder::new(
        client.clone(),
        Reporter {
            component: "test-component".into(),
            instance: "host-a".into(),
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(writer.run(shutdown.clone()));
    for _ in 0..3 {
        recorder.publish_for(&subject, EventType::Warning, "Flapping", "it flapped");
    }
    recorder.publish_for(&subject, EventType::Normal, "Settled", "it settled");
    let events: Api<KubeEvent> = Api::namespaced(&client, "default");
    eventually(
        "one Flapping event with count 3 and one Settled",
        Duration::from_secs(10),
        || {
            let events = events.clone();
            async move {
                let l = events.list(&ListParams::default()).await.unwrap().items;
                let flapping: Vec<_> = l
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some("Flapping"))
                    .collect();
                let settled = l
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some("Settled"))
                    .count();
                flapping.len() == 1 && flapping[0].count == Some(3) && settled == 1
            }
        },
    )
    .await;
    let l = events.list(&ListParams::default()).await.unwrap().items;
    let e = l
        .iter()
        .find(|e| e.reason.as_deref() == Some("Flapping"))
        .unwrap();
    assert_eq!(e.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(e.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(
        e.source.as_ref().unwrap().component.as_deref(),
        Some("test-component")
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    api_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_candidate_leads_and_a_clean_shutdown_hands_the_lease_over_at_once() {
    let api_server = TestApi::start(10_000).await;
    let client = api_server.client();
    // A long lease: a hand-over well inside it can only come from the release.
    let config = |id: &str| LeaseConfig {
        lease_duration: Duration::from_secs(30),
        renew_deadline: Duration::from_secs(20),
        retry_period: Duration::from_secs(2),
        ..LeaseConfig::new("kube-system", "test-lock", id)
    };
    let leading = Arc::new(Mutex::new(Vec::<String>::new()));
    let spawn = |id: &'static str, shutdown: CancellationToken| {
        let elector = LeaderElector::new(client.clone(), config(id)).unwrap();
        let leading = leading.clone();
        tokio::spawn(elector.run(shutdown, move |token: CancellationToken| {
            let leading = leading.clone();
            async move {
                leading.lock().unwrap().push(id.to_string());
                token.cancelled().await;
                leading.lock().unwrap().retain(|l| l != id);
            }
        }))
    };
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = spawn("cand-a", stop_a.clone());
    eventually("cand-a leads", Duration::from_secs(10), || {
        let l = leading.clone();
        async move { *l.lock().unwrap() == ["cand-a"] }
    })
    .await;
    let b = spawn("cand-b", stop_b.clone());
    let leases: Api<Lease> = Api::namespaced(&client, "kube-system");
    let holder = |l: Lease| l.spec.unwrap().holder_identity.unwrap_or_default();
    assert_eq!(holder(leases.get("test-lock").await.unwrap()), "cand-a");
    // b stays standby while a renews (three retry periods).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(*leading.lock().unwrap(), ["cand-a"]);

    let t = tokio::time::Instant::now();
    stop_a.cancel();
    tokio::time::timeout(Duration::from_secs(10), a)
        .await
        .unwrap()
        .unwrap();
    eventually("cand-b leads", Duration::from_secs(10), || {
        let l = leading.clone();
        async move { *l.lock().unwrap() == ["cand-b"] }
    })
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "hand-over took {:?}; the lease is 30 s, so it was released",
        t.elapsed()
    );
    let lease = leases.get("test-lock").await.unwrap();
    assert_eq!(lease.spec.as_ref().unwrap().lease_transitions, Some(1));
    assert_eq!(holder(lease), "cand-b");
    stop_b.cancel();
    tokio::time::timeout(Duration::from_secs(10), b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        holder(leases.get("test-lock").await.unwrap()),
        "",
        "released on shutdown"
    );
    api_server.stop().await;
}
