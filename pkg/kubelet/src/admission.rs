//! Admission: whether a new pod fits the node, judged before anything of it runs
//! (Kubernetes' kubelet rules for CPU, memory and the pod count). A refused pod fails with
//! reason `OutOf<resource>` and Kubernetes' message; it never gets a sandbox. Pure.

use k8s_openapi::api::core::v1::Pod;
use rkube_api::quantity::Quantity;

/// What the node offers to pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub pods: usize,
}

/// Why a pod was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `OutOfcpu`, `OutOfmemory`, `OutOfpods`.
    pub reason: String,
    pub message: String,
}

/// The pod's requests of CPU (millicores) and memory (bytes): the sum over its
/// containers, or the largest init container's when that is more (Kubernetes' rule). A
/// limit stands for a missing request.
pub fn requests(pod: &Pod) -> (i64, i64) {
    let Some(spec) = &pod.spec else {
        return (0, 0);
    };
    let of = |c: &k8s_openapi::api::core::v1::Container, name: &str, milli: bool| -> i64 {
        let r = c.resources.as_ref();
        let q = r
            .and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(name))
            .or_else(|| r.and_then(|r| r.limits.as_ref()).and_then(|m| m.get(name)));
        q.and_then(|q| Quantity::parse(&q.0).ok())
            .map(|q| if milli { q.milli_value() } else { q.value() } as i64)
            .unwrap_or(0)
    };
    let sum = |name: &str, milli: bool| {
        spec.containers
            .iter()
            .map(|c| of(c, name, milli))
            .sum::<i64>()
    };
    let init = |name: &str, milli: bool| {
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| of(c, name, milli))
            .max()
            .unwrap_or(0)
    };
    (
        sum("cpu", true).max(init("cpu", true)),
        sum("memory", false).max(init("memory", false)),
    )
}

/// Admits `pod` on a node offering `node`, where `admitted` already run. Pure.
pub fn admit(pod: &Pod, admitted: &[&Pod], node: Allocatable) -> Result<(), Rejection> {
    let reject = |resource: &str, requested: i64, used: i64, capacity: i64| {
        Rejection {
        reason: format!("OutOf{resource}"),
        message: format!(
            "Pod was rejected: Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"
        ),
    }
    };
    if admitted.len() + 1 > node.pods {
        return Err(reject("pods", 1, admitted.len() as i64, node.pods as i64));
    }
    let (cpu, memory) = requests(pod);
    let (used_cpu, used_memory) = admitted
        .iter()
        .map(|p| requests(p))
        .fold((0, 0), |(a, b), (c, m)| (a + c, b + m));
    if cpu > 0 && used_cpu + cpu > node.cpu_milli {
        return Err(reject("cpu", cpu, used_cpu, node.cpu_milli));
    }
    if memory > 0 && used_memory + memory > node.memory_bytes {
        return Err(reject("memory", memory, used_memory, node.memory_bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(cpu: &str, memory: &str) -> Pod {
        let mut requests = serde_json::Map::new();
        if !cpu.is_empty() {
            requests.insert("cpu".into(), cpu.into());
        }
        if !memory.is_empty() {
            requests.insert("memory".into(), memory.into());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
        }))
        .unwrap()
    }

    const NODE: Allocatable = Allocatable {
        cpu_milli: 2000,
        memory_bytes: 1 << 30,
        pods: 3,
    };

    #[test]
    fn pods_are_admitted_while_they_fit() {
        let half = pod("1", "512Mi");
        let cases: Vec<(&str, Pod, Vec<Pod>, Option<&str>)> = vec![
            ("best effort on an empty node", pod("", ""), vec![], None),
            ("fits exactly", pod("2", "1Gi"), vec![], None),
            (
                "beside another",
                pod("1", "512Mi"),
                vec![half.clone()],
                None,
            ),
            (
                "too much CPU",
                pod("1500m", ""),
                vec![half.clone()],
                Some("OutOfcpu"),
            ),
            (
                "too much memory",
                pod("", "600Mi"),
                vec![half.clone()],
                Some("OutOfmemory"),
            ),
            (
                "best effort needs no resources",
                pod("", ""),
                vec![pod("2", "1Gi")],
                None,
            ),
            (
                "the node is full of pods",
                pod("", ""),
                vec![pod("", ""), pod("", ""), pod("", "")],
                Some("OutOfpods"),
            ),
        ];
        for (name, p, others, want) in cases {
            let refs: Vec<&Pod> = others.iter().collect();
            let got = admit(&p, &refs, NODE).err().map(|r| r.reason);
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn the_message_says_what_was_asked_used_and_offered() {
        let r = admit(&pod("1500m", ""), &[&pod("1", "")], NODE).unwrap_err();
        assert_eq!(
            r.message,
            "Pod was rejected: Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000"
        );
    }

    #[test]
    fn an_init_container_counts_when_it_asks_more_than_the_containers() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
                "containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Mi"}}}],
            },
        }))
        .unwrap();
        assert_eq!(requests(&p), (3000, 1 << 20));
    }
}
