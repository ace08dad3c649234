//! Nodes (core/v1, cluster-scoped): allocatable defaults to capacity, a kubelet registers
//! its node with its status, status written through `nodes/status` under the same checks
//! as an update, selectable by `spec.unschedulable`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::core;

pub(crate) static NODE: Kind = Kind {
    object: ObjectType::listable::<corev1::Node>(),
    defaults: defaults::default_node,
    writes: Writes {
        status: StatusWrites::SubresourceSetOnCreate,
        generation_always: false,
    },
    validation: Validation {
        create,
        update,
        status_update: update,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &["spec.unschedulable"],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::node_columns,
        cells: printers::node_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_node(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_node_update(&decode(new)?, &decode(old)?))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    let unschedulable = obj
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    f.insert("spec.unschedulable".to_string(), unschedulable.to_string());
}
