//! Validation of the core kinds other than pods: namespaces (DNS-1123 label names,
//! finalizers), nodes (taints, podCIDRs set once, providerID set once), configmaps and
//! secrets (key names, the 1 MiB budget, per-type required keys, `immutable`),
//! serviceaccounts, and services (ports, type, session affinity, cluster IPs).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{
    validate_dns1123_label, validate_dns1123_subdomain, validate_kube_finalizer_name,
    validate_label_name, validate_labels, validate_object_meta, validate_object_meta_update,
};
use super::pods::validate_taint_effect;
use crate::field::gofmt;
use crate::field::FieldPath;
use crate::field::{BadValue, ErrorList, FieldError};
use crate::names::{
    is_config_map_key, is_qualified_name, is_valid_cidr, is_valid_ip, is_valid_label_value,
    is_valid_port_name, is_valid_port_num, name_is_dns1035_label, name_is_dns_label,
    name_is_dns_subdomain, parse_cidr, FIELD_IMMUTABLE_ERROR,
};

/// The most bytes a ConfigMap's or Secret's data may hold.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

fn meta_path() -> FieldPath {
    FieldPath::new("metadata")
}

/// A new Namespace: a DNS-1123 label name, finalizers that are qualified names.
pub fn validate_namespace(ns: &Namespace) -> ErrorList {
    let mut errs = validate_object_meta(&ns.metadata, false, name_is_dns_label, &meta_path());
    let fin_path = FieldPath::from_names(&["spec", "finalizers"]);
    for f in ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .into_iter()
        .flatten()
    {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(&fin_path, f, msg));
        }
        errs.extend(validate_kube_finalizer_name(f, &fin_path));
    }
    errs
}

/// An update of a Namespace (spec and status are the registry's to keep).
pub fn validate_namespace_update(new: &Namespace, old: &Namespace) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    errs.extend(validate_namespace(new));
    errs
}

/// A Node: a DNS-1123 subdomain name, valid taints, and podCIDRs that are CIDRs (one per
/// IP family).
pub fn validate_node(node: &Node) -> ErrorList {
    let mut errs = validate_object_meta(&node.metadata, false, name_is_dns_subdomain, &meta_path());
    let spec = node.spec.clone().unwrap_or_default();
    let taints_path = FieldPath::from_names(&["spec", "taints"]);
    let mut unique: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, t) in spec.taints.iter().flatten().enumerate() {
        let idx = taints_path.index(i);
        errs.extend(validate_label_name(&t.key, &idx.child("key")));
        let msgs = is_valid_label_value(s(&t.value));
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &idx.child("value"),
                s(&t.value),
                msgs.join(";"),
            ));
        }
        errs.extend(validate_taint_effect(
            &t.effect,
            false,
            &idx.child("effect"),
        ));
        let keys = unique.entry(t.effect.clone()).or_default();
        if !keys.insert(t.key.clone()) {
            let mut dup = FieldError::duplicate(
                &idx,
                BadValue::Raw(format!("{}={}:{}", t.key, s(&t.value), t.effect)),
            );
            dup.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(dup);
        }
    }
    let cidrs = spec.pod_cidrs.clone().unwrap_or_default();
    let cidrs_path = FieldPath::from_names(&["spec", "podCIDRs"]);
    for (i, c) in cidrs.iter().enumerate() {
        for msg in is_valid_cidr(c) {
            errs.push(FieldError::invalid(&cidrs_path.index(i), c, msg));
        }
    }
    if cidrs.len() > 1 {
        let families: BTreeSet<bool> = cidrs
            .iter()
            .filter_map(|c| parse_cidr(c))
            .map(|(a, _)| a.is_ipv4())
            .collect();
        if cidrs.len() > 2 || families.len() != 2 {
            errs.push(FieldError::invalid(
                &cidrs_path,
                BadValue::Raw(gofmt::strings(Some(&cidrs))),
                "may specify no more than one CIDR for each IP family",
            ));
        }
    }
    errs
}

