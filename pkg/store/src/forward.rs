//! Forwarding writes from a follower to the leader.
//!
//! A replica that is not the leader sends the writes it receives to the
//! leader over one long-lived gRPC stream (`RaftPeer/Forward`) rather than one
//! unary call each: each write is a proposal with an id, the stream carries
//! whatever proposals are queued in one message, and the leader answers each
//! id as its proposal is applied (several answers per message when they finish
//! together). A unary call per write cost a new HTTP/2 stream, headers and
//! trailers both ways, and its own trip through tonic's service stack on both
//! replicas; on two CPUs shared by three replicas and the clients that was a
//! third of the store's throughput.
//!
//! What the caller learns ([`Outcome`]) keeps the safety rule of the unary
//! call: a write is retried on another leader only when it certainly is not in
//! the log (the stream could not be opened, or the receiver said it is not the
//! leader). When the stream breaks after a proposal went out, its outcome is
//! unknown and the caller reports a timeout (maybe applied).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use rkube_proto::raft::{ForwardRequest, ForwardedProposal, ForwardedResult};
use tokio::sync::{mpsc, oneshot};

use crate::network::PeerDialer;
use crate::types::{Member, NodeId};

/// How long opening a stream may take (the leader answers at once when it is
/// reachable).
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The most proposals one stream message carries.
const MAX_PER_MESSAGE: usize = 256;

/// Command bytes in one stream message, at most (a single larger command goes
/// alone); far below the peer services' 64 MiB message limit.
const MAX_BYTES_PER_MESSAGE: usize = 4 << 20;

/// `first` and whatever else is queued, up to the per-message limits; the
/// proposal that did not fit comes back to lead the next message.
fn batch(
    first: ForwardedProposal,
    rx: &mut mpsc::UnboundedReceiver<ForwardedProposal>,
) -> (Vec<ForwardedProposal>, Option<ForwardedProposal>) {
    let mut bytes = first.command.len();
    let mut proposals = vec![first];
    while proposals.len() < MAX_PER_MESSAGE {
        let Ok(p) = rx.try_recv() else { break };
        if bytes + p.command.len() > MAX_BYTES_PER_MESSAGE {
            return (proposals, Some(p));
        }
        bytes += p.command.len();
        proposals.push(p);
    }
    (proposals, None)
}

/// What became of one forwarded write.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Applied; postcard bytes of the `CommandResult`.
    Applied(bytes::Bytes),
    /// The receiver is not the leader: not in the log, safe to retry.
    NotLeader,
    /// Proposing failed at the leader, with this gRPC code and message.
    Failed(tonic::Code, String),
    /// Never sent: safe to retry.
    NotSent(String),
    /// Sent, but the answer was lost (stream broken, or the deadline passed):
    /// it may or may not have been applied.
    Lost(String),
}

type Waiter = oneshot::Sender<Outcome>;

/// One open stream to one leader.
struct Conn {
    leader: NodeId,
    address: String,
    /// The request side; taken (which ends the request stream once what is
    /// queued went out) when the stream is replaced or broke.
    tx: Mutex<Option<mpsc::UnboundedSender<ForwardedProposal>>>,
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
}

impl Conn {
    /// Stops sending on this stream. The leader answers what it already
    /// received and then closes its side, which ends the reader task.
    fn finish(&self) {
        self.tx.lock().unwrap().take();
    }

    /// Ends every waiting write with `Lost` (the stream broke).
    fn close(&self, why: &str) {
        self.finish();
        self.closed.store(true, Ordering::SeqCst);
        let waiters: Vec<_> = self.pending.lock().unwrap().drain().collect();
        for (_, w) in waiters {
            let _ = w.send(Outcome::Lost(why.to_string()));
        }
    }
}

