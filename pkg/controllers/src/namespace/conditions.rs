//! The status conditions of a terminating namespace, as Kubernetes' namespace controller
//! sets them: five condition types, each `False` with its "all is well" reason, or `True`
//! with what went wrong or what remains. Pure: [`conditions`] computes them from one
//! content-deletion pass, [`merge`] folds them into the namespace's status (keeping the
//! transition time of a condition whose status did not change).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GROUP_VERSION_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The types, in the order Kubernetes maintains them, with their reason and message when
/// nothing is wrong.
const OK: &[(&str, &str, &str)] = &[
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GROUP_VERSION_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// What one pass over the namespace's content found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Discovery failed (the pass used no resource list).
    pub discovery_error: Option<String>,
    /// What failed while listing or deleting, one message per resource.
    pub delete_errors: Vec<String>,
    /// Objects left, by `<resource>.<group>` (`configmaps.`, `deployments.apps`).
    pub remaining: BTreeMap<String, usize>,
    /// Objects left, by finalizer they still carry.
    pub finalizers: BTreeMap<String, usize>,
}

/// The five conditions for `t`, each stamped `now`.
pub fn conditions(t: &Totals, now: &Time) -> Vec<NamespaceCondition> {
    let mut bad: BTreeMap<&str, (&str, String)> = BTreeMap::new();
    if let Some(e) = &t.discovery_error {
        bad.insert(DISCOVERY_FAILURE, ("DiscoveryFailed", e.clone()));
    }
    if !t.delete_errors.is_empty() {
        let mut msgs = t.delete_errors.clone();
        msgs.sort();
        bad.insert(
            CONTENT_FAILURE,
            (
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
            ),
        );
    }
    let listed = |m: &BTreeMap<String, usize>, what: &str| -> Vec<String> {
        m.iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {what} {n} resource instances"))
            .collect()
    };
    let remaining = listed(&t.remaining, "has");
    if !remaining.is_empty() {
        bad.insert(
            CONTENT_REMAINING,
            (
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            ),
        );
    }
    let finalizers = listed(&t.finalizers, "in");
    if !finalizers.is_empty() {
        bad.insert(
            FINALIZERS_REMAINING,
            (
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    finalizers.join(", ")
                ),
            ),
        );
    }
    OK.iter()
        .map(|(typ, ok_reason, ok_message)| {
            let (status, reason, message) = match bad.get(typ) {
                Some((reason, message)) => ("True", reason.to_string(), message.clone()),
                None => ("False", ok_reason.to_string(), ok_message.to_string()),
            };
            NamespaceCondition {
                type_: typ.to_string(),
                status: status.to_string(),
                reason: Some(reason),
                message: Some(message),
                last_transition_time: Some(now.clone()),
            }
        })
        .collect()
}

/// `existing` with `new` folded in: a condition missing is added, one whose status,
/// reason or message changed is updated (its transition time only when its status
/// changed), others are kept as they are. `None` when nothing changed.
pub fn merge(
    existing: &[NamespaceCondition],
    new: Vec<NamespaceCondition>,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = existing.to_vec();
    let mut changed = false;
    for c in new {
        match out.iter_mut().find(|o| o.type_ == c.type_) {
            None => {
                out.push(c);
                changed = true;
            }
            Some(o) if o.status != c.status || o.reason != c.reason || o.message != c.message => {
                if o.status != c.status {
                    o.last_transition_time = c.last_transition_time;
                }
                o.status = c.status;
                o.reason = c.reason;
                o.message = c.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests;
