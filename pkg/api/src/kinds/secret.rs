//! Secrets (core/v1): type Opaque and `stringData` folded into `data` by default,
//! selectable by `type`.

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

pub(crate) static SECRET: Kind = Kind {
    object: ObjectType::listable::<corev1::Secret>(),
    defaults: defaults::default_secret,
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
        labels: &["type"],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::secret_columns,
        cells: printers::secret_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_secret(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_secret_update(&decode(new)?, &decode(old)?))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    f.insert("type".to_string(), str_at(obj, "/type").to_string());
}
