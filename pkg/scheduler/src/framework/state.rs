//! What the cross-node plugins work out once per scheduling attempt (Kubernetes'
//! PreFilter and PreScore): topology spread counts per domain, and inter-pod
//! (anti-)affinity counts per topology pair. Pure functions of the pod and the nodes.

use std::collections::{HashMap, HashSet};

use rkube_api::selectors::LabelSelector;

use super::filters::matches_node_selector_and_affinity;
use crate::nodeinfo::{NodeInfo, PodInfo};

pub const HOSTNAME: &str = "kubernetes.io/hostname";
pub const ZONE: &str = "topology.kubernetes.io/zone";

/// Which pods a spread constraint counts.
#[derive(Debug, Clone)]
pub enum Matcher {
    Selector(LabelSelector),
    /// Pods of one controller (the default spreading of a pod that names no constraint).
    Owner(String),
}

/// One topology spread constraint and its counts.
#[derive(Debug, Clone)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub matcher: Matcher,
    pub min_domains: Option<i32>,
    /// `whenUnsatisfiable: DoNotSchedule`.
    pub hard: bool,
    /// Matching pods per domain (topology value) among the eligible nodes; every
    /// eligible domain is present, with 0 when empty. Not filled for soft hostname
    /// constraints, which count on the node itself at score time.
    pub counts: HashMap<String, i64>,
    /// The smallest count, kept with the counts (the filter asks for it per node).
    min: i64,
}

impl SpreadConstraint {
    /// Whether `pod` counts for this constraint of a pod in `namespace`.
    pub fn matches(&self, pod: &PodInfo, namespace: &str) -> bool {
        if pod.key.namespace != namespace || pod.is_terminating() {
            return false;
        }
        match &self.matcher {
            Matcher::Selector(s) => crate::nodeinfo::selector_matches(s, pod.labels()),
            Matcher::Owner(uid) => pod.owner.as_deref() == Some(uid.as_str()),
        }
    }

    /// The smallest domain count (0 when fewer domains than `minDomains` exist).
    pub fn min_count(&self) -> i64 {
        if self
            .min_domains
            .is_some_and(|m| (self.counts.len() as i64) < i64::from(m))
        {
            return 0;
        }
        self.min
    }

    fn update_min(&mut self) {
        self.min = self.counts.values().copied().min().unwrap_or(0);
    }

    /// Matching pods in the node's domain.
    pub fn count_for(&self, node: &NodeInfo, namespace: &str) -> Option<i64> {
        let value = node.label(&self.topology_key)?;
        if !self.hard && self.topology_key == HOSTNAME {
            return Some(
                node.pods
                    .iter()
                    .filter(|p| self.matches(p, namespace))
                    .count() as i64,
            );
        }
        Some(self.counts.get(value).copied().unwrap_or(0))
    }
}

/// The pod's spread constraints with their counts.
#[derive(Debug, Clone, Default)]
pub struct SpreadState {
    pub constraints: Vec<SpreadConstraint>,
    /// The constraints are the system's defaults (the pod named none): a node without a
    /// constraint's key skips that constraint instead of scoring 0.
    pub system_default: bool,
    pub namespace: String,
}

impl SpreadState {
    pub fn hard(&self) -> impl Iterator<Item = &SpreadConstraint> {
        self.constraints.iter().filter(|c| c.hard)
    }

    pub fn soft(&self) -> impl Iterator<Item = &SpreadConstraint> {
        self.constraints.iter().filter(|c| !c.hard)
    }

    /// The pod's constraints (or, with `default_spreading`, the system's defaults for a
    /// pod with a controller: hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway),
    /// counted over `nodes`.
    pub fn compute(pod: &PodInfo, nodes: &[NodeInfo], default_spreading: bool) -> SpreadState {
        let mut state = SpreadState::constraints_of(pod, default_spreading);
        state.count(pod, nodes);
        state
    }

