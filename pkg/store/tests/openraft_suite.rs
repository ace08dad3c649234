//! openraft's storage conformance suite against the store's durable log and
//! state machine (each case on a fresh temporary folder).

use openraft::testing::{StoreBuilder, Suite};
use rkube_store::log_store::LogStore;
use rkube_store::state_machine::StateMachine;
use rkube_store::{StorageError, StoreMetrics, TypeConfig};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        // Small segments, so the suite's purges also rotate and delete them.
        let log = LogStore::open_with_segment_size(
            &dir.path().join("wal"),
            4096,
            StoreMetrics::default(),
        )
        .expect("open log");
        let sm =
            StateMachine::open(&dir.path().join("snapshot"), 1000).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_conformance_suite_passes() {
    Suite::test_all(Builder).expect("storage suite");
}
