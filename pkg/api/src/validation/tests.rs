use serde_json::{json, Value};

use super::*;
use crate::registry::{lookup, ResourceInfo};

// The entry points are `ResourceInfo`'s methods now; these keep the cases as they read.

fn default_object(info: &ResourceInfo, obj: &mut Value) {
    info.default_object(obj)
}

fn validate_create(info: &ResourceInfo, obj: &Value) -> Result<(), Status> {
    info.validate_create(obj)
}

fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), Status> {
    info.validate_update(new, old)
}

fn validate_status_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), Status> {
    info.validate_status_update(new, old)
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn info(group: &str, plural: &str) -> &'static ResourceInfo {
    lookup(group, "v1", plural).unwrap()
}

/// The object as the apiserver validates it: defaulted first.
fn defaulted(i: &ResourceInfo, mut v: Value) -> Value {
    default_object(i, &mut v);
    v
}

fn create_message(group: &str, plural: &str, obj: Value) -> Option<String> {
    let i = info(group, plural);
    validate_create(i, &defaulted(i, obj))
        .err()
        .map(|s| s.message)
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "x", "namespace": "default"}, "spec": spec})
}

fn deployment(selector: Option<Value>, template_labels: Value) -> Value {
    let mut spec = json!({
        "template": {"metadata": {"labels": template_labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
    });
    if let Some(s) = selector {
        spec["selector"] = s;
    }
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn invalid_pods_are_refused_with_kubernetes_messages() {
    let cases = [
        (pod(json!({})), r#"Pod "x" is invalid: spec.containers: Required value"#.to_string()),
        (
            pod(json!({"containers": [{"name": "nginx"}]})),
            r#"Pod "x" is invalid: spec.containers[0].image: Required value"#.to_string(),
        ),
        (
            json!({"metadata": {"name": "Foo", "namespace": "default"}, "spec": {"containers": [{"name": "nginx"}]}}),
            format!(
                r#"Pod "Foo" is invalid: [metadata.name: Invalid value: "Foo": {SUBDOMAIN_MSG}, spec.containers[0].image: Required value]"#
            ),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]})),
            r#"Pod "x" is invalid: spec.containers[1].name: Duplicate value: "a""#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "Web_1", "image": "x"}]})),
            format!(r#"Pod "x" is invalid: spec.containers[0].name: Invalid value: "Web_1": {LABEL_MSG}"#),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}]})),
            r#"Pod "x" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]})),
            r#"Pod "x" is invalid: spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#.to_string(),
        ),
        (
            pod(json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]})),
            r#"Pod "x" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#.to_string(),
        ),
        (
            pod(json!({"activeDeadlineSeconds": 0, "containers": [{"name": "a", "image": "x"}]})),
            r#"Pod "x" is invalid: spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Sometimes"}]})),
            r#"Pod "x" is invalid: spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never""#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": " x"}]})),
            r#"Pod "x" is invalid: spec.containers[0].image: Invalid value: " x": must not have leading or trailing whitespace"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]})),
            r#"Pod "x" is invalid: spec.containers[0].volumeMounts[0].name: Not found: "data""#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]})),
            r#"Pod "x" is invalid: spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]})),
            r#"Pod "x" is invalid: spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]})),
            r#"Pod "x" is invalid: spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x"}], "tolerations": [{"operator": "Equal", "value": "v"}]})),
            r#"Pod "x" is invalid: spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#.to_string(),
        ),
        (
            pod(json!({"containers": [{"name": "a", "image": "x"}], "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}]})),
            r#"Pod "x" is invalid: spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"#.to_string(),
        ),
        (
            json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
            r#"Pod "x" is invalid: metadata.namespace: Required value"#.to_string(),
        ),
        (
            json!({"metadata": {"namespace": "default"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
            r#"Pod "" is invalid: metadata.name: Required value: name or generateName is required"#.to_string(),
        ),
        (
            json!({"metadata": {"name": "x", "namespace": "default", "labels": {"-bad": "v"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
            r#"Pod "x" is invalid: metadata.labels: Invalid value: "-bad": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#.to_string(),
        ),
        (
            json!({"metadata": {"name": "x", "namespace": "default", "finalizers": ["custom"]}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
            r#"Pod "x" is invalid: metadata.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified"#.to_string(),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(
            create_message("", "pods", obj.clone()).as_deref(),
            Some(want.as_str()),
            "{obj}"
        );
    }
}

#[test]
fn valid_objects_of_every_kind_pass() {
    let cases = [
        (
            "",
            "pods",
            pod(
                json!({"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}]}]}),
            ),
        ),
        (
            "apps",
            "deployments",
            deployment(
                Some(json!({"matchLabels": {"app": "web"}})),
                json!({"app": "web"}),
            ),
        ),
        ("", "namespaces", json!({"metadata": {"name": "team-a"}})),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ),
        (
            "",
            "configmaps",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a.conf": "x"}}),
        ),
        (
            "",
            "secrets",
            json!({"metadata": {"name": "s", "namespace": "d"}, "stringData": {"password": "x"}}),
        ),
        (
            "",
            "serviceaccounts",
            json!({"metadata": {"name": "default", "namespace": "d"}}),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
        ),
        (
            "",
            "services",
            json!({"metadata": {"name": "ext", "namespace": "d"}, "spec": {"type": "ExternalName", "externalName": "example.com."}}),
        ),
        (
            "",
            "events",
            json!({"metadata": {"name": "e.1", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started"}),
        ),
        (
            "coordination.k8s.io",
            "leases",
            json!({"metadata": {"name": "kube-scheduler", "namespace": "kube-system"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "system:reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            json!({"metadata": {"name": "admins"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "system:masters"}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "rb", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
        ),
    ];
    for (g, p, obj) in cases {
        assert_eq!(create_message(g, p, obj.clone()), None, "{obj}");
    }
}

#[test]
fn deployments_need_a_selector_that_matches_their_template() {
    let cases = [
        (
            deployment(None, json!({"app": "web"})),
            r#"Deployment.apps "web" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`]"#,
        ),
        (
            deployment(
                Some(json!({"matchLabels": {"app": "db"}})),
                json!({"app": "web"}),
            ),
            r#"Deployment.apps "web" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#,
        ),
        (
            deployment(Some(json!({})), json!({"app": "web"})),
            r#"Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"#,
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(
            create_message("apps", "deployments", obj).as_deref(),
            Some(want)
        );
    }
}

#[test]
fn deployment_specs_are_checked_field_by_field() {
    let base = || {
        deployment(
            Some(json!({"matchLabels": {"app": "web"}})),
            json!({"app": "web"}),
        )
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = base();
        f(&mut d);
        d
    };
    let cases = [
        (
            with(&|d| d["spec"]["replicas"] = json!(-1)),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            with(&|d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never")),
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
        ),
        (
            with(&|d| d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}})),
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            with(&|d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ),
        (
            with(&|d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x"}})),
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ),
        (
            with(&|d| d["spec"]["strategy"] = json!({"type": "Blue"})),
            r#"spec.strategy: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate""#,
        ),
        (
            with(&|d| d["spec"]["progressDeadlineSeconds"] = json!(5)),
            "",
        ),
        (
            with(&|d| {
                d["spec"]["progressDeadlineSeconds"] = json!(5);
                d["spec"]["minReadySeconds"] = json!(10);
            }),
            "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
        ),
    ];
    for (obj, want) in cases {
        let got = create_message("apps", "deployments", obj.clone());
        if want.is_empty() {
            assert_eq!(got, None, "{obj}");
        } else {
            assert_eq!(
                got,
                Some(format!(r#"Deployment.apps "web" is invalid: {want}"#)),
                "{obj}"
            );
        }
    }
}

#[test]
fn replica_sets_follow_the_same_selector_rules() {
    let rs = json!({"metadata": {"name": "web-1", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    assert_eq!(
        create_message("apps", "replicasets", rs).as_deref(),
        Some(
            r#"ReplicaSet.apps "web-1" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`"#
        )
    );
}

#[test]
fn invalid_services_are_refused_with_kubernetes_messages() {
    let svc = |name: &str, spec: Value| json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec});
    let cases = [
        (svc("web", json!({"selector": {"app": "web"}})), r#"Service "web" is invalid: spec.ports: Required value"#.to_string()),
        (
            svc("1web", json!({"ports": [{"port": 80}]})),
            format!(r#"Service "1web" is invalid: metadata.name: Invalid value: "1web": {DNS1035_MSG}"#),
        ),
        (
            svc("web", json!({"type": "Magic", "ports": [{"port": 80}]})),
            r#"Service "web" is invalid: spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#.to_string(),
        ),
        (
            svc("web", json!({"ports": [{"port": 0}]})),
            // The target port defaults to the port, so Kubernetes reports both.
            r#"Service "web" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]"#.to_string(),
        ),
        (
            svc("web", json!({"ports": [{"port": 80}, {"port": 443}]})),
            r#"Service "web" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]"#.to_string(),
        ),
        (
            svc("web", json!({"ports": [{"port": 80, "nodePort": 30080}]})),
            r#"Service "web" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"#.to_string(),
        ),
        (
            svc("web", json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]})),
            r#"Service "web" is invalid: spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None""#.to_string(),
        ),
        (
            svc("web", json!({"type": "ExternalName"})),
            r#"Service "web" is invalid: spec.externalName: Required value"#.to_string(),
        ),
        (
            svc("web", json!({"clusterIP": "10.0.0.300", "clusterIPs": ["10.0.0.300"], "ports": [{"port": 80}]})),
            r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#.to_string(),
        ),
        (
            svc("web", json!({"ports": [{"port": 80, "targetPort": "http--x"}]})),
            r#"Service "web" is invalid: spec.ports[0].targetPort: Invalid value: "http--x": must not contain consecutive hyphens"#.to_string(),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(
            create_message("", "services", obj.clone()).as_deref(),
            Some(want.as_str()),
            "{obj}"
        );
    }
}

#[test]
fn configmaps_and_secrets_check_keys_sizes_and_types() {
    let big = "x".repeat(1024 * 1024 + 1);
    let cases = [
        (
            "configmaps",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a b": "x"}}),
            r#"ConfigMap "c" is invalid: data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
        ),
        (
            "configmaps",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": big}}),
            r#"ConfigMap "c" is invalid: []: Too long: may not be more than 1048576 bytes"#,
        ),
        (
            "configmaps",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "x"}, "binaryData": {"a": "eA=="}}),
            r#"ConfigMap "c" is invalid: data[a]: Invalid value: "a": duplicate of key present in binaryData"#,
        ),
        (
            "secrets",
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
            r#"Secret "s" is invalid: data[tls.key]: Required value"#,
        ),
        (
            "secrets",
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/service-account-token"}),
            r#"Secret "s" is invalid: metadata.annotations[kubernetes.io/service-account.name]: Required value"#,
        ),
        (
            "secrets",
            json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"..": "eA=="}}),
            r#"Secret "s" is invalid: data[..]: Invalid value: "..": must not be '..'"#,
        ),
    ];
    for (plural, obj, want) in cases {
        assert_eq!(create_message("", plural, obj).as_deref(), Some(want));
    }
}

#[test]
fn other_kinds_are_refused_with_kubernetes_messages() {
    let cases = [
        (
            "",
            "namespaces",
            json!({"metadata": {"name": "team.a"}}),
            r#"Namespace "team.a" is invalid: metadata.name: Invalid value: "team.a": must not contain dots"#,
        ),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "n", "namespace": "default"}}),
            r#"Node "n" is invalid: metadata.namespace: Forbidden: not allowed on this type"#,
        ),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "Sometimes"}]}}),
            r#"Node "n" is invalid: spec.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
        ),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.244.0.0/24", "10.245.0.0/24"]}}),
            r#"Node "n" is invalid: spec.podCIDRs: Invalid value: []string{"10.244.0.0/24", "10.245.0.0/24"}: may specify no more than one CIDR for each IP family"#,
        ),
        (
            "coordination.k8s.io",
            "leases",
            json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}),
            r#"Lease.coordination.k8s.io "l" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"#,
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "rb", "namespace": "d"}, "roleRef": {"kind": "Thing", "name": "r"}}),
            r#"RoleBinding.rbac.authorization.k8s.io "rb" is invalid: roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole""#,
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
            r#"ClusterRoleBinding.rbac.authorization.k8s.io "b" is invalid: subjects[0].namespace: Required value"#,
        ),
        (
            "rbac.authorization.k8s.io",
            "roles",
            json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"verbs": ["get"]}]}),
            r#"Role.rbac.authorization.k8s.io "r" is invalid: [rules[0].apiGroups: Required value: resource rules must supply at least one api group, rules[0].resources: Required value: resource rules must supply at least one resource]"#,
        ),
        (
            "",
            "events",
            json!({"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}),
            r#"Event "e" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace"#,
        ),
        (
            "",
            "events",
            json!({"metadata": {"name": "a/b", "namespace": "default"}, "involvedObject": {"namespace": "default"}}),
            r#"Event "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain '/'"#,
        ),
    ];
    for (g, p, obj, want) in cases {
        assert_eq!(
            create_message(g, p, obj.clone()).as_deref(),
            Some(want),
            "{obj}"
        );
    }
}

