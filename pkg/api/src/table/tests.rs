use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use super::*;
use crate::registry::{lookup, ResourceInfo};

// The entry points are `ResourceInfo`'s methods now; these keep the cases as they read.

fn column_definitions(info: &ResourceInfo) -> &'static [Column] {
    info.column_definitions()
}

fn row_cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    info.row_cells(obj, now)
}

fn to_table(
    info: &ResourceInfo,
    objects: &[Value],
    list_meta: Value,
    opts: TableOptions,
    now: Timestamp,
) -> Value {
    info.to_table(objects, list_meta, opts, now)
}

fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// A timestamp `secs` seconds before [`now`].
fn ago(secs: i64) -> String {
    (now() - SignedDuration::from_secs(secs)).to_string()
}

fn cells(group: &str, plural: &str, obj: &Value) -> Vec<Value> {
    row_cells(lookup(group, "v1", plural).unwrap(), obj, now())
}

#[test]
fn durations_print_like_kubernetes_human_duration() {
    let cases: &[(i64, &str)] = &[
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (190, "3m10s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (51 * 3600, "2d3h"),
        (7 * 86400, "7d"),
        (45 * 86400, "45d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(
            human_duration(SignedDuration::from_secs(*secs)),
            *want,
            "{secs}"
        );
    }
}

#[test]
fn ages_are_unknown_without_a_timestamp() {
    assert_eq!(translate_timestamp_since(None, now()), "<unknown>");
    assert_eq!(
        translate_timestamp_since(Some("garbage"), now()),
        "<unknown>"
    );
    assert_eq!(translate_timestamp_since(Some(&ago(30)), now()), "30s");
}

fn pod(status: Value) -> Value {
    json!({"metadata": {"name": "web", "creationTimestamp": ago(65)},
           "spec": {"containers": [{"name": "a"}]}, "status": status})
}

#[test]
fn pod_status_follows_kubectl_rules() {
    let cases = [
        (pod(json!({})), "", "0/1"),
        (pod(json!({"phase": "Pending"})), "Pending", "0/1"),
        (
            pod(
                json!({"phase": "Pending", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            ),
            "ContainerCreating",
            "0/1",
        ),
        (
            pod(
                json!({"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": ago(60)}}}]}),
            ),
            "Running",
            "1/1",
        ),
        (
            pod(
                json!({"phase": "Running", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
            ),
            "CrashLoopBackOff",
            "0/1",
        ),
        (
            pod(
                json!({"phase": "Succeeded", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
            ),
            "Completed",
            "0/1",
        ),
        (
            pod(
                json!({"phase": "Failed", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
            ),
            "Signal:9",
            "0/1",
        ),
        (
            pod(
                json!({"phase": "Failed", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}),
            ),
            "ExitCode:2",
            "0/1",
        ),
        (
            pod(json!({"phase": "Failed", "reason": "Evicted"})),
            "Evicted",
            "0/1",
        ),
        (
            pod(
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            "SchedulingGated",
            "0/1",
        ),
    ];
    for (p, reason, ready) in cases {
        let c = cells("", "pods", &p);
        assert_eq!(
            (c[2].as_str().unwrap(), c[1].as_str().unwrap()),
            (reason, ready),
            "{p}"
        );
    }
}

#[test]
fn deleting_pods_are_terminating_unless_finished() {
    let mut p = pod(json!({"phase": "Running"}));
    p["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(pod_status_reason(&p), "Terminating");
    p["status"]["phase"] = json!("Succeeded");
    assert_eq!(pod_status_reason(&p), "Succeeded");
}

#[test]
fn init_containers_show_their_progress() {
    let p = |statuses: Value| {
        json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
               "status": {"phase": "Pending", "initContainerStatuses": statuses}})
    };
    let cases = [
        (
            p(
                json!([{"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                     {"name": "i2", "restartCount": 0, "state": {"running": {}}}]),
            ),
            "Init:1/2",
        ),
        (
            p(
                json!([{"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
            ),
            "Init:CrashLoopBackOff",
        ),
        (
            p(
                json!([{"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
            ),
            "Init:Error",
        ),
        (
            p(json!([{"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 1}}}])),
            "Init:ExitCode:1",
        ),
        (
            p(
                json!([{"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]),
            ),
            "Init:0/2",
        ),
    ];
    for (pod, want) in cases {
        assert_eq!(pod_status_reason(&pod), want, "{pod}");
    }
}

#[test]
fn sidecar_init_containers_count_towards_ready() {
    let p = json!({"metadata": {"name": "p"},
        "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 0, "state": {"running": {}}}],
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
    let c = cells("", "pods", &p);
    assert_eq!(
        (c[1].as_str().unwrap(), c[2].as_str().unwrap()),
        ("2/2", "Running")
    );
}

#[test]
fn pod_rows_have_wide_columns_and_recent_restarts() {
    let p = json!({"metadata": {"name": "web", "creationTimestamp": ago(3600 * 5)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "a"}]},
        "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(130)}}}]}});
    assert_eq!(
        cells("", "pods", &p),
        vec![
            json!("web"),
            json!("1/1"),
            json!("Running"),
            json!("2 (2m10s ago)"),
            json!("5h"),
            json!("10.244.1.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn workload_rows_count_replicas_and_list_containers() {
    let d = json!({"metadata": {"name": "nginx", "creationTimestamp": ago(10)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        cells("apps", "deployments", &d),
        vec![
            json!("nginx"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("10s"),
            json!("nginx,side"),
            json!("nginx,busybox"),
            json!("app=nginx")
        ]
    );
    let rs = json!({"metadata": {"name": "nginx-abc", "creationTimestamp": ago(10)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx", "pod-template-hash": "abc"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        cells("apps", "replicasets", &rs),
        vec![
            json!("nginx-abc"),
            json!(3),
            json!(3),
            json!(1),
            json!("10s"),
            json!("nginx"),
            json!("nginx"),
            json!("app=nginx,pod-template-hash=abc")
        ]
    );
}

#[test]
fn service_rows_show_addresses_and_ports_by_type() {
    let svc = |spec: Value, status: Value| json!({"metadata": {"name": "web", "creationTimestamp": ago(1)}, "spec": spec, "status": status});
    let cases = [
        (
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"b": "2", "a": "1"},
                       "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
                json!({}),
            ),
            vec![
                "web",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "80/TCP,53/UDP",
                "1s",
                "a=1,b=2",
            ],
        ),
        (
            svc(
                json!({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                json!({}),
            ),
            vec![
                "web",
                "NodePort",
                "10.96.0.11",
                "<none>",
                "80:30080/TCP",
                "1s",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
                json!({}),
            ),
            vec![
                "web",
                "LoadBalancer",
                "10.96.0.12",
                "<pending>",
                "443:31443/TCP",
                "1s",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": []}),
                json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}),
            ),
            vec![
                "web",
                "LoadBalancer",
                "10.96.0.12",
                "1.2.3.4,lb.example",
                "<none>",
                "1s",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "ExternalName", "externalName": "example.com"}),
                json!({}),
            ),
            vec![
                "web",
                "ExternalName",
                "<none>",
                "example.com",
                "<none>",
                "1s",
                "<none>",
            ],
        ),
        (
            svc(
                json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 5432, "protocol": "TCP"}]}),
                json!({}),
            ),
            vec![
                "web",
                "ClusterIP",
                "None",
                "<none>",
                "5432/TCP",
                "1s",
                "<none>",
            ],
        ),
    ];
    for (s, want) in cases {
        let want: Vec<Value> = want.into_iter().map(|w| json!(w)).collect();
        assert_eq!(cells("", "services", &s), want, "{s}");
    }
}

#[test]
fn node_rows_show_readiness_roles_and_addresses() {
    let node = json!({"metadata": {"name": "n1", "creationTimestamp": ago(86400 * 3),
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.24"}}});
    assert_eq!(
        cells("", "nodes", &node),
        vec![
            json!("n1"),
            json!("NotReady,SchedulingDisabled"),
            json!("control-plane,worker"),
            json!("3d"),
            json!("v1.33.0"),
            json!("172.18.0.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0"),
            json!("containerd://1.7.24")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    let c = cells("", "nodes", &bare);
    assert_eq!(
        (
            c[1].as_str().unwrap(),
            c[2].as_str().unwrap(),
            c[3].as_str().unwrap(),
            c[7].as_str().unwrap()
        ),
        ("Unknown", "<none>", "<unknown>", "<unknown>")
    );
}

#[test]
fn event_rows_show_when_what_and_who() {
    let ev = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Pulled",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
        "message": " Successfully pulled image \"nginx\" \n", "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(300), "lastTimestamp": ago(60), "count": 3});
    assert_eq!(
        cells("", "events", &ev),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web"),
            json!("spec.containers{nginx}"),
            json!("kubelet, n1"),
            json!("Successfully pulled image \"nginx\""),
            json!("5m"),
            json!(3),
            json!("web.1")
        ]
    );
    let new_style = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "eventTime": ago(20),
        "reportingController": "default-scheduler", "type": "Normal", "reason": "Scheduled", "regarding": {"kind": "Pod", "name": "web"},
        "note": "Successfully assigned default/web to n1"});
    let c = cells("events.k8s.io", "events", &new_style);
    assert_eq!(
        c[..6].to_vec(),
        vec![
            json!("20s"),
            json!("Normal"),
            json!("Scheduled"),
            json!("pod/web"),
            json!(""),
            json!("default-scheduler")
        ]
    );
    assert_eq!(c[8], json!(1));
}

#[test]
fn simple_kinds_have_their_kubernetes_cells() {
    let meta = json!({"name": "x", "creationTimestamp": ago(7)});
    let cases: Vec<(&str, &str, Value, Vec<Value>)> = vec![
        (
            "",
            "namespaces",
            json!({"metadata": meta, "status": {"phase": "Active"}}),
            vec![json!("x"), json!("Active"), json!("7s")],
        ),
        (
            "",
            "configmaps",
            json!({"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": ""}}),
            vec![json!("x"), json!(2), json!("7s")],
        ),
        (
            "",
            "secrets",
            json!({"metadata": meta, "type": "Opaque", "data": {"a": "eA=="}}),
            vec![json!("x"), json!("Opaque"), json!(1), json!("7s")],
        ),
        (
            "",
            "serviceaccounts",
            json!({"metadata": meta}),
            vec![json!("x"), json!(0), json!("7s")],
        ),
        (
            "coordination.k8s.io",
            "leases",
            json!({"metadata": meta, "spec": {"holderIdentity": "a1"}}),
            vec![json!("x"), json!("a1"), json!("7s")],
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": meta, "roleRef": {"kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "User", "name": "bob"}, {"kind": "User", "name": "amy"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "d"}]}),
            vec![
                json!("x"),
                json!("ClusterRole/view"),
                json!("7s"),
                json!("bob, amy"),
                json!(""),
                json!("d:sa"),
            ],
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "view", "creationTimestamp": "2025-01-02T03:04:05Z"}}),
            vec![json!("view"), json!("2025-01-02T03:04:05Z")],
        ),
    ];
    for (g, p, obj, want) in cases {
        assert_eq!(cells(g, p, &obj), want, "{p}");
    }
}

#[test]
fn every_kind_has_as_many_cells_as_columns() {
    for r in crate::registry::RESOURCES {
        let cols = column_definitions(r);
        assert!(!cols.is_empty(), "{}", r.kind);
        let obj = json!({"metadata": {"name": "x"}});
        assert_eq!(row_cells(r, &obj, now()).len(), cols.len(), "{}", r.kind);
    }
}

#[test]
fn pod_columns_are_kubernetes_columns_with_wide_ones_at_priority_one() {
    let cols = column_definitions(lookup("", "v1", "pods").unwrap());
    let names: Vec<(&str, i32)> = cols.iter().map(|c| (c.name, c.priority)).collect();
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    assert_eq!(cols[0].format, "name");
    assert!(
        cols[0]
            .description
            .starts_with("Name must be unique within a namespace."),
        "{}",
        cols[0].description
    );
    assert!(
        cols[4]
            .description
            .starts_with("CreationTimestamp is a timestamp"),
        "{}",
        cols[4].description
    );
    let names = |plural: &str, group: &str| -> Vec<&str> {
        column_definitions(lookup(group, "v1", plural).unwrap())
            .iter()
            .filter(|c| c.priority == 0)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        names("deployments", "apps"),
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(
        names("replicasets", "apps"),
        ["Name", "Desired", "Current", "Ready", "Age"]
    );
    assert_eq!(
        names("services", ""),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    assert_eq!(
        names("nodes", ""),
        ["Name", "Status", "Roles", "Age", "Version"]
    );
    assert_eq!(
        names("events", ""),
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
    assert_eq!(names("secrets", ""), ["Name", "Type", "Data", "Age"]);
    assert_eq!(
        names("leases", "coordination.k8s.io"),
        ["Name", "Holder", "Age"]
    );
    assert_eq!(
        names("roles", "rbac.authorization.k8s.io"),
        ["Name", "Created At"]
    );
}

#[test]
fn tables_carry_partial_metadata_by_default() {
    let info = lookup("", "v1", "configmaps").unwrap();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "7"}, "data": {}});
    let t = to_table(
        info,
        std::slice::from_ref(&obj),
        json!({"resourceVersion": "9"}),
        TableOptions::default(),
        now(),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "9"}));
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(
        t["columnDefinitions"][1],
        json!({"name": "Data", "type": "string", "format": "", "description": t["columnDefinitions"][1]["description"], "priority": 0})
    );
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "c", "namespace": "d", "resourceVersion": "7"}})
    );
    let full = to_table(
        info,
        std::slice::from_ref(&obj),
        json!({}),
        TableOptions {
            include_object: IncludeObject::Object,
            no_headers: true,
        },
        now(),
    );
    assert_eq!(full["rows"][0]["object"], obj);
    assert_eq!(full["columnDefinitions"], Value::Null);
    let none = to_table(
        info,
        &[obj],
        json!({}),
        TableOptions {
            include_object: IncludeObject::None,
            no_headers: false,
        },
        now(),
    );
    assert_eq!(none["rows"][0]["object"], Value::Null);
    let empty = to_table(info, &[], json!({}), TableOptions::default(), now());
    assert_eq!(empty["rows"], json!([]));
}

#[test]
fn finished_pods_carry_completed_row_conditions() {
    let info = lookup("", "v1", "pods").unwrap();
    let t = to_table(
        info,
        &[pod(json!({"phase": "Succeeded"}))],
        json!({}),
        TableOptions::default(),
        now(),
    );
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    let t = to_table(
        info,
        &[pod(json!({"phase": "Running"}))],
        json!({}),
        TableOptions::default(),
        now(),
    );
    assert!(t["rows"][0].get("conditions").is_none());
}

#[test]
fn include_object_parses_kubernetes_values() {
    assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
    assert_eq!(IncludeObject::parse("all"), None);
}

#[test]
fn a_scale_prints_name_desired_and_available() {
    let scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "resourceVersion": "7"},
        "spec": {"replicas": 5}, "status": {"replicas": 2, "selector": "app=web"}});
    let t = scale_table(&scale, TableOptions::default());
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Desired", "Available"]);
    assert_eq!(t["rows"][0]["cells"], json!(["web", 5, 2]));
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
}
