//! Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`), turned
//! into the Kubernetes JSON that the rest of the server decodes, defaults, validates and
//! stores. Nothing downstream knows the body was protobuf.
//!
//! A body is the 4 bytes `k8s\0` followed by a `runtime.Unknown` message whose
//! `typeMeta` names the object's apiVersion and kind and whose `raw` is the object's own
//! message. The wire schema of the served kinds lives in `proto/k8s` (see its README):
//! it is compiled into a descriptor set at build time and objects are decoded by
//! reflection, then walked into JSON with Kubernetes' mapping: field names are the JSON
//! names, `Time`/`MicroTime` become RFC 3339 strings, `Quantity` its string, `IntOrString`
//! a number or a string, `FieldsV1` its embedded JSON, `bytes` base64, embedded Go structs
//! are inlined, and zero values are shown where Kubernetes' JSON shows them.
//!
//! This module only decodes: it never encodes responses (the server answers JSON) and
//! does no I/O.

use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage};
use serde_json::{Map, Number, Value};

use crate::status::Status;

/// The media type of Kubernetes' protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The 4 bytes every protobuf-encoded object starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!(concat!(env!("OUT_DIR"), "/k8s.bin")).as_ref())
        .expect("the descriptor set built from proto/k8s decodes")
});

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

/// Go embedded structs (`json:",inline"`): the message field whose fields belong to the
/// parent object in JSON.
const INLINE: &[(&str, &str)] = &[
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
    ("k8s.io.api.core.v1.Probe", "handler"),
    (
        "k8s.io.api.core.v1.EphemeralContainer",
        "ephemeralContainerCommon",
    ),
    (
        "k8s.io.api.core.v1.SecretKeySelector",
        "localObjectReference",
    ),
    (
        "k8s.io.api.core.v1.ConfigMapKeySelector",
        "localObjectReference",
    ),
    ("k8s.io.api.core.v1.SecretEnvSource", "localObjectReference"),
    (
        "k8s.io.api.core.v1.ConfigMapEnvSource",
        "localObjectReference",
    ),
    (
        "k8s.io.api.core.v1.SecretProjection",
        "localObjectReference",
    ),
    (
        "k8s.io.api.core.v1.ConfigMapProjection",
        "localObjectReference",
    ),
    (
        "k8s.io.api.core.v1.ConfigMapVolumeSource",
        "localObjectReference",
    ),
];

/// API group → the protobuf package of its v1 types.
const PACKAGES: &[(&str, &str)] = &[
    ("", "k8s.io.api.core.v1"),
    ("apps", "k8s.io.api.apps.v1"),
    ("rbac.authorization.k8s.io", "k8s.io.api.rbac.v1"),
    ("coordination.k8s.io", "k8s.io.api.coordination.v1"),
    ("events.k8s.io", "k8s.io.api.events.v1"),
];

/// A decoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The object as Kubernetes JSON, `apiVersion` and `kind` set from the envelope.
    pub object: Value,
    /// Fields the schema does not know, as `unknown field ...` messages for
    /// `fieldValidation` (Kubernetes 1.33 does not have them, or they are garbage).
    pub unknown_fields: Vec<String>,
}

/// Whether a `Content-Type` header value names Kubernetes' protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Decodes a protobuf request body into Kubernetes JSON. A body that is not a
/// Kubernetes protobuf envelope, or whose message does not decode, is 400 Bad Request;
/// a kind this server has no protobuf schema for is 415 Unsupported Media Type (the
/// client can send it as JSON).
pub fn decode(body: &[u8]) -> Result<Decoded, Status> {
    let raw_envelope = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        Status::bad_request(format!(
            "the body of the request was in an unknown format: provided data does not appear to be a protobuf message, expected prefix {:?}",
            MAGIC
        ))
    })?;
    let envelope = DynamicMessage::decode(message(UNKNOWN), raw_envelope)
        .map_err(|e| malformed("runtime.Unknown", &e))?;
    let str_field = |m: &DynamicMessage, name: &str| {
        m.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let type_meta = envelope
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned())
        .unwrap_or_else(|| {
            DynamicMessage::new(message("k8s.io.apimachinery.pkg.runtime.TypeMeta"))
        });
    let (api_version, kind) = (
        str_field(&type_meta, "apiVersion"),
        str_field(&type_meta, "kind"),
    );
    let encoding = str_field(&envelope, "contentEncoding");
    if !encoding.is_empty() {
        return Err(unsupported(format!(
            "unsupported content encoding {encoding:?} in a protobuf body"
        )));
    }
    let inner_type = str_field(&envelope, "contentType");
    if !inner_type.is_empty() && !is_protobuf(&inner_type) {
        return Err(unsupported(format!(
            "unsupported content type {inner_type:?} inside a protobuf body"
        )));
    }
    if kind.is_empty() || api_version.is_empty() {
        return Err(Status::bad_request(
            "the body of the request was in an unknown format: the protobuf envelope has no apiVersion or kind",
        ));
    }
    let desc = descriptor_for(&api_version, &kind).ok_or_else(|| {
        unsupported(format!(
            "the protobuf encoding of {api_version}, Kind={kind} is not supported by this server: send it as application/json"
        ))
    })?;
    let raw = envelope
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc, raw).map_err(|e| malformed(&kind, &e))?;
    let mut unknown_fields = Vec::new();
    let mut object = match to_json(&msg, "", &mut unknown_fields)? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Decoded {
        object: Value::Object(object),
        unknown_fields,
    })
}

