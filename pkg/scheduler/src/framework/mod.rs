//! The scheduling framework: the plugins (filters and scores), a profile saying which
//! run with which weights, and [`schedule`], one pure scheduling attempt of one pod
//! against the nodes: filter (stopping once enough feasible nodes are found, as
//! `percentageOfNodesToScore` asks), score, pick the best (ties broken at random).
//!
//! Never does I/O: the cache hands it the nodes, the scheduler loop acts on its answer.

pub mod filters;
pub mod scores;
pub mod state;

use std::collections::BTreeMap;
use std::fmt;

use rand::Rng;

use crate::nodeinfo::{NodeInfo, PodInfo};
use filters::Unfit;
use scores::Strategy;
use state::{AffinityState, SpreadState};

/// A plugin, by its Kubernetes name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plugin {
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
    NodeResourcesBalancedAllocation,
}

impl Plugin {
    pub const ALL: [Plugin; 9] = [
        Plugin::NodeUnschedulable,
        Plugin::NodeName,
        Plugin::TaintToleration,
        Plugin::NodeAffinity,
        Plugin::NodePorts,
        Plugin::NodeResourcesFit,
        Plugin::PodTopologySpread,
        Plugin::InterPodAffinity,
        Plugin::NodeResourcesBalancedAllocation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Plugin::NodeUnschedulable => "NodeUnschedulable",
            Plugin::NodeName => "NodeName",
            Plugin::TaintToleration => "TaintToleration",
            Plugin::NodeAffinity => "NodeAffinity",
            Plugin::NodePorts => "NodePorts",
            Plugin::NodeResourcesFit => "NodeResourcesFit",
            Plugin::PodTopologySpread => "PodTopologySpread",
            Plugin::InterPodAffinity => "InterPodAffinity",
            Plugin::NodeResourcesBalancedAllocation => "NodeResourcesBalancedAllocation",
        }
    }

    pub fn from_name(name: &str) -> Option<Plugin> {
        Plugin::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn has_filter(self) -> bool {
        self != Plugin::NodeResourcesBalancedAllocation
    }

    pub fn has_score(self) -> bool {
        matches!(
            self,
            Plugin::TaintToleration
                | Plugin::NodeAffinity
                | Plugin::NodeResourcesFit
                | Plugin::PodTopologySpread
                | Plugin::InterPodAffinity
                | Plugin::NodeResourcesBalancedAllocation
        )
    }

    /// Kubernetes' default weight in the default profile.
    pub fn default_weight(self) -> i64 {
        match self {
            Plugin::TaintToleration => 3,
            Plugin::NodeAffinity | Plugin::PodTopologySpread | Plugin::InterPodAffinity => 2,
            _ => 1,
        }
    }
}

/// Filters in the order Kubernetes' default profile runs them.
pub const DEFAULT_FILTERS: [Plugin; 8] = [
    Plugin::NodeUnschedulable,
    Plugin::NodeName,
    Plugin::TaintToleration,
    Plugin::NodeAffinity,
    Plugin::NodePorts,
    Plugin::NodeResourcesFit,
    Plugin::PodTopologySpread,
    Plugin::InterPodAffinity,
];

pub const DEFAULT_SCORES: [Plugin; 6] = [
    Plugin::TaintToleration,
    Plugin::NodeAffinity,
    Plugin::NodeResourcesFit,
    Plugin::PodTopologySpread,
    Plugin::InterPodAffinity,
    Plugin::NodeResourcesBalancedAllocation,
];

/// One scheduling profile: a schedulerName and the plugins it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    pub filters: Vec<Plugin>,
    /// Score plugins with their weights.
    pub scores: Vec<(Plugin, i64)>,
    /// `None`: adaptive (50% minus 1% per 125 nodes, at least 5%).
    pub percentage_of_nodes_to_score: Option<u32>,
    pub fit_strategy: Strategy,
    /// NodeResourcesFit's (cpu, memory) weights.
    pub fit_weights: [i64; 2],
    /// PodTopologySpread's system default constraints for pods that name none.
    pub default_spreading: bool,
}

