use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::convert::event_v1_to_core;
use crate::registry::lookup;
use crate::selectors::FieldSelector;

// The entry points are `ResourceInfo`'s methods now; these keep the cases as they read.

fn field_set(info: &ResourceInfo, obj: &Value) -> BTreeMap<String, String> {
    info.field_set(obj)
}

fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    info.to_storage(obj)
}

fn from_storage(info: &ResourceInfo, obj: Value) -> Value {
    info.from_storage(obj)
}

fn v1_event() -> serde_json::Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "kubelet", "reportingInstance": "node-1",
        "action": "Pulling", "reason": "Pulling", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "note": "Pulling image \"nginx\"",
        "series": {"count": 2, "lastObservedTime": "2025-01-01T00:00:05.000000Z"},
        "deprecatedCount": 0
    })
}

#[test]
fn unsupported_field_labels_are_refused_per_resource() {
    let pods = lookup("", "v1", "pods").unwrap();
    let nodes = lookup("", "v1", "nodes").unwrap();
    let cms = lookup("", "v1", "configmaps").unwrap();
    let roles = lookup("rbac.authorization.k8s.io", "v1", "clusterroles").unwrap();
    let cases = [
        (pods, "spec.nodeName=n1", Ok("spec.nodeName=n1")),
        (pods, "spec.host=n1", Ok("spec.nodeName=n1")),
        (
            pods,
            "status.phase=Running,metadata.namespace=default",
            Ok("metadata.namespace=default,status.phase=Running"),
        ),
        (
            pods,
            "spec.foo=x",
            Err("field label not supported: spec.foo"),
        ),
        (
            nodes,
            "spec.unschedulable=false",
            Ok("spec.unschedulable=false"),
        ),
        (
            nodes,
            "metadata.namespace=x",
            Err("field label not supported: metadata.namespace"),
        ),
        (cms, "metadata.namespace=x", Ok("metadata.namespace=x")),
        (cms, "data.x=y", Err("field label not supported: data.x")),
        (roles, "metadata.namespace=", Ok("metadata.namespace=")),
    ];
    for (info, sel, want) in cases {
        let got = FieldSelector::parse(sel).unwrap().for_resource(info);
        match want {
            Ok(s) => assert_eq!(got.unwrap().to_string(), s, "{sel}"),
            Err(m) => assert_eq!(got.unwrap_err().message, m, "{sel}"),
        }
    }
}

#[test]
fn events_k8s_io_field_labels_map_onto_core_event_fields() {
    let ev = lookup("events.k8s.io", "v1", "events").unwrap();
    let s = FieldSelector::parse("regarding.name=web,reportingController=kubelet")
        .unwrap()
        .for_resource(ev)
        .unwrap();
    assert_eq!(
        s.to_string(),
        "involvedObject.name=web,reportingComponent=kubelet"
    );
    assert!(FieldSelector::parse("involvedObject.name=web")
        .unwrap()
        .for_resource(ev)
        .is_err());
}

#[test]
fn field_sets_hold_what_kubernetes_makes_selectable() {
    let pods = lookup("", "v1", "pods").unwrap();
    let pod = json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}]}
    });
    let f = field_set(pods, &pod);
    assert_eq!(f["spec.nodeName"], "n1");
    assert_eq!(f["status.podIP"], "10.244.0.5");
    assert_eq!(f["spec.hostNetwork"], "false");
    assert_eq!(f["metadata.namespace"], "default");
    assert!(
        FieldSelector::parse("spec.nodeName=n1,status.phase=Running")
            .unwrap()
            .matches(&f)
    );

    let ev = lookup("", "v1", "events").unwrap();
    let event = json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Scheduled", "type": "Normal",
        "reportingComponent": "default-scheduler"});
    let f = field_set(ev, &event);
    assert_eq!(f["involvedObject.kind"], "Pod");
    assert_eq!(f["source"], "default-scheduler");

    let v1 = lookup("events.k8s.io", "v1", "events").unwrap();
    let new_event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "kubelet"});
    let f = field_set(v1, &new_event);
    let sel = FieldSelector::parse("regarding.name=p,reportingController=kubelet")
        .unwrap()
        .for_resource(v1)
        .unwrap();
    assert!(sel.matches(&f));

    let nodes = lookup("", "v1", "nodes").unwrap();
    let f = field_set(
        nodes,
        &json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}),
    );
    assert_eq!(f["spec.unschedulable"], "true");
    assert!(!f.contains_key("metadata.namespace"));

    let rs = lookup("apps", "v1", "replicasets").unwrap();
    assert_eq!(
        field_set(rs, &json!({"status": {"replicas": 3}}))["status.replicas"],
        "3"
    );
}

