//! Leader election on a coordination.k8s.io/v1 Lease, as client-go's `leaderelection`
//! does it, so an active/standby pair of components never acts twice.
//!
//! Expected flow: every candidate runs [`LeaderElector::run`] with the work to do while
//! leading. A candidate reads the Lease every retry period (and at once when a watch of
//! the Lease sees it change): it takes the Lease when there is none, when it is released
//! (empty holder), or when the holder has not renewed it for the lease duration *as this
//! candidate observed it* (local time of the last change seen, so clocks need not agree).
//! Every write is a compare-and-set on the Lease's resourceVersion, so two candidates
//! never both win. The leader renews every retry period; if it cannot renew within the
//! renew deadline it stops leading (its work's token is cancelled) and becomes a
//! candidate again. On shutdown the leader stops its work, then releases the Lease
//! (empty holder, 1 s duration), so a standby takes over without waiting out the lease.
//!
//! Guarantees: with renew deadline < lease duration (the defaults: 10 s < 15 s), a leader
//! that cannot renew stops acting before any other candidate may take over.
//! Assumptions: candidates' clocks run at the same *rate* (not the same time).
//! Caveat: "stops acting" means the work's token is cancelled; work that ignores its token
//! keeps running (the elector waits for it before campaigning again).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use rkube_client::{Api, Client, WatchParams, WriteParams};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Timing and naming of an election (client-go's defaults).
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The Lease's namespace (components use `kube-system`).
    pub namespace: String,
    /// The Lease's name (`kube-controller-manager`, `kube-scheduler`).
    pub name: String,
    /// This candidate's identity, unique among candidates (written as the holder).
    pub identity: String,
    /// How long others wait after the last renewal they saw before taking over.
    pub lease_duration: Duration,
    /// The leader gives up leading if it could not renew for this long.
    pub renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// An identity unique to this process: `<prefix>_<hostname>_<random>` (`prefix` first, so
/// `rkube status` can tell which component holds a Lease).
pub fn unique_identity(prefix: &str) -> String {
    use rand::Rng;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let suffix: u64 = rand::thread_rng().gen();
    match host.is_empty() {
        true => format!("{prefix}_{suffix:016x}"),
        false => format!("{prefix}_{host}_{suffix:016x}"),
    }
}

/// Why an election step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad leader election configuration: {0}")]
    Config(String),
    #[error("reading or writing Lease {namespace}/{name} failed")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("no answer about Lease {namespace}/{name} within {timeout:?}")]
    Timeout {
        namespace: String,
        name: String,
        timeout: Duration,
    },
}

/// The holder record as last observed, and when (local time) it last changed.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    holder: String,
    renew_time: Option<String>,
    duration: Duration,
    transitions: i32,
    at: Instant,
}

/// What a candidate should do about a Lease it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Someone else holds it and it has not expired.
    Wait,
    /// Write it with us as the holder (a renewal when we already are).
    Take,
}

/// The pure rule: `holder` is the observed holder, `observed_at` when the record last
/// changed (local time), `duration` the record's lease duration.
pub(crate) fn decide(
    me: &str,
    holder: &str,
    observed_at: Instant,
    duration: Duration,
    now: Instant,
) -> Decision {
    if holder.is_empty() || holder == me || observed_at + duration <= now {
        Decision::Take
    } else {
        Decision::Wait
    }
}

