use super::*;

#[test]
fn every_resource_is_unique_by_group_version_and_plural() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RESOURCES {
        assert!(
            seen.insert((r.group, r.version, r.plural)),
            "duplicate {}",
            r.plural
        );
        assert_eq!(r.list_kind, format!("{}List", r.kind));
        assert!(r.etcd_prefix.starts_with("/registry/"));
        assert!(!r.etcd_prefix.ends_with('/'));
    }
}

#[test]
fn lookups_find_resources_by_group_version_and_plural() {
    let cases = [
        ("", "v1", "pods", Some("Pod")),
        ("", "v1", "nodes", Some("Node")),
        ("apps", "v1", "deployments", Some("Deployment")),
        ("events.k8s.io", "v1", "events", Some("Event")),
        ("coordination.k8s.io", "v1", "leases", Some("Lease")),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            Some("ClusterRole"),
        ),
        ("apps", "v1", "pods", None),
        ("", "v2", "pods", None),
    ];
    for (g, v, p, kind) in cases {
        assert_eq!(lookup(g, v, p).map(|r| r.kind), kind, "{g}/{v}/{p}");
    }
}

#[test]
fn etcd_prefixes_follow_kubernetes_layout() {
    let cases = [
        ("", "pods", "/registry/pods"),
        ("", "nodes", "/registry/minions"),
        ("", "services", "/registry/services/specs"),
        ("", "events", "/registry/events"),
        ("events.k8s.io", "events", "/registry/events"),
        ("", "namespaces", "/registry/namespaces"),
        ("", "serviceaccounts", "/registry/serviceaccounts"),
        ("", "configmaps", "/registry/configmaps"),
        ("", "secrets", "/registry/secrets"),
        ("apps", "deployments", "/registry/deployments"),
        ("apps", "replicasets", "/registry/replicasets"),
        ("coordination.k8s.io", "leases", "/registry/leases"),
        ("rbac.authorization.k8s.io", "roles", "/registry/roles"),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            "/registry/rolebindings",
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            "/registry/clusterroles",
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "/registry/clusterrolebindings",
        ),
    ];
    for (g, p, prefix) in cases {
        assert_eq!(lookup(g, "v1", p).unwrap().etcd_prefix, prefix);
    }
}

#[test]
fn keys_include_the_namespace_only_for_namespaced_resources() {
    let pods = lookup("", "v1", "pods").unwrap();
    let nodes = lookup("", "v1", "nodes").unwrap();
    assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
    assert_eq!(nodes.key("ignored", "n1"), "/registry/minions/n1");
    assert_eq!(pods.key_prefix(Some("default")), "/registry/pods/default/");
    assert_eq!(pods.key_prefix(None), "/registry/pods/");
    assert_eq!(nodes.key_prefix(Some("x")), "/registry/minions/");
}

#[test]
fn kubectl_names_resolve_like_kubectl() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("po", &[("", "Pod")]),
        ("pod", &[("", "Pod")]),
        ("pods", &[("", "Pod")]),
        ("Pod", &[("", "Pod")]),
        ("deploy", &[("apps", "Deployment")]),
        ("deployment.apps", &[("apps", "Deployment")]),
        ("deployments.v1.apps", &[("apps", "Deployment")]),
        ("rs", &[("apps", "ReplicaSet")]),
        ("svc", &[("", "Service")]),
        ("ns", &[("", "Namespace")]),
        ("no", &[("", "Node")]),
        ("cm", &[("", "ConfigMap")]),
        ("sa", &[("", "ServiceAccount")]),
        ("ev", &[("", "Event"), ("events.k8s.io", "Event")]),
        ("events", &[("", "Event"), ("events.k8s.io", "Event")]),
        ("events.events.k8s.io", &[("events.k8s.io", "Event")]),
        ("lease", &[("coordination.k8s.io", "Lease")]),
        (
            "clusterrolebindings.rbac.authorization.k8s.io",
            &[("rbac.authorization.k8s.io", "ClusterRoleBinding")],
        ),
        ("nonsense", &[]),
        ("pods.apps", &[]),
    ];
    for (name, want) in cases {
        let got: Vec<(&str, &str)> = resolve(name).iter().map(|r| (r.group, r.kind)).collect();
        assert_eq!(&got, want, "{name}");
    }
}

#[test]
fn kinds_and_api_versions_find_their_resources() {
    assert_eq!(by_kind("apps", "ReplicaSet").unwrap().plural, "replicasets");
    assert_eq!(by_api_version_kind("v1", "Event").unwrap().group, "");
    assert_eq!(
        by_api_version_kind("events.k8s.io/v1", "Event")
            .unwrap()
            .group,
        "events.k8s.io"
    );
    assert_eq!(by_api_version_kind("apps/v1", "Pod"), None);
}

#[test]
fn the_all_category_holds_workloads_and_services() {
    let mut got: Vec<&str> = in_category("all").iter().map(|r| r.plural).collect();
    got.sort();
    assert_eq!(got, ["deployments", "pods", "replicasets", "services"]);
}

#[test]
fn groups_are_listed_in_kubernetes_priority_order_with_preferred_versions() {
    let g: Vec<(&str, &str)> = groups().iter().map(|g| (g.group, g.preferred)).collect();
    assert_eq!(
        g,
        [
            ("apps", "v1"),
            ("events.k8s.io", "v1"),
            ("rbac.authorization.k8s.io", "v1"),
            ("coordination.k8s.io", "v1")
        ]
    );
}

#[test]
fn subresources_carry_their_kinds_and_verbs() {
    let pods = lookup("", "v1", "pods").unwrap();
    assert_eq!(pods.subresource("binding").unwrap().kind, "Binding");
    assert_eq!(pods.subresource("binding").unwrap().verbs, &["create"]);
    assert_eq!(pods.subresource("log").unwrap().verbs, &["get"]);
    assert_eq!(
        pods.subresource("status").unwrap().verbs,
        &["get", "patch", "update"]
    );
    assert!(pods.subresource("exec").is_none());
    let deploy = lookup("apps", "v1", "deployments").unwrap();
    let scale = deploy.subresource("scale").unwrap();
    assert_eq!(
        (scale.kind, scale.group_version),
        ("Scale", Some(("autoscaling", "v1")))
    );
}

#[test]
fn namespaces_cannot_be_deleted_as_a_collection() {
    assert!(!lookup("", "v1", "namespaces")
        .unwrap()
        .has_verb("deletecollection"));
    assert!(lookup("", "v1", "pods")
        .unwrap()
        .has_verb("deletecollection"));
}

#[test]
fn both_event_versions_are_stored_as_core_events() {
    let new = lookup("events.k8s.io", "v1", "events").unwrap();
    assert_eq!(new.storage().api_version(), "v1");
    let pods = lookup("", "v1", "pods").unwrap();
    assert_eq!(pods.storage(), pods);
}

#[test]
fn qualified_names_and_api_versions_include_the_group() {
    let d = lookup("apps", "v1", "deployments").unwrap();
    assert_eq!(d.api_version(), "apps/v1");
    assert_eq!(d.qualified_resource(), "deployments.apps");
    assert_eq!(lookup("", "v1", "pods").unwrap().api_version(), "v1");
}
