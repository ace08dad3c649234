//! One entry per served kind: everything the resource layer does with a kind's objects,
//! reached from one place. Each file below fills in one [`Kind`] (its k8s-openapi type,
//! defaulting, what writes keep, validation, field labels, table printer, storage form)
//! from the machinery of the other modules, and the resource table
//! ([`crate::registry`]) points each row at its kind's entry. Adding a kind is one file
//! here and one row there; a piece left out of the struct does not compile, and the
//! tests in `kinds/tests.rs` check that every entry agrees with its row (the same group,
//! version and kind, a status subresource exactly when writes need one, a patch schema,
//! as many cells as columns).
//!
//! Entries are data: this module holds no logic of its own beyond the glue between a
//! typed decode and a check, and never dispatches on a kind's name (the registry reaches
//! an entry through its row).

use std::collections::BTreeMap;

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use k8s_openapi::{ListableResource, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::field::ErrorList;
use crate::status::Status;
use crate::strict;
use crate::table::Printer;

mod bodies;
mod cluster_role;
mod cluster_role_binding;
mod config_map;
mod deployment;
mod event;
mod events_k8s_io_event;
mod lease;
mod namespace;
mod node;
mod pod;
mod replica_set;
mod role;
mod role_binding;
mod secret;
mod service;
mod service_account;

pub(crate) use bodies::BODIES;
pub(crate) use cluster_role::CLUSTER_ROLE;
pub(crate) use cluster_role_binding::CLUSTER_ROLE_BINDING;
pub(crate) use config_map::CONFIG_MAP;
pub(crate) use deployment::DEPLOYMENT;
pub(crate) use event::EVENT;
pub(crate) use events_k8s_io_event::EVENTS_K8S_IO_EVENT;
pub(crate) use lease::LEASE;
pub(crate) use namespace::NAMESPACE;
pub(crate) use node::NODE;
pub(crate) use pod::POD;
pub(crate) use replica_set::REPLICA_SET;
pub(crate) use role::ROLE;
pub(crate) use role_binding::ROLE_BINDING;
pub(crate) use secret::SECRET;
pub(crate) use service::SERVICE;
pub(crate) use service_account::SERVICE_ACCOUNT;

/// Everything the resource layer does with one kind's objects (Kubernetes spreads the
/// same over a type's defaulters, its validation, its registry strategy, its field-label
/// conversion and its printer).
pub(crate) struct Kind {
    /// The k8s-openapi type: strict decoding's round trip and the OpenAPI schema.
    pub object: ObjectType,
    /// Fills in what a client left out, as Kubernetes' defaulters do.
    pub defaults: fn(&mut Value),
    /// What creates and updates keep from the client and from the stored object.
    pub writes: Writes,
    /// The kind's own checks (the `ObjectMeta` checks every kind shares come on top).
    pub validation: Validation,
    /// The fields a field selector may name, and an object's values for them.
    pub fields: FieldLabels,
    /// Columns and rows of `kubectl get`.
    pub printer: Printer,
    /// Between the served form and the stored one.
    pub storage: Storage,
}

// A kind's entry is one static; two rows are the same kind only if they point at it.
impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Kind {}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind")
            .field("object", &self.object)
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

/// A k8s-openapi type as the resource layer uses it: its group, version and kind, its
/// list kind, how a body round-trips through it (what strict decoding compares) and how
/// its schema joins the OpenAPI documents.
pub(crate) struct ObjectType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// `PodList`, for types that are listed.
    pub list_kind: Option<&'static str>,
    round_trip: fn(&str, &str, &Value) -> Result<Value, Status>,
    schema: fn(&mut SchemaGenerator) -> String,
}

impl ObjectType {
    /// A listed resource's type (every served kind).
    pub const fn listable<T>() -> Self
    where
        T: ListableResource + JsonSchema + Serialize + DeserializeOwned,
    {
        Self::named::<T>(T::GROUP, T::VERSION, T::KIND, Some(T::LIST_KIND))
    }

    /// A type that is only ever a request body (`Binding`, `Scale`).
    pub const fn body<T>() -> Self
    where
        T: Resource + JsonSchema + Serialize + DeserializeOwned,
    {
        Self::named::<T>(T::GROUP, T::VERSION, T::KIND, None)
    }

    /// A type named explicitly (`DeleteOptions` has no `Resource` impl).
    pub const fn named<T>(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        list_kind: Option<&'static str>,
    ) -> Self
    where
        T: JsonSchema + Serialize + DeserializeOwned,
    {
        ObjectType {
            group,
            version,
            kind,
            list_kind,
            round_trip: strict::round_trip_as::<T>,
            schema: schema_of::<T>,
        }
    }

