//! Taints and tolerations: whether a pod's toleration tolerates a node's taint, as
//! Kubernetes' `Toleration.ToleratesTaint` decides it, and the well-known taint keys.
//! Pure functions; the node lifecycle controller (NoExecute evictions), the scheduler
//! (TaintToleration filter and score) and admission (default tolerations) share them.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// The node's Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The node's Ready condition is Unknown (its kubelet stopped reporting).
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The node is cordoned (`spec.unschedulable`).
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// Whether `toleration` tolerates `taint`: the effects match (an empty toleration effect
/// matches every effect), the keys match (an empty key with `Exists` matches every key),
/// and with `Equal` (the default operator) the values are equal.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match operator {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The tolerations among `tolerations` that tolerate `taint`.
pub fn tolerating<'a>(tolerations: &'a [Toleration], taint: &Taint) -> Vec<&'a Toleration> {
    tolerations.iter().filter(|t| tolerates(t, taint)).collect()
}

/// Whether every taint with one of `effects` is tolerated by some toleration.
pub fn tolerates_all(tolerations: &[Toleration], taints: &[Taint], effects: &[&str]) -> bool {
    taints
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration {
            key: Some(key.into()).filter(|v: &String| !v.is_empty()),
            operator: Some(op.into()).filter(|v: &String| !v.is_empty()),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect: Some(effect.into()).filter(|v: &String| !v.is_empty()),
            toleration_seconds: None,
        }
    }

    #[test]
    fn tolerations_match_taints_as_kubernetes_matches_them() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        let cases = [
            (
                tol("dedicated", "Equal", "gpu", "NoSchedule"),
                true,
                "exact",
            ),
            (
                tol("dedicated", "", "gpu", "NoSchedule"),
                true,
                "Equal is the default operator",
            ),
            (
                tol("dedicated", "Equal", "cpu", "NoSchedule"),
                false,
                "another value",
            ),
            (
                tol("dedicated", "Exists", "", "NoSchedule"),
                true,
                "Exists ignores the value",
            ),
            (
                tol("dedicated", "Exists", "", ""),
                true,
                "an empty effect matches every effect",
            ),
            (
                tol("dedicated", "Exists", "", "NoExecute"),
                false,
                "another effect",
            ),
            (
                tol("", "Exists", "", ""),
                true,
                "empty key with Exists tolerates everything",
            ),
            (
                tol("", "Exists", "", "NoExecute"),
                false,
                "...of its effect only",
            ),
            (
                tol("", "Equal", "", "NoSchedule"),
                false,
                "an empty key needs Exists",
            ),
            (tol("other", "Exists", "", ""), false, "another key"),
            (
                tol("dedicated", "Lt", "gpu", ""),
                false,
                "an unknown operator tolerates nothing",
            ),
        ];
        for (toleration, want, why) in cases {
            assert_eq!(tolerates(&toleration, &t), want, "{why}");
        }
    }

    #[test]
    fn all_taints_of_the_given_effects_must_be_tolerated() {
        let taints = [
            taint(UNREACHABLE, "", NO_EXECUTE),
            taint("x", "", PREFER_NO_SCHEDULE),
        ];
        let tols = [tol(UNREACHABLE, "Exists", "", NO_EXECUTE)];
        assert!(tolerates_all(&tols, &taints, &[NO_EXECUTE]));
        assert!(!tolerates_all(
            &tols,
            &taints,
            &[NO_EXECUTE, PREFER_NO_SCHEDULE]
        ));
        assert!(
            tolerates_all(&[], &taints, &[NO_SCHEDULE]),
            "no such taints"
        );
        assert_eq!(tolerating(&tols, &taints[0]).len(), 1);
    }
}
