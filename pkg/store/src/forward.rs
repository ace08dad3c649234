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
    tx: mpsc::UnboundedSender<ForwardedProposal>,
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
}

impl Conn {
    /// Ends every waiting write with `Lost` (the stream broke).
    fn close(&self, why: &str) {
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
            let sent = conn.tx.send(ForwardedProposal {
                id,
                command,
                timeout_ms: left.as_millis() as u64,
            });
            if sent.is_err() && conn.pending.lock().unwrap().remove(&id).is_some() {
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
        // Dropping the old connection's sender ends its request stream; the
        // old leader answers what it has and closes its side.
        *slot = None;
        let mut client = self
            .dialer
            .client(leader, member)
            .map_err(|e| Outcome::NotSent(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel::<ForwardedProposal>();
        let requests = futures::stream::unfold(rx, |mut rx| async move {
            let first = rx.recv().await?;
            let mut proposals = vec![first];
            while proposals.len() < MAX_PER_MESSAGE {
                match rx.try_recv() {
                    Ok(p) => proposals.push(p),
                    Err(_) => break,
                }
            }
            Some((ForwardRequest { proposals }, rx))
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
            tx,
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
