//! YAML request bodies (`Content-Type: application/yaml`), turned into the JSON
//! the rest of the request sees, as Kubernetes' YAML serializer does: the first
//! document only, mapping keys as strings, numbers and booleans as JSON's. A body
//! that is not YAML, or not one object, is the caller's 400.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::status::Status;

/// The media type Kubernetes accepts YAML bodies as.
pub const MEDIA_TYPE: &str = "application/yaml";

/// The JSON form of a YAML body, or a 400 naming where the YAML broke.
pub fn to_json(body: &[u8]) -> Result<Value, Status> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Status::bad_request(format!(
            "error converting YAML to JSON: yaml: invalid UTF-8: {e}"
        ))
    })?;
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| Status::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(Value::Null);
    };
    convert(doc)
}

fn convert(y: Yaml) -> Result<Value, Status> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(s) => {
            let f = Yaml::Real(s.clone()).as_f64().unwrap_or(f64::NAN);
            Value::Number(Number::from_f64(f).ok_or_else(|| {
                Status::bad_request(format!(
                    "error converting YAML to JSON: yaml: {s} has no JSON form"
                ))
            })?)
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Array(a) => Value::Array(a.into_iter().map(convert).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".to_string(),
                    other => {
                        return Err(Status::bad_request(format!(
                            "error converting YAML to JSON: yaml: unsupported map key: {other:?}"
                        )))
                    }
                };
                m.insert(key, convert(v)?);
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(Status::bad_request(
                "error converting YAML to JSON: yaml: unknown anchor",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_objects_become_their_json() {
        let v = to_json(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: \"1\"}\ndata:\n  n: \"2\"\n  8080: port\nspec: {replicas: 3, ratio: 0.5, on: true, none: ~}\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "a", "labels": {"x": "1"}},
                   "data": {"n": "2", "8080": "port"},
                   "spec": {"replicas": 3, "ratio": 0.5, "on": true, "none": null}})
        );
    }

    #[test]
    fn only_the_first_document_counts() {
        assert_eq!(to_json(b"a: 1\n---\nb: 2\n").unwrap(), json!({"a": 1}));
        assert_eq!(to_json(b"").unwrap(), Value::Null);
    }

    #[test]
    fn broken_yaml_is_a_bad_request() {
        let s = to_json(b"metadata:\n  name: a\n bad: [\n").unwrap_err();
        assert_eq!(s.code, 400);
        assert!(
            s.message.starts_with("error converting YAML to JSON"),
            "{}",
            s.message
        );
    }
}
