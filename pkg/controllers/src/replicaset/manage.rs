//! Bringing a ReplicaSet's pod count to its spec: how many to create or delete this
//! round ([`plan`], at most `burst` either way, Kubernetes' `burstReplicas`), creating
//! in slow-start batches ([`slow_start`]: 1, 2, 4, … in parallel, stopping at the first
//! batch with a failure, so a create that cannot succeed costs one call, not hundreds),
//! and the pod a template makes ([`pod_from_template`]).
//!
//! The batch runner is generic over what it runs; the controller passes pod creates.
//! Nothing here reads caches or keeps expectations (the caller does).

use std::future::Future;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_runtime::object::controller_reference;

/// Kubernetes' `burstReplicas`: pods created or deleted per ReplicaSet per round.
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch.
pub const INITIAL_BATCH: usize = 1;

/// What a round does to reach the desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    Create(usize),
    Delete(usize),
}

/// `active` pods, `desired` replicas, at most `burst` changes.
pub fn plan(active: usize, desired: usize, burst: usize) -> Plan {
    match active.cmp(&desired) {
        std::cmp::Ordering::Less => Plan::Create((desired - active).min(burst)),
        std::cmp::Ordering::Greater => Plan::Delete((active - desired).min(burst)),
        std::cmp::Ordering::Equal => Plan::Nothing,
    }
}

/// The batch sizes a slow start of `count` goes through when every call succeeds.
pub fn batch_sizes(count: usize, initial: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut remaining = count;
    let mut size = remaining.min(initial);
    while size > 0 {
        sizes.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    sizes
}

/// Runs `call` `count` times in batches of [`batch_sizes`], each batch at once. After a
/// batch with failures, stops: returns the successes so far and the first error.
pub async fn slow_start<E, F, Fut>(count: usize, initial: usize, call: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut successes = 0;
    for size in batch_sizes(count, initial) {
        let results = futures::future::join_all((0..size).map(|_| call())).await;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
    }
    (successes, None)
}

/// A pod from `rs`'s template, as Kubernetes' `GetPodFromTemplate` makes it: the
/// template's labels, annotations and finalizers, `generateName` `<rs>-`, `rs` as its
/// controller, and `rs`'s trace annotation (the trace goes on from the ReplicaSet).
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let mut metadata = ObjectMeta {
        generate_name: Some(generate_name(&name)),
        namespace: rs.metadata.namespace.clone(),
        labels: tm.labels,
        annotations: tm.annotations,
        finalizers: tm.finalizers,
        owner_references: Some(vec![controller_reference(rs)]),
        ..Default::default()
    };
    rkube_runtime::trace::inherit(&rs.metadata, &mut metadata);
    Pod {
        metadata,
        spec: template.spec,
        status: None,
    }
}

/// `<name>-`, unless that is no valid name prefix (then the name itself).
fn generate_name(name: &str) -> String {
    let prefix = format!("{name}-");
    // generateName gets 5 random characters; the result must stay a valid name.
    if prefix.len() + 5 <= 253 {
        prefix
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests;
