//! ReplicaSets (apps/v1): replicas and the template's pod spec defaulted, always a
//! generation, status written only through `replicasets/status` (replica counts checked
//! there), selectable by `status.replicas`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1 as appsv1;
use serde_json::Value;

use super::{FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::{apps, selector_present};

pub(crate) static REPLICA_SET: Kind = Kind {
    object: ObjectType::listable::<appsv1::ReplicaSet>(),
    defaults: defaults::default_replica_set,
    writes: Writes {
        status: StatusWrites::Subresource,
        generation_always: true,
    },
    validation: Validation {
        create,
        update,
        status_update,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &["status.replicas"],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::replica_set_columns,
        cells: printers::replica_set_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_replica_set(
        &decode(obj)?,
        selector_present(obj),
    ))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_replica_set_update(
        &decode(new)?,
        &decode(old)?,
        selector_present(new),
    ))
}

fn status_update(new: &Value, _old: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_replica_set_status(&decode(new)?))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    let n = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    f.insert("status.replicas".to_string(), n.to_string());
}
