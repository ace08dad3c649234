//! Services (core/v1): type, ports, traffic policies and IP families defaulted, status
//! (load-balancer ingress) written only through `services/status`, selectable by cluster
//! IP and type.

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

pub(crate) static SERVICE: Kind = Kind {
    object: ObjectType::listable::<corev1::Service>(),
    defaults: defaults::default_service,
    writes: Writes {
        status: StatusWrites::Subresource,
        generation_always: false,
    },
    validation: Validation {
        create,
        update,
        status_update: no_status_checks,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &["spec.clusterIP", "spec.type"],
        renames: &[],
        values: field_values,
    },
    printer: Printer {
        columns: printers::service_columns,
        cells: printers::service_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_service(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(core::validate_service_update(&decode(new)?, &decode(old)?))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    f.insert(
        "spec.clusterIP".to_string(),
        str_at(obj, "/spec/clusterIP").to_string(),
    );
    f.insert(
        "spec.type".to_string(),
        str_at(obj, "/spec/type").to_string(),
    );
}
