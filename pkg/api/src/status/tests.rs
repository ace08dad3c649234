use serde_json::json;

use super::*;
use crate::field::{FieldError, FieldPath};

#[test]
fn constructors_produce_kubernetes_messages_codes_and_reasons() {
    let cases: Vec<(Status, u16, Reason, &str)> = vec![
        (Status::not_found("", "pods", "nginx"), 404, Reason::NotFound, r#"pods "nginx" not found"#),
        (
            Status::not_found("apps", "deployments", "web"),
            404,
            Reason::NotFound,
            r#"deployments.apps "web" not found"#,
        ),
        (Status::already_exists("", "pods", "nginx"), 409, Reason::AlreadyExists, r#"pods "nginx" already exists"#),
        (
            Status::optimistic_lock("", "pods", "nginx"),
            409,
            Reason::Conflict,
            r#"Operation cannot be fulfilled on pods "nginx": the object has been modified; please apply your changes to the latest version and try again"#,
        ),
        (
            Status::generate_name_conflict("", "pods", "web-abcde", 1),
            409,
            Reason::AlreadyExists,
            r#"pods "web-abcde" already exists, the server was not able to generate a unique name for the object"#,
        ),
        (
            Status::method_not_supported("", "pods", "deletecollection"),
            405,
            Reason::MethodNotAllowed,
            r#"deletecollection is not supported on resources of kind "pods""#,
        ),
        (
            Status::forbidden("", "pods", "", r#"User "bob" cannot list resource "pods" in API group "" in the namespace "default""#),
            403,
            Reason::Forbidden,
            r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#,
        ),
        (
            Status::forbidden("apps", "deployments", "web", "nope"),
            403,
            Reason::Forbidden,
            r#"deployments.apps "web" is forbidden: nope"#,
        ),
        (Status::unauthorized(""), 401, Reason::Unauthorized, "Unauthorized"),
        (Status::internal_error("boom"), 500, Reason::InternalError, "Internal error occurred: boom"),
        (Status::timeout("request did not complete", 0), 504, Reason::Timeout, "Timeout: request did not complete"),
        (Status::too_many_requests("slow down", 1), 429, Reason::TooManyRequests, "Too many requests: slow down"),
        (Status::service_unavailable("no leader"), 503, Reason::ServiceUnavailable, "no leader"),
        (Status::too_old_resource_version(5, 10), 410, Reason::Expired, "too old resource version: 5 (10)"),
        (Status::gone("gone"), 410, Reason::Gone, "gone"),
        (
            Status::request_entity_too_large("limit is 3145728"),
            413,
            Reason::RequestEntityTooLarge,
            "Request entity too large: limit is 3145728",
        ),
        (
            Status::unsupported_media_type(&["application/json", "application/yaml"]),
            415,
            Reason::UnsupportedMediaType,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ),
        (
            Status::not_acceptable(&["application/json"]),
            406,
            Reason::NotAcceptable,
            "only the following media types are accepted: application/json",
        ),
        (
            Status::namespace_terminating("", "pods", "x", "team"),
            403,
            Reason::Forbidden,
            r#"pods "x" is forbidden: unable to create new content in namespace team because it is being terminated"#,
        ),
        (
            Status::server_timeout("", "pods", "create", 2),
            500,
            Reason::ServerTimeout,
            "The create operation against pods could not be completed at this time, please try again.",
        ),
    ];
    for (status, code, reason, message) in cases {
        assert_eq!(status.code, code, "{message}");
        assert_eq!(status.reason, reason, "{message}");
        assert_eq!(status.message, message);
        assert_eq!(status.to_string(), message);
    }
}

#[test]
fn not_found_details_name_the_resource_not_the_kind() {
    let s = Status::not_found("apps", "deployments", "web");
    assert_eq!(
        s.to_json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "deployments.apps \"web\" not found", "reason": "NotFound",
            "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404
        })
    );
}

#[test]
fn json_bytes_keep_kubernetes_field_order() {
    let s = Status::not_found("", "pods", "nginx");
    let text = String::from_utf8(s.to_json_bytes()).unwrap();
    assert_eq!(
        text,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nginx\" not found","reason":"NotFound","details":{"name":"nginx","kind":"pods"},"code":404}"#
    );
}