/// A candidate in one election; see the module documentation.
pub struct LeaderElector {
    api: Api<Lease>,
    client: Client,
    config: LeaseConfig,
    observed: Option<Observed>,
    leading: watch::Sender<bool>,
    wake: std::sync::Arc<Notify>,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Result<Self, Error> {
        if config.renew_deadline >= config.lease_duration {
            return Err(Error::Config(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                config.renew_deadline, config.lease_duration
            )));
        }
        if config.retry_period.is_zero() || config.retry_period >= config.renew_deadline {
            return Err(Error::Config(format!(
                "the retry period ({:?}) must be positive and shorter than the renew deadline ({:?})",
                config.retry_period, config.renew_deadline
            )));
        }
        if config.identity.is_empty() || config.name.is_empty() {
            return Err(Error::Config(
                "a lease name and a candidate identity are required".into(),
            ));
        }
        Ok(LeaderElector {
            api: Api::within(&client, &config.namespace),
            client,
            config,
            observed: None,
            leading: watch::Sender::new(false),
            wake: Default::default(),
        })
    }

    /// Whether this candidate leads now (changes as it gains and loses the Lease).
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    fn lease_error(&self, source: rkube_client::Error) -> Error {
        Error::Lease {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }

    /// Campaigns until `shutdown`; runs `lead` while leading (see the module docs). When
    /// `lead`'s future ends on its own, the elector releases the Lease and returns.
    pub async fn run<F, Fut>(mut self, shutdown: CancellationToken, mut lead: F)
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let watcher = tokio::spawn(wake_on_change(
            self.client.clone(),
            self.config.clone(),
            self.wake.clone(),
            shutdown.clone(),
        ));
        loop {
            if !self.acquire(&shutdown).await {
                break;
            }
            tracing::info!(lease = %self.lease_name(), identity = %self.config.identity, "acquired the lease; leading");
            self.leading.send_replace(true);
            let token = shutdown.child_token();
            let mut work = tokio::spawn(lead(token.clone()));
            let outcome = self.renew_while_leading(&shutdown, &mut work).await;
            token.cancel();
            if !work.is_finished() {
                let _ = work.await;
            }
            self.leading.send_replace(false);
            match outcome {
                Leading::Lost => {
                    tracing::warn!(lease = %self.lease_name(), "could not renew the lease in time; stopped leading, standing by");
                }
                Leading::Shutdown | Leading::WorkEnded => {
                    self.release().await;
                    break;
                }
            }
        }
        watcher.abort();
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    /// Tries until it holds the Lease (true) or shutdown (false).
    async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        loop {
            let timeout = self.config.renew_deadline;
            match self.try_acquire_or_renew(timeout).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %crate::informer::error_chain(&e), "leader election attempt failed")
                }
            }
            let wait = jittered(self.config.retry_period);
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn renew_while_leading(
        &mut self,
        shutdown: &CancellationToken,
        work: &mut tokio::task::JoinHandle<()>,
    ) -> Leading {
        let mut renewed_at = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Leading::Shutdown,
                _ = &mut *work => return Leading::WorkEnded,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            let left = self
                .config
                .renew_deadline
                .saturating_sub(renewed_at.elapsed());
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Leading::Shutdown,
                r = self.try_acquire_or_renew(left) => r,
            };
            match attempt {
                Ok(true) => renewed_at = Instant::now(),
                Ok(false) => return Leading::Lost,
                Err(e) => {
                    tracing::warn!(error = %crate::informer::error_chain(&e), "renewing the lease failed")
                }
            }
            if renewed_at.elapsed() >= self.config.renew_deadline {
                return Leading::Lost;
            }
        }
    }

    /// One attempt: read the Lease, decide, write. `Ok(true)`: we hold it now.
    async fn try_acquire_or_renew(&mut self, timeout: Duration) -> Result<bool, Error> {
        let timeout = timeout.max(Duration::from_millis(100));
        match tokio::time::timeout(timeout, self.attempt()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                namespace: self.config.namespace.clone(),
                name: self.config.name.clone(),
                timeout,
            }),
        }
    }

    async fn attempt(&mut self) -> Result<bool, Error> {
        let me = self.config.identity.clone();
        let now = MicroTime(crate::object::now());
        let duration_secs = self.config.lease_duration.as_secs().max(1) as i32;
        let current = match self.api.get(&self.config.name).await {
            Ok(l) => l,
            Err(e) if e.is_not_found() => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me),
                        lease_duration_seconds: Some(duration_secs),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                return match self.api.create(&lease, &WriteParams::default()).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.is_already_exists() => Ok(false),
                    Err(e) => Err(self.lease_error(e)),
                };
            }
            Err(e) => return Err(self.lease_error(e)),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = Observed {
            holder: holder.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0.to_string()),
            duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64),
            transitions: spec.lease_transitions.unwrap_or(0),
            at: Instant::now(),
        };
        let observed = match &self.observed {
            Some(o)
                if o.holder == record.holder
                    && o.renew_time == record.renew_time
                    && o.duration == record.duration =>
            {
                o.clone()
            }
            _ => {
                self.observed = Some(record.clone());
                record
            }
        };
        if decide(&me, &holder, observed.at, observed.duration, Instant::now()) == Decision::Wait {
            return Ok(false);
        }
        let renewing = holder == me;
        let mut lease = current;
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: if renewing {
                spec.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if renewing {
                observed.transitions
            } else {
                observed.transitions + 1
            }),
            ..spec
        });
        match self.api.update(&lease, &WriteParams::default()).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_conflict() => Ok(false),
            Err(e) => Err(self.lease_error(e)),
        }
    }

    /// Gives the Lease up (empty holder, 1 s duration) if we still hold it.
    async fn release(&mut self) {
        let attempt = async {
            let mut lease = self.api.get(&self.config.name).await?;
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(false);
            }
            let now = MicroTime(crate::object::now());
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..spec
            });
            self.api.update(&lease, &WriteParams::default()).await?;
            Ok::<_, rkube_client::Error>(true)
        };
        match tokio::time::timeout(self.config.renew_deadline, attempt).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.lease_name(), "released the lease"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(lease = %self.lease_name(), error = %e, "releasing the lease failed; others take over when it expires")
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease_name(), "releasing the lease timed out; others take over when it expires")
            }
        }
    }
}

