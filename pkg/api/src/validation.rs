//! Validation of objects on create and update, with Kubernetes' field paths, error types
//! and messages: `ObjectMeta` rules shared by every kind, then each kind's required,
//! enumerated and immutable fields. Entry points take an object as JSON (already
//! defaulted, with a name generated from `generateName` when there was one) and answer
//! `Ok(())` or the 422 Invalid [`Status`] Kubernetes would answer. Validation never
//! changes an object and never looks at other objects (a pod's namespace existing is
//! the registry's question).

mod affinity;
mod apps;
mod core;
mod errors;
mod events;
pub(crate) mod gofmt;
mod meta;
mod names;
mod path;
mod pods;
mod rbac;

use serde_json::Value;

pub use affinity::{
    validate_affinity, validate_node_selector, validate_topology_spread_constraints,
};
pub(crate) use errors::aggregate_strings;
pub use errors::{aggregate_message, go_quote, BadValue, ErrorList, ErrorType, FieldError};
pub use meta::{
    validate_annotations, validate_finalizers, validate_label_name, validate_labels,
    validate_object_meta, validate_object_meta_accessor, validate_object_meta_update,
    validate_owner_references, STANDARD_FINALIZERS, TOTAL_ANNOTATION_SIZE_LIMIT,
};
pub use names::{
    generate_name, inclusive_range_error, is_config_map_key, is_dns1035_label, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_qualified_name, is_valid_cidr, is_valid_ip,
    is_valid_label_value, is_valid_path_segment_name, is_valid_percent, is_valid_port_name,
    is_valid_port_num, max_len_error, name_is_dns1035_label, name_is_dns_label,
    name_is_dns_subdomain, name_is_path_segment, parse_cidr, regex_error, NameValidator,
    DNS1123_LABEL_MAX_LENGTH, DNS1123_SUBDOMAIN_MAX_LENGTH, EMPTY_ERROR, FIELD_IMMUTABLE_ERROR,
    GENERATED_NAME_ALPHABET, IS_NEGATIVE_ERROR,
};
pub use path::FieldPath;
pub use pods::{validate_pod_spec, validate_pod_template_spec};

use crate::registry::ResourceInfo;
use crate::status::Status;
use crate::strict::decode;

