use serde_json::{json, Value};

use super::*;

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"note": "x"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.24", "args": ["-g", "daemon off;"]}]}
    })
}

#[test]
fn json_patch_applies_every_operation_in_order() {
    let cases: &[(&str, &str, &str, Value)] = &[
        (
            "replace a scalar",
            r#"[{"op":"replace","path":"/spec/containers/0/image","value":"nginx:1.25"}]"#,
            "/spec/containers/0/image",
            json!("nginx:1.25"),
        ),
        (
            "add a label whose key has a slash",
            r#"[{"op":"add","path":"/metadata/labels/app.kubernetes.io~1name","value":"web"}]"#,
            "/metadata/labels",
            json!({"app": "web", "app.kubernetes.io/name": "web"}),
        ),
        (
            "remove an annotation",
            r#"[{"op":"remove","path":"/metadata/annotations/note"}]"#,
            "/metadata/annotations",
            json!({}),
        ),
        (
            "append to a list",
            r#"[{"op":"add","path":"/spec/containers/0/args/-","value":"--debug"}]"#,
            "/spec/containers/0/args",
            json!(["-g", "daemon off;", "--debug"]),
        ),
        (
            "insert at the front of a list",
            r#"[{"op":"add","path":"/spec/containers/0/args/0","value":"-q"}]"#,
            "/spec/containers/0/args",
            json!(["-q", "-g", "daemon off;"]),
        ),
        (
            "test then replace",
            r#"[{"op":"test","path":"/metadata/name","value":"web"},{"op":"replace","path":"/metadata/name","value":"web2"}]"#,
            "/metadata/name",
            json!("web2"),
        ),
        (
            "copy then move",
            r#"[{"op":"copy","from":"/metadata/labels","path":"/metadata/annotations"},{"op":"move","from":"/metadata/annotations/app","path":"/metadata/annotations/moved"}]"#,
            "/metadata/annotations",
            json!({"moved": "web"}),
        ),
        ("an empty patch", "[]", "", pod()),
    ];
    for (name, patch, pointer, want) in cases {
        let got =
            apply_json_patch(&pod(), patch.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(pointer), Some(want), "{name}");
    }
}

#[test]
fn json_patch_fails_as_a_whole_when_an_operation_fails() {
    let cases: &[(&str, &str)] = &[
        (
            "a test that does not match",
            r#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
        ),
        (
            "a later operation fails after an earlier one applied",
            r#"[{"op":"replace","path":"/metadata/name","value":"x"},{"op":"remove","path":"/metadata/nosuch"}]"#,
        ),
        (
            "remove a missing field",
            r#"[{"op":"remove","path":"/spec/nodeName"}]"#,
        ),
        (
            "replace a missing field",
            r#"[{"op":"replace","path":"/spec/nodeName","value":"n1"}]"#,
        ),
        (
            "add below a missing parent",
            r#"[{"op":"add","path":"/status/phase/x","value":1}]"#,
        ),
        (
            "add past the end of a list",
            r#"[{"op":"add","path":"/spec/containers/5","value":{}}]"#,
        ),
    ];
    for (name, patch) in cases {
        let err = apply_json_patch(&pod(), patch.as_bytes()).expect_err(name);
        assert!(
            matches!(err, PatchError::OperationFailed(_)),
            "{name}: {err:?}"
        );
        assert_eq!(err.status_code(), 422, "{name}");
    }
}

