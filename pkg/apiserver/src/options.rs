//! Command-line options of rkube-apiserver.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use rkube_store::{Member, NodeId, StoreConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// This replica's name (shown in status, logs and traces).
    #[arg(long)]
    pub name: String,
    /// This replica's Raft id: a positive number, unique in the cluster.
    #[arg(long)]
    pub id: NodeId,
    /// Where the Raft log, snapshots and state live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address for clients: the store's gRPC API and /healthz, /readyz, /metrics.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub api_listen: String,
    /// Address for Raft traffic from the other replicas.
    #[arg(long, default_value = "127.0.0.1:2380")]
    pub peer_listen: String,
    /// Address the other replicas dial for Raft traffic (default: --peer-listen).
    #[arg(long)]
    pub advertise_peer: Option<String>,
    /// Address clients are told to use (default: --api-listen).
    #[arg(long)]
    pub advertise_api: Option<String>,
    /// A member of a new cluster, "id=1,name=a1,peer=HOST:PORT,api=HOST:PORT";
    /// repeat once per member, the same list on every replica. Used only on the
    /// first start of an empty data folder.
    #[arg(long = "initial-member", value_parser = parse_member)]
    pub initial_members: Vec<(NodeId, Member)>,
    /// Dial a peer at another address than the one it advertises, "ID=HOST:PORT"
    /// (e.g. through a proxy). Repeatable.
    #[arg(long = "peer-override", value_parser = parse_override)]
    pub peer_overrides: Vec<(NodeId, String)>,
    /// Revisions of history kept for watches and reads at older revisions.
    #[arg(long, default_value_t = 20_000)]
    pub history_revisions: usize,
    /// Build a snapshot (and purge the Raft log behind it) every this many log entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Raft heartbeat interval, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Raft election timeout, milliseconds: a random value in [this, 2 × this).
    #[arg(long, default_value_t = 150)]
    pub election_timeout_ms: u64,
    /// Raft log entries of client writes the leader keeps in flight at once;
    /// writes that arrive meanwhile are batched into the next entry.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub max_inflight_proposals: u64,
    /// Size of a Raft log segment file in bytes (created sparse; the oldest
    /// are deleted once every entry in them is behind a snapshot). Small
    /// values are for tests that want segments to rotate.
    #[arg(long, default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(4096..))]
    pub wal_segment_bytes: u64,
    /// Create the namespaces every cluster has (default, kube-system,
    /// kube-public, kube-node-lease) on start. Store-level tests and benchmarks
    /// turn it off to start from an empty store.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub create_system_namespaces: bool,
    /// Serve the API port over TLS with this certificate (PEM; with --tls-private-key-file).
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Verify client certificates against this CA (PEM); a verified certificate's
    /// CN is the user and its O values the groups.
    #[arg(long, requires = "tls_cert_file")]
    pub client_ca_file: Option<PathBuf>,
    /// Accept bearer tokens listed in this file, one per line in Kubernetes'
    /// format: `token,user,uid,"group1,group2"`.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Let requests without credentials through as `system:anonymous` (group
    /// `system:unauthenticated`). Off: they get 401. Authorization allows every
    /// authenticated request until RBAC exists, so only turn this on where the
    /// API port is not reachable by anyone else (store tests on loopback).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// How long one client request may take (retries included), seconds.
    #[arg(long, default_value_t = 5.0)]
    pub request_timeout_secs: f64,
    /// Serve watches and resourceVersion=0 lists from the watch cache (one store watch
    /// per resource, each event decoded once for every watcher). Off: every watch has
    /// a store watch of its own.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_cache: bool,
    /// Events the watch cache keeps per resource for watches that resume from a
    /// resourceVersion; older ones are watched on the store.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_cache_window_events: u64,
    /// Events buffered per watcher; a watcher that falls further behind is ended with
    /// 410 Expired and resumes from its last resourceVersion.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_cache_watcher_buffer: u64,
}

/// A flag value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("--id must be positive")]
    IdNotPositive,
    #[error("--initial-member ids must be unique")]
    DuplicateMemberIds,
    #[error("--election-timeout-ms must be at least twice --heartbeat-ms")]
    ElectionTimeoutTooShort,
}

/// An `--initial-member` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("expected key=value, got {0:?}")]
    NotKeyValue(String),
    #[error("bad id {value:?}")]
    BadId {
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("unknown member field {0:?} (expected id, name, peer, api)")]
    UnknownField(String),
    #[error("a member needs id=N with N > 0")]
    MissingId,
    #[error("a member needs peer=HOST:PORT")]
    MissingPeer,
    #[error("expected ID=HOST:PORT, got {0:?}")]
    BadOverride(String),
}

