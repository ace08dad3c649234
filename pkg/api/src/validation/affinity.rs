//! Scheduling constraints of a pod spec: node affinity (node selector terms with label and
//! field requirements, weighted preferences), pod affinity and anti-affinity terms, and
//! topology spread constraints, with Kubernetes' messages. The scheduler relies on these
//! being well-formed; it never re-validates them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Affinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm,
    TopologySpreadConstraint, WeightedPodAffinityTerm,
};

use super::apps::validate_label_selector;
use super::meta::validate_label_name;
use crate::field::FieldPath;
use crate::field::{ErrorList, FieldError};
use crate::names::{is_dns1123_subdomain, is_valid_label_value, name_is_dns_label};

/// `spec.affinity`.
pub fn validate_affinity(a: &Affinity, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(na) = &a.node_affinity {
        let p = path.child("nodeAffinity");
        if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
            errs.extend(validate_node_selector(
                req,
                &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let pref = p.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            if t.weight <= 0 || t.weight > 100 {
                errs.push(FieldError::invalid(
                    &pref.index(i).child("weight"),
                    t.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                &t.preference,
                &pref.index(i).child("preference"),
            ));
        }
    }
    if let Some(pa) = &a.pod_affinity {
        let p = path.child("podAffinity");
        errs.extend(validate_pod_affinity_terms(
            pa.required_during_scheduling_ignored_during_execution
                .as_deref(),
            &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
        ));
        errs.extend(validate_weighted_terms(
            pa.preferred_during_scheduling_ignored_during_execution
                .as_deref(),
            &p.child("preferredDuringSchedulingIgnoredDuringExecution"),
        ));
    }
    if let Some(pa) = &a.pod_anti_affinity {
        let p = path.child("podAntiAffinity");
        errs.extend(validate_pod_affinity_terms(
            pa.required_during_scheduling_ignored_during_execution
                .as_deref(),
            &p.child("requiredDuringSchedulingIgnoredDuringExecution"),
        ));
        errs.extend(validate_weighted_terms(
            pa.preferred_during_scheduling_ignored_during_execution
                .as_deref(),
            &p.child("preferredDuringSchedulingIgnoredDuringExecution"),
        ));
    }
    errs
}

/// A required node selector: at least one term, each term's requirements valid.
pub fn validate_node_selector(s: &NodeSelector, path: &FieldPath) -> ErrorList {
    let terms_path = path.child("nodeSelectorTerms");
    if s.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            &terms_path,
            "must have at least one node selector term",
        )];
    }
    s.node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| validate_node_selector_term(t, &terms_path.index(i)))
        .collect()
}

fn validate_node_selector_term(t: &NodeSelectorTerm, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, r) in t.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_node_selector_requirement(
            r,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, r) in t.match_fields.iter().flatten().enumerate() {
        errs.extend(validate_node_field_selector_requirement(
            r,
            &path.child("matchFields").index(j),
        ));
    }
    errs
}

fn validate_node_selector_requirement(r: &NodeSelectorRequirement, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &path.child("values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &path.child("values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&r.key, &path.child("key")));
    for (i, v) in values.iter().enumerate() {
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(&path.child("values").index(i), v, msg));
        }
    }
    errs
}

fn validate_node_field_selector_requirement(
    r: &NodeSelectorRequirement,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    if r.key != "metadata.name" {
        errs.push(FieldError::invalid(
            &path.child("key"),
            r.key.as_str(),
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            for msg in is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(&path.child("values").index(i), v, msg));
            }
        }
    }
    errs
}

fn validate_pod_affinity_term(t: &PodAffinityTerm, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(s) = &t.label_selector {
        errs.extend(validate_label_selector(s, &path.child("labelSelector")));
    }
    if let Some(s) = &t.namespace_selector {
        errs.extend(validate_label_selector(s, &path.child("namespaceSelector")));
    }
    for ns in t.namespaces.iter().flatten() {
        for msg in name_is_dns_label(ns, false) {
            errs.push(FieldError::invalid(&path.child("namespace"), ns, msg));
        }
    }
    if t.topology_key.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(
        &t.topology_key,
        &path.child("topologyKey"),
    ));
    errs
}

fn validate_pod_affinity_terms(terms: Option<&[PodAffinityTerm]>, path: &FieldPath) -> ErrorList {
    terms
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, t)| validate_pod_affinity_term(t, &path.index(i)))
        .collect()
}

fn validate_weighted_terms(
    terms: Option<&[WeightedPodAffinityTerm]>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in terms.into_iter().flatten().enumerate() {
        if t.weight <= 0 || t.weight > 100 {
            errs.push(FieldError::invalid(
                &path.index(i).child("weight"),
                t.weight,
                "must be in the range 1-100",
            ));
        }
        errs.extend(validate_pod_affinity_term(
            &t.pod_affinity_term,
            &path.index(i).child("podAffinityTerm"),
        ));
    }
    errs
}

/// `spec.topologySpreadConstraints`: positive skew, a topology key, a known
/// whenUnsatisfiable, and each (key, whenUnsatisfiable) pair at most once.
pub fn validate_topology_spread_constraints(
    cs: &[TopologySpreadConstraint],
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, c) in cs.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                &p.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                &p.child("topologyKey"),
                "can not be empty",
            ));
        } else {
            errs.extend(validate_label_name(
                &c.topology_key,
                &p.child("topologyKey"),
            ));
        }
        let when = c.when_unsatisfiable.as_str();
        if when != "DoNotSchedule" && when != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                when,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if let Some(min) = c.min_domains {
            if min <= 0 {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    min,
                    "must be greater than 0",
                ));
            } else if when != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &p.child("minDomains"),
                    min,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                ));
            }
        }
        if let Some(s) = &c.label_selector {
            errs.extend(validate_label_selector(s, &p.child("labelSelector")));
        }
        if !seen.insert((c.topology_key.clone(), when.to_string())) {
            errs.push(FieldError::duplicate(
                &p,
                format!("{{{}, {}}}", c.topology_key, when),
            ));
        }
    }
    errs
}
