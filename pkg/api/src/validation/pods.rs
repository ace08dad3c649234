//! Pod and pod-template validation: the pod spec (containers, init containers, ports,
//! env, volumes and mounts, probes, resources, policies, tolerations) and what an update
//! may change (container images, activeDeadlineSeconds downwards, added tolerations,
//! removed scheduling gates, and nothing else in the spec).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, LifecycleHandler, Pod, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::meta::{
    validate_annotations, validate_dns1123_label, validate_label_name, validate_labels,
    validate_nonnegative, validate_object_meta, validate_object_meta_update,
};
use crate::field::FieldPath;
use crate::field::{BadValue, ErrorList, FieldError};
use crate::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_subdomain, is_env_var_name,
    is_qualified_name, is_valid_ip, is_valid_label_value, is_valid_port_name, is_valid_port_num,
    name_is_dns_subdomain,
};
use crate::quantity::Quantity;

const MAX_INT32: i64 = i32::MAX as i64;
const SUPPORTED_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

/// A new Pod: metadata, spec, and the pod-only rule that images have no surrounding
/// whitespace.
pub fn validate_pod(pod: &Pod) -> ErrorList {
    let mut errs = validate_object_meta(
        &pod.metadata,
        true,
        name_is_dns_subdomain,
        &FieldPath::new("metadata"),
    );
    let spec = pod.spec.clone().unwrap_or_default();
    let spec_path = FieldPath::new("spec");
    errs.extend(validate_pod_spec(&spec, &spec_path));
    errs.extend(validate_containers_only_for_pod(
        &spec.containers,
        &spec_path.child("containers"),
    ));
    errs.extend(validate_containers_only_for_pod(
        spec.init_containers.as_deref().unwrap_or(&[]),
        &spec_path.child("initContainers"),
    ));
    errs
}

fn validate_containers_only_for_pod(containers: &[Container], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in containers.iter().enumerate() {
        let image = s(&c.image);
        if image.len() != image.trim().len() {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    errs
}

/// A pod template (of a Deployment or ReplicaSet): template labels and annotations, the
/// pod spec, and no ephemeral containers.
pub fn validate_pod_template_spec(t: &PodTemplateSpec, path: &FieldPath) -> ErrorList {
    let meta = t.metadata.clone().unwrap_or_default();
    let mut errs = validate_labels(meta.labels.as_ref(), &path.child("labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    let spec = t.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&spec, &path.child("spec")));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Kubernetes' `ValidatePodSpec` for the fields rkube acts on.
pub fn validate_pod_spec(spec: &PodSpec, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let (volumes, verrs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &path.child("volumes"),
    );
    errs.extend(verrs);
    let restart_policy = s(&spec.restart_policy);
    errs.extend(validate_containers(
        &spec.containers,
        &volumes,
        &path.child("containers"),
    ));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or(&[]),
        &spec.containers,
        &volumes,
        &path.child("initContainers"),
    ));
    errs.extend(validate_restart_policy(
        restart_policy,
        &path.child("restartPolicy"),
    ));
    errs.extend(validate_dns_policy(
        s(&spec.dns_policy),
        &path.child("dnsPolicy"),
    ));
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    for (i, secret) in spec.image_pull_secrets.iter().flatten().enumerate() {
        if secret.name.is_empty() {
            errs.push(FieldError::required(
                &path.child("imagePullSecrets").index(i).child("name"),
                "",
            ));
        }
    }
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        for msg in is_qualified_name(&gate.condition_type) {
            errs.push(FieldError::invalid(
                &path.child("readinessGates").index(i).child("conditionType"),
                gate.condition_type.as_str(),
                msg,
            ));
        }
    }
    if let Some(a) = &spec.affinity {
        errs.extend(super::affinity::validate_affinity(
            a,
            &path.child("affinity"),
        ));
    }
    errs.extend(validate_scheduling_gates(
        spec,
        &path.child("schedulingGates"),
    ));
    if let Some(t) = &spec.topology_spread_constraints {
        errs.extend(super::affinity::validate_topology_spread_constraints(
            t,
            &path.child("topologySpreadConstraints"),
        ));
    }
    let sa = s(&spec.service_account_name);
    if !sa.is_empty() {
        for msg in is_dns1123_subdomain(sa) {
            errs.push(FieldError::invalid(
                &path.child("serviceAccountName"),
                sa,
                msg,
            ));
        }
    }
    let node = s(&spec.node_name);
    if !node.is_empty() {
        for msg in is_dns1123_subdomain(node) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node, msg));
        }
    }
    if let Some(v) = spec.active_deadline_seconds {
        if !(1..=MAX_INT32).contains(&v) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                v,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    if !s(&spec.hostname).is_empty() {
        errs.extend(validate_dns1123_label(
            s(&spec.hostname),
            &path.child("hostname"),
        ));
    }
    if !s(&spec.subdomain).is_empty() {
        errs.extend(validate_dns1123_label(
            s(&spec.subdomain),
            &path.child("subdomain"),
        ));
    }
    if let Some(t) = &spec.tolerations {
        errs.extend(validate_tolerations(t, &path.child("tolerations")));
    }
    let pc = s(&spec.priority_class_name);
    if !pc.is_empty() {
        for msg in is_dns1123_subdomain(pc) {
            errs.push(FieldError::invalid(
                &path.child("priorityClassName"),
                pc,
                msg,
            ));
        }
    }
    if let Some(p) = &spec.preemption_policy {
        if p != "PreemptLowerPriority" && p != "Never" {
            errs.push(FieldError::not_supported(
                &path.child("preemptionPolicy"),
                p.as_str(),
                &["PreemptLowerPriority", "Never"],
            ));
        }
    }
    errs
}

