//! The controller runtime against real apiserver processes: a watcher keeps delivering
//! every write exactly once when the apiserver it streams from is killed (-9), and Lease
//! leader election hands over to a standby process within the lease after kill -9 of the
//! leader, and at once after a clean shutdown.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{Api, Client, Config, PatchType, WriteParams};
use rkube_e2e::cluster::{send_signal, Cluster};
use rkube_runtime::store::{Change, Writer};
use rkube_runtime::watcher::{self, Watcher};

fn client_of(cluster: &Cluster) -> Client {
    let endpoints: Vec<String> = cluster.replicas.iter().map(|r| r.api.to_string()).collect();
    Client::new(Config::new(endpoints)).unwrap()
}

async fn wait_for<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_for_default_namespace(client: &Client) {
    let ns: Api<Namespace> = Api::cluster(client);
    wait_for(
        "the default namespace exists",
        Duration::from_secs(30),
        || {
            let ns = ns.clone();
            async move { ns.get("default").await.is_ok() }
        },
    )
    .await;
}

fn cm(name: &str, v: u64) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), v.to_string())])),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_delivers_every_write_once_across_kill_9_of_its_apiserver() {
    let mut cluster = Cluster::start_with(rkube_e2e::cluster::Options {
        system_namespaces: true,
        ..Default::default()
    })
    .await;
    cluster.wait_all_ready(Duration::from_secs(30)).await;
    let client = client_of(&cluster);
    wait_for_default_namespace(&client).await;
    let api: Api<ConfigMap> = Api::namespaced(&client, "default");

    // The watcher (list, then watch) runs on its own task; the test applies its events.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let endpoint = Arc::new(Mutex::new(None::<String>));
    let mut w: Watcher<ConfigMap> = Watcher::new(
        client.clone(),
        watcher::Config {
            namespace: "default".into(),
            ..watcher::Config::new()
        },
    );
    let ep = endpoint.clone();
    let pump = tokio::spawn(async move {
        loop {
            let step = w.step().await;
            *ep.lock().unwrap() = w.endpoint();
            match step {
                Ok(ev) => {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });

    // A writer acknowledging (name, resourceVersion) of every write it makes.
    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_task = {
        let (api, acked, stop) = (api.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let name = format!("cm-{}", i % 20);
                let res = if i < 20 {
                    api.create(&cm(&name, i), &WriteParams::default()).await
                } else {
                    let patch = serde_json::json!({"data": {"v": i.to_string()}});
                    api.patch(&name, PatchType::Merge, &patch, &WriteParams::default())
                        .await
                };
                if let Ok(o) = res {
                    let rv = o.metadata.resource_version.unwrap().parse().unwrap();
                    acked.lock().unwrap().push((name, rv));
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let mut writer = Writer::<ConfigMap>::new();
    let mut delivered: HashMap<String, Vec<u64>> = HashMap::new();
    let mut inits = 0;
    let mut apply = |ev: watcher::Event<ConfigMap>, delivered: &mut HashMap<String, Vec<u64>>| {
        if ev == watcher::Event::Init {
            inits += 1;
        }
        for c in writer.apply(ev) {
            if let Change::Added(o) | Change::Updated { new: o, .. } = &c {
                let rv = o
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap()
                    .parse()
                    .unwrap();
                delivered
                    .entry(o.metadata.name.clone().unwrap())
                    .or_default()
                    .push(rv);
            }
        }
    };

    // Let some writes flow, find the replica the watch streams from, kill it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        apply(ev, &mut delivered);
        let streaming = endpoint.lock().unwrap().clone();
        if let Some(ep) = streaming {
            if acked.lock().unwrap().len() > 50 {
                break cluster
                    .replicas
                    .iter()
                    .position(|r| r.api.to_string() == ep)
                    .unwrap();
            }
        }
        assert!(Instant::now() < deadline, "the watch never got going");
    };
    cluster.kill(victim);
    let after_kill = acked.lock().unwrap().len();
    // Keep writing until plenty was acknowledged after the kill, then stop.
    wait_for("writes after the kill", Duration::from_secs(30), || {
        let n = acked.lock().unwrap().len();
        async move { n > after_kill + 100 }
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer_task.await.unwrap();

    // Every acknowledged write arrives, once.
    let want: Vec<(String, u64)> = acked.lock().unwrap().clone();
    let last = want.iter().map(|(_, rv)| *rv).max().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.values().flatten().copied().max().unwrap_or(0) < last {
        assert!(
            Instant::now() < deadline,
            "the watcher never caught up to {last}"
        );
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        apply(ev, &mut delivered);
    }
    assert_eq!(inits, 1, "resumed on another apiserver without relisting");
    for (name, rv) in &want {
        let n = delivered
            .get(name)
            .map_or(0, |v| v.iter().filter(|r| *r == rv).count());
        assert_eq!(n, 1, "{name}@{rv} delivered {n} times");
    }
    for (name, rvs) in &delivered {
        assert!(
            rvs.windows(2).all(|w| w[0] < w[1]),
            "{name}: out of order {rvs:?}"
        );
    }
    let now_streaming = endpoint.lock().unwrap().clone().unwrap();
    assert_ne!(now_streaming, cluster.replicas[victim].api.to_string());
    pump.abort();
}

/// A `lease-candidate` process (the component skeleton around a leader election).
fn candidate(cluster: &Cluster, name: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lease-candidate"));
    for r in &cluster.replicas {
        cmd.arg("--apiserver").arg(r.api.to_string());
    }
    cmd.args([
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
        "--leader-elect-lease-duration",
        "4s",
        "--leader-elect-renew-deadline",
        "3s",
        "--leader-elect-retry-period",
        "500ms",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("lease-candidate starts")
}

async fn holder(leases: &Api<Lease>) -> String {
    match leases.get("e2e-lock").await {
        Ok(l) => l.spec.and_then(|s| s.holder_identity).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The candidate name a holder identity starts with (`name_host_random`).
fn who(holder: &str) -> &str {
    holder.split('_').next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_the_lease_within_its_duration_after_kill_9_and_at_once_after_sigterm() {
    let mut cluster = Cluster::start_with(rkube_e2e::cluster::Options {
        replicas: 1,
        system_namespaces: true,
        ..Default::default()
    })
    .await;
    cluster.wait_all_ready(Duration::from_secs(30)).await;
    let client = client_of(&cluster);
    wait_for_default_namespace(&client).await;
    let leases: Api<Lease> = Api::namespaced(&client, "kube-system");
    let mut procs: BTreeMap<String, Child> = BTreeMap::new();
    procs.insert("cand-a".into(), candidate(&cluster, "cand-a"));
    procs.insert("cand-b".into(), candidate(&cluster, "cand-b"));
    wait_for("someone holds the lease", Duration::from_secs(20), || {
        let l = leases.clone();
        async move { !holder(&l).await.is_empty() }
    })
    .await;
    let first = who(&holder(&leases).await).to_string();
    let other = if first == "cand-a" {
        "cand-b"
    } else {
        "cand-a"
    }
    .to_string();

    // kill -9: the standby waits out the lease (4 s as it observed it), then takes over.
    let t = Instant::now();
    procs.get_mut(&first).unwrap().kill().unwrap();
    procs.get_mut(&first).unwrap().wait().unwrap();
    wait_for("the standby leads", Duration::from_secs(15), || {
        let (l, o) = (leases.clone(), other.clone());
        async move { who(&holder(&l).await) == o }
    })
    .await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(7),
        "took over after {took:?}; the lease is 4 s"
    );

    // The killed one comes back as a standby; a clean stop of the leader hands over at once.
    procs.insert(first.clone(), candidate(&cluster, &first));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        who(&holder(&leases).await),
        other,
        "the newcomer stays standby"
    );
    let t = Instant::now();
    let leader = procs.get_mut(&other).unwrap();
    send_signal(leader.id(), libc::SIGTERM);
    let status = leader.wait().unwrap();
    assert!(status.success(), "a clean shutdown exits 0: {status:?}");
    wait_for(
        "the standby leads after the release",
        Duration::from_secs(10),
        || {
            let (l, f) = (leases.clone(), first.clone());
            async move { who(&holder(&l).await) == f }
        },
    )
    .await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "hand-over after a release took {:?} (the lease is 4 s)",
        t.elapsed()
    );
    let transitions = leases
        .get("e2e-lock")
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions;
    assert_eq!(transitions, Some(2));
    for (_, mut p) in procs {
        let _ = p.kill();
        let _ = p.wait();
    }
}
