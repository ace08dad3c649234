//! Validation of objects on create and update, with Kubernetes' field paths, error types
//! and messages: the `ObjectMeta` rules shared by every kind, each kind's required,
//! enumerated and immutable fields (one submodule per API group), and the bodies of the
//! `binding`, `scale` and `log` subresources. Checks take decoded objects (already
//! defaulted, with a name generated from `generateName` when there was one) and answer
//! field errors; [`create_errors`], [`update_errors`] and [`status_update_errors`] put a
//! kind's checks and the shared ones in Kubernetes' order, [`into_result`] makes the 422.
//!
//! Which checks a kind gets is its entry's business (`crate::kinds`); this module never
//! dispatches on a kind, never changes an object and never looks at other objects (a
//! pod's namespace existing is the registry's question).

pub(crate) mod affinity;
pub(crate) mod apps;
pub(crate) mod core;
pub(crate) mod events;
pub(crate) mod meta;
pub(crate) mod pods;
pub(crate) mod rbac;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::status::Status;

pub use crate::field::{
    aggregate_message, go_quote, BadValue, ErrorList, ErrorType, FieldError, FieldPath,
};
pub use crate::names::{
    generate_name, inclusive_range_error, is_config_map_key, is_dns1035_label, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_qualified_name, is_valid_cidr, is_valid_ip,
    is_valid_label_value, is_valid_path_segment_name, is_valid_percent, is_valid_port_name,
    is_valid_port_num, max_len_error, name_is_dns1035_label, name_is_dns_label,
    name_is_dns_subdomain, name_is_path_segment, parse_cidr, regex_error, NameValidator,
    DNS1123_LABEL_MAX_LENGTH, DNS1123_SUBDOMAIN_MAX_LENGTH, EMPTY_ERROR, FIELD_IMMUTABLE_ERROR,
    GENERATED_NAME_ALPHABET, IS_NEGATIVE_ERROR,
};
pub use affinity::{
    validate_affinity, validate_node_selector, validate_topology_spread_constraints,
};
pub use meta::{
    validate_annotations, validate_finalizers, validate_label_name, validate_labels,
    validate_object_meta, validate_object_meta_accessor, validate_object_meta_update,
    validate_owner_references, STANDARD_FINALIZERS, TOTAL_ANNOTATION_SIZE_LIMIT,
};
pub use pods::{validate_pod_spec, validate_pod_template_spec};

/// The field errors of a new object (empty when valid): the kind's own checks
/// (`kind_errors`, which decodes the object as its type), then, only when those pass, the
/// `ObjectMeta` checks every kind shares; Kubernetes orders them so, so that the kind's
/// more specific messages win. A body that does not decode is a 400 Bad Request.
pub fn create_errors(
    obj: &Value,
    namespaced: bool,
    kind_errors: impl FnOnce(&Value) -> Result<ErrorList, Status>,
) -> Result<ErrorList, Status> {
    let errs = kind_errors(obj)?;
    if !errs.is_empty() {
        return Ok(errs);
    }
    let meta = object_meta(obj)?;
    Ok(validate_object_meta_accessor(
        &meta,
        namespaced,
        name_is_path_segment,
        &FieldPath::new("metadata"),
    ))
}

/// The field errors of an update of `old` to `new`: the shared `ObjectMeta` checks first,
/// as in Kubernetes' BeforeUpdate, then the kind's own (`kind_errors`).
pub fn update_errors(
    new: &Value,
    old: &Value,
    namespaced: bool,
    kind_errors: impl FnOnce(&Value, &Value) -> Result<ErrorList, Status>,
) -> Result<ErrorList, Status> {
    let meta_path = FieldPath::new("metadata");
    let new_meta = object_meta(new)?;
    let old_meta = object_meta(old)?;
    let mut errs =
        validate_object_meta_accessor(&new_meta, namespaced, name_is_path_segment, &meta_path);
    errs.extend(validate_object_meta_update(
        &new_meta, &old_meta, &meta_path,
    ));
    errs.extend(kind_errors(new, old)?);
    Ok(errs)
}

/// The field errors of a write to the `status` subresource: metadata may not change
/// identity, and the kind's own checks (`kind_errors`) keep the status consistent
/// (replica counts, addresses).
pub fn status_update_errors(
    new: &Value,
    old: &Value,
    kind_errors: impl FnOnce(&Value, &Value) -> Result<ErrorList, Status>,
) -> Result<ErrorList, Status> {
    let meta_path = FieldPath::new("metadata");
    let mut errs = validate_object_meta_update(&object_meta(new)?, &object_meta(old)?, &meta_path);
    errs.extend(kind_errors(new, old)?);
    Ok(errs)
}

/// `Ok` for no errors, else the 422 Invalid Status naming the object of `(group, kind)`.
pub fn into_result(group: &str, kind: &str, obj: &Value, errs: ErrorList) -> Result<(), Status> {
    if errs.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(Status::invalid(group, kind, name, &errs))
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

/// The object's metadata, decoded; none is the empty ObjectMeta.
pub(crate) fn object_meta(obj: &Value) -> Result<ObjectMeta, Status> {
    match obj.get("metadata") {
        None | Some(Value::Null) => Ok(ObjectMeta::default()),
        Some(m) => serde_json::from_value(m.clone())
            .map_err(|e| Status::bad_request(format!("unable to decode metadata: {e}"))),
    }
}

/// Whether the object has a `spec.selector` (Kubernetes tells a missing selector from an
/// empty one, which decoding into the typed struct cannot).
pub(crate) fn selector_present(obj: &Value) -> bool {
    !matches!(obj.pointer("/spec/selector"), None | Some(Value::Null))
}

#[cfg(test)]
mod tests;
