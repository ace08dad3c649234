//! The scores: how much a node suits a pod, each a pure function giving a raw score per
//! node, then a normalisation over the nodes being scored to 0–100 as Kubernetes does
//! it. The framework multiplies each by its plugin's weight and adds them up.

use k8s_openapi::api::core::v1::Toleration;
use rkube_api::taints;

use super::filters::term_matches;
use super::state::{AffinityState, SpreadState};
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const MAX_NODE_SCORE: i64 = 100;

/// NodeResourcesFit's scoring strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Prefer the emptiest node (spreads).
    #[default]
    LeastAllocated,
    /// Prefer the fullest node that fits (packs).
    MostAllocated,
}

/// The (requested, allocatable) pairs of cpu and memory if the pod were placed.
fn usage(pod: &PodInfo, node: &NodeInfo) -> [(i64, i64); 2] {
    [
        (
            node.non_zero_requested.0 + pod.non_zero.0,
            node.allocatable.milli_cpu,
        ),
        (
            node.non_zero_requested.1 + pod.non_zero.1,
            node.allocatable.memory,
        ),
    ]
}

/// NodeResourcesFit: least- or most-allocated over cpu and memory with the given weights.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo, strategy: Strategy, weights: [i64; 2]) -> i64 {
    let (mut sum, mut total) = (0, 0);
    for ((req, cap), w) in usage(pod, node).into_iter().zip(weights) {
        let s = match strategy {
            Strategy::LeastAllocated => {
                if cap == 0 || req > cap {
                    0
                } else {
                    (cap - req) * MAX_NODE_SCORE / cap
                }
            }
            Strategy::MostAllocated => {
                if cap == 0 {
                    0
                } else {
                    req.min(cap) * MAX_NODE_SCORE / cap
                }
            }
        };
        sum += s * w;
        total += w;
    }
    if total == 0 {
        0
    } else {
        sum / total
    }
}

/// NodeResourcesBalancedAllocation: nodes whose cpu and memory fractions would be closer
/// together score higher (100 × (1 − standard deviation)).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fractions: Vec<f64> = usage(pod, node)
        .into_iter()
        .filter(|(_, cap)| *cap > 0)
        .map(|(req, cap)| (req as f64 / cap as f64).min(1.0))
        .collect();
    if fractions.len() < 2 {
        return MAX_NODE_SCORE;
    }
    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    let var = fractions
        .iter()
        .map(|f| (f - mean) * (f - mean))
        .sum::<f64>()
        / fractions.len() as f64;
    ((1.0 - var.sqrt()) * MAX_NODE_SCORE as f64) as i64
}

/// NodeAffinity: the summed weights of the preferred terms the node satisfies.
pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> i64 {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|p| p.weight != 0 && term_matches(&p.preference, node))
        .map(|p| i64::from(p.weight))
        .sum()
}

/// TaintToleration: how many PreferNoSchedule taints the pod does not tolerate (fewer is
/// better; normalised in reverse).
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let tols: Vec<&Toleration> = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == taints::PREFER_NO_SCHEDULE)
        })
        .collect();
    node.node
        .as_ref()
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == taints::PREFER_NO_SCHEDULE)
        .filter(|t| !tols.iter().any(|tol| taints::tolerates(tol, t)))
        .count() as i64
}

/// PodTopologySpread (ScheduleAnyway, and the default spreading): matching pods already
/// in the node's domains, weighted by log(domains + 2); fewer is better. `None` when the
/// node lacks a topology key the pod requires (it scores 0).
pub fn topology_spread(
    pod: &PodInfo,
    node: &NodeInfo,
    state: &SpreadState,
    nodes_scored: usize,
) -> Option<i64> {
    let mut score = 0.0;
    let mut any = false;
    for c in state.soft() {
        let Some(count) = c.count_for(node, &pod.key.namespace) else {
            if state.system_default {
                continue;
            }
            return None;
        };
        let domains = if c.topology_key == super::state::HOSTNAME {
            nodes_scored
        } else {
            c.counts.len()
        };
        let weight = ((domains + 2) as f64).ln();
        score += count as f64 * weight + f64::from(c.max_skew - 1);
        any = true;
    }
    any.then_some(score.round() as i64)
}

/// InterPodAffinity (preferred terms, both ways): the summed weights of the pairs the
/// node is in.
pub fn inter_pod_affinity(node: &NodeInfo, state: &AffinityState) -> i64 {
    if state.preferred.is_empty() {
        return 0;
    }
    state
        .preferred
        .iter()
        .filter(|((k, v), _)| node.label(k) == Some(v.as_str()))
        .map(|(_, w)| *w)
        .sum()
}

/// Kubernetes' `DefaultNormalizeScore`: scales so the highest is 100 (`reverse`: the
/// lowest raw score gets 100).
pub fn normalize_default(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// PodTopologySpread's normalisation: fewer matching pods is better; nodes without a
/// score (`None`) get 0.
pub fn normalize_spread(raw: &[Option<i64>]) -> Vec<i64> {
    let valid = raw.iter().flatten();
    let (min, max) = (
        valid.clone().copied().min().unwrap_or(0),
        valid.copied().max().unwrap_or(0),
    );
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

/// InterPodAffinity's normalisation: min–max to 0–100 (with 0 always within the range).
pub fn normalize_min_max(scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    let min = scores.iter().copied().min().unwrap_or(0).min(0);
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

#[cfg(test)]
#[path = "scores_tests.rs"]
mod tests;
