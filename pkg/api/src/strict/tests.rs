use serde_json::json;

use serde_json::Value;

use super::*;
use crate::registry::{lookup, ResourceInfo};

// The entry points are `ResourceInfo`'s methods (and the table's lookup of body kinds)
// now; these keep the cases as they read.

fn unknown_fields(info: &ResourceInfo, v: &Value) -> Result<Vec<String>, Status> {
    info.unknown_fields(v)
}

fn unknown_fields_of_kind(
    group: &str,
    version: &str,
    kind: &str,
    v: &Value,
) -> Result<Vec<String>, Status> {
    crate::registry::unknown_fields_of_kind(group, version, kind, v)
}

fn strict_errors(info: &ResourceInfo, raw: &[u8]) -> Result<Vec<String>, Status> {
    info.strict_errors(raw)
}

fn deployments() -> &'static ResourceInfo {
    lookup("apps", "v1", "deployments").unwrap()
}

#[test]
fn unknown_fields_are_reported_at_their_paths() {
    let cases = [
        (json!({"spec": {"foo": 1}}), vec!["spec.foo"]),
        (
            json!({"metadata": {"name": "x", "bogus": true}}),
            vec!["metadata.bogus"],
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "imagee": "y"}]}}}}),
            vec!["spec.template.spec.containers[1].imagee"],
        ),
        (
            json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"any.key/x": "v"}}}}),
            vec![],
        ),
        (json!({"spec": {"foo": null, "paused": null}}), vec![]),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "status": {"bar": 1}}),
            vec!["status.bar"],
        ),
        (
            json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxExtra": 1}}}}),
            vec!["spec.strategy.rollingUpdate.maxExtra"],
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            unknown_fields(deployments(), &input).unwrap(),
            want,
            "{input}"
        );
    }
}

#[test]
fn fields_are_case_sensitive() {
    let pods = lookup("", "v1", "pods").unwrap();
    assert_eq!(
        unknown_fields(pods, &json!({"Spec": {}})).unwrap(),
        ["Spec"]
    );
}

#[test]
fn every_served_kind_round_trips_an_empty_object_without_unknown_fields() {
    for r in crate::registry::RESOURCES {
        let obj = json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}});
        assert_eq!(
            unknown_fields(r, &obj).unwrap(),
            Vec::<String>::new(),
            "{}",
            r.kind
        );
    }
}

#[test]
fn subresource_bodies_are_checked_by_their_own_kind() {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n", "extra": 1}});
    assert_eq!(
        unknown_fields_of_kind("", "v1", "Binding", &binding).unwrap(),
        ["target.extra"]
    );
    let scale = json!({"spec": {"replicas": 3, "x": 1}});
    assert_eq!(
        unknown_fields_of_kind("autoscaling", "v1", "Scale", &scale).unwrap(),
        ["spec.x"]
    );
    assert!(
        unknown_fields_of_kind("example.com", "v1", "Widget", &scale)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn duplicate_fields_are_found_in_raw_bytes() {
    let cases: &[(&str, &[&str])] = &[
        (r#"{"a":1}"#, &[]),
        (r#"{"a":1,"a":2}"#, &["a"]),
        (
            r#"{"spec":{"replicas":1,"replicas":2}}"#,
            &["spec.replicas"],
        ),
        (r#"{"items":[{"x":1},{"x":1,"x":2}]}"#, &["items[1].x"]),
        (r#"[1,2,3]"#, &[]),
    ];
    for (raw, want) in cases {
        assert_eq!(duplicate_fields(raw.as_bytes()).unwrap(), *want, "{raw}");
    }
    assert!(duplicate_fields(b"{").is_err());
}

#[test]
fn strict_errors_list_duplicates_then_unknown_fields() {
    let raw = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","name":"b"},"spec":{"foo":1}}"#;
    let errs = strict_errors(deployments(), raw).unwrap();
    assert_eq!(
        errs,
        [
            "duplicate field \"metadata.name\"",
            "unknown field \"spec.foo\""
        ]
    );
    assert_eq!(
        strict_decoding_status(&errs).message,
        "strict decoding error: duplicate field \"metadata.name\", unknown field \"spec.foo\""
    );
    assert_eq!(strict_decoding_status(&errs).code, 400);
}

#[test]
fn undecodable_bodies_are_bad_requests_naming_the_field() {
    let err = unknown_fields(deployments(), &json!({"spec": {"replicas": "three"}})).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.starts_with("Deployment in version \"v1\" cannot be handled as a Deployment: spec.replicas: invalid type"),
        "{}",
        err.message
    );
    let err = strict_errors(deployments(), b"not json").unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn mismatched_kinds_do_not_decode() {
    let err =
        decode::<k8s_openapi::api::apps::v1::Deployment>(&json!({"kind": "Pod"})).unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn field_validation_defaults_to_warn() {
    assert_eq!(FieldValidation::parse(None).unwrap(), FieldValidation::Warn);
    assert_eq!(
        FieldValidation::parse(Some("")).unwrap(),
        FieldValidation::Warn
    );
    assert_eq!(
        FieldValidation::parse(Some("Strict")).unwrap(),
        FieldValidation::Strict
    );
    assert_eq!(
        FieldValidation::parse(Some("Ignore")).unwrap(),
        FieldValidation::Ignore
    );
    assert_eq!(
        FieldValidation::parse(Some("strict")).unwrap_err().code,
        400
    );
}
