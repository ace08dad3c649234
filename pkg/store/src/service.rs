//! The store's client-facing gRPC API (`rkube.store.v1`: KV, Watch,
//! Maintenance). Conversions between protobuf messages and the store's own
//! types live here; every call goes to [`Store`], which does the work.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rkube_proto::store as pb;
use rkube_proto::store::kv_server::{Kv, KvServer};
use rkube_proto::store::maintenance_client::MaintenanceClient;
use rkube_proto::store::maintenance_server::{Maintenance, MaintenanceServer};
use rkube_proto::store::watch_server::{Watch, WatchServer};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::store::{Store, WatchRequest};
use crate::types::*;

/// Larger than any value the store accepts (1.5 MiB) plus envelope.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct StoreService {
    store: Arc<Store>,
}

impl StoreService {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    pub fn kv(&self) -> KvServer<Self> {
        KvServer::new(self.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn watch(&self) -> WatchServer<Self> {
        WatchServer::new(self.clone()).max_encoding_message_size(256 * 1024 * 1024)
    }

    pub fn maintenance(&self) -> MaintenanceServer<Self> {
        MaintenanceServer::new(self.clone())
    }

    fn header(&self, revision: i64) -> Option<pb::ResponseHeader> {
        let term = self.store.raft().metrics().borrow().current_term;
        Some(pb::ResponseHeader {
            revision,
            member_id: self.store.id(),
            raft_term: term,
        })
    }
}

pub fn kv_to_pb(kv: KeyValue) -> pb::KeyValue {
    pb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
    }
}

fn range_from_pb(r: pb::RangeRequest) -> RangeOp {
    RangeOp {
        range: KeyRange {
            key: r.key,
            end: r.range_end,
        },
        limit: r.limit,
        revision: r.revision,
        keys_only: r.keys_only,
        count_only: r.count_only,
    }
}

fn range_to_pb(r: RangeResult, header: Option<pb::ResponseHeader>) -> pb::RangeResponse {
    pb::RangeResponse {
        header,
        kvs: r.kvs.into_iter().map(kv_to_pb).collect(),
        more: r.more,
        count: r.count,
    }
}

fn op_from_pb(op: pb::RequestOp) -> Result<Op, Status> {
    use pb::request_op::Request as R;
    Ok(match op.request {
        Some(R::RequestRange(r)) => Op::Range(range_from_pb(r)),
        Some(R::RequestPut(p)) => Op::Put {
            key: p.key,
            value: p.value,
            prev_kv: p.prev_kv,
        },
        Some(R::RequestDeleteRange(d)) => Op::Delete {
            range: KeyRange {
                key: d.key,
                end: d.range_end,
            },
            prev_kv: d.prev_kv,
        },
        None => return Err(Status::invalid_argument("empty request op")),
    })
}

fn compare_from_pb(c: pb::Compare) -> Result<Compare, Status> {
    use pb::compare::{Result as R, Target as T};
    let result = match R::try_from(c.result)
        .map_err(|_| Status::invalid_argument("unknown compare result"))?
    {
        R::Equal => CompareResult::Equal,
        R::NotEqual => CompareResult::NotEqual,
        R::Greater => CompareResult::Greater,
        R::Less => CompareResult::Less,
    };
    let target = match T::try_from(c.target)
        .map_err(|_| Status::invalid_argument("unknown compare target"))?
    {
        T::Mod => CompareTarget::Mod(c.mod_revision),
        T::Create => CompareTarget::Create(c.create_revision),
        T::Value => CompareTarget::Value(c.value),
        T::Version => CompareTarget::Version(c.version),
    };
    Ok(Compare {
        key: c.key,
        result,
        target,
    })
}

fn op_result_to_pb(r: OpResult, header: Option<pb::ResponseHeader>) -> pb::ResponseOp {
    use pb::response_op::Response as R;
    pb::ResponseOp {
        response: Some(match r {
            OpResult::Range(rr) => R::ResponseRange(range_to_pb(rr, header)),
            OpResult::Put { prev_kv } => R::ResponsePut(pb::PutResponse {
                header,
                prev_kv: prev_kv.map(kv_to_pb),
            }),
            OpResult::Delete { deleted, prev_kvs } => {
                R::ResponseDeleteRange(pb::DeleteRangeResponse {
                    header,
                    deleted,
                    prev_kvs: prev_kvs.into_iter().map(kv_to_pb).collect(),
                })
            }
        }),
    }
}

pub fn event_to_pb(e: Event) -> pb::Event {
    pb::Event {
        r#type: match e.kind {
            EventKind::Put => pb::event::EventType::Put as i32,
            EventKind::Delete => pb::event::EventType::Delete as i32,
        },
        kv: Some(kv_to_pb(e.kv)),
        prev_kv: e.prev_kv.map(kv_to_pb),
    }
}