impl Profile {
    /// Kubernetes' default profile under `name`.
    pub fn default_named(name: &str) -> Profile {
        Profile {
            scheduler_name: name.to_string(),
            filters: DEFAULT_FILTERS.to_vec(),
            scores: DEFAULT_SCORES
                .iter()
                .map(|p| (*p, p.default_weight()))
                .collect(),
            percentage_of_nodes_to_score: None,
            fit_strategy: Strategy::LeastAllocated,
            fit_weights: [1, 1],
            default_spreading: true,
        }
    }

    pub fn uses(&self, p: Plugin) -> bool {
        self.filters.contains(&p) || self.scores.iter().any(|(s, _)| *s == p)
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::default_named(crate::DEFAULT_SCHEDULER_NAME)
    }
}

/// The fewest nodes Kubernetes looks at before it stops filtering early.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: u32 = 5;

/// How many feasible nodes to find before scoring (Kubernetes' `numFeasibleNodesToFind`).
pub fn num_feasible_nodes_to_find(all: usize, percentage: Option<u32>) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage.is_some_and(|p| p >= 100) {
        return all;
    }
    let pct = match percentage {
        Some(p) if p > 0 => p,
        _ => (50i64 - (all as i64) / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND as i64) as u32,
    };
    (all * pct as usize / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where the pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub node: String,
    /// Nodes filtered, and of them feasible.
    pub evaluated: usize,
    pub feasible: usize,
}

/// No node fits: the per-reason node counts for the FailedScheduling message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub reasons: BTreeMap<String, usize>,
}

impl fmt::Display for FitError {
    /// Kubernetes' wording: reasons sorted as strings, then the preemption part (rkube
    /// does not preempt, so preemption never helps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_all_nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        parts.sort();
        write!(
            f,
            "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.",
            parts.join(", "),
            n = self.num_all_nodes
        )
    }
}

/// What one attempt needs besides the pod and the nodes.
pub struct Attempt<'a> {
    pub profile: &'a Profile,
    /// Where filtering starts (rotates between attempts, as Kubernetes'
    /// `nextStartNodeIndex`), an index into the node slice.
    pub start: usize,
    /// Whether any placed pod has inter-pod (anti-)affinity terms.
    pub others_have_terms: bool,
    /// The pod's topology spread state when the caller kept it counted already (see
    /// [`SpreadState::memo_key`]); `None`: counted here.
    pub spread: Option<&'a SpreadState>,
}

/// The outcome of [`schedule`] and how many node slots it went through (to move the next
/// start index on).
pub struct Outcome {
    pub result: Result<Decision, FitError>,
    pub processed: usize,
}

/// Runs the profile's filters on one node, first failure wins.
pub fn run_filters(
    profile: &Profile,
    pod: &PodInfo,
    node: &NodeInfo,
    spread: &SpreadState,
    affinity: &AffinityState,
) -> Result<(), Unfit> {
    for p in &profile.filters {
        match p {
            Plugin::NodeUnschedulable => filters::node_unschedulable(pod, node),
            Plugin::NodeName => filters::node_name(pod, node),
            Plugin::TaintToleration => filters::taint_toleration(pod, node),
            Plugin::NodeAffinity => filters::node_affinity(pod, node),
            Plugin::NodePorts => filters::node_ports(pod, node),
            Plugin::NodeResourcesFit => filters::node_resources_fit(pod, node),
            Plugin::PodTopologySpread => filters::pod_topology_spread(pod, node, spread),
            Plugin::InterPodAffinity => filters::inter_pod_affinity(pod, node, affinity),
            Plugin::NodeResourcesBalancedAllocation => Ok(()),
        }?;
    }
    Ok(())
}

