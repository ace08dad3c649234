//! `rkube bench podstartup`: pod start-up latency on a running local cluster
//! (`rkube up --nodes 1` or more), with the image already present on the node.
//!
//! For each round (default 30 pods, then 100): a watch on the round's pods opens first,
//! then every pod is created at once (16 requests in flight) with `spec.nodeName` set (no
//! scheduler yet: the schedule phase is zero), and the latency of a pod runs from the
//! moment its create request was sent to the watch event that shows it Running and Ready
//! — as a watching client sees it. Per phase, the kubelet's own metrics: the mean
//! RunPodSandbox (CNI inside), ImageStatus, CreateContainer and StartContainer times
//! over the round (from its `/metrics` before and after). The kubelet's RSS is read with
//! the round's pods running. The pods are then deleted and the round waits until they are
//! gone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use rkube_client::{Api, DeleteParams, ListParams, TypedEvent, WatchParams, WriteParams};
use serde::Serialize;

use crate::stats::Summary;
use crate::{BenchError, Progress};

/// Kubernetes' SLO for pod start-up (p99, stateless pods, image present) and what its
/// density tests show.
pub const KUBERNETES_SLO_P99: Duration = Duration::from_secs(5);
pub const KUBERNETES_DENSITY_P99: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, clap::Args)]
#[command(
    about = "Measure pod start-up on a running local cluster: creation to Running as a \
             watching client sees it, per phase from the kubelet's metrics, kubelet memory"
)]
pub struct PodStartupOptions {
    /// The cluster directory (`rkube up --nodes 1 --dir DIR` first)
    #[arg(long, value_name = "DIR", env = "RKUBE_DIR", default_value = rkube_ops::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// The node the pods are bound to
    #[arg(long, default_value = "n1", value_name = "NODE")]
    pub node: String,
    /// Pods per round, one round after the other
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "30,100",
        value_name = "N,N"
    )]
    pub rounds: Vec<usize>,
    /// The image (present on the node)
    #[arg(long, default_value = rkube_ops::images::BUSYBOX_IMAGE, value_name = "IMAGE")]
    pub image: String,
    /// How long a round may take
    #[arg(long, default_value = "180s", value_parser = rkube_ops::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// table or json
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: rkube_ops::Output,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub pods: usize,
    /// Creation to Running and Ready, as the watch saw it.
    pub startup: Summary,
    /// Mean kubelet-side time per pod of each CRI operation, milliseconds.
    pub phases_ms: Vec<(String, f64)>,
    /// The kubelet's resident memory with the round's pods running, MiB.
    pub kubelet_rss_mib: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodStartupReport {
    pub node: String,
    pub rounds: Vec<Round>,
}

impl rkube_ops::Report for PodStartupReport {
    fn render_as(&self, output: rkube_ops::Output) -> String {
        match output {
            rkube_ops::Output::Json => {
                serde_json::to_string_pretty(self).expect("reports encode") + "\n"
            }
            rkube_ops::Output::Table => self.table(),
        }
    }
}

fn ms(us: u64) -> String {
    format!("{:.0} ms", us as f64 / 1000.0)
}

impl PodStartupReport {
    fn table(&self) -> String {
        let mut out = format!(
            "pod start-up on node {} (image present, nodeName set)\n",
            self.node
        );
        for r in &self.rounds {
            out += &format!(
                "{:>4} pods: p50 {}  p99 {}  max {}   (Kubernetes SLO p99 <= {}s: {})\n",
                r.pods,
                ms(r.startup.p50_us),
                ms(r.startup.p99_us),
                ms(r.startup.max_us),
                KUBERNETES_SLO_P99.as_secs(),
                if r.startup.p99_us <= KUBERNETES_SLO_P99.as_micros() as u64 {
                    "MET"
                } else {
                    "MISSED"
                }
            );
            let phases: Vec<String> = r
                .phases_ms
                .iter()
                .map(|(op, v)| format!("{op} {v:.0} ms"))
                .collect();
            out += &format!("           kubelet per pod: {}\n", phases.join(", "));
            if let Some(rss) = r.kubelet_rss_mib {
                out += &format!("           kubelet RSS with these pods: {rss:.1} MiB\n");
            }
        }
        out
    }
}

fn failed(what: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(what.to_string())
}

/// `(sum, count)` of each CRI operation's duration histogram in a `/metrics` text. Pure.
pub fn cri_histograms(text: &str) -> HashMap<String, (f64, f64)> {
    let mut out: HashMap<String, (f64, f64)> = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("rkube_kubelet_cri_operation_duration_seconds_") else {
            continue;
        };
        let (kind, rest) = match rest.split_once('{') {
            Some(x) => x,
            None => continue,
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(op) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("operation=\""))
            .map(|v| v.trim_end_matches('"'))
        else {
            continue;
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        let e = out.entry(op.to_string()).or_default();
        match kind {
            "sum" => e.0 = v,
            "count" => e.1 = v,
            _ => {}
        }
    }
    out
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
    let mut body = String::new();
    let _ = s.read_to_string(&mut body).await;
    body
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn pod(name: &str, round: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"rkube.io/bench": round}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}],
        },
    }))
    .expect("a valid pod")
}

