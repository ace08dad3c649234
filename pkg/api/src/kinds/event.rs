//! Events (core/v1), the stored form of both served event versions: no defaults, the
//! event checks of their API group, selectable by involved object, reason, source and
//! type.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{
    no_status_checks, str_at, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation,
    Writes,
};
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::events;

pub(crate) static EVENT: Kind = Kind {
    object: ObjectType::listable::<corev1::Event>(),
    defaults: |_| {},
    writes: Writes {
        status: StatusWrites::WithObject,
        generation_always: false,
    },
    validation: Validation {
        create,
        update,
        status_update: no_status_checks,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::event_columns,
        cells: printers::event_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    let _: corev1::Event = decode(obj)?;
    Ok(events::validate_event_create(obj, ""))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    let _: corev1::Event = decode(new)?;
    Ok(events::validate_event_update(new, old, ""))
}

/// The selectable fields of an event, of either served version: an events.k8s.io/v1
/// object is read in its core/v1 form, which both store.
pub(super) fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    let converted;
    let obj = if obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1") {
        converted = crate::convert::event_v1_to_core(obj);
        &converted
    } else {
        obj
    };
    let mut put = |k: &str, v: String| {
        f.insert(k.to_string(), v);
    };
    for k in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        put(
            &format!("involvedObject.{k}"),
            str_at(obj, &format!("/involvedObject/{k}")).to_string(),
        );
    }
    put("reason", str_at(obj, "/reason").to_string());
    put(
        "reportingComponent",
        str_at(obj, "/reportingComponent").to_string(),
    );
    let mut source = str_at(obj, "/source/component").to_string();
    if source.is_empty() {
        source = str_at(obj, "/reportingComponent").to_string();
    }
    put("source", source);
    put("type", str_at(obj, "/type").to_string());
}
