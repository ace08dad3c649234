//! Three `rkube-apiserver` replicas for the benchmarks that talk to the API as clients and
//! components do (`rkube bench api`, `rkube bench controllers`): a temporary directory, a
//! cluster PKI laid out as `rkube up` lays it out (`DIR/pki`), TLS on every replica with
//! client certificates checked against the cluster CA, and readiness by `/readyz`.
//! The replicas are children of the benchmark; [`Replicas::finish`] (or dropping) kills them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::apiserver_cmd::{initial_member, ApiserverArgs, TlsFiles};
use crate::bench::cluster::{free_ports, plan_members, Cluster, System};
use crate::bench::report::{fmt_ms, MachineInfo};
use crate::bench::{BenchError, Progress, MEMBERS};
use crate::pki::{ClientIdentity, ClusterPki, ServingCert};

/// Where and how the replicas start.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// Prefix of the temporary directory's name (`rkube-bench-api-`, ...).
    pub prefix: &'static str,
    pub bin_dir: Option<PathBuf>,
    pub tmp_dir: Option<PathBuf>,
    pub keep_data: bool,
    /// Extra arguments for every replica.
    pub rkube_args: Vec<String>,
    /// Client identities to issue beside the admin's (components the benchmark runs).
    pub clients: Vec<ClientIdentity>,
    pub ready_timeout: Duration,
}

/// Three ready replicas and what a client needs to reach them.
pub struct Replicas {
    tmp: Option<tempfile::TempDir>,
    keep_data: bool,
    /// `TMP/rkube`: data, logs and PKI.
    pub root: PathBuf,
    pub cluster: Cluster,
    /// Each replica's API address.
    pub addrs: Vec<SocketAddr>,
    pub pki: ClusterPki,
    /// TLS client configuration of the admin (ALPN h2).
    pub admin_h2: Arc<rustls::ClientConfig>,
    pub machine: MachineInfo,
    /// `rkube-apiserver --version`.
    pub version: String,
    /// From the first spawn to every replica ready.
    pub startup: Duration,
}

impl Replicas {
    /// Makes the directory and PKI, starts the replicas and waits until each answers
    /// `/readyz` with 200.
    pub async fn start(setup: &Setup, progress: &Progress) -> Result<Self, BenchError> {
        let program =
            crate::process::find_binary(crate::process::APISERVER_BIN, setup.bin_dir.as_deref())?;
        let parent = setup.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut tmp = tempfile::Builder::new()
            .prefix(setup.prefix)
            .tempdir_in(&parent)
            .map_err(|e| BenchError::io("create a temporary directory in", &parent, e))?;
        if setup.keep_data {
            tmp.disable_cleanup(true);
            progress(&format!(
                "keeping {} after the benchmark (--keep-data)",
                tmp.path().display()
            ));
        }
        progress(&format!("working in {}", tmp.path().display()));
        let machine = crate::bench::machine_info(tmp.path())?;
        progress(&format!(
            "machine: {} CPUs, {} MiB, kernel {}, 4 KiB fdatasync p50 {} p99 {}",
            machine.nproc,
            machine.memory_mib,
            machine.kernel,
            fmt_ms(machine.fsync_p50_us as f64 / 1e3),
            fmt_ms(machine.fsync_p99_us as f64 / 1e3)
        ));

        let root = tmp.path().join("rkube");
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| BenchError::io("create", &logs, e))?;
        let ports = free_ports(2 * MEMBERS)?;
        let specs = plan_members(System::Rkube, &root, &ports[..MEMBERS], &ports[MEMBERS..]);
        let pki = ClusterPki::new(root.join("pki"));
        let loopback: std::net::IpAddr = [127, 0, 0, 1].into();
        let servers: Vec<ServingCert> = specs
            .iter()
            .map(|s| ServingCert {
                name: s.name.clone(),
                ips: vec![loopback],
            })
            .collect();
        pki.ensure_with_clients(&servers, &setup.clients)?;
        let args = specs
            .iter()
            .map(|me| {
                let mut a = ApiserverArgs::new(
                    me.name.clone(),
                    me.id,
                    me.data_dir.clone(),
                    me.client_addr.clone(),
                    me.peer_addr.clone(),
                );
                a.initial_members = specs
                    .iter()
                    .map(|m| initial_member(m.id, &m.name, &m.peer_addr, &m.client_addr))
                    .collect();
                a.tls = Some(TlsFiles {
                    cert: pki.serving_cert(&me.name),
                    key: pki.serving_key(&me.name),
                    client_ca: Some(pki.ca_cert()),
                });
                a.extra = setup.rkube_args.iter().map(Into::into).collect();
                a.to_args()
            })
            .collect();
        let addrs: Vec<SocketAddr> = specs
            .iter()
            .map(|s| s.client_addr.parse().expect("planned addresses parse"))
            .collect();
        progress(&format!(
            "starting {MEMBERS} replicas ({}) from {}",
            specs
                .iter()
                .map(|s| format!("{} {}", s.name, s.client_addr))
                .collect::<Vec<_>>()
                .join(", "),
            program.display()
        ));
        let version = crate::bench::binary_version(&program);
        let started = Instant::now();
        let mut cluster = Cluster::start_with_args(System::Rkube, &program, specs, args, &logs)?;
        let health = crate::tls::client_config(&pki.ca_cert(), None, &[b"http/1.1"])?;
        wait_ready(&mut cluster, &addrs, health, setup.ready_timeout).await?;
        let startup = started.elapsed();
        progress(&format!("ready after {:.1} s", startup.as_secs_f64()));
        let admin_h2 = crate::tls::client_config(
            &pki.ca_cert(),
            Some((&pki.admin_cert(), &pki.admin_key())),
            &[b"h2"],
        )?;
        Ok(Self {
            tmp: Some(tmp),
            keep_data: setup.keep_data,
            root,
            cluster,
            addrs,
            pki,
            admin_h2,
            machine,
            version,
            startup,
        })
    }

    /// The directory the replicas' logs are in.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The replicas' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.cluster.pids()
    }

    /// Kills the replicas and removes the temporary directory (unless it is kept).
    pub fn finish(mut self) -> Result<(), BenchError> {
        self.cluster.kill_all();
        let tmp = self.tmp.take().expect("finish runs once");
        if self.keep_data {
            return Ok(());
        }
        let path = tmp.path().to_path_buf();
        tmp.close()
            .map_err(|e| BenchError::io("remove the temporary directory", &path, e))
    }
}

/// Waits until every replica answers `/readyz` with 200 (a leader is known and the replica
/// has applied what it knows to be committed).
async fn wait_ready(
    cluster: &mut Cluster,
    addrs: &[SocketAddr],
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + timeout;
    loop {
        cluster.check_alive()?;
        let answers = futures::future::join_all(addrs.iter().map(|&addr| {
            let config = config.clone();
            async move {
                let probe = async {
                    let mut s = crate::tls::connect(addr, config).await.ok()?;
                    crate::tls::http_get_status(&mut s, &addr.to_string(), "/readyz")
                        .await
                        .ok()
                };
                tokio::time::timeout(Duration::from_secs(1), probe)
                    .await
                    .ok()
                    .flatten()
            }
        }))
        .await;
        if answers.iter().all(|a| *a == Some(200)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(BenchError::NotReady {
                system: "rkube",
                reason: format!("/readyz answers: {answers:?}"),
                timeout,
                logs: Vec::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