#[tonic::async_trait]
impl Kv for StoreService {
    async fn range(
        &self,
        req: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let r = req.into_inner();
        let serializable = r.serializable;
        let (res, rev) = self.store.range(range_from_pb(r), serializable).await?;
        Ok(Response::new(range_to_pb(res, self.header(rev))))
    }

    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let p = req.into_inner();
        let txn = Txn {
            success: vec![Op::Put {
                key: p.key,
                value: p.value,
                prev_kv: p.prev_kv,
            }],
            ..Default::default()
        };
        let mut r = self.store.txn(txn).await?;
        let prev_kv = match r.responses.pop() {
            Some(OpResult::Put { prev_kv }) => prev_kv.map(kv_to_pb),
            _ => None,
        };
        Ok(Response::new(pb::PutResponse {
            header: self.header(r.revision),
            prev_kv,
        }))
    }

    async fn delete_range(
        &self,
        req: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let d = req.into_inner();
        let txn = Txn {
            success: vec![Op::Delete {
                range: KeyRange {
                    key: d.key,
                    end: d.range_end,
                },
                prev_kv: d.prev_kv,
            }],
            ..Default::default()
        };
        let mut r = self.store.txn(txn).await?;
        let (deleted, prev_kvs) = match r.responses.pop() {
            Some(OpResult::Delete { deleted, prev_kvs }) => (deleted, prev_kvs),
            _ => (0, vec![]),
        };
        Ok(Response::new(pb::DeleteRangeResponse {
            header: self.header(r.revision),
            deleted,
            prev_kvs: prev_kvs.into_iter().map(kv_to_pb).collect(),
        }))
    }

    async fn txn(&self, req: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let t = req.into_inner();
        let txn = Txn {
            compare: t
                .compare
                .into_iter()
                .map(compare_from_pb)
                .collect::<Result<_, _>>()?,
            success: t
                .success
                .into_iter()
                .map(op_from_pb)
                .collect::<Result<_, _>>()?,
            failure: t
                .failure
                .into_iter()
                .map(op_from_pb)
                .collect::<Result<_, _>>()?,
        };
        let r = self.store.txn(txn).await?;
        let header = self.header(r.revision);
        Ok(Response::new(pb::TxnResponse {
            header,
            succeeded: r.succeeded,
            responses: r
                .responses
                .into_iter()
                .map(|o| op_result_to_pb(o, header))
                .collect(),
        }))
    }

    async fn compact(
        &self,
        req: Request<pb::CompactRequest>,
    ) -> Result<Response<pb::CompactResponse>, Status> {
        let rev = self.store.compact(req.get_ref().revision).await?;
        Ok(Response::new(pb::CompactResponse {
            header: self.header(rev),
        }))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for StoreService {
    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let w = req.into_inner();
        let progress = Duration::from_millis(w.progress_interval_ms.max(0) as u64);
        let request = WatchRequest {
            range: KeyRange {
                key: w.key,
                end: w.range_end,
            },
            start_revision: w.start_revision,
            prev_kv: w.prev_kv,
            progress_interval: progress,
        };
        let this = self.clone();
        let rx = match self.store.watch(request) {
            Ok(rx) => rx,
            Err(Error::Compacted { compacted, .. }) => {
                // Tell the client where history starts, in-band, as etcd does.
                let resp = pb::WatchResponse {
                    header: self.header(self.store.revision()),
                    created: true,
                    compact_revision: compacted,
                    events: vec![],
                };
                return Ok(Response::new(Box::pin(futures::stream::iter([Ok(resp)]))));
            }
            Err(e) => return Err(e.into()),
        };
        let created = pb::WatchResponse {
            header: self.header(self.store.revision()),
            created: true,
            ..Default::default()
        };
        let stream = futures::stream::once(async move { Ok(created) }).chain(
            tokio_stream::wrappers::ReceiverStream::new(rx).map(move |b| match b {
                Ok(batch) => Ok(pb::WatchResponse {
                    header: this.header(batch.revision),
                    events: batch.events.into_iter().map(event_to_pb).collect(),
                    ..Default::default()
                }),
                Err(Error::Compacted { compacted, .. }) => Ok(pb::WatchResponse {
                    header: this.header(this.store.revision()),
                    compact_revision: compacted,
                    ..Default::default()
                }),
                Err(e) => Err(e.into()),
            }),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

use futures::StreamExt;

fn member_to_pb(id: NodeId, m: Member, learner: bool) -> pb::Member {
    pb::Member {
        id,
        name: m.name,
        peer_address: m.peer_address,
        api_address: m.api_address,
        learner,
    }
}

impl StoreService {
    fn members(&self, status: &crate::store::Status) -> Vec<pb::Member> {
        status
            .members
            .iter()
            .map(|(id, m, l)| member_to_pb(*id, m.clone(), *l))
            .collect()
    }

    /// Membership changes run on the leader; other replicas pass them on.
    async fn leader_client(
        &self,
    ) -> Result<Option<MaintenanceClient<tonic::transport::Channel>>, Status> {
        let st = self.store.status().await;
        match st.leader {
            Some(l) if l == st.id => Ok(None),
            Some(l) => {
                let m = st
                    .members
                    .iter()
                    .find(|(id, ..)| *id == l)
                    .map(|(_, m, _)| m.clone());
                let Some(m) = m else {
                    return Err(Status::unavailable("the leader is unknown"));
                };
                let ch =
                    tonic::transport::Endpoint::from_shared(format!("http://{}", m.api_address))
                        .map_err(|e| Status::internal(e.to_string()))?
                        .connect()
                        .await
                        .map_err(|e| {
                            Status::unavailable(format!("leader {} unreachable: {e}", m.name))
                        })?;
                Ok(Some(MaintenanceClient::new(ch)))
            }
            None => Err(Status::unavailable("no leader")),
        }
    }
}

#[tonic::async_trait]
impl Maintenance for StoreService {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let st = self.store.status().await;
        Ok(Response::new(pb::StatusResponse {
            header: self.header(st.revision),
            id: st.id,
            name: st.name.clone(),
            role: st.role.clone(),
            term: st.term,
            leader: st.leader.unwrap_or(0),
            commit_index: st.commit_index,
            applied_index: st.applied_index,
            last_log_index: st.last_log_index,
            compact_revision: st.compact_revision,
            members: self.members(&st),
            snapshot_index: st.snapshot_index,
            purged_index: st.purged_index,
            db_size_bytes: 0,
        }))
    }

    async fn hash(
        &self,
        req: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        let (hash, keys, rev) = self.store.hash(req.get_ref().revision)?;
        Ok(Response::new(pb::HashResponse {
            header: self.header(rev),
            hash,
            keys,
        }))
    }

    async fn snapshot(
        &self,
        _: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let index = self.store.snapshot().await?;
        Ok(Response::new(pb::SnapshotResponse {
            header: self.header(self.store.revision()),
            snapshot_index: index,
        }))
    }

    async fn member_list(
        &self,
        _: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let st = self.store.status().await;
        Ok(Response::new(pb::MemberListResponse {
            header: self.header(st.revision),
            members: self.members(&st),
        }))
    }

    async fn member_add(
        &self,
        req: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        if let Some(mut leader) = self.leader_client().await? {
            return leader.member_add(req.into_inner()).await;
        }
        let r = req.into_inner();
        let m = r
            .member
            .ok_or_else(|| Status::invalid_argument("member is required"))?;
        if m.id == 0 || m.peer_address.is_empty() {
            return Err(Status::invalid_argument(
                "member needs a non-zero id and a peer address",
            ));
        }
        let member = Member {
            name: m.name,
            peer_address: m.peer_address,
            api_address: m.api_address,
        };
        self.store.add_member(m.id, member, r.learner_only).await?;
        let st = self.store.status().await;
        Ok(Response::new(pb::MemberAddResponse {
            header: self.header(st.revision),
            members: self.members(&st),
        }))
    }

    async fn member_promote(
        &self,
        req: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        if let Some(mut leader) = self.leader_client().await? {
            return leader.member_promote(req.into_inner()).await;
        }
        self.store.promote_member(req.get_ref().id).await?;
        let st = self.store.status().await;
        Ok(Response::new(pb::MemberPromoteResponse {
            header: self.header(st.revision),
            members: self.members(&st),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        if let Some(mut leader) = self.leader_client().await? {
            return leader.member_remove(req.into_inner()).await;
        }
        self.store.remove_member(req.get_ref().id).await?;
        let st = self.store.status().await;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: self.header(st.revision),
            members: self.members(&st),
        }))
    }
}
