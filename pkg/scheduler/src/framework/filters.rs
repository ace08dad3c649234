//! The filters: whether one pod may run on one node, each a pure function of the pod,
//! the node and (for the two that look across nodes) the state worked out once per
//! scheduling attempt ([`super::state`]). A failure carries Kubernetes' reason strings,
//! which the FailedScheduling message counts per node.

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};
use rkube_api::taints;

use super::state::{AffinityState, SpreadState};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const ERR_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const ERR_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const ERR_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Why a node does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub reasons: Vec<String>,
    /// Whether evicting pods could not help (Kubernetes' UnschedulableAndUnresolvable).
    pub unresolvable: bool,
}

impl Unfit {
    fn new(reason: impl Into<String>) -> Unfit {
        Unfit {
            reasons: vec![reason.into()],
            unresolvable: false,
        }
    }

    fn unresolvable(reason: impl Into<String>) -> Unfit {
        Unfit {
            reasons: vec![reason.into()],
            unresolvable: true,
        }
    }
}

pub type FilterResult = Result<(), Unfit>;

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

fn node_taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// NodeUnschedulable: a cordoned node takes only pods that tolerate its
/// `node.kubernetes.io/unschedulable:NoSchedule` taint.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let cordoned = node
        .node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let taint = Taint {
        key: taints::UNSCHEDULABLE.into(),
        effect: taints::NO_SCHEDULE.into(),
        ..Default::default()
    };
    if cordoned
        && !tolerations(pod)
            .iter()
            .any(|t| taints::tolerates(t, &taint))
    {
        return Err(Unfit::unresolvable(ERR_UNSCHEDULABLE));
    }
    Ok(())
}

/// NodeName: a pod that names its node fits only there.
pub fn node_name(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(n) if !n.is_empty() && n != node.name => Err(Unfit::unresolvable(ERR_NODE_NAME)),
        _ => Ok(()),
    }
}

/// TaintToleration: every NoSchedule and NoExecute taint must be tolerated; the first
/// that is not is named in the reason.
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let tols = tolerations(pod);
    for taint in node_taints(node) {
        if taint.effect != taints::NO_SCHEDULE && taint.effect != taints::NO_EXECUTE {
            continue;
        }
        if !tols.iter().any(|t| taints::tolerates(t, taint)) {
            return Err(Unfit::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// Whether one node selector requirement holds for the node's labels (or, for
/// `matchFields`, its name).
fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or(&[]);
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether a node selector term holds: every expression and field requirement (a term
/// with neither matches nothing).
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.label(&r.key)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name.as_str())))
}

/// Whether the node satisfies the pod's `nodeSelector` and required node affinity.
pub fn matches_node_selector_and_affinity(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = spec.node_selector.as_ref() {
        if !sel.iter().all(|(k, v)| node.label(k) == Some(v.as_str())) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(r) => r.node_selector_terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

/// NodeAffinity (which covers `nodeSelector` too).
pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    if matches_node_selector_and_affinity(pod, node) {
        Ok(())
    } else {
        Err(Unfit::unresolvable(ERR_NODE_AFFINITY))
    }
}

/// NodePorts: no hostPort of the pod may clash with one already taken on the node.
pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    if pod.host_ports.is_empty() {
        return Ok(());
    }
    let clash = node.pods.iter().any(|other| {
        other
            .host_ports
            .iter()
            .any(|used| pod.host_ports.iter().any(|want| want.conflicts(used)))
    });
    if clash {
        Err(Unfit::new(ERR_NODE_PORTS))
    } else {
        Ok(())
    }
}

/// NodeResourcesFit: the pod's requests fit in what the node's allocatable leaves after
/// the pods placed or assumed there; every resource short is a reason.
pub fn node_resources_fit(pod: &PodInfo, node: &NodeInfo) -> FilterResult {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        reasons.push(ERR_TOO_MANY_PODS.to_string());
    }
    let (want, have, used) = (&pod.requests, &node.allocatable, &node.requested);
    if !want.is_zero() {
        let short = |w: i64, h: i64, u: i64| w > 0 && w > h - u;
        if short(want.milli_cpu, have.milli_cpu, used.milli_cpu) {
            reasons.push("Insufficient cpu".into());
        }
        if short(want.memory, have.memory, used.memory) {
            reasons.push("Insufficient memory".into());
        }
        if short(
            want.ephemeral_storage,
            have.ephemeral_storage,
            used.ephemeral_storage,
        ) {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, w) in &want.scalar {
            let h = have.scalar.get(name).copied().unwrap_or(0);
            let u = used.scalar.get(name).copied().unwrap_or(0);
            if short(*w, h, u) {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Unfit {
            reasons,
            unresolvable: false,
        })
    }
}

/// PodTopologySpread with `whenUnsatisfiable: DoNotSchedule`: placing the pod here must
/// keep every hard constraint's skew within its `maxSkew`.
pub fn pod_topology_spread(pod: &PodInfo, node: &NodeInfo, state: &SpreadState) -> FilterResult {
    for c in state.hard() {
        let Some(value) = node.label(&c.topology_key) else {
            return Err(Unfit::unresolvable(ERR_SPREAD_LABEL));
        };
        let count = c.counts.get(value).copied().unwrap_or(0);
        let self_match = i64::from(c.matches(pod, &pod.key.namespace));
        let skew = count + self_match - c.min_count();
        if skew > i64::from(c.max_skew) {
            return Err(Unfit::new(ERR_SPREAD));
        }
    }
    Ok(())
}

/// InterPodAffinity: required anti-affinity of pods already placed, the pod's own
/// required anti-affinity, then its required affinity.
pub fn inter_pod_affinity(pod: &PodInfo, node: &NodeInfo, state: &AffinityState) -> FilterResult {
    if state
        .existing_anti
        .iter()
        .any(|(k, v)| node.label(k) == Some(v.as_str()))
    {
        return Err(Unfit::new(ERR_EXISTING_ANTI_AFFINITY));
    }
    for term in &pod.required_anti_affinity {
        if let Some(v) = node.label(&term.topology_key) {
            if state
                .anti_counts
                .get(&(term.topology_key.clone(), v.to_string()))
                .is_some_and(|c| *c > 0)
            {
                return Err(Unfit::new(ERR_ANTI_AFFINITY));
            }
        }
    }
    if pod.required_affinity.is_empty() {
        return Ok(());
    }
    let mut pods_exist = true;
    for term in &pod.required_affinity {
        let Some(v) = node.label(&term.topology_key) else {
            return Err(Unfit::unresolvable(ERR_AFFINITY));
        };
        if state
            .affinity_counts
            .get(&(term.topology_key.clone(), v.to_string()))
            .is_none_or(|c| *c <= 0)
        {
            pods_exist = false;
        }
    }
    // The first pod of a group with affinity to itself may go anywhere its terms'
    // topology keys exist.
    let first_of_group =
        state.affinity_counts.is_empty() && pod.required_affinity.iter().all(|t| t.matches(pod));
    if pods_exist || first_of_group {
        Ok(())
    } else {
        Err(Unfit::unresolvable(ERR_AFFINITY))
    }
}

#[cfg(test)]
#[path = "filters_tests.rs"]
mod tests;