pub(crate) struct Forwarder {
    dialer: PeerDialer,
    /// The current stream; replaced when the leader changes or it breaks.
    /// Opening is serialized so concurrent writes share one stream.
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Forwarder {
    pub(crate) fn new(dialer: PeerDialer) -> Self {
        Self {
            dialer,
            conn: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends one command (postcard bytes) to `leader` and waits for its
    /// outcome until `deadline`.
    pub(crate) async fn forward(
        &self,
        leader: NodeId,
        member: &Member,
        command: bytes::Bytes,
        deadline: Instant,
    ) -> Outcome {
        let conn = match tokio::time::timeout_at(deadline.into(), self.conn(leader, member)).await {
            Ok(Ok(c)) => c,
            Ok(Err(o)) => return o,
            Err(_) => return Outcome::NotSent(format!("no stream to the leader {member} in time")),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, wait) = oneshot::channel();
        conn.pending.lock().unwrap().insert(id, done);
        if conn.closed.load(Ordering::SeqCst) {
            if conn.pending.lock().unwrap().remove(&id).is_some() {
                return Outcome::NotSent("the stream to the leader closed".into());
            }
            // close() took the waiter: it answers below.
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            let proposal = ForwardedProposal {
                id,
                command,
                timeout_ms: left.as_millis() as u64,
            };
            let sent = match conn.tx.lock().unwrap().as_ref() {
                Some(tx) => tx.send(proposal).is_ok(),
                None => false,
            };
            if !sent && conn.pending.lock().unwrap().remove(&id).is_some() {
                return Outcome::NotSent("the stream to the leader closed".into());
            }
        }
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Lost("the stream to the leader closed".into()),
            Err(_) => {
                conn.pending.lock().unwrap().remove(&id);
                Outcome::Lost(format!(
                    "no answer from the leader {member} before the deadline"
                ))
            }
        }
    }

    /// The open stream to `leader`, opening one when there is none.
    async fn conn(&self, leader: NodeId, member: &Member) -> Result<Arc<Conn>, Outcome> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.leader == leader
                && c.address == member.peer_address
                && !c.closed.load(Ordering::SeqCst)
            {
                return Ok(c.clone());
            }
        }
        // Ending the old stream's request side lets the old leader answer
        // what it has and close its side (the old stream would otherwise stay
        // open: its reader task holds the sender).
        if let Some(old) = slot.take() {
            old.finish();
        }
        let mut client = self
            .dialer
            .client(leader, member)
            .map_err(|e| Outcome::NotSent(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel::<ForwardedProposal>();
        let requests = futures::stream::unfold((rx, None), |(mut rx, carry)| async move {
            let first = match carry {
                Some(p) => p,
                None => rx.recv().await?,
            };
            let (proposals, carry) = batch(first, &mut rx);
            Some((ForwardRequest { proposals }, (rx, carry)))
        });
        let opened =
            tokio::time::timeout(OPEN_TIMEOUT, client.forward(tonic::Request::new(requests))).await;
        let replies = match opened {
            Ok(Ok(r)) => r.into_inner(),
            // Nothing was queued on this stream yet: whatever failed, no
            // proposal went out.
            Err(_) => {
                return Err(Outcome::NotSent(format!(
                    "opening a stream to the leader {member} timed out"
                )))
            }
            Ok(Err(status)) => {
                return Err(Outcome::NotSent(format!(
                    "opening a stream to the leader {member}: {}",
                    status.message()
                )))
            }
        };
        let conn = Arc::new(Conn {
            leader,
            address: member.peer_address.clone(),
            tx: Mutex::new(Some(tx)),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(read_replies(conn.clone(), replies));
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

/// Hands each reply on the stream to its waiter; when the stream ends, the
/// writes still waiting are lost.
async fn read_replies(
    conn: Arc<Conn>,
    mut replies: tonic::Streaming<rkube_proto::raft::ForwardReply>,
) {
    let why = loop {
        match replies.next().await {
            Some(Ok(reply)) => {
                for r in reply.results {
                    let waiter = conn.pending.lock().unwrap().remove(&r.id);
                    if let Some(w) = waiter {
                        let _ = w.send(outcome(r));
                    }
                }
            }
            Some(Err(status)) => break format!("the stream to the leader broke: {status}"),
            None => break "the leader closed the stream".to_string(),
        }
    };
    tracing::debug!(leader = conn.leader, reason = %why, "forward stream ended");
    conn.close(&why);
}

fn outcome(r: ForwardedResult) -> Outcome {
    if r.not_leader {
        Outcome::NotLeader
    } else if r.error_code != 0 {
        Outcome::Failed(tonic::Code::from_i32(r.error_code), r.error_message)
    } else {
        Outcome::Applied(r.result)
    }
}

#[cfg(test)]
mod tests {
    //! The forwarder against a fake leader: a `RaftPeer` server whose Forward
    //! answers each proposal by a rule of the test's choosing.
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use futures::Stream;
    use rkube_proto::raft::raft_peer_server::{RaftPeer, RaftPeerServer};
    use rkube_proto::raft::*;
    use tonic::{Request, Response, Status};

    use super::*;

    #[derive(Clone, Copy)]
    enum Rule {
        /// Answer each proposal with its own command bytes.
        Echo,
        NotLeader,
        /// Read one message, then break the stream without answering.
        Hangup,
    }

    #[derive(Clone)]
    struct FakeLeader {
        rule: Rule,
        streams_opened: Arc<AtomicUsize>,
        streams_ended: Arc<AtomicUsize>,
    }

    type ReplyStream = Pin<Box<dyn Stream<Item = Result<ForwardReply, Status>> + Send>>;

    #[tonic::async_trait]
    impl RaftPeer for FakeLeader {
        async fn hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn append_entries(
            &self,
            _: Request<RaftRequest>,
        ) -> Result<Response<RaftReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn vote(&self, _: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn install_snapshot(
            &self,
            _: Request<RaftRequest>,
        ) -> Result<Response<RaftReply>, Status> {
            Err(Status::unimplemented("fake"))
        }
        async fn read_index(
            &self,
            _: Request<ReadIndexRequest>,
        ) -> Result<Response<ReadIndexReply>, Status> {
            Err(Status::unimplemented("fake"))
        }

        type ForwardStream = ReplyStream;

        async fn forward(
            &self,
            req: Request<tonic::Streaming<ForwardRequest>>,
        ) -> Result<Response<ReplyStream>, Status> {
            self.streams_opened.fetch_add(1, Ordering::SeqCst);
            let mut inbound = req.into_inner();
            let (tx, rx) = mpsc::channel(16);
            let (rule, ended) = (self.rule, self.streams_ended.clone());
            tokio::spawn(async move {
                while let Ok(Some(msg)) = inbound.message().await {
                    if let Rule::Hangup = rule {
                        let _ = tx.send(Err(Status::unavailable("hung up"))).await;
                        break;
                    }
                    let results = msg
                        .proposals
                        .into_iter()
                        .map(|p| ForwardedResult {
                            id: p.id,
                            result: p.command,
                            not_leader: matches!(rule, Rule::NotLeader),
                            ..Default::default()
                        })
                        .collect();
                    if tx.send(Ok(ForwardReply { results })).await.is_err() {
                        break;
                    }
                }
                ended.fetch_add(1, Ordering::SeqCst);
            });
            Ok(Response::new(Box::pin(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            )))
        }
    }

    async fn start(rule: Rule) -> (FakeLeader, Member) {
        let fake = FakeLeader {
            rule,
            streams_opened: Arc::default(),
            streams_ended: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = RaftPeerServer::new(fake.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let member = Member {
            name: "leader".into(),
            peer_address: addr.to_string(),
            api_address: String::new(),
        };
        (fake, member)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn concurrent_writes_share_one_stream_and_each_gets_its_own_answer() {
        let (fake, leader) = start(Rule::Echo).await;
        let fwd = Arc::new(Forwarder::new(PeerDialer::new(HashMap::new())));
        let calls = (0..200u32).map(|i| {
            let (fwd, leader) = (fwd.clone(), leader.clone());
            tokio::spawn(async move {
                let cmd = bytes::Bytes::from(i.to_le_bytes().to_vec());
                (i, fwd.forward(1, &leader, cmd, soon()).await)
            })
        });
        for call in calls {
            let (i, outcome) = call.await.unwrap();
            match outcome {
                Outcome::Applied(b) => assert_eq!(&b[..], &i.to_le_bytes()[..]),
                other => panic!("write {i}: {other:?}"),
            }
        }
        assert_eq!(fake.streams_opened.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_message_holds_what_is_queued_up_to_its_limits() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let p = |id, len| ForwardedProposal {
            id,
            command: vec![0u8; len].into(),
            timeout_ms: 1,
        };
        for id in 1..=400 {
            tx.send(p(id, 10)).unwrap();
        }
        let first = rx.try_recv().unwrap();
        let (a, carry) = batch(first, &mut rx);
        assert_eq!((a.len(), carry.is_none()), (MAX_PER_MESSAGE, true));
        // Large commands: as many as fit in the byte limit, the next carried over.
        let mut rx2 = {
            let (tx, rx) = mpsc::unbounded_channel();
            for id in 1..=5 {
                tx.send(p(id, 1 << 20)).unwrap();
            }
            rx
        };
        let first = p(0, 1 << 20);
        let (b, carry) = batch(first, &mut rx2);
        assert_eq!(b.len(), 4);
        assert_eq!(carry.map(|c| c.id), Some(4));
        // A command over the limit still goes, alone.
        let (c, carry) = batch(p(9, MAX_BYTES_PER_MESSAGE + 1), &mut rx2);
        assert_eq!((c.len(), carry.map(|c| c.id)), (1, Some(5)));
    }

    #[tokio::test]
    async fn not_leader_and_unreachable_are_safe_to_retry() {
        let (_, follower) = start(Rule::NotLeader).await;
        let fwd = Forwarder::new(PeerDialer::new(HashMap::new()));
        let cmd = bytes::Bytes::from_static(b"c");
        assert!(matches!(
            fwd.forward(1, &follower, cmd.clone(), soon()).await,
            Outcome::NotLeader
        ));
        // A port nobody listens on: the stream cannot be opened.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gone = Member {
            peer_address: closed.local_addr().unwrap().to_string(),
            ..follower.clone()
        };
        drop(closed);
        assert!(matches!(
            fwd.forward(2, &gone, cmd, soon()).await,
            Outcome::NotSent(_)
        ));
    }

    #[tokio::test]
    async fn a_broken_stream_loses_what_was_sent_and_the_next_write_reopens() {
        let (fake, leader) = start(Rule::Hangup).await;
        let fwd = Forwarder::new(PeerDialer::new(HashMap::new()));
        let cmd = bytes::Bytes::from_static(b"c");
        // Sent, never answered: its outcome is unknown, not "not sent".
        assert!(matches!(
            fwd.forward(1, &leader, cmd.clone(), soon()).await,
            Outcome::Lost(_)
        ));
        let _ = fwd.forward(1, &leader, cmd, soon()).await;
        assert_eq!(fake.streams_opened.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_new_leader_ends_the_stream_to_the_old_one() {
        let (old, old_member) = start(Rule::Echo).await;
        let (new, new_member) = start(Rule::Echo).await;
        let fwd = Forwarder::new(PeerDialer::new(HashMap::new()));
        let cmd = bytes::Bytes::from_static(b"c");
        assert!(matches!(
            fwd.forward(1, &old_member, cmd.clone(), soon()).await,
            Outcome::Applied(_)
        ));
        assert!(matches!(
            fwd.forward(2, &new_member, cmd, soon()).await,
            Outcome::Applied(_)
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        while old.streams_ended.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the old stream stayed open");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(new.streams_ended.load(Ordering::SeqCst), 0);
    }
}
