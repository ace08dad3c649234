//! The store's errors. Each says what failed in words a user can act on, and keeps
//! the error it came from as its source.

use std::path::PathBuf;

use crate::types::{CommandResult, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("request is too large: {size} bytes, the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    #[error("required revision {requested} is a future revision (current is {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("no leader: the store has no quorum ({0})")]
    NoQuorum(String),
    #[error("the leader ({leader:?}) could not be reached: {detail}")]
    LeaderUnreachable {
        leader: Option<NodeId>,
        detail: String,
    },
    #[error("request timed out: {0} (it may or may not have been applied)")]
    Timeout(String),
    #[error(
        "membership change refused: this replica is not the leader; ask the leader ({leader})"
    )]
    NotLeader { leader: String },
    #[error("membership change refused: {0}")]
    Membership(#[source] openraft::error::ChangeMembershipError<NodeId>),
    #[error("the store is shutting down")]
    Shutdown,
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("raft stopped: {0}")]
    Raft(#[source] openraft::error::Fatal<NodeId>),
    #[error("invalid raft configuration: {0}")]
    RaftConfig(#[source] openraft::ConfigError),
    #[error("{0}")]
    PeerAddress(#[from] crate::network::DialError),
    #[error("bad reply from the leader: {0}")]
    BadReply(#[source] postcard::Error),
    #[error("a batch of {commands} commands produced {results} results")]
    BatchResults { commands: usize, results: usize },
    #[error("unexpected result {0:?}")]
    UnexpectedResult(Box<CommandResult>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether a client may retry the same request elsewhere without changing it.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NoQuorum(_) | Error::LeaderUnreachable { .. } | Error::Shutdown
        )
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::TooLarge { .. } => Code::InvalidArgument,
            Error::Compacted { .. } => Code::OutOfRange,
            Error::FutureRevision { .. } => Code::OutOfRange,
            Error::NoQuorum(_) | Error::LeaderUnreachable { .. } | Error::Shutdown => {
                Code::Unavailable
            }
            Error::Timeout(_) => Code::DeadlineExceeded,
            Error::NotLeader { .. } | Error::Membership(_) => Code::FailedPrecondition,
            Error::PeerAddress(_) => Code::InvalidArgument,
            Error::Io { .. }
            | Error::Raft(_)
            | Error::RaftConfig(_)
            | Error::BadReply(_)
            | Error::BatchResults { .. }
            | Error::UnexpectedResult(_) => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}
