//! Concurrent reads, writes and compare-and-set operations on a few keys,
//! through every replica, while the leader is killed and restarted. The
//! recorded history must be linearizable (checked per key by the Wing–Gong
//! search in `rkube_e2e::linearizability`); requests that timed out or were
//! cut off count as maybe-applied.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rkube_e2e::cluster::Cluster;
use rkube_e2e::kvclient::{FailoverKv, Outcome};
use rkube_e2e::linearizability::{check, CasInput, CasOperation, CasOutput, CheckResult};

const KEYS: usize = 4;
const CLIENTS: usize = 6;
const OPS_PER_CLIENT: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_history_under_leader_kills_is_linearizable() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let mut cluster = Cluster::start(3).await;
        let endpoints: Vec<String> = (0..3).map(|i| cluster.endpoint(i)).collect();
        let t0 = Instant::now();
        let now = move || t0.elapsed().as_nanos() as u64;
        let history: Arc<Mutex<Vec<CasOperation>>> = Arc::default();
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));

        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (history, endpoints, done) = (history.clone(), endpoints.clone(), done.clone());
                tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64 + 7);
                    let mut kv = FailoverKv::new(&endpoints, c);
                    kv.timeout = Duration::from_secs(3);
                    for n in 0..OPS_PER_CLIENT {
                        let key = format!("/lin/k{}", rng.gen_range(0..KEYS)).into_bytes();
                        let fresh = format!("c{c}-{n}").into_bytes();
                        let (input, call) = match rng.gen_range(0..3) {
                            0 => (CasInput::Read, now()),
                            1 => (CasInput::Write(fresh.clone()), now()),
                            _ => {
                                // Expect a value this client saw or wrote recently, or absence.
                                let expected = if rng.gen_bool(0.3) {
                                    None
                                } else {
                                    Some(
                                        format!(
                                            "c{}-{}",
                                            rng.gen_range(0..CLIENTS),
                                            n.saturating_sub(rng.gen_range(0..3))
                                        )
                                        .into_bytes(),
                                    )
                                };
                                (
                                    CasInput::Cas {
                                        expected,
                                        new: fresh.clone(),
                                    },
                                    now(),
                                )
                            }
                        };
                        let output = match &input {
                            CasInput::Read => match kv.get(&key).await {
                                Outcome::Ok(v) => Some(CasOutput::ReadOk(v.map(|b| b.to_vec()))),
                                Outcome::Failed(_) | Outcome::Unknown(_) => continue, // reads change nothing
                            },
                            CasInput::Write(v) => match kv.put(&key, v).await {
                                Outcome::Ok(_) => Some(CasOutput::WriteOk),
                                Outcome::Failed(_) => continue,
                                Outcome::Unknown(_) => None,
                            },
                            CasInput::Cas { expected, new } => {
                                match kv.cas(&key, expected.as_deref(), new).await {
                                    Outcome::Ok(ok) => Some(CasOutput::CasOk(ok)),
                                    Outcome::Failed(_) => continue,
                                    Outcome::Unknown(_) => None,
                                }
                            }
                            CasInput::Delete => unreachable!(),
                        };
                        let ret = output.as_ref().map(|_| now());
                        history.lock().unwrap().push(CasOperation {
                            client_id: c as u64,
                            key,
                            input,
                            output,
                            call,
                            ret,
                        });
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();

        // Kill the leader twice while the clients work.
        for _ in 0..2 {
            let target = history.lock().unwrap().len() + 60;
            while history.lock().unwrap().len() < target
                && done.load(std::sync::atomic::Ordering::SeqCst) < CLIENTS
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let leader = cluster.leader(Duration::from_secs(30)).await;
            cluster.kill(leader);
            cluster.leader(Duration::from_secs(30)).await;
            cluster.restart(leader);
        }
        for c in clients {
            c.await.unwrap();
        }
        cluster.wait_all_ready(Duration::from_secs(30)).await;

        let history = history.lock().unwrap().clone();
        let unknown = history.iter().filter(|o| o.output.is_none()).count();
        let writes_ok = history
            .iter()
            .filter(|o| {
                matches!(
                    o.output,
                    Some(CasOutput::WriteOk) | Some(CasOutput::CasOk(true))
                )
            })
            .count();
        eprintln!(
            "history: {} operations, {unknown} maybe-applied, {writes_ok} acknowledged writes",
            history.len()
        );
        assert!(
            history.len() > CLIENTS * OPS_PER_CLIENT / 2,
            "too few operations completed"
        );
        match check(&history) {
            CheckResult::Ok => {}
            other => panic!("history is not linearizable: {other}"),
        }
    })
    .await
    .expect("test timed out");
}
