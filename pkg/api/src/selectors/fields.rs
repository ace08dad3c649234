//! Field selectors: Kubernetes' `fields.ParseSelector` (terms `f=v`, `f==v`, `f!=v` joined
//! by commas, with `\,` `\=` `\\` escapes), per-resource field labels (which fields each
//! resource can be selected by, and the events.k8s.io names mapped onto the stored
//! core/v1 fields), and the field values of an object.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::SelectorError;
use crate::registry::ResourceInfo;

/// One term: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A field selector: the conjunction of its terms; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses `metadata.name=x,spec.nodeName!=y`. Terms are kept sorted, as Kubernetes
    /// sorts them.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs)?;
            terms.push(FieldTerm {
                field: lhs.to_string(),
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// A selector of one `field=value` term.
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            terms: vec![FieldTerm {
                field: field.to_string(),
                value: value.to_string(),
                negated: false,
            }],
        }
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value `field` must equal, if one term requires exactly that (lets a caller turn
    /// `metadata.name=x` into a get, or `spec.nodeName=n` into an index lookup).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// This selector checked against the fields `info` supports and renamed onto the
    /// stored object's fields (events.k8s.io's `regarding.name` is core's
    /// `involvedObject.name`; pods' `spec.host` is `spec.nodeName`). An unsupported field
    /// gives Kubernetes' `field label not supported: <field>`.
    pub fn for_resource(&self, info: &ResourceInfo) -> Result<Self, SelectorError> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let field = convert_field_label(info, &t.field).ok_or_else(|| {
                SelectorError::new(format!("field label not supported: {}", t.field))
            })?;
            terms.push(FieldTerm {
                field,
                value: t.value.clone(),
                negated: t.negated,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether a set of field values (see [`field_set`]) satisfies every term; an absent
    /// field has the value `""`.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| {
            let have = fields.get(&t.field).map_or("", String::as_str);
            (have == t.value) != t.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| {
                format!(
                    "{}{}{}",
                    t.field,
                    if t.negated { "!=" } else { "=" },
                    escape_value(&t.value)
                )
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                Some(n) => {
                    return Err(SelectorError::new(format!(
                        "invalid field selector: invalid escape sequence: \\{n}"
                    )))
                }
                None => {
                    return Err(SelectorError::new(
                        "invalid field selector: invalid escape sequence: \\",
                    ))
                }
            },
            // Go prints the rune with %v: its code point.
            ',' | '=' => {
                return Err(SelectorError::new(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The field labels a resource can be selected by, in the names its clients use.
pub fn supported_fields(info: &ResourceInfo) -> Vec<&'static str> {
    // Kubernetes' generic conversion accepts metadata.namespace for every resource without
    // a conversion function of its own, cluster-scoped ones included; the cluster-scoped
    // kinds that have one (nodes, namespaces) accept only metadata.name.
    let mut out: Vec<&'static str> = if has_own_conversion(info) && !info.namespaced {
        vec!["metadata.name"]
    } else {
        vec!["metadata.name", "metadata.namespace"]
    };
    out.extend_from_slice(match (info.group, info.kind) {
        ("", "Pod") => &[
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
        ("", "Node") => &["spec.unschedulable"],
        ("", "Namespace") => &["status.phase"],
        ("", "Secret") => &["type"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("apps", "ReplicaSet") => &["status.replicas"],
        _ => &[],
    });
    out
}

fn has_own_conversion(info: &ResourceInfo) -> bool {
    matches!(
        (info.group, info.kind),
        (
            "",
            "Pod" | "Node" | "Namespace" | "Secret" | "Event" | "Service"
        ) | ("events.k8s.io", "Event")
            | ("apps", "ReplicaSet")
    )
}

/// The stored field a client's field label selects, or `None` when unsupported.
fn convert_field_label(info: &ResourceInfo, label: &str) -> Option<String> {
    if info.group.is_empty() && info.kind == "Pod" && label == "spec.host" {
        return Some("spec.nodeName".to_string());
    }
    if !supported_fields(info).contains(&label) {
        return None;
    }
    if info.group == "events.k8s.io" {
        if let Some(rest) = label.strip_prefix("regarding.") {
            return Some(format!("involvedObject.{rest}"));
        }
        if label == "reportingController" {
            return Some("reportingComponent".to_string());
        }
    }
    Some(label.to_string())
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The selectable field values of an object (in its stored form: events as core/v1), as
/// Kubernetes' per-kind `ToSelectableFields` computes them.
pub fn field_set(info: &ResourceInfo, obj: &Value) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        f.insert(k.to_string(), v);
    };
    put("metadata.name", str_at(obj, "/metadata/name").to_string());
    if info.namespaced {
        put(
            "metadata.namespace",
            str_at(obj, "/metadata/namespace").to_string(),
        );
    }
    let is_events_v1 = obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1");
    let converted;
    let obj = if is_events_v1 {
        converted = crate::convert::event_v1_to_core(obj);
        &converted
    } else {
        obj
    };
    match (info.group, info.kind) {
        ("", "Pod") => {
            for (k, p) in [
                ("spec.nodeName", "/spec/nodeName"),
                ("spec.restartPolicy", "/spec/restartPolicy"),
                ("spec.schedulerName", "/spec/schedulerName"),
                ("spec.serviceAccountName", "/spec/serviceAccountName"),
                ("status.phase", "/status/phase"),
                ("status.nominatedNodeName", "/status/nominatedNodeName"),
            ] {
                put(k, str_at(obj, p).to_string());
            }
            let host_network = obj
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            put("spec.hostNetwork", host_network.to_string());
            let mut ip = str_at(obj, "/status/podIPs/0/ip").to_string();
            if ip.is_empty() {
                ip = str_at(obj, "/status/podIP").to_string();
            }
            put("status.podIP", ip);
        }
        ("", "Node") => {
            let u = obj
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            put("spec.unschedulable", u.to_string());
        }
        ("", "Namespace") => put("status.phase", str_at(obj, "/status/phase").to_string()),
        ("", "Secret") => put("type", str_at(obj, "/type").to_string()),
        ("", "Service") => {
            put("spec.clusterIP", str_at(obj, "/spec/clusterIP").to_string());
            put("spec.type", str_at(obj, "/spec/type").to_string());
        }
        ("", "Event") | ("events.k8s.io", "Event") => {
            for k in [
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            ] {
                put(
                    &format!("involvedObject.{k}"),
                    str_at(obj, &format!("/involvedObject/{k}")).to_string(),
                );
            }
            put("reason", str_at(obj, "/reason").to_string());
            put(
                "reportingComponent",
                str_at(obj, "/reportingComponent").to_string(),
            );
            let mut source = str_at(obj, "/source/component").to_string();
            if source.is_empty() {
                source = str_at(obj, "/reportingComponent").to_string();
            }
            put("source", source);
            put("type", str_at(obj, "/type").to_string());
        }
        ("apps", "ReplicaSet") => {
            let n = obj
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            put("status.replicas", n.to_string());
        }
        _ => {}
    }
    f
}
