//! The durable Raft log, vote and committed pointer.
//!
//! Every unpurged entry is kept in memory (the log is purged behind each
//! snapshot, so it stays bounded) and written through to a redb database by one
//! writer thread. The writer drains whatever requests are queued and commits
//! them in one transaction with one fsync (group commit); only then does it
//! tell openraft that the entries are flushed, so nothing is acknowledged to a
//! leader or a client before it is on disk. Requests are applied in the order
//! they were made, so a truncate or purge can never overtake an append.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{mpsc, Arc, RwLock};
use std::time::Instant;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader, StorageIOError};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::metrics::StoreMetrics;
use crate::types::*;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "last_purged";

#[derive(Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

enum WriteReq {
    Append(Vec<(u64, Vec<u8>)>, LogFlushed<TypeConfig>),
    /// Remove entries with index >= the value.
    Truncate(u64),
    /// Remove entries with index <= the log id's, and remember it.
    Purge(LogId),
    Vote(Vote, oneshot::Sender<std::io::Result<()>>),
    Committed(Option<LogId>),
}

#[derive(Clone)]
pub struct LogStore {
    mem: Arc<RwLock<Mem>>,
    tx: mpsc::Sender<WriteReq>,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn sto_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> std::io::Result<T> {
    postcard::from_bytes(b).map_err(io_err)
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard encodes plain data")
}

impl LogStore {
    /// Opens (or creates) the log database at `path` and loads it.
    pub fn open(path: &Path, metrics: StoreMetrics) -> std::io::Result<Self> {
        let db = Database::builder().create(path).map_err(io_err)?;
        {
            let txn = db.begin_write().map_err(io_err)?;
            txn.open_table(LOG).map_err(io_err)?;
            txn.open_table(META).map_err(io_err)?;
            txn.commit().map_err(io_err)?;
        }
        let mut mem = Mem::default();
        {
            let txn = db.begin_read().map_err(io_err)?;
            let log = txn.open_table(LOG).map_err(io_err)?;
            for row in log.iter().map_err(io_err)? {
                let (k, v) = row.map_err(io_err)?;
                mem.entries.insert(k.value(), decode(v.value())?);
            }
            let meta = txn.open_table(META).map_err(io_err)?;
            if let Some(v) = meta.get(VOTE).map_err(io_err)? {
                mem.vote = Some(decode(v.value())?);
            }
            if let Some(v) = meta.get(COMMITTED).map_err(io_err)? {
                mem.committed = decode(v.value())?;
            }
            if let Some(v) = meta.get(PURGED).map_err(io_err)? {
                mem.last_purged = Some(decode(v.value())?);
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer(db, rx, metrics))?;
        Ok(Self {
            mem: Arc::new(RwLock::new(mem)),
            tx,
        })
    }

    fn send(&self, req: WriteReq) -> Result<(), StorageError> {
        self.tx
            .send(req)
            .map_err(|_| sto_err(ErrorSubject::Logs, ErrorVerb::Write, "log writer stopped"))
    }

    pub fn committed_index(&self) -> u64 {
        self.mem.read().unwrap().committed.map_or(0, |l| l.index)
    }
}

/// How long a new committed pointer may wait for a log write to ride along
/// with before it is written on its own.
const COMMITTED_LINGER: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer thread: group commit of everything queued, one fsync per batch.
///
/// The committed pointer is written lazily: openraft saves it after every
/// commit, but it only shortens recovery (a restarted replica re-applies the
/// log up to it before it hears from a leader), so it need not be durable at
/// once. It rides along with the next log write, or is written on its own
/// (without fsync) after [`COMMITTED_LINGER`] of quiet.
fn writer(db: Database, rx: mpsc::Receiver<WriteReq>, metrics: StoreMetrics) {
    let mut committed: Option<Option<LogId>> = None;
    loop {
        let first = if committed.is_some() {
            match rx.recv_timeout(COMMITTED_LINGER) {
                Ok(r) => Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = write_batch(&db, &[], committed.take(), &metrics);
                    return;
                }
            }
        } else {
            match rx.recv() {
                Ok(r) => Some(r),
                Err(_) => return,
            }
        };
        let mut batch = Vec::new();
        let timed_out = first.is_none();
        if let Some(first) = first {
            batch.push(first);
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
                if batch.len() >= 1024 {
                    break;
                }
            }
        }
        batch.retain(|r| match r {
            WriteReq::Committed(c) => {
                committed = Some(*c);
                false
            }
            _ => true,
        });
        if batch.is_empty() && !timed_out {
            continue;
        }
        let result = write_batch(&db, &batch, committed.take(), &metrics);
        for req in batch {
            let r = result.as_ref().map(|_| ()).map_err(io_err);
            match req {
                WriteReq::Append(_, cb) => cb.log_io_completed(r),
                WriteReq::Vote(_, done) => {
                    let _ = done.send(r);
                }
                _ => {}
            }
        }
        if let Err(e) = result {
            // A log that cannot be written must not pretend to work.
            tracing::error!(error = %e, "raft log write failed; the log writer stops");
            return;
        }
    }
}

