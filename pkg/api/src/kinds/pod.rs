//! Pods (core/v1): defaulted as Kubernetes' defaulters and admission plugins leave them,
//! created with their status (Pending and a QoS class) and always a generation, status
//! written through `pods/status`, selectable by node, phase, IP and more.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as corev1;
use serde_json::Value;

use super::{str_at, FieldLabels, Kind, ObjectType, StatusWrites, Storage, Validation, Writes};
use crate::defaults;
use crate::field::ErrorList;
use crate::status::Status;
use crate::strict::decode;
use crate::table::{printers, Printer};
use crate::validation::pods;

pub(crate) static POD: Kind = Kind {
    object: ObjectType::listable::<corev1::Pod>(),
    defaults: defaults::default_pod,
    writes: Writes {
        status: StatusWrites::SubresourceSetOnCreate,
        generation_always: true,
    },
    validation: Validation {
        create,
        update,
        status_update,
    },
    fields: FieldLabels {
        own_conversion: true,
        labels: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        // v1's deprecated name of spec.nodeName.
        renames: &[("spec.host", "spec.nodeName")],
        values: field_values,
    },
    printer: Printer {
        columns: printers::pod_columns,
        cells: printers::pod_cells,
        conditions: printers::pod_conditions,
    },
    storage: Storage::AS_SERVED,
};

fn create(obj: &Value) -> Result<ErrorList, Status> {
    Ok(pods::validate_pod(&decode(obj)?))
}

fn update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(pods::validate_pod_update(&decode(new)?, &decode(old)?))
}

fn status_update(new: &Value, old: &Value) -> Result<ErrorList, Status> {
    Ok(pods::validate_pod_status_update(
        &decode(new)?,
        &decode(old)?,
    ))
}

fn field_values(obj: &Value, f: &mut BTreeMap<String, String>) {
    for (k, p) in [
        ("spec.nodeName", "/spec/nodeName"),
        ("spec.restartPolicy", "/spec/restartPolicy"),
        ("spec.schedulerName", "/spec/schedulerName"),
        ("spec.serviceAccountName", "/spec/serviceAccountName"),
        ("status.phase", "/status/phase"),
        ("status.nominatedNodeName", "/status/nominatedNodeName"),
    ] {
        f.insert(k.to_string(), str_at(obj, p).to_string());
    }
    let host_network = obj
        .pointer("/spec/hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    f.insert("spec.hostNetwork".to_string(), host_network.to_string());
    let mut ip = str_at(obj, "/status/podIPs/0/ip").to_string();
    if ip.is_empty() {
        ip = str_at(obj, "/status/podIP").to_string();
    }
    f.insert("status.podIP".to_string(), ip);
}