/// An update of a Node: the new node is valid; podCIDRs and providerID, once set, stay.
pub fn validate_node_update(new: &Node, old: &Node) -> ErrorList {
    let mut errs = validate_node(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        &meta_path(),
    ));
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let mut seen = BTreeSet::new();
    for (i, a) in new
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !seen.insert((a.type_.clone(), a.address.clone())) {
            errs.push(FieldError::duplicate(
                &FieldPath::from_names(&["status", "addresses"]).index(i),
                BadValue::Raw(format!(
                    "core.NodeAddress{{Type:{:?}, Address:{:?}}}",
                    a.type_, a.address
                )),
            ));
        }
    }
    let old_cidrs = os.pod_cidrs.clone().unwrap_or_default();
    let new_cidrs = ns.pod_cidrs.clone().unwrap_or_default();
    if !old_cidrs.is_empty() && old_cidrs != new_cidrs {
        errs.push(FieldError::forbidden(
            &FieldPath::from_names(&["spec", "podCIDRs"]),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    if !s(&os.provider_id).is_empty() && os.provider_id != ns.provider_id {
        errs.push(FieldError::forbidden(
            &FieldPath::from_names(&["spec", "providerID"]),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if os.external_id != ns.external_id {
        errs.push(FieldError::forbidden(
            &FieldPath::from_names(&["spec", "externalID"]),
            "may not be updated",
        ));
    }
    errs
}

/// A new ConfigMap: valid keys, no key in both `data` and `binaryData`, at most 1 MiB.
pub fn validate_config_map(cm: &ConfigMap) -> ErrorList {
    let mut errs = validate_object_meta(&cm.metadata, true, name_is_dns_subdomain, &meta_path());
    let mut total = 0usize;
    let binary = cm.binary_data.clone().unwrap_or_default();
    for (k, v) in cm.data.iter().flatten() {
        let p = FieldPath::new("data").key(k);
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(&p, k, msg));
        }
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(
                &p,
                k,
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                &FieldPath::new("binaryData").key(k),
                k,
                msg,
            ));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(
            &FieldPath::new(""),
            MAX_SECRET_SIZE as i64,
        ));
    }
    errs
}

/// An update of a ConfigMap: valid, and unchanged if it was `immutable`.
pub fn validate_config_map_update(new: &ConfigMap, old: &ConfigMap) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &FieldPath::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden(
                &FieldPath::new("data"),
                "field is immutable when `immutable` is set",
            ));
        }
        if new.binary_data != old.binary_data {
            errs.push(FieldError::forbidden(
                &FieldPath::new("binaryData"),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

/// A new Secret: valid keys, at most 1 MiB, and the keys its type requires.
pub fn validate_secret(secret: &Secret) -> ErrorList {
    let mut errs =
        validate_object_meta(&secret.metadata, true, name_is_dns_subdomain, &meta_path());
    let data_path = FieldPath::new("data");
    let data = secret.data.clone().unwrap_or_default();
    let mut total = 0usize;
    for (k, v) in &data {
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(&data_path.key(k), k, msg));
        }
        total += v.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE as i64));
    }
    let has = |k: &str| data.contains_key(k);
    match s(&secret.type_) {
        "kubernetes.io/service-account-token" => {
            let sa = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map_or("", String::as_str);
            if sa.is_empty() {
                errs.push(FieldError::required(
                    &FieldPath::from_names(&["metadata", "annotations"])
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => match data.get(".dockercfg") {
            None => errs.push(FieldError::required(&data_path.key(".dockercfg"), "")),
            Some(b) => {
                if let Err(e) =
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b.0)
                {
                    errs.push(FieldError::invalid(
                        &data_path.key(".dockercfg"),
                        "<secret contents redacted>",
                        e.to_string(),
                    ));
                }
            }
        },
        "kubernetes.io/dockerconfigjson" => match data.get(".dockerconfigjson") {
            None => errs.push(FieldError::required(
                &data_path.key(".dockerconfigjson"),
                "",
            )),
            Some(b) => {
                if let Err(e) =
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b.0)
                {
                    errs.push(FieldError::invalid(
                        &data_path.key(".dockerconfigjson"),
                        "<secret contents redacted>",
                        e.to_string(),
                    ));
                }
            }
        },
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required(&data_path.key("tls.crt"), ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required(&data_path.key("tls.key"), ""));
            }
        }
        _ => {}
    }
    errs
}

