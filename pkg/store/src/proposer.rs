//! The leader's proposal batcher.
//!
//! openraft 0.9 appends each `client_write` as its own log write and waits for
//! that write's fsync before it replicates it or looks at the next request, so
//! proposals handed to it one by one cost one fsync each, in series. The
//! batcher sits in front of `client_write`: it keeps at most a few
//! ([`DEFAULT_MAX_IN_FLIGHT`] unless configured) log entries of client writes in flight, and whatever
//! proposals arrive meanwhile go into the next entry together, as one
//! [`Command::Batch`]. Each command in a batch is still applied on its own
//! (a transaction gets its own revision), in the order the batch holds them,
//! and each caller gets its own result. A lone proposal is proposed as it is,
//! so an idle cluster pays no extra latency.
//!
//! A batch lives or dies as one log entry: if the leader loses leadership
//! before appending it, every proposal in it gets "not leader" (safe to retry
//! elsewhere); if the outcome is unknown, every caller hears so.
//! Proposals whose caller stopped waiting are dropped before they are batched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{Error, Result};
use crate::metrics::StoreMetrics;
use crate::types::*;

/// Log entries of client writes proposed but not yet applied, at most, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2;
/// Commands in one batch, at most.
pub const MAX_BATCH_COMMANDS: usize = 512;
/// Payload bytes (keys and values) in one batch, at most; one command larger
/// than this is proposed alone.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// What a proposal ended as, from the caller's side: `Ok(None)` means this
/// replica is not the leader and the command is certainly not in the log.
pub type Outcome = Result<Option<CommandResult>>;

struct Proposal {
    cmd: Command,
    bytes: usize,
    deadline: Instant,
    done: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::UnboundedSender<Proposal>,
}

impl Proposer {
    pub fn start(raft: Raft, max_in_flight: usize, metrics: StoreMetrics) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx, max_in_flight.max(1), metrics));
        Self { tx }
    }

    /// Proposes `cmd` through the local Raft node and waits up to `left` for
    /// the result of applying it.
    pub async fn propose(&self, cmd: Command, left: Duration) -> Outcome {
        let (done, rx) = oneshot::channel();
        let proposal = Proposal {
            bytes: payload_bytes(&cmd),
            cmd,
            deadline: Instant::now() + left,
            done,
        };
        if self.tx.send(proposal).is_err() {
            return Err(Error::Shutdown);
        }
        match tokio::time::timeout(left, rx).await {
            Err(_) => Err(Error::Timeout(
                "the proposal was not committed in time".into(),
            )),
            Ok(Err(_)) => Err(Error::Shutdown),
            Ok(Ok(outcome)) => outcome,
        }
    }
}

fn payload_bytes(cmd: &Command) -> usize {
    match cmd {
        Command::Txn(txn) => {
            txn.success
                .iter()
                .chain(&txn.failure)
                .map(|op| match op {
                    Op::Put { key, value, .. } => key.len() + value.len(),
                    Op::Delete { range, .. } => range.key.len() + range.end.len(),
                    Op::Range(r) => r.range.key.len() + r.range.end.len(),
                })
                .sum::<usize>()
                + txn
                    .compare
                    .iter()
                    .map(|c| {
                        c.key.len()
                            + match &c.target {
                                CompareTarget::Value(v) => v.len(),
                                _ => 8,
                            }
                    })
                    .sum::<usize>()
        }
        Command::Compact { .. } => 8,
        Command::Batch(cmds) => cmds.iter().map(payload_bytes).sum(),
    }
}

async fn run(
    raft: Raft,
    mut rx: mpsc::UnboundedReceiver<Proposal>,
    max_in_flight: usize,
    metrics: StoreMetrics,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut carry: Option<Proposal> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Wait for a free slot first: what queues up meanwhile joins this batch.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(p) = next.take() {
            if p.done.is_closed() || Instant::now() >= p.deadline {
                // The caller gave up: proposing it now would only surprise.
            } else if !batch.is_empty()
                && (batch.len() >= MAX_BATCH_COMMANDS || bytes + p.bytes > MAX_BATCH_BYTES)
            {
                carry = Some(p);
                break;
            } else {
                bytes += p.bytes;
                batch.push(p);
            }
            next = rx.try_recv().ok();
        }
        if batch.is_empty() {
            continue;
        }
        metrics.batch_commands.observe(batch.len() as f64);
        let raft = raft.clone();
        tokio::spawn(async move {
            propose_batch(&raft, batch).await;
            drop(permit);
        });
    }
}

async fn propose_batch(raft: &Raft, mut batch: Vec<Proposal>) {
    let deadline = batch.iter().map(|p| p.deadline).max().expect("non-empty");
    let cmd = if batch.len() == 1 {
        batch[0].cmd.clone()
    } else {
        Command::Batch(batch.iter_mut().map(|p| take_cmd(&mut p.cmd)).collect())
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let outcome = tokio::time::timeout(left, raft.client_write(cmd)).await;
    let each = |i: usize| -> Outcome {
        match &outcome {
            Err(_) => Err(Error::Timeout(
                "the proposal was not committed in time".into(),
            )),
            Ok(Ok(resp)) => match &resp.data {
                CommandResult::Batch(results) if batch.len() > 1 => match results.get(i) {
                    Some(r) => Ok(Some(r.clone())),
                    None => Err(Error::BatchResults {
                        commands: batch.len(),
                        results: results.len(),
                    }),
                },
                other => Ok(Some(other.clone())),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Ok(None),
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(Error::Membership(e.clone()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(Error::Timeout(format!("raft stopped: {e}"))),
        }
    };
    let outcomes: Vec<Outcome> = (0..batch.len()).map(each).collect();
    for (p, o) in batch.into_iter().zip(outcomes) {
        let _ = p.done.send(o);
    }
}

fn take_cmd(cmd: &mut Command) -> Command {
    std::mem::replace(cmd, Command::Batch(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_counts_keys_and_values() {
        let t = Command::Txn(Txn::put(&b"key"[..], vec![0u8; 100]));
        assert_eq!(payload_bytes(&t), 103);
        let b = Command::Batch(vec![t.clone(), t]);
        assert_eq!(payload_bytes(&b), 206);
    }
}
