//! Events of events.k8s.io/v1: the same objects as core/v1 Events with renamed and
//! regrouped fields, stored in their core/v1 form (`/registry/events`), validated there
//! with the stricter checks of their group, selectable by `regarding.*` and
//! `reportingController` (the core fields under their v1 names).

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::api::events::v1 as eventsv1;
use serde_json::Value;

use super::{
    event, no_status_checks, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation,
    Writes,
};
use crate::convert::{event_core_to_v1, event_v1_to_core};
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::events;

const GROUP: &str = "events.k8s.io";

pub(crate) static EVENTS_K8S_IO_EVENT: Kind = Kind {
    object: ObjectType::listable::<eventsv1::Event>(),
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
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        renames: &[
            ("regarding.kind", "involvedObject.kind"),
            ("regarding.namespace", "involvedObject.namespace"),
            ("regarding.name", "involvedObject.name"),
            ("regarding.uid", "involvedObject.uid"),
            ("regarding.apiVersion", "involvedObject.apiVersion"),
            (
                "regarding.resourceVersion",
                "involvedObject.resourceVersion",
            ),
            ("regarding.fieldPath", "involvedObject.fieldPath"),
            ("reportingController", "reportingComponent"),
        ],
        values: event::field_values,
    },
    printer: Printer {
        columns: printers::event_columns,
        cells: printers::events_v1_event_cells,
        conditions: no_conditions,
    },
    storage: Storage {
        to_storage: |v| event_v1_to_core(&v),
        from_storage: |v| event_core_to_v1(&v),
    },
};

/// Decodes the object as served (so errors name the v1 fields), then in its stored form.
fn decode_both(obj: &Value) -> Result<Value, Status> {
    let _: eventsv1::Event = decode(obj)?;
    let core = event_v1_to_core(obj);
    let _: corev1::Event = decode(&core)?;
    Ok(core)
}

fn create(obj: &Value) -> Result<ErrorList, Status> {
    let core = decode_both(obj)?;
    Ok(events::validate_event_create(&core, GROUP))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    let core = decode_both(new)?;
    Ok(events::validate_event_update(
        &core,
        &event_v1_to_core(old),
        GROUP,
    ))
}
