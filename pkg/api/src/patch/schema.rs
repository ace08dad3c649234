//! The patch metadata of Kubernetes' built-in types: which lists a strategic
//! merge patch merges, and by which key. In Kubernetes this lives in the Go
//! struct tags `patchStrategy:"merge"` and `patchMergeKey:"..."`; here it is a
//! static tree of the few types that have such lists, so that a nested type
//! (ObjectMeta, PodSpec, Container) is described once and reused wherever it
//! appears (a pod's `spec`, a deployment's `spec.template.spec`, a cron job's
//! `spec.jobTemplate.spec.template.spec`).
//!
//! Only merge lists are listed. Every other list is atomic: the patch's list
//! replaces the live one, which is also what Kubernetes does for a list
//! without `patchStrategy` (tolerations, taints, args, envFrom, resizePolicy,
//! namespace finalizers, RBAC rules). A field missing from the tree is treated
//! the same way, so an incomplete table errs on the side of replacing.
//!
//! This module never decides anything about values; it only answers "how is
//! the field at this path patched". The OpenAPI documents publish the same
//! tree ([`Schema::fields`]), so kubectl computes its patches with the merge
//! keys this server applies them with.

/// How a strategic merge patch combines a live list with the patch's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// No `patchStrategy` tag: the patch's list replaces the live one.
    Replace,
    /// `patchStrategy:"merge"` on a list of scalars (`metadata.finalizers`,
    /// `spec.podCIDRs`): the union of both, as a set.
    MergeSet,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"` on a list of objects:
    /// elements with the same value at the key are merged, others added.
    MergeByKey(&'static str),
}

/// The patch metadata of one Kubernetes type: its fields that hold merge
/// lists, or objects that (further down) do.
#[derive(Debug)]
pub struct Schema {
    fields: &'static [Field],
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    strategy: ListStrategy,
    /// Kubernetes' `+listMapKey`s when they are more than the merge key
    /// (a container's ports are keyed by port and protocol); empty otherwise.
    map_keys: &'static [&'static str],
    /// The field's type, or for a list the type of its elements.
    schema: &'static Schema,
}

/// One field of a type's patch metadata, as [`Schema::fields`] lists it.
#[derive(Clone, Copy, Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    pub strategy: ListStrategy,
    /// The keys that identify an element of a [`ListStrategy::MergeByKey`]
    /// list (`x-kubernetes-list-map-keys`): the merge key first.
    pub map_keys: &'static [&'static str],
    /// The field's type, or for a list the type of its elements.
    pub schema: &'static Schema,
}

impl Schema {
    /// A type with no merge lists anywhere below it: every list is replaced.
    pub const ATOMIC: Schema = Schema { fields: &[] };

    /// The fields of this type that hold merge lists, or objects that lead
    /// to them.
    pub fn fields(&self) -> impl Iterator<Item = FieldInfo> {
        let fields: &'static [Field] = self.fields;
        fields.iter().map(|f| FieldInfo {
            name: f.name,
            strategy: f.strategy,
            map_keys: match &f.strategy {
                ListStrategy::MergeByKey(key) if f.map_keys.is_empty() => std::slice::from_ref(key),
                _ => f.map_keys,
            },
            schema: f.schema,
        })
    }

    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The schema of the field `name` (of its elements, for a list).
    pub fn child(&self, name: &str) -> &'static Schema {
        self.field(name).map_or(&LEAF, |f| f.schema)
    }

    /// How the list at field `name` is patched.
    pub fn list_strategy(&self, name: &str) -> ListStrategy {
        self.field(name)
            .map_or(ListStrategy::Replace, |f| f.strategy)
    }

    /// How the list at `path` below this type is patched; list elements are
    /// stepped through implicitly (`["spec", "containers", "env"]`).
    pub fn list_strategy_at(&self, path: &[&str]) -> ListStrategy {
        match path.split_last() {
            None => ListStrategy::Replace,
            Some((last, parents)) => parents
                .iter()
                .fold(self, |schema, name| schema.child(name))
                .list_strategy(last),
        }
    }
}

/// The patch metadata of a built-in kind (`"Pod"`, `"Deployment"`, ...), or
/// `None` for kinds rkube does not know, such as custom resources, for which
/// Kubernetes refuses strategic merge patches.
pub fn schema_for_kind(kind: &str) -> Option<&'static Schema> {
    Some(match kind {
        "Pod" => &POD,
        "PodTemplate" => &POD_TEMPLATE,
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &WORKLOAD,
        "CronJob" => &CRON_JOB,
        "Node" => &NODE,
        "Service" => &SERVICE,
        "Namespace" | "PersistentVolumeClaim" => &WITH_STATUS_CONDITIONS,
        "ServiceAccount" => &SERVICE_ACCOUNT,
        "ConfigMap" | "Secret" | "Event" | "Endpoints" | "EndpointSlice" | "Lease"
        | "LimitRange" | "ResourceQuota" | "PriorityClass" | "Role" | "ClusterRole"
        | "RoleBinding" | "ClusterRoleBinding" | "Scale" => &OBJECT,
        _ => return None,
    })
}