fn validate_restart_policy(policy: &str, path: &FieldPath) -> ErrorList {
    match policy {
        "Always" | "OnFailure" | "Never" => ErrorList::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

fn validate_dns_policy(policy: &str, path: &FieldPath) -> ErrorList {
    match policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => ErrorList::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        )],
    }
}

fn validate_scheduling_gates(spec: &PodSpec, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        for msg in is_qualified_name(&g.name) {
            errs.push(FieldError::invalid(&path.index(i), g.name.as_str(), msg));
        }
        if !seen.insert(g.name.clone()) {
            errs.push(FieldError::duplicate(&path.index(i), g.name.as_str()));
        }
    }
    errs
}

fn volume_types(v: &k8s_openapi::api::core::v1::Volume) -> Vec<String> {
    // The volume's source is every non-null field besides its name.
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .filter(|(k, v)| k != "name" && !v.is_null())
            .map(|(k, _)| k)
            .collect(),
        _ => Vec::new(),
    }
}

fn validate_volumes(
    volumes: &[k8s_openapi::api::core::v1::Volume],
    path: &FieldPath,
) -> (BTreeSet<String>, ErrorList) {
    let mut names = BTreeSet::new();
    let mut errs = ErrorList::new();
    for (i, v) in volumes.iter().enumerate() {
        let idx = path.index(i);
        let mut el = ErrorList::new();
        let types = volume_types(v);
        match types.len() {
            0 => el.push(FieldError::required(&idx, "must specify a volume type")),
            1 => {}
            _ => el.push(FieldError::forbidden(
                &idx.child(&types[1]),
                "may not specify more than 1 volume type",
            )),
        }
        let name_path = idx.child("name");
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validate_dns1123_label(&v.name, &name_path));
        }
        if names.contains(&v.name) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        if el.is_empty() {
            names.insert(v.name.clone());
        } else {
            errs.extend(el);
        }
    }
    (names, errs)
}