#[test]
fn events_k8s_io_events_get_strict_validation() {
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}, "note": "hi"});
    assert_eq!(
        create_message("events.k8s.io", "events", ev).as_deref(),
        Some(
            r#"Event.events.k8s.io "e" is invalid: [eventTime: Required value, type: Invalid value: "": has invalid value: ]"#
        )
    );
    let good = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "kubelet", "reportingInstance": "n1",
        "action": "Started", "reason": "Started", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    assert_eq!(
        create_message("events.k8s.io", "events", good.clone()),
        None
    );
    let mut missing = good;
    missing
        .as_object_mut()
        .unwrap()
        .remove("reportingController");
    assert_eq!(
        create_message("events.k8s.io", "events", missing).as_deref(),
        // An empty controller is also not a qualified name; Kubernetes reports all three.
        Some(
            r#"Event.events.k8s.io "e" is invalid: [reportingController: Required value, reportingController: Invalid value: "": name part must be non-empty, reportingController: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]"#
        )
    );
}

fn update_message(group: &str, plural: &str, new: Value, old: Value) -> Option<String> {
    let i = info(group, plural);
    validate_update(i, &defaulted(i, new), &defaulted(i, old))
        .err()
        .map(|s| s.message)
}

#[test]
fn pod_updates_may_change_only_images_deadlines_and_tolerations() {
    let base = json!({"metadata": {"name": "x", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "a", "image": "nginx:1"}], "nodeName": "n1",
                 "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = base.clone();
        f(&mut p);
        p
    };
    let ok = [
        with(&|p| p["spec"]["containers"][0]["image"] = json!("nginx:2")),
        with(&|p| p["spec"]["activeDeadlineSeconds"] = json!(30)),
        with(&|p| p["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10)),
        with(&|p| {
            p["spec"]["tolerations"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "z", "operator": "Exists"}))
        }),
        with(&|p| p["metadata"]["labels"] = json!({"a": "b"})),
    ];
    for new in ok {
        assert_eq!(
            update_message("", "pods", new.clone(), base.clone()),
            None,
            "{new}"
        );
    }
    let msg = update_message(
        "",
        "pods",
        with(&|p| p["spec"]["nodeName"] = json!("n2")),
        base.clone(),
    )
    .unwrap();
    assert!(
        msg.starts_with("Pod \"x\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{msg}"
    );
    assert!(msg.contains("spec.nodeName: \"n1\" -> \"n2\""), "{msg}");
    assert_eq!(
        update_message(
            "",
            "pods",
            with(&|p| p["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "b", "image": "x"}))),
            base.clone()
        )
        .as_deref(),
        Some(
            r#"Pod "x" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers"#
        )
    );
    assert_eq!(
        update_message(
            "",
            "pods",
            with(&|p| p["spec"]["tolerations"] = json!([])),
            base.clone()
        )
        .as_deref(),
        Some(
            r#"Pod "x" is invalid: spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"#
        )
    );
    let with_deadline = with(&|p| p["spec"]["activeDeadlineSeconds"] = json!(30));
    assert_eq!(
        update_message(
            "",
            "pods",
            with(&|p| p["spec"]["activeDeadlineSeconds"] = json!(60)),
            with_deadline.clone()
        )
        .as_deref(),
        Some(
            r#"Pod "x" is invalid: spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"#
        )
    );
    assert_eq!(
        update_message("", "pods", base.clone(), with_deadline).as_deref(),
        Some(
            r#"Pod "x" is invalid: spec.activeDeadlineSeconds: Invalid value: "null": must not update from a positive integer to nil value"#
        )
    );
    assert_eq!(
        update_message(
            "",
            "pods",
            with(&|p| p["metadata"]["uid"] = json!("u2")),
            base.clone()
        )
        .as_deref(),
        Some(r#"Pod "x" is invalid: metadata.uid: Invalid value: "u2": field is immutable"#)
    );
}

#[test]
fn deployment_selectors_are_immutable() {
    let old = deployment(
        Some(json!({"matchLabels": {"app": "web"}})),
        json!({"app": "web", "v": "2"}),
    );
    let new = deployment(
        Some(json!({"matchLabels": {"app": "web", "v": "2"}})),
        json!({"app": "web", "v": "2"}),
    );
    assert_eq!(
        update_message("apps", "deployments", new, old.clone()).as_deref(),
        Some(
            r#"Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
        )
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert_eq!(update_message("apps", "deployments", scaled, old), None);
}

#[test]
fn identity_and_allocations_cannot_change_on_update() {
    let ns = |name: &str| json!({"metadata": {"name": name}});
    let msg = update_message("", "namespaces", ns("b"), ns("a")).unwrap();
    assert_eq!(
        msg,
        r#"Namespace "b" is invalid: metadata.name: Invalid value: "b": field is immutable"#
    );

    let svc = |ip: &str| json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80}]}});
    assert_eq!(
        update_message("", "services", svc("10.96.0.11"), svc("10.96.0.10")).as_deref(),
        Some(
            r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set"#
        )
    );

    let rb = |role: &str| json!({"metadata": {"name": "rb", "namespace": "d"}, "roleRef": {"kind": "Role", "name": role}});
    assert_eq!(
        update_message(
            "rbac.authorization.k8s.io",
            "rolebindings",
            rb("b"),
            rb("a")
        )
        .as_deref(),
        Some(
            r#"RoleBinding.rbac.authorization.k8s.io "rb" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"b"}: cannot change roleRef"#
        )
    );

    let secret = |t: &str| json!({"metadata": {"name": "s", "namespace": "d"}, "type": t, "data": {"username": "eA=="}});
    assert_eq!(
        update_message(
            "",
            "secrets",
            secret("kubernetes.io/basic-auth"),
            secret("Opaque")
        )
        .as_deref(),
        Some(
            r#"Secret "s" is invalid: type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#
        )
    );

    let cm = |v: &str| json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"k": v}});
    assert_eq!(
        update_message("", "configmaps", cm("2"), cm("1")).as_deref(),
        Some(
            r#"ConfigMap "c" is invalid: data: Forbidden: field is immutable when `immutable` is set"#
        )
    );

    let node = |cidr: &str| json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": [cidr]}});
    assert_eq!(
        update_message("", "nodes", node("10.244.2.0/24"), node("10.244.1.0/24")).as_deref(),
        Some(
            r#"Node "n" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#
        )
    );
    assert_eq!(
        update_message(
            "",
            "nodes",
            node("10.244.1.0/24"),
            json!({"metadata": {"name": "n"}})
        ),
        None
    );
}

