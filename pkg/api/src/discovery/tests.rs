use serde_json::json;

use super::*;

#[test]
fn api_versions_lists_v1_and_the_server_address() {
    assert_eq!(
        api_versions("10.0.0.1:6443"),
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]})
    );
}

#[test]
fn api_group_list_has_every_group_with_its_preferred_version() {
    let v = api_group_list();
    assert_eq!(v["kind"], "APIGroupList");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(
        v["groups"][0],
        json!({"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
               "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
    );
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "apps",
            "events.k8s.io",
            "rbac.authorization.k8s.io",
            "coordination.k8s.io"
        ]
    );
}

#[test]
fn api_group_describes_one_group_and_nothing_for_unknown_groups() {
    let g = api_group("coordination.k8s.io").unwrap();
    assert_eq!(g["kind"], "APIGroup");
    assert_eq!(g["name"], "coordination.k8s.io");
    assert_eq!(
        g["preferredVersion"]["groupVersion"],
        "coordination.k8s.io/v1"
    );
    assert!(api_group("batch").is_none());
}

#[test]
fn core_resource_list_is_sorted_with_subresources_after_their_resource() {
    let v = api_resource_list("", "v1").unwrap();
    assert_eq!(v["kind"], "APIResourceList");
    assert_eq!(v["groupVersion"], "v1");
    assert!(v.get("apiVersion").is_none());
    let names: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "configmaps",
            "events",
            "namespaces",
            "namespaces/finalize",
            "namespaces/status",
            "nodes",
            "nodes/status",
            "pods",
            "pods/binding",
            "pods/log",
            "pods/status",
            "secrets",
            "serviceaccounts",
            "services",
            "services/status"
        ]
    );
}

#[test]
fn resource_entries_have_kubernetes_fields() {
    let v = api_resource_list("", "v1").unwrap();
    let find = |n: &str| {
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        find("pods"),
        json!({"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
               "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
               "shortNames": ["po"], "categories": ["all"]})
    );
    assert_eq!(
        find("pods/binding"),
        json!({"name": "pods/binding", "singularName": "", "namespaced": true, "kind": "Binding", "verbs": ["create"]})
    );
    assert_eq!(
        find("namespaces"),
        json!({"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
               "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]})
    );
    assert_eq!(find("secrets").get("shortNames"), None);
}

#[test]
fn group_resource_lists_carry_api_version_and_scale_kinds() {
    let v = api_resource_list("apps", "v1").unwrap();
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["groupVersion"], "apps/v1");
    let scale = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .unwrap();
    assert_eq!(
        scale,
        &json!({"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
                "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
    );
}

#[test]
fn unserved_group_versions_have_no_resource_list() {
    assert!(api_resource_list("apps", "v1beta1").is_none());
    assert!(api_resource_list("batch", "v1").is_none());
}

#[test]
fn aggregated_discovery_describes_core_alone_or_the_named_groups() {
    let core = aggregated_discovery(true);
    assert_eq!(core["kind"], "APIGroupDiscoveryList");
    assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = core["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"], json!({"creationTimestamp": null}));
    let v1 = &items[0]["versions"][0];
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["freshness"], "Current");
    let pods = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "pods")
        .unwrap();
    assert_eq!(pods["scope"], "Namespaced");
    assert_eq!(
        pods["responseKind"],
        json!({"group": "", "version": "", "kind": "Pod"})
    );
    let subs: Vec<&str> = pods["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["binding", "log", "status"]);

    let groups = aggregated_discovery(false);
    let apps = &groups["items"][0];
    assert_eq!(apps["metadata"]["name"], "apps");
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(
        deploy["subresources"][0],
        json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
               "verbs": ["get", "patch", "update"]})
    );
    let nodes_scope = core["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "nodes")
        .unwrap()["scope"]
        .clone();
    assert_eq!(nodes_scope, "Cluster");
}

#[test]
fn every_group_versions_resource_list_comes_at_once_core_first() {
    let lists = api_resource_lists();
    let gvs: Vec<&str> = lists
        .iter()
        .map(|l| l["groupVersion"].as_str().unwrap())
        .collect();
    assert_eq!(
        gvs,
        [
            "v1",
            "apps/v1",
            "events.k8s.io/v1",
            "rbac.authorization.k8s.io/v1",
            "coordination.k8s.io/v1"
        ]
    );
    assert_eq!(lists[0], api_resource_list("", "v1").unwrap());
    assert!(lists.iter().all(|l| l["kind"] == "APIResourceList"));
}