fn validate_containers(
    containers: &[Container],
    volumes: &BTreeSet<String>,
    path: &FieldPath,
) -> ErrorList {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, volumes, &p));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        if let Some(l) = &c.lifecycle {
            errs.extend(validate_lifecycle_handler(
                l.post_start.as_ref(),
                &p.child("lifecycle").child("postStart"),
            ));
            errs.extend(validate_lifecycle_handler(
                l.pre_stop.as_ref(),
                &p.child("lifecycle").child("preStop"),
            ));
        }
        errs.extend(validate_probe(
            c.liveness_probe.as_ref(),
            &p.child("livenessProbe"),
            true,
        ));
        errs.extend(validate_probe(
            c.readiness_probe.as_ref(),
            &p.child("readinessProbe"),
            false,
        ));
        errs.extend(validate_probe(
            c.startup_probe.as_ref(),
            &p.child("startupProbe"),
            true,
        ));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(check_host_port_conflicts(containers, path));
    errs
}

fn validate_init_containers(
    inits: &[Container],
    regular: &[Container],
    volumes: &BTreeSet<String>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<String> = regular.iter().map(|c| c.name.clone()).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, volumes, &p));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        let restartable = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if restartable {
            if let Some(l) = &c.lifecycle {
                errs.extend(validate_lifecycle_handler(
                    l.post_start.as_ref(),
                    &p.child("lifecycle").child("postStart"),
                ));
                errs.extend(validate_lifecycle_handler(
                    l.pre_stop.as_ref(),
                    &p.child("lifecycle").child("preStop"),
                ));
            }
            errs.extend(validate_probe(
                c.liveness_probe.as_ref(),
                &p.child("livenessProbe"),
                true,
            ));
            errs.extend(validate_probe(
                c.readiness_probe.as_ref(),
                &p.child("readinessProbe"),
                false,
            ));
            errs.extend(validate_probe(
                c.startup_probe.as_ref(),
                &p.child("startupProbe"),
                true,
            ));
        } else {
            let forbid = "may not be set for init containers without restartPolicy=Always";
            if c.lifecycle.is_some() {
                errs.push(FieldError::forbidden(&p.child("lifecycle"), forbid));
            }
            if c.liveness_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("livenessProbe"), forbid));
            }
            if c.readiness_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("readinessProbe"), forbid));
            }
            if c.startup_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("startupProbe"), forbid));
            }
        }
    }
    errs
}

fn validate_container_common(
    c: &Container,
    volumes: &BTreeSet<String>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name_path = path.child("name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(&c.name, &name_path));
    }
    if s(&c.image).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    match s(&c.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or(&[]),
        &path.child("ports"),
    ));
    errs.extend(validate_env(c, &path.child("env")));
    errs.extend(validate_env_from(c, &path.child("envFrom")));
    errs.extend(validate_volume_mounts(
        c,
        volumes,
        &path.child("volumeMounts"),
    ));
    match s(&c.image_pull_policy) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&path.child("imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &path.child("imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, &path.child("resources")));
    }
    if let Some(sc) = &c.security_context {
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            errs.push(FieldError::invalid(
                &path.child("securityContext"),
                BadValue::Omitted,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
    }
    errs
}

fn validate_container_ports(
    ports: &[k8s_openapi::api::core::v1::ContainerPort],
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let idx = path.index(i);
        let name = s(&p.name);
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(&idx.child("name"), name, m));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&idx.child("name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(&idx.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(p.container_port.into()) {
                errs.push(FieldError::invalid(
                    &idx.child("containerPort"),
                    p.container_port,
                    m,
                ));
            }
        }
        if let Some(hp) = p.host_port.filter(|&hp| hp != 0) {
            for m in is_valid_port_num(hp.into()) {
                errs.push(FieldError::invalid(&idx.child("hostPort"), hp, m));
            }
        }
        match s(&p.protocol) {
            "" => errs.push(FieldError::required(&idx.child("protocol"), "")),
            proto if !SUPPORTED_PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                &idx.child("protocol"),
                proto,
                SUPPORTED_PROTOCOLS,
            )),
            _ => {}
        }
    }
    errs
}

