//! The pod template as a Deployment's ReplicaSets carry it: the `pod-template-hash`
//! label that keeps ReplicaSets of one Deployment from selecting each other's pods, the
//! hash itself, which ReplicaSet is the new one (the one whose template equals the
//! Deployment's, the hash label aside), and the new ReplicaSet a template makes.
//!
//! The hash: FNV-1a (32 bits) over the template's JSON (k8s-openapi's serialization:
//! fields in a fixed order, maps sorted), then the collision count, printed in decimal
//! and spelled in the alphabet Kubernetes uses for names (no vowels, no look-alikes).
//! Not byte-identical to Kubernetes' hash, which walks Go structs; it need only be
//! stable and, with the collision count, able to step around a taken name: the new
//! ReplicaSet is found by comparing templates, never by its name.
//!
//! Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use rkube_runtime::object::controller_reference;

use super::revision::by_creation;

/// Kubernetes' `DefaultDeploymentUniqueLabelKey`.
pub const HASH_LABEL: &str = "pod-template-hash";

/// Kubernetes' alphabet for generated names: no vowels, no 0/1/3 (look-alikes of o/l/e).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv1a(bytes: &[u8], mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The `pod-template-hash` of `template` after `collision_count` collisions.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).expect("a pod template serializes");
    let mut h = fnv1a(&json, 0x811c_9dc5);
    if let Some(c) = collision_count {
        h = fnv1a(&(c as u32).to_le_bytes(), h);
    }
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(l) = m.labels.as_mut() {
            l.remove(HASH_LABEL);
            if l.is_empty() {
                m.labels = None;
            }
        }
    }
    t
}

/// The two templates are the same, the `pod-template-hash` label aside.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

/// The Deployment's new ReplicaSet among `rss`: the oldest whose template is the
/// Deployment's (Kubernetes' `FindNewReplicaSet`). Its index.
pub fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> Option<usize> {
    let template = &d.spec.as_ref()?.template;
    let mut order: Vec<usize> = (0..rss.len()).collect();
    order.sort_by(|a, b| by_creation(&rss[*a], &rss[*b]));
    order.into_iter().find(|i| {
        rss[*i]
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, template))
    })
}

/// The ReplicaSet a Deployment makes for its current template: named
/// `<deployment>-<hash>`, the hash label on its template, labels and selector, the
/// Deployment as its controller, `replicas` pods and the Deployment's
/// `minReadySeconds`. Annotations are the caller's ([`super::revision`]).
pub fn new_replica_set(d: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = spec.template;
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.to_string());
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels = Some(labels.clone());
    let mut selector: LabelSelector = spec.selector;
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.to_string(), hash.to_string());
    let name = d.metadata.name.clone().unwrap_or_default();
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_reference(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
