use serde_json::{json, Value};

use super::*;
use crate::registry::lookup;

fn apply(group: &str, plural: &str, mut v: Value) -> Value {
    lookup(group, "v1", plural).unwrap().default_object(&mut v);
    v
}

#[test]
fn kubectl_create_deployment_gets_the_spec_kubernetes_stores() {
    // The body kubectl 1.33 sends for `kubectl create deployment nginx --image=nginx`.
    let sent = json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"nginx","creationTimestamp":null,"labels":{"app":"nginx"}},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},
            "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},
            "strategy":{}},"status":{}});
    let got = apply("apps", "deployments", sent);
    assert_eq!(
        got["spec"],
        json!({
            "progressDeadlineSeconds": 600,
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "image": "nginx", "imagePullPolicy": "Always", "name": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                    "securityContext": {}, "terminationGracePeriodSeconds": 30
                }
            }
        })
    );
    assert_eq!(got["status"], json!({}));
}

#[test]
fn kubectl_run_gets_the_pod_kubernetes_stores() {
    // The body kubectl 1.33 sends for `kubectl run nginx --image=nginx`.
    let sent = json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"nginx","creationTimestamp":null,"labels":{"run":"nginx"}},
        "spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst"},"status":{}});
    let mut got = apply("", "pods", sent);
    admit_pod(&mut got);
    assert_eq!(
        got["spec"],
        json!({
            "containers": [{
                "image": "nginx", "imagePullPolicy": "Always", "name": "nginx", "resources": {},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        })
    );
    assert_eq!(
        got["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
}

#[test]
fn admission_keeps_tolerations_a_pod_already_has() {
    let mut pod =
        json!({"spec": {"serviceAccountName": "robot", "tolerations": [{"operator": "Exists"}]}});
    admit_pod(&mut pod);
    assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(pod["spec"]["serviceAccountName"], "robot");
}

#[test]
fn pull_policy_follows_the_image_tag() {
    let cases = [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("library/nginx:1.25-alpine", "IfNotPresent"),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
        (
            "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Always",
        ),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:v1", "IfNotPresent"),
        ("rkube.local/busybox:1.35", "IfNotPresent"),
        ("rkube.local/pause:1", "IfNotPresent"),
        ("NGINX", "IfNotPresent"),
        ("", "IfNotPresent"),
    ];
    for (image, want) in cases {
        assert_eq!(image_pull_policy_for(image), want, "{image}");
    }
}

#[test]
fn defaults_never_overwrite_what_a_client_set() {
    let sent = json!({"metadata": {"name": "x"}, "spec": {
        "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0, "schedulerName": "mine",
        "enableServiceLinks": false, "securityContext": {"runAsUser": 1000},
        "containers": [{"name": "a", "image": "nginx", "imagePullPolicy": "Never", "terminationMessagePolicy": "FallbackToLogsOnError",
                        "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}});
    let got = apply("", "pods", sent.clone());
    for key in [
        "restartPolicy",
        "dnsPolicy",
        "terminationGracePeriodSeconds",
        "schedulerName",
        "enableServiceLinks",
        "securityContext",
    ] {
        assert_eq!(got["spec"][key], sent["spec"][key], "{key}");
    }
    let c = &got["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Never");
    assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(c["ports"][0]["protocol"], "UDP");
}

#[test]
fn probes_ports_env_and_volumes_get_their_defaults() {
    let got = apply(
        "",
        "pods",
        json!({"spec": {
        "containers": [{"name": "a", "image": "x:1",
            "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
        "initContainers": [{"name": "i", "image": "busybox"}],
        "volumes": [{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}, {"name": "c", "configMap": {"name": "c", "defaultMode": 256}},
                    {"name": "d", "hostPath": {"path": "/var"}},
                    {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}}),
    );
    let c = &got["spec"]["containers"][0];
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 80, "protocol": "TCP"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": 80, "path": "/stop", "scheme": "HTTP"})
    );
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        got["spec"]["initContainers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(got["spec"]["initContainers"][0]["resources"], json!({}));
    let v = &got["spec"]["volumes"];
    assert_eq!(v[0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(v[1]["secret"]["defaultMode"], 420);
    assert_eq!(v[2]["configMap"]["defaultMode"], 256);
    assert_eq!(v[3]["hostPath"], json!({"path": "/var", "type": ""}));
    assert_eq!(v[4]["projected"]["defaultMode"], 420);
    assert_eq!(
        v[4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
}

#[test]
fn pods_copy_limits_into_missing_requests_and_host_ports_under_host_network() {
    let got = apply(
        "",
        "pods",
        json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x:1",
        "ports": [{"containerPort": 8080}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]}}),
    );
    let c = &got["spec"]["containers"][0];
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    assert_eq!(c["ports"][0]["hostPort"], 8080);
    assert_eq!(got["status"]["qosClass"], "Burstable");
}

#[test]
fn qos_classes_follow_requests_and_limits() {
    let pod =
        |resources: Value| json!({"spec": {"containers": [{"name": "a", "resources": resources}]}});
    let cases = [
        (json!({}), "BestEffort"),
        (json!({"requests": {"cpu": "0"}}), "BestEffort"),
        (json!({"requests": {"cpu": "100m"}}), "Burstable"),
        (
            json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
            "Guaranteed",
        ),
        (
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}),
            "Guaranteed",
        ),
        (
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}),
            "Burstable",
        ),
        (json!({"limits": {"cpu": "1"}}), "Burstable"),
        (json!({"requests": {"nvidia.com/gpu": "1"}}), "BestEffort"),
    ];
    for (resources, want) in cases {
        assert_eq!(pod_qos_class(&pod(resources.clone())), want, "{resources}");
    }
}

#[test]
fn replica_sets_default_replicas_and_their_template() {
    let got = apply(
        "apps",
        "replicasets",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
    );
    assert_eq!(got["spec"]["replicas"], 1);
    assert_eq!(got["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(got["spec"]["template"]["spec"]
        .get("enableServiceLinks")
        .is_none());
    let zero = apply("apps", "replicasets", json!({"spec": {"replicas": 0}}));
    assert_eq!(zero["spec"]["replicas"], 0);
}

#[test]
fn recreate_deployments_get_no_rolling_update_parameters() {
    let got = apply(
        "apps",
        "deployments",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn kubectl_create_service_gets_the_spec_kubernetes_stores_less_the_allocated_ip() {
    // `kubectl create service clusterip web --tcp=80:8080`
    let sent = json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},
        "spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"web"},"type":"ClusterIP"},
        "status":{"loadBalancer":{}}});
    let got = apply("", "services", sent);
    assert_eq!(
        got["spec"],
        json!({
            "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "web"}, "sessionAffinity": "None", "type": "ClusterIP"
        })
    );
}

#[test]
fn service_defaults_depend_on_type_and_affinity() {
    let got = apply(
        "",
        "services",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 53, "protocol": "UDP"}]}}),
    );
    let s = &got["spec"];
    assert_eq!(s["externalTrafficPolicy"], "Cluster");
    assert_eq!(s["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        s["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    assert_eq!(
        s["ports"][0],
        json!({"port": 53, "protocol": "UDP", "targetPort": 53})
    );

    let ext = apply(
        "",
        "services",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
    );
    assert!(ext["spec"].get("ipFamilyPolicy").is_none());
    assert!(ext["spec"].get("internalTrafficPolicy").is_none());

    let headless = apply("", "services", json!({"spec": {"clusterIP": "None"}}));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

    let named_target = apply(
        "",
        "services",
        json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}),
    );
    assert_eq!(named_target["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn namespaces_get_their_name_label_and_phase() {
    let got = apply(
        "",
        "namespaces",
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team"}}),
    );
    assert_eq!(
        got["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "team"})
    );
    assert!(got.pointer("/spec/finalizers").is_none(), "{got}");
    assert_eq!(got["status"], json!({"phase": "Active"}));
}

#[test]
fn secrets_default_to_opaque_and_fold_string_data_into_data() {
    let got = apply(
        "",
        "secrets",
        json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"password": "hunter2", "a": "y"}}),
    );
    assert_eq!(got["type"], "Opaque");
    assert_eq!(
        got["data"],
        json!({"a": "eQ==", "password": "aHVudGVyMg=="})
    );
    assert!(got.get("stringData").is_none());
    let typed = apply("", "secrets", json!({"type": "kubernetes.io/tls"}));
    assert_eq!(typed["type"], "kubernetes.io/tls");
}

#[test]
fn nodes_allocate_their_capacity_unless_told_otherwise() {
    let got = apply(
        "",
        "nodes",
        json!({"status": {"capacity": {"cpu": "2", "pods": "110"}}}),
    );
    assert_eq!(
        got["status"]["allocatable"],
        json!({"cpu": "2", "pods": "110"})
    );
    let kept = apply(
        "",
        "nodes",
        json!({"status": {"capacity": {"cpu": "2"}, "allocatable": {"cpu": "1"}}}),
    );
    assert_eq!(kept["status"]["allocatable"], json!({"cpu": "1"}));
}

#[test]
fn role_bindings_default_the_rbac_group_for_users_groups_and_role_refs() {
    let got = apply(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        json!({
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "bob"}, {"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "d"}]}),
    );
    assert_eq!(got["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(got["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(got["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(got["subjects"][2].get("apiGroup").is_none());
}

#[test]
fn defaulted_objects_of_kubectl_commands_validate() {
    let deploy = lookup("apps", "v1", "deployments").unwrap();
    let d = apply(
        "apps",
        "deployments",
        json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"nginx","namespace":"default","labels":{"app":"nginx"}},
        "spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},
            "template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},"strategy":{}}}),
    );
    assert!(deploy.validate_create(&d).is_ok());
}
