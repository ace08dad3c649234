//! The store handle the apiserver holds: one replica of the replicated store.
//!
//! It owns the Raft node, its log and state machine, and hides where the leader
//! is: writes are proposed locally when this replica leads and forwarded to the
//! leader otherwise; linearizable reads confirm a read index with the leader
//! and wait until this replica has applied up to it. Retries happen only when
//! a request certainly did not reach the log; anything else that fails after
//! proposing is reported as possibly applied (`Error::Timeout`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use rkube_proto::raft::{HelloRequest, ReadIndexRequest};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::forward::{Forwarder, Outcome};
use crate::log_store::LogStore;
use crate::metrics::StoreMetrics;
use crate::mvcc::{validate_range, validate_revision, validate_txn, ScanLimits};
use crate::network::PeerDialer;
use crate::proposer::Proposer;
use crate::state_machine::{Shared, StateMachine};
use crate::types::*;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub id: NodeId,
    pub name: String,
    pub data_dir: PathBuf,
    /// This replica's own advertised addresses.
    pub peer_address: String,
    pub api_address: String,
    /// The members that bootstrap a new cluster (the same list on every replica).
    pub initial_members: BTreeMap<NodeId, Member>,
    /// Dial these addresses instead of a peer's advertised one.
    pub peer_overrides: HashMap<NodeId, String>,
    /// Revisions of history kept for watches and old reads.
    pub history_limit: usize,
    /// Build a snapshot (and purge the log behind it) every this many entries.
    pub snapshot_every: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// How long one client request may take, retries included.
    pub request_timeout: Duration,
    /// Log entries of client writes the leader keeps in flight (see
    /// [`crate::proposer`]).
    pub max_inflight_proposals: usize,
    /// The size of a Raft log segment file (see [`crate::wal`]).
    pub wal_segment_size: u64,
}

