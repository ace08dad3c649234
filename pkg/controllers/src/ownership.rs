//! Controller references: which objects a controller claims, as Kubernetes'
//! `ControllerRefManager` decides, and the writes that adopt orphans and release objects
//! that stopped matching.
//!
//! Expected flow: the controller hands [`claim`] the candidates from its cache (the
//! objects its owner UID controls plus the orphans of its namespace) and its selector;
//! [`decide`] sorts each into owned, to adopt, to release or none of its business; the
//! writes are merge patches of `metadata.ownerReferences` that carry the cached
//! `resourceVersion` as a precondition.
//!
//! Guarantees: a contested orphan is adopted by exactly one owner (the second patch is
//! made against a state that moved and gets 409); an owner that is being deleted, or was
//! replaced by another of the same name since the cache saw it, adopts nothing (a fresh
//! read checks it before the first adoption); an object being deleted is never adopted.
//! Never: change anything but owner references.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rkube_api::selectors::LabelSelector;
use rkube_client::{Api, Client, PatchType, WriteParams};
use rkube_runtime::object::{controller_of, controller_reference};
use rkube_runtime::Resource;
use serde_json::json;

/// What a controller does with one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Controlled by this owner and matching: it is the owner's.
    Owned,
    /// An orphan that matches: take it.
    Adopt,
    /// Controlled by this owner but no longer matching: let it go.
    Release,
    /// Someone else's, or not matching, or not to be touched now.
    Ignore,
}

/// Kubernetes' `ClaimObject` rules for one candidate. `owner_deleting`: the owner has a
/// deletionTimestamp (it keeps what it owns but adopts and releases nothing).
pub fn decide(
    candidate: &ObjectMeta,
    owner_uid: &str,
    owner_namespace: &str,
    owner_deleting: bool,
    matches: bool,
) -> Decision {
    match controller_of(candidate) {
        Some(r) if r.uid != owner_uid => Decision::Ignore,
        Some(_) if matches => Decision::Owned,
        Some(_) if owner_deleting => Decision::Ignore,
        Some(_) => Decision::Release,
        None if owner_deleting || !matches => Decision::Ignore,
        None if candidate.deletion_timestamp.is_some() => Decision::Ignore,
        None if candidate.namespace.as_deref().unwrap_or("") != owner_namespace => Decision::Ignore,
        None => Decision::Adopt,
    }
}

/// Why claiming failed; the controller retries with back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {namespace}/{name} cannot adopt: {why}")]
    CannotAdopt {
        kind: &'static str,
        namespace: String,
        name: String,
        why: String,
    },
    #[error("checking {kind} {namespace}/{name} before adopting failed")]
    Recheck {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("adopting {kind} {namespace}/{name} failed")]
    Adopt {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("releasing {kind} {namespace}/{name} failed")]
    Release {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: rkube_client::Error,
    },
}

/// Claims `candidates` for `owner`: returns what it owns afterwards (owned and adopted),
/// in the candidates' order. The first failed write ends the claim with its error.
pub async fn claim<O: Resource, K: Resource>(
    client: &Client,
    owner: &O,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>, Error> {
    let om = owner.metadata();
    let owner_uid = om.uid.as_deref().unwrap_or("");
    let owner_ns = om.namespace.as_deref().unwrap_or("");
    let deleting = om.deletion_timestamp.is_some();
    let mut claimed = Vec::with_capacity(candidates.len());
    let mut rechecked = false;
    for c in candidates {
        let meta = c.metadata();
        let labels = meta.labels.clone().unwrap_or_default();
        match decide(
            meta,
            owner_uid,
            owner_ns,
            deleting,
            selector.matches(&labels),
        ) {
            Decision::Owned => claimed.push(c),
            Decision::Ignore => {}
            Decision::Adopt => {
                if !rechecked {
                    recheck_owner(client, owner).await?;
                    rechecked = true;
                }
                match patch_owners(client, c.as_ref(), adopted_refs(meta, owner)).await {
                    Ok(()) => claimed.push(c),
                    Err(e) if e.is_not_found() => {}
                    Err(source) => {
                        return Err(Error::Adopt {
                            kind: K::KIND,
                            namespace: owner_ns.to_string(),
                            name: meta.name.clone().unwrap_or_default(),
                            source,
                        })
                    }
                }
            }
            Decision::Release => {
                match patch_owners(client, c.as_ref(), released_refs(meta, owner_uid)).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(source) => {
                        return Err(Error::Release {
                            kind: K::KIND,
                            namespace: owner_ns.to_string(),
                            name: meta.name.clone().unwrap_or_default(),
                            source,
                        })
                    }
                }
            }
        }
    }
    Ok(claimed)
}