#[test]
fn objects_being_deleted_accept_no_new_finalizers() {
    let old = json!({"metadata": {"name": "c", "namespace": "d", "deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!(["a.io/x", "b.io/y"]);
    assert_eq!(
        update_message("", "configmaps", new, old).as_deref(),
        Some(
            r#"ConfigMap "c" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"b.io/y"}"#
        )
    );
}

#[test]
fn status_writes_must_keep_counts_consistent() {
    let i = info("apps", "deployments");
    let old = defaulted(
        i,
        deployment(
            Some(json!({"matchLabels": {"app": "web"}})),
            json!({"app": "web"}),
        ),
    );
    let mut new = old.clone();
    new["status"] = json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 1});
    assert_eq!(
        validate_status_update(i, &new, &old).unwrap_err().message,
        r#"Deployment.apps "web" is invalid: status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"#
    );
    new["status"] =
        json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2});
    assert!(validate_status_update(i, &new, &old).is_ok());
}

#[test]
fn bindings_must_target_a_node_by_name() {
    assert!(validate_binding(
        &json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}})
    )
    .is_ok());
    assert_eq!(
        validate_binding(&json!({"metadata": {"name": "p"}, "target": {"kind": "Pod"}}))
            .unwrap_err()
            .message,
        r#"Binding "p" is invalid: [target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]"#
    );
}

