//! The three patch types kubectl sends, applied to an object's JSON as the
//! Kubernetes apiserver applies them: JSON patch (RFC 6902,
//! `kubectl patch --type json`), merge patch (RFC 7386, `kubectl label`,
//! `annotate`, `scale`, `patch --type merge`) and strategic merge patch
//! (`kubectl apply`, `edit`, and `patch`'s default).
//!
//! Pure functions from (object, patch) to object or [`PatchError`]. This
//! module never decodes into typed structs, defaults, validates or touches
//! storage: the caller decodes the result, and the registry checks it like
//! any update. It never computes patches either; kubectl does that.
//!
//! - [`schema`]: which lists merge, and by which key, per kind.
//! - `strategic`: the strategic merge patch algorithm and its directives.
//! - `error`: [`PatchError`] with Kubernetes' messages and status codes.

use serde_json::Value;

mod error;
pub mod schema;
mod strategic;

pub use error::{BodyError, PatchError, Result, MAX_JSON_PATCH_OPERATIONS};
pub use schema::{merge_info, schema_for_kind, ListStrategy, Schema};
pub use strategic::apply_strategic_merge_patch;

/// A patch type, as named by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value (parameters such as
    /// `charset` are ignored), or `None` for anything else, which the
    /// apiserver answers with 415. Server-side apply
    /// (`application/apply-patch+yaml`) is not handled here.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        [Self::Json, Self::Merge, Self::StrategicMerge]
            .into_iter()
            .find(|t| t.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies a PATCH request's `body` of type `patch_type` to `doc`, an object
/// of `kind` (`"Deployment"`; only strategic merge patches use it).
pub fn apply_patch(patch_type: PatchType, doc: &Value, body: &[u8], kind: &str) -> Result<Value> {
    match patch_type {
        PatchType::Json => apply_json_patch(doc, body),
        PatchType::Merge => {
            let patch = parse_body(body)?;
            if !patch.is_object() {
                return Err(PatchError::InvalidBody(BodyError::MergePatchNotAnObject {
                    found: error::json_type_name(&patch),
                }));
            }
            Ok(apply_merge_patch(doc, &patch))
        }
        PatchType::StrategicMerge => {
            let schema =
                schema_for_kind(kind).ok_or_else(|| PatchError::StrategicMergeUnsupported {
                    kind: kind.to_owned(),
                })?;
            apply_strategic_merge_patch(doc, &parse_body(body)?, schema)
        }
    }
}

fn parse_body(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(BodyError::NotJson(e)))
}

/// Applies an RFC 6902 JSON patch. Either every operation applies or the
/// patch fails as a whole.
pub fn apply_json_patch(doc: &Value, patch_bytes: &[u8]) -> Result<Value> {
    let patch: json_patch::Patch = serde_json::from_slice(patch_bytes)
        .map_err(|e| PatchError::InvalidBody(BodyError::NotJsonPatch(e)))?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: patch.0.len(),
        });
    }
    let mut doc = doc.clone();
    json_patch::patch(&mut doc, &patch)?;
    Ok(doc)
}

/// Applies an RFC 7386 merge patch: objects merge recursively, `null`
/// deletes, anything else (lists included) replaces.
///
/// Like Kubernetes, `null` members of objects inside lists the patch brings
/// are dropped too, as they would be by a Go decoder.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut doc = doc.clone();
    json_patch::merge(&mut doc, &prune_nulls_in_lists(patch));
    doc
}

fn prune_nulls_in_lists(patch: &Value) -> Value {
    match patch {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), prune_nulls_in_lists(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(prune_nulls).collect()),
        scalar => scalar.clone(),
    }
}

fn prune_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), prune_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(prune_nulls).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests;
