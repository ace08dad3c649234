//! Leases (coordination.k8s.io/v1): what leader election and node heartbeats write; no
//! defaults, durations and transitions checked, printed with their holder.

use k8s_openapi::api::coordination::v1 as coordv1;
use serde_json::Value;

use super::{
    no_status_checks, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes,
};
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::rbac;

pub(crate) static LEASE: Kind = Kind {
    object: ObjectType::listable::<coordv1::Lease>(),
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
        columns: printers::lease_columns,
        cells: printers::lease_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(rbac::validate_lease(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(rbac::validate_lease_update(&decode(new)?, &decode(old)?))
}