/// How the list at `path` of objects of `kind` is patched, or `None` when the
/// kind is unknown. Lists that are not merge lists answer
/// [`ListStrategy::Replace`].
pub fn merge_info(kind: &str, path: &[&str]) -> Option<ListStrategy> {
    schema_for_kind(kind).map(|schema| schema.list_strategy_at(path))
}

const fn object(name: &'static str, schema: &'static Schema) -> Field {
    Field {
        name,
        strategy: ListStrategy::Replace,
        map_keys: &[],
        schema,
    }
}

const fn keyed(name: &'static str, key: &'static str, element: &'static Schema) -> Field {
    keyed_by(name, key, &[], element)
}

/// A merge list whose elements Kubernetes identifies by more keys than the
/// merge key (`map_keys`, the merge key first).
const fn keyed_by(
    name: &'static str,
    key: &'static str,
    map_keys: &'static [&'static str],
    element: &'static Schema,
) -> Field {
    Field {
        name,
        strategy: ListStrategy::MergeByKey(key),
        map_keys,
        schema: element,
    }
}

const fn set(name: &'static str) -> Field {
    Field {
        name,
        strategy: ListStrategy::MergeSet,
        map_keys: &[],
        schema: &LEAF,
    }
}

static LEAF: Schema = Schema::ATOMIC;

static OBJECT_META: Schema = Schema {
    fields: &[set("finalizers"), keyed("ownerReferences", "uid", &LEAF)],
};

/// Also the shape of an ephemeral container: EphemeralContainerCommon carries
/// the same tags.
static CONTAINER: Schema = Schema {
    fields: &[
        keyed_by(
            "ports",
            "containerPort",
            &["containerPort", "protocol"],
            &LEAF,
        ),
        keyed("env", "name", &LEAF),
        keyed("volumeMounts", "mountPath", &LEAF),
        keyed("volumeDevices", "devicePath", &LEAF),
    ],
};

static POD_SPEC: Schema = Schema {
    fields: &[
        keyed("volumes", "name", &LEAF),
        keyed("initContainers", "name", &CONTAINER),
        keyed("containers", "name", &CONTAINER),
        keyed("ephemeralContainers", "name", &CONTAINER),
        keyed("imagePullSecrets", "name", &LEAF),
        keyed("hostAliases", "ip", &LEAF),
        // Kubernetes lists topologyKey and whenUnsatisfiable as the map keys,
        // but the strategic merge key is topologyKey alone.
        keyed_by(
            "topologySpreadConstraints",
            "topologyKey",
            &["topologyKey", "whenUnsatisfiable"],
            &LEAF,
        ),
        keyed("resourceClaims", "name", &LEAF),
        keyed("schedulingGates", "name", &LEAF),
    ],
};

static POD_STATUS: Schema = Schema {
    fields: &[
        keyed("conditions", "type", &LEAF),
        keyed("podIPs", "ip", &LEAF),
        keyed("hostIPs", "ip", &LEAF),
        keyed("resourceClaimStatuses", "name", &LEAF),
    ],
};

static POD: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &POD_SPEC),
        object("status", &POD_STATUS),
    ],
};

static POD_TEMPLATE_SPEC: Schema = Schema {
    fields: &[object("metadata", &OBJECT_META), object("spec", &POD_SPEC)],
};

static POD_TEMPLATE: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("template", &POD_TEMPLATE_SPEC),
    ],
};

/// The status of every kind whose only merge list there is `conditions`.
static CONDITIONS_STATUS: Schema = Schema {
    fields: &[keyed("conditions", "type", &LEAF)],
};

/// The spec of the kinds that stamp out pods from `spec.template`.
static WORKLOAD_SPEC: Schema = Schema {
    fields: &[object("template", &POD_TEMPLATE_SPEC)],
};

static WORKLOAD: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &WORKLOAD_SPEC),
        object("status", &CONDITIONS_STATUS),
    ],
};

static JOB_TEMPLATE_SPEC: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &WORKLOAD_SPEC),
    ],
};

static CRON_JOB_SPEC: Schema = Schema {
    fields: &[object("jobTemplate", &JOB_TEMPLATE_SPEC)],
};

static CRON_JOB: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &CRON_JOB_SPEC),
    ],
};

static NODE_SPEC: Schema = Schema {
    fields: &[set("podCIDRs")],
};

static NODE_STATUS: Schema = Schema {
    fields: &[
        keyed("conditions", "type", &LEAF),
        keyed("addresses", "type", &LEAF),
    ],
};

static NODE: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &NODE_SPEC),
        object("status", &NODE_STATUS),
    ],
};

static SERVICE_SPEC: Schema = Schema {
    fields: &[keyed_by("ports", "port", &["port", "protocol"], &LEAF)],
};

static SERVICE: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("spec", &SERVICE_SPEC),
        object("status", &CONDITIONS_STATUS),
    ],
};

static WITH_STATUS_CONDITIONS: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        object("status", &CONDITIONS_STATUS),
    ],
};

static SERVICE_ACCOUNT: Schema = Schema {
    fields: &[
        object("metadata", &OBJECT_META),
        keyed("secrets", "name", &LEAF),
    ],
};

/// Kinds whose only merge list is in their metadata.
static OBJECT: Schema = Schema {
    fields: &[object("metadata", &OBJECT_META)],
};

#[cfg(test)]
mod tests;
