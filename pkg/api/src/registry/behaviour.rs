//! What a resource does with its objects: each method reaches the kind's entry
//! ([`crate::kinds`]) through the resource's row and puts it together with what every
//! kind shares (the `ObjectMeta` checks, the metadata fields of field selectors, the
//! identity of the 422 a validation failure becomes). The apiserver's registry calls
//! these; none of them reads or writes the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::{ResourceInfo, RESOURCES};
use crate::field::ErrorList;
use crate::kinds::StatusWrites;
use crate::selectors::{FieldSelector, SelectorError};
use crate::status::Status;
use crate::table::{self, Column, TableOptions};
use crate::{strict, validation};

/// Writes: what a create or an update keeps (Kubernetes' `PrepareForCreate` and
/// `PrepareForUpdate`), defaulting included. The identity fields a client never owns
/// (uid, creation time, name, namespace) are the caller's.
impl ResourceInfo {
    /// Readies a new object for validation: a generation of 1 (for objects with a spec,
    /// or of kinds that always have one), the kind's defaults, the `kubernetes` finalizer
    /// for namespaces, and no status when status is written only through its subresource.
    pub fn prepare_for_create(&self, obj: &mut Value) {
        let writes = self.behaviour.writes;
        if obj.get("spec").is_some() || writes.generation_always {
            meta_mut(obj).insert("generation".into(), json!(1));
        }
        self.default_object(obj);
        if self.has_spec_finalizers() {
            require_kubernetes_finalizer(obj);
        }
        if writes.status == StatusWrites::Subresource {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
    }

    /// Readies a replacement of `old` (a PUT or a patched object): `spec.finalizers` stays
    /// where only `finalize` writes it; when status has its own subresource, the stored
    /// status stays and a changed spec bumps the generation; then the kind's defaults.
    pub fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if self.has_spec_finalizers() {
            set_spec_finalizers(obj, old.pointer("/spec/finalizers").cloned());
        }
        if self.behaviour.writes.status.is_subresource() {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(o) = obj.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            if obj.get("spec") != old.get("spec") {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta_mut(obj).insert("generation".into(), json!(g + 1));
            }
        }
        self.default_object(obj);
    }

    /// Readies a write to the status subresource: `old` with the status of `obj` (none
    /// when `obj` has none), then the kind's defaults.
    pub fn prepare_for_status_update(&self, obj: &mut Value, old: &Value) {
        let mut merged = old.clone();
        merged["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
        if let Some(o) = merged.as_object_mut() {
            if o.get("status").is_some_and(Value::is_null) {
                o.remove("status");
            }
        }
        *obj = merged;
        self.default_object(obj);
    }

    /// Applies the kind's defaults to `obj`.
    pub fn default_object(&self, obj: &mut Value) {
        (self.behaviour.defaults)(obj)
    }
}

/// Deletion, and the `finalize` subresource: Kubernetes' namespace storage, declared by the
/// resource table (a resource with a `finalize` subresource). Such an object carries
/// `spec.finalizers` that only `finalize` writes (an update keeps the stored ones); a delete
/// marks it `Terminating` (deletionTimestamp and `status.phase`); it goes once its
/// `spec.finalizers` and `metadata.finalizers` are both empty.
impl ResourceInfo {
    /// Whether the resource's `spec.finalizers` is written through its `finalize`
    /// subresource only (namespaces).
    pub fn has_spec_finalizers(&self) -> bool {
        self.subresource("finalize").is_some()
    }

    /// Readies a write to the `finalize` subresource: `old` with the `spec.finalizers` of
    /// `obj` (none when `obj` has none), then the kind's defaults.
    pub fn prepare_for_finalize(&self, obj: &mut Value, old: &Value) {
        let finalizers = obj.pointer("/spec/finalizers").cloned();
        let mut merged = old.clone();
        set_spec_finalizers(&mut merged, finalizers);
        *obj = merged;
    }