#[test]
fn invalid_with_one_error_has_no_brackets_and_one_cause() {
    let errs = vec![FieldError::required(
        &FieldPath::from_names(&["spec", "containers"])
            .index(0)
            .child("image"),
        "",
    )];
    let s = Status::invalid("", "Pod", "x", &errs);
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        r#"Pod "x" is invalid: spec.containers[0].image: Required value"#
    );
    let d = s.details.unwrap();
    assert_eq!(
        (d.kind.as_str(), d.group.as_str(), d.name.as_str()),
        ("Pod", "", "x")
    );
    assert_eq!(
        d.causes,
        vec![StatusCause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.containers[0].image".into(),
        }]
    );
}

#[test]
fn invalid_with_several_errors_brackets_and_deduplicates_the_message_but_not_the_causes() {
    let p = FieldPath::from_names(&["metadata", "name"]);
    let errs = vec![
        FieldError::required(
            &FieldPath::from_names(&["spec", "containers"])
                .index(0)
                .child("image"),
            "",
        ),
        FieldError::invalid(&p, "Foo", "bad"),
        FieldError::invalid(&p, "Foo", "bad"),
    ];
    let s = Status::invalid("apps", "Deployment", "web", &errs);
    assert_eq!(
        s.message,
        r#"Deployment.apps "web" is invalid: [spec.containers[0].image: Required value, metadata.name: Invalid value: "Foo": bad]"#
    );
    assert_eq!(s.causes().len(), 3);
}

#[test]
fn invalid_without_errors_says_only_invalid() {
    assert_eq!(
        Status::invalid("", "Pod", "x", &[]).message,
        r#"Pod "x" is invalid"#
    );
}

#[test]
fn internal_error_carries_its_cause() {
    let v = Status::internal_error("disk on fire").to_json();
    assert_eq!(
        v["details"],
        json!({"causes": [{"message": "disk on fire"}]})
    );
}

#[test]
fn retry_hints_appear_in_details() {
    let v = Status::too_many_requests("x", 3).to_json();
    assert_eq!(v["details"], json!({"retryAfterSeconds": 3}));
    assert!(Status::timeout("x", 0).to_json().get("details").is_none());
}

#[test]
fn a_status_survives_a_json_round_trip() {
    let errs = vec![FieldError::invalid(
        &FieldPath::new("spec").child("replicas"),
        -1,
        "must be greater than or equal to 0",
    )];
    for s in [
        Status::not_found("", "pods", "a"),
        Status::invalid("apps", "Deployment", "d", &errs),
        Status::too_many_requests("x", 2),
        Status::bad_request("nope"),
    ] {
        assert_eq!(Status::from_json(&s.to_json()), Some(s.clone()));
    }
}

#[test]
fn from_json_rejects_success_and_other_kinds() {
    assert_eq!(Status::from_json(&success("", "pods", "a", "u1")), None);
    assert_eq!(Status::from_json(&json!({"kind": "Pod"})), None);
}

#[test]
fn success_names_the_object() {
    assert_eq!(
        success("apps", "deployments", "web", "123"),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "web", "group": "apps", "kind": "deployments", "uid": "123"}})
    );
}

#[test]
fn reasons_parse_back_from_their_names() {
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.as_str()), r);
    }
    assert_eq!(Reason::parse("Whatever"), Reason::Unknown);
}

#[test]
fn names_with_quotes_are_quoted_as_go_quotes_them() {
    assert_eq!(
        Status::not_found("", "pods", "a\"b").message,
        r#"pods "a\"b" not found"#
    );
}
