//! The workloads: a write-throughput run with N concurrent clients, and leader failover
//! under a running writer. Both drive either system through the same client code, so
//! connections, request pacing and failover are identical for rkube and etcd.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Barrier};
use tonic::transport::Channel;

use super::cluster::{channel, Cluster, System};
use super::report::{FailoverResult, KillSample, PhaseResult};
use super::stats::micros;
use super::{BenchError, Progress};

/// A connection to one member, speaking the member's own KV API.
#[derive(Clone)]
pub enum KvConn {
    Rkube(rkube_proto::store::kv_client::KvClient<Channel>),
    Etcd(crate::etcd::kv_client::KvClient<Channel>),
}

impl KvConn {
    pub fn new(system: System, addr: &str) -> Result<Self, BenchError> {
        let ch = channel(addr)?;
        Ok(match system {
            System::Rkube => KvConn::Rkube(rkube_proto::store::kv_client::KvClient::new(ch)),
            System::Etcd => KvConn::Etcd(crate::etcd::kv_client::KvClient::new(ch)),
        })
    }

    /// One Put of `value` at `key`, without asking for the previous value.
    pub async fn put(&mut self, key: Bytes, value: Bytes) -> Result<(), tonic::Status> {
        match self {
            KvConn::Rkube(c) => c
                .put(rkube_proto::store::PutRequest {
                    key,
                    value,
                    prev_kv: false,
                })
                .await
                .map(drop),
            KvConn::Etcd(c) => c
                .put(crate::etcd::PutRequest {
                    key,
                    value,
                    lease: 0,
                    prev_kv: false,
                })
                .await
                .map(drop),
        }
    }

    /// A Put that gives up after `timeout` (the request is then cancelled).
    pub async fn put_within(
        &mut self,
        key: Bytes,
        value: Bytes,
        timeout: Duration,
    ) -> Result<(), PutFailed> {
        match tokio::time::timeout(timeout, self.put(key, value)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(PutFailed::Refused(status)),
            Err(_) => Err(PutFailed::TimedOut(timeout)),
        }
    }
}

/// Why one Put did not succeed (a sample of these goes into the report).
#[derive(Debug, thiserror::Error)]
pub enum PutFailed {
    #[error("{:?}: {}", .0.code(), .0.message())]
    Refused(tonic::Status),
    #[error("no answer within {}ms", .0.as_millis())]
    TimedOut(Duration),
}

