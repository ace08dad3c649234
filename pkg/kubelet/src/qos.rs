//! QoS classes and what they mean for the runtime: the pod's cgroup parent and each
//! container's CPU shares, CFS quota, memory limit and OOM score (Kubernetes' rules).
//! Pure: no cgroup is touched here.

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use rkube_api::quantity::Quantity;

use crate::cri::pb::LinuxContainerResources;

pub const GUARANTEED: &str = "Guaranteed";
pub const BURSTABLE: &str = "Burstable";
pub const BEST_EFFORT: &str = "BestEffort";

/// CFS period the quota is a share of (100 ms, Kubernetes' default).
pub const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;

fn quantity(r: Option<&ResourceRequirements>, limits: bool, name: &str) -> Option<Quantity> {
    let r = r?;
    let map = if limits { &r.limits } else { &r.requests };
    map.as_ref()?
        .get(name)
        .and_then(|q| Quantity::parse(&q.0).ok())
        .filter(|q| !q.is_zero())
}

/// A container's request of `name`: as given, or its limit when only a limit is set.
fn request(c: &Container, name: &str) -> Option<Quantity> {
    quantity(c.resources.as_ref(), false, name).or_else(|| limit(c, name))
}

fn limit(c: &Container, name: &str) -> Option<Quantity> {
    quantity(c.resources.as_ref(), true, name)
}

/// The pod's QoS class: BestEffort when no container asks for or limits CPU or memory,
/// Guaranteed when every container limits both and requests exactly its limits, else
/// Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers: Vec<&Container> = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .collect();
    let resources = ["cpu", "memory"];
    let any = containers
        .iter()
        .any(|c| resources.iter().any(|r| request(c, r).is_some()));
    if !any {
        return BEST_EFFORT;
    }
    let guaranteed = containers.iter().all(|c| {
        resources
            .iter()
            .all(|r| match (request(c, r), limit(c, r)) {
                (Some(req), Some(lim)) => req.cmp_to(&lim).is_eq(),
                _ => false,
            })
    });
    if guaranteed {
        GUARANTEED
    } else {
        BURSTABLE
    }
}

/// The pod's cgroup under `root` (absolute, cgroupfs): `<root>/kubepods/pod<uid>` for
/// Guaranteed pods, `<root>/kubepods/<burstable|besteffort>/pod<uid>` for the others.
pub fn cgroup_parent(root: &str, qos: &str, uid: &str) -> String {
    let root = root.trim_end_matches('/');
    match qos {
        GUARANTEED => format!("{root}/kubepods/pod{uid}"),
        BURSTABLE => format!("{root}/kubepods/burstable/pod{uid}"),
        _ => format!("{root}/kubepods/besteffort/pod{uid}"),
    }
}

/// What the runtime enforces for `c` of a pod of class `qos` on a node with
/// `memory_capacity` bytes: shares from the CPU request (1024 per CPU, at least 2), a CFS
/// quota from the CPU limit, the memory limit, and the OOM score adjustment.
pub fn container_resources(
    c: &Container,
    qos: &str,
    memory_capacity: i64,
) -> LinuxContainerResources {
    let cpu_request = request(c, "cpu").map(|q| q.milli_value() as i64);
    let cpu_limit = limit(c, "cpu").map(|q| q.milli_value() as i64);
    let memory_limit = limit(c, "memory").map(|q| q.value() as i64);
    let memory_request = request(c, "memory").map(|q| q.value() as i64);
    let cpu_shares = cpu_request
        .map(|m| (m * 1024 / 1000).max(MIN_SHARES))
        .unwrap_or(MIN_SHARES);
    let cpu_quota = cpu_limit
        .map(|m| (m * CPU_PERIOD / 1000).max(1000))
        .unwrap_or(0);
    let oom_score_adj = match qos {
        GUARANTEED => -997,
        BEST_EFFORT => 1000,
        _ => {
            let req = memory_request.unwrap_or(0);
            let adj = if memory_capacity > 0 {
                1000 - (1000 * req) / memory_capacity
            } else {
                999
            };
            adj.clamp(2, 999)
        }
    };
    LinuxContainerResources {
        cpu_period: if cpu_quota > 0 { CPU_PERIOD } else { 0 },
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: memory_limit.unwrap_or(0),
        oom_score_adj,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    use super::*;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), Q(v.to_string())))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let both = [("cpu", "500m"), ("memory", "64Mi")];
        let cases: Vec<(&str, Vec<Container>, &str)> = vec![
            ("nothing asked", vec![container(&[], &[])], BEST_EFFORT),
            (
                "limits equal requests",
                vec![container(&both, &both)],
                GUARANTEED,
            ),
            (
                "limits only: requests default to them",
                vec![container(&[], &both)],
                GUARANTEED,
            ),
            ("requests only", vec![container(&both, &[])], BURSTABLE),
            (
                "requests below limits",
                vec![container(&[("cpu", "100m"), ("memory", "64Mi")], &both)],
                BURSTABLE,
            ),
            (
                "one resource limited",
                vec![container(&[], &[("cpu", "1")])],
                BURSTABLE,
            ),
            (
                "one guaranteed container beside a best-effort one",
                vec![container(&both, &both), container(&[], &[])],
                BURSTABLE,
            ),
            (
                "a zero request is no request",
                vec![container(&[("cpu", "0")], &[])],
                BEST_EFFORT,
            ),
        ];
        for (name, containers, want) in cases {
            assert_eq!(qos_class(&pod(containers)), want, "{name}");
        }
    }

    #[test]
    fn cgroup_parents_are_absolute_and_grouped_by_class() {
        let cases = [
            ("/", GUARANTEED, "/kubepods/podU"),
            ("", BURSTABLE, "/kubepods/burstable/podU"),
            (
                "/rkube-n1",
                BEST_EFFORT,
                "/rkube-n1/kubepods/besteffort/podU",
            ),
            ("/rkube-n2/", BURSTABLE, "/rkube-n2/kubepods/burstable/podU"),
        ];
        for (root, qos, want) in cases {
            assert_eq!(cgroup_parent(root, qos, "U"), want);
        }
    }

    #[test]
    fn resources_become_shares_quota_memory_limit_and_oom_score() {
        let gib = 1i64 << 30;
        let cases = [
            // (requests, limits, qos, shares, quota, memory limit, oom score)
            (vec![], vec![], BEST_EFFORT, 2, 0, 0, 1000),
            (
                vec![("cpu", "500m"), ("memory", "64Mi")],
                vec![("cpu", "500m"), ("memory", "64Mi")],
                GUARANTEED,
                512,
                50_000,
                64 << 20,
                -997,
            ),
            (vec![("cpu", "2")], vec![], BURSTABLE, 2048, 0, 0, 999),
            (
                vec![("memory", "512Mi")],
                vec![("memory", "1Gi")],
                BURSTABLE,
                2,
                0,
                gib,
                500,
            ),
            (
                vec![("cpu", "1m")],
                vec![("cpu", "1m")],
                BURSTABLE,
                2,
                1000,
                0,
                999,
            ),
        ];
        for (req, lim, qos, shares, quota, mem, oom) in cases {
            let r = container_resources(&container(&req, &lim), qos, gib);
            assert_eq!(
                (
                    r.cpu_shares,
                    r.cpu_quota,
                    r.memory_limit_in_bytes,
                    r.oom_score_adj
                ),
                (shares, quota, mem, oom),
                "{req:?} {lim:?}"
            );
            assert_eq!(r.cpu_period, if quota > 0 { CPU_PERIOD } else { 0 });
        }
    }
}
