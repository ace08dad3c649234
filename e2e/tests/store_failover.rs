//! Three replicas as separate processes: leader kills, restarts from disk, a
//! wiped replica catching up by snapshot. After each, no acknowledged write is
//! missing and all replicas converge to one revision and one content hash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rkube_e2e::cluster::{Cluster, Options};
use rkube_e2e::kvclient::{FailoverKv, Outcome};

const T: Duration = Duration::from_secs(30);

/// Writers that each own a key space; every acknowledged (key → value) is recorded.
struct Load {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    /// Acknowledged writes so far (the keys repeat; this does not).
    total: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(cluster: &Cluster, writers: usize) -> Load {
    let endpoints: Vec<String> = (0..cluster.replicas.len())
        .map(|i| cluster.endpoint(i))
        .collect();
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = (0..writers)
        .map(|w| {
            let (acked, stop, endpoints) = (acked.clone(), stop.clone(), endpoints.clone());
            let total = total.clone();
            tokio::spawn(async move {
                let mut kv = FailoverKv::new(&endpoints, w);
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("/load/w{w}/k{}", n % 50);
                    let value = format!("v{n}");
                    match kv.put(key.as_bytes(), value.as_bytes()).await {
                        Outcome::Ok(_) => {
                            acked.lock().unwrap().insert(key, value);
                            total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        // A write that may or may not have happened makes the key's
                        // final value unknowable; drop it from the expectations.
                        Outcome::Unknown(_) | Outcome::Failed(_) => {
                            acked.lock().unwrap().remove(&key);
                            n += 50; // move on to values never used for the key
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    Load {
        acked,
        total,
        stop,
        tasks,
    }
}

impl Load {
    async fn finish(self) -> BTreeMap<String, String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn total(&self) -> usize {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn wait_for_writes(load: &Load, at_least: usize) {
    tokio::time::timeout(Duration::from_secs(90), async {
        while load.total() < at_least {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("writes made no progress");
}

/// The sequence numbers of a replica's Raft log segment files.
fn wal_segments(data_dir: &std::path::Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = std::fs::read_dir(data_dir.join("raft-wal"))
        .expect("the replica has a raft-wal folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

async fn wait_for_progress(load: &Load, more_than: usize) {
    tokio::time::timeout(T, async {
        while load.count() <= more_than {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("writes made no progress");
}

/// Puts until acknowledged. A put whose outcome is unknown (e.g. sent on a
/// pooled connection to a replica that just stopped) is simply repeated: the
/// same value again is harmless for these tests, which check final contents.
async fn put_acknowledged(kv: &mut FailoverKv, k: &str, v: &str) {
    for _ in 0..5 {
        match kv.put(k.as_bytes(), v.as_bytes()).await {
            Outcome::Ok(_) => return,
            other => eprintln!("put {k}: {other:?}; retrying"),
        }
    }
    panic!("{k}={v} was not acknowledged after 5 attempts");
}

async fn assert_all_present(cluster: &Cluster, expected: &BTreeMap<String, String>) {
    for i in 0..cluster.replicas.len() {
        let mut kv = FailoverKv::new(&[cluster.endpoint(i)], 0);
        for (k, v) in expected {
            match kv.get(k.as_bytes()).await {
                Outcome::Ok(Some(got)) => assert_eq!(&got[..], v.as_bytes(), "replica {i} key {k}"),
                other => panic!("replica {i}: acknowledged {k}={v} is missing: {other:?}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut cluster = Cluster::start(3).await;
        let load = start_load(&cluster, 8);
        for round in 0..2 {
            wait_for_progress(&load, 20 * (round + 1)).await;
            let leader = cluster.leader(T).await;
            let before = cluster.status(leader).await.unwrap().term;
            cluster.kill(leader);
            // A new leader with a higher term takes over.
            let new = cluster.leader(T).await;
            assert_ne!(new, leader);
            assert!(cluster.status(new).await.unwrap().term > before);
            let n = load.count();
            wait_for_progress(&load, n + 20).await;
            cluster.restart(leader);
            cluster.wait_all_ready(T).await;
        }
        let acked = load.finish().await;
        assert!(
            acked.len() > 40,
            "too few writes were acknowledged: {}",
            acked.len()
        );
        cluster.wait_converged(T).await;
        assert_all_present(&cluster, &acked).await;
    })
    .await
    .expect("test timed out");
}

/// Tiny log segments and frequent snapshots: the write-ahead log rotates many
/// times and drops segments behind snapshots while leaders are killed mid-write
/// (so a segment can end in a torn record), and replicas restart over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_segments_rotate_and_are_dropped_behind_snapshots_across_leader_kills() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut cluster = Cluster::start_with(Options {
            snapshot_every: 100,
            extra_args: vec!["--wal-segment-bytes=8192".into()],
            ..Default::default()
        })
        .await;
        let load = start_load(&cluster, 8);
        for round in 0..2 {
            wait_for_writes(&load, 600 * (round + 1)).await;
            let leader = cluster.leader(T).await;
            cluster.kill(leader);
            assert_ne!(cluster.leader(T).await, leader);
            let n = load.total();
            wait_for_writes(&load, n + 300).await;
            cluster.restart(leader);
            cluster.wait_all_ready(T).await;
        }
        let acked = load.finish().await;
        cluster.wait_converged(T).await;
        assert_all_present(&cluster, &acked).await;
        for r in &cluster.replicas {
            let segs = wal_segments(&r.data_dir);
            eprintln!("{}: segments {segs:?}", r.name);
            let newest = *segs.last().expect("at least one segment");
            assert!(newest >= 5, "{}: segments did not rotate: {segs:?}", r.name);
            assert!(
                !segs.contains(&1),
                "{}: the first segment outlived the snapshots: {segs:?}",
                r.name
            );
            assert!(
                segs.len() <= 12,
                "{}: purged segments are not deleted: {segs:?}",
                r.name
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_and_whole_clusters_restart_from_their_disks() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut cluster = Cluster::start(3).await;
        let mut kv = FailoverKv::new(
            &[
                cluster.endpoint(0),
                cluster.endpoint(1),
                cluster.endpoint(2),
            ],
            0,
        );
        let mut expected = BTreeMap::new();
        for i in 0..50 {
            let (k, v) = (format!("/r/{i}"), format!("v{i}"));
            put_acknowledged(&mut kv, &k, &v).await;
            expected.insert(k, v);
        }
        // A follower restarts (clean stop) and catches up on what it missed.
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        cluster.stop(follower);
        for i in 50..80 {
            let (k, v) = (format!("/r/{i}"), format!("v{i}"));
            put_acknowledged(&mut kv, &k, &v).await;
            expected.insert(k, v);
        }
        cluster.restart(follower);
        cluster.wait_all_ready(T).await;
        let (rev1, _) = cluster.wait_converged(T).await;

        // Every replica killed at once, then all restarted.
        for i in 0..3 {
            cluster.kill(i);
        }
        for i in 0..3 {
            cluster.restart(i);
        }
        cluster.wait_all_ready(T).await;
        let (rev2, _) = cluster.wait_converged(T).await;
        assert_eq!(rev1, rev2, "a restart must not change the revision");
        assert_all_present(&cluster, &expected).await;
        // And the cluster still takes writes.
        assert!(matches!(kv.put(b"/r/after", b"x").await, Outcome::Ok(r) if r == rev2 + 1));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_lost_its_disk_catches_up_by_snapshot() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let mut cluster = Cluster::start_with(Options {
            snapshot_every: 100,
            ..Default::default()
        })
        .await;
        let eps: Vec<String> = (0..3).map(|i| cluster.endpoint(i)).collect();
        let mut kv = FailoverKv::new(&eps, 0);
        let leader = cluster.leader(T).await;
        let victim = (leader + 1) % 3;
        cluster.stop(victim);
        cluster.wipe(victim);
        let mut expected = BTreeMap::new();
        for i in 0..400 {
            let (k, v) = (format!("/s/{}", i % 120), format!("v{i}"));
            put_acknowledged(&mut kv, &k, &v).await;
            expected.insert(k, v);
        }
        // The leader's log was purged behind its snapshots: replaying it is impossible.
        let st = cluster.status(leader).await.unwrap();
        assert!(
            st.purged_index > 0,
            "the leader never purged its log: {st:?}"
        );
        cluster.restart(victim);
        cluster.wait_all_ready(T).await;
        cluster.wait_converged(T).await;
        let st = cluster.status(victim).await.unwrap();
        assert!(
            st.snapshot_index > 0,
            "the wiped replica did not install a snapshot: {st:?}"
        );
        assert_all_present(&cluster, &expected).await;
    })
    .await
    .expect("test timed out");
}