/// An update of a Secret: valid, same type, and unchanged if it was `immutable`.
pub fn validate_secret_update(new: &Secret, old: &Secret) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    if s(&new.type_) != s(&old.type_) {
        errs.push(FieldError::invalid(
            &FieldPath::new("type"),
            s(&new.type_),
            FIELD_IMMUTABLE_ERROR,
        ));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &FieldPath::new("immutable"),
                "field is immutable when `immutable` is set",
            ));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden(
                &FieldPath::new("data"),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs.extend(validate_secret(new));
    errs
}

/// A ServiceAccount: a DNS-1123 subdomain name.
pub fn validate_service_account(sa: &ServiceAccount) -> ErrorList {
    validate_object_meta(&sa.metadata, true, name_is_dns_subdomain, &meta_path())
}

/// An update of a ServiceAccount.
pub fn validate_service_account_update(new: &ServiceAccount, old: &ServiceAccount) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    errs.extend(validate_service_account(new));
    errs
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const SUPPORTED_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn cluster_ips(svc: &k8s_openapi::api::core::v1::ServiceSpec) -> Vec<String> {
    match &svc.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.clone(),
        _ => svc
            .cluster_ip
            .iter()
            .filter(|ip| !ip.is_empty())
            .cloned()
            .collect(),
    }
}

