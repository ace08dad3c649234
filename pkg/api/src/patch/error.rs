//! Why a patch could not be applied, with the messages and HTTP codes the
//! Kubernetes apiserver gives, so that kubectl prints the same text for
//! rkube as for Kubernetes.

use serde_json::Value;

/// `Result` with [`PatchError`] as the default error.
pub type Result<T, E = PatchError> = std::result::Result<T, E>;

/// The most operations one JSON patch may carry (Kubernetes' limit).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Why a patch failed.
///
/// Messages are Kubernetes' own (some start with a capital letter for that
/// reason). Strategic merge errors that Kubernetes does not classify reach
/// kubectl as 500s with reason `Unknown`, which kubectl prints as
/// `Error from server: <message>`; [`PatchError::status_code`] keeps that.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON, or not the shape the patch type needs.
    #[error(transparent)]
    InvalidBody(BodyError),
    /// A strategic merge patch whose top level is not a JSON object.
    #[error("json: cannot unmarshal {found} into Go value of type map[string]interface {{}}")]
    NotAnObject { found: &'static str },
    /// The object being patched is not a JSON object.
    #[error("invalid JSON document")]
    DocumentNotAnObject,
    /// A JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A JSON patch operation failed (a `test` did not match, a path is missing).
    #[error(transparent)]
    OperationFailed(#[from] json_patch::PatchError),
    /// Strategic merge patch of a kind without patch metadata (custom resources).
    #[error("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")]
    StrategicMergeUnsupported { kind: String },
    /// An element of a merge list lacks the list's merge key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey { element: String, key: String },
    /// A `$patch` directive other than `replace` or `delete` (or, on a map, `merge`).
    #[error("unknown patch type: {directive} in map: {element}")]
    UnknownPatchDirective { directive: String, element: String },
    /// `{"$patch": "merge"}` as a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// `$retainKeys` is not a list, or the patch sets a key it does not list.
    #[error("invalid patch format of retainKeys")]
    InvalidRetainKeys,
    /// `$setElementOrder/<field>` is not a list.
    #[error("invalid patch format of setElementOrder list")]
    InvalidSetElementOrder,
    /// `$deleteFromPrimitiveList/<field>` is not a list.
    #[error("invalid patch format of primitive list")]
    InvalidPrimitiveListDeletion,
    /// The patch's list names elements that its `$setElementOrder` list lacks,
    /// or names them in another order.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    /// A value of another type where the patch needs a list or an object.
    #[error("expected a {expected}, but received a {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// A merge list whose elements are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A merge list whose elements are not all of one JSON type.
    #[error("list element types are not identical: {lists}")]
    MixedListElements { lists: String },
    /// A merge list of objects without a declared merge key.
    #[error("cannot merge lists without merge key for type map")]
    NoMergeKeyDeclared,
}

/// Why a PATCH body could not be read as a patch of its type.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON (merge and strategic merge patches).
    #[error("{0}")]
    NotJson(#[source] serde_json::Error),
    /// Not a list of JSON patch operations.
    #[error("error decoding patch: {0}")]
    NotJsonPatch(#[source] serde_json::Error),
    /// A merge patch whose top level is not a JSON object.
    #[error("a merge patch must be a JSON object, not {found}")]
    MergePatchNotAnObject { found: &'static str },
}

impl PatchError {
    /// The HTTP status Kubernetes answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidBody(_)
            | Self::NotAnObject { .. }
            | Self::InvalidRetainKeys
            | Self::InvalidSetElementOrder
            | Self::InvalidPrimitiveListDeletion => 400,
            Self::TooManyOperations { .. } => 413,
            Self::StrategicMergeUnsupported { .. } => 415,
            // Kubernetes answers a failed operation with 422 reason Invalid,
            // message "the server rejected our request due to an error in our
            // request"; this error's text belongs in the Status details.
            Self::OperationFailed(_) | Self::ListOfLists => 422,
            Self::DocumentNotAnObject
            | Self::MissingMergeKey { .. }
            | Self::UnknownPatchDirective { .. }
            | Self::MergeDirectiveInList
            | Self::SetElementOrderMismatch { .. }
            | Self::WrongType { .. }
            | Self::MixedListElements { .. }
            | Self::NoMergeKeyDeclared => 500,
        }
    }

    pub(crate) fn missing_merge_key(element: &Value, key: &str) -> Self {
        Self::MissingMergeKey {
            element: go_format(element),
            key: key.to_owned(),
        }
    }

    pub(crate) fn wrong_type(expected: &'static str, found: &Value) -> Self {
        Self::WrongType {
            expected,
            found: go_type(found),
        }
    }
}

/// The Go type of a decoded JSON value, as `reflect.TypeOf` prints it in
/// Kubernetes' messages.
pub(crate) fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => GO_LIST,
        Value::Object(_) => GO_MAP,
    }
}

pub(crate) const GO_LIST: &str = "[]interface {}";
pub(crate) const GO_MAP: &str = "map[string]interface {}";

/// The JSON type name Go's decoder uses in "cannot unmarshal X" messages.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `fmt` prints a decoded JSON value with `%v`:
/// `map[image:nginx ports:[map[containerPort:80]]]`. Keys are sorted, as Go
/// sorts map keys when printing.
pub(crate) fn go_format(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value);
    out
}

fn write_go(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_go(out, &map[key.as_str()]);
            }
            out.push(']');
        }
    }
}