    /// The pod's constraints, not counted yet.
    pub fn constraints_of(pod: &PodInfo, default_spreading: bool) -> SpreadState {
        let ns = pod.key.namespace.clone();
        let declared = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        let mut constraints = Vec::new();
        for c in declared {
            let mut selector = match LabelSelector::from_metav1(c.label_selector.as_ref()) {
                Ok(s) => s,
                Err(_) => continue,
            };
            // matchLabelKeys: the pod's own values for those keys narrow the selector.
            let extra: Vec<_> = c
                .match_label_keys
                .iter()
                .flatten()
                .filter_map(|k| {
                    let v = pod.labels().get(k)?;
                    rkube_api::selectors::Requirement::new(
                        k,
                        rkube_api::selectors::Operator::Equals,
                        vec![v.clone()],
                    )
                    .ok()
                })
                .collect();
            if !extra.is_empty() {
                let mut reqs = selector.requirements().to_vec();
                reqs.extend(extra);
                selector = LabelSelector::from_requirements(reqs);
            }
            constraints.push(SpreadConstraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key.clone(),
                matcher: Matcher::Selector(selector),
                min_domains: c.min_domains,
                hard: c.when_unsatisfiable == "DoNotSchedule",
                counts: HashMap::new(),
                min: 0,
            });
        }
        let system_default = declared.is_empty() && default_spreading && pod.owner.is_some();
        if system_default {
            let owner = pod.owner.clone().unwrap_or_default();
            for (key, skew) in [(HOSTNAME, 3), (ZONE, 5)] {
                constraints.push(SpreadConstraint {
                    max_skew: skew,
                    topology_key: key.into(),
                    matcher: Matcher::Owner(owner.clone()),
                    min_domains: None,
                    hard: false,
                    counts: HashMap::new(),
                    min: 0,
                });
            }
        }
        SpreadState {
            constraints,
            system_default,
            namespace: ns,
        }
    }

    /// The constraints whose counts are kept per domain (all but soft hostname ones,
    /// which count on the node itself at score time).
    fn counted(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.constraints.len()).filter(|i| {
            let c = &self.constraints[*i];
            c.hard || c.topology_key != HOSTNAME
        })
    }

    /// A key under which these counts may be kept and reused for later pods with the
    /// same constraints: only when every node is eligible (the pod has no node selector
    /// or required node affinity), so the counts depend on the constraints alone.
    pub fn memo_key(&self, pod: &PodInfo) -> Option<String> {
        let spec = pod.pod.spec.as_ref()?;
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
        if self.counted().next().is_none()
            || spec.node_selector.as_ref().is_some_and(|s| !s.is_empty())
            || affinity.is_some()
        {
            return None;
        }
        let mut key = format!("{}|{}", self.namespace, self.system_default);
        for c in &self.constraints {
            key.push_str(&format!("|{}/{}/{:?}", c.topology_key, c.hard, c.matcher));
        }
        Some(key)
    }

    /// The domain a node's pods count in for constraint `i`, when they count: the node
    /// has the constraint's key and (unless system-defaulted) every key of the
    /// constraints of its kind.
    fn domain_of<'n>(&self, i: usize, node: &'n NodeInfo) -> Option<&'n str> {
        let c = &self.constraints[i];
        if !c.hard && self.system_default {
            return node.label(&c.topology_key);
        }
        if !self
            .constraints
            .iter()
            .filter(|o| o.hard == c.hard)
            .all(|o| node.label(&o.topology_key).is_some())
        {
            return None;
        }
        node.label(&c.topology_key)
    }

    /// Keeps memoised counts right as `pod` is placed on (`delta` 1) or removed from
    /// (`delta` -1) `node`.
    pub fn apply(&mut self, pod: &PodInfo, node: &NodeInfo, delta: i64) {
        let counted: Vec<usize> = self.counted().collect();
        for i in counted {
            if !self.constraints[i].matches(pod, &self.namespace) {
                continue;
            }
            if let Some(v) = self.domain_of(i, node) {
                let v = v.to_string();
                let c = &mut self.constraints[i];
                *c.counts.entry(v).or_default() += delta;
                if c.hard {
                    c.update_min();
                }
            }
        }
    }

    /// Fills the counts over `nodes` eligible for `pod`.
    pub fn count(&mut self, pod: &PodInfo, nodes: &[NodeInfo]) {
        let needs_counts: Vec<usize> = self.counted().collect();
        if needs_counts.is_empty() {
            return;
        }
        let state = self;
        // Counted into borrowed keys first: one String per domain, not one per node.
        let mut counts: Vec<HashMap<&str, i64>> = vec![HashMap::new(); state.constraints.len()];
        for node in nodes.iter().filter(|n| n.node.is_some()) {
            if !matches_node_selector_and_affinity(pod, node) {
                continue;
            }
            for &i in &needs_counts {
                let Some(value) = state.domain_of(i, node) else {
                    continue;
                };
                let c = &state.constraints[i];
                let n = node
                    .pods
                    .iter()
                    .filter(|p| c.matches(p, &state.namespace))
                    .count() as i64;
                *counts[i].entry(value).or_default() += n;
            }
        }
        let counts: Vec<HashMap<String, i64>> = counts
            .into_iter()
            .map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            .collect();
        for (c, counted) in state.constraints.iter_mut().zip(counts) {
            c.counts = counted;
            c.update_min();
        }
    }
}