fn is_headless(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> bool {
    cluster_ips(spec).first().is_some_and(|ip| ip == "None")
}

/// A Service: an RFC 1035 name; ports (required unless headless or ExternalName, named
/// when several, numbers 1–65535, unique per protocol); type, session affinity, cluster
/// IPs, IP families and the ExternalName rules.
pub fn validate_service(svc: &Service) -> ErrorList {
    let mut errs = validate_object_meta(&svc.metadata, true, name_is_dns1035_label, &meta_path());
    let spec = svc.spec.clone().unwrap_or_default();
    let spec_path = FieldPath::new("spec");
    let ports = spec.ports.clone().unwrap_or_default();
    let typ = s(&spec.type_);
    let headless = is_headless(&spec);
    if ports.is_empty() && !headless && typ != "ExternalName" {
        errs.push(FieldError::required(&spec_path.child("ports"), ""));
    }
    let ips = cluster_ips(&spec);
    match typ {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if p.port == 10250 {
                    errs.push(FieldError::invalid(
                        &spec_path.child("ports").index(i),
                        p.port,
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    &spec_path.child("clusterIPs").index(0),
                    ips[0].as_str(),
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        "NodePort" if headless => {
            errs.push(FieldError::invalid(
                &spec_path.child("clusterIPs").index(0),
                ips[0].as_str(),
                "may not be set to 'None' for NodePort services",
            ));
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(&spec.external_name).trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required(&spec_path.child("externalName"), ""));
            } else {
                errs.extend(validate_dns1123_subdomain(
                    cname,
                    &spec_path.child("externalName"),
                ));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    let ports_path = spec_path.child("ports");
    for (i, p) in ports.iter().enumerate() {
        let pp = ports_path.index(i);
        let name = s(&p.name);
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(&pp.child("name"), ""));
        } else if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &pp.child("name")));
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&pp.child("name"), name));
            }
        }
        for m in is_valid_port_num(p.port.into()) {
            errs.push(FieldError::invalid(&pp.child("port"), p.port, m));
        }
        match s(&p.protocol) {
            "" => errs.push(FieldError::required(&pp.child("protocol"), "")),
            proto if !SUPPORTED_PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                &pp.child("protocol"),
                proto,
                SUPPORTED_PROTOCOLS,
            )),
            _ => {}
        }
        match &p.target_port {
            Some(IntOrString::Int(t)) => {
                for m in is_valid_port_num((*t).into()) {
                    errs.push(FieldError::invalid(&pp.child("targetPort"), *t, m));
                }
            }
            Some(IntOrString::String(t)) => {
                for m in is_valid_port_name(t) {
                    errs.push(FieldError::invalid(&pp.child("targetPort"), t.as_str(), m));
                }
            }
            None => {}
        }
        if let Some(ap) = &p.app_protocol {
            for m in is_qualified_name(ap) {
                errs.push(FieldError::invalid(
                    &pp.child("appProtocol"),
                    ap.as_str(),
                    m,
                ));
            }
        }
    }
    if let Some(sel) = &spec.selector {
        errs.extend(validate_labels(Some(sel), &spec_path.child("selector")));
    }
    match s(&spec.session_affinity) {
        "" => errs.push(FieldError::required(
            &spec_path.child("sessionAffinity"),
            "",
        )),
        "ClientIP" | "None" => {}
        other => errs.push(FieldError::not_supported(
            &spec_path.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    match typ {
        "" => errs.push(FieldError::required(&spec_path.child("type"), "")),
        t if !SERVICE_TYPES.contains(&t) => errs.push(FieldError::not_supported(
            &spec_path.child("type"),
            t,
            SERVICE_TYPES,
        )),
        _ => {}
    }
    if typ == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &ports_path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut seen_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let key = (s(&p.protocol).to_string(), p.port);
        if !seen_ports.insert(key.clone()) {
            errs.push(FieldError::duplicate(
                &ports_path.index(i),
                BadValue::Raw(format!("core.ServicePort{{Name:\"\", Protocol:{:?}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}", key.0, key.1)),
            ));
        }
    }
    if typ != "ExternalName" {
        errs.extend(validate_cluster_ips(&spec, &spec_path));
    }
    errs
}

fn validate_cluster_ips(
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    spec_path: &FieldPath,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let ips_path = spec_path.child("clusterIPs");
    let cluster_ip = s(&spec.cluster_ip);
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                &ips_path,
                BadValue::Raw(gofmt::strings(Some(&ips))),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::Raw(gofmt::strings(Some(&ips))),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        let p = spec_path.child("ipFamilies").index(i);
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(&p, f.as_str(), &["IPv4", "IPv6"]));
        }
        if !seen.insert(f.clone()) {
            errs.push(FieldError::duplicate(&p, f.as_str()));
        }
    }
    if let Some(p) = &spec.ip_family_policy {
        if !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(&p.as_str()) {
            errs.push(FieldError::not_supported(
                &spec_path.child("ipFamilyPolicy"),
                p.as_str(),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid(
                    &ips_path,
                    BadValue::Raw(gofmt::strings(Some(&ips))),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        for m in is_valid_ip(ip) {
            errs.push(FieldError::invalid(&ips_path.index(i), ip.as_str(), m));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            BadValue::Raw(gofmt::strings(Some(&ips))),
            "may only hold up to 2 values",
        ));
    }
    errs
}

/// An update of a Service: valid, and the cluster IPs not changed once allocated (unless
/// the service is or becomes ExternalName).
pub fn validate_service_update(new: &Service, old: &Service) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    let (ns, os) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    if s(&ns.type_) != "ExternalName"
        && s(&os.type_) != "ExternalName"
        && !(is_headless(&ns) && is_headless(&os))
    {
        let (new_ips, old_ips) = (cluster_ips(&ns), cluster_ips(&os));
        let p0 = FieldPath::from_names(&["spec", "clusterIPs"]).index(0);
        let raw = BadValue::Raw(gofmt::strings(Some(&new_ips)));
        if new_ips.len() == old_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if ip != &new_ips[i] {
                    errs.push(FieldError::invalid(
                        &FieldPath::from_names(&["spec", "clusterIPs"]).index(i),
                        raw.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if new_ips.is_empty() {
                errs.push(FieldError::invalid(
                    &p0,
                    raw.clone(),
                    "primary clusterIP can not be unset",
                ));
            }
            if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(FieldError::invalid(
                    &p0,
                    raw.clone(),
                    "may not change once set",
                ));
            }
            if new_ips.len() == 1 && ns.ip_family_policy.as_deref() != Some("SingleStack") {
                errs.push(FieldError::invalid(
                    &p0,
                    raw.clone(),
                    "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid(&p0, raw, "may not change once set"));
        }
    }
    errs.extend(validate_service(new));
    errs
}