/// A value of `size` bytes: printable, deterministic, different per seed (so values do
/// not compress to nothing should a store ever compress).
pub fn make_value(size: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// The key of write `n` in run `run`: distinct across runs and writes, sorted by `n`.
pub fn bench_key(run: &str, n: u64) -> Bytes {
    Bytes::from(format!("/bench/{run}/{n:010}"))
}

/// What one throughput run does.
#[derive(Debug, Clone)]
pub struct ThroughputPlan {
    /// Run label, part of every key.
    pub run: String,
    pub clients: usize,
    /// Writes in total over all clients.
    pub ops: usize,
    pub value_size: usize,
    /// The members each client sends to, round-robin (each client starts at a different one).
    pub endpoints: Vec<String>,
    /// A write taking longer than this counts as an error.
    pub request_timeout: Duration,
}

/// Runs `plan`: every client opens its own connection to every endpoint, writes once to
/// each (not measured), then all start together and take write numbers from a shared
/// counter until `ops` writes were issued. Each write's latency is measured from just
/// before the call to the reply.
pub async fn throughput(
    system: System,
    plan: &ThroughputPlan,
    cpu_pids: &[u32],
) -> Result<PhaseResult, BenchError> {
    let clients = plan.clients.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let start_line = Arc::new(Barrier::new(clients + 1));
    let value = make_value(plan.value_size, plan.ops as u64);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut conns = plan
            .endpoints
            .iter()
            .map(|a| KvConn::new(system, a))
            .collect::<Result<Vec<_>, _>>()?;
        let (next, start_line, value, plan) = (
            next.clone(),
            start_line.clone(),
            value.clone(),
            plan.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Warm-up: connect to every endpoint (not measured).
            let mut warm_error = None;
            for (i, conn) in conns.iter_mut().enumerate() {
                let key = Bytes::from(format!("/bench/{}-warmup/{c:04}-{i}", plan.run));
                if let Err(e) = conn
                    .put_within(key, value.clone(), Duration::from_secs(10))
                    .await
                {
                    warm_error = Some(format!("{}: {e}", plan.endpoints[i]));
                }
            }
            start_line.wait().await;
            let mut latencies = Vec::with_capacity(plan.ops / clients + 1);
            let mut errors = Vec::new();
            let mut target = c % conns.len();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= plan.ops {
                    break;
                }
                let key = bench_key(&plan.run, n as u64);
                let started = Instant::now();
                match conns[target]
                    .put_within(key, value.clone(), plan.request_timeout)
                    .await
                {
                    Ok(()) => latencies.push(micros(started.elapsed())),
                    Err(e) => errors.push(format!("{}: {e}", plan.endpoints[target])),
                }
                target = (target + 1) % conns.len();
            }
            (latencies, errors, warm_error)
        }));
    }
    // Everyone is connected: start the clock.
    start_line.wait().await;
    let cpu_before = cpu_seconds(cpu_pids);
    let self_before = cpu_seconds(&[std::process::id()]);
    let machine_before = machine_busy_seconds();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(plan.ops);
    let mut errors = Vec::new();
    for t in tasks {
        let (l, e, warm) = t.await.map_err(BenchError::ClientTask)?;
        latencies.extend(l);
        errors.extend(e);
        if let Some(w) = warm {
            errors.push(format!("warm-up: {w}"));
        }
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_seconds(cpu_pids) - cpu_before;
    let client_cpu = cpu_seconds(&[std::process::id()]) - self_before;
    let other_cpu = (machine_busy_seconds() - machine_before - server_cpu - client_cpu).max(0.0);
    let mut result = PhaseResult::new(
        clients,
        &mut latencies,
        errors,
        elapsed,
        server_cpu,
        client_cpu,
    );
    result.other_cpu_seconds = other_cpu;
    Ok(result)
}

/// What the failover run does.
#[derive(Debug, Clone)]
pub struct FailoverPlan {
    pub kills: usize,
    pub value_size: usize,
    /// The writer gives up on a request after this long and tries the next member.
    pub request_timeout: Duration,
    /// How long writes may stay unavailable before a kill counts as failed.
    pub give_up_after: Duration,
    /// How long a restarted member may take to be ready and caught up.
    pub ready_timeout: Duration,
}

/// One successful write of the background writer.
#[derive(Debug, Clone, Copy)]
struct Success {
    started: Instant,
    finished: Instant,
}

/// Kills the leader `plan.kills` times under a running writer and measures, for each
/// kill, the time from the SIGKILL to the first successful write *issued* after it (a
/// write already in flight at the kill does not count, even when it succeeds later).
/// After each kill the member is restarted over its data and the next kill waits until it
/// is ready and has caught up.
pub async fn failover(
    cluster: &mut Cluster,
    plan: &FailoverPlan,
    progress: &Progress,
) -> Result<FailoverResult, BenchError> {
    let system = cluster.system();
    let endpoints = cluster.client_addrs();
    let (tx, mut rx) = mpsc::unbounded_channel::<Success>();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let conns = endpoints
            .iter()
            .map(|a| KvConn::new(system, a))
            .collect::<Result<Vec<_>, _>>()?;
        let stop = stop.clone();
        let value = make_value(plan.value_size, 7);
        let timeout = plan.request_timeout;
        tokio::spawn(background_writer(conns, value, timeout, stop, tx))
    };
    let result = kill_loop(cluster, plan, progress, &mut rx).await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.await;
    result
}