/// Inter-pod affinity counts for one pod, keyed by (topology key, value).
#[derive(Debug, Clone, Default)]
pub struct AffinityState {
    /// Pods matching the pod's required affinity terms, per pair.
    pub affinity_counts: HashMap<(String, String), i64>,
    /// Pods matching the pod's required anti-affinity terms, per pair.
    pub anti_counts: HashMap<(String, String), i64>,
    /// Pairs where a placed pod's required anti-affinity selects this pod.
    pub existing_anti: HashSet<(String, String)>,
    /// Preferred (anti-)affinity, both ways: the summed weights per pair.
    pub preferred: HashMap<(String, String), i64>,
}

impl AffinityState {
    /// Counts over `nodes`. `others_have_terms` says whether any placed pod has
    /// (anti-)affinity terms of its own; without it and without terms of the pod's, there
    /// is nothing to count.
    pub fn compute(pod: &PodInfo, nodes: &[NodeInfo], others_have_terms: bool) -> AffinityState {
        let mut s = AffinityState::default();
        let own = !pod.required_affinity.is_empty()
            || !pod.required_anti_affinity.is_empty()
            || !pod.preferred_affinity.is_empty()
            || !pod.preferred_anti_affinity.is_empty();
        if !own && !others_have_terms {
            return s;
        }
        let pair = |node: &NodeInfo, key: &str| -> Option<(String, String)> {
            node.label(key).map(|v| (key.to_string(), v.to_string()))
        };
        for node in nodes.iter().filter(|n| n.node.is_some()) {
            for existing in &node.pods {
                if existing.is_terminating() {
                    continue;
                }
                for t in &pod.required_affinity {
                    if let (true, Some(p)) = (t.matches(existing), pair(node, &t.topology_key)) {
                        *s.affinity_counts.entry(p).or_default() += 1;
                    }
                }
                for t in &pod.required_anti_affinity {
                    if let (true, Some(p)) = (t.matches(existing), pair(node, &t.topology_key)) {
                        *s.anti_counts.entry(p).or_default() += 1;
                    }
                }
                for w in &pod.preferred_affinity {
                    if let (true, Some(p)) =
                        (w.term.matches(existing), pair(node, &w.term.topology_key))
                    {
                        *s.preferred.entry(p).or_default() += i64::from(w.weight);
                    }
                }
                for w in &pod.preferred_anti_affinity {
                    if let (true, Some(p)) =
                        (w.term.matches(existing), pair(node, &w.term.topology_key))
                    {
                        *s.preferred.entry(p).or_default() -= i64::from(w.weight);
                    }
                }
                if !others_have_terms {
                    continue;
                }
                for t in &existing.required_anti_affinity {
                    if let (true, Some(p)) = (t.matches(pod), pair(node, &t.topology_key)) {
                        s.existing_anti.insert(p);
                    }
                }
                for w in &existing.preferred_affinity {
                    if let (true, Some(p)) = (w.term.matches(pod), pair(node, &w.term.topology_key))
                    {
                        *s.preferred.entry(p).or_default() += i64::from(w.weight);
                    }
                }
                for w in &existing.preferred_anti_affinity {
                    if let (true, Some(p)) = (w.term.matches(pod), pair(node, &w.term.topology_key))
                    {
                        *s.preferred.entry(p).or_default() -= i64::from(w.weight);
                    }
                }
            }
        }
        s
    }
}