fn parse_id(v: &str) -> Result<NodeId, MemberError> {
    v.trim()
        .parse::<NodeId>()
        .map_err(|source| MemberError::BadId {
            value: v.to_string(),
            source,
        })
}

/// Parses "id=1,name=a1,peer=127.0.0.1:2380,api=127.0.0.1:6443".
pub fn parse_member(s: &str) -> Result<(NodeId, Member), MemberError> {
    let mut id = None;
    let mut m = Member::default();
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| MemberError::NotKeyValue(part.to_string()))?;
        match k.trim() {
            "id" => id = Some(parse_id(v)?),
            "name" => m.name = v.trim().to_string(),
            "peer" => m.peer_address = v.trim().to_string(),
            "api" => m.api_address = v.trim().to_string(),
            other => return Err(MemberError::UnknownField(other.to_string())),
        }
    }
    let id = id.filter(|i| *i > 0).ok_or(MemberError::MissingId)?;
    if m.peer_address.is_empty() {
        return Err(MemberError::MissingPeer);
    }
    if m.name.is_empty() {
        m.name = format!("member-{id}");
    }
    Ok((id, m))
}

fn parse_override(s: &str) -> Result<(NodeId, String), MemberError> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| MemberError::BadOverride(s.to_string()))?;
    Ok((parse_id(id)?, addr.to_string()))
}

impl Options {
    pub fn store_config(&self) -> Result<StoreConfig, OptionsError> {
        if self.id == 0 {
            return Err(OptionsError::IdNotPositive);
        }
        let mut c = StoreConfig::new(self.id, self.name.clone(), self.data_dir.clone());
        c.peer_address = self
            .advertise_peer
            .clone()
            .unwrap_or_else(|| self.peer_listen.clone());
        c.api_address = self
            .advertise_api
            .clone()
            .unwrap_or_else(|| self.api_listen.clone());
        c.initial_members = self
            .initial_members
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>();
        if c.initial_members.len() != self.initial_members.len() {
            return Err(OptionsError::DuplicateMemberIds);
        }
        if !c.initial_members.is_empty() && !c.initial_members.contains_key(&self.id) {
            tracing::warn!(
                id = self.id,
                "this replica is not among --initial-member; it waits to be added"
            );
        }
        c.peer_overrides = self
            .peer_overrides
            .iter()
            .cloned()
            .collect::<HashMap<_, _>>();
        c.history_limit = self.history_revisions;
        c.snapshot_every = self.snapshot_every;
        c.heartbeat_ms = self.heartbeat_ms;
        c.election_timeout_min_ms = self.election_timeout_ms;
        c.election_timeout_max_ms = self.election_timeout_ms * 2;
        if self.heartbeat_ms * 2 > self.election_timeout_ms {
            return Err(OptionsError::ElectionTimeoutTooShort);
        }
        c.request_timeout = Duration::from_secs_f64(self.request_timeout_secs);
        c.max_inflight_proposals = self.max_inflight_proposals as usize;
        c.wal_segment_size = self.wal_segment_bytes;
        Ok(c)
    }

    /// The watch cache's settings.
    pub fn watch_cache_config(&self) -> crate::watch_cache::CacheConfig {
        crate::watch_cache::CacheConfig {
            window_events: self.watch_cache_window_events as usize,
            watcher_buffer: self.watch_cache_watcher_buffer as usize,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_parses_from_its_flag_form() {
        let (id, m) = parse_member("id=2,name=a2,peer=127.0.0.1:2381,api=127.0.0.1:6444").unwrap();
        assert_eq!(id, 2);
        assert_eq!(m.name, "a2");
        assert_eq!(m.peer_address, "127.0.0.1:2381");
        assert_eq!(m.api_address, "127.0.0.1:6444");
    }

    #[test]
    fn a_member_without_id_or_peer_is_refused_with_a_reason() {
        assert_eq!(
            parse_member("name=a,peer=x:1").unwrap_err(),
            MemberError::MissingId
        );
        assert_eq!(
            parse_member("id=1,name=a").unwrap_err(),
            MemberError::MissingPeer
        );
        assert!(parse_member("id=1,peer=x:1,color=red")
            .unwrap_err()
            .to_string()
            .contains("color"));
        let bad_id = parse_member("id=x,peer=x:1").unwrap_err();
        assert!(std::error::Error::source(&bad_id).is_some(), "{bad_id:?}");
    }
}
