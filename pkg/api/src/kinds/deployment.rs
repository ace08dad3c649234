//! Deployments (apps/v1): replicas, strategy, history and the template's pod spec
//! defaulted, always a generation, status written only through `deployments/status`
//! (replica counts checked there), selectable by metadata only.

use k8s_openapi::api::apps::v1 as appsv1;
use serde_json::Value;

use super::{FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{no_conditions, printers, Printer};
use crate::validation::{apps, selector_present};

pub(crate) static DEPLOYMENT: Kind = Kind {
    object: ObjectType::listable::<appsv1::Deployment>(),
    defaults: defaults::default_deployment,
    writes: Writes {
        status: StatusWrites::Subresource,
        generation_always: true,
    },
    validation: Validation {
        create,
        update,
        status_update,
    },
    fields: FieldLabels::METADATA_ONLY,
    printer: Printer {
        columns: printers::deployment_columns,
        cells: printers::deployment_cells,
        conditions: no_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_deployment(
        &decode(obj)?,
        selector_present(obj),
    ))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_deployment_update(
        &decode(new)?,
        &decode(old)?,
        selector_present(new),
    ))
}

fn status_update(new: &Value, _old: &Value) -> Result<ErrorList, Status> {
    Ok(apps::validate_deployment_status(&decode(new)?))
}