#[test]
fn json_patch_that_is_not_a_list_of_operations_is_a_bad_request() {
    let cases: &[(&str, &str)] = &[
        ("an object", r#"{"op":"add","path":"/a","value":1}"#),
        ("not JSON", "spec.replicas=3"),
        (
            "an unknown operation",
            r#"[{"op":"frobnicate","path":"/a"}]"#,
        ),
        ("an operation without a path", r#"[{"op":"add","value":1}]"#),
    ];
    for (name, patch) in cases {
        let err = apply_json_patch(&pod(), patch.as_bytes()).expect_err(name);
        assert!(matches!(err, PatchError::InvalidBody(_)), "{name}: {err:?}");
        assert_eq!(err.status_code(), 400, "{name}");
    }
}

#[test]
fn json_patch_with_more_than_ten_thousand_operations_is_too_large() {
    let ops = |n: usize| -> Vec<u8> {
        let op = json!({"op": "replace", "path": "/metadata/name", "value": "x"});
        serde_json::to_vec(&vec![op; n]).expect("serializable")
    };
    assert!(apply_json_patch(&pod(), &ops(MAX_JSON_PATCH_OPERATIONS)).is_ok());
    let err = apply_json_patch(&pod(), &ops(MAX_JSON_PATCH_OPERATIONS + 1)).expect_err("too many");
    assert_eq!(err.status_code(), 413);
    assert_eq!(
        err.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn merge_patch_follows_the_examples_of_rfc_7386() {
    let cases: &[(Value, Value, Value)] = &[
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), Value::Null, Value::Null),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (doc, patch, want) in cases {
        assert_eq!(apply_merge_patch(doc, patch), *want, "{doc} + {patch}");
    }
}

#[test]
fn merge_patch_drops_nulls_inside_the_lists_it_brings_like_kubernetes() {
    let got = apply_merge_patch(
        &json!({"spec": {"tolerations": [{"key": "a"}]}}),
        &json!({"spec": {"tolerations": [{"key": "b", "value": null, "effect": "NoSchedule"}]}}),
    );
    assert_eq!(
        got,
        json!({"spec": {"tolerations": [{"key": "b", "effect": "NoSchedule"}]}})
    );
}

#[test]
fn kubectl_label_annotate_and_scale_patches_apply_as_merge_patches() {
    let deployment = json!({
        "metadata": {"name": "web", "resourceVersion": "7", "labels": {"app": "web", "env": "dev"},
                     "annotations": {"owner": "team-a"}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx"}, {"name": "sidecar"}]}}}
    });
    let scale = json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
        "spec": {"replicas": 2}, "status": {"replicas": 2, "selector": "app=web"}
    });
    let cases: &[(&str, &Value, &str, &str, Value)] = &[
        (
            "kubectl label deployment web tier=frontend",
            &deployment,
            r#"{"metadata":{"labels":{"tier":"frontend"}}}"#,
            "/metadata/labels",
            json!({"app": "web", "env": "dev", "tier": "frontend"}),
        ),
        (
            "kubectl label --overwrite deployment web env=prod",
            &deployment,
            r#"{"metadata":{"labels":{"env":"prod"}}}"#,
            "/metadata/labels",
            json!({"app": "web", "env": "prod"}),
        ),
        (
            "kubectl label deployment web env-",
            &deployment,
            r#"{"metadata":{"labels":{"env":null}}}"#,
            "/metadata/labels",
            json!({"app": "web"}),
        ),
        (
            "kubectl label --resource-version=7 deployment web tier=frontend",
            &deployment,
            r#"{"metadata":{"labels":{"tier":"frontend"},"resourceVersion":"7"}}"#,
            "/metadata/resourceVersion",
            json!("7"),
        ),
        (
            "kubectl annotate deployment web description='the web tier'",
            &deployment,
            r#"{"metadata":{"annotations":{"description":"the web tier"}}}"#,
            "/metadata/annotations",
            json!({"owner": "team-a", "description": "the web tier"}),
        ),
        (
            "kubectl annotate deployment web owner-",
            &deployment,
            r#"{"metadata":{"annotations":{"owner":null}}}"#,
            "/metadata/annotations",
            json!({}),
        ),
        (
            "kubectl scale deployment web --replicas=5 patches the scale subresource",
            &scale,
            r#"{"spec":{"replicas":5}}"#,
            "/spec",
            json!({"replicas": 5}),
        ),
        (
            "kubectl patch --type merge replaces a whole list",
            &deployment,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}}"#,
            "/spec/template/spec/containers",
            json!([{"name": "nginx", "image": "nginx:1.25"}]),
        ),
    ];
    for (name, doc, body, pointer, want) in cases {
        let kind = doc["kind"].as_str().unwrap_or("Deployment");
        let got = apply_patch(PatchType::Merge, doc, body.as_bytes(), kind)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(pointer), Some(want), "{name}");
    }
}

