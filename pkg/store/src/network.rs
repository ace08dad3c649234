//! Raft traffic, client side: openraft's `RaftNetwork` over tonic gRPC to each
//! peer's `rkube.raft.v1.RaftPeer` service.
//!
//! openraft's requests and replies are serde types and travel as postcard bytes;
//! the gRPC layer only carries them. Transport failures become `Unreachable`
//! so openraft backs off instead of spinning on a dead peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rkube_proto::raft::raft_peer_client::RaftPeerClient;
use rkube_proto::raft::{RaftReply, RaftRequest};
use tonic::transport::{Channel, Endpoint};

use crate::types::*;

/// Largest gRPC message between peers (snapshot chunks, big append batches).
pub const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

/// A peer address that cannot be dialed.
#[derive(Debug, thiserror::Error)]
#[error("bad peer address {address:?}: {source}")]
pub struct DialError {
    pub address: String,
    #[source]
    pub source: tonic::transport::Error,
}

/// A Raft RPC to a peer that failed.
#[derive(Debug, thiserror::Error)]
#[error("{member} ({target}): {}", status.message())]
struct CallError {
    member: String,
    target: NodeId,
    #[source]
    status: tonic::Status,
}

/// Where to dial each peer. Normally the member's advertised peer address;
/// `overrides` lets an operator (or a partition test's proxy) route one link
/// through another address.
#[derive(Clone, Default)]
pub struct PeerDialer {
    overrides: Arc<HashMap<NodeId, String>>,
    channels: Arc<Mutex<HashMap<(NodeId, String), Channel>>>,
}

impl PeerDialer {
    pub fn new(overrides: HashMap<NodeId, String>) -> Self {
        Self {
            overrides: Arc::new(overrides),
            channels: Default::default(),
        }
    }

    /// A lazily connected channel to `target` (shared by every caller).
    pub fn channel(&self, target: NodeId, member: &Member) -> Result<Channel, DialError> {
        let addr = self
            .overrides
            .get(&target)
            .cloned()
            .unwrap_or_else(|| member.peer_address.clone());
        let mut cache = self.channels.lock().unwrap();
        if let Some(ch) = cache.get(&(target, addr.clone())) {
            return Ok(ch.clone());
        }
        let uri = if addr.contains("://") {
            addr.clone()
        } else {
            format!("http://{addr}")
        };
        let ch = Endpoint::from_shared(uri)
            .map_err(|source| DialError {
                address: addr.clone(),
                source,
            })?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        cache.insert((target, addr), ch.clone());
        Ok(ch)
    }

    pub fn client(
        &self,
        target: NodeId,
        member: &Member,
    ) -> Result<RaftPeerClient<Channel>, DialError> {
        Ok(RaftPeerClient::new(self.channel(target, member)?)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerDialer {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        PeerConnection {
            target,
            member: node.clone(),
            client: self.client(target, node).map_err(Arc::new),
        }
    }
}

pub struct PeerConnection {
    target: NodeId,
    member: Member,
    client: Result<RaftPeerClient<Channel>, Arc<DialError>>,
}

type RpcErr<E> = RPCError<NodeId, Member, RaftError<NodeId, E>>;

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &mut self,
        method: Method,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&**e))),
        };
        let data =
            postcard::to_stdvec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftRequest { data: data.into() });
        request.set_timeout(ttl);
        let mut client = client;
        let reply = match method {
            Method::Append => client.append_entries(request).await,
            Method::Vote => client.vote(request).await,
            Method::Snapshot => client.install_snapshot(request).await,
        };
        let reply: RaftReply = match reply {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let msg = CallError {
                    member: self.member.to_string(),
                    target: self.target,
                    status,
                };
                return Err(match msg.status.code() {
                    tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled => RPCError::Unreachable(Unreachable::new(&msg)),
                    _ => RPCError::Network(NetworkError::new(&msg)),
                });
            }
        };
        if !reply.error.is_empty() {
            let err: RaftError<NodeId, E> = postcard::from_bytes(&reply.error)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.member.clone(),
                err,
            )));
        }
        postcard::from_bytes(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

enum Method {
    Append,
    Vote,
    Snapshot,
}

/// How soon the leader tries again a peer that could not be reached: 25 ms,
/// doubling to at most 200 ms. openraft's default is a flat 500 ms, which is
/// longer than a restarted member waits before it campaigns (450–600 ms with
/// the default timing): the member would start an election the leader could
/// have prevented by reaching it, and its higher term would depose the leader.
fn peer_backoff() -> impl Iterator<Item = Duration> + Send + 'static {
    (0u32..).map(|i| Duration::from_millis((25u64 << i.min(3)).min(200)))
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(peer_backoff())
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Method::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(
            Method::Snapshot,
            &rpc,
            option.hard_ttl().max(Duration::from_secs(10)),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Method::Vote, &rpc, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn an_unreachable_peer_is_retried_soon_and_never_later_than_200ms() {
        let d: Vec<u64> = peer_backoff()
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(d, [25, 50, 100, 200, 200, 200]);
    }
}