    /// Marks an object that a delete leaves in place (finalizers pending): namespaces
    /// turn `Terminating`. The deletion timestamp is the caller's.
    pub fn prepare_for_delete(&self, obj: &mut Value) {
        if self.has_spec_finalizers() {
            if !obj.get("status").is_some_and(Value::is_object) {
                obj["status"] = json!({});
            }
            obj["status"]["phase"] = json!("Terminating");
        }
    }

    /// Whether a deletion of `obj` still waits for finalizers: its `metadata.finalizers`,
    /// and for namespaces its `spec.finalizers` too.
    pub fn finalizers_pending(&self, obj: &Value) -> bool {
        let non_empty = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        non_empty("/metadata/finalizers")
            || (self.has_spec_finalizers() && non_empty("/spec/finalizers"))
    }
}

/// A new namespace always starts with the `kubernetes` finalizer (added after any it was
/// sent with): the namespace controller removes it once the namespace is empty.
fn require_kubernetes_finalizer(obj: &mut Value) {
    let mut finalizers = obj
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == "kubernetes") {
        finalizers.push(json!("kubernetes"));
    }
    set_spec_finalizers(obj, Some(Value::Array(finalizers)));
}

/// Sets `obj`'s `spec.finalizers` to `finalizers` (removes it for `None`).
fn set_spec_finalizers(obj: &mut Value, finalizers: Option<Value>) {
    match finalizers {
        Some(f) => {
            if !obj.get("spec").is_some_and(Value::is_object) {
                obj["spec"] = json!({});
            }
            obj["spec"]["finalizers"] = f;
        }
        None => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
}

/// Validation: the kind's checks and the shared `ObjectMeta` ones, in Kubernetes' order.
impl ResourceInfo {
    /// The field errors of a new object (empty when valid); an undecodable body is a 400.
    pub fn create_errors(&self, obj: &Value) -> Result<ErrorList, Status> {
        validation::create_errors(obj, self.namespaced, self.behaviour.validation.create)
    }

    /// Validates a new object; `Err` is the 422 Invalid Status (or 400 for an
    /// undecodable body).
    pub fn validate_create(&self, obj: &Value) -> Result<(), Status> {
        let errs = self.create_errors(obj)?;
        validation::into_result(self.group, self.kind, obj, errs)
    }

    /// The field errors of an update of `old` to `new` (both full objects).
    pub fn update_errors(&self, new: &Value, old: &Value) -> Result<ErrorList, Status> {
        validation::update_errors(new, old, self.namespaced, self.behaviour.validation.update)
    }

    /// Validates an update; `Err` is the 422 Invalid Status (or 400 for an undecodable
    /// body).
    pub fn validate_update(&self, new: &Value, old: &Value) -> Result<(), Status> {
        let errs = self.update_errors(new, old)?;
        validation::into_result(self.group, self.kind, new, errs)
    }

    /// The field errors of a write to the `status` subresource.
    pub fn status_update_errors(&self, new: &Value, old: &Value) -> Result<ErrorList, Status> {
        validation::status_update_errors(new, old, self.behaviour.validation.status_update)
    }

    /// Validates a write to the `status` subresource.
    pub fn validate_status_update(&self, new: &Value, old: &Value) -> Result<(), Status> {
        let errs = self.status_update_errors(new, old)?;
        validation::into_result(self.group, self.kind, new, errs)
    }
}

/// Strict decoding (`fieldValidation`).
impl ResourceInfo {
    /// The paths of fields in `v` that an object of this kind does not have, in
    /// Kubernetes' notation (`spec.foo`, `spec.containers[0].bar`). Null values are never
    /// unknown. A body that does not decode is a 400.
    pub fn unknown_fields(&self, v: &Value) -> Result<Vec<String>, Status> {
        self.behaviour.object.unknown_fields(v)
    }

    /// Everything strict decoding objects to in a raw body of this kind: `duplicate field
    /// "x"` first, then `unknown field "spec.foo"`. A body that is not JSON, or does not
    /// decode as the kind, is a 400.
    pub fn strict_errors(&self, raw: &[u8]) -> Result<Vec<String>, Status> {
        strict::strict_errors(raw, |v| self.unknown_fields(v))
    }
}

/// Field selectors.
impl ResourceInfo {
    /// The field labels the resource can be selected by, in the names its clients use.
    pub fn supported_fields(&self) -> Vec<&'static str> {
        let fields = &self.behaviour.fields;
        let mut out: Vec<&'static str> = if fields.own_conversion && !self.namespaced {
            vec!["metadata.name"]
        } else {
            vec!["metadata.name", "metadata.namespace"]
        };
        out.extend_from_slice(fields.labels);
        out
    }

    /// The stored field a client's field label selects, or `None` when unsupported.
    fn stored_field(&self, label: &str) -> Option<String> {
        let renamed = self
            .behaviour
            .fields
            .renames
            .iter()
            .find(|(l, _)| *l == label);
        if let Some((_, stored)) = renamed {
            return Some(stored.to_string());
        }
        self.supported_fields()
            .contains(&label)
            .then(|| label.to_string())
    }

    /// The selectable field values of an object in its stored form, as Kubernetes' per-kind
    /// `ToSelectableFields` computes them.
    pub fn field_set(&self, obj: &Value) -> BTreeMap<String, String> {
        let str_at = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let mut f = BTreeMap::new();
        f.insert(
            "metadata.name".to_string(),
            str_at("/metadata/name").to_string(),
        );
        if self.namespaced {
            f.insert(
                "metadata.namespace".to_string(),
                str_at("/metadata/namespace").to_string(),
            );
        }
        (self.behaviour.fields.values)(obj, &mut f);
        f
    }
}

