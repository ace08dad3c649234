use serde_json::json;

use super::*;

fn lists() -> Vec<Value> {
    vec![
        json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "namespaced": true, "kind": "ConfigMap",
             "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
            {"name": "namespaces", "namespaced": false, "kind": "Namespace",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"name": "namespaces/finalize", "namespaced": false, "kind": "Namespace", "verbs": ["update"]},
            {"name": "pods/binding", "namespaced": true, "kind": "Binding", "verbs": ["create"]},
        ]}),
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "replicasets", "namespaced": true, "kind": "ReplicaSet",
             "verbs": ["create", "delete", "get", "list", "watch"]},
            {"name": "replicasets/scale", "namespaced": true, "kind": "Scale",
             "group": "autoscaling", "version": "v1", "verbs": ["get", "patch", "update"]},
        ]}),
    ]
}

#[test]
fn discovery_lists_become_resources_without_their_subresources() {
    let r = Resources::parse(&lists()).unwrap();
    let names: Vec<String> = r.all.iter().map(ApiResource::qualified_name).collect();
    assert_eq!(names, ["configmaps", "namespaces", "replicasets.apps"]);
    let rs = &r.all[2];
    assert_eq!(rs.gvr, Gvr::new("apps", "v1", "replicasets"));
    assert_eq!(
        (rs.api_version.as_str(), rs.kind.as_str()),
        ("apps/v1", "ReplicaSet")
    );
    assert!(rs.namespaced && !r.all[1].namespaced);
    assert!(rs.supports(&["list", "watch", "delete"]));
    assert!(!rs.supports(&["deletecollection"]));
    let deletable: Vec<&str> = r
        .supporting(&["deletecollection"])
        .map(|r| r.gvr.resource.as_str())
        .collect();
    assert_eq!(deletable, ["configmaps"]);
    assert!(matches!(
        Resources::parse(&[json!({"resources": []})]),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn owner_kinds_resolve_to_resources_by_version_then_by_group() {
    let r = Resources::parse(&lists()).unwrap();
    let cases = [
        ("v1", "ConfigMap", Some("configmaps")),
        ("apps/v1", "ReplicaSet", Some("replicasets")),
        // A version the server does not serve: the group's resource of that kind.
        ("apps/v1beta2", "ReplicaSet", Some("replicasets")),
        ("extensions/v1beta1", "ReplicaSet", None),
        ("v1", "ReplicaSet", None),
        ("example.com/v1", "Widget", None),
    ];
    for (api_version, kind, want) in cases {
        assert_eq!(
            r.by_kind(api_version, kind)
                .map(|r| r.gvr.resource.as_str()),
            want,
            "{api_version} {kind}"
        );
    }
    assert_eq!(group_of("apps/v1"), "apps");
    assert_eq!(group_of("v1"), "");
}