#[test]
fn scales_may_not_go_negative() {
    let s = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": -1}});
    assert_eq!(
        validate_scale(&s).unwrap_err().message,
        r#"Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#
    );
}

#[test]
fn undecodable_objects_are_bad_requests() {
    let i = info("", "pods");
    let err = validate_create(
        i,
        &json!({"metadata": {"name": "x"}, "spec": {"containers": "nope"}}),
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.starts_with(
            "Pod in version \"v1\" cannot be handled as a Pod: spec.containers: invalid type"
        ),
        "{}",
        err.message
    );
}

#[test]
fn invalid_statuses_carry_one_cause_per_error() {
    let i = info("", "pods");
    let err = validate_create(i, &defaulted(i, json!({"metadata": {"name": "Foo", "namespace": "default"}, "spec": {"containers": [{"name": "a"}]}}))).unwrap_err();
    let causes: Vec<(&str, &str)> = err
        .causes()
        .iter()
        .map(|c| (c.reason.as_str(), c.field.as_str()))
        .collect();
    assert_eq!(
        causes,
        [
            ("FieldValueInvalid", "metadata.name"),
            ("FieldValueRequired", "spec.containers[0].image")
        ]
    );
    assert_eq!(err.details.as_ref().unwrap().kind, "Pod");
}

