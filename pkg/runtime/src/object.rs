//! The typed objects the runtime handles and the key it files them under.
//!
//! [`Resource`] is the one bound every typed piece of this crate uses: a k8s-openapi type
//! with standard object metadata that serializes as Kubernetes JSON. [`ObjectKey`] is
//! `namespace/name` (just `name` for cluster-scoped objects), the key of stores and work
//! queues, as client-go's `MetaNamespaceKeyFunc` makes it.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A Kubernetes object type the runtime can list, watch, cache and write.
pub trait Resource:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Clone
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> Resource for T where
    T: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Clone
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Where an object lives: its namespace ("" when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A cluster-scoped object's key.
    pub fn cluster(name: impl Into<String>) -> Self {
        Self::new("", name)
    }

    /// The key of `obj` from its metadata.
    pub fn of<K: Resource>(obj: &K) -> Self {
        Self::from_meta(obj.metadata())
    }

    pub fn from_meta(meta: &ObjectMeta) -> Self {
        ObjectKey {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// Parses `namespace/name` or `name`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('/') {
            Some((ns, name)) => Self::new(ns, name),
            None => Self::cluster(s),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// The object's resourceVersion ("" when it has none).
pub fn resource_version<K: Resource>(obj: &K) -> &str {
    obj.metadata().resource_version.as_deref().unwrap_or("")
}

/// The owner reference with `controller: true`, if any (at most one is allowed).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An owner reference to `owner` marking it as the controller, as controllers set it on
/// what they create (`blockOwnerDeletion` so foreground deletion waits for it).
pub fn controller_reference<K: Resource>(owner: &K) -> OwnerReference {
    let meta = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.to_string(),
        kind: K::KIND.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Now, to the microsecond (MicroTime's precision; `Time` fields are rendered to the
/// second by the apiserver's serializer).
pub fn now() -> k8s_openapi::jiff::Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    k8s_openapi::jiff::Timestamp::from_microsecond(micros)
        .expect("the clock is within jiff's range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    #[test]
    fn keys_print_and_parse_as_client_go_makes_them() {
        let k = ObjectKey::new("default", "web");
        assert_eq!(k.to_string(), "default/web");
        assert_eq!(ObjectKey::parse("default/web"), k);
        assert_eq!(ObjectKey::cluster("kube-system").to_string(), "kube-system");
        assert_eq!(ObjectKey::parse("n1"), ObjectKey::cluster("n1"));
    }

    #[test]
    fn a_key_comes_from_the_objects_metadata() {
        let mut cm = ConfigMap::default();
        cm.metadata.namespace = Some("ns".into());
        cm.metadata.name = Some("a".into());
        assert_eq!(ObjectKey::of(&cm), ObjectKey::new("ns", "a"));
        let mut ns = Namespace::default();
        ns.metadata.name = Some("ns".into());
        assert_eq!(ObjectKey::of(&ns), ObjectKey::cluster("ns"));
    }

    #[test]
    fn the_controller_reference_names_the_owner_and_blocks_its_deletion() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("owner".into());
        cm.metadata.uid = Some("u-1".into());
        let r = controller_reference(&cm);
        assert_eq!(
            (r.kind.as_str(), r.api_version.as_str()),
            ("ConfigMap", "v1")
        );
        assert_eq!((r.name.as_str(), r.uid.as_str()), ("owner", "u-1"));
        let mut child = ObjectMeta {
            owner_references: Some(vec![
                OwnerReference {
                    name: "other".into(),
                    ..Default::default()
                },
                r.clone(),
            ]),
            ..Default::default()
        };
        assert_eq!(controller_of(&child), Some(&r));
        child.owner_references = None;
        assert_eq!(controller_of(&child), None);
    }
}
