use serde_json::json;

use super::*;
use crate::registry::{lookup, RESOURCES};

#[test]
fn every_served_kind_has_an_entry_of_its_own_type() {
    for r in RESOURCES {
        let t = &r.behaviour.object;
        assert_eq!(
            (t.group, t.version, t.kind, t.list_kind),
            (r.group, r.version, r.kind, Some(r.list_kind)),
            "the entry of {}/{} names another type",
            r.group,
            r.kind
        );
    }
}

#[test]
fn no_two_resources_share_an_entry() {
    for (i, a) in RESOURCES.iter().enumerate() {
        for b in &RESOURCES[i + 1..] {
            assert!(
                !std::ptr::eq(a.behaviour, b.behaviour),
                "{}/{} and {}/{} point at one entry",
                a.group,
                a.kind,
                b.group,
                b.kind
            );
        }
    }
}

#[test]
fn status_is_written_through_a_subresource_exactly_when_one_is_served() {
    for r in RESOURCES {
        assert_eq!(
            r.behaviour.writes.status.is_subresource(),
            r.subresource("status").is_some(),
            "{}/{}",
            r.group,
            r.kind
        );
    }
}

#[test]
fn every_served_kind_has_every_piece() {
    let now = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap();
    for r in RESOURCES {
        let what = format!("{}/{}", r.group, r.kind);
        let mut obj = json!({
            "apiVersion": r.api_version(),
            "kind": r.kind,
            "metadata": {"name": "x", "namespace": "default"},
        });
        if !r.namespaced {
            obj["metadata"].as_object_mut().unwrap().remove("namespace");
        }
        // Defaulting and every check run, and an object without a spec decodes.
        r.default_object(&mut obj);
        r.create_errors(&obj)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        r.update_errors(&obj, &obj)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        r.status_update_errors(&obj, &obj)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        // Strict decoding knows every field the defaults add.
        assert_eq!(
            r.unknown_fields(&obj).unwrap(),
            Vec::<String>::new(),
            "{what}"
        );
        // A row per object, cell for column.
        let columns = r.column_definitions();
        assert!(!columns.is_empty(), "{what}");
        assert_eq!(
            columns[0].name,
            if r.kind == "Event" {
                "Last Seen"
            } else {
                "Name"
            }
        );
        assert_eq!(r.row_cells(&obj, now).len(), columns.len(), "{what}");
        // Field selectors: the metadata fields, and a value for each label the kind names.
        let fields = r.field_set(&obj);
        assert_eq!(fields["metadata.name"], "x", "{what}");
        for label in r.behaviour.fields.labels {
            assert!(
                r.supported_fields().contains(label),
                "{what}: {label} is not supported"
            );
        }
        // Strategic merge patches and the OpenAPI documents know the kind.
        assert!(
            crate::patch::schema_for_kind(r.kind).is_some(),
            "{what} has no patch schema"
        );
        // Served and stored forms convert back and forth.
        let stored = r.to_storage(obj.clone());
        assert_eq!(r.from_storage(stored)["kind"], json!(r.kind), "{what}");
    }
}

#[test]
fn subresource_bodies_have_types() {
    for r in RESOURCES {
        for s in r.subresources {
            let group = s.group_version.map_or(r.group, |(g, _)| g);
            assert!(
                crate::registry::object_type(group, s.kind).is_some(),
                "{}/{} has no type",
                r.plural,
                s.name
            );
        }
    }
}

#[test]
fn entries_are_reached_through_their_row() {
    let pods = lookup("", "v1", "pods").unwrap();
    assert!(std::ptr::eq(pods.behaviour, &POD));
    assert_eq!(pods.behaviour, &POD);
    assert_ne!(pods.behaviour, &NODE);
}