/// Total weighted scores of `feasible` (indices into `nodes`).
pub fn score_nodes(
    profile: &Profile,
    pod: &PodInfo,
    nodes: &[NodeInfo],
    feasible: &[usize],
    spread: &SpreadState,
    affinity: &AffinityState,
) -> Vec<i64> {
    let mut total = vec![0i64; feasible.len()];
    let each = |f: &dyn Fn(&NodeInfo) -> i64| -> Vec<i64> {
        feasible.iter().map(|i| f(&nodes[*i])).collect()
    };
    for (p, weight) in &profile.scores {
        let s: Vec<i64> = match p {
            Plugin::NodeResourcesFit => {
                each(&|n| scores::resources_fit(pod, n, profile.fit_strategy, profile.fit_weights))
            }
            Plugin::NodeResourcesBalancedAllocation => {
                each(&|n| scores::balanced_allocation(pod, n))
            }
            Plugin::NodeAffinity => {
                let mut s = each(&|n| scores::node_affinity(pod, n));
                scores::normalize_default(&mut s, false);
                s
            }
            Plugin::TaintToleration => {
                let mut s = each(&|n| scores::taint_toleration(pod, n));
                scores::normalize_default(&mut s, true);
                s
            }
            Plugin::PodTopologySpread => {
                if spread.soft().next().is_none() {
                    continue;
                }
                let raw: Vec<Option<i64>> = feasible
                    .iter()
                    .map(|i| scores::topology_spread(pod, &nodes[*i], spread, feasible.len()))
                    .collect();
                scores::normalize_spread(&raw)
            }
            Plugin::InterPodAffinity => {
                let mut s = each(&|n| scores::inter_pod_affinity(n, affinity));
                scores::normalize_min_max(&mut s);
                s
            }
            _ => continue,
        };
        for (t, v) in total.iter_mut().zip(s) {
            *t += v * weight;
        }
    }
    total
}

/// One scheduling attempt of `pod` against `nodes` (slots whose node is `None` are
/// skipped); see the module documentation.
pub fn schedule(
    pod: &PodInfo,
    nodes: &[NodeInfo],
    attempt: &Attempt<'_>,
    rng: &mut impl Rng,
) -> Outcome {
    let profile = attempt.profile;
    let all = nodes.iter().filter(|n| n.node.is_some()).count();
    if all == 0 {
        return Outcome {
            result: Err(FitError::default()),
            processed: 0,
        };
    }
    let counted;
    let spread = match attempt.spread {
        Some(s) => s,
        None => {
            counted = if profile.uses(Plugin::PodTopologySpread) {
                SpreadState::compute(pod, nodes, profile.default_spreading)
            } else {
                SpreadState::default()
            };
            &counted
        }
    };
    let affinity = if profile.uses(Plugin::InterPodAffinity) {
        AffinityState::compute(pod, nodes, attempt.others_have_terms)
    } else {
        AffinityState::default()
    };
    let want = num_feasible_nodes_to_find(all, profile.percentage_of_nodes_to_score);
    let filter_span = tracing::info_span!(
        "scheduler.filter",
        nodes = all,
        feasible = tracing::field::Empty
    );
    let filtering = filter_span.enter();
    let mut feasible = Vec::with_capacity(want.min(all));
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut processed = 0;
    let len = nodes.len();
    for k in 0..len {
        if feasible.len() >= want {
            break;
        }
        processed += 1;
        let i = (attempt.start + k) % len;
        let node = &nodes[i];
        if node.node.is_none() {
            continue;
        }
        match run_filters(profile, pod, node, spread, &affinity) {
            Ok(()) => feasible.push(i),
            Err(unfit) => {
                for r in unfit.reasons {
                    *reasons.entry(r).or_default() += 1;
                }
            }
        }
    }
    let evaluated = processed;
    filter_span.record("feasible", feasible.len());
    drop(filtering);
    let result = match feasible.len() {
        0 => Err(FitError {
            num_all_nodes: all,
            reasons,
        }),
        1 => Ok(Decision {
            node: nodes[feasible[0]].name.clone(),
            evaluated,
            feasible: 1,
        }),
        n => {
            let totals = tracing::info_span!("scheduler.score", nodes = n)
                .in_scope(|| score_nodes(profile, pod, nodes, &feasible, spread, &affinity));
            let (mut best, mut best_score, mut ties) = (0, i64::MIN, 0u32);
            for (j, s) in totals.iter().enumerate() {
                if *s > best_score {
                    (best, best_score, ties) = (j, *s, 1);
                } else if *s == best_score {
                    ties += 1;
                    if rng.gen_range(0..ties) == 0 {
                        best = j;
                    }
                }
            }
            Ok(Decision {
                node: nodes[feasible[best]].name.clone(),
                evaluated,
                feasible: n,
            })
        }
    };
    Outcome { result, processed }
}

#[cfg(test)]
mod tests;
