//! ConfigMaps (core/v1): no defaults, keys and sizes checked, selectable by metadata only.

use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{
    no_status_checks, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes,
};
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::core;

pub(crate) static CONFIG_MAP: Kind = Kind {
    object: ObjectType::listable::<corev1::ConfigMap>(),
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
    fields: FieldLabels::METADATA_ONLY,
    printer: Printer {
        columns: printers::config_map_columns,
        cells: printers::config_map_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_config_map(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_config_map_update(
        &decode(new)?,
        &decode(old)?,
    ))
}