fn message(name: &str) -> MessageDescriptor {
    POOL.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} is in proto/k8s"))
}

/// The message of `apiVersion`/`kind`; `DeleteOptions` is served in every group.
fn descriptor_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    if kind == "DeleteOptions" {
        return Some(message(
            "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        ));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if version != "v1" {
        return None;
    }
    let package = PACKAGES.iter().find(|(g, _)| *g == group)?.1;
    POOL.get_message_by_name(&format!("{package}.{kind}"))
}

fn unsupported(message: String) -> Status {
    Status::new(crate::status::Reason::UnsupportedMediaType, message)
}

fn malformed(what: &str, e: &prost::DecodeError) -> Status {
    Status::bad_request(format!(
        "the body of the request was in an unknown format: malformed protobuf {what}: {e}"
    ))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// A message as JSON; `None` for values Kubernetes' JSON leaves out (a zero `Time`).
fn to_json(
    msg: &DynamicMessage,
    path: &str,
    unknown: &mut Vec<String>,
) -> Result<Option<Value>, Status> {
    let desc = msg.descriptor();
    match desc.full_name() {
        TIME => return time(msg, false, path),
        MICRO_TIME => return time(msg, true, path),
        QUANTITY => {
            let s = msg
                .get_field_by_name("string")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Ok(Some(Value::String(if s.is_empty() {
                "0".into()
            } else {
                s
            })));
        }
        INT_OR_STRING => {
            let is_string = msg
                .get_field_by_name("type")
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
                == 1;
            return Ok(Some(if is_string {
                Value::String(
                    msg.get_field_by_name("strVal")
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                )
            } else {
                Value::from(
                    msg.get_field_by_name("intVal")
                        .and_then(|v| v.as_i32())
                        .unwrap_or(0),
                )
            }));
        }
        FIELDS_V1 => {
            let raw = msg
                .get_field_by_name("raw")
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            if raw.is_empty() {
                return Ok(None);
            }
            return serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| Status::bad_request(format!("{path}: FieldsV1 is not JSON: {e}")));
        }
        _ => {}
    }
    for f in msg.unknown_fields() {
        unknown.push(format!(
            "unknown field number {} in {}",
            f.number(),
            if path.is_empty() { desc.name() } else { path }
        ));
    }
    let mut out = Map::new();
    for (field, value) in msg.fields() {
        let name = field.name();
        let here = join(path, name);
        if INLINE.contains(&(desc.full_name(), name)) {
            if let Some(Value::Object(inner)) = value_to_json(value, &here, path, unknown)? {
                out.extend(inner);
            }
            continue;
        }
        if let Some(v) = value_to_json(value, &here, &here, unknown)? {
            out.insert(name.to_string(), v);
        }
    }
    Ok(Some(Value::Object(out)))
}

/// `at` names the value in error messages; `path` is where its own fields live (the
/// parent's for an inlined struct).
fn value_to_json(
    value: &prost_reflect::Value,
    at: &str,
    path: &str,
    unknown: &mut Vec<String>,
) -> Result<Option<Value>, Status> {
    use prost_reflect::Value as V;
    Ok(Some(match value {
        V::Bool(b) => Value::Bool(*b),
        V::I32(n) => Value::from(*n),
        V::I64(n) => Value::from(*n),
        V::U32(n) => Value::from(*n),
        V::U64(n) => Value::from(*n),
        V::F32(n) => Number::from_f64(f64::from(*n)).map_or(Value::Null, Value::Number),
        V::F64(n) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        V::String(s) => Value::String(s.clone()),
        V::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        V::EnumNumber(n) => Value::from(*n),
        V::Message(m) => return to_json(m, path, unknown),
        V::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{at}[{i}]");
                out.push(value_to_json(item, &p, &p, unknown)?.unwrap_or(Value::Null));
            }
            Value::Array(out)
        }
        V::Map(entries) => {
            // Sorted, so that the JSON does not depend on hash order.
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                let key = match k {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                let p = format!("{at}[{key}]");
                let v = value_to_json(v, &p, &p, unknown)?.unwrap_or(Value::Null);
                out.insert(key, v);
            }
            Value::Object(out)
        }
    }))
}

/// `metav1.Time` (seconds) or `MicroTime` (microseconds) as k8s-openapi writes them.
/// Go clients send the zero time as an empty message; Kubernetes' JSON shows it as null,
/// here it is left out.
fn time(msg: &DynamicMessage, micro: bool, path: &str) -> Result<Option<Value>, Status> {
    let seconds = msg
        .get_field_by_name("seconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = msg
        .get_field_by_name("nanos")
        .and_then(|v| v.as_i32())
        .unwrap_or(0);
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
    use k8s_openapi::jiff::Timestamp;
    let bad = |e: &dyn std::fmt::Display| {
        Status::bad_request(format!(
            "{path}: invalid timestamp ({seconds}s, {nanos}ns): {e}"
        ))
    };
    let ts = Timestamp::new(seconds, if micro { nanos - nanos % 1000 } else { 0 })
        .map_err(|e| bad(&e))?;
    let v = if micro {
        serde_json::to_value(MicroTime(ts))
    } else {
        serde_json::to_value(Time(ts))
    };
    v.map(Some).map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests;
