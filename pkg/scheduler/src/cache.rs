//! The scheduler's cache: every node, and every pod placed on one, summed per node as
//! the plugins read them — including pods the scheduler has *assumed* onto a node while
//! their Binding is still on its way through the apiserver.
//!
//! Expected flow: the informers feed nodes and bound pods in ([`Cache::apply_node`],
//! [`Cache::apply_pod`]); the scheduling loop picks a node for a pod and calls
//! [`Cache::assume`] before it starts the Binding, so the very next pod already sees
//! those resources taken. When the informer then delivers the bound pod, the assumption
//! is confirmed (replaced by the real pod); when the Binding fails, [`Cache::forget`]
//! drops it.
//!
//! Guarantees: a pod is on at most one node in the cache; confirming an assumption that
//! landed elsewhere moves it. Caveats: a node deleted while pods are still on it stays
//! as a slot without a node (the plugins skip it) until its pods are gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_openapi::api::core::v1::{Node, Pod};
use rkube_runtime::ObjectKey;

use crate::framework::state::SpreadState;
use crate::nodeinfo::{NodeInfo, PodInfo};

/// Memoised spread states kept at most (dropped all at once beyond).
const SPREAD_MEMO_ENTRIES: usize = 32;

#[derive(Debug, Clone)]
struct Placement {
    node: String,
    assumed: bool,
    has_terms: bool,
}

/// The cache's contents; the scheduling loop reads them under the lock.
#[derive(Debug, Default)]
pub struct State {
    /// Node slots; filtering walks them in order from a rotating start.
    pub nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pods: HashMap<ObjectKey, Placement>,
    /// Pods (placed or assumed) with inter-pod (anti-)affinity terms.
    with_terms: usize,
    /// Where the next attempt starts filtering.
    pub next_start: usize,
    /// Topology spread counts kept between attempts, by [`SpreadState::memo_key`]: pods
    /// of one workload share their constraints, and recounting every node and pod for
    /// each of them is what made spreading slow. Kept right on every placement; dropped
    /// when a node changes.
    pub spread_memo: HashMap<String, SpreadState>,
}

impl State {
    fn slot(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(i) => *i,
            None => {
                self.nodes.push(NodeInfo::new(name));
                self.index.insert(name.to_string(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i]
    }

    /// Drops the slot when it holds neither a node nor pods.
    fn prune(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else {
            return;
        };
        if self.nodes[i].node.is_some() || !self.nodes[i].pods.is_empty() {
            return;
        }
        self.index.remove(name);
        self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name.clone();
            self.index.insert(moved, i);
        }
    }

    fn place(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        self.unplace(&info.key);
        let has_terms = has_terms(&info);
        self.with_terms += usize::from(has_terms);
        self.pods.insert(
            info.key.clone(),
            Placement {
                node: node.to_string(),
                assumed,
                has_terms,
            },
        );
        let slot = self.slot(node);
        slot.add_pod(info.clone());
        let i = self.index[node];
        for memo in self.spread_memo.values_mut() {
            memo.apply(&info, &self.nodes[i], 1);
        }
    }

    fn unplace(&mut self, key: &ObjectKey) -> Option<Placement> {
        let placed = self.pods.remove(key)?;
        self.with_terms -= usize::from(placed.has_terms);
        if let Some(&i) = self.index.get(&placed.node) {
            if let Some(info) = self.nodes[i].pods.iter().find(|p| &p.key == key).cloned() {
                for memo in self.spread_memo.values_mut() {
                    memo.apply(&info, &self.nodes[i], -1);
                }
            }
            self.nodes[i].remove_pod(key);
        }
        self.prune(&placed.node);
        Some(placed)
    }

    /// Nodes known (slots without a node do not count).
    pub fn node_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.node.is_some()).count()
    }

    /// Whether any placed pod has inter-pod (anti-)affinity terms.
    pub fn others_have_terms(&self) -> bool {
        self.with_terms > 0
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// Makes sure the spread counts of `pod` are memoised when they can be; returns
    /// their key.
    pub fn memoise_spread(&mut self, pod: &PodInfo, default_spreading: bool) -> Option<String> {
        let mut state = SpreadState::constraints_of(pod, default_spreading);
        let key = state.memo_key(pod)?;
        if !self.spread_memo.contains_key(&key) {
            if self.spread_memo.len() >= SPREAD_MEMO_ENTRIES {
                self.spread_memo.clear();
            }
            state.count(pod, &self.nodes);
            self.spread_memo.insert(key.clone(), state);
        }
        Some(key)
    }
}