enum Leading {
    Lost,
    Shutdown,
    WorkEnded,
}

/// `d` stretched by up to 20% (client-go's jitter factor 1.2), so candidates do not
/// march in step.
fn jittered(d: Duration) -> Duration {
    use rand::Rng;
    d.mul_f64(1.0 + rand::thread_rng().gen_range(0.0..0.2))
}

/// Wakes candidates when the Lease changes, so a released Lease is taken at once rather
/// than at the next retry. Best effort: polling covers any failure here.
async fn wake_on_change(
    client: Client,
    config: LeaseConfig,
    wake: std::sync::Arc<Notify>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::within(&client, &config.namespace);
    loop {
        let params = WatchParams {
            field_selector: format!("metadata.name={}", config.name),
            ..WatchParams::default()
        };
        let mut watch = tokio::select! {
            _ = shutdown.cancelled() => return,
            w = api.watch(params) => match w {
                Ok(w) => w,
                Err(_) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(config.retry_period) => continue,
                    }
                }
            },
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = watch.next() => ev,
            };
            match ev {
                Some(Ok(rkube_client::TypedEvent::Bookmark { .. }))
                | Some(Ok(rkube_client::TypedEvent::InitialEventsEnd { .. })) => {}
                Some(Ok(_)) => wake.notify_waiters(),
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_taken_only_when_free_ours_or_expired_as_observed() {
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        // (holder, seconds since the record last changed, decision)
        let cases = [
            ("", 0, Decision::Take),
            ("me", 0, Decision::Take),
            ("other", 0, Decision::Wait),
            ("other", 14, Decision::Wait),
            ("other", 15, Decision::Take),
            ("other", 100, Decision::Take),
        ];
        for (holder, age, want) in cases {
            let now = t0 + Duration::from_secs(age);
            assert_eq!(
                decide("me", holder, t0, d, now),
                want,
                "{holder} after {age}s"
            );
        }
    }

    #[tokio::test]
    async fn timings_that_could_let_two_lead_are_refused() {
        let client = Client::new(rkube_client::Config::new(["127.0.0.1:1"])).unwrap();
        let mut c = LeaseConfig::new("kube-system", "x", "me");
        c.renew_deadline = c.lease_duration;
        assert!(matches!(
            LeaderElector::new(client.clone(), c),
            Err(Error::Config(_))
        ));
        let mut c = LeaseConfig::new("kube-system", "x", "me");
        c.retry_period = c.renew_deadline;
        assert!(matches!(
            LeaderElector::new(client.clone(), c),
            Err(Error::Config(_))
        ));
        assert!(LeaderElector::new(client, LeaseConfig::new("kube-system", "x", "me")).is_ok());
    }

    #[test]
    fn identities_start_with_the_component_and_differ() {
        let a = unique_identity("scheduler-1");
        let b = unique_identity("scheduler-1");
        assert!(a.starts_with("scheduler-1_"), "{a}");
        assert_ne!(a, b);
    }
}
