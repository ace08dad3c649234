//! Decoding request bodies into k8s-openapi types, and the strict-decoding checks behind
//! `fieldValidation`: fields the kind does not have (found by decoding into the typed
//! struct, encoding it again and listing what the round trip lost, as Kubernetes reports
//! them: `unknown field "spec.foo"`) and fields given twice (`duplicate field
//! "spec.replicas"`). Which type a kind decodes into is its entry's business
//! (`crate::kinds`); this module is generic over the type. It reports; the caller decides
//! between Strict (400), Warn (`Warning` headers) and Ignore.

use std::collections::HashSet;
use std::fmt;

use k8s_openapi::Resource;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use crate::status::Status;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown and duplicate fields silently.
    Ignore,
    /// Drop them, and warn about each (Kubernetes' default).
    #[default]
    Warn,
    /// Fail the request with 400 Bad Request.
    Strict,
}

impl FieldValidation {
    /// Parses the parameter; absent or empty means [`FieldValidation::Warn`].
    pub fn parse(v: Option<&str>) -> Result<Self, Status> {
        match v.unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(Status::bad_request(format!(
                "fieldValidation: Unsupported value: {}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
                crate::field::go_quote(other)
            ))),
        }
    }
}

/// Decodes `v` as a `K`; failures are 400 Bad Request with Kubernetes' framing (`Pod in
/// version "v1" cannot be handled as a Pod: <why>`) and the JSON path of the offending
/// field.
pub fn decode<K: DeserializeOwned + Resource>(v: &Value) -> Result<K, Status> {
    decode_as(K::KIND, K::VERSION, v)
}

/// [`decode`] for a type named explicitly (types without a `Resource` impl, such as
/// `DeleteOptions`).
pub fn decode_as<K: DeserializeOwned>(kind: &str, version: &str, v: &Value) -> Result<K, Status> {
    serde_path_to_error::deserialize::<_, K>(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let why = if path.is_empty() || path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        Status::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}"
        ))
    })
}

/// `v` decoded as a `K` and encoded again: what of `v` the type keeps.
pub fn round_trip_as<K: DeserializeOwned + Serialize>(
    kind: &str,
    version: &str,
    v: &Value,
) -> Result<Value, Status> {
    let typed: K = decode_as(kind, version, v)?;
    serde_json::to_value(&typed).map_err(|e| Status::internal_error(&e.to_string()))
}

/// The paths of fields in `input` that its round trip (`output`) lost, in Kubernetes'
/// notation (`spec.foo`, `spec.containers[0].bar`): the fields the type does not have.
/// Null values are never unknown: dropping them changes nothing.
pub fn lost_fields(input: &Value, output: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    collect_lost(input, output, "", &mut paths);
    paths
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn collect_lost(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = join(path, k);
                match o.get(k) {
                    None => out.push(p),
                    Some(ov) => collect_lost(v, ov, &p, out),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (idx, (a, b)) in i.iter().zip(o).enumerate() {
                collect_lost(a, b, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

/// The paths of object keys given more than once in a raw JSON body (which a parsed
/// [`Value`] no longer shows: the last one wins).
pub fn duplicate_fields(raw: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(raw);
    DupSeed {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

struct DupSeed<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for DupSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let seed = DupSeed {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let p = join(&self.path, &key);
            if !seen.insert(key) {
                self.out.push(p.clone());
            }
            map.next_value_seed(DupSeed {
                path: p,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// Everything strict decoding objects to in a raw body, as Kubernetes words each item:
/// `duplicate field "x"` first, then `unknown field "spec.foo"` for each path
/// `unknown_fields` finds in the parsed body. A body that is not JSON, or does not decode
/// as the kind, is a 400.
pub fn strict_errors(
    raw: &[u8],
    unknown_fields: impl FnOnce(&Value) -> Result<Vec<String>, Status>,
) -> Result<Vec<String>, Status> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| Status::bad_request(e.to_string()))?;
    let mut errs: Vec<String> = duplicate_fields(raw)
        .map_err(|e| Status::bad_request(e.to_string()))?
        .into_iter()
        .map(|p| format!("duplicate field \"{p}\""))
        .collect();
    errs.extend(
        unknown_fields(&v)?
            .into_iter()
            .map(|p| format!("unknown field \"{p}\"")),
    );
    Ok(errs)
}

/// The 400 Bad Request that `fieldValidation=Strict` answers with:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
pub fn strict_decoding_status(errors: &[String]) -> Status {
    Status::bad_request(format!("strict decoding error: {}", errors.join(", ")))
}

#[cfg(test)]
mod tests;
