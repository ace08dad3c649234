use serde_json::{json, Value};

use super::*;
use crate::patch::schema::schema_for_kind;

struct Case {
    name: &'static str,
    kind: &'static str,
    doc: Value,
    patch: Value,
    want: Value,
}

fn smp(kind: &str, doc: &Value, patch: &Value) -> Result<Value> {
    let schema = schema_for_kind(kind).unwrap_or_else(|| panic!("no schema for {kind}"));
    apply_strategic_merge_patch(doc, patch, schema)
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let got = smp(case.kind, &case.doc, &case.patch)
            .unwrap_or_else(|e| panic!("{}: unexpected error: {e}", case.name));
        assert_eq!(got, case.want, "{}", case.name);
        assert_no_directives(&got, case.name);
    }
}

fn assert_no_directives(value: &Value, case: &str) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                assert!(!is_directive(key), "{case}: directive {key} in the result");
                assert_no_directives(value, case);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_no_directives(v, case)),
        _ => {}
    }
}

fn set(doc: &mut Value, pointer: &str, value: Value) {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = value;
}

fn pod_with_containers(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["name"].as_str().or(item.as_str()).expect("a name"))
        .collect()
}

#[test]
fn maps_merge_recursively_and_null_deletes_a_field() {
    check(vec![
        Case {
            name: "a new field is added",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"app": "web"}}}),
            want: json!({"metadata": {"name": "p", "labels": {"app": "web"}}}),
        },
        Case {
            name: "one label changes and the others stay",
            kind: "Pod",
            doc: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"b": "3"}}}),
            want: json!({"metadata": {"labels": {"a": "1", "b": "3"}}}),
        },
        Case {
            name: "null deletes a label",
            kind: "Pod",
            doc: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"a": null}}}),
            want: json!({"metadata": {"labels": {"b": "2"}}}),
        },
        Case {
            name: "null for a missing field changes nothing",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": null}}),
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "nulls inside a new object are dropped",
            kind: "Pod",
            doc: json!({"spec": {}}),
            patch: json!({"spec": {"securityContext": {"runAsUser": null, "runAsGroup": 1000}}}),
            want: json!({"spec": {"securityContext": {"runAsGroup": 1000}}}),
        },
        Case {
            name: "an object replaces a scalar and a scalar replaces an object",
            kind: "Pod",
            doc: json!({"spec": {"a": "text", "b": {"c": 1}}}),
            patch: json!({"spec": {"a": {"c": 1}, "b": 2}}),
            want: json!({"spec": {"a": {"c": 1}, "b": 2}}),
        },
        Case {
            name: "a null patch changes nothing",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: Value::Null,
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "kubectl edit of replicas and a label",
            kind: "Deployment",
            doc: json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 2, "paused": true}}),
            patch: json!({"metadata": {"labels": {"tier": "frontend"}}, "spec": {"replicas": 5, "paused": null}}),
            want: json!({"metadata": {"labels": {"app": "web", "tier": "frontend"}}, "spec": {"replicas": 5}}),
        },
    ]);
}

