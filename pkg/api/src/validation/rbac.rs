//! Validation of RBAC objects (roles, cluster roles, their bindings: rules with verbs and
//! resources, role references to this group, subjects of the three known kinds, roleRef
//! immutable) and of coordination.k8s.io Leases (positive durations, non-negative
//! transitions).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::apps::validate_label_selector;
use super::meta::{validate_object_meta, validate_object_meta_update};
use crate::field::gofmt;
use crate::field::FieldPath;
use crate::field::{BadValue, ErrorList, FieldError};
use crate::names::{is_dns1123_subdomain, name_is_dns_subdomain, name_is_path_segment};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn meta_path() -> FieldPath {
    FieldPath::new("metadata")
}

fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.clone().unwrap_or_default();
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !urls.is_empty() {
        let raw = BadValue::Raw(gofmt::strings(Some(&urls)));
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                raw.clone(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if non_empty(&rule.api_groups)
            || non_empty(&rule.resources)
            || non_empty(&rule.resource_names)
        {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                raw,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if !non_empty(&rule.api_groups) {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if !non_empty(&rule.resources) {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> ErrorList {
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, r)| validate_policy_rule(r, namespaced, &FieldPath::new("rules").index(i)))
        .collect()
}

/// A Role: path-segment name and resource rules.
pub fn validate_role(role: &Role) -> ErrorList {
    let mut errs = validate_object_meta(&role.metadata, true, name_is_path_segment, &meta_path());
    errs.extend(validate_rules(role.rules.as_ref(), true));
    errs
}

/// An update of a Role.
pub fn validate_role_update(new: &Role, old: &Role) -> ErrorList {
    let mut errs = validate_role(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &meta_path(),
    ));
    errs
}

/// A ClusterRole: rules (non-resource URLs allowed) and aggregation selectors.
pub fn validate_cluster_role(role: &ClusterRole) -> ErrorList {
    let mut errs = validate_object_meta(&role.metadata, false, name_is_path_segment, &meta_path());
    errs.extend(validate_rules(role.rules.as_ref(), false));
    if let Some(rule) = &role.aggregation_rule {
        let sel_path = FieldPath::from_names(&["aggregationRule", "clusterRoleSelectors"]);
        let selectors = rule.cluster_role_selectors.clone().unwrap_or_default();
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &sel_path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, s) in selectors.iter().enumerate() {
            errs.extend(validate_label_selector(s, &sel_path.index(i)));
        }
    }
    errs
}

/// An update of a ClusterRole.
pub fn validate_cluster_role_update(new: &ClusterRole, old: &ClusterRole) -> ErrorList {
    let mut errs = validate_cluster_role(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &meta_path(),
    ));
    errs
}

fn validate_role_ref(r: &RoleRef, kinds: &[&str]) -> ErrorList {
    let mut errs = ErrorList::new();
    if r.api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            &FieldPath::from_names(&["roleRef", "apiGroup"]),
            r.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(FieldError::not_supported(
            &FieldPath::from_names(&["roleRef", "kind"]),
            r.kind.as_str(),
            kinds,
        ));
    }
    let name_path = FieldPath::from_names(&["roleRef", "name"]);
    if r.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for m in name_is_path_segment(&r.name, false) {
            errs.push(FieldError::invalid(&name_path, r.name.as_str(), m));
        }
    }
    errs
}

fn validate_subject(s: &Subject, namespaced: bool, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let api_group = s.api_group.as_deref().unwrap_or("");
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for m in is_dns1123_subdomain(&s.name) {
                    errs.push(FieldError::invalid(&path.child("name"), s.name.as_str(), m));
                }
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != RBAC_GROUP {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn validate_subjects(subjects: Option<&Vec<Subject>>, namespaced: bool) -> ErrorList {
    subjects
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, s)| validate_subject(s, namespaced, &FieldPath::new("subjects").index(i)))
        .collect()
}

fn role_ref_changed(new: &RoleRef, old: &RoleRef) -> ErrorList {
    if new == old {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        &FieldPath::new("roleRef"),
        BadValue::Raw(format!(
            "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
            new.api_group, new.kind, new.name
        )),
        "cannot change roleRef",
    )]
}

/// A RoleBinding: a reference to a Role or ClusterRole, and subjects.
pub fn validate_role_binding(b: &RoleBinding) -> ErrorList {
    let mut errs = validate_object_meta(&b.metadata, true, name_is_path_segment, &meta_path());
    errs.extend(validate_role_ref(&b.role_ref, &["Role", "ClusterRole"]));
    errs.extend(validate_subjects(b.subjects.as_ref(), true));
    errs
}

/// An update of a RoleBinding: roleRef may not change.
pub fn validate_role_binding_update(new: &RoleBinding, old: &RoleBinding) -> ErrorList {
    let mut errs = validate_role_binding(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &meta_path(),
    ));
    errs.extend(role_ref_changed(&new.role_ref, &old.role_ref));
    errs
}

/// A ClusterRoleBinding: a reference to a ClusterRole, and subjects (service accounts
/// with a namespace).
pub fn validate_cluster_role_binding(b: &ClusterRoleBinding) -> ErrorList {
    let mut errs = validate_object_meta(&b.metadata, false, name_is_path_segment, &meta_path());
    errs.extend(validate_role_ref(&b.role_ref, &["ClusterRole"]));
    errs.extend(validate_subjects(b.subjects.as_ref(), false));
    errs
}

/// An update of a ClusterRoleBinding: roleRef may not change.
pub fn validate_cluster_role_binding_update(
    new: &ClusterRoleBinding,
    old: &ClusterRoleBinding,
) -> ErrorList {
    let mut errs = validate_cluster_role_binding(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &meta_path(),
    ));
    errs.extend(role_ref_changed(&new.role_ref, &old.role_ref));
    errs
}

/// A Lease: DNS-1123 subdomain name, positive duration, non-negative transitions, a
/// preferred holder only with a strategy.
pub fn validate_lease(lease: &Lease) -> ErrorList {
    let mut errs = validate_object_meta(&lease.metadata, true, name_is_dns_subdomain, &meta_path());
    let spec = lease.spec.clone().unwrap_or_default();
    let path = FieldPath::new("spec");
    if let Some(d) = spec.lease_duration_seconds.filter(|&d| d <= 0) {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|&t| t < 0) {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && spec.strategy.as_deref().unwrap_or("").is_empty()
    {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// An update of a Lease.
pub fn validate_lease_update(new: &Lease, old: &Lease) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    errs.extend(validate_lease(new));
    errs
}
