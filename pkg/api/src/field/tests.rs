use super::*;
use crate::names::IS_NEGATIVE_ERROR;

#[test]
fn field_paths_print_as_kubernetes_prints_them() {
    let spec = FieldPath::new("spec");
    assert_eq!(
        spec.child("containers").index(0).child("image").to_string(),
        "spec.containers[0].image"
    );
    assert_eq!(
        FieldPath::new("metadata")
            .child("labels")
            .key("app")
            .to_string(),
        "metadata.labels[app]"
    );
    assert_eq!(FieldPath::new("data").key("a b").to_string(), "data[a b]");
    assert_eq!(FieldPath::new("").to_string(), "[]");
    assert_eq!(
        FieldPath::from_names(&["roleRef", "name"]).to_string(),
        "roleRef.name"
    );
}

#[test]
fn field_errors_render_like_kubernetes_field_errors() {
    let p = FieldPath::from_names(&["spec", "replicas"]);
    let cases = [
        (
            FieldError::required(&p, ""),
            "spec.replicas: Required value",
        ),
        (
            FieldError::required(&p, "must be set"),
            "spec.replicas: Required value: must be set",
        ),
        (
            FieldError::invalid(&p, -1, IS_NEGATIVE_ERROR),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            FieldError::invalid(&p, "a\"b", "bad"),
            "spec.replicas: Invalid value: \"a\\\"b\": bad",
        ),
        (
            FieldError::invalid(&p, BadValue::Null, "gone"),
            "spec.replicas: Invalid value: \"null\": gone",
        ),
        (
            FieldError::invalid(&p, true, "no"),
            "spec.replicas: Invalid value: true: no",
        ),
        (
            FieldError::not_supported(&p, "x", &["a", "b"]),
            "spec.replicas: Unsupported value: \"x\": supported values: \"a\", \"b\"",
        ),
        (
            FieldError::duplicate(&p, "x"),
            "spec.replicas: Duplicate value: \"x\"",
        ),
        (
            FieldError::forbidden(&p, "nope"),
            "spec.replicas: Forbidden: nope",
        ),
        (
            FieldError::too_long(&p, 10),
            "spec.replicas: Too long: may not be more than 10 bytes",
        ),
        (
            FieldError::too_long(&p, 1),
            "spec.replicas: Too long: may not be more than 1 byte",
        ),
        (
            FieldError::too_many(&p, Some(5), 3),
            "spec.replicas: Too many: 5: must have at most 3 items",
        ),
        (
            FieldError::too_many(&p, None, 1),
            "spec.replicas: Too many: must have at most 1 item",
        ),
        (
            FieldError::not_found(&p, "x"),
            "spec.replicas: Not found: \"x\"",
        ),
        (
            FieldError::internal(&p, "oops"),
            "spec.replicas: Internal error: oops",
        ),
        (
            FieldError::type_invalid(&p, "x", "expected int"),
            "spec.replicas: Invalid value: \"x\": expected int",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
    assert_eq!(
        FieldError::required(&p, "").error_type.reason(),
        "FieldValueRequired"
    );
}

#[test]
fn go_quote_escapes_like_strconv_quote() {
    assert_eq!(go_quote("plain"), "\"plain\"");
    assert_eq!(go_quote("tab\tnew\nline"), "\"tab\\tnew\\nline\"");
    assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
    assert_eq!(go_quote("héllo"), "\"héllo\"");
}