#[test]
fn merge_lists_merge_their_elements_by_merge_key() {
    check(vec![
        Case {
            name: "a container's image changes and its other fields stay",
            kind: "Pod",
            doc: pod_with_containers(
                json!([{"name": "app", "image": "app:1", "args": ["--port=80"]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}}),
            want: pod_with_containers(
                json!([{"name": "app", "image": "app:2", "args": ["--port=80"]}]),
            ),
        },
        Case {
            name: "an env var changes by name",
            kind: "Pod",
            doc: pod_with_containers(json!([{"name": "app", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])),
            patch: json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "20"}]}]}}),
            want: pod_with_containers(json!([{"name": "app", "env": [
                {"name": "A", "value": "1"}, {"name": "B", "value": "20"}]}])),
        },
        Case {
            name: "an env var switches from value to valueFrom",
            kind: "Pod",
            doc: pod_with_containers(
                json!([{"name": "app", "env": [{"name": "A", "value": "1"}]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": null,
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}),
            want: pod_with_containers(json!([{"name": "app", "env": [{"name": "A",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}])),
        },
        Case {
            name: "a container port merges by containerPort",
            kind: "Pod",
            doc: pod_with_containers(
                json!([{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}]}]}}),
            want: pod_with_containers(json!([{"name": "app", "ports": [
                {"containerPort": 80, "protocol": "TCP", "name": "http"}]}])),
        },
        Case {
            name: "a volume mount merges by mountPath",
            kind: "Pod",
            doc: pod_with_containers(json!([{"name": "app", "volumeMounts": [
                {"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app"}]}])),
            patch: json!({"spec": {"containers": [{"name": "app", "volumeMounts": [
                {"mountPath": "/data", "readOnly": true}]}]}}),
            want: pod_with_containers(json!([{"name": "app", "volumeMounts": [
                {"name": "data", "mountPath": "/data", "readOnly": true}, {"name": "cfg", "mountPath": "/etc/app"}]}])),
        },
        Case {
            name: "an owner reference merges by uid",
            kind: "ReplicaSet",
            doc: json!({"metadata": {"ownerReferences": [{"uid": "u1", "kind": "Deployment", "name": "web", "controller": true}]}}),
            patch: json!({"metadata": {"ownerReferences": [{"uid": "u1", "blockOwnerDeletion": true}]}}),
            want: json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "kind": "Deployment", "name": "web", "controller": true, "blockOwnerDeletion": true}]}}),
        },
        Case {
            name: "the kubelet's status patch updates one pod condition by type",
            kind: "Pod",
            doc: json!({"status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}}),
            patch: json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "reason": null}]}}),
            want: json!({"status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True"}]}}),
        },
        Case {
            name: "a node address merges by type",
            kind: "Node",
            doc: json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}]}}),
            patch: json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}),
            want: json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}]}}),
        },
        Case {
            name: "a service port merges by port",
            kind: "Service",
            doc: json!({"spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}}),
            patch: json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
            want: json!({"spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 9443, "protocol": "TCP"}]}}),
        },
        Case {
            name: "a deployment condition merges by type",
            kind: "Deployment",
            doc: json!({"status": {"conditions": [
                {"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"}]}}),
            patch: json!({"status": {"conditions": [{"type": "Progressing", "reason": "NewReplicaSetAvailable"}]}}),
            want: json!({"status": {"conditions": [
                {"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}}),
        },
        Case {
            name: "tolerations are atomic and replaced",
            kind: "Pod",
            doc: json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}}),
            patch: json!({"spec": {"tolerations": [{"key": "c", "operator": "Equal", "value": "x", "effect": null}]}}),
            want: json!({"spec": {"tolerations": [{"key": "c", "operator": "Equal", "value": "x"}]}}),
        },
        Case {
            name: "node taints are atomic and replaced",
            kind: "Node",
            doc: json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}}),
            patch: json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}}),
            want: json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}}),
        },
        Case {
            name: "container args and envFrom are atomic and replaced",
            kind: "Pod",
            doc: pod_with_containers(json!([{"name": "app", "args": ["a", "b"],
                "envFrom": [{"configMapRef": {"name": "x"}}, {"secretRef": {"name": "y"}}]}])),
            patch: json!({"spec": {"containers": [{"name": "app", "args": ["c"],
                "envFrom": [{"configMapRef": {"name": "z"}}]}]}}),
            want: pod_with_containers(json!([{"name": "app", "args": ["c"],
                "envFrom": [{"configMapRef": {"name": "z"}}]}])),
        },
        Case {
            name: "a list the object lacks is taken from the patch",
            kind: "Pod",
            doc: json!({"spec": {}}),
            patch: json!({"spec": {"imagePullSecrets": [{"name": "registry"}], "hostAliases": [{"ip": "10.0.0.9", "hostnames": ["db"]}]}}),
            want: json!({"spec": {"imagePullSecrets": [{"name": "registry"}], "hostAliases": [{"ip": "10.0.0.9", "hostnames": ["db"]}]}}),
        },
        Case {
            name: "a node's podCIDRs merge as a set",
            kind: "Node",
            doc: json!({"spec": {"podCIDRs": ["10.244.1.0/24"]}}),
            patch: json!({"spec": {"podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]}}),
            want: json!({"spec": {"podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]}}),
        },
        Case {
            name: "finalizers merge as a set without duplicates",
            kind: "ConfigMap",
            doc: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["b", "c"]}}),
            want: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        },
        Case {
            name: "an empty list changes nothing in a merge list",
            kind: "Pod",
            doc: json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "app"}]}}),
            patch: json!({"metadata": {"finalizers": []}, "spec": {"containers": []}}),
            want: json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "app"}]}}),
        },
        Case {
            name: "an empty list empties an atomic list",
            kind: "Pod",
            doc: json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
            patch: json!({"spec": {"tolerations": []}}),
            want: json!({"spec": {"tolerations": []}}),
        },
        Case {
            name: "a list in a field the table does not know is replaced",
            kind: "Pod",
            doc: json!({"spec": {"nosuchlist": [{"name": "a", "x": 1}]}}),
            patch: json!({"spec": {"nosuchlist": [{"name": "a", "y": 2}]}}),
            want: json!({"spec": {"nosuchlist": [{"name": "a", "y": 2}]}}),
        },
    ]);
}

