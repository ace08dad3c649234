//! Deleting everything in a namespace (Kubernetes' namespaced resources deleter): for each
//! namespaced resource discovery names that can be listed and deleted, list the
//! namespace's objects, delete each (Background, so the garbage collector is not asked to
//! orphan anything), and list again to see what remains and which finalizers hold it.
//! The gRPC door has no deletecollection; one delete per object is what Kubernetes falls
//! back to as well.
//!
//! Never: delete outside the namespace, or leave a failure unreported — every failed list
//! or delete becomes a message of the pass's [`Totals`].

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use rkube_client::{Client, DeleteParams, ListParams};
use serde_json::Value;

use super::conditions::Totals;
use crate::discovery::ApiResource;

/// Kubernetes' default wait for finalizers found on remaining objects.
pub const FINALIZER_ESTIMATE_SECS: i64 = 15;

/// What one pass found, and how long to wait before the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub totals: Totals,
    /// Seconds the remaining content is expected to take (0: nothing to wait for).
    pub estimate: i64,
}

/// How many objects remain, and how many carry each finalizer. Pure.
pub fn tally(items: &[Value]) -> (usize, BTreeMap<String, usize>) {
    let mut finalizers = BTreeMap::new();
    for item in items {
        let list = item
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for f in list {
            *finalizers.entry(f.to_string()).or_insert(0) += 1;
        }
    }
    (items.len(), finalizers)
}

/// How long pods may still take to terminate (Kubernetes' estimate): the longest
/// `terminationGracePeriodSeconds` among pods not yet finished, or 0 once that long has
/// passed since the namespace's deletion began. Pure.
pub fn pod_estimate(pods: &[Value], deleted_at: Timestamp, now: Timestamp) -> i64 {
    let longest = pods
        .iter()
        .filter(|p| {
            !matches!(
                p.pointer("/status/phase").and_then(Value::as_str),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| {
            p.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .max()
        .unwrap_or(0);
    let elapsed = now.as_second() - deleted_at.as_second();
    if elapsed >= longest {
        0
    } else {
        longest
    }
}

/// Kubernetes' name of a resource in messages: `/v1, Resource=configmaps`.
fn gvr_string(r: &ApiResource) -> String {
    format!(
        "{}/{}, Resource={}",
        r.gvr.group, r.gvr.version, r.gvr.resource
    )
}

async fn list_all(
    client: &Client,
    r: &ApiResource,
    namespace: &str,
) -> Result<Vec<Value>, rkube_client::Error> {
    let mut items = Vec::new();
    let mut params = ListParams {
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = client.list(&r.gvr, namespace, &params).await?;
        items.extend(page.items);
        if page.continue_token.is_empty() {
            return Ok(items);
        }
        params.continue_token = page.continue_token;
    }
}

/// One pass over `resources` in `namespace`, whose deletion began at `deleted_at`.
pub async fn delete_all(
    client: &Client,
    resources: &[ApiResource],
    namespace: &str,
    deleted_at: Timestamp,
) -> Pass {
    let mut pass = Pass::default();
    for r in resources {
        let items = match list_all(client, r, namespace).await {
            Ok(items) => items,
            Err(e) => {
                pass.totals
                    .delete_errors
                    .push(format!("listing {}: {e}", gvr_string(r)));
                continue;
            }
        };
        let estimate = if r.gvr.group.is_empty() && r.gvr.resource == "pods" {
            pod_estimate(&items, deleted_at, rkube_runtime::object::now())
        } else {
            0
        };
        let params = DeleteParams {
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        let mut failed = None;
        for item in &items {
            if item
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                continue;
            }
            let name = item
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            match client.delete(&r.gvr, namespace, name, &params).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.code() == 405 => {}
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if let Some(e) = failed {
            pass.totals.delete_errors.push(e);
            pass.estimate = pass.estimate.max(estimate);
            continue;
        }
        let left = match list_all(client, r, namespace).await {
            Ok(items) => items,
            Err(e) => {
                pass.totals
                    .delete_errors
                    .push(format!("listing {}: {e}", gvr_string(r)));
                continue;
            }
        };
        if left.is_empty() {
            continue;
        }
        let (n, finalizers) = tally(&left);
        pass.totals.remaining.insert(condition_name(r), n);
        for (f, k) in &finalizers {
            *pass.totals.finalizers.entry(f.clone()).or_insert(0) += k;
        }
        if estimate > 0 {
            pass.estimate = pass.estimate.max(estimate);
        } else if !finalizers.is_empty() {
            pass.estimate = pass.estimate.max(FINALIZER_ESTIMATE_SECS);
        } else {
            pass.totals.delete_errors.push(format!(
                "unexpected items still remain in namespace: {namespace} for gvr: {}",
                gvr_string(r)
            ));
        }
    }
    pass
}

/// `configmaps.`, `deployments.apps`: how the namespace conditions name a resource.
fn condition_name(r: &ApiResource) -> String {
    format!("{}.{}", r.gvr.resource, r.gvr.group)
}

#[cfg(test)]
mod tests;