fn ready(p: &Pod) -> bool {
    let s = p.status.as_ref();
    s.and_then(|s| s.phase.as_deref()) == Some("Running")
        && s.and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Runs the rounds; see the module documentation.
pub async fn run_podstartup(
    opts: PodStartupOptions,
    progress: Progress,
) -> Result<PodStartupReport, BenchError> {
    let dir = rkube_ops::ClusterDir::open(&opts.dir)?;
    let layout = dir.load_layout()?;
    let kubelet = layout
        .components
        .iter()
        .find(|c| c.node.as_deref() == Some(opts.node.as_str()))
        .ok_or_else(|| {
            BenchError::InvalidOptions(format!("the cluster has no node {}", opts.node))
        })?
        .clone();
    let pki = rkube_ops::pki::ClusterPki::new(dir.pki_dir());
    let tls = rkube_ops::tls::client_config(
        &pki.ca_cert(),
        Some((pki.admin_cert().as_path(), pki.admin_key().as_path())),
        &[b"h2"],
    )?;
    let mut config =
        rkube_client::Config::new(layout.apiservers.iter().map(|s| s.api_address.to_string()));
    config.tls = Some(tls);
    let client = rkube_client::Client::new(config).map_err(failed)?;
    let api: Api<Pod> = Api::namespaced(&client, "default");
    let kubelet_pid = rkube_ops::process::read_pid_file(&dir.pid_file(&kubelet.name))?;
    let mut rounds = Vec::new();
    for (i, &n) in opts.rounds.iter().enumerate() {
        let label = format!("podstartup-{i}");
        progress(&format!("round {}: {n} pods on {}", i + 1, opts.node));
        let before = cri_histograms(&metrics(kubelet.listen).await);
        let mut watch = api
            .watch(WatchParams {
                label_selector: format!("rkube.io/bench={label}"),
                resource_version: api
                    .list(&ListParams::default())
                    .await
                    .map_err(failed)?
                    .resource_version,
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
        let creates = {
            let (api, sent, label, node, image) = (
                api.clone(),
                sent.clone(),
                label.clone(),
                opts.node.clone(),
                opts.image.clone(),
            );
            tokio::spawn(async move {
                futures::stream::iter(0..n)
                    .map(|j| {
                        let name = format!("{label}-{j}");
                        let p = pod(&name, &label, &node, &image);
                        let (api, sent) = (api.clone(), sent.clone());
                        async move {
                            sent.lock().unwrap().insert(name, Instant::now());
                            api.create(&p, &WriteParams::default()).await.map(drop)
                        }
                    })
                    .buffer_unordered(16)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let deadline = Instant::now() + opts.timeout;
        let mut latencies = Vec::new();
        let mut done = std::collections::HashSet::new();
        while done.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = tokio::time::timeout(left, watch.next())
                .await
                .map_err(|_| {
                    failed(format!(
                        "only {} of {n} pods ran within {:?}",
                        done.len(),
                        opts.timeout
                    ))
                })?;
            let Some(ev) = ev else {
                return Err(failed("the watch ended"));
            };
            if let TypedEvent::Added(p) | TypedEvent::Modified(p) = ev.map_err(failed)? {
                let name = p.metadata.name.clone().unwrap_or_default();
                if ready(&p) && !done.contains(&name) {
                    if let Some(t) = sent.lock().unwrap().get(&name) {
                        latencies.push(t.elapsed());
                        done.insert(name);
                    }
                }
            }
        }
        for r in creates.await.map_err(BenchError::ClientTask)? {
            r.map_err(failed)?;
        }
        let rss = kubelet_pid.and_then(rss_mib);
        let after = cri_histograms(&metrics(kubelet.listen).await);
        let phases_ms = [
            "run_podsandbox",
            "image_status",
            "create_container",
            "start_container",
        ]
        .iter()
        .filter_map(|op| {
            let (s1, c1) = after.get(*op).copied()?;
            let (s0, c0) = before.get(*op).copied().unwrap_or_default();
            (c1 > c0).then(|| (op.to_string(), (s1 - s0) / (c1 - c0) * 1000.0))
        })
        .collect();
        let startup = Summary::of_durations(&latencies);
        progress(&format!(
            "  p50 {} p99 {}; deleting the pods",
            ms(startup.p50_us),
            ms(startup.p99_us)
        ));
        rounds.push(Round {
            pods: n,
            startup,
            phases_ms,
            kubelet_rss_mib: rss,
        });
        for j in 0..n {
            let _ = api
                .delete(&format!("{label}-{j}"), &DeleteParams::default())
                .await;
        }
        let gone_by = Instant::now() + opts.timeout;
        loop {
            let left = api
                .list(&ListParams {
                    label_selector: format!("rkube.io/bench={label}"),
                    ..Default::default()
                })
                .await
                .map_err(failed)?
                .items
                .len();
            if left == 0 {
                break;
            }
            if Instant::now() > gone_by {
                return Err(failed(format!("{left} pods of round {} not gone", i + 1)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(PodStartupReport {
        node: opts.node,
        rounds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_histograms_are_read_by_operation() {
        let text = "# HELP x\n\
            rkube_kubelet_cri_operation_duration_seconds_sum{operation=\"run_podsandbox\"} 3.5\n\
            rkube_kubelet_cri_operation_duration_seconds_count{operation=\"run_podsandbox\"} 20\n\
            rkube_kubelet_cri_operation_duration_seconds_bucket{le=\"0.1\",operation=\"run_podsandbox\"} 4\n\
            rkube_kubelet_cri_operation_duration_seconds_sum{operation=\"start_container\"} 1\n";
        let h = cri_histograms(text);
        assert_eq!(h["run_podsandbox"], (3.5, 20.0));
        assert_eq!(h["start_container"], (1.0, 0.0));
    }
}