#[test]
fn merged_lists_are_ordered_as_kubernetes_orders_them() {
    let two = || {
        pod_with_containers(
            json!([{"name": "nginx", "image": "nginx:1.24"}, {"name": "sidecar", "image": "busybox"}]),
        )
    };
    let cases: &[(&str, Value, Value, &[&str])] = &[
        (
            "patching the first container keeps the order",
            two(),
            json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}),
            &["nginx", "sidecar"],
        ),
        (
            "patching the second container keeps the order",
            two(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "busybox:2"}]}}),
            &["nginx", "sidecar"],
        ),
        (
            // Kubernetes puts an element the live list lacks before the
            // live-only elements; kubectl apply avoids this with
            // $setElementOrder.
            "a new container goes before the live-only containers",
            two(),
            json!({"spec": {"containers": [{"name": "debug", "image": "busybox"}]}}),
            &["debug", "nginx", "sidecar"],
        ),
        (
            "a new container after a patched one follows it",
            two(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "b:2"}, {"name": "debug", "image": "busybox"}]}}),
            &["nginx", "sidecar", "debug"],
        ),
        (
            "the patch's order wins for the elements it names",
            pod_with_containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])),
            json!({"spec": {"containers": [{"name": "c"}, {"name": "a"}]}}),
            &["b", "c", "a"],
        ),
    ];
    for (name, doc, patch, want) in cases {
        let got = smp("Pod", doc, patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(names(&got["spec"]["containers"]), *want, "{name}");
    }

    let got = smp(
        "Pod",
        &json!({"metadata": {"finalizers": ["x", "y"]}}),
        &json!({"metadata": {"finalizers": ["z"]}}),
    )
    .expect("finalizers merge");
    assert_eq!(got, json!({"metadata": {"finalizers": ["z", "x", "y"]}}));
}

