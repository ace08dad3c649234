//! Event validation, on the stored (core/v1) form of an event whichever version it came
//! in, as Kubernetes validates its internal form: legacy rules for everyone (namespace
//! agreement with the involved object; reporting fields and length limits for new-style
//! events), strict rules for events.k8s.io writes (eventTime, type, series, deprecated
//! fields unset, and most fields immutable). Field paths are the core names
//! (`reportingController`, `message`), as Kubernetes reports them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::meta::{validate_object_meta, validate_object_meta_update};
use crate::field::BadValue;
use crate::field::FieldPath;
use crate::field::{ErrorList, FieldError};
use crate::names::{
    is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain, FIELD_IMMUTABLE_ERROR,
};

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn is_zero_time(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() || s.starts_with("0001-01-01T00:00:00"),
        _ => false,
    }
}

fn meta(v: &Value) -> ObjectMeta {
    v.get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default()
}

fn path(name: &str) -> FieldPath {
    FieldPath::new(name)
}

fn legacy_validate(ev: &Value, group: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let reporting_field = if group.is_empty() {
        "reportingComponent"
    } else {
        "reportingController"
    };
    let namespace = str_at(ev, "/metadata/namespace");
    let involved_ns = str_at(ev, "/involvedObject/namespace");
    let mismatch = || {
        FieldError::invalid(
            &FieldPath::from_names(&["involvedObject", "namespace"]),
            involved_ns,
            "does not match event.namespace",
        )
    };
    if is_zero_time(ev.get("eventTime")) {
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = str_at(ev, "/reportingComponent");
        if controller.is_empty() {
            errs.push(FieldError::required(&path(reporting_field), ""));
        }
        for m in is_qualified_name(controller) {
            errs.push(FieldError::invalid(&path(reporting_field), controller, m));
        }
        let instance = str_at(ev, "/reportingInstance");
        if instance.is_empty() {
            errs.push(FieldError::required(&path("reportingInstance"), ""));
        }
        if instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                &path("reportingInstance"),
                "",
                format!("can have at most {REPORTING_INSTANCE_LENGTH_LIMIT} characters"),
            ));
        }
        let action = str_at(ev, "/action");
        if action.is_empty() {
            errs.push(FieldError::required(&path("action"), ""));
        }
        if action.len() > ACTION_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                &path("action"),
                "",
                format!("can have at most {ACTION_LENGTH_LIMIT} characters"),
            ));
        }
        let reason = str_at(ev, "/reason");
        if reason.is_empty() {
            errs.push(FieldError::required(&path("reason"), ""));
        }
        if reason.len() > REASON_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                &path("reason"),
                "",
                format!("can have at most {REASON_LENGTH_LIMIT} characters"),
            ));
        }
        if str_at(ev, "/message").len() > NOTE_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                &path("message"),
                "",
                format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    for m in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid(&path("namespace"), namespace, m));
    }
    errs
}

fn validate_series(ev: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(series) = ev.get("series").filter(|s| !s.is_null()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                &path("series.count"),
                "",
                "should be at least 2",
            ));
        }
        if is_zero_time(series.get("lastObservedTime")) {
            errs.push(FieldError::required(&path("series.lastObservedTime"), ""));
        }
    }
    errs
}

/// A new event in core form; `group` is the group of the request (`""` or
/// `events.k8s.io`), which decides how strict validation is.
pub fn validate_event_create(ev: &Value, group: &str) -> ErrorList {
    let mut errs = legacy_validate(ev, group);
    if group.is_empty() {
        return errs;
    }
    errs.extend(validate_object_meta(
        &meta(ev),
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    ));
    errs.extend(validate_series(ev));
    if is_zero_time(ev.get("eventTime")) {
        errs.push(FieldError::required(&path("eventTime"), ""));
    }
    let typ = str_at(ev, "/type");
    if typ != "Normal" && typ != "Warning" {
        errs.push(FieldError::invalid(
            &path("type"),
            "",
            format!("has invalid value: {typ}"),
        ));
    }
    if !is_zero_time(ev.get("firstTimestamp")) {
        errs.push(FieldError::invalid(
            &path("firstTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if !is_zero_time(ev.get("lastTimestamp")) {
        errs.push(FieldError::invalid(
            &path("lastTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if ev.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
        errs.push(FieldError::invalid(&path("count"), "", "needs to be unset"));
    }
    if !str_at(ev, "/source/component").is_empty() || !str_at(ev, "/source/host").is_empty() {
        errs.push(FieldError::invalid(
            &path("source"),
            "",
            "needs to be unset",
        ));
    }
    errs
}

/// An update of an event in core form (see [`validate_event_create`] for `group`).
pub fn validate_event_update(new: &Value, old: &Value, group: &str) -> ErrorList {
    let mut errs = legacy_validate(new, group);
    if group.is_empty() {
        return errs;
    }
    errs.extend(validate_object_meta_update(
        &meta(new),
        &meta(old),
        &FieldPath::new("metadata"),
    ));
    if new.get("series") != old.get("series") {
        errs.extend(validate_series(new));
    }
    for (field, name) in [
        ("involvedObject", "involvedObject"),
        ("reason", "reason"),
        ("message", "message"),
        ("source", "source"),
        ("firstTimestamp", "firstTimestamp"),
        ("lastTimestamp", "lastTimestamp"),
        ("count", "count"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        let (a, b) = (
            new.get(field).filter(|v| !v.is_null()),
            old.get(field).filter(|v| !v.is_null()),
        );
        if a != b {
            let value = match a {
                Some(Value::String(s)) => BadValue::Str(s.clone()),
                Some(Value::Number(n)) => n.as_i64().map_or(BadValue::Omitted, BadValue::Int),
                Some(v) => BadValue::Raw(v.to_string()),
                None => BadValue::Null,
            };
            errs.push(FieldError::invalid(
                &path(name),
                value,
                FIELD_IMMUTABLE_ERROR,
            ));
        }
    }
    errs
}
