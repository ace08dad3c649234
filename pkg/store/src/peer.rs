//! Raft traffic, server side: the `rkube.raft.v1.RaftPeer` service that other
//! replicas call. It hands openraft's RPCs to the local Raft node and serves
//! the two store-level calls a follower needs from the leader: Forward
//! (a stream of forwarded writes, see [`crate::forward`]) and ReadIndex
//! (linearizable reads).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use rkube_proto::raft::raft_peer_server::{RaftPeer, RaftPeerServer};
use rkube_proto::raft::*;
use tonic::{Request, Response, Status};

use crate::network::MAX_PEER_MESSAGE;
use crate::store::Store;
use crate::types::*;

pub struct PeerService {
    store: Arc<Store>,
}

impl PeerService {
    pub fn new(store: Arc<Store>) -> RaftPeerServer<Self> {
        RaftPeerServer::new(Self { store })
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Status> {
    postcard::from_bytes(b)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn reply<T: serde::Serialize, E: serde::Serialize>(
    r: Result<T, E>,
) -> Result<Response<RaftReply>, Status> {
    let enc = |b: postcard::Result<Vec<u8>>| b.map_err(|e| Status::internal(e.to_string()));
    Ok(Response::new(match r {
        Ok(v) => RaftReply {
            data: enc(postcard::to_stdvec(&v))?.into(),
            error: Default::default(),
        },
        Err(e) => RaftReply {
            data: Default::default(),
            error: enc(postcard::to_stdvec(&e))?.into(),
        },
    }))
}

impl PeerService {
    fn accepting(&self) -> Result<(), Status> {
        if self.store.accepts_raft() {
            Ok(())
        } else {
            Err(Status::unavailable(
                "this replica is rejoining the cluster as a new member",
            ))
        }
    }
}

#[tonic::async_trait]
impl RaftPeer for PeerService {
    async fn hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let m = self.store.raft().metrics().borrow().clone();
        Ok(Response::new(HelloReply {
            id: self.store.id(),
            initialized: m
                .membership_config
                .membership()
                .voter_ids()
                .next()
                .is_some(),
            leader: m.current_leader.unwrap_or(0),
        }))
    }

    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        self.accepting()?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.get_ref().data)?;
        let res = self.store.raft().append_entries(rpc).await;
        if matches!(&res, Ok(r) if r.is_success() || r.is_conflict()) {
            self.store.leader_contact();
        }
        reply(res)
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        self.accepting()?;
        let rpc: VoteRequest<NodeId> = decode(&req.get_ref().data)?;
        let (candidate_term, candidate_last_log) = (rpc.vote.leader_id().term, rpc.last_log_id);
        let res = self.store.raft().vote(rpc).await;
        if let Ok(resp) = &res {
            if !resp.vote_granted {
                self.store.after_refused_vote(
                    candidate_term,
                    candidate_last_log,
                    resp.vote.leader_id().term,
                    resp.last_log_id,
                );
            }
        }
        reply(res)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        self.accepting()?;
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&req.get_ref().data)?;
        reply(self.store.raft().install_snapshot(rpc).await)
    }

    type ForwardStream = Pin<Box<dyn Stream<Item = Result<ForwardReply, Status>> + Send>>;

    async fn forward(
        &self,
        req: Request<tonic::Streaming<ForwardRequest>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        let mut inbound = req.into_inner();
        let store = self.store.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut inflight = FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    msg = inbound.message(), if open => match msg {
                        Ok(Some(req)) => {
                            for p in req.proposals {
                                inflight.push(propose_forwarded(store.clone(), p));
                            }
                        }
                        // The sender is done (or gone): answer what is in
                        // flight, then end the stream.
                        Ok(None) | Err(_) => open = false,
                    },
                    Some(first) = inflight.next(), if !inflight.is_empty() => {
                        // Answer everything that is ready, in messages of at
                        // most REPLY_BYTES of results.
                        let mut messages = vec![Vec::new()];
                        let mut bytes = 0;
                        let mut next = Some(first);
                        while let Some(r) = next {
                            if bytes > 0 && bytes + r.result.len() > REPLY_BYTES {
                                messages.push(Vec::new());
                                bytes = 0;
                            }
                            bytes += r.result.len();
                            messages.last_mut().expect("never empty").push(r);
                            next = inflight.next().now_or_never().flatten();
                        }
                        for results in messages {
                            if tx.send(Ok(ForwardReply { results })).await.is_err() {
                                return;
                            }
                        }
                    }
                    else => break,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn read_index(
        &self,
        _: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexReply>, Status> {
        match self.store.read_index_local().await {
            Ok(Some(index)) => Ok(Response::new(ReadIndexReply {
                index,
                ..Default::default()
            })),
            Ok(None) => Ok(Response::new(ReadIndexReply {
                not_leader: true,
                leader_hint: self
                    .store
                    .raft()
                    .metrics()
                    .borrow()
                    .current_leader
                    .unwrap_or(0),
                ..Default::default()
            })),
            Err(e) => Err(e.into()),
        }
    }
}

/// Result bytes in one Forward reply message, at most (a single larger result
/// goes alone); far below the 64 MiB message limit.
const REPLY_BYTES: usize = 4 << 20;

/// The leader's side of one forwarded write.
async fn propose_forwarded(store: Arc<Store>, p: ForwardedProposal) -> ForwardedResult {
    let mut out = ForwardedResult {
        id: p.id,
        ..Default::default()
    };
    let cmd: Command = match postcard::from_bytes(&p.command) {
        Ok(c) => c,
        Err(e) => {
            out.error_code = tonic::Code::InvalidArgument as i32;
            out.error_message = format!("undecodable command: {e}");
            return out;
        }
    };
    let left = Duration::from_millis(p.timeout_ms).min(store.config().request_timeout);
    match store.propose_local(cmd, left).await {
        Ok(Some(result)) => {
            out.result = postcard::to_stdvec(&result).expect("results encode").into()
        }
        Ok(None) => {
            out.not_leader = true;
            out.leader_hint = store.raft().metrics().borrow().current_leader.unwrap_or(0);
        }
        Err(e) => {
            let status: Status = e.into();
            out.error_code = status.code() as i32;
            out.error_message = status.message().to_string();
        }
    }
    out
}