#[test]
fn set_element_order_fixes_the_order_of_a_merged_list() {
    let env = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|n| json!({"name": n, "value": n.to_lowercase()}))
            .collect()
    };
    let order = |names: &[&str]| -> Value { names.iter().map(|n| json!({"name": n})).collect() };
    let cases: &[(&str, Value, Value, &[&str])] = &[
        (
            "a reorder without content changes",
            pod_with_containers(json!([{"name": "app", "env": env(&["A", "B", "C"])}])),
            json!({"spec": {"containers": [{"name": "app", "$setElementOrder/env": order(&["C", "A", "B"])}]}}),
            &["C", "A", "B"],
        ),
        (
            "a new env var between two live ones",
            pod_with_containers(json!([{"name": "app", "env": env(&["A", "C"])}])),
            json!({"spec": {"containers": [{"name": "app",
                "$setElementOrder/env": order(&["A", "D", "C"]),
                "env": [{"name": "D", "value": "d"}]}]}}),
            &["A", "D", "C"],
        ),
        (
            "an env var the apply does not manage keeps its place",
            pod_with_containers(json!([{"name": "app", "env": env(&["A", "INJECTED", "C"])}])),
            json!({"spec": {"containers": [{"name": "app",
                "$setElementOrder/env": order(&["A", "C"]),
                "env": [{"name": "C", "value": "c2"}]}]}}),
            &["A", "INJECTED", "C"],
        ),
        (
            "a list the object lacks",
            pod_with_containers(json!([{"name": "app"}])),
            json!({"spec": {"containers": [{"name": "app",
                "$setElementOrder/env": order(&["B", "A"]),
                "env": env(&["B", "A"])}]}}),
            &["B", "A"],
        ),
    ];
    for (name, doc, patch, want) in cases {
        let got = smp("Pod", doc, patch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_no_directives(&got, name);
        assert_eq!(names(&got["spec"]["containers"][0]["env"]), *want, "{name}");
    }

    let got = smp(
        "Pod",
        &pod_with_containers(json!([{"name": "nginx"}])),
        &json!({"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"name": "sidecar", "image": "busybox"}]}}),
    )
    .expect("apply adds a container");
    assert_eq!(names(&got["spec"]["containers"]), ["nginx", "sidecar"]);

    let got = smp(
        "Pod",
        &json!({"metadata": {"finalizers": ["a", "b"]}}),
        &json!({"metadata": {"$setElementOrder/finalizers": ["b", "a", "c"], "finalizers": ["c"]}}),
    )
    .expect("primitive list order");
    assert_eq!(got, json!({"metadata": {"finalizers": ["b", "a", "c"]}}));
}

#[test]
fn patch_replace_replaces_a_map_or_a_whole_list() {
    check(vec![
        Case {
            name: "on a map the patch's members are all that is left",
            kind: "Pod",
            doc: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            want: json!({"metadata": {"labels": {"c": "3"}}}),
        },
        Case {
            name: "as a list element the patch's other elements are the list",
            kind: "Pod",
            doc: pod_with_containers(
                json!([{"name": "nginx", "image": "nginx"}, {"name": "sidecar", "image": "busybox"}]),
            ),
            patch: json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}),
            want: pod_with_containers(json!([{"name": "only", "image": "x"}])),
        },
        Case {
            name: "a replace directive alone empties the list",
            kind: "Pod",
            doc: json!({"spec": {"volumes": [{"name": "a", "emptyDir": {}}]}}),
            patch: json!({"spec": {"volumes": [{"$patch": "replace"}]}}),
            want: json!({"spec": {"volumes": []}}),
        },
        Case {
            name: "on a whole spec nested merge lists are rebuilt from the patch",
            kind: "Pod",
            doc: json!({"spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "a"}]}}),
            patch: json!({"spec": {"$patch": "replace", "containers": [{"name": "b", "image": "b", "ports": [{"containerPort": 80}]}]}}),
            want: json!({"spec": {"containers": [{"name": "b", "image": "b", "ports": [{"containerPort": 80}]}]}}),
        },
    ]);
}

#[test]
fn patch_delete_removes_a_map_or_a_list_element() {
    check(vec![
        Case {
            name: "a container is deleted by name",
            kind: "Deployment",
            doc: json!({"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx"}, {"name": "sidecar", "image": "busybox"}]}}}}),
            patch: json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
            want: json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
        },
        Case {
            name: "deleting a missing element changes nothing",
            kind: "Pod",
            doc: pod_with_containers(json!([{"name": "nginx"}])),
            patch: json!({"spec": {"containers": [{"name": "ghost", "$patch": "delete"}]}}),
            want: pod_with_containers(json!([{"name": "nginx"}])),
        },
        Case {
            name: "one env var is deleted while another is added",
            kind: "Pod",
            doc: pod_with_containers(
                json!([{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]}]}}),
            want: pod_with_containers(
                json!([{"name": "app", "env": [{"name": "C", "value": "3"}, {"name": "B", "value": "2"}]}]),
            ),
        },
        Case {
            name: "a map is deleted",
            kind: "Deployment",
            doc: json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}}}}}),
            patch: json!({"spec": {"template": {"metadata": {"annotations": {"$patch": "delete"}}}}}),
            want: json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}),
        },
        Case {
            name: "a volume is deleted by name",
            kind: "Pod",
            doc: json!({"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]}}),
            patch: json!({"spec": {"volumes": [{"name": "a", "$patch": "delete"}]}}),
            want: json!({"spec": {"volumes": [{"name": "b", "emptyDir": {}}]}}),
        },
    ]);
}