fn check_host_port_conflicts(containers: &[Container], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let Some(hp) = p.host_port.filter(|&hp| hp != 0) else {
                continue;
            };
            let key = format!("{}/{}/{}", s(&p.host_ip), hp, s(&p.protocol));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

const DOWNWARD_ENV_FIELDS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn validate_env(c: &Container, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in c.env.iter().flatten().enumerate() {
        let idx = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        } else {
            for m in is_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(&idx.child("name"), ev.name.as_str(), m));
            }
        }
        let Some(from) = &ev.value_from else { continue };
        let from_path = idx.child("valueFrom");
        let mut sources = 0;
        if let Some(f) = &from.field_ref {
            sources += 1;
            let fp = from_path.child("fieldRef");
            if s(&f.api_version).is_empty() {
                errs.push(FieldError::required(&fp.child("apiVersion"), ""));
            }
            if f.field_path.is_empty() {
                errs.push(FieldError::required(&fp.child("fieldPath"), ""));
            } else {
                let base = f.field_path.split('[').next().unwrap_or("");
                let subscripted = f.field_path.contains('[');
                let ok = if subscripted {
                    base == "metadata.labels" || base == "metadata.annotations"
                } else {
                    DOWNWARD_ENV_FIELDS.contains(&base)
                        && base != "metadata.labels"
                        && base != "metadata.annotations"
                };
                if !ok {
                    let valid: Vec<&str> = DOWNWARD_ENV_FIELDS
                        .iter()
                        .copied()
                        .filter(|f| *f != "metadata.labels" && *f != "metadata.annotations")
                        .collect();
                    errs.push(FieldError::not_supported(
                        &fp.child("fieldPath"),
                        f.field_path.as_str(),
                        &valid,
                    ));
                }
            }
        }
        if let Some(r) = &from.resource_field_ref {
            sources += 1;
            if r.resource.is_empty() {
                errs.push(FieldError::required(
                    &from_path.child("resourceFieldRef").child("resource"),
                    "",
                ));
            }
        }
        if let Some(r) = &from.config_map_key_ref {
            sources += 1;
            errs.extend(validate_key_selector(
                &r.name,
                &r.key,
                &from_path.child("configMapKeyRef"),
            ));
        }
        if let Some(r) = &from.secret_key_ref {
            sources += 1;
            errs.extend(validate_key_selector(
                &r.name,
                &r.key,
                &from_path.child("secretKeyRef"),
            ));
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(&ev.value).is_empty() {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_key_selector(name: &str, key: &str, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for m in is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(&path.child("name"), name, m));
    }
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(&path.child("key"), key, m));
        }
    }
    errs
}

fn validate_env_from(c: &Container, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ef) in c.env_from.iter().flatten().enumerate() {
        let idx = path.index(i);
        let mut sources = 0;
        if let Some(r) = &ef.config_map_ref {
            sources += 1;
            for m in is_dns1123_subdomain(&r.name) {
                errs.push(FieldError::invalid(
                    &idx.child("configMapRef").child("name"),
                    r.name.as_str(),
                    m,
                ));
            }
        }
        if let Some(r) = &ef.secret_ref {
            sources += 1;
            for m in is_dns1123_subdomain(&r.name) {
                errs.push(FieldError::invalid(
                    &idx.child("secretRef").child("name"),
                    r.name.as_str(),
                    m,
                ));
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                &idx,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &idx,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    c: &Container,
    volumes: &BTreeSet<String>,
    path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let idx = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&idx.child("name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(&idx.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&idx.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(
                &idx.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        let sub = s(&m.sub_path);
        if !sub.is_empty() {
            if sub.starts_with('/') {
                errs.push(FieldError::invalid(
                    &idx.child("subPath"),
                    sub,
                    "must be a relative path",
                ));
            }
            if sub.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(
                    &idx.child("subPath"),
                    sub,
                    "must not contain '..'",
                ));
            }
        }
    }
    errs
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !name.starts_with("hugepages-")
}