#[test]
fn scheduling_constraints_are_validated() {
    let with = |extra: Value| {
        let mut spec = json!({"containers": [{"name": "a", "image": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        pod(spec)
    };
    let na = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
    let cases = [
        (
            with(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}})),
            format!("{na}.nodeSelectorTerms: Required value: must have at least one node selector term"),
        ),
        (
            with(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}}})),
            format!("{na}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        ),
        (
            with(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["a"]}]}]}}}})),
            format!("{na}.nodeSelectorTerms[0].matchFields[0].key: Invalid value: \"metadata.uid\": not a valid field selector key"),
        ),
        (
            with(json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}})),
            "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100".to_string(),
        ),
        (
            with(json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname", "namespaces": ["Bad"]}]}}})),
            format!("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespace: Invalid value: \"Bad\": {LABEL_MSG}"),
        ),
        (
            with(json!({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]})),
            "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero".to_string(),
        ),
        (
            with(json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]})),
            "spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: \"Maybe\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\"".to_string(),
        ),
        (
            with(json!({"topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]})),
            "spec.topologySpreadConstraints[1]: Duplicate value: \"{zone, DoNotSchedule}\"".to_string(),
        ),
    ];
    for (obj, want) in cases {
        assert_eq!(
            create_message("", "pods", obj.clone()),
            Some(format!(r#"Pod "x" is invalid: {want}"#)),
            "{obj}"
        );
    }
    let good = with(json!({"affinity": {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}},
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}));
    assert_eq!(create_message("", "pods", good), None);
}

#[test]
fn services_may_name_their_cluster_ip_either_way() {
    for spec in [
        json!({"clusterIP": "None"}),
        json!({"clusterIPs": ["None"]}),
        json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
    ] {
        let obj = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": spec});
        assert_eq!(create_message("", "services", obj.clone()), None, "{obj}");
    }
    let mismatch = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 80}]}});
    assert_eq!(
        create_message("", "services", mismatch).as_deref(),
        Some(
            r#"Service "db" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`"#
        )
    );
}

