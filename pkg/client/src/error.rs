//! The client's errors: the server's answer, or why there was none. Also
//! reads a gRPC status back into a Kubernetes `Status` when it carries one.

use std::time::Duration;

use rkube_api::status::{Reason, Status};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API pipeline refused the request: Kubernetes' `Status`, exactly
    /// as the REST door would have sent it.
    #[error("{0}")]
    Api(Status),
    /// No endpoint answered before the deadline; nothing was applied by
    /// this call (reads, and writes that never reached a server).
    #[error("no apiserver answered within {deadline:?}: {last}")]
    Unavailable { deadline: Duration, last: String },
    /// A write reached a server but its answer was lost (the connection
    /// broke or the attempt timed out): it may or may not have been applied.
    /// Not retried, since a retry could apply it twice.
    #[error("the request to {endpoint} may or may not have been applied: {detail}")]
    Uncertain { endpoint: String, detail: String },
    /// The server's answer could not be decoded (into the typed object).
    #[error("cannot decode the answer: {0}")]
    Decode(String),
    /// An argument or configuration the client refuses before sending.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    /// The server's `Status`, when the failure is the API's answer.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Api(s) => Some(s),
            _ => None,
        }
    }

    /// The reason of the server's answer (`Reason::Unknown` for failures that
    /// are not the API's).
    pub fn reason(&self) -> Reason {
        self.status().map_or(Reason::Unknown, |s| s.reason)
    }

    /// The HTTP code of the server's answer (0 for failures that are not the API's).
    pub fn code(&self) -> u16 {
        self.status().map_or(0, |s| s.code)
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == 404
    }

    pub fn is_already_exists(&self) -> bool {
        self.reason() == Reason::AlreadyExists
    }

    /// 409 Conflict (a stale resourceVersion, an already bound pod).
    pub fn is_conflict(&self) -> bool {
        self.code() == 409 && !self.is_already_exists()
    }

    /// 410: the resourceVersion is too old; relist and watch from the list.
    pub fn is_gone(&self) -> bool {
        self.code() == 410
    }
}

/// What a failed gRPC call tells us.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The API pipeline answered with a Kubernetes Status.
    Api(Status),
    /// The request never left the client (no connection could be made).
    NotSent(String),
    /// Anything else: a broken connection, a reset stream, a timeout.
    Lost(String),
}

impl Failure {
    pub(crate) fn classify(s: &tonic::Status) -> Failure {
        if let Some(st) = status_of(s) {
            return Failure::Api(st);
        }
        match s.code() {
            // The auth layer answers before the pipeline, without a Status.
            tonic::Code::Unauthenticated => Failure::Api(Status::unauthorized(s.message())),
            tonic::Code::PermissionDenied => {
                Failure::Api(Status::forbidden("", "", "", s.message()))
            }
            tonic::Code::Unimplemented => Failure::Api(Status::new(
                Reason::MethodNotAllowed,
                format!("the server does not serve this call: {}", s.message()),
            )),
            _ if crate::connect::never_connected(s) => Failure::NotSent(describe(s)),
            _ => Failure::Lost(describe(s)),
        }
    }

    pub(crate) fn detail(&self) -> String {
        match self {
            Failure::Api(s) => format!("{} ({})", s.message, s.code),
            Failure::NotSent(d) | Failure::Lost(d) => d.clone(),
        }
    }
}

/// The Kubernetes `Status` in a gRPC status's details, if the server put one there.
pub fn status_of(s: &tonic::Status) -> Option<Status> {
    if s.details().is_empty() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(s.details()).ok()?;
    Status::from_json(&v)
}

/// A gRPC status with its source chain, for messages.
fn describe(s: &tonic::Status) -> String {
    let mut out = format!("{:?}: {}", s.code(), s.message());
    let mut src = std::error::Error::source(s);
    while let Some(e) = src {
        out.push_str(": ");
        out.push_str(&e.to_string());
        src = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_in_the_details_is_the_apis_answer() {
        let st = Status::optimistic_lock("", "configmaps", "a");
        let g = tonic::Status::with_details(
            tonic::Code::Aborted,
            st.message.clone(),
            st.to_json_bytes().into(),
        );
        match Failure::classify(&g) {
            Failure::Api(back) => assert_eq!(back, st),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bare_unavailable_is_a_lost_answer_not_the_apis() {
        let g = tonic::Status::unavailable("connection reset");
        assert!(matches!(Failure::classify(&g), Failure::Lost(_)));
        let g = tonic::Status::unauthenticated("Unauthorized");
        assert!(matches!(Failure::classify(&g), Failure::Api(s) if s.code == 401));
    }
}
