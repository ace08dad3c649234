//! The durable Raft log, vote and committed pointer.
//!
//! Every unpurged entry is kept in memory (the log is purged behind each
//! snapshot, so it stays bounded) and written through to a segmented
//! write-ahead log ([`crate::wal`]) by one writer thread. The writer drains
//! whatever requests are queued and writes them as one append with one
//! `fdatasync` (group commit); only then does it tell openraft that the
//! entries are flushed, so nothing is acknowledged to a leader or a client
//! before it is on disk. Requests are written in the order they were made, so
//! a truncate or purge can never overtake an append.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{mpsc, Arc, RwLock};
use std::time::Instant;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader, StorageIOError};
use tokio::sync::oneshot;

use crate::metrics::StoreMetrics;
use crate::types::*;
use crate::wal::{Record, Wal, DEFAULT_SEGMENT_SIZE};

#[derive(Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

enum WriteReq {
    Append(Vec<Record>, LogFlushed<TypeConfig>),
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

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("postcard encodes plain data")
}

impl LogStore {
    /// Opens (or creates) the log in the folder `dir` and loads it.
    pub fn open(dir: &Path, metrics: StoreMetrics) -> std::io::Result<Self> {
        Self::open_with_segment_size(dir, DEFAULT_SEGMENT_SIZE, metrics)
    }