/// The candidate's owner references with `owner` as its controller added.
pub fn adopted_refs<O: Resource>(meta: &ObjectMeta, owner: &O) -> Vec<OwnerReference> {
    let ours = controller_reference(owner);
    let mut refs: Vec<OwnerReference> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != ours.uid)
        .cloned()
        .collect();
    refs.push(ours);
    refs
}

/// The candidate's owner references without the one to `owner_uid`.
pub fn released_refs(meta: &ObjectMeta, owner_uid: &str) -> Vec<OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect()
}

/// Replaces the object's owner references, on the condition that it is still the
/// version the cache holds.
async fn patch_owners<K: Resource>(
    client: &Client,
    obj: &K,
    refs: Vec<OwnerReference>,
) -> Result<(), rkube_client::Error> {
    let meta = obj.metadata();
    let patch = json!({
        "metadata": {
            "resourceVersion": meta.resource_version.clone().unwrap_or_default(),
            "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
        }
    });
    Api::<K>::within(client, meta.namespace.as_deref().unwrap_or(""))
        .patch(
            meta.name.as_deref().unwrap_or(""),
            PatchType::Merge,
            &patch,
            &WriteParams::default(),
        )
        .await
        .map(|_| ())
}

/// A fresh read of the owner: it must still be the object the cache showed (same UID)
/// and not being deleted, or it must not adopt (Kubernetes' `RecheckDeletionTimestamp`).
async fn recheck_owner<O: Resource>(client: &Client, owner: &O) -> Result<(), Error> {
    let om = owner.metadata();
    let (namespace, name) = (
        om.namespace.clone().unwrap_or_default(),
        om.name.clone().unwrap_or_default(),
    );
    let fresh = Api::<O>::within(client, &namespace)
        .get(&name)
        .await
        .map_err(|source| Error::Recheck {
            kind: O::KIND,
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    let why = if fresh.metadata().uid != om.uid {
        Some(format!(
            "the original object was replaced (uid {} instead of {})",
            fresh.metadata().uid.as_deref().unwrap_or(""),
            om.uid.as_deref().unwrap_or("")
        ))
    } else if fresh.metadata().deletion_timestamp.is_some() {
        Some("it is being deleted".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::CannotAdopt {
            kind: O::KIND,
            namespace,
            name,
            why,
        }),
        None => Ok(()),
    }
}

/// An index of objects without a controller, by namespace: where a controller finds
/// the orphans it may adopt without scanning everything its namespace holds.
pub const INDEX_ORPHANS: &str = "rkube.io/orphans-by-namespace";

/// The [`INDEX_ORPHANS`] function.
pub fn index_orphans<K: Resource>() -> rkube_runtime::store::IndexFn<K> {
    Arc::new(|o: &K| {
        let m = o.metadata();
        if controller_of(m).is_some() {
            vec![]
        } else {
            vec![m.namespace.clone().unwrap_or_default()]
        }
    })
}

/// The candidates of `owner` in a cache: what its UID controls and the orphans of its
/// namespace, each once.
pub fn candidates<O: Resource, K: Resource>(
    owner: &O,
    cache: &rkube_runtime::store::Snapshot<K>,
) -> Vec<Arc<K>> {
    let om = owner.metadata();
    let uid = om.uid.as_deref().unwrap_or("");
    let mut out: Vec<Arc<K>> = cache
        .by_index(rkube_runtime::store::INDEX_OWNER, uid)
        .into_iter()
        .filter(|o| controller_of(o.metadata()).is_some_and(|r| r.uid == uid))
        .collect();
    out.extend(cache.by_index(INDEX_ORPHANS, om.namespace.as_deref().unwrap_or("")));
    out
}

#[cfg(test)]
mod tests;
