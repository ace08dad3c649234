//! `ObjectMeta` validation, shared by every kind: names and generateName, namespace
//! presence by scope, labels, annotations (and their 256 KiB budget), owner references,
//! finalizers, and what an update may not change (name, namespace, uid,
//! creationTimestamp, deletion fields, new finalizers while deleting).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::field::gofmt;
use crate::field::FieldPath;
use crate::field::{BadValue, ErrorList, FieldError};
use crate::names::{
    is_dns1123_subdomain, is_qualified_name, is_valid_label_value, name_is_dns_label,
    NameValidator, FIELD_IMMUTABLE_ERROR, IS_NEGATIVE_ERROR,
};

/// The most bytes all annotations of an object may hold (keys plus values).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizers Kubernetes knows without a domain prefix.
pub const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

/// Kubernetes' `ValidateObjectMeta` (with the core API's finalizer-name rule).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    requires_namespace: bool,
    name_fn: NameValidator,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = validate_object_meta_accessor(meta, requires_namespace, name_fn, path);
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        errs.extend(validate_kube_finalizer_name(
            f,
            &path.child("finalizers").index(i),
        ));
    }
    errs
}

/// The generic part of `ObjectMeta` validation (apimachinery's `ValidateObjectMetaAccessor`),
/// which the apiserver runs for every kind after the kind's own checks.
pub fn validate_object_meta_accessor(
    meta: &ObjectMeta,
    requires_namespace: bool,
    name_fn: NameValidator,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let generate_name = s(&meta.generate_name);
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = s(&meta.name);
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    let namespace = s(&meta.namespace);
    if requires_namespace {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            for msg in name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid(
                    &path.child("namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.generation {
        if g < 0 {
            errs.push(FieldError::invalid(
                &path.child("generation"),
                g,
                IS_NEGATIVE_ERROR,
            ));
        }
    }
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or(&[]),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or(&[]),
        &path.child("finalizers"),
    ));
    errs
}

/// Kubernetes' `ValidateObjectMetaUpdate`, less the resourceVersion check: the registry
/// fills in or compares resourceVersions itself before validation.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if old.deletion_timestamp.is_some() {
        errs.extend(validate_no_new_finalizers(
            new.finalizers.as_deref().unwrap_or(&[]),
            old.finalizers.as_deref().unwrap_or(&[]),
            &path.child("finalizers"),
        ));
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    immutable_str(&mut errs, &new.name, &old.name, &path.child("name"));
    immutable_str(
        &mut errs,
        &new.namespace,
        &old.namespace,
        &path.child("namespace"),
    );
    immutable_str(&mut errs, &new.uid, &old.uid, &path.child("uid"));
    immutable_time(
        &mut errs,
        new.creation_timestamp.as_ref().map(|t| &t.0),
        old.creation_timestamp.as_ref().map(|t| &t.0),
        &path.child("creationTimestamp"),
    );
    immutable_time(
        &mut errs,
        new.deletion_timestamp.as_ref().map(|t| &t.0),
        old.deletion_timestamp.as_ref().map(|t| &t.0),
        &path.child("deletionTimestamp"),
    );
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        let v = new
            .deletion_grace_period_seconds
            .map_or(BadValue::Null, BadValue::Int);
        errs.push(FieldError::invalid(
            &path.child("deletionGracePeriodSeconds"),
            v,
            FIELD_IMMUTABLE_ERROR,
        ));
    }
    errs.extend(validate_labels(new.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        new.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        new.owner_references.as_deref().unwrap_or(&[]),
        &path.child("ownerReferences"),
    ));
    errs
}

fn immutable_str(
    errs: &mut ErrorList,
    new: &Option<String>,
    old: &Option<String>,
    path: &FieldPath,
) {
    if s(new) != s(old) {
        errs.push(FieldError::invalid(path, s(new), FIELD_IMMUTABLE_ERROR));
    }
}

fn immutable_time(
    errs: &mut ErrorList,
    new: Option<&k8s_openapi::jiff::Timestamp>,
    old: Option<&k8s_openapi::jiff::Timestamp>,
    path: &FieldPath,
) {
    if new != old {
        let v = match new {
            Some(t) => BadValue::Raw(gofmt::time(t)),
            None => BadValue::Raw("0001-01-01 00:00:00 +0000 UTC".to_string()),
        };
        errs.push(FieldError::invalid(path, v, FIELD_IMMUTABLE_ERROR));
    }
}

/// Label keys must be qualified names and values valid label values; both are reported
/// at the labels map itself, as Kubernetes does.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(validate_label_name(k, path));
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// One label key (also taint and toleration keys, selector keys).
pub fn validate_label_name(name: &str, path: &FieldPath) -> ErrorList {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// Annotation keys are qualified names (case-insensitively) and all annotations together
/// may hold at most 256 KiB.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT as i64,
        ));
    }
    errs
}

fn validate_owner_reference(r: &OwnerReference, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let version = r.api_version.rsplit('/').next().unwrap_or("");
    if version.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            r.api_version.as_str(),
            "version must not be empty",
        ));
    }
    if r.kind.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("kind"),
            r.kind.as_str(),
            "kind must not be empty",
        ));
    }
    if r.name.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("name"),
            r.name.as_str(),
            "name must not be empty",
        ));
    }
    if r.uid.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("uid"),
            r.uid.as_str(),
            "uid must not be empty",
        ));
    }
    errs
}

/// Each owner reference names a versioned kind, a name and a uid; at most one is the
/// controller.
pub fn validate_owner_references(refs: &[OwnerReference], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        errs.extend(validate_owner_reference(r, path));
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    BadValue::Omitted,
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Finalizers are qualified names; `orphan` and `foregroundDeletion` exclude each other.
pub fn validate_finalizers(finalizers: &[String], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f, msg));
        }
    }
    let has = |n: &str| finalizers.iter().any(|f| f == n);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            BadValue::Raw(gofmt::strings(Some(finalizers))),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// The core API's extra rule: a finalizer without a domain must be a standard one.
pub fn validate_kube_finalizer_name(name: &str, path: &FieldPath) -> ErrorList {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        return vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    ErrorList::new()
}

fn validate_no_new_finalizers(new: &[String], old: &[String], path: &FieldPath) -> ErrorList {
    let old: BTreeSet<&String> = old.iter().collect();
    let extra: BTreeSet<&String> = new.iter().filter(|f| !old.contains(f)).collect();
    if extra.is_empty() {
        return ErrorList::new();
    }
    let extra: Vec<String> = extra.into_iter().cloned().collect();
    vec![FieldError::forbidden(
        path,
        format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {}",
            gofmt::strings(Some(&extra))
        ),
    )]
}

/// A DNS-1123 subdomain at `path` (used for references such as `spec.externalName`).
pub fn validate_dns1123_subdomain(v: &str, path: &FieldPath) -> ErrorList {
    is_dns1123_subdomain(v)
        .into_iter()
        .map(|m| FieldError::invalid(path, v, m))
        .collect()
}

/// A DNS-1123 label at `path` (container names, hostnames, service port names).
pub fn validate_dns1123_label(v: &str, path: &FieldPath) -> ErrorList {
    crate::names::is_dns1123_label(v)
        .into_iter()
        .map(|m| FieldError::invalid(path, v, m))
        .collect()
}

/// A non-negative number at `path`.
pub fn validate_nonnegative(v: i64, path: &FieldPath) -> ErrorList {
    if v < 0 {
        vec![FieldError::invalid(path, v, IS_NEGATIVE_ERROR)]
    } else {
        ErrorList::new()
    }
}