    /// The paths of fields in `v` that this type does not have (see
    /// [`strict::lost_fields`]); a body that does not decode is a 400 naming `version`.
    pub fn unknown_fields_at(&self, version: &str, v: &Value) -> Result<Vec<String>, Status> {
        let out = (self.round_trip)(self.kind, version, v)?;
        Ok(strict::lost_fields(v, &out))
    }

    /// [`ObjectType::unknown_fields_at`] the type's own version.
    pub fn unknown_fields(&self, v: &Value) -> Result<Vec<String>, Status> {
        self.unknown_fields_at(self.version, v)
    }

    /// Adds the type's schema (and every schema it references) to `gen`; returns its
    /// definition name (`io.k8s.api.core.v1.Pod`).
    pub fn add_schema(&self, gen: &mut SchemaGenerator) -> String {
        (self.schema)(gen)
    }
}

impl std::fmt::Debug for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} {}", self.group, self.version, self.kind)
    }
}

fn schema_of<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// What writes keep beyond what every kind shares (Kubernetes' `PrepareForCreate` and
/// `PrepareForUpdate`): the identity fields a client never owns are the registry's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Writes {
    /// How the status is written.
    pub status: StatusWrites,
    /// `metadata.generation` starts at 1 on every create; without this, only objects
    /// that have a `spec` get one.
    pub generation_always: bool,
}

/// How a kind's status is written, which follows from whether it has a `status`
/// subresource (a test keeps the two in step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusWrites {
    /// No status subresource: the status is written with the rest of the object.
    WithObject,
    /// Only through the status subresource: a create starts without status, an update
    /// keeps the stored one, and a status update keeps everything else.
    Subresource,
    /// As [`StatusWrites::Subresource`], except that a create keeps the status it was
    /// sent (pods start Pending, namespaces Active; a kubelet registers its node with
    /// its status).
    SubresourceSetOnCreate,
}

impl StatusWrites {
    /// Whether the status is written through its own subresource.
    pub fn is_subresource(self) -> bool {
        self != StatusWrites::WithObject
    }
}

/// A kind's own checks, each decoding the object as its type first (an undecodable body
/// is a 400). They answer field errors; the registry adds the shared `ObjectMeta` checks
/// and makes the 422.
#[derive(Clone, Copy)]
pub(crate) struct Validation {
    pub create: fn(&Value) -> Result<ErrorList, Status>,
    /// `(new, old)`.
    pub update: fn(&Value, &Value) -> Result<ErrorList, Status>,
    /// `(new, old)`, for writes to the status subresource.
    pub status_update: fn(&Value, &Value) -> Result<ErrorList, Status>,
}

/// [`Validation::status_update`] of kinds whose status Kubernetes does not check (or that
/// have no status subresource).
pub(crate) fn no_status_checks(_: &Value, _: &Value) -> Result<ErrorList, Status> {
    Ok(ErrorList::new())
}

/// The fields a kind can be selected by beyond `metadata.name` (and `metadata.namespace`),
/// as Kubernetes' field-label conversion and `ToSelectableFields` have them.
#[derive(Clone, Copy)]
pub(crate) struct FieldLabels {
    /// Kubernetes converts this kind's labels with a function of its own. The generic
    /// conversion accepts `metadata.namespace` for every resource, cluster-scoped ones
    /// included; a cluster-scoped kind with its own accepts only `metadata.name`.
    pub own_conversion: bool,
    /// The kind's own labels, as clients name them.
    pub labels: &'static [&'static str],
    /// Labels that select another field of the stored object: `(label, stored field)`.
    pub renames: &'static [(&'static str, &'static str)],
    /// Adds the kind's own field values of a stored object to the set.
    pub values: fn(&Value, &mut BTreeMap<String, String>),
}

impl FieldLabels {
    /// Kinds selectable by their metadata only.
    pub const METADATA_ONLY: FieldLabels = FieldLabels {
        own_conversion: false,
        labels: &[],
        renames: &[],
        values: no_values,
    };
}

fn no_values(_: &Value, _: &mut BTreeMap<String, String>) {}

/// The string at a JSON pointer of `obj`, `""` when absent: what Kubernetes' selectable
/// fields hold for unset fields.
pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A kind's conversion between the form it is served in and the form it is stored in.
#[derive(Clone, Copy)]
pub(crate) struct Storage {
    pub to_storage: fn(Value) -> Value,
    pub from_storage: fn(Value) -> Value,
}

impl Storage {
    /// Stored as served.
    pub const AS_SERVED: Storage = Storage {
        to_storage: identity,
        from_storage: identity,
    };
}

fn identity(v: Value) -> Value {
    v
}

#[cfg(test)]
mod tests;