/// Writes forever (until `stop`): one write at a time, round-robin over the members; on an
/// error or timeout it moves to the next member at once, pausing 5 ms after a whole round
/// of failures so a cluster without a leader is not flooded.
async fn background_writer(
    mut conns: Vec<KvConn>,
    value: Bytes,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<Success>,
) {
    let mut target = 0;
    let mut failures_in_a_row = 0;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = bench_key("failover", n);
        n += 1;
        let started = Instant::now();
        let ok = conns[target]
            .put_within(key, value.clone(), timeout)
            .await
            .is_ok();
        let finished = Instant::now();
        target = (target + 1) % conns.len();
        if ok {
            failures_in_a_row = 0;
            if tx.send(Success { started, finished }).is_err() {
                return;
            }
        } else {
            failures_in_a_row += 1;
            if failures_in_a_row % conns.len() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

async fn kill_loop(
    cluster: &mut Cluster,
    plan: &FailoverPlan,
    progress: &Progress,
    rx: &mut mpsc::UnboundedReceiver<Success>,
) -> Result<FailoverResult, BenchError> {
    let label = cluster.system().label();
    let mut samples = Vec::with_capacity(plan.kills);
    for k in 1..=plan.kills {
        let leader = cluster.wait_ready(plan.ready_timeout).await?;
        // Writes must be flowing before the kill: wait for a fresh success.
        while rx.try_recv().is_ok() {}
        match tokio::time::timeout(plan.ready_timeout, rx.recv()).await {
            Ok(Some(_)) => {}
            _ => {
                return Err(BenchError::NoProgress {
                    system: label,
                    kill: k,
                    waited: plan.ready_timeout,
                })
            }
        }
        let name = cluster.name(leader).to_string();
        let killed_at = cluster.kill_member(leader);
        let (resumed, elected) = tokio::join!(
            wait_resumed(rx, killed_at, plan.give_up_after),
            cluster.wait_new_leader(leader, killed_at, plan.give_up_after),
        );
        let restart_started = Instant::now();
        cluster.start_member(leader)?;
        cluster.wait_caught_up(leader, plan.ready_timeout).await?;
        let rejoined = restart_started.elapsed();
        let line = match resumed {
            Some(d) => format!(
                "{label}: kill {k}/{}: {name} (leader) killed; new leader after {}, writes \
                 resumed after {:.0} ms; restarted and caught up in {:.1} s",
                plan.kills,
                elected.map_or("-".to_string(), |e| format!(
                    "{:.0} ms",
                    e.as_secs_f64() * 1e3
                )),
                d.as_secs_f64() * 1e3,
                rejoined.as_secs_f64()
            ),
            None => format!(
                "{label}: kill {k}/{}: {name} (leader) killed; writes did NOT resume within {} s",
                plan.kills,
                plan.give_up_after.as_secs()
            ),
        };
        progress(&line);
        samples.push(KillSample {
            member: name,
            unavailable_ms: resumed.map(|d| d.as_secs_f64() * 1e3),
            elected_ms: elected.map(|d| d.as_secs_f64() * 1e3),
            rejoin_ms: rejoined.as_secs_f64() * 1e3,
        });
    }
    Ok(FailoverResult::new(samples, plan.give_up_after))
}

/// The time from `killed_at` until the first success of a write issued at or after it.
async fn wait_resumed(
    rx: &mut mpsc::UnboundedReceiver<Success>,
    killed_at: Instant,
    give_up_after: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::from_std(killed_at + give_up_after);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(s)) if s.started >= killed_at => return Some(s.finished - killed_at),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// User plus system CPU time of the given processes, in seconds (from `/proc/PID/stat`;
/// processes that are gone count zero).
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| parse_cpu_ticks(&stat))
        .map(|ticks| ticks as f64 / CLOCK_TICKS_PER_SEC)
        .sum()
}

/// CPU time the whole machine spent busy since boot, over all CPUs, in seconds.
pub fn machine_busy_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_busy_ticks(&s))
        .map_or(0.0, |t| t as f64 / CLOCK_TICKS_PER_SEC)
}

/// Busy ticks of the `cpu` line of `/proc/stat`: user, nice, system, irq, softirq and
/// steal (idle and iowait are not busy; guest time is already inside user). Pure.
pub fn parse_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).unwrap_or(&0))
}

/// Linux reports `/proc` CPU times in USER_HZ, which is 100 on every architecture we run.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name in
/// parentheses may hold spaces, so fields are counted after the last `)`. Pure.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: field 3 (state) is fields[0], so field N is fields[N - 3].
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}
