//! Fixtures for the unit tests: nodes and pods from compact JSON.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use crate::nodeinfo::{NodeInfo, PodInfo};

/// A Ready node with allocatable cpu, memory and 110 pods, `kubernetes.io/hostname` set,
/// and `extra` merged into it (labels, spec).
pub fn node(name: &str, cpu: &str, memory: &str, extra: Value) -> Node {
    let mut v = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "10Gi"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("a node")
}

/// A pod in namespace `ns` with one container requesting `cpu`/`memory` (empty: none),
/// and `extra` merged into it.
pub fn pod(name: &str, cpu: &str, memory: &str, extra: Value) -> Pod {
    let mut requests = serde_json::Map::new();
    if !cpu.is_empty() {
        requests.insert("cpu".into(), cpu.into());
    }
    if !memory.is_empty() {
        requests.insert("memory".into(), memory.into());
    }
    let mut v = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}]}
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("a pod")
}

pub fn info(p: Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(p)))
}

pub fn node_info(n: Node, pods: Vec<Pod>) -> NodeInfo {
    NodeInfo::with(n, pods.into_iter().map(info).collect())
}

/// JSON merge (objects merge key by key, anything else replaces).
pub fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}
