//! The resource table: every resource rkube serves, with what Kubernetes' discovery says
//! about it (group, version, kind, plural, singular, scope, verbs, short names,
//! categories, subresources), where its objects live in the store (etcd's
//! `/registry/<resource>` prefixes, e.g. `/registry/minions` for nodes), and its kind's
//! entry in `crate::kinds`. Lookups resolve names the way kubectl does. Through a row,
//! `ResourceInfo`'s methods (`registry/behaviour.rs`) reach everything done with the
//! resource's objects: prepare a write, default, validate, check fields strictly, select,
//! print, convert for storage. The table is static data; this module never reads or
//! writes objects.

use std::collections::BTreeSet;

use crate::kinds::{self, Kind, ObjectType};
use crate::status::Status;

mod behaviour;

/// Kubernetes' full verb set for a resource with the generic store.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// What namespaces allow (no deletecollection).
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// What a status subresource allows.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource of a resource (`pods/status`, `deployments/scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The name after the slash: `status`, `scale`, `binding`, `log`.
    pub name: &'static str,
    /// The kind read and written there.
    pub kind: &'static str,
    /// The kind's group and version when they differ from the parent's
    /// (`deployments/scale` is `autoscaling/v1` `Scale`).
    pub group_version: Option<(&'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

/// One served resource at one group version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The API group, `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// The resource name in URLs: `pods`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub categories: &'static [&'static str],
    /// The store key prefix, Kubernetes' etcd layout: `/registry/pods`.
    pub etcd_prefix: &'static str,
    /// The kind's entry: everything done with its objects (see [`crate::kinds`]), reached
    /// through the methods in `registry/behaviour.rs`.
    pub(crate) behaviour: &'static Kind,
}

const fn status_of(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        kind,
        group_version: None,
        verbs: STATUS_VERBS,
    }
}

const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        kind: "Scale",
        group_version: Some(("autoscaling", "v1")),
        verbs: STATUS_VERBS,
    }
}

/// Every served resource, core first, in discovery order within each group version.
pub static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        list_kind: "ConfigMapList",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/configmaps",
        behaviour: &kinds::CONFIG_MAP,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Event",
        list_kind: "EventList",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/events",
        behaviour: &kinds::EVENT,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Namespace",
        list_kind: "NamespaceList",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        verbs: NAMESPACE_VERBS,
        subresources: &[
            Subresource {
                name: "finalize",
                kind: "Namespace",
                group_version: None,
                verbs: &["update"],
            },
            status_of("Namespace"),
        ],
        categories: &[],
        etcd_prefix: "/registry/namespaces",
        behaviour: &kinds::NAMESPACE,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Node",
        list_kind: "NodeList",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        verbs: ALL_VERBS,
        subresources: &[status_of("Node")],
        categories: &[],
        etcd_prefix: "/registry/minions",
        behaviour: &kinds::NODE,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Pod",
        list_kind: "PodList",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        verbs: ALL_VERBS,
        subresources: &[
            Subresource {
                name: "binding",
                kind: "Binding",
                group_version: None,
                verbs: &["create"],
            },
            Subresource {
                name: "log",
                kind: "Pod",
                group_version: None,
                verbs: &["get"],
            },
            status_of("Pod"),
        ],
        categories: &["all"],
        etcd_prefix: "/registry/pods",
        behaviour: &kinds::POD,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Secret",
        list_kind: "SecretList",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/secrets",
        behaviour: &kinds::SECRET,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        list_kind: "ServiceAccountList",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/serviceaccounts",
        behaviour: &kinds::SERVICE_ACCOUNT,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Service",
        list_kind: "ServiceList",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        verbs: ALL_VERBS,
        subresources: &[status_of("Service")],
        categories: &["all"],
        etcd_prefix: "/registry/services/specs",
        behaviour: &kinds::SERVICE,
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        list_kind: "DeploymentList",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        verbs: ALL_VERBS,
        subresources: &[scale(), status_of("Deployment")],
        categories: &["all"],
        etcd_prefix: "/registry/deployments",
        behaviour: &kinds::DEPLOYMENT,
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        list_kind: "ReplicaSetList",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        verbs: ALL_VERBS,
        subresources: &[scale(), status_of("ReplicaSet")],
        categories: &["all"],
        etcd_prefix: "/registry/replicasets",
        behaviour: &kinds::REPLICA_SET,
    },
    ResourceInfo {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        list_kind: "EventList",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/events",
        behaviour: &kinds::EVENTS_K8S_IO_EVENT,
    },
    ResourceInfo {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        list_kind: "ClusterRoleBindingList",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        namespaced: false,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/clusterrolebindings",
        behaviour: &kinds::CLUSTER_ROLE_BINDING,
    },
    ResourceInfo {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        list_kind: "ClusterRoleList",
        plural: "clusterroles",
        singular: "clusterrole",
        namespaced: false,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/clusterroles",
        behaviour: &kinds::CLUSTER_ROLE,
    },
    ResourceInfo {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        list_kind: "RoleBindingList",
        plural: "rolebindings",
        singular: "rolebinding",
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/rolebindings",
        behaviour: &kinds::ROLE_BINDING,
    },
    ResourceInfo {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        list_kind: "RoleList",
        plural: "roles",
        singular: "role",
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/roles",
        behaviour: &kinds::ROLE,
    },
    ResourceInfo {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        list_kind: "LeaseList",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        categories: &[],
        etcd_prefix: "/registry/leases",
        behaviour: &kinds::LEASE,
    },
];

