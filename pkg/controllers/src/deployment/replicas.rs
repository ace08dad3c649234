//! Replica arithmetic of a rollout, as Kubernetes' `deployment/util` does it: maxSurge and
//! maxUnavailable as numbers or percentages of `spec.replicas` (surge rounded up,
//! unavailability rounded down, never both zero), how far the new ReplicaSet may grow,
//! and the proportions a scaling event spreads over the ReplicaSets of a rollout.
//!
//! Pure: numbers in, numbers out.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `spec.replicas` of a Deployment (1 when unset, as defaulting leaves it).
pub fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (1 when unset, as defaulting leaves it).
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Σ `spec.replicas`.
pub fn sum_spec<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(spec_replicas).sum()
}

/// Σ `status.replicas`.
pub fn sum_status<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(status_replicas).sum()
}

/// Σ `status.availableReplicas`.
pub fn sum_available<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(available).sum()
}

/// Σ `status.readyReplicas`.
pub fn sum_ready<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(ready).sum()
}

/// A ReplicaSet that should have pods (Kubernetes' `FilterActiveReplicaSets`).
pub fn is_active(rs: &ReplicaSet) -> bool {
    spec_replicas(rs) > 0
}

/// An int-or-percent that is neither.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for IntOrString: {0:?} is not an integer or a percentage")]
pub struct BadValue(pub String);

/// A number, or a percentage of `total` rounded up or down (Kubernetes'
/// `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, BadValue> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| BadValue(s.clone()))?;
            let product = pct * i64::from(total);
            let scaled = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            Ok(scaled as i32)
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas: surge rounded up, unavailability
/// rounded down; when both come out 0, one pod may be unavailable (surging is then not
/// possible, and a rollout must be able to move).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), BadValue> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Whether the Deployment rolls (RollingUpdate, the default) rather than recreates.
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    // Validation admits only numbers and percentages; anything else counts as 0, as
    // Kubernetes ignores the error here.
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired(d),
    )
    .unwrap_or((0, 1))
}

/// How many pods above `spec.replicas` a rolling Deployment may have (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// How many of `spec.replicas` may be unavailable during a rollout (0 for Recreate or no
/// replicas; never more than `spec.replicas`).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired(d))
}

/// The size the new ReplicaSet may grow to now (Kubernetes' `NewRSNewReplicas`): for a
/// rolling update, as far as the surge allows without exceeding `spec.replicas`; for
/// Recreate, `spec.replicas` at once.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let replicas = desired(d);
    if !is_rolling(d) {
        return replicas;
    }
    let current = spec_replicas(new);
    let total: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let max_total = replicas + max_surge(d);
    if total >= max_total {
        return current;
    }
    current + (max_total - total).min(replicas - current)
}

/// What a scaling event adds to (or takes from) one ReplicaSet: its share of the
/// Deployment's new size, by the size it was given for the old one (its `max-replicas`
/// annotation; the Deployment's `status.replicas` when it has none), but never past
/// what is left to add. (Kubernetes' `GetReplicaSetProportion`.)
pub fn proportion(
    rs_replicas: i32,
    annotated_max: Option<i32>,
    d: &Deployment,
    to_add: i32,
    added: i32,
) -> i32 {
    if rs_replicas == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs_replicas, annotated_max, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn fraction(rs_replicas: i32, annotated_max: Option<i32>, d: &Deployment) -> i32 {
    if desired(d) == 0 {
        return -rs_replicas;
    }
    let deployment_replicas = desired(d) + max_surge(d);
    let annotated =
        annotated_max.unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        // Nothing to scale from: leave this one to the leftover of the largest.
        return 0;
    }
    let size = f64::from(rs_replicas) * f64::from(deployment_replicas) / f64::from(annotated);
    size.round() as i32 - rs_replicas
}

#[cfg(test)]
pub(crate) mod tests;
