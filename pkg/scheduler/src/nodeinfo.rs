//! What the plugins read: a pod with what they need of it worked out once ([`PodInfo`]),
//! and a node with the pods placed or assumed on it and their sums ([`NodeInfo`]). Pure
//! data; the cache ([`crate::cache`]) keeps them current.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm};
use rkube_api::selectors::LabelSelector;
use rkube_runtime::ObjectKey;

use crate::resources::{node_allocatable, non_zero_requests, pod_requests, Resources};

/// Whether `labels` satisfy `selector`, without copying a label (the scheduler asks this
/// for every placed pod in some attempts, so it must not allocate).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    use rkube_api::selectors::Operator;
    if selector.is_nothing() {
        return false;
    }
    selector.requirements().iter().all(|r| {
        let got = labels.get(r.key()).map(String::as_str);
        let values = r.values();
        let listed = |v: &str| values.iter().any(|x| x == v);
        match r.operator() {
            Operator::In | Operator::Equals | Operator::DoubleEquals => got.is_some_and(listed),
            Operator::NotIn | Operator::NotEquals => got.is_none_or(|v| !listed(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    got.and_then(|v| v.parse::<i64>().ok()),
                    values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if r.operator() == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    })
}

/// A hostPort a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// "" or "0.0.0.0" means every address.
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two ports cannot both be bound on one node.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == other.port
            && self.protocol == other.protocol
            && (any(&self.ip) || any(&other.ip) || self.ip == other.ip)
    }
}

/// An inter-pod (anti-)affinity term, parsed.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub selector: LabelSelector,
    /// `None`: every namespace (an empty `namespaceSelector`).
    pub namespaces: Option<BTreeSet<String>>,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Parses `term` of a pod in `namespace`. With neither `namespaces` nor a
    /// `namespaceSelector` the term looks at the pod's own namespace; an empty
    /// `namespaceSelector` means every namespace. A non-empty `namespaceSelector` is not
    /// evaluated (the scheduler does not watch namespaces): only the listed namespaces,
    /// or the pod's own, count.
    pub fn parse(term: &PodAffinityTerm, namespace: &str) -> Option<AffinityTerm> {
        let selector = LabelSelector::from_metav1(term.label_selector.as_ref()).ok()?;
        let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        });
        let namespaces = if all {
            None
        } else if listed.is_empty() {
            Some([namespace.to_string()].into())
        } else {
            Some(listed)
        };
        Some(AffinityTerm {
            selector,
            namespaces,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Whether `pod` is one the term selects.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|ns| ns.contains(&pod.key.namespace))
            && selector_matches(&self.selector, pod.labels())
    }
}

/// A preferred term and its weight.
#[derive(Debug, Clone)]
pub struct WeightedTerm {
    pub weight: i32,
    pub term: AffinityTerm,
}

static NO_LABELS: std::sync::LazyLock<BTreeMap<String, String>> =
    std::sync::LazyLock::new(Default::default);

/// A pod and what the plugins need of it, worked out once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: ObjectKey,
    pub uid: String,
    pub requests: Resources,
    pub non_zero: (i64, i64),
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedTerm>,
    pub preferred_anti_affinity: Vec<WeightedTerm>,
    /// The UID of the pod's controller (its ReplicaSet, ...), for default spreading.
    pub owner: Option<String>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let key = ObjectKey::from_meta(&pod.metadata);
        let ns = key.namespace.clone();
        let spec = pod.spec.as_ref();
        let host_ports = spec
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                ip: p.host_ip.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.host_port.unwrap_or(0),
            })
            .collect();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .filter_map(|t| AffinityTerm::parse(t, &ns))
                .collect()
        };
        let preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .filter_map(|w| {
                        Some(WeightedTerm {
                            weight: w.weight,
                            term: AffinityTerm::parse(&w.pod_affinity_term, &ns)?,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        PodInfo {
            key,
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests: pod_requests(&pod),
            non_zero: non_zero_requests(&pod),
            host_ports,
            required_affinity: required(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            owner: rkube_runtime::object::controller_of(&pod.metadata).map(|o| o.uid.clone()),
            pod,
        }
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// A node, and the pods placed or assumed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while the cache knows pods on the node but not the node itself.
    pub node: Option<Arc<Node>>,
    pub allocatable: Resources,
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the placed pods' requests (`pods` counts them).
    pub requested: Resources,
    /// Sum of their non-zero (cpu, memory) requests, for scores.
    pub non_zero_requested: (i64, i64),
}

impl NodeInfo {
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// A node holding `pods` (for tests and benchmarks).
    pub fn with(node: Node, pods: Vec<Arc<PodInfo>>) -> NodeInfo {
        let mut n = NodeInfo::new(node.metadata.name.as_deref().unwrap_or(""));
        n.set_node(Arc::new(node));
        for p in pods {
            n.add_pod(p);
        }
        n
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = node_allocatable(&node);
        self.node = Some(node);
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.0 += pod.non_zero.0;
        self.non_zero_requested.1 += pod.non_zero.1;
        self.pods.push(pod);
    }

    /// Removes the pod with `key`; returns whether it was there.
    pub fn remove_pod(&mut self, key: &ObjectKey) -> bool {
        let Some(i) = self.pods.iter().position(|p| &p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.0 -= pod.non_zero.0;
        self.non_zero_requested.1 -= pod.non_zero.1;
        true
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.node
            .as_ref()?
            .metadata
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&NO_LABELS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_matcher_agrees_with_the_api_crates_selectors() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("tier", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for s in [
            "app=web",
            "app!=web",
            "app in (db,web)",
            "app notin (web)",
            "app",
            "!app",
            "tier>2",
            "tier<2",
            "missing!=x",
            "app=web,tier=3",
            "app=web,tier=4",
            "",
        ] {
            let sel = LabelSelector::parse(s).unwrap();
            assert_eq!(
                selector_matches(&sel, &labels),
                sel.matches(&labels),
                "{s:?}"
            );
        }
        assert!(!selector_matches(&LabelSelector::nothing(), &labels));
    }
}