#[test]
fn retain_keys_keeps_only_the_listed_keys() {
    check(vec![
        Case {
            name: "a defaulted rollingUpdate goes when the strategy becomes Recreate",
            kind: "Deployment",
            doc: json!({"spec": {"strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "a key set to null need not be listed",
            kind: "Deployment",
            doc: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "a volume's source changes from emptyDir to a configMap",
            kind: "Pod",
            doc: json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}}),
            patch: json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}, {"name": "tmp"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]}}),
            want: json!({"spec": {"volumes": [{"name": "data", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}]}}),
        },
    ]);
}

#[test]
fn delete_from_primitive_list_removes_values() {
    check(vec![
        Case {
            name: "a finalizer is removed",
            kind: "Namespace",
            doc: json!({"metadata": {"finalizers": ["example.com/a", "example.com/b"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
            want: json!({"metadata": {"finalizers": ["example.com/b"]}}),
        },
        Case {
            name: "removing a missing value changes nothing",
            kind: "Pod",
            doc: json!({"metadata": {"finalizers": ["a"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["z"]}}),
            want: json!({"metadata": {"finalizers": ["a"]}}),
        },
        Case {
            name: "a list the object lacks is not created",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "kubectl apply removes one finalizer and keeps the order",
            kind: "Pod",
            doc: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {"$setElementOrder/finalizers": ["a", "c"], "$deleteFromPrimitiveList/finalizers": ["b"]}}),
            want: json!({"metadata": {"finalizers": ["a", "c"]}}),
        },
        Case {
            name: "a value both added and removed is removed",
            kind: "Pod",
            doc: json!({"metadata": {"finalizers": ["a"]}}),
            patch: json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["b"]}}),
            want: json!({"metadata": {"finalizers": ["a"]}}),
        },
    ]);
}

#[test]
fn directives_in_new_subtrees_are_resolved_not_stored() {
    check(vec![
        Case {
            name: "replace on a new map",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "a": "1"}}}),
            want: json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
        },
        Case {
            name: "delete on a new map",
            kind: "Pod",
            doc: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"$patch": "delete"}}}),
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "retainKeys on a new strategy",
            kind: "Deployment",
            doc: json!({"spec": {}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "deletions and orders inside a new merge list",
            kind: "Pod",
            doc: json!({"spec": {}}),
            patch: json!({"spec": {"containers": [
                {"name": "gone", "$patch": "delete"},
                {"name": "app", "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A", "value": "1"}],
                 "$deleteFromPrimitiveList/args": ["x"]}]}}),
            want: json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}}),
        },
        Case {
            name: "a directive inside an atomic list's element",
            kind: "Pod",
            doc: json!({"spec": {}}),
            patch: json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists", "$patch": "delete"}]}}),
            want: json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
        },
        Case {
            name: "a whole new object",
            kind: "Pod",
            doc: Value::Null,
            patch: json!({"metadata": {"name": "p", "$deleteFromPrimitiveList/finalizers": ["a"]},
                "spec": {"$setElementOrder/containers": [{"name": "c"}], "containers": [{"name": "c"}]}}),
            want: json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}),
        },
    ]);
}

const LAST_APPLIED_V1: &str = concat!(
    r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},"#,
    r#""name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"#,
    r#""template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":"A","value":"1"},"#,
    r#"{"name":"B","value":"2"},{"name":"C","value":"3"}],"image":"nginx:1.24","name":"nginx","#,
    r#""ports":[{"containerPort":80}]},{"command":["sleep","infinity"],"image":"busybox:1.36","name":"sidecar"}]}}}}"#,
    "\n"
);

const LAST_APPLIED_V2: &str = concat!(
    r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},"#,
    r#""name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"#,
    r#""strategy":{"type":"Recreate"},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":"#,
    r#"[{"env":[{"name":"A","value":"1"},{"name":"C","value":"3"}],"image":"nginx:1.25","name":"nginx","#,
    r#""ports":[{"containerPort":80}]},{"command":["sleep","infinity"],"image":"busybox:1.36","name":"sidecar"}]}}}}"#,
    "\n"
);