fn has_terms(p: &PodInfo) -> bool {
    !p.required_anti_affinity.is_empty()
        || !p.preferred_affinity.is_empty()
        || !p.preferred_anti_affinity.is_empty()
}

/// The pod's node, when it is bound and not finished (a finished pod holds nothing).
pub fn bound_node(pod: &Pod) -> Option<&str> {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return None;
    }
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    state: Arc<Mutex<State>>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A node was added or changed (`Some`), or deleted (`None` for `name`).
    pub fn apply_node(&self, name: &str, node: Option<Arc<Node>>) {
        let mut st = self.lock();
        st.spread_memo.clear();
        match node {
            Some(n) => st.slot(name).set_node(n),
            None => {
                if let Some(&i) = st.index.get(name) {
                    st.nodes[i].node = None;
                }
                st.prune(name);
            }
        }
    }

    /// A pod was added or changed (`Some`) or deleted (`None`). Pods not bound to a node
    /// (or finished) hold nothing; a bound one replaces any assumption about it.
    pub fn apply_pod(&self, key: &ObjectKey, pod: Option<Arc<Pod>>) {
        let mut st = self.lock();
        let node = pod.as_deref().and_then(bound_node).map(str::to_string);
        match (pod, node) {
            (Some(pod), Some(node)) => {
                st.place(Arc::new(PodInfo::new(pod)), &node, false);
            }
            _ => {
                // Unbound: keep an assumption (the informer has not seen the binding
                // yet); otherwise drop whatever the pod held.
                if st.pods.get(key).is_some_and(|p| !p.assumed) {
                    st.unplace(key);
                }
            }
        }
    }

    /// A deleted pod: whatever it held or was assumed to hold is released.
    pub fn remove_pod(&self, key: &ObjectKey) {
        self.lock().unplace(key);
    }

    /// Places `pod` on `node` ahead of its Binding.
    pub fn assume(&self, pod: Arc<PodInfo>, node: &str) {
        self.lock().place(pod, node, true);
    }

    /// Drops the assumption about `key` (its Binding failed). Returns whether there was one.
    pub fn forget(&self, key: &ObjectKey) -> bool {
        let mut st = self.lock();
        if st.pods.get(key).is_some_and(|p| p.assumed) {
            st.unplace(key);
            return true;
        }
        false
    }

    pub fn is_assumed(&self, key: &ObjectKey) -> bool {
        self.lock().pods.get(key).is_some_and(|p| p.assumed)
    }

    /// Where the cache has the pod (assumed or bound).
    pub fn placement(&self, key: &ObjectKey) -> Option<(String, bool)> {
        self.lock()
            .pods
            .get(key)
            .map(|p| (p.node.clone(), p.assumed))
    }

    /// (nodes, pods placed, pods assumed), for logs and tests.
    pub fn counts(&self) -> (usize, usize, usize) {
        let st = self.lock();
        let assumed = st.pods.values().filter(|p| p.assumed).count();
        (st.node_count(), st.pods.len(), assumed)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{info, node, pod};

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("default", name)
    }

    fn bound(name: &str, node: &str, cpu: &str) -> Arc<Pod> {
        Arc::new(pod(name, cpu, "", json!({"spec": {"nodeName": node}})))
    }

    fn requested_cpu(c: &Cache, node: &str) -> i64 {
        c.lock().node(node).map_or(-1, |n| n.requested.milli_cpu)
    }

    #[test]
    fn an_assumed_pod_counts_until_the_informer_confirms_it() {
        let c = Cache::new();
        c.apply_node("n1", Some(Arc::new(node("n1", "4", "4Gi", json!({})))));
        c.assume(info(pod("p", "1", "", json!({}))), "n1");
        assert_eq!(requested_cpu(&c, "n1"), 1000);
        assert!(c.is_assumed(&key("p")));
        // The pending pod updated (its assumption stays) ...
        c.apply_pod(&key("p"), Some(Arc::new(pod("p", "1", "", json!({})))));
        assert_eq!(c.counts(), (1, 1, 1));
        // ... then seen bound: confirmed, counted once.
        c.apply_pod(&key("p"), Some(bound("p", "n1", "1")));
        assert!(!c.is_assumed(&key("p")));
        assert_eq!(requested_cpu(&c, "n1"), 1000);
        assert_eq!(c.counts(), (1, 1, 0));
        // Forgetting a confirmed pod does nothing.
        assert!(!c.forget(&key("p")));
        assert_eq!(requested_cpu(&c, "n1"), 1000);
    }

    #[test]
    fn a_failed_binding_releases_the_assumed_resources() {
        let c = Cache::new();
        c.apply_node("n1", Some(Arc::new(node("n1", "4", "4Gi", json!({})))));
        c.assume(info(pod("p", "3", "", json!({}))), "n1");
        assert!(c.forget(&key("p")));
        assert_eq!(requested_cpu(&c, "n1"), 0);
        assert_eq!(c.counts(), (1, 0, 0));
    }

    #[test]
    fn a_pod_bound_elsewhere_than_assumed_moves_and_finished_pods_hold_nothing() {
        let c = Cache::new();
        for n in ["n1", "n2"] {
            c.apply_node(n, Some(Arc::new(node(n, "4", "4Gi", json!({})))));
        }
        c.assume(info(pod("p", "1", "", json!({}))), "n1");
        c.apply_pod(&key("p"), Some(bound("p", "n2", "1")));
        assert_eq!(
            (requested_cpu(&c, "n1"), requested_cpu(&c, "n2")),
            (0, 1000)
        );
        let mut done = (*bound("p", "n2", "1")).clone();
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        c.apply_pod(&key("p"), Some(Arc::new(done)));
        assert_eq!(requested_cpu(&c, "n2"), 0);
    }

    #[test]
    fn pods_seen_before_their_node_wait_in_a_slot_without_a_node() {
        let c = Cache::new();
        c.apply_pod(&key("p"), Some(bound("p", "late", "2")));
        assert_eq!(c.counts(), (0, 1, 0));
        c.apply_node("late", Some(Arc::new(node("late", "4", "4Gi", json!({})))));
        assert_eq!(c.counts(), (1, 1, 0));
        assert_eq!(requested_cpu(&c, "late"), 2000);
        c.apply_node("late", None);
        assert_eq!(c.counts(), (0, 1, 0));
        c.remove_pod(&key("p"));
        assert_eq!(c.lock().nodes.len(), 0);
    }

    #[test]
    fn memoised_spread_counts_follow_every_placement_and_match_a_recount() {
        let c = Cache::new();
        for (n, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            let extra = json!({"metadata": {"labels": {"zone": zone}}});
            c.apply_node(n, Some(Arc::new(node(n, "4", "4Gi", extra))));
        }
        let spread = |name: &str| {
            info(pod(
                name,
                "",
                "",
                json!({"metadata": {"labels": {"app": "web"}},
                "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
            ))
        };
        let first = spread("p0");
        let key = c.lock().memoise_spread(&first, true).expect("memoisable");
        c.assume(spread("p1"), "a1");
        c.assume(spread("p2"), "b1");
        c.apply_pod(
            &key_of("p1"),
            Some(Arc::new(pod(
                "p1",
                "",
                "",
                json!({"metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "a2"}}),
            ))),
        );
        c.forget(&key_of("p2"));
        c.assume(info(pod("other", "", "", json!({}))), "b1");
        let st = c.lock();
        let memo = &st.spread_memo[&key];
        let fresh = SpreadState::compute(&first, &st.nodes, true);
        assert_eq!(memo.constraints[0].counts, fresh.constraints[0].counts);
        assert_eq!(memo.constraints[0].counts["a"], 1);
        assert_eq!(memo.constraints[0].counts["b"], 0);
        drop(st);
        c.apply_node("b1", None);
        assert!(c.lock().spread_memo.is_empty());
    }

    fn key_of(name: &str) -> ObjectKey {
        ObjectKey::new("default", name)
    }

    #[test]
    fn removing_a_slot_keeps_the_name_index_right() {
        let c = Cache::new();
        for n in ["a", "b", "c"] {
            c.apply_node(n, Some(Arc::new(node(n, "4", "4Gi", json!({})))));
        }
        c.apply_node("a", None);
        c.assume(info(pod("p", "1", "", json!({}))), "c");
        assert_eq!(requested_cpu(&c, "c"), 1000);
        assert_eq!(requested_cpu(&c, "b"), 0);
        assert_eq!(c.counts().0, 2);
    }
}