#[test]
fn pod_status_writes_cannot_rebind_or_revive_finished_containers() {
    let i = info("", "pods");
    let base = |policy: &str, state: Value| {
        defaulted(
            i,
            json!({"metadata": {"name": "x", "namespace": "default"},
                   "spec": {"restartPolicy": policy, "nodeName": "n1", "containers": [{"name": "a", "image": "x"}]},
                   "status": {"phase": "Running", "containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": state}]}}),
        )
    };
    let done = json!({"terminated": {"exitCode": 0}});
    let running = json!({"running": {}});
    let msg =
        |new: &Value, old: &Value| validate_status_update(i, new, old).err().map(|s| s.message);
    assert_eq!(
        msg(
            &base("Never", running.clone()),
            &base("Never", done.clone())
        )
        .as_deref(),
        Some(
            r#"Pod "x" is invalid: status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"#
        )
    );
    assert_eq!(
        msg(&base("Always", running.clone()), &base("Always", done)),
        None
    );
    assert_eq!(
        msg(
            &base("OnFailure", running.clone()),
            &base("OnFailure", json!({"terminated": {"exitCode": 1}}))
        ),
        None
    );
    let mut moved = base("Always", running.clone());
    moved["spec"]["nodeName"] = json!("n2");
    assert_eq!(
        msg(&moved, &base("Always", running.clone())).as_deref(),
        Some(r#"Pod "x" is invalid: status.nodeName: Forbidden: may not be changed directly"#)
    );
    let mut bad_ip = base("Always", running.clone());
    bad_ip["status"]["podIPs"] = json!([{"ip": "10.0.0"}]);
    assert_eq!(
        msg(&bad_ip, &base("Always", running)).as_deref(),
        Some(
            r#"Pod "x" is invalid: status.podIPs[0]: Invalid value: "10.0.0": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"#
        )
    );
}

#[test]
fn pod_log_options_are_checked_like_kubernetes_checks_them() {
    let q = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ok = PodLogOptions::from_query(&q(&[("container", "c"), ("tailLines", "10")])).unwrap();
    assert_eq!(ok.container.as_deref(), Some("c"));
    assert!(validate_pod_log_options("p", &ok).is_ok());
    let bad = PodLogOptions::from_query(&q(&[("tailLines", "-1"), ("limitBytes", "0")])).unwrap();
    assert_eq!(
        validate_pod_log_options("p", &bad).unwrap_err().message,
        r#"PodLogOptions "p" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]"#
    );
    let both = PodLogOptions::from_query(&q(&[("sinceSeconds", "5"), ("sinceTime", "x")])).unwrap();
    assert_eq!(validate_pod_log_options("p", &both).unwrap_err().code, 422);
    assert_eq!(
        PodLogOptions::from_query(&q(&[("follow", "maybe")]))
            .unwrap_err()
            .code,
        400
    );
}