/// Writes one batch in one transaction, fsynced when it holds log entries or
/// a vote.
fn write_batch(
    db: &Database,
    batch: &[WriteReq],
    committed: Option<Option<LogId>>,
    metrics: &StoreMetrics,
) -> std::io::Result<()> {
    let durable = batch
        .iter()
        .any(|r| matches!(r, WriteReq::Append(..) | WriteReq::Vote(..)));
    let started = Instant::now();
    let mut txn = db.begin_write().map_err(io_err)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(io_err)?;
    {
        let mut log = txn.open_table(LOG).map_err(io_err)?;
        let mut meta = txn.open_table(META).map_err(io_err)?;
        for req in batch {
            match req {
                WriteReq::Append(entries, _) => {
                    for (i, bytes) in entries {
                        log.insert(*i, bytes.as_slice()).map_err(io_err)?;
                    }
                }
                WriteReq::Truncate(from) => {
                    log.retain_in(*from.., |_, _| false).map_err(io_err)?;
                }
                WriteReq::Purge(upto) => {
                    log.retain_in(..=upto.index, |_, _| false).map_err(io_err)?;
                    meta.insert(PURGED, encode(upto).as_slice())
                        .map_err(io_err)?;
                }
                WriteReq::Vote(v, _) => {
                    meta.insert(VOTE, encode(v).as_slice()).map_err(io_err)?;
                }
                WriteReq::Committed(_) => unreachable!("committed pointers are taken out"),
            }
        }
        if let Some(c) = committed {
            meta.insert(COMMITTED, encode(&c).as_slice())
                .map_err(io_err)?;
        }
    }
    txn.commit().map_err(io_err)?;
    if durable {
        metrics
            .fsync_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let mem = self.mem.read().unwrap();
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem.read().unwrap();
        let last = mem
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(mem.last_purged);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.send(WriteReq::Vote(*vote, tx))?;
        let r = rx
            .await
            .map_err(|_| sto_err(ErrorSubject::Vote, ErrorVerb::Write, "log writer stopped"))?;
        r.map_err(|e| sto_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.mem.write().unwrap().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.mem.read().unwrap().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.mem.write().unwrap().committed = committed;
        self.send(WriteReq::Committed(committed))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.mem.read().unwrap().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        {
            let mut mem = self.mem.write().unwrap();
            for e in entries {
                rows.push((e.log_id.index, encode(&e)));
                mem.entries.insert(e.log_id.index, e);
            }
        }
        self.send(WriteReq::Append(rows, callback))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mem.write().unwrap().entries.split_off(&log_id.index);
        self.send(WriteReq::Truncate(log_id.index))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut mem = self.mem.write().unwrap();
            let keep = mem.entries.split_off(&(log_id.index + 1));
            mem.entries = keep;
            mem.last_purged = Some(log_id);
        }
        self.send(WriteReq::Purge(log_id))
    }
}