use k8s_openapi::api::{
    apps::v1 as appsv1, coordination::v1 as coordv1, core::v1 as corev1, rbac::v1 as rbacv1,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The field errors of a new object of `info`'s kind (empty when valid). A body that does
/// not decode as the kind is a 400 Bad Request.
pub fn create_errors(info: &ResourceInfo, obj: &Value) -> Result<ErrorList, Status> {
    let errs = match (info.group, info.kind) {
        ("", "Pod") => pods::validate_pod(&decode::<corev1::Pod>(info, obj)?),
        ("", "Namespace") => core::validate_namespace(&decode::<corev1::Namespace>(info, obj)?),
        ("", "Node") => core::validate_node(&decode::<corev1::Node>(info, obj)?),
        ("", "ConfigMap") => core::validate_config_map(&decode::<corev1::ConfigMap>(info, obj)?),
        ("", "Secret") => core::validate_secret(&decode::<corev1::Secret>(info, obj)?),
        ("", "ServiceAccount") => {
            core::validate_service_account(&decode::<corev1::ServiceAccount>(info, obj)?)
        }
        ("", "Service") => core::validate_service(&decode::<corev1::Service>(info, obj)?),
        ("", "Event") | ("events.k8s.io", "Event") => {
            let _: corev1::Event = decode_event(info, obj)?;
            events::validate_event_create(&event_core_form(info, obj), info.group)
        }
        ("apps", "Deployment") => apps::validate_deployment(
            &decode::<appsv1::Deployment>(info, obj)?,
            selector_present(obj),
        ),
        ("apps", "ReplicaSet") => apps::validate_replica_set(
            &decode::<appsv1::ReplicaSet>(info, obj)?,
            selector_present(obj),
        ),
        ("coordination.k8s.io", "Lease") => {
            rbac::validate_lease(&decode::<coordv1::Lease>(info, obj)?)
        }
        ("rbac.authorization.k8s.io", "Role") => {
            rbac::validate_role(&decode::<rbacv1::Role>(info, obj)?)
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            rbac::validate_cluster_role(&decode::<rbacv1::ClusterRole>(info, obj)?)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            rbac::validate_role_binding(&decode::<rbacv1::RoleBinding>(info, obj)?)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            rbac::validate_cluster_role_binding(&decode::<rbacv1::ClusterRoleBinding>(info, obj)?)
        }
        _ => ErrorList::new(),
    };
    if !errs.is_empty() {
        return Ok(errs);
    }
    // Kubernetes runs the generic ObjectMeta checks after the kind's own, so that the
    // kind's more specific messages win.
    let meta = object_meta(obj)?;
    Ok(validate_object_meta_accessor(
        &meta,
        info.namespaced,
        name_is_path_segment,
        &FieldPath::new("metadata"),
    ))
}

/// Validates a new object; `Err` is the 422 Invalid Status (or 400 for an undecodable body).
pub fn validate_create(info: &ResourceInfo, obj: &Value) -> Result<(), Status> {
    let errs = create_errors(info, obj)?;
    into_result(info, obj, errs)
}

/// The field errors of an update of `old` to `new` (both full objects of `info`'s kind).
pub fn update_errors(info: &ResourceInfo, new: &Value, old: &Value) -> Result<ErrorList, Status> {
    let meta_path = FieldPath::new("metadata");
    let new_meta = object_meta(new)?;
    let old_meta = object_meta(old)?;
    // The generic checks come first on update, as in Kubernetes' BeforeUpdate.
    let mut errs =
        validate_object_meta_accessor(&new_meta, info.namespaced, name_is_path_segment, &meta_path);
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, &meta_path,
    ));
    let kind_errs = match (info.group, info.kind) {
        ("", "Pod") => pods::validate_pod_update(&decode(info, new)?, &decode(info, old)?),
        ("", "Namespace") => {
            core::validate_namespace_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("", "Node") => core::validate_node_update(&decode(info, new)?, &decode(info, old)?),
        ("", "ConfigMap") => {
            core::validate_config_map_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("", "Secret") => core::validate_secret_update(&decode(info, new)?, &decode(info, old)?),
        ("", "ServiceAccount") => {
            core::validate_service_account_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("", "Service") => core::validate_service_update(&decode(info, new)?, &decode(info, old)?),
        ("", "Event") | ("events.k8s.io", "Event") => {
            let _: corev1::Event = decode_event(info, new)?;
            events::validate_event_update(
                &event_core_form(info, new),
                &event_core_form(info, old),
                info.group,
            )
        }
        ("apps", "Deployment") => apps::validate_deployment_update(
            &decode(info, new)?,
            &decode(info, old)?,
            selector_present(new),
        ),
        ("apps", "ReplicaSet") => apps::validate_replica_set_update(
            &decode(info, new)?,
            &decode(info, old)?,
            selector_present(new),
        ),
        ("coordination.k8s.io", "Lease") => {
            rbac::validate_lease_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("rbac.authorization.k8s.io", "Role") => {
            rbac::validate_role_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            rbac::validate_cluster_role_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            rbac::validate_role_binding_update(&decode(info, new)?, &decode(info, old)?)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            rbac::validate_cluster_role_binding_update(&decode(info, new)?, &decode(info, old)?)
        }
        _ => ErrorList::new(),
    };
    errs.extend(kind_errs);
    Ok(errs)
}

/// Validates an update; `Err` is the 422 Invalid Status (or 400 for an undecodable body).
pub fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), Status> {
    let errs = update_errors(info, new, old)?;
    into_result(info, new, errs)
}

/// The field errors of a write to the `status` subresource: metadata may not change
/// identity, and the status itself must be consistent (replica counts, addresses).
pub fn status_update_errors(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Result<ErrorList, Status> {
    let meta_path = FieldPath::new("metadata");
    let mut errs = validate_object_meta_update(&object_meta(new)?, &object_meta(old)?, &meta_path);
    errs.extend(match (info.group, info.kind) {
        ("apps", "Deployment") => apps::validate_deployment_status(&decode(info, new)?),
        ("apps", "ReplicaSet") => apps::validate_replica_set_status(&decode(info, new)?),
        ("", "Pod") => pods::validate_pod_status_update(&decode(info, new)?, &decode(info, old)?),
        ("", "Node") => core::validate_node_update(&decode(info, new)?, &decode(info, old)?),
        _ => ErrorList::new(),
    });
    Ok(errs)
}

/// Validates a write to the `status` subresource.
pub fn validate_status_update(info: &ResourceInfo, new: &Value, old: &Value) -> Result<(), Status> {
    let errs = status_update_errors(info, new, old)?;
    into_result(info, new, errs)
}

/// Validates the body of a `pods/binding` create (a core/v1 `Binding`): the target must
/// name a node.
pub fn validate_binding(binding: &Value) -> Result<(), Status> {
    let mut errs = ErrorList::new();
    let kind = binding
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        errs.push(FieldError::not_supported(
            &FieldPath::from_names(&["target", "kind"]),
            kind,
            &["Node", "<empty>"],
        ));
    }
    if binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        errs.push(FieldError::required(
            &FieldPath::from_names(&["target", "name"]),
            "",
        ));
    }
    if errs.is_empty() {
        return Ok(());
    }
    let name = binding
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(Status::invalid("", "Binding", name, &errs))
}

/// Validates the body of a `scale` subresource write (an autoscaling/v1 `Scale`); errors
/// name `Scale.autoscaling`, as Kubernetes' do.
pub fn validate_scale(scale: &Value) -> Result<(), Status> {
    let meta = object_meta(scale)?;
    let mut errs = validate_object_meta(
        &meta,
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    );
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        errs.push(FieldError::invalid(
            &FieldPath::from_names(&["spec", "replicas"]),
            replicas,
            IS_NEGATIVE_ERROR,
        ));
    }
    if errs.is_empty() {
        return Ok(());
    }
    let name = scale
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(Status::invalid("autoscaling", "Scale", name, &errs))
}

