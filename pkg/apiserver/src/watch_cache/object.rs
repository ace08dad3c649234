//! One version of one object as the API serves it, decoded once and shared (`Arc`) by
//! every list and watcher that sends it: its Kubernetes JSON with `resourceVersion` set,
//! the labels and selectable fields that selectors match, and the REST watch lines
//! rendered from it on first use. Building one is the only JSON work an event costs
//! however many watchers receive it. An `Object` never changes after it is built.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::{BufMut as _, Bytes, BytesMut};
use rkube_api::registry::ResourceInfo;
use serde_json::Value;

/// A stored value that is not a JSON object of the resource (never written by rkube).
#[derive(Debug, thiserror::Error)]
#[error("the stored object at {key} is not JSON")]
pub struct DecodeError {
    pub key: String,
    #[source]
    pub source: serde_json::Error,
}

/// What happened to an object, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// Kubernetes' name: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One object version, shared by every reader.
#[derive(Debug)]
pub struct Object {
    key: Bytes,
    revision: i64,
    json: Bytes,
    labels: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    /// `{"type":"<T>","object":<json>}\n`, per event type, built on first use.
    rest_lines: [OnceLock<Bytes>; 3],
}

impl Object {
    /// Decodes a stored value (stored without `resourceVersion`, see the registry) and
    /// sets `resourceVersion` to `revision`.
    pub fn from_stored(
        info: &ResourceInfo,
        key: Bytes,
        stored: &[u8],
        revision: i64,
    ) -> Result<Self, DecodeError> {
        let value = decode_stored(stored, revision).map_err(|source| DecodeError {
            key: String::from_utf8_lossy(&key).into_owned(),
            source,
        })?;
        Ok(Self::from_value(info, key, &value, revision))
    }

    /// An object from its decoded form, whose `resourceVersion` is `revision`.
    pub fn from_value(info: &ResourceInfo, key: Bytes, value: &Value, revision: i64) -> Self {
        let labels = value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut json = serde_json::to_vec(value).expect("JSON values encode");
        // `Bytes` keeps a `Vec`'s whole allocation; the cache holds many of these.
        json.shrink_to_fit();
        let mut fields = info.field_set(value);
        // Field selectors read an absent field as "": empty values need no room.
        fields.retain(|_, v| !v.is_empty());
        Self {
            key,
            revision,
            json: Bytes::from(json),
            labels,
            fields,
            rest_lines: Default::default(),
        }
    }

    /// The same object with another `resourceVersion` (a deleted object carries the
    /// revision of its deletion, as Kubernetes sends it).
    pub fn at_revision(&self, info: &ResourceInfo, revision: i64) -> Self {
        let mut value = self.value();
        set_resource_version(&mut value, revision);
        Self::from_value(info, self.key.clone(), &value, revision)
    }

    /// The store key (`/registry/pods/<namespace>/<name>`).
    pub fn key(&self) -> &Bytes {
        &self.key
    }

    /// `metadata.resourceVersion`: the revision of this version.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The Kubernetes JSON, `resourceVersion` included.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// A decoded copy (for Table output and callers that edit it).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("an Object holds JSON it encoded itself")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The selectable fields (see `rkube_api::selectors::field_set`).
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    /// A selectable field's value, `""` when absent (as field selectors read it).
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    pub fn name(&self) -> &str {
        self.field("metadata.name")
    }

    pub fn namespace(&self) -> &str {
        self.field("metadata.namespace")
    }

    /// The REST watch line for this object as an event of type `kind`, built once.
    pub fn rest_line(&self, kind: EventType) -> Bytes {
        self.rest_lines[kind.index()]
            .get_or_init(|| {
                let (head, tail) = (r#"{"type":""#, r#"","object":"#);
                let mut b =
                    BytesMut::with_capacity(head.len() + 8 + tail.len() + self.json.len() + 2);
                b.put_slice(head.as_bytes());
                b.put_slice(kind.as_str().as_bytes());
                b.put_slice(tail.as_bytes());
                b.put_slice(&self.json);
                b.put_slice(b"}\n");
                b.freeze()
            })
            .clone()
    }
}

/// The decoded form of a stored value, with `resourceVersion` set from its revision.
pub fn decode_stored(stored: &[u8], revision: i64) -> Result<Value, serde_json::Error> {
    let mut v: Value = serde_json::from_slice(stored)?;
    set_resource_version(&mut v, revision);
    Ok(v)
}

fn set_resource_version(v: &mut Value, revision: i64) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}