// Defined beside the table rather than with the selectors, which know no kinds and are
// part of the client side of the crate.
impl FieldSelector {
    /// This selector checked against the fields `info` supports and renamed onto the
    /// stored object's fields (events.k8s.io's `regarding.name` is core's
    /// `involvedObject.name`; pods' `spec.host` is `spec.nodeName`). An unsupported field
    /// gives Kubernetes' `field label not supported: <field>`.
    pub fn for_resource(&self, info: &ResourceInfo) -> Result<Self, SelectorError> {
        self.rename_fields(|label| info.stored_field(label))
    }
}

/// Tables (`kubectl get`).
impl ResourceInfo {
    /// The columns of the kind, built once per kind.
    pub fn column_definitions(&self) -> &'static [Column] {
        static CACHE: OnceLock<HashMap<(&'static str, &'static str), Vec<Column>>> =
            OnceLock::new();
        let cache = CACHE.get_or_init(|| {
            RESOURCES
                .iter()
                .map(|r| ((r.group, r.kind), (r.behaviour.printer.columns)()))
                .collect()
        });
        cache
            .get(&(self.group, self.kind))
            .map_or(&[], Vec::as_slice)
    }

    /// The cells of one object's row, in column order.
    pub fn row_cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        (self.behaviour.printer.cells)(obj, now)
    }

    /// The objects as a Table. `list_meta` becomes the table's metadata (a list's
    /// `resourceVersion`, `continue`, `remainingItemCount`; for a single object, its
    /// resourceVersion).
    pub fn to_table(
        &self,
        objects: &[Value],
        list_meta: Value,
        opts: TableOptions,
        now: Timestamp,
    ) -> Value {
        table::to_table(
            self.column_definitions(),
            &self.behaviour.printer,
            objects,
            list_meta,
            opts,
            now,
        )
    }
}

/// Storage.
impl ResourceInfo {
    /// An object as served by this resource converted to its stored form.
    pub fn to_storage(&self, obj: Value) -> Value {
        (self.behaviour.storage.to_storage)(obj)
    }

    /// A stored object converted to the form this resource serves.
    pub fn from_storage(&self, obj: Value) -> Value {
        (self.behaviour.storage.from_storage)(obj)
    }
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

#[cfg(test)]
mod tests;
