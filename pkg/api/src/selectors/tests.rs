use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn label_selectors_parse_and_print_as_kubernetes_prints_them() {
    let cases = [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("x in (b,a)", "x in (a,b)"),
        ("x notin (z)", "x notin (z)"),
        ("a,!b", "a,!b"),
        ("b=1,a=2", "a=2,b=1"),
        (
            "  app = web ,  tier in ( fe , be )  ",
            "app=web,tier in (be,fe)",
        ),
        ("x>3", "x>3"),
        ("x<3", "x<3"),
        ("a=", "a="),
        ("x in ()", "x in ()"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("example.com/role=db", "example.com/role=db"),
        ("in=notin", "in=notin"),
    ];
    for (input, printed) in cases {
        let s = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(s.to_string(), printed, "{input}");
    }
}

#[test]
fn bad_label_selectors_fail_with_kubernetes_messages() {
    let cases = [
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("x in a", "unable to parse requirement: found 'a' expected: '('"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"),
        (
            "-x=a",
            "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "a=-b",
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ];
    for (input, msg) in cases {
        assert_eq!(
            LabelSelector::parse(input).unwrap_err().message,
            msg,
            "{input}"
        );
    }
}

#[test]
fn label_selectors_match_as_kubernetes_matches() {
    let l = labels(&[("app", "web"), ("tier", "fe"), ("n", "5")]);
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("app in (web,db)", true),
        ("app notin (web)", false),
        ("missing notin (x)", true),
        ("missing in (x)", false),
        ("app", true),
        ("!app", false),
        ("!missing", true),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("tier>1", false),
        ("app=web,tier=fe", true),
        ("app=web,tier=be", false),
    ];
    for (sel, want) in cases {
        assert_eq!(
            LabelSelector::parse(sel).unwrap().matches(&l),
            want,
            "{sel}"
        );
    }
}

#[test]
fn metav1_selectors_convert_with_nil_matching_nothing_and_empty_everything() {
    let l = labels(&[("app", "web")]);
    assert!(!LabelSelector::from_metav1(None).unwrap().matches(&l));
    assert!(
        LabelSelector::from_metav1(Some(&metav1::LabelSelector::default()))
            .unwrap()
            .matches(&l)
    );
    let ls: metav1::LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}, {"key": "x", "operator": "DoesNotExist"}]
    }))
    .unwrap();
    let s = LabelSelector::from_metav1(Some(&ls)).unwrap();
    assert_eq!(s.to_string(), "app=web,tier notin (db),!x");
    assert!(s.matches(&l));
    let bad: metav1::LabelSelector = serde_json::from_value(
        json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
    )
    .unwrap();
    assert_eq!(
        LabelSelector::from_metav1(Some(&bad)).unwrap_err().message,
        "\"Gt\" is not a valid label selector operator"
    );
    assert!(LabelSelector::from_metav1_json(None).unwrap().is_nothing());
    assert!(LabelSelector::from_metav1_json(Some(&json!({})))
        .unwrap()
        .is_empty());
}

#[test]
fn label_selectors_match_objects_and_json_labels() {
    let s = LabelSelector::parse("app=web").unwrap();
    assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!s.matches_object(&json!({"metadata": {}})));
    assert!(LabelSelector::parse("!app")
        .unwrap()
        .matches_object(&json!({})));
}

#[test]
fn field_selectors_parse_sort_and_unescape_terms() {
    let cases = [
        ("", ""),
        ("metadata.name=x", "metadata.name=x"),
        ("metadata.name==x", "metadata.name=x"),
        (
            "spec.nodeName!=n1,metadata.name=x",
            "metadata.name=x,spec.nodeName!=n1",
        ),
        ("metadata.name=a\\,b", "metadata.name=a\\,b"),
        ("spec.nodeName=", "spec.nodeName="),
    ];
    for (input, printed) in cases {
        assert_eq!(
            FieldSelector::parse(input).unwrap().to_string(),
            printed,
            "{input}"
        );
    }
    let s = FieldSelector::parse("metadata.name=a\\,b\\=c").unwrap();
    assert_eq!(s.terms()[0].value, "a,b=c");
}

#[test]
fn bad_field_selectors_fail_with_kubernetes_messages() {
    let cases = [
        ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        (
            "a=b\\x",
            "invalid field selector: invalid escape sequence: \\x",
        ),
        (
            "a=b=c",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "a=b\\",
            "invalid field selector: invalid escape sequence: \\",
        ),
    ];
    for (input, msg) in cases {
        assert_eq!(
            FieldSelector::parse(input).unwrap_err().message,
            msg,
            "{input}"
        );
    }
}

#[test]
fn field_selectors_match_field_sets_with_absent_fields_empty() {
    let f: BTreeMap<String, String> = labels(&[("metadata.name", "x"), ("spec.nodeName", "")]);
    let cases = [
        ("metadata.name=x", true),
        ("metadata.name!=x", false),
        ("spec.nodeName=", true),
        ("spec.nodeName!=", false),
        ("status.phase=", true),
        ("metadata.name=x,spec.nodeName=n", false),
    ];
    for (sel, want) in cases {
        assert_eq!(
            FieldSelector::parse(sel).unwrap().matches(&f),
            want,
            "{sel}"
        );
    }
}

#[test]
fn exact_matches_are_exposed_for_index_lookups() {
    let s = FieldSelector::parse("spec.nodeName=n1,metadata.name!=x").unwrap();
    assert_eq!(s.requires_exact_match("spec.nodeName"), Some("n1"));
    assert_eq!(s.requires_exact_match("metadata.name"), None);
}

#[test]
fn selector_errors_become_bad_requests() {
    let s = LabelSelector::parse("=").unwrap_err().into_status();
    assert_eq!(s.code, 400);
}
