//! Resource arithmetic: what a pod requests and what a node offers, as the
//! NodeResourcesFit filter and the resource scores count them. Pure; no I/O.
//!
//! A pod's request is Kubernetes' `PodRequests`: the larger of the sum over its app
//! containers (plus restartable init containers, the sidecars) and the largest single
//! init container, plus the pod's overhead. Scores use the "non-zero" request instead,
//! where a container that asks for no cpu or memory counts as 100m cpu and 200Mi memory,
//! so that best-effort pods still spread.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The cpu a container without a cpu request counts for in scores (millicores).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts for in scores (bytes).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// Pods a node may hold (allocatable only; a pod counts as one).
    pub pods: i64,
    /// Extended and other scalar resources (`nvidia.com/gpu`, `hugepages-2Mi`), whole units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Parses a resource list (`requests`, `allocatable`); unparseable quantities count 0.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list.into_iter().flatten() {
            let Ok(q) = rkube_api::quantity::Quantity::parse(&q.0) else {
                continue;
            };
            let clamp = |v: i128| v.clamp(0, i64::MAX as i128) as i64;
            match name.as_str() {
                "cpu" => r.milli_cpu = clamp(q.milli_value()),
                "memory" => r.memory = clamp(q.value()),
                "ephemeral-storage" => r.ephemeral_storage = clamp(q.value()),
                "pods" => r.pods = clamp(q.value()),
                other => {
                    r.scalar.insert(other.to_string(), clamp(q.value()));
                }
            }
        }
        r
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// The per-resource maximum of the two.
    fn max(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Whether nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

fn container_requests(c: &Container) -> Resources {
    Resources::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// Kubernetes' `PodRequests` (see the module documentation); `pods` is 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Resources::default()
        };
    };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&container_requests(c));
    }
    // Init containers run one after another, but restartable ones (sidecars) keep running
    // beside whatever starts after them.
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            sum.add(&r);
        } else {
            let mut peak = r;
            peak.add(&sidecars);
            init_max.max(&peak);
        }
    }
    sum.max(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        sum.add(&Resources::from_list(Some(overhead)));
    }
    sum.pods = 1;
    sum
}

/// The (cpu, memory) the scores count for the pod: its requests, with a default for each
/// container that asks for none.
pub fn non_zero_requests(pod: &Pod) -> (i64, i64) {
    let Some(spec) = pod.spec.as_ref() else {
        return (0, 0);
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let r = Resources::from_list(list);
        let has = |k: &str| list.is_some_and(|l| l.contains_key(k));
        cpu += if has("cpu") {
            r.milli_cpu
        } else {
            DEFAULT_MILLI_CPU_REQUEST
        };
        mem += if has("memory") {
            r.memory
        } else {
            DEFAULT_MEMORY_REQUEST
        };
    }
    (cpu, mem)
}

/// What the node offers to pods (`status.allocatable`, else `status.capacity`).
pub fn node_allocatable(node: &Node) -> Resources {
    let status = node.status.as_ref();
    let list = status
        .and_then(|s| s.allocatable.as_ref())
        .or_else(|| status.and_then(|s| s.capacity.as_ref()));
    Resources::from_list(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    }

    fn container(requests: &[(&str, &str)], restart: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            restart_policy: restart.map(String::from),
            resources: (!requests.is_empty()).then(|| ResourceRequirements {
                requests: Some(list(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_parse_into_the_units_the_scheduler_counts() {
        let r = Resources::from_list(Some(&list(&[
            ("cpu", "1.5"),
            ("memory", "1Gi"),
            ("ephemeral-storage", "10G"),
            ("pods", "110"),
            ("example.com/gpu", "2"),
        ])));
        assert_eq!(r.milli_cpu, 1500);
        assert_eq!(r.memory, 1 << 30);
        assert_eq!(r.ephemeral_storage, 10_000_000_000);
        assert_eq!(r.pods, 110);
        assert_eq!(r.scalar["example.com/gpu"], 2);
    }

    #[test]
    fn pod_requests_take_the_larger_of_the_containers_sum_and_the_largest_init_container() {
        let cases = [
            // (containers, init containers, expected milli cpu, expected memory)
            (
                vec![
                    container(&[("cpu", "100m")], None),
                    container(&[("cpu", "200m")], None),
                ],
                vec![],
                300,
                0,
            ),
            (
                vec![container(&[("cpu", "100m")], None)],
                vec![container(&[("cpu", "500m"), ("memory", "1Mi")], None)],
                500,
                1 << 20,
            ),
            (
                // A sidecar runs beside the app containers and under later init containers.
                vec![container(&[("cpu", "100m")], None)],
                vec![
                    container(&[("cpu", "50m")], Some("Always")),
                    container(&[("cpu", "120m")], None),
                ],
                170,
                0,
            ),
        ];
        for (containers, init, cpu, mem) in cases {
            let r = pod_requests(&pod(containers, init));
            assert_eq!((r.milli_cpu, r.memory, r.pods), (cpu, mem, 1));
        }
    }

    #[test]
    fn containers_without_requests_count_defaults_in_scores_only() {
        let p = pod(
            vec![container(&[], None), container(&[("cpu", "1")], None)],
            vec![],
        );
        assert_eq!(pod_requests(&p).milli_cpu, 1000);
        assert_eq!(non_zero_requests(&p), (1100, 2 * DEFAULT_MEMORY_REQUEST));
    }
}