/// A deployment as the apiserver holds it after a first `kubectl apply`:
/// defaulted, with status.
fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "0b3e9f6c-7d0a-4a5e-9f43-2f1c1c3b1a11",
            "resourceVersion": "1042",
            "generation": 1,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED_V1
            }
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.24",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"},
                                {"name": "C", "value": "3"}
                            ],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        },
                        {
                            "name": "sidecar",
                            "image": "busybox:1.36",
                            "command": ["sleep", "infinity"],
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {}
                }
            }
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
            ]
        }
    })
}

#[test]
fn kubectl_apply_a_second_time_updates_the_image_env_strategy_and_last_applied() {
    // What kubectl apply sends after the manifest's image went to 1.25, env B
    // was removed and the strategy became Recreate.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": LAST_APPLIED_V2}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "image": "nginx:1.25",
                    "name": "nginx"
                }]
            }}
        }
    });
    let got = smp("Deployment", &live_deployment(), &patch).expect("apply");

    let mut want = live_deployment();
    set(
        &mut want,
        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
        json!(LAST_APPLIED_V2),
    );
    set(&mut want, "/spec/strategy", json!({"type": "Recreate"}));
    set(
        &mut want,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.25"),
    );
    set(
        &mut want,
        "/spec/template/spec/containers/0/env",
        json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]),
    );
    assert_eq!(got, want);
    assert_no_directives(&got, "second apply");
}

#[test]
fn kubectl_apply_adds_an_env_var_and_a_container_in_manifest_order() {
    let patch = json!({
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}, {"name": "metrics"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "AB"}, {"name": "C"}],
                 "env": [{"name": "AB", "value": "12"}], "name": "nginx"},
                {"image": "prom/exporter:1", "name": "metrics"}
            ]
        }}}
    });
    let got = smp("Deployment", &live_deployment(), &patch).expect("apply");
    let containers = &got["spec"]["template"]["spec"]["containers"];
    assert_eq!(names(containers), ["nginx", "sidecar", "metrics"]);
    assert_eq!(names(&containers[0]["env"]), ["A", "B", "AB", "C"]);
    assert_eq!(
        containers[2],
        json!({"name": "metrics", "image": "prom/exporter:1"})
    );
    assert_eq!(
        containers[1],
        live_deployment()["spec"]["template"]["spec"]["containers"][1]
    );
}

#[test]
fn kubectl_patch_strategic_on_a_deployment_keeps_the_other_containers() {
    // kubectl patch deployment web -p '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}}'
    let patch = json!({"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}});
    let got = smp("Deployment", &live_deployment(), &patch).expect("patch");
    let mut want = live_deployment();
    set(
        &mut want,
        "/spec/template/spec/containers/0/image",
        json!("nginx:1.25"),
    );
    assert_eq!(got, want);
}

#[test]
fn kubectl_patch_with_patch_delete_removes_a_container_by_name() {
    let patch =
        json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"sidecar"}]}}}});
    let got = smp("Deployment", &live_deployment(), &patch).expect("patch");
    let containers = &got["spec"]["template"]["spec"]["containers"];
    assert_eq!(names(containers), ["nginx"]);
    assert_eq!(
        containers[0],
        live_deployment()["spec"]["template"]["spec"]["containers"][0]
    );
}

#[test]
fn kubectl_patch_removes_a_finalizer_with_delete_from_primitive_list() {
    let mut doc = live_deployment();
    set(
        &mut doc,
        "/metadata",
        json!({"name": "web", "finalizers": ["example.com/protect", "foregroundDeletion"]}),
    );
    let patch =
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/protect"]}});
    let got = smp("Deployment", &doc, &patch).expect("patch");
    assert_eq!(
        got["metadata"],
        json!({"name": "web", "finalizers": ["foregroundDeletion"]})
    );
}

