//! Conversion between a served version and the stored form. Only events have two served
//! versions sharing one store (`/registry/events` holds core/v1 Events; events.k8s.io/v1
//! renames and regroups their fields); every other resource is stored as served, so its
//! conversions are the identity (each kind's entry in `crate::kinds` says which applies).
//! Pure JSON rewriting, no validation.

use serde_json::{Map, Value};

/// (events.k8s.io/v1 name, core/v1 name) of the fields that only change name.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("metadata", "metadata"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("reason", "reason"),
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("type", "type"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(v: &Value, api_version: &str, forward: bool) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), Value::String("Event".into()));
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    if let Some(m) = v.as_object() {
        for (a, b) in EVENT_FIELDS {
            let (from, to) = if forward { (*a, *b) } else { (*b, *a) };
            if let Some(x) = m.get(from).filter(|x| !x.is_null()) {
                out.insert(to.to_string(), x.clone());
            }
        }
    }
    out.entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in its core/v1 form (the stored form).
pub fn event_v1_to_core(v: &Value) -> Value {
    let mut out = rename(v, "v1", true);
    if let Some(m) = out.as_object_mut() {
        m.entry("involvedObject")
            .or_insert_with(|| Value::Object(Map::new()));
    }
    out
}

/// A core/v1 Event in its events.k8s.io/v1 form.
pub fn event_core_to_v1(v: &Value) -> Value {
    rename(v, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests;
