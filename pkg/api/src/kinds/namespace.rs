//! Namespaces (core/v1, cluster-scoped): the name label, the `kubernetes` finalizer and
//! the Active phase by default, created with that status, selectable by phase.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{
    no_status_checks, str_at, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation,
    Writes,
};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::core;

pub(crate) static NAMESPACE: Kind = Kind {
    object: ObjectType::listable::<corev1::Namespace>(),
    defaults: defaults::default_namespace,
    writes: Writes {
        status: StatusWrites::SubresourceSetOnCreate,
        generation_always: false,
    },
    validation: Validation {
        create,
        update,
        status_update: no_status_checks,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &["status.phase"],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::namespace_columns,
        cells: printers::namespace_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_namespace(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_namespace_update(
        &decode(new)?,
        &decode(old)?,
    ))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    f.insert(
        "status.phase".to_string(),
        str_at(obj, "/status/phase").to_string(),
    );
}
