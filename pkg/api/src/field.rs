//! Field errors, as apimachinery's `util/validation/field` has them: the path of a field
//! (`spec.containers[0].image`), the kinds of failure with Kubernetes' reasons and labels,
//! one error's message and a list's aggregate, and Go's quoting and `%#v` rendering of the
//! values those messages show. Every module that reports a field (validation, selectors,
//! statuses) builds on this one.
//!
//! This is a leaf: it uses nothing else of the crate, so that anything may use it without
//! forming a cycle (a test in `tests/module_graph.rs` keeps it that way). It formats
//! failures; it never decides what is valid.

mod error;
pub mod gofmt;
mod path;

pub use error::{aggregate_message, aggregate_strings, BadValue, ErrorList, ErrorType, FieldError};
pub use gofmt::go_quote;
pub use path::FieldPath;

#[cfg(test)]
mod tests;
