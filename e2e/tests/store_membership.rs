//! Adding and removing store members through the Maintenance admin calls.
//!
//! A 3-replica cluster from the harness, plus a 4th `rkube-apiserver` started
//! by hand without `--initial-member` flags, so it waits to be added. The
//! membership calls go to a follower, which must pass them on to the leader.
//! The new member joins as a learner, catches up (same content hash as the
//! others), becomes a voter, and is removed again; writes keep working.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_e2e::cluster::{self, Cluster};
use rkube_e2e::kvclient::{FailoverKv, Outcome};
use rkube_proto::store::maintenance_client::MaintenanceClient;
use rkube_proto::store::{
    HashRequest, Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest, PutRequest, RangeRequest, StatusRequest, StatusResponse,
};
use tonic::transport::Channel;

const T: Duration = Duration::from_secs(30);
const NEW_ID: u64 = 4;

/// A replica started by hand; killed when dropped (also when a test panics).
struct ExtraReplica {
    member: Member,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl ExtraReplica {
    /// Starts `rkube-apiserver` with its own ports and data folder and no
    /// `--initial-member`: it waits for a cluster to add it.
    fn start(id: u64, name: &str) -> ExtraReplica {
        let dir = tempfile::Builder::new()
            .prefix("rkube-e2e-extra-")
            .tempdir()
            .unwrap();
        let api = format!("127.0.0.1:{}", cluster::free_port());
        let peer = format!("127.0.0.1:{}", cluster::free_port());
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut args = rkube_ops::apiserver_cmd::ApiserverArgs::new(
            name,
            id,
            dir.path().join("data"),
            api.clone(),
            peer.clone(),
        );
        args.create_system_namespaces = Some(false);
        args.anonymous_auth = true;
        let child = Command::new(cluster::bin("rkube-apiserver"))
            .args(args.to_args())
            .env(
                "RUST_LOG",
                std::env::var("RKUBE_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn rkube-apiserver");
        ExtraReplica {
            member: Member {
                id,
                name: name.into(),
                peer_address: peer,
                api_address: api,
                learner: false,
            },
            child: Some(child),
            dir: Some(dir),
            log,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.member.api_address)
    }

    fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.endpoint())
            .unwrap()
            .connect_timeout(Duration::from_millis(500))
            .connect_lazy()
    }

    fn maintenance(&self) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel())
    }

    async fn status(&self) -> Option<StatusResponse> {
        let mut req = tonic::Request::new(StatusRequest {});
        req.set_timeout(Duration::from_millis(500));
        self.maintenance()
            .status(req)
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// Waits until it answers Status; returns the answer.
    async fn wait_serving(&mut self) -> StatusResponse {
        let deadline = Instant::now() + T;
        loop {
            if let Some(st) = self.status().await {
                return st;
            }
            if let Some(Ok(Some(code))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the extra replica exited with {code}: {}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "the extra replica does not answer: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        rkube_ops::process::log_tail(&self.log, 30)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ExtraReplica {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() || std::env::var_os("RKUBE_KEEP_TEST_DIRS").is_some() {
                eprintln!("extra replica kept at {}", dir.keep().display());
            }
        }
    }
}

/// (id, learner) of every member, sorted.
fn shape(members: &[Member]) -> Vec<(u64, bool)> {
    let mut v: Vec<(u64, bool)> = members.iter().map(|m| (m.id, m.learner)).collect();
    v.sort();
    v
}

async fn member_list(c: &mut MaintenanceClient<Channel>) -> Option<Vec<Member>> {
    let mut req = tonic::Request::new(MemberListRequest {});
    req.set_timeout(Duration::from_millis(500));
    c.member_list(req)
        .await
        .ok()
        .map(|r| r.into_inner().members)
}