fn parse_quantities(
    m: Option<&BTreeMap<String, K8sQuantity>>,
    path: &FieldPath,
    errs: &mut ErrorList,
) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    for (name, q) in m.into_iter().flatten() {
        let p = path.key(name);
        for msg in is_qualified_name(name) {
            errs.push(FieldError::invalid(&p, name.as_str(), msg));
        }
        if !name.contains('/') && !is_standard_container_resource(name) {
            errs.push(FieldError::invalid(
                &p,
                name.as_str(),
                "must be a standard resource for containers",
            ));
        }
        match Quantity::parse(&q.0) {
            Ok(v) => {
                if v < Quantity::ZERO {
                    errs.push(FieldError::invalid(
                        &p,
                        q.0.as_str(),
                        crate::names::IS_NEGATIVE_ERROR,
                    ));
                }
                out.insert(name.clone(), v);
            }
            Err(e) => errs.push(FieldError::invalid(&p, q.0.as_str(), e.to_string())),
        }
    }
    out
}

/// Resource names, quantities, and requests not above limits (equal for extended
/// resources, which cannot be overcommitted).
fn validate_resources(r: &ResourceRequirements, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let limits = parse_quantities(r.limits.as_ref(), &lim_path, &mut errs);
    let requests = parse_quantities(r.requests.as_ref(), &req_path, &mut errs);
    let raw = |m: &Option<BTreeMap<String, K8sQuantity>>, k: &str| {
        m.as_ref()
            .and_then(|m| m.get(k))
            .map(|q| q.0.clone())
            .unwrap_or_default()
    };
    for (name, req) in &requests {
        match limits.get(name) {
            Some(lim) => {
                if req != lim && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        raw(&r.requests, name),
                        format!("must be equal to {name} limit of {}", raw(&r.limits, name)),
                    ));
                } else if req > lim {
                    errs.push(FieldError::invalid(
                        &req_path,
                        raw(&r.requests, name),
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            raw(&r.limits, name)
                        ),
                    ));
                }
            }
            None if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
    errs
}

fn validate_port_num_or_name(port: &IntOrString, path: &FieldPath) -> ErrorList {
    match port {
        IntOrString::Int(i) => is_valid_port_num((*i).into())
            .into_iter()
            .map(|m| FieldError::invalid(path, *i, m))
            .collect(),
        IntOrString::String(n) => is_valid_port_name(n)
            .into_iter()
            .map(|m| FieldError::invalid(path, n.as_str(), m))
            .collect(),
    }
}

struct Handler<'a> {
    exec: Option<&'a k8s_openapi::api::core::v1::ExecAction>,
    http_get: Option<&'a k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp_socket: Option<&'a k8s_openapi::api::core::v1::TCPSocketAction>,
    grpc: bool,
    sleep: Option<i64>,
}

