//! RoleBindings (rbac.authorization.k8s.io/v1): the RBAC group defaulted on the role
//! reference and on users and groups, printed with their role and subjects.

use k8s_openapi::api::rbac::v1 as rbacv1;
use serde_json::Value;

use super::{
    no_status_checks, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes,
};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::rbac;

pub(crate) static ROLE_BINDING: Kind = Kind {
    object: ObjectType::listable::<rbacv1::RoleBinding>(),
    defaults: defaults::default_role_binding,
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
        columns: printers::role_binding_columns,
        cells: printers::binding_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(rbac::validate_role_binding(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(rbac::validate_role_binding_update(
        &decode(new)?,
        &decode(old)?,
    ))
}
