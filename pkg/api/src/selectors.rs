//! Label and field selectors: parsing the string forms a client sends
//! (`labelSelector=app=web,tier in (a,b)`, `fieldSelector=spec.nodeName=n1`), converting
//! `metav1.LabelSelector` objects, and matching labels and objects. Parse errors carry
//! Kubernetes' messages; the caller turns them into 400 Bad Request. Matching is pure and
//! never looks anything up. Part of the client side of the crate (no `server` feature):
//! components parse and match selectors as the apiserver does.

mod fields;
mod labels;

pub use fields::{FieldSelector, FieldTerm};
pub use labels::{LabelSelector, Operator, Requirement};

/// A selector that could not be parsed or converted; the message is Kubernetes' own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
}

impl SelectorError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SelectorError {
            message: message.into(),
        }
    }

    /// The error as the 400 Bad Request the apiserver answers with.
    pub fn into_status(self) -> crate::status::Status {
        crate::status::Status::bad_request(self.message)
    }
}

#[cfg(test)]
mod tests;