fn validate_handler(h: &Handler<'_>, path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    let mut check_more = |name: &str, errs: &mut ErrorList| {
        count += 1;
        if count > 1 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            true
        }
    };
    if let Some(e) = h.exec {
        if check_more("exec", &mut errs) && e.command.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(
                &path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(g) = h.http_get {
        if check_more("httpGet", &mut errs) {
            let p = path.child("httpGet");
            if s(&g.path).is_empty() {
                errs.push(FieldError::required(&p.child("path"), ""));
            }
            errs.extend(validate_port_num_or_name(&g.port, &p.child("port")));
            let scheme = s(&g.scheme);
            if scheme != "HTTP" && scheme != "HTTPS" {
                errs.push(FieldError::not_supported(
                    &p.child("scheme"),
                    scheme,
                    &["HTTP", "HTTPS"],
                ));
            }
        }
    }
    if let Some(t) = h.tcp_socket {
        if check_more("tcpSocket", &mut errs) {
            errs.extend(validate_port_num_or_name(
                &t.port,
                &path.child("tcpSocket").child("port"),
            ));
        }
    }
    if h.grpc {
        check_more("grpc", &mut errs);
    }
    if let Some(secs) = h.sleep {
        if check_more("sleep", &mut errs) && secs < 0 {
            errs.push(FieldError::invalid(
                &path.child("sleep").child("seconds"),
                secs,
                "must be non-negative integer",
            ));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn validate_lifecycle_handler(h: Option<&LifecycleHandler>, path: &FieldPath) -> ErrorList {
    let Some(h) = h else { return ErrorList::new() };
    validate_handler(
        &Handler {
            exec: h.exec.as_ref(),
            http_get: h.http_get.as_ref(),
            tcp_socket: h.tcp_socket.as_ref(),
            grpc: false,
            sleep: h.sleep.as_ref().map(|s| s.seconds),
        },
        path,
    )
}

fn validate_probe(p: Option<&Probe>, path: &FieldPath, success_must_be_one: bool) -> ErrorList {
    let Some(p) = p else { return ErrorList::new() };
    let mut errs = validate_handler(
        &Handler {
            exec: p.exec.as_ref(),
            http_get: p.http_get.as_ref(),
            tcp_socket: p.tcp_socket.as_ref(),
            grpc: p.grpc.is_some(),
            sleep: None,
        },
        path,
    );
    for (name, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        errs.extend(validate_nonnegative(
            v.unwrap_or(0).into(),
            &path.child(name),
        ));
    }
    if let Some(t) = p.termination_grace_period_seconds {
        if t <= 0 {
            errs.push(FieldError::invalid(
                &path.child("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    if success_must_be_one {
        let st = p.success_threshold.unwrap_or(0);
        if st != 1 {
            errs.push(FieldError::invalid(
                &path.child("successThreshold"),
                st,
                "must be 1",
            ));
        }
    }
    errs
}

/// Toleration keys, operators, values and effects.
pub(crate) fn validate_tolerations(tolerations: &[Toleration], path: &FieldPath) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let idx = path.index(i);
        let key = s(&t.key);
        let op = s(&t.operator);
        let effect = s(&t.effect);
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &idx.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &idx.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &idx.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(s(&t.value));
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        s(&t.value),
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !s(&t.value).is_empty() {
                    errs.push(FieldError::invalid(
                        &idx.child("operator"),
                        BadValue::Omitted,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &idx.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(validate_taint_effect(effect, true, &idx.child("effect")));
        }
    }
    errs
}

/// A taint effect: NoSchedule, PreferNoSchedule or NoExecute (empty only where allowed).
pub(crate) fn validate_taint_effect(
    effect: &str,
    allow_empty: bool,
    path: &FieldPath,
) -> ErrorList {
    match effect {
        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => ErrorList::new(),
        "" if !allow_empty => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        )],
    }
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_container_updates(
    new: &[Container],
    old: &[Container],
    path: &FieldPath,
) -> (ErrorList, bool) {
    if new.len() != old.len() {
        return (
            vec![FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            )],
            true,
        );
    }
    let mut errs = ErrorList::new();
    for (i, c) in new.iter().enumerate() {
        let image = s(&c.image);
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim().len() != image.len() {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (errs, false)
}

/// An update of a Pod: metadata, the new spec's validity, and the narrow set of spec
/// changes Kubernetes allows.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> ErrorList {
    let mut errs =
        validate_object_meta_update(&new.metadata, &old.metadata, &FieldPath::new("metadata"));
    errs.extend(validate_pod(new));
    let spec_path = FieldPath::new("spec");
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();

    let (e, stop) = validate_container_updates(
        &new_spec.containers,
        &old_spec.containers,
        &spec_path.child("containers"),
    );
    errs.extend(e);
    if stop {
        return errs;
    }
    let (e, stop) = validate_container_updates(
        new_spec.init_containers.as_deref().unwrap_or(&[]),
        old_spec.init_containers.as_deref().unwrap_or(&[]),
        &spec_path.child("initContainers"),
    );
    errs.extend(e);
    if stop {
        return errs;
    }

    let ads = spec_path.child("activeDeadlineSeconds");
    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), old) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid(
                    &ads,
                    n,
                    inclusive_range_error(0, MAX_INT32),
                ));
                return errs;
            }
            if old.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    &ads,
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads,
            BadValue::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    errs.extend(validate_only_added_tolerations(
        new_spec.tolerations.as_deref().unwrap_or(&[]),
        old_spec.tolerations.as_deref().unwrap_or(&[]),
        &spec_path.child("tolerations"),
    ));
    errs.extend(validate_only_deleted_scheduling_gates(
        &new_spec,
        &old_spec,
        &spec_path.child("schedulingGates"),
    ));

    if new_spec == old_spec {
        return errs;
    }
    let mut munged = new_spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image.clone_from(&o.image);
    }
    if let (Some(n), Some(o)) = (
        munged.init_containers.as_mut(),
        old_spec.init_containers.as_ref(),
    ) {
        for (c, o) in n.iter_mut().zip(o) {
            c.image.clone_from(&o.image);
        }
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged
        .scheduling_gates
        .clone_from(&old_spec.scheduling_gates);
    munged.tolerations.clone_from(&old_spec.tolerations);
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|t| t < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if munged != old_spec {
        let diff = spec_diff(&old_spec, &munged);
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{diff}"
            ),
        ));
    }
    errs
}