/// The options of a `pods/log` read, from its query (Kubernetes' `PodLogOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodLogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<String>,
}

impl PodLogOptions {
    /// Reads the query parameters Kubernetes reads; a number or boolean that does not
    /// parse is a 400, as Kubernetes' query conversion answers.
    pub fn from_query(q: &std::collections::HashMap<String, String>) -> Result<Self, Status> {
        let int = |k: &str| -> Result<Option<i64>, Status> {
            match q.get(k).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    Status::bad_request(format!(
                        "couldn't parse {k} {v:?}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ))
                }),
            }
        };
        let flag = |k: &str| -> Result<bool, Status> {
            match q.get(k).map(String::as_str) {
                None | Some("") | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(v) => Err(Status::bad_request(format!(
                    "couldn't parse {k} {v:?}: strconv.ParseBool: parsing {v:?}: invalid syntax"
                ))),
            }
        };
        Ok(PodLogOptions {
            container: q.get("container").filter(|c| !c.is_empty()).cloned(),
            follow: flag("follow")?,
            previous: flag("previous")?,
            timestamps: flag("timestamps")?,
            tail_lines: int("tailLines")?,
            limit_bytes: int("limitBytes")?,
            since_seconds: int("sinceSeconds")?,
            since_time: q.get("sinceTime").filter(|t| !t.is_empty()).cloned(),
        })
    }
}

/// Validates a `pods/log` read's options as Kubernetes' `ValidatePodLogOptions` does;
/// errors name `PodLogOptions` and the pod.
pub fn validate_pod_log_options(pod: &str, opts: &PodLogOptions) -> Result<(), Status> {
    let mut errs = ErrorList::new();
    if let Some(n) = opts.tail_lines.filter(|n| *n < 0) {
        errs.push(FieldError::invalid(
            &FieldPath::new("tailLines"),
            n,
            IS_NEGATIVE_ERROR,
        ));
    }
    if let Some(n) = opts.limit_bytes.filter(|n| *n < 1) {
        errs.push(FieldError::invalid(
            &FieldPath::new("limitBytes"),
            n,
            "must be greater than 0",
        ));
    }
    match (opts.since_seconds, &opts.since_time) {
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &FieldPath::new(""),
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(n), None) if n < 1 => errs.push(FieldError::invalid(
            &FieldPath::new("sinceSeconds"),
            n,
            "must be greater than 0",
        )),
        _ => {}
    }
    if errs.is_empty() {
        return Ok(());
    }
    Err(Status::invalid("", "PodLogOptions", pod, &errs))
}

fn into_result(info: &ResourceInfo, obj: &Value, errs: ErrorList) -> Result<(), Status> {
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(Status::invalid(info.group, info.kind, name, &errs))
}

fn object_meta(obj: &Value) -> Result<ObjectMeta, Status> {
    match obj.get("metadata") {
        None | Some(Value::Null) => Ok(ObjectMeta::default()),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| Status::bad_request(format!("unable to decode metadata: {e}"))),
    }
}

fn selector_present(obj: &Value) -> bool {
    !matches!(obj.pointer("/spec/selector"), None | Some(Value::Null))
}

fn decode_event(info: &ResourceInfo, obj: &Value) -> Result<corev1::Event, Status> {
    if info.group == "events.k8s.io" {
        let _: k8s_openapi::api::events::v1::Event = decode(info, obj)?;
        let core = crate::registry::by_kind("", "Event").expect("core events are served");
        decode(core, &crate::convert::event_v1_to_core(obj))
    } else {
        decode(info, obj)
    }
}

fn event_core_form(info: &ResourceInfo, obj: &Value) -> Value {
    if info.group == "events.k8s.io" {
        crate::convert::event_v1_to_core(obj)
    } else {
        obj.clone()
    }
}

#[cfg(test)]
mod tests;
