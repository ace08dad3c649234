//! Deployment and ReplicaSet validation: a required, non-empty selector that matches the
//! template's labels and may not change in apps/v1; replica counts; the rollout
//! strategy; the template as a pod spec that always restarts; and status consistency.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as MetaLabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{
    validate_label_name, validate_labels, validate_nonnegative, validate_object_meta,
    validate_object_meta_update,
};
use super::pods::validate_pod_template_spec;
use crate::field::gofmt;
use crate::field::FieldPath;
use crate::field::{BadValue, ErrorList, FieldError};
use crate::names::{
    is_valid_label_value, is_valid_percent, name_is_dns_subdomain, FIELD_IMMUTABLE_ERROR,
};
use crate::selectors::LabelSelector;

/// Kubernetes' `ValidateLabelSelector` (strict: label values in selectors must be valid).
pub(crate) fn validate_label_selector(ls: &MetaLabelSelector, path: &FieldPath) -> ErrorList {
    let mut errs = validate_labels(ls.match_labels.as_ref(), &path.child("matchLabels"));
    for (i, e) in ls.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(&e.key, &p.child("key")));
        for (vi, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(&p.child("values").index(vi), v, msg));
            }
        }
    }
    errs
}

fn selector_is_empty(ls: &MetaLabelSelector) -> bool {
    ls.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && ls.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

/// The selector checks shared by Deployments and ReplicaSets, then the template against
/// the selector.
fn validate_selector_and_template(
    selector: &MetaLabelSelector,
    selector_present: bool,
    template: Option<&PodTemplateSpec>,
    spec: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let sel_path = spec.child("selector");
    if !selector_present {
        errs.push(FieldError::required(&sel_path, ""));
    } else {
        errs.extend(validate_label_selector(selector, &sel_path));
        if selector_is_empty(selector) {
            errs.push(FieldError::invalid(
                &sel_path,
                BadValue::Raw(gofmt::label_selector(selector)),
                "empty selector is invalid for deployment",
            ));
        }
    }
    let converted = if selector_present {
        LabelSelector::from_metav1(Some(selector))
    } else {
        Ok(LabelSelector::nothing())
    };
    match converted {
        Err(_) => errs.push(FieldError::invalid(
            &sel_path,
            BadValue::Raw(gofmt::label_selector(selector)),
            "invalid label selector",
        )),
        Ok(sel) => errs.extend(validate_template_for_replica_set(
            template,
            &sel,
            &spec.child("template"),
        )),
    }
    errs
}

fn validate_template_for_replica_set(
    template: Option<&PodTemplateSpec>,
    selector: &LabelSelector,
    path: &FieldPath,
) -> ErrorList {
    let Some(t) = template else {
        return vec![FieldError::required(path, "")];
    };
    let mut errs = ErrorList::new();
    let labels = t.metadata.as_ref().and_then(|m| m.labels.clone());
    // A missing selector converts to "nothing", which matches no labels: Kubernetes then
    // reports the mismatch as well as the missing selector.
    if !selector.is_empty() && !selector.matches(&labels.clone().unwrap_or_default()) {
        errs.push(FieldError::invalid(
            &path.child("metadata").child("labels"),
            BadValue::Raw(gofmt::map(labels.as_ref())),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(t, path));
    let restart = t
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if t.spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some()
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

fn int_or_percent_value(v: Option<&IntOrString>) -> i64 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => (*i).into(),
        Some(IntOrString::String(s)) => s.trim_end_matches('%').parse().unwrap_or(-1),
    }
}

fn validate_positive_int_or_percent(v: Option<&IntOrString>, path: &FieldPath) -> ErrorList {
    match v {
        None => ErrorList::new(),
        Some(IntOrString::String(s)) => is_valid_percent(s)
            .into_iter()
            .map(|m| {
                FieldError::invalid(
                    path,
                    BadValue::Raw(gofmt::int_or_string(&IntOrString::String(s.clone()))),
                    m,
                )
            })
            .collect(),
        Some(IntOrString::Int(i)) => validate_nonnegative((*i).into(), path),
    }
}

fn validate_strategy(strategy: Option<&DeploymentStrategy>, path: &FieldPath) -> ErrorList {
    let default = DeploymentStrategy::default();
    let strategy = strategy.unwrap_or(&default);
    let mut errs = ErrorList::new();
    match strategy.type_.as_deref().unwrap_or("") {
        "Recreate" => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match &strategy.rolling_update {
            None => errs.push(FieldError::required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let ru_path = path.child("rollingUpdate");
                let mu = ru.max_unavailable.as_ref();
                let ms = ru.max_surge.as_ref();
                errs.extend(validate_positive_int_or_percent(
                    mu,
                    &ru_path.child("maxUnavailable"),
                ));
                errs.extend(validate_positive_int_or_percent(
                    ms,
                    &ru_path.child("maxSurge"),
                ));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        &ru_path.child("maxUnavailable"),
                        BadValue::Raw(mu.map_or("<nil>".to_string(), gofmt::int_or_string)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if let Some(IntOrString::String(s)) = mu {
                    if is_valid_percent(s).is_empty() && int_or_percent_value(mu) > 100 {
                        errs.push(FieldError::invalid(
                            &ru_path.child("maxUnavailable"),
                            BadValue::Raw(gofmt::int_or_string(&IntOrString::String(s.clone()))),
                            "must not be greater than 100%",
                        ));
                    }
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            path,
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

fn validate_deployment_spec(d: &Deployment, selector_present: bool) -> ErrorList {
    let path = FieldPath::new("spec");
    let spec = d.spec.clone().unwrap_or_default();
    let mut errs = validate_nonnegative(spec.replicas.unwrap_or(0).into(), &path.child("replicas"));
    errs.extend(validate_selector_and_template(
        &spec.selector,
        selector_present,
        Some(&spec.template),
        &path,
    ));
    errs.extend(validate_strategy(
        spec.strategy.as_ref(),
        &path.child("strategy"),
    ));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        min_ready.into(),
        &path.child("minReadySeconds"),
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            r.into(),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(p) = spec.progress_deadline_seconds {
        errs.extend(validate_nonnegative(
            p.into(),
            &path.child("progressDeadlineSeconds"),
        ));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                &path.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// A new Deployment. `selector_present` says whether the request carried
/// `spec.selector` at all (k8s-openapi cannot tell a missing selector from an empty one).
pub fn validate_deployment(d: &Deployment, selector_present: bool) -> ErrorList {
    let mut errs = validate_object_meta(
        &d.metadata,
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    );
    errs.extend(validate_deployment_spec(d, selector_present));
    errs
}

fn immutable_selector(
    new: &MetaLabelSelector,
    old: &MetaLabelSelector,
    path: &FieldPath,
) -> ErrorList {
    if new == old {
        return ErrorList::new();
    }
    vec![FieldError::invalid(
        path,
        BadValue::Raw(gofmt::label_selector(new)),
        FIELD_IMMUTABLE_ERROR,
    )]
}

/// An update of a Deployment: the new spec is valid and the selector unchanged.
pub fn validate_deployment_update(
    new: &Deployment,
    old: &Deployment,
    selector_present: bool,
) -> ErrorList {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    errs.extend(validate_deployment_spec(new, selector_present));
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    errs.extend(immutable_selector(
        &ns.selector,
        &os.selector,
        &FieldPath::from_names(&["spec", "selector"]),
    ));
    errs
}

fn validate_replica_set_spec(rs: &ReplicaSet, selector_present: bool) -> ErrorList {
    let path = FieldPath::new("spec");
    let spec = rs.spec.clone().unwrap_or_default();
    let mut errs = validate_nonnegative(spec.replicas.unwrap_or(0).into(), &path.child("replicas"));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &path.child("minReadySeconds"),
    ));
    let default_template = PodTemplateSpec::default();
    errs.extend(validate_selector_and_template(
        &spec.selector,
        selector_present,
        Some(spec.template.as_ref().unwrap_or(&default_template)),
        &path,
    ));
    errs
}

/// A new ReplicaSet.
pub fn validate_replica_set(rs: &ReplicaSet, selector_present: bool) -> ErrorList {
    let mut errs = validate_object_meta(
        &rs.metadata,
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    );
    errs.extend(validate_replica_set_spec(rs, selector_present));
    errs
}

/// An update of a ReplicaSet: the new spec is valid and the selector unchanged.
pub fn validate_replica_set_update(
    new: &ReplicaSet,
    old: &ReplicaSet,
    selector_present: bool,
) -> ErrorList {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    errs.extend(validate_replica_set_spec(new, selector_present));
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    errs.extend(immutable_selector(
        &ns.selector,
        &os.selector,
        &FieldPath::from_names(&["spec", "selector"]),
    ));
    errs
}

fn status_counts(path: &FieldPath, counts: &[(&str, i64)]) -> ErrorList {
    counts
        .iter()
        .flat_map(|(name, v)| validate_nonnegative(*v, &path.child(name)))
        .collect()
}

/// A Deployment's status: counts non-negative and consistent with each other.
pub fn validate_deployment_status(d: &Deployment) -> ErrorList {
    let st = d.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    let replicas = st.replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let ready = st.ready_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let mut errs = status_counts(
        &path,
        &[
            ("observedGeneration", st.observed_generation.unwrap_or(0)),
            ("replicas", replicas.into()),
            ("updatedReplicas", updated.into()),
            ("readyReplicas", ready.into()),
            ("availableReplicas", available.into()),
            (
                "unavailableReplicas",
                st.unavailable_replicas.unwrap_or(0).into(),
            ),
        ],
    );
    if let Some(c) = st.collision_count {
        errs.extend(validate_nonnegative(
            c.into(),
            &path.child("collisionCount"),
        ));
    }
    let msg = "cannot be greater than status.replicas";
    if updated > replicas {
        errs.push(FieldError::invalid(
            &path.child("updatedReplicas"),
            updated,
            msg,
        ));
    }
    if ready > replicas {
        errs.push(FieldError::invalid(
            &path.child("readyReplicas"),
            ready,
            msg,
        ));
    }
    if available > replicas {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            msg,
        ));
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

/// A ReplicaSet's status: counts non-negative and consistent with each other.
pub fn validate_replica_set_status(rs: &ReplicaSet) -> ErrorList {
    let st = rs.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    let replicas = st.replicas;
    let labeled = st.fully_labeled_replicas.unwrap_or(0);
    let ready = st.ready_replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    let mut errs = status_counts(
        &path,
        &[
            ("replicas", replicas.into()),
            ("fullyLabeledReplicas", labeled.into()),
            ("readyReplicas", ready.into()),
            ("availableReplicas", available.into()),
            ("observedGeneration", st.observed_generation.unwrap_or(0)),
        ],
    );
    let msg = "cannot be greater than status.replicas";
    if labeled > replicas {
        errs.push(FieldError::invalid(
            &path.child("fullyLabeledReplicas"),
            labeled,
            msg,
        ));
    }
    if ready > replicas {
        errs.push(FieldError::invalid(
            &path.child("readyReplicas"),
            ready,
            msg,
        ));
    }
    if available > replicas {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            msg,
        ));
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}