/// Waits until every replica of the cluster, and `extra` when given, lists
/// exactly the members `want` (as (id, learner)).
async fn wait_membership(cluster: &Cluster, extra: Option<&ExtraReplica>, want: &[(u64, bool)]) {
    let deadline = Instant::now() + T;
    loop {
        let mut seen = Vec::new();
        for i in 0..cluster.replicas.len() {
            let mut c = cluster.maintenance(i).await;
            seen.push((
                format!("a{}", i + 1),
                member_list(&mut c).await.map(|m| shape(&m)),
            ));
        }
        if let Some(x) = extra {
            seen.push((
                x.member.name.clone(),
                member_list(&mut x.maintenance()).await.map(|m| shape(&m)),
            ));
        }
        if seen.iter().all(|(_, m)| m.as_deref() == Some(want)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "membership did not become {want:?} everywhere within {T:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the cluster's replicas and `extra` have one revision and one
/// content hash; returns them.
async fn wait_same_hash(cluster: &Cluster, extra: &ExtraReplica) -> (i64, String, i64) {
    let deadline = Instant::now() + T;
    loop {
        let mut seen = Vec::new();
        let mut clients: Vec<MaintenanceClient<Channel>> = Vec::new();
        for i in 0..cluster.replicas.len() {
            clients.push(cluster.maintenance(i).await);
        }
        clients.push(extra.maintenance());
        for c in &mut clients {
            if let Ok(r) = c.hash(HashRequest { revision: 0 }).await {
                let r = r.into_inner();
                seen.push((r.header.map_or(0, |h| h.revision), r.hash, r.keys));
            }
        }
        if seen.len() == clients.len() && seen.windows(2).all(|w| w[0] == w[1]) {
            return seen.remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "the new member did not converge with the others: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn write_keys(kv: &mut FailoverKv, prefix: &str, n: usize) {
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}-{}", "x".repeat(200)));
        match kv.put(k.as_bytes(), v.as_bytes()).await {
            Outcome::Ok(_) => {}
            other => panic!("put {k}: {other:?}"),
        }
    }
}

/// Writes `{prefix}0..n` with 8 concurrent clients.
async fn write_keys_concurrently(cluster: &Cluster, prefix: &str, n: usize) {
    let eps = endpoints(cluster);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (eps, prefix) = (eps.clone(), prefix.to_string());
            tokio::spawn(async move {
                let mut kv = FailoverKv::new(&eps, w);
                for i in (w..n).step_by(8) {
                    let (k, v) = (format!("{prefix}{i}"), format!("v{i}-{}", "x".repeat(200)));
                    match kv.put(k.as_bytes(), v.as_bytes()).await {
                        Outcome::Ok(_) => {}
                        other => panic!("put {k}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
}

fn endpoints(cluster: &Cluster) -> Vec<String> {
    (0..cluster.replicas.len())
        .map(|i| cluster.endpoint(i))
        .collect()
}

async fn with_timeout(f: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(180), f)
        .await
        .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_added_through_a_follower_joins_as_learner_then_voter_and_can_be_removed() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let mut kv = FailoverKv::new(&endpoints(&cluster), 0);
        write_keys(&mut kv, "/m/before/", 200).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        let leader_id = cluster.replicas[leader].id;

        let mut extra = ExtraReplica::start(NEW_ID, "a4");
        let st = extra.wait_serving().await;
        // Not a member of anything yet.
        assert_eq!(
            st.leader, 0,
            "the new replica knows a leader before being added: {st:?}"
        );
        assert!(
            st.members.is_empty(),
            "the new replica has members before being added: {st:?}"
        );

        // Added as a learner, through a follower.
        let mut admin = cluster.maintenance(follower).await;
        let r = admin
            .member_add(MemberAddRequest {
                member: Some(extra.member.clone()),
                learner_only: true,
            })
            .await
            .unwrap_or_else(|s| panic!("MemberAdd on a follower: {s:?}\n{}", extra.log_tail()))
            .into_inner();
        assert_eq!(
            shape(&r.members),
            vec![(1, false), (2, false), (3, false), (NEW_ID, true)],
            "{r:?}"
        );
        let added = r.members.iter().find(|m| m.id == NEW_ID).unwrap();
        assert_eq!(
            (&added.name, &added.peer_address, &added.api_address),
            (
                &extra.member.name,
                &extra.member.peer_address,
                &extra.member.api_address
            )
        );
        wait_membership(
            &cluster,
            Some(&extra),
            &[(1, false), (2, false), (3, false), (NEW_ID, true)],
        )
        .await;
        let st = extra.status().await.unwrap();
        assert_eq!(st.role, "learner", "{st:?}");
        assert_eq!(st.leader, leader_id, "{st:?}");
        // It has everything written before it joined.
        let (rev, _, keys) = wait_same_hash(&cluster, &extra).await;
        assert_eq!(keys, 200);
        assert_eq!(rev, 201);

        // A learner still serves clients: writes pass on to the leader, reads
        // are linearizable.
        let mut on_new = FailoverKv::new(&[extra.endpoint()], 0);
        assert!(
            matches!(on_new.put(b"/m/via-learner", b"l").await, Outcome::Ok(r) if r == rev + 1)
        );
        assert_eq!(
            on_new.get(b"/m/via-learner").await,
            Outcome::Ok(Some(Bytes::from_static(b"l")))
        );

        // Promoted to a voter, again through a follower.
        let r = admin
            .member_promote(MemberPromoteRequest { id: NEW_ID })
            .await
            .expect("MemberPromote on a follower")
            .into_inner();
        assert_eq!(
            shape(&r.members),
            vec![(1, false), (2, false), (3, false), (NEW_ID, false)],
            "{r:?}"
        );
        wait_membership(
            &cluster,
            Some(&extra),
            &[(1, false), (2, false), (3, false), (NEW_ID, false)],
        )
        .await;
        assert_eq!(extra.status().await.unwrap().role, "follower");
        write_keys(&mut kv, "/m/four/", 100).await;
        let (rev4, _, keys) = wait_same_hash(&cluster, &extra).await;
        assert_eq!(keys, 301);
        // The new voter answers linearizable reads of what the others took.
        let mut c = rkube_proto::store::kv_client::KvClient::new(extra.channel());
        let got = c
            .range(RangeRequest {
                key: Bytes::from_static(b"/m/four/99"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.header.unwrap().revision, rev4);
        assert_eq!(got.kvs.len(), 1);

        // Removed, through a follower: three voters again.
        let term = cluster.status(leader).await.unwrap().term;
        let r = admin
            .member_remove(MemberRemoveRequest { id: NEW_ID })
            .await
            .expect("MemberRemove on a follower")
            .into_inner();
        assert_eq!(
            shape(&r.members),
            vec![(1, false), (2, false), (3, false)],
            "{r:?}"
        );
        wait_membership(&cluster, None, &[(1, false), (2, false), (3, false)]).await;

        // Writes still work, while the removed replica is still running.
        write_keys(&mut kv, "/m/after/", 100).await;
        let (rev_after, _) = cluster.wait_converged(T).await;
        assert_eq!(rev_after, rev4 + 100);
        let leader_now = cluster.leader(T).await;
        let term_now = cluster.status(leader_now).await.unwrap().term;
        assert_eq!(
            (leader_now, term_now),
            (leader, term),
            "removing a member disturbed the leadership"
        );
        // The removed replica takes no part any more: nothing new reaches it.
        let removed = extra.status().await.map(|s| s.header.unwrap().revision);
        assert!(
            removed.is_none_or(|r| r <= rev4),
            "the removed replica still receives the log: at {removed:?}, cluster at {rev_after}"
        );
        extra.kill();
        write_keys(&mut kv, "/m/end/", 10).await;
        cluster.wait_converged(T).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_added_in_one_call_catches_up_before_it_votes() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        write_keys_concurrently(&cluster, "/n/", 1000).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 2) % 3;

        let mut extra = ExtraReplica::start(NEW_ID, "a4");
        extra.wait_serving().await;

        // Watch the leader's membership while the call runs, until it lists
        // the new member as a voter.
        let leader_admin = cluster.maintenance(leader).await;
        let (first_seen, seen_rx) = tokio::sync::oneshot::channel();
        let observer = {
            let mut c = leader_admin.clone();
            tokio::spawn(async move {
                let mut first_seen = Some(first_seen);
                let mut states: Vec<Option<bool>> = Vec::new();
                while states.last() != Some(&Some(false)) {
                    if let Some(m) = member_list(&mut c).await {
                        let s = m.iter().find(|m| m.id == NEW_ID).map(|m| m.learner);
                        if states.last() != Some(&s) {
                            states.push(s);
                        }
                        if let Some(tx) = first_seen.take() {
                            let _ = tx.send(());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                states
            })
        };
        // The observer has seen the membership before the call.
        tokio::time::timeout(T, seen_rx)
            .await
            .expect("the leader does not answer MemberList")
            .unwrap();
        let mut admin = cluster.maintenance(follower).await;
        let r = admin
            .member_add(MemberAddRequest {
                member: Some(extra.member.clone()),
                learner_only: false,
            })
            .await
            .unwrap_or_else(|s| panic!("MemberAdd on a follower: {s:?}\n{}", extra.log_tail()))
            .into_inner();
        assert_eq!(
            shape(&r.members),
            vec![(1, false), (2, false), (3, false), (NEW_ID, false)],
            "{r:?}"
        );
        let states = tokio::time::timeout(T, observer)
            .await
            .expect("the leader never listed the new member as a voter")
            .unwrap();
        // Absent, (a learner,) then a voter; never a voter first.
        assert_eq!(states.first(), Some(&None), "{states:?}");
        assert_eq!(states.last(), Some(&Some(false)), "{states:?}");
        assert!(
            states == [None, Some(false)] || states == [None, Some(true), Some(false)],
            "the leader listed the new member as {states:?}"
        );
        eprintln!(
            "the leader listed member {NEW_ID} as: {states:?} (None = absent, Some(learner))"
        );
        wait_membership(
            &cluster,
            Some(&extra),
            &[(1, false), (2, false), (3, false), (NEW_ID, false)],
        )
        .await;
        let (_, _, keys) = wait_same_hash(&cluster, &extra).await;
        assert_eq!(keys, 1000);

        // With four voters, losing one old replica leaves a quorum (3 of 4)
        // that needs the new member.
        let victim = (leader + 1) % 3;
        cluster.kill(victim);
        let mut eps = endpoints(&cluster);
        eps.push(extra.endpoint());
        let mut kv = FailoverKv::new(&eps, leader);
        write_keys(&mut kv, "/n/quorum/", 20).await;
        cluster.restart(victim);
        cluster.wait_all_ready(T).await;

        // Removing it through the leader this time.
        let leader = cluster.leader(T).await;
        let mut admin = cluster.maintenance(leader).await;
        let r = admin
            .member_remove(MemberRemoveRequest { id: NEW_ID })
            .await
            .expect("MemberRemove")
            .into_inner();
        assert_eq!(shape(&r.members), vec![(1, false), (2, false), (3, false)]);
        extra.kill();
        wait_membership(&cluster, None, &[(1, false), (2, false), (3, false)]).await;
        // Three voters, one of them down: still a quorum.
        let mut kv = FailoverKv::new(&endpoints(&cluster), 0);
        write_keys(&mut kv, "/n/after/", 20).await;
        let (_, _) = cluster.wait_converged(T).await;
        let leader = cluster.leader(T).await;
        cluster.kill((leader + 1) % 3);
        // A new client: one whose pooled connection went to the killed replica
        // could not tell whether its next request was applied.
        let mut kv = FailoverKv::new(&endpoints(&cluster), leader);
        write_keys(&mut kv, "/n/two-of-three/", 20).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_add_without_an_id_or_peer_address_is_refused() {
    with_timeout(async {
        let mut cluster = Cluster::start(3).await;
        let leader = cluster.leader(T).await;
        let follower = (leader + 1) % 3;
        for i in [follower, leader] {
            let mut admin = cluster.maintenance(i).await;
            for (what, member) in [
                (
                    "id 0",
                    Some(Member {
                        id: 0,
                        name: "x".into(),
                        peer_address: "127.0.0.1:1".into(),
                        api_address: "127.0.0.1:2".into(),
                        learner: false,
                    }),
                ),
                (
                    "no peer address",
                    Some(Member {
                        id: 9,
                        name: "x".into(),
                        peer_address: String::new(),
                        api_address: "127.0.0.1:2".into(),
                        learner: false,
                    }),
                ),
                ("no member", None),
            ] {
                let err = admin
                    .member_add(MemberAddRequest {
                        member,
                        learner_only: true,
                    })
                    .await
                    .expect_err(what);
                assert_eq!(
                    err.code(),
                    tonic::Code::InvalidArgument,
                    "{what} on replica {i}: {err:?}"
                );
            }
            let members = member_list(&mut admin).await.unwrap();
            assert_eq!(shape(&members), vec![(1, false), (2, false), (3, false)]);
        }
        // And the cluster still takes writes.
        let mut kv = cluster.kv(follower).await;
        kv.put(PutRequest {
            key: Bytes::from_static(b"/x"),
            value: Bytes::from_static(b"y"),
            prev_kv: false,
        })
        .await
        .expect("a write after refused member adds");
    })
    .await;
}