#[test]
fn malformed_strategic_merge_patches_fail_like_kubernetes() {
    let deployment = live_deployment();
    let cases: &[(&str, Value, u16, &str)] = &[
        (
            "a list is not a patch",
            json!([{"op": "add"}]),
            400,
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
        ),
        (
            "a string is not a patch",
            json!("spec"),
            400,
            "json: cannot unmarshal string into Go value of type map[string]interface {}",
        ),
        (
            "a container without its merge key",
            json!({"spec":{"template":{"spec":{"containers":[{"image":"nginx:1.25"}]}}}}),
            500,
            "map: map[image:nginx:1.25] does not contain declared merge key: name",
        ),
        (
            "a delete directive without the merge key",
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}),
            500,
            "map: map[$patch:delete] does not contain declared merge key: name",
        ),
        (
            "an env var without its merge key in a list the object lacks",
            json!({"spec":{"template":{"spec":{"initContainers":[{"name":"init","env":[{"value":"x"}]}]}}}}),
            500,
            "map: map[value:x] does not contain declared merge key: name",
        ),
        (
            "a port without its merge key",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"nginx","ports":[{"name":"http","protocol":"TCP"}]}]}}}}),
            500,
            "map: map[name:http protocol:TCP] does not contain declared merge key: containerPort",
        ),
        (
            "an unknown directive on a map",
            json!({"metadata":{"labels":{"$patch":"frobnicate"}}}),
            500,
            "unknown patch type: frobnicate in map: map[$patch:frobnicate]",
        ),
        (
            "an unknown directive in a list",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"nginx","$patch":"remove"}]}}}}),
            500,
            "unknown patch type: remove in map: map[$patch:remove name:nginx]",
        ),
        (
            "a merge directive in a list",
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}),
            500,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            "retainKeys that is not a list",
            json!({"spec":{"strategy":{"$retainKeys":"type","type":"Recreate"}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            "retainKeys that leaves out a key the patch sets",
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            "setElementOrder that is not a list",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":{"name":"nginx"}}}}}),
            400,
            "invalid patch format of setElementOrder list",
        ),
        (
            "a setElementOrder element without the merge key",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"image":"x"}]}}}}),
            500,
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            "deleteFromPrimitiveList that is not a list",
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}),
            400,
            "invalid patch format of primitive list",
        ),
        (
            "a list of lists",
            json!({"metadata":{"finalizers":[["a"]]}}),
            422,
            "lists of lists are not supported",
        ),
        (
            "a merge list of mixed element types",
            json!({"spec":{"template":{"spec":{"containers":["nginx"]}}}}),
            500,
            "list element types are not identical: ",
        ),
        (
            "setElementOrder and a patch list that is not a list",
            json!({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":{"name":"nginx"}}}}}),
            500,
            "expected a []interface {}, but received a map[string]interface {}",
        ),
    ];
    for (name, patch, code, message) in cases {
        let err = smp("Deployment", &deployment, patch).expect_err(name);
        assert_eq!(err.status_code(), *code, "{name}: {err}");
        assert!(err.to_string().starts_with(message), "{name}: {err}");
    }

    let err = smp(
        "Deployment",
        &deployment,
        &json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"nginx"}],
            "containers":[{"name":"sidecar","image":"busybox:2"}]}}}}),
    )
    .expect_err("the patch names a container the order lacks");
    assert_eq!(err.status_code(), 500);
    assert_eq!(
        err.to_string(),
        "The order in patch list:\n[map[image:busybox:2 name:sidecar]]\n doesn't match $setElementOrder list:\n[map[name:nginx]]\n"
    );

    let err = apply_strategic_merge_patch(
        &json!(["not", "an", "object"]),
        &json!({}),
        schema_for_kind("Pod").expect("pods"),
    )
    .expect_err("a list is not an object");
    assert!(matches!(err, PatchError::DocumentNotAnObject));
}

#[test]
fn a_merge_list_of_objects_without_a_merge_key_cannot_merge() {
    let err = apply_strategic_merge_patch(
        &json!({"metadata": {"finalizers": [{"a": 1}]}}),
        &json!({"metadata": {"finalizers": [{"b": 2}]}}),
        schema_for_kind("Pod").expect("pods"),
    )
    .expect_err("finalizers hold strings");
    assert_eq!(
        err.to_string(),
        "cannot merge lists without merge key for type map"
    );
}