/// The API groups in the order Kubernetes lists them in `/apis` (its group priorities),
/// restricted to the groups rkube serves.
const GROUP_ORDER: &[&str] = &[
    "apps",
    "events.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
];

impl ResourceInfo {
    /// `v1` for the core group, `<group>/<version>` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, or `deployments.apps`: how Kubernetes names the resource in messages.
    pub fn qualified_resource(&self) -> String {
        crate::status::qualified_resource(self.group, self.plural)
    }

    /// Whether the resource itself allows `verb`.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The subresource called `name`, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The store key of one object: `/registry/pods/<namespace>/<name>`, or
    /// `/registry/<resource>/<name>` when cluster-scoped (the namespace is then ignored).
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}/{namespace}/{name}", self.etcd_prefix)
        } else {
            format!("{}/{name}", self.etcd_prefix)
        }
    }

    /// The prefix under which a list reads: all objects (`/registry/pods/`) or one
    /// namespace's (`/registry/pods/<namespace>/`). Always ends in `/`, so that
    /// `/registry/services/specs/` never matches a sibling resource.
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced && !ns.is_empty() => format!("{}/{ns}/", self.etcd_prefix),
            _ => format!("{}/", self.etcd_prefix),
        }
    }

    /// The resource whose form is the one stored: core/v1 events for events.k8s.io/v1
    /// events (both versions share `/registry/events`); the resource itself otherwise.
    pub fn storage(&self) -> &'static ResourceInfo {
        RESOURCES
            .iter()
            .find(|r| r.etcd_prefix == self.etcd_prefix && r.group.is_empty())
            .or_else(|| lookup(self.group, self.version, self.plural))
            .expect("every served resource is in the table")
    }
}

/// The resource served at `(group, version, plural)`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `kind` in `group` (at its preferred version).
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The resource of an object's `apiVersion` and `kind` (`apps/v1`, `Deployment`).
pub fn by_api_version_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The resources a kubectl-style name means, best first: a plural, singular, short name
/// or kind (case-insensitive), optionally qualified by a group (`deploy.apps`) or by a
/// version and group (`deployments.v1.apps`). Core resources come first, as kubectl
/// prefers them (`events` is core/v1 events unless qualified).
pub fn resolve(name: &str) -> Vec<&'static ResourceInfo> {
    let lower = name.to_ascii_lowercase();
    let mut out: Vec<&'static ResourceInfo> = Vec::new();
    let mut push = |r: &'static ResourceInfo| {
        if !out.contains(&r) {
            out.push(r);
        }
    };
    let matches_name = |r: &ResourceInfo, n: &str| {
        r.plural == n
            || r.singular == n
            || r.short_names.contains(&n)
            || r.kind.eq_ignore_ascii_case(n)
    };
    for r in RESOURCES {
        if matches_name(r, &lower) {
            push(r);
        }
    }
    // `name.group` or `name.version.group`; groups contain dots, so try each split.
    for (i, _) in lower.match_indices('.') {
        let (n, rest) = (&lower[..i], &lower[i + 1..]);
        for r in RESOURCES {
            if !matches_name(r, n) {
                continue;
            }
            if r.group == rest {
                push(r);
            } else if let Some((v, g)) = rest.split_once('.') {
                if r.version == v && r.group == g {
                    push(r);
                }
            }
        }
    }
    out
}

/// The resources of a category (`all`), as `kubectl get all` expands it.
pub fn in_category(category: &str) -> Vec<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .filter(|r| r.categories.contains(&category))
        .collect()
}

/// A served API group with its versions, the preferred one first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVersions {
    pub group: &'static str,
    pub versions: Vec<&'static str>,
    pub preferred: &'static str,
}

/// The named API groups (not the core group) in `/apis` order.
pub fn groups() -> Vec<GroupVersions> {
    let mut names: Vec<&'static str> = GROUP_ORDER.to_vec();
    let served: BTreeSet<&'static str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    for g in served {
        if !names.contains(&g) {
            names.push(g);
        }
    }
    names
        .into_iter()
        .filter_map(|g| {
            let mut versions: Vec<&'static str> = Vec::new();
            for r in RESOURCES.iter().filter(|r| r.group == g) {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            let preferred = *versions.first()?;
            Some(GroupVersions {
                group: g,
                versions,
                preferred,
            })
        })
        .collect()
}

/// The resources of one group version, in table order.
pub fn resources_in(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

/// Whether `(group, version)` is served.
pub fn serves_group_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// The type of a kind the table names, a resource's or a subresource body's
/// (`("", "Binding")`, `("autoscaling", "Scale")`).
pub(crate) fn object_type(group: &str, kind: &str) -> Option<&'static ObjectType> {
    RESOURCES
        .iter()
        .map(|r| &r.behaviour.object)
        .chain(kinds::BODIES)
        .find(|t| t.group == group && t.kind == kind)
}

/// The unknown fields of a body of a kind named directly (subresource bodies such as
/// `("", "Binding")` and `("autoscaling", "Scale")`; see
/// [`ResourceInfo::unknown_fields`]); `version` is the one messages name. Kinds without a
/// type here report nothing.
pub fn unknown_fields_of_kind(
    group: &str,
    version: &str,
    kind: &str,
    v: &serde_json::Value,
) -> Result<Vec<String>, Status> {
    match object_type(group, kind) {
        Some(t) => t.unknown_fields_at(version, v),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests;
