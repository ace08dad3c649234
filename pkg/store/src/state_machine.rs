//! openraft's state machine over [`crate::mvcc::KvState`], with durable snapshots.
//!
//! The state machine lives in memory and is made durable the way etcd's is: by
//! snapshots written to disk (temp file, fsync, rename, fsync of the folder)
//! plus the Raft log, which openraft replays from the snapshot's last applied
//! entry up to the saved committed index on start. A snapshot carries the live
//! keys *and* the history window, so watchers can resume on a replica that just
//! restarted or caught up by snapshot.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::mvcc::KvState;
use crate::types::*;

/// What a snapshot holds and what the state machine is.
#[derive(Clone, Serialize, Deserialize)]
pub struct SmState {
    pub kv: KvState,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// The state shared between openraft's state machine and the readers
/// (ranges, watches, status).
pub struct Shared {
    pub state: RwLock<SmState>,
    /// The newest applied revision; watchers wait on it.
    pub revision: watch::Sender<i64>,
}

impl Shared {
    pub fn read<T>(&self, f: impl FnOnce(&SmState) -> T) -> T {
        f(&self.state.read().unwrap())
    }
}

#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
    dir: PathBuf,
    current: Arc<Mutex<Option<SnapshotMeta>>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

fn sto_err(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(
        ErrorSubject::StateMachine,
        verb,
        openraft::AnyError::new(&e),
    )
    .into()
}

const SNAPSHOT_FILE: &str = "snapshot.bin";

impl StateMachine {
    /// Opens the state machine from the newest snapshot in `dir`, if any.
    pub fn open(dir: &Path, history_limit: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(SNAPSHOT_FILE);
        let (state, current) = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: SnapshotFile =
                    postcard::from_bytes(&bytes).map_err(std::io::Error::other)?;
                let mut state: SmState =
                    postcard::from_bytes(&file.data).map_err(std::io::Error::other)?;
                state.kv.set_history_limit(history_limit);
                (state, Some(file.meta))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                SmState {
                    kv: KvState::new(history_limit),
                    last_applied: None,
                    membership: StoredMembership::default(),
                },
                None,
            ),
            Err(e) => return Err(e),
        };
        let (revision, _) = watch::channel(state.kv.revision());
        Ok(Self {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                revision,
            }),
            dir: dir.to_path_buf(),
            current: Arc::new(Mutex::new(current)),
        })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn persist(&self, meta: &SnapshotMeta, data: &[u8]) -> std::io::Result<()> {
        let file = SnapshotFile {
            meta: meta.clone(),
            data: data.to_vec(),
        };
        let bytes = postcard::to_stdvec(&file).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(SNAPSHOT_FILE))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        *self.current.lock().unwrap() = Some(meta.clone());
        Ok(())
    }

    fn notify(&self) {
        let rev = self.shared.read(|s| s.kv.revision());
        self.shared.revision.send_replace(rev);
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (data, last_applied, membership) = {
            let st = self.shared.state.read().unwrap();
            let data = postcard::to_stdvec(&*st).map_err(|e| sto_err(ErrorVerb::Read, e))?;
            (data, st.last_applied, st.membership.clone())
        };
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let this = self.clone();
        let (meta2, data2) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || this.persist(&meta2, &data2))
            .await
            .map_err(|e| sto_err(ErrorVerb::Write, e))?
            .map_err(|e| sto_err(ErrorVerb::Write, e))?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(self.shared.read(|s| (s.last_applied, s.membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        {
            let mut st = self.shared.state.write().unwrap();
            for entry in entries {
                st.last_applied = Some(entry.log_id);
                let res = match &entry.payload {
                    EntryPayload::Blank => CommandResult::None,
                    EntryPayload::Normal(cmd) => st.kv.apply(cmd),
                    EntryPayload::Membership(m) => {
                        st.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        CommandResult::None
                    }
                };
                out.push(res);
            }
        }
        self.notify();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut new: SmState =
            postcard::from_bytes(&data).map_err(|e| sto_err(ErrorVerb::Read, e))?;
        let this = self.clone();
        let (meta2, data2) = (meta.clone(), data);
        tokio::task::spawn_blocking(move || this.persist(&meta2, &data2))
            .await
            .map_err(|e| sto_err(ErrorVerb::Write, e))?
            .map_err(|e| sto_err(ErrorVerb::Write, e))?;
        {
            let mut st = self.shared.state.write().unwrap();
            let limit = st.kv_history_limit();
            new.kv.set_history_limit(limit);
            *st = new;
        }
        tracing::info!(snapshot = %meta.snapshot_id, "installed snapshot");
        self.notify();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let Some(meta) = self.current.lock().unwrap().clone() else {
            return Ok(None);
        };
        let bytes = match std::fs::read(self.dir.join(SNAPSHOT_FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(sto_err(ErrorVerb::Read, e)),
        };
        let file: SnapshotFile =
            postcard::from_bytes(&bytes).map_err(|e| sto_err(ErrorVerb::Read, e))?;
        if file.meta != meta {
            tracing::warn!("snapshot file changed under the state machine");
        }
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(file.data)),
        }))
    }
}

impl SmState {
    fn kv_history_limit(&self) -> usize {
        self.kv.history_limit()
    }
}