    /// [`LogStore::open`] with segments of `segment_size` bytes (small ones
    /// make tests rotate and delete segments).
    pub fn open_with_segment_size(
        dir: &Path,
        segment_size: u64,
        metrics: StoreMetrics,
    ) -> std::io::Result<Self> {
        let (wal, state) = Wal::open(dir, segment_size)?;
        let mem = Mem {
            entries: state.entries,
            last_purged: state.last_purged,
            vote: state.vote,
            committed: state.committed,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer(wal, rx, metrics))?;
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

/// Moves a Raft log kept in redb (rkube before the write-ahead log) into a new
/// write-ahead log in `wal_dir`, then removes the redb file. The new log is
/// built under a temporary name and renamed into place, so a crash part-way
/// leaves the redb file in charge and the import runs again.
pub fn import_redb(redb_path: &Path, wal_dir: &Path) -> std::io::Result<()> {
    use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
    const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> std::io::Result<T> {
        postcard::from_bytes(b).map_err(io_err)
    }
    if wal_dir.exists() {
        // The import finished but the process stopped before the redb file
        // was removed.
        return std::fs::remove_file(redb_path);
    }
    let tmp = wal_dir.with_extension("importing");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    {
        let db = Database::builder().create(redb_path).map_err(io_err)?;
        let txn = db.begin_read().map_err(io_err)?;
        let mut records = Vec::new();
        if let Ok(meta) = txn.open_table(META) {
            if let Some(v) = meta.get("vote").map_err(io_err)? {
                records.push(Record::Vote(decode(v.value())?));
            }
            if let Some(v) = meta.get("last_purged").map_err(io_err)? {
                records.push(Record::Purge(decode(v.value())?));
            }
            if let Some(v) = meta.get("committed").map_err(io_err)? {
                records.push(Record::Committed(decode(v.value())?));
            }
        }
        if let Ok(log) = txn.open_table(LOG) {
            for row in log.iter().map_err(io_err)? {
                let (k, v) = row.map_err(io_err)?;
                records.push(Record::Entry {
                    index: k.value(),
                    bytes: v.value().to_vec(),
                });
            }
        }
        let (mut wal, _) = Wal::open(&tmp, DEFAULT_SEGMENT_SIZE)?;
        wal.write(&records, true)?;
        tracing::info!(
            from = %redb_path.display(), to = %wal_dir.display(), records = records.len(),
            "moved the raft log from redb to the write-ahead log"
        );
    }
    std::fs::rename(&tmp, wal_dir)?;
    if let Some(parent) = wal_dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    std::fs::remove_file(redb_path)
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
fn writer(mut wal: Wal, rx: mpsc::Receiver<WriteReq>, metrics: StoreMetrics) {
    let mut committed: Option<Option<LogId>> = None;
    let mut records = Vec::new();
    let mut flushed = Vec::new();
    let mut votes = Vec::new();
    loop {
        let first = if committed.is_some() {
            match rx.recv_timeout(COMMITTED_LINGER) {
                Ok(r) => Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if let Some(c) = committed.take() {
                        let _ = wal.write(&[Record::Committed(c)], true);
                    }
                    return;
                }
            }
        } else {
            match rx.recv() {
                Ok(r) => Some(r),
                Err(_) => return,
            }
        };
        let mut durable = false;
        let mut purged = false;
        let mut next = first;
        let mut n = 0;
        while let Some(req) = next {
            n += 1;
            match req {
                WriteReq::Append(mut rs, cb) => {
                    records.append(&mut rs);
                    flushed.push(cb);
                    durable = true;
                }
                WriteReq::Truncate(from) => {
                    records.push(Record::Truncate(from));
                    durable = true;
                }
                WriteReq::Purge(upto) => {
                    records.push(Record::Purge(upto));
                    durable = true;
                    purged = true;
                }
                WriteReq::Vote(v, done) => {
                    records.push(Record::Vote(v));
                    votes.push(done);
                    durable = true;
                }
                WriteReq::Committed(c) => committed = Some(c),
            }
            next = if n < 1024 { rx.try_recv().ok() } else { None };
        }
        if !durable && n > 0 {
            // Only a committed pointer arrived: let it wait for company.
            continue;
        }
        if let Some(c) = committed.take() {
            records.push(Record::Committed(c));
        }
        let started = Instant::now();
        let mut result = wal.write(&records, durable);
        if durable {
            metrics
                .fsync_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        if purged && result.is_ok() {
            result = wal.remove_purged();
        }
        records.clear();
        for cb in flushed.drain(..) {
            cb.log_io_completed(result.as_ref().map(|_| ()).map_err(io_err));
        }
        for done in votes.drain(..) {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(io_err));
        }
        if let Err(e) = result {
            // A log that cannot be written must not pretend to work.
            tracing::error!(error = %e, "raft log write failed; the log writer stops");
            return;
        }
    }
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
        let mut records = Vec::new();
        {
            let mut mem = self.mem.write().unwrap();
            for e in entries {
                records.push(Record::Entry {
                    index: e.log_id.index,
                    bytes: encode(&e),
                });
                mem.entries.insert(e.log_id.index, e);
            }
        }
        self.send(WriteReq::Append(records, callback))
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

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use redb::{Database, TableDefinition};

    #[tokio::test]
    async fn a_redb_log_from_an_older_rkube_is_moved_into_the_wal() {
        const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
        const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("raft-log.redb");
        let wal_dir = dir.path().join("raft-wal");
        let id = |i| LogId::new(CommittedLeaderId::new(2, 1), i);
        {
            let db = Database::builder().create(&old).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut log = txn.open_table(LOG).unwrap();
                for i in 6..=8 {
                    let e = Entry {
                        log_id: id(i),
                        payload: EntryPayload::Normal(Command::Compact { revision: i as i64 }),
                    };
                    log.insert(i, encode(&e).as_slice()).unwrap();
                }
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("vote", encode(&Vote::new(2, 1)).as_slice())
                    .unwrap();
                meta.insert("last_purged", encode(&id(5)).as_slice())
                    .unwrap();
                meta.insert("committed", encode(&Some(id(7))).as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        import_redb(&old, &wal_dir).unwrap();
        assert!(
            !old.exists(),
            "the redb file is removed once the WAL holds it"
        );
        let mut log = LogStore::open(&wal_dir, StoreMetrics::default()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(id(5)));
        assert_eq!(state.last_log_id, Some(id(8)));
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        assert_eq!(log.read_committed().await.unwrap(), Some(id(7)));
        let entries = log.try_get_log_entries(6..=8).await.unwrap();
        assert_eq!(entries.len(), 3);
    }
}