impl StoreConfig {
    pub fn new(id: NodeId, name: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id,
            name: name.into(),
            data_dir: data_dir.into(),
            peer_address: String::new(),
            api_address: String::new(),
            initial_members: BTreeMap::new(),
            peer_overrides: HashMap::new(),
            history_limit: 20_000,
            snapshot_every: 10_000,
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            request_timeout: Duration::from_secs(5),
            max_inflight_proposals: crate::proposer::DEFAULT_MAX_IN_FLIGHT,
            wal_segment_size: crate::wal::DEFAULT_SEGMENT_SIZE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bootstrap {
    Done,
    Rejoin,
}

/// One batch of a watch stream: whole revisions, or a progress notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBatch {
    pub events: Vec<Event>,
    /// Everything up to this revision has been delivered.
    pub revision: i64,
}

#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub range: KeyRange,
    /// 0 = only what happens after the watch starts.
    pub start_revision: i64,
    pub prev_kv: bool,
    pub progress_interval: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct Status {
    pub id: NodeId,
    pub name: String,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub revision: i64,
    pub compact_revision: i64,
    /// (id, member, is learner)
    pub members: Vec<(NodeId, Member, bool)>,
}

pub struct Store {
    pub(crate) raft: Raft,
    pub(crate) shared: Arc<Shared>,
    log: LogStore,
    proposer: Proposer,
    forwarder: Forwarder,
    dialer: PeerDialer,
    config: StoreConfig,
    metrics: StoreMetrics,
    /// Set while a replica that lost its data rejoins: it must not answer Raft
    /// traffic (nor vote) as its old self, see [`Store::rejoin`].
    rejoining: std::sync::atomic::AtomicBool,
    /// When a leader last reached this replica (see [`Store::leader_contact`]).
    leader_contact: std::sync::Mutex<Instant>,
    /// Set while [`Store::take_over_election`] runs.
    taking_over: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens this replica from its data folder (creating it on first start) and
    /// starts Raft. A pristine replica bootstraps the initial members unless a
    /// peer says the cluster already exists.
    pub async fn open(config: StoreConfig, metrics: StoreMetrics) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::Io {
            what: "creating the data folder",
            path: config.data_dir.clone(),
            source,
        })?;
        let wal_dir = config.data_dir.join("raft-wal");
        let old_log = config.data_dir.join("raft-log.redb");
        if old_log.exists() {
            crate::log_store::import_redb(&old_log, &wal_dir).map_err(|source| Error::Io {
                what: "moving the raft log out of redb",
                path: old_log.clone(),
                source,
            })?;
        }
        let log =
            LogStore::open_with_segment_size(&wal_dir, config.wal_segment_size, metrics.clone())
                .map_err(|source| Error::Io {
                    what: "opening the raft log",
                    path: wal_dir.clone(),
                    source,
                })?;
        let snapshot_dir = config.data_dir.join("snapshot");
        let sm = StateMachine::open(&snapshot_dir, config.history_limit).map_err(|source| {
            Error::Io {
                what: "opening the snapshot",
                path: snapshot_dir.clone(),
                source,
            }
        })?;
        let shared = sm.shared();
        let raft_config = Config {
            cluster_name: "rkube".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            // Keep some log behind each snapshot so a briefly lagging follower
            // catches up from the log rather than by a whole snapshot.
            max_in_snapshot_log_to_keep: (config.snapshot_every / 2).min(1000),
            max_payload_entries: 512,
            install_snapshot_timeout: 2000,
            ..Default::default()
        }
        .validate()
        .map_err(Error::RaftConfig)?;
        let dialer = PeerDialer::new(config.peer_overrides.clone());
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            dialer.clone(),
            log.clone(),
            sm,
        )
        .await
        .map_err(Error::Raft)?;
        let proposer =
            Proposer::start(raft.clone(), config.max_inflight_proposals, metrics.clone());
        let store = Arc::new(Self {
            raft,
            shared,
            log,
            proposer,
            forwarder: Forwarder::new(dialer.clone()),
            dialer,
            config,
            metrics,
            rejoining: false.into(),
            leader_contact: std::sync::Mutex::new(Instant::now()),
            taking_over: false.into(),
        });
        if store.bootstrap().await? == Bootstrap::Rejoin {
            store
                .rejoining
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(Arc::clone(&store).rejoin());
        }
        store.spawn_metrics_updater();
        Ok(store)
    }

    async fn bootstrap(&self) -> Result<Bootstrap> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|_| Error::Shutdown)?;
        if initialized || self.config.initial_members.is_empty() {
            return Ok(Bootstrap::Done);
        }
        if !self.config.initial_members.contains_key(&self.config.id) {
            tracing::info!("not an initial member; waiting to be added to a cluster");
            return Ok(Bootstrap::Done);
        }
        for (id, m) in &self.config.initial_members {
            if *id == self.config.id {
                continue;
            }
            let Ok(mut client) = self.dialer.client(*id, m) else {
                continue;
            };
            let mut req = tonic::Request::new(HelloRequest {});
            req.set_timeout(Duration::from_millis(500));
            if let Ok(reply) = client.hello(req).await {
                // Only a cluster that already elected a leader without this replica
                // proves it exists: at a first, concurrent bootstrap a peer may
                // have initialized but cannot lead until this replica votes.
                if reply.get_ref().initialized && reply.get_ref().leader != 0 {
                    tracing::warn!(peer = %m, "this replica has no data but its cluster exists: rejoining as a new member");
                    return Ok(Bootstrap::Rejoin);
                }
            }
        }
        tracing::info!(
            members = self.config.initial_members.len(),
            "bootstrapping a new cluster"
        );
        match self
            .raft
            .initialize(self.config.initial_members.clone())
            .await
        {
            Ok(()) => Ok(Bootstrap::Done),
            Err(RaftError::APIError(e)) => {
                tracing::info!(reason = %e, "cluster already initialized");
                Ok(Bootstrap::Done)
            }
            Err(RaftError::Fatal(e)) => Err(Error::Raft(e)),
        }
    }

    /// A replica whose data folder was lost comes back as a new member: the
    /// cluster removes its old self, then adds it as a learner and promotes it
    /// once it has caught up (by snapshot). Until its old self is removed it
    /// answers no Raft traffic: a replica that forgot entries it acknowledged
    /// must not vote, or a committed write could be lost; and the leader must
    /// never see a follower's log go backwards.
    async fn rejoin(self: Arc<Self>) {
        use rkube_proto::store::maintenance_client::MaintenanceClient;
        use rkube_proto::store::{
            Member as PbMember, MemberAddRequest, MemberListRequest, MemberRemoveRequest,
        };
        let id = self.config.id;
        let me = self
            .config
            .initial_members
            .get(&id)
            .cloned()
            .unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            for (peer_id, m) in &self.config.initial_members {
                if *peer_id == id || m.api_address.is_empty() {
                    continue;
                }
                let res = async {
                    let ch = tonic::transport::Endpoint::from_shared(format!(
                        "http://{}",
                        m.api_address
                    ))?
                    .connect_timeout(Duration::from_millis(500))
                    .connect()
                    .await?;
                    let mut c = MaintenanceClient::new(ch);
                    let members = c.member_list(MemberListRequest {}).await?;
                    if members.get_ref().members.iter().any(|x| x.id == id) {
                        c.member_remove(MemberRemoveRequest { id }).await?;
                        tracing::info!("old membership of this replica removed");
                    }
                    self.rejoining
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    let member = PbMember {
                        id,
                        name: me.name.clone(),
                        peer_address: self.config.peer_address.clone(),
                        api_address: self.config.api_address.clone(),
                        learner: false,
                    };
                    c.member_add(MemberAddRequest {
                        member: Some(member),
                        learner_only: false,
                    })
                    .await?;
                    Ok::<_, RejoinError>(())
                }
                .await;
                match res {
                    Ok(()) => {
                        tracing::info!("rejoined the cluster as a voter");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(via = %m, attempt, error = %e, "rejoining failed; will retry")
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether this replica answers Raft traffic (false while rejoining).
    pub fn accepts_raft(&self) -> bool {
        !self.rejoining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Notes that a leader (of any term) just reached this replica.
    pub(crate) fn leader_contact(&self) {
        *self.leader_contact.lock().unwrap() = Instant::now();
    }

    /// Called after this replica refused a vote. openraft 0.9 has no pre-vote:
    /// when the leader dies, the survivor whose timer fires first campaigns even
    /// if its log is shorter; it is refused, and having voted for itself in the
    /// new term it then refuses the better candidate of the same term (or a lower
    /// id), so the election costs one or two more timeouts. A replica that has
    /// just refused such a candidate for its shorter log, and has itself not
    /// heard from a leader for a whole leader lease, knows the leader is gone and
    /// that it is the better candidate: it campaigns at once (twice if its first
    /// term collides with the refused candidate's). Elections are always safe in
    /// Raft; this only changes who starts one, and when.
    pub(crate) fn after_refused_vote(
        self: &Arc<Self>,
        candidate_term: u64,
        candidate_last_log: Option<LogId>,
        my_term: u64,
        my_last_log: Option<LogId>,
    ) {
        let lease = Duration::from_millis(self.config.election_timeout_max_ms);
        let silent = self.leader_contact.lock().unwrap().elapsed() >= lease;
        let voting_follower = {
            let rx = self.raft.metrics();
            let m = rx.borrow();
            m.state != ServerState::Leader
                && m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == self.config.id)
        };
        if !should_take_over(
            silent,
            voting_follower,
            (candidate_term, candidate_last_log),
            (my_term, my_last_log),
        ) {
            return;
        }
        if self
            .taking_over
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let round = Duration::from_millis(this.config.heartbeat_ms.max(20) * 2);
            for _ in 0..2 {
                tracing::info!(
                    candidate_term,
                    "a candidate with a shorter log campaigns after the leader went silent; \
                     campaigning instead"
                );
                if this.raft.trigger().elect().await.is_err() {
                    break;
                }
                let mut rx = this.raft.metrics();
                let decided = tokio::time::timeout(round, async {
                    loop {
                        {
                            // A leader of the new term (us or another): the old
                            // leader's committed vote may still show right after
                            // the trigger.
                            let m = rx.borrow_and_update();
                            if m.state == ServerState::Leader
                                || (m.current_leader.is_some()
                                    && m.vote.leader_id().term >= candidate_term)
                            {
                                return;
                            }
                        }
                        if rx.changed().await.is_err() {
                            return;
                        }
                    }
                })
                .await;
                if decided.is_ok() {
                    break;
                }
            }
            this.taking_over
                .store(false, std::sync::atomic::Ordering::SeqCst);
        });
    }

    fn spawn_metrics_updater(self: &Arc<Self>) {
        let mut rx = self.raft.metrics();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(store) = weak.upgrade() else { return };
                {
                    let m = rx.borrow_and_update().clone();
                    store.metrics.term.set(m.current_term as i64);
                    store
                        .metrics
                        .is_leader
                        .set((m.state == ServerState::Leader) as i64);
                    store
                        .metrics
                        .leader_id
                        .set(m.current_leader.unwrap_or(0) as i64);
                    store
                        .metrics
                        .applied_index
                        .set(m.last_applied.map_or(0, |l| l.index) as i64);
                    store.metrics.commit_index.set(store.commit_index() as i64);
                    let (rev, compact) = store
                        .shared
                        .read(|s| (s.kv.revision(), s.kv.compact_revision()));
                    store.metrics.revision.set(rev);
                    store.metrics.compact_revision.set(compact);
                }
                drop(store);
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn revision(&self) -> i64 {
        self.shared.read(|s| s.kv.revision())
    }

    fn commit_index(&self) -> u64 {
        // openraft saves the committed pointer on every commit.
        self.log.committed_index()
    }

    fn member(&self, id: NodeId) -> Option<Member> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&id).cloned()
    }

    /// The leader, waiting until one is known or the deadline passes.
    async fn leader(&self, deadline: Instant) -> Result<NodeId> {
        let mut rx = self.raft.metrics();
        loop {
            if let Some(l) = rx.borrow_and_update().current_leader {
                return Ok(l);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::NoQuorum("no leader elected".into()));
            }
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Shutdown),
                Err(_) => {
                    return Err(Error::NoQuorum(
                        "no leader elected before the deadline".into(),
                    ))
                }
            }
        }
    }

    /// Proposes a command and returns what applying it produced.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult> {
        match &cmd {
            Command::Txn(txn) => validate_txn(txn)?,
            Command::Compact { .. } => {}
            Command::Batch(_) => {
                return Err(Error::InvalidArgument(
                    "batches are formed by the leader, not proposed".into(),
                ))
            }
        }
        let started = Instant::now();
        self.metrics.proposals_total.inc();
        let res = self
            .write_inner(cmd, started + self.config.request_timeout)
            .await;
        match &res {
            Ok(_) => self
                .metrics
                .proposal_seconds
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.metrics.proposals_failed_total.inc();
            }
        }
        match res? {
            CommandResult::Rejected(msg) => Err(Error::InvalidArgument(msg)),
            other => Ok(other),
        }
    }

    async fn write_inner(&self, cmd: Command, deadline: Instant) -> Result<CommandResult> {
        let mut last_err = String::from("no leader");
        loop {
            if Instant::now() >= deadline {
                return Err(Error::NoQuorum(last_err));
            }
            let leader = self.leader(deadline).await?;
            if leader == self.config.id {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.propose_local(cmd.clone(), left).await? {
                    Some(result) => return Ok(result),
                    // Not (or no longer) in the log: safe to retry.
                    None => last_err = "leadership moved".to_string(),
                }
            } else {
                let Some(member) = self.member(leader) else {
                    last_err = format!("leader {leader} is not in the membership");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let bytes = postcard::to_stdvec(&cmd).expect("commands encode");
                match self
                    .forwarder
                    .forward(leader, &member, bytes.into(), deadline)
                    .await
                {
                    Outcome::Applied(result) => {
                        return postcard::from_bytes(&result).map_err(Error::BadReply);
                    }
                    Outcome::NotLeader => {
                        last_err = format!("{member} is no longer the leader");
                    }
                    Outcome::NotSent(why) => {
                        last_err = format!("leader {member} unreachable: {why}");
                    }
                    Outcome::Failed(tonic::Code::InvalidArgument, why) => {
                        return Err(Error::InvalidArgument(why));
                    }
                    Outcome::Failed(_, why) | Outcome::Lost(why) => {
                        return Err(Error::Timeout(format!(
                            "forwarding to the leader {member}: {why}"
                        )));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The leader's side of a forwarded proposal: `Ok(None)` means "not leader".
    /// Concurrent proposals share log entries (see [`crate::proposer`]).
    pub(crate) async fn propose_local(
        &self,
        cmd: Command,
        left: Duration,
    ) -> Result<Option<CommandResult>> {
        self.proposer.propose(cmd, left).await
    }

    /// The leader's side of a read index request: `Ok(None)` means "not leader".
    pub(crate) async fn read_index_local(&self) -> Result<Option<u64>> {
        match tokio::time::timeout(self.config.request_timeout, self.raft.get_read_log_id()).await {
            Err(_) => Err(Error::NoQuorum(
                "leadership could not be confirmed in time".into(),
            )),
            Ok(Ok((read, _applied))) => Ok(Some(read.map_or(0, |l| l.index))),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => Ok(None),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                Err(Error::NoQuorum(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(_))) => Err(Error::Shutdown),
        }
    }

    /// Waits until a read on this replica is linearizable (read index).
    pub async fn linearize(&self) -> Result<()> {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut last_err = String::from("no leader");
        loop {
            if Instant::now() >= deadline {
                return Err(Error::NoQuorum(last_err));
            }
            let leader = self.leader(deadline).await?;
            let index = if leader == self.config.id {
                match self.read_index_local().await {
                    Ok(Some(i)) => Some(i),
                    Ok(None) => None,
                    Err(e) if Instant::now() < deadline => {
                        last_err = e.to_string();
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else if let Some(member) = self.member(leader) {
                let mut client = self.dialer.client(leader, &member)?;
                let mut req = tonic::Request::new(ReadIndexRequest {});
                req.set_timeout(deadline.saturating_duration_since(Instant::now()));
                match client.read_index(req).await {
                    Ok(r) if !r.get_ref().not_leader => Some(r.get_ref().index),
                    Ok(_) => None,
                    Err(status) => {
                        last_err = format!("read index from {member}: {}", status.message());
                        None
                    }
                }
            } else {
                None
            };
            if let Some(index) = index {
                let left = deadline.saturating_duration_since(Instant::now());
                return match self
                    .raft
                    .wait(Some(left))
                    .applied_index_at_least(Some(index), "read index")
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(openraft::metrics::WaitError::Timeout(..)) => Err(Error::Timeout(
                        "this replica did not catch up in time".into(),
                    )),
                    Err(openraft::metrics::WaitError::ShuttingDown) => Err(Error::Shutdown),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads a range; linearizable unless `serializable`.
    pub async fn range(&self, op: RangeOp, serializable: bool) -> Result<(RangeResult, i64)> {
        validate_range(&op.range)?;
        if !serializable {
            self.linearize().await?;
        }
        self.shared
            .read(|s| Ok((s.kv.range(&op)?, s.kv.revision())))
    }

    pub async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        if !txn.has_writes() {
            // A read-only transaction needs no log entry: evaluate it on a
            // linearizable view. Compares and reads see one revision.
            validate_txn(&txn)?;
            self.linearize().await?;
            return Ok(self.shared.read(|s| s.kv.read_txn(&txn)));
        }
        match self.write(Command::Txn(txn)).await? {
            CommandResult::Txn(r) => Ok(r),
            other => Err(Error::UnexpectedResult(Box::new(other))),
        }
    }

    pub async fn compact(&self, revision: i64) -> Result<i64> {
        // Refuse what is certainly wrong before it reaches the log (the state
        // machine checks again when applying).
        validate_revision(revision)?;
        let (current, compacted) = self
            .shared
            .read(|s| (s.kv.revision(), s.kv.compact_revision()));
        if revision <= compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted,
            });
        }
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        match self.write(Command::Compact { revision }).await? {
            CommandResult::Compacted { revision } => Ok(revision),
            other => Err(Error::UnexpectedResult(Box::new(other))),
        }
    }

    /// Content hash at a revision of this replica's applied state.
    pub fn hash(&self, revision: i64) -> Result<(String, i64, i64)> {
        self.shared.read(|s| {
            let (h, n) = s.kv.hash(revision)?;
            Ok((
                h,
                n,
                if revision == 0 {
                    s.kv.revision()
                } else {
                    revision
                },
            ))
        })
    }

    /// Starts a watch; batches arrive on the returned channel until the
    /// receiver is dropped, the store stops, or an error (e.g. compacted) ends it.
    pub fn watch(
        self: &Arc<Self>,
        req: WatchRequest,
    ) -> Result<mpsc::Receiver<Result<WatchBatch>>> {
        validate_range(&req.range)?;
        validate_revision(req.start_revision)?;
        let (tx, rx) = mpsc::channel(16);
        let store = self.clone();
        let mut notify = self.shared.revision.subscribe();
        let (current, compacted) = self
            .shared
            .read(|s| (s.kv.revision(), s.kv.compact_revision()));
        let mut next = if req.start_revision == 0 {
            current + 1
        } else {
            req.start_revision
        };
        if next <= compacted {
            return Err(Error::Compacted {
                requested: next,
                compacted,
            });
        }
        let progress = if req.progress_interval.is_zero() {
            Duration::from_secs(5)
        } else {
            req.progress_interval
        };
        self.metrics.watchers.inc();
        tokio::spawn(async move {
            let _guard = WatcherGuard(store.metrics.watchers.clone());
            // A progress notification goes out after `progress` without any
            // message to this watcher, whatever happens to other keys.
            let mut quiet_since = tokio::time::Instant::now();
            loop {
                // Deliver everything applied so far, whole revisions at a time.
                loop {
                    let scanned = store.shared.read(|s| {
                        let (revs, end) = s.kv.events_since(
                            next,
                            &req.range,
                            req.prev_kv,
                            ScanLimits::default(),
                        )?;
                        Ok::<_, Error>((revs, end, s.kv.revision()))
                    });
                    let (revs, end, current) = match scanned {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    if end < next {
                        break;
                    }
                    if !revs.is_empty() {
                        let events = revs.into_iter().flat_map(|r| r.events).collect();
                        if tx
                            .send(Ok(WatchBatch {
                                events,
                                revision: end,
                            }))
                            .await
                            .is_err()
                        {
                            return;
                        }
                        quiet_since = tokio::time::Instant::now();
                    }
                    next = end + 1;
                    if end >= current {
                        break;
                    }
                }
                tokio::select! {
                    changed = notify.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep_until(quiet_since + progress) => {
                        // Everything up to next - 1 was delivered. A replica that
                        // has not reached that revision yet (a watch resumed here
                        // from a revision seen on a replica further ahead, or one
                        // that starts in the future) stays quiet: announcing its
                        // own lower revision would move the watcher backwards.
                        if store.revision() >= next - 1 {
                            let seen = next - 1;
                            if tx.send(Ok(WatchBatch { events: vec![], revision: seen })).await.is_err() {
                                return;
                            }
                        }
                        quiet_since = tokio::time::Instant::now();
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    pub async fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| (*id, node.clone(), !voters.contains(id)))
            .collect();
        let (revision, compact_revision) = self
            .shared
            .read(|s| (s.kv.revision(), s.kv.compact_revision()));
        Status {
            id: self.config.id,
            name: self.config.name.clone(),
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            commit_index: self.commit_index(),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            revision,
            compact_revision,
            members,
        }
    }

    pub async fn is_initialized(&self) -> bool {
        self.raft.is_initialized().await.unwrap_or(false)
    }

    /// Builds a snapshot now; returns its last index.
    pub async fn snapshot(&self) -> Result<u64> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|_| Error::Shutdown)?;
        let target = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index);
        self.raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(|m| m.snapshot.map_or(0, |l| l.index) >= target, "snapshot")
            .await
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => {
                    Error::Timeout(format!("no snapshot up to index {target} within 30 s"))
                }
                openraft::metrics::WaitError::ShuttingDown => Error::Shutdown,
            })?;
        Ok(target)
    }

    /// Adds a member: as a learner first (waiting until it caught up), then as
    /// a voter through joint consensus unless `learner_only`. Leader only.
    pub async fn add_member(&self, id: NodeId, member: Member, learner_only: bool) -> Result<()> {
        self.raft
            .add_learner(id, member, true)
            .await
            .map_err(membership_err)?;
        if !learner_only {
            self.promote_member(id).await?;
        }
        Ok(())
    }

    pub async fn promote_member(&self, id: NodeId) -> Result<()> {
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(membership_err)?;
        Ok(())
    }

    pub async fn remove_member(&self, id: NodeId) -> Result<()> {
        let is_voter = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(membership_err)?;
        Ok(())
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

/// Whether a replica that just refused a vote should campaign itself (see
/// [`Store::after_refused_vote`]): it has not heard from a leader for a lease,
/// it is a voter that does not lead, the candidate started a newer term (it
/// believes the leader gone too), and the candidate's log is behind ours (so it
/// can never win, while we can).
fn should_take_over(
    silent_for_a_lease: bool,
    voting_follower: bool,
    candidate: (u64, Option<LogId>),
    me: (u64, Option<LogId>),
) -> bool {
    silent_for_a_lease && voting_follower && candidate.0 > me.0 && candidate.1 < me.1
}

fn membership_err(e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> Error {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => Error::NotLeader {
            leader: f
                .leader_node
                .map_or("unknown".to_string(), |n| n.api_address),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => Error::Membership(e),
        RaftError::Fatal(e) => Error::Raft(e),
    }
}

/// Why one attempt to rejoin through a peer failed (the replica tries again).
#[derive(Debug, thiserror::Error)]
enum RejoinError {
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("{0}")]
    Call(#[from] tonic::Status),
}

struct WatcherGuard(prometheus_client::metrics::gauge::Gauge);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(openraft::CommittedLeaderId::new(term, 1), index))
    }

    #[test]
    fn only_a_silent_voter_with_a_longer_log_takes_over_a_newer_terms_election() {
        let me = (5, log(5, 100));
        // The candidate is behind us and started term 6: take over.
        assert!(should_take_over(true, true, (6, log(5, 99)), me));
        // A leader spoke to us within the lease: the candidate is wrong, not the leader gone.
        assert!(!should_take_over(false, true, (6, log(5, 99)), me));
        // Learners and leaders do not campaign.
        assert!(!should_take_over(true, false, (6, log(5, 99)), me));
        // A candidate at least as up to date as we are can win: let it.
        assert!(!should_take_over(true, true, (6, log(5, 100)), me));
        assert!(!should_take_over(true, true, (6, log(6, 1)), me));
        // A candidate of our own (or an older) term is refused for its vote, not its log.
        assert!(!should_take_over(true, true, (5, log(5, 99)), me));
        // An empty log is behind any other.
        assert!(should_take_over(true, true, (6, None), me));
    }
}