/// The changed leaves of two specs, one `path: old -> new` line each (Kubernetes prints a
/// Go struct diff here; the point is the same: say what changed).
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let mut lines = Vec::new();
    diff_values("spec", &old, &new, &mut lines);
    lines.join("\n")
}

fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                diff_values(&format!("{path}.{k}"), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("  {path}: {a} -> {b}")),
        _ => {}
    }
}

fn validate_only_added_tolerations(
    new: &[Toleration],
    old: &[Toleration],
    path: &FieldPath,
) -> ErrorList {
    for o in old {
        let found = new.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            &o == n
        });
        if !found {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, path)
}

fn validate_only_deleted_scheduling_gates(
    new: &PodSpec,
    old: &PodSpec,
    path: &FieldPath,
) -> ErrorList {
    let old_names: BTreeSet<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    let mut errs = ErrorList::new();
    for g in new.scheduling_gates.iter().flatten() {
        if !old_names.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                path,
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    errs
}

/// A write to `pods/status`: the binding may not change, nominatedNodeName must be a
/// node name, pod and host IPs must be IPs, and a container that terminated for good
/// (restartPolicy Never, or OnFailure after success) may not come back.
pub fn validate_pod_status_update(new: &Pod, old: &Pod) -> ErrorList {
    let mut errs = ErrorList::new();
    let status = new.status.clone().unwrap_or_default();
    let old_status = old.status.clone().unwrap_or_default();
    let path = FieldPath::new("status");
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    if node(new) != node(old) {
        errs.push(FieldError::forbidden(
            &path.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nominated = s(&status.nominated_node_name);
    if !nominated.is_empty() && status.nominated_node_name != old_status.nominated_node_name {
        for m in is_dns1123_subdomain(nominated) {
            errs.push(FieldError::invalid(
                &path.child("nominatedNodeName"),
                nominated,
                m,
            ));
        }
    }
    let restart_policy = old
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    if restart_policy != "Always" {
        let new_statuses = status.container_statuses.clone().unwrap_or_default();
        for (i, o) in old_status.container_statuses.iter().flatten().enumerate() {
            let Some(t) = o.state.as_ref().and_then(|st| st.terminated.as_ref()) else {
                continue;
            };
            if t.exit_code != 0 && restart_policy == "OnFailure" {
                continue;
            }
            let revived = new_statuses.iter().any(|n| {
                n.name == o.name
                    && n.state
                        .as_ref()
                        .and_then(|st| st.terminated.as_ref())
                        .is_none()
            });
            if revived {
                errs.push(FieldError::forbidden(
                    &path.child("containerStatuses").index(i).child("state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    for (i, ip) in status.pod_ips.iter().flatten().enumerate() {
        for m in is_valid_ip(&ip.ip) {
            errs.push(FieldError::invalid(
                &path.child("podIPs").index(i),
                ip.ip.as_str(),
                m,
            ));
        }
    }
    for (i, ip) in status.host_ips.iter().flatten().enumerate() {
        for m in is_valid_ip(&ip.ip) {
            errs.push(FieldError::invalid(
                &path.child("hostIPs").index(i),
                ip.ip.as_str(),
                m,
            ));
        }
    }
    errs
}