#[test]
fn the_content_type_names_the_patch_type() {
    let cases: &[(&str, Option<PatchType>)] = &[
        ("application/json-patch+json", Some(PatchType::Json)),
        ("application/merge-patch+json", Some(PatchType::Merge)),
        (
            "application/strategic-merge-patch+json",
            Some(PatchType::StrategicMerge),
        ),
        (
            "application/strategic-merge-patch+json; charset=utf-8",
            Some(PatchType::StrategicMerge),
        ),
        ("Application/Merge-Patch+JSON", Some(PatchType::Merge)),
        ("application/apply-patch+yaml", None),
        ("application/json", None),
        ("", None),
    ];
    for (content_type, want) in cases {
        assert_eq!(
            PatchType::from_content_type(content_type),
            *want,
            "{content_type}"
        );
    }
    for patch_type in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
        assert_eq!(
            PatchType::from_content_type(patch_type.content_type()),
            Some(patch_type)
        );
    }
}

#[test]
fn apply_patch_dispatches_on_the_patch_type_and_rejects_bad_bodies() {
    let pod = pod();
    let strategic = apply_patch(
        PatchType::StrategicMerge,
        &pod,
        br#"{"spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}"#,
        "Pod",
    )
    .expect("strategic merge of a pod");
    assert_eq!(
        strategic["spec"]["containers"][0]["args"],
        pod["spec"]["containers"][0]["args"]
    );
    assert_eq!(strategic["spec"]["containers"][0]["image"], "nginx:1.25");

    let json = apply_patch(
        PatchType::Json,
        &pod,
        br#"[{"op":"replace","path":"/metadata/name","value":"x"}]"#,
        "Pod",
    )
    .expect("json patch");
    assert_eq!(json["metadata"]["name"], "x");

    let cases: &[(&str, PatchType, &[u8], &str, u16)] = &[
        (
            "strategic merge of a custom resource",
            PatchType::StrategicMerge,
            b"{}",
            "Widget",
            415,
        ),
        (
            "strategic merge of broken JSON",
            PatchType::StrategicMerge,
            b"{",
            "Pod",
            400,
        ),
        (
            "strategic merge of a list",
            PatchType::StrategicMerge,
            b"[]",
            "Pod",
            400,
        ),
        (
            "merge patch of broken JSON",
            PatchType::Merge,
            b"{\"a\":",
            "Pod",
            400,
        ),
        (
            "merge patch that is a list",
            PatchType::Merge,
            b"[1]",
            "Pod",
            400,
        ),
        (
            "merge patch that is null",
            PatchType::Merge,
            b"null",
            "Pod",
            400,
        ),
        (
            "merge patch that is a string",
            PatchType::Merge,
            b"\"x\"",
            "Pod",
            400,
        ),
        (
            "json patch that is an object",
            PatchType::Json,
            b"{}",
            "Pod",
            400,
        ),
    ];
    for (name, patch_type, body, kind, code) in cases {
        let err = apply_patch(*patch_type, &pod, body, kind).expect_err(name);
        assert_eq!(err.status_code(), *code, "{name}: {err}");
    }
}

#[test]
fn errors_print_values_as_go_prints_them() {
    let cases: &[(Value, &str)] = &[
        (json!({"b": 1, "a": "x"}), "map[a:x b:1]"),
        (
            json!({"ports": [{"containerPort": 80}], "name": null}),
            "map[name:<nil> ports:[map[containerPort:80]]]",
        ),
        (json!([true, 1.5, "s"]), "[true 1.5 s]"),
        (json!({}), "map[]"),
    ];
    for (value, want) in cases {
        assert_eq!(error::go_format(value), *want);
    }
}