#[test]
fn storage_conversion_is_the_identity_except_for_events_k8s_io() {
    let pods = lookup("", "v1", "pods").unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    assert_eq!(to_storage(pods, pod.clone()), pod);
    assert_eq!(from_storage(pods, pod.clone()), pod);
    let ev = lookup("events.k8s.io", "v1", "events").unwrap();
    assert_eq!(to_storage(ev, v1_event())["apiVersion"], "v1");
    assert_eq!(from_storage(ev, event_v1_to_core(&v1_event())), v1_event());
}

#[test]
fn namespaces_keep_spec_finalizers_for_the_finalize_subresource_alone() {
    let ns = lookup("", "v1", "namespaces").unwrap();
    let cms = lookup("", "v1", "configmaps").unwrap();
    assert!(ns.has_spec_finalizers());
    assert!(!cms.has_spec_finalizers());

    // Created: the `kubernetes` finalizer is added after any sent, once.
    let mut created =
        json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["example.com/x"]}});
    ns.prepare_for_create(&mut created);
    assert_eq!(
        created["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    let mut plain = json!({"metadata": {"name": "team"}});
    ns.prepare_for_create(&mut plain);
    assert_eq!(plain["spec"]["finalizers"], json!(["kubernetes"]));
    assert!(plain.pointer("/metadata/generation").is_none(), "{plain}");

    // An update keeps the stored spec.finalizers, whatever it sends, and never brings
    // back a removed `kubernetes`.
    let old = json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let cases = [
        (
            json!({"metadata": {"name": "team", "labels": {"a": "b"}}}),
            json!(["kubernetes"]),
        ),
        (
            json!({"metadata": {"name": "team"}, "spec": {"finalizers": []}}),
            json!(["kubernetes"]),
        ),
    ];
    for (mut sent, want) in cases {
        ns.prepare_for_update(&mut sent, &old);
        assert_eq!(sent["spec"]["finalizers"], want, "{sent}");
    }
    let finalized =
        json!({"metadata": {"name": "team"}, "spec": {}, "status": {"phase": "Terminating"}});
    let mut sent = json!({"metadata": {"name": "team", "finalizers": []}, "spec": {}});
    ns.prepare_for_update(&mut sent, &finalized);
    assert!(sent.pointer("/spec/finalizers").is_none(), "{sent}");

    // finalize changes spec.finalizers and nothing else.
    let mut sent = json!({"metadata": {"name": "team", "labels": {"x": "y"}}, "spec": {"finalizers": []}, "status": {"phase": "Active"}});
    let terminating = json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}});
    ns.prepare_for_finalize(&mut sent, &terminating);
    assert_eq!(
        sent,
        json!({"metadata": {"name": "team"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}})
    );
}

#[test]
fn a_deletion_waits_for_metadata_finalizers_and_for_namespaces_spec_finalizers() {
    let ns = lookup("", "v1", "namespaces").unwrap();
    let cms = lookup("", "v1", "configmaps").unwrap();
    let cases = [
        (cms, json!({"metadata": {}}), false),
        (cms, json!({"metadata": {"finalizers": []}}), false),
        (cms, json!({"metadata": {"finalizers": ["orphan"]}}), true),
        (
            cms,
            json!({"metadata": {}, "spec": {"finalizers": ["kubernetes"]}}),
            false,
        ),
        (
            ns,
            json!({"metadata": {}, "spec": {"finalizers": ["kubernetes"]}}),
            true,
        ),
        (
            ns,
            json!({"metadata": {}, "spec": {"finalizers": []}}),
            false,
        ),
        (
            ns,
            json!({"metadata": {"finalizers": ["foregroundDeletion"]}, "spec": {}}),
            true,
        ),
    ];
    for (info, obj, pending) in cases {
        assert_eq!(
            info.finalizers_pending(&obj),
            pending,
            "{} {obj}",
            info.plural
        );
    }
    let mut n = json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}});
    ns.prepare_for_delete(&mut n);
    assert_eq!(n["status"]["phase"], "Terminating");
    let mut c = json!({"metadata": {"name": "c"}});
    cms.prepare_for_delete(&mut c);
    assert!(c.get("status").is_none());
}
